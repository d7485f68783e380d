/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fame-internal.h"

static fame_log_fn log_fn;
static void *log_userdata;

_public_ void fame_set_log(fame_log_fn fn, void *userdata) {
        log_fn = fn;
        log_userdata = userdata;
}

static void fame_vlogf(int priority, const char *fmt, va_list ap) {
        char buf[1024];

        if (!log_fn)
                return;
        vsnprintf(buf, sizeof buf, fmt, ap);
        log_fn(priority, buf, log_userdata);
}

void fame_logf(int priority, const char *fmt, ...) {
        va_list ap;
        int saved = errno;

        va_start(ap, fmt);
        fame_vlogf(priority, fmt, ap);
        va_end(ap);
        errno = saved;
}

int fame_log_errno(int r, const char *fmt, ...) {
        va_list ap;

        errno = r < 0 ? -r : r;   /* so that %m works */
        va_start(ap, fmt);
        fame_vlogf(LOG_ERR, fmt, ap);
        va_end(ap);
        return r;
}

void fame_log_fatal(const char *message) {
        if (log_fn) {
                log_fn(LOG_CRIT, message, log_userdata);
                return;
        }
        /* No allocation, no stdio: this runs right before raise(SIGSEGV/SIGBUS). */
        size_t n = strlen(message);
        ssize_t w = write(STDERR_FILENO, message, n);
        (void) w;
        w = write(STDERR_FILENO, "\n", 1);
        (void) w;
}
