/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging for the tools (not libfame): one line on stderr, "fame: " first.  Log once, where
 * you give up: return log_error_errno(r, "Failed to ...: %m"). */
#ifndef FAME_LOG_H
#define FAME_LOG_H

#include <stdbool.h>

int log_error_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* only when verbose */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* only with FAME_DEBUG */
void log_set_verbose(bool v);

/* Progress lines for long work ("[  2.1s] building initramfs: modules"), on stderr; silent when
 * stderr is not a terminal unless verbose. */
void log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
