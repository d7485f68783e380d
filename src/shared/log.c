/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static bool verbose;
static double t0;

void log_set_verbose(bool v) {
        verbose = v;
}

static void vlog(const char *prefix, const char *fmt, va_list ap) {
        fprintf(stderr, "fame: %s", prefix);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

int log_error_errno(int r, const char *fmt, ...) {
        va_list ap;
        errno = r < 0 ? -r : r;
        va_start(ap, fmt);
        vlog("", fmt, ap);
        va_end(ap);
        return r < 0 ? r : -r;
}

void log_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog("", fmt, ap);
        va_end(ap);
}

void log_warning(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog("warning: ", fmt, ap);
        va_end(ap);
}

void log_info(const char *fmt, ...) {
        va_list ap;
        if (!verbose)
                return;
        va_start(ap, fmt);
        vlog("", fmt, ap);
        va_end(ap);
}

void log_debug(const char *fmt, ...) {
        va_list ap;
        if (!getenv("FAME_DEBUG"))
                return;
        va_start(ap, fmt);
        vlog("debug: ", fmt, ap);
        va_end(ap);
}

void log_progress(const char *fmt, ...) {
        va_list ap;
        if (!verbose && !isatty(STDERR_FILENO))
                return;
        if (t0 == 0)
                t0 = now_seconds();
        fprintf(stderr, "[%6.1fs] ", now_seconds() - t0);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}
