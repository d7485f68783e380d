/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CLI's helpers for every verb (cli.h): usage and failure lines, getopt, argument counts,
 * verb lookup. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int usage_error(const struct verb *v, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "fame %s: ", v ? v->full_name : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        if (v)
                fprintf(stderr, "; see 'fame help %s'", v->full_name);
        fputc('\n', stderr);
        return -EINVAL;
}

int fail(int r, const char *fmt, ...) {
        va_list ap;

        errno = r < 0 ? -r : r;
        fputs("fame: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return r;
}

int verb_getopt(const struct verb *v, int argc, char **argv, const char *shortopts,
                const struct option *longopts, bool *first) {
        char opts[64];
        int c;

        if (*first) {
                optind = 0;     /* full reset of GNU getopt */
                *first = false;
        }
        snprintf(opts, sizeof opts, ":%s", shortopts);
        opterr = 0;
        c = getopt_long(argc, argv, opts, longopts, NULL);
        if (c == '?') {
                if (optopt)
                        usage_error(v, "unknown option '-%c'", optopt);
                else
                        usage_error(v, "unknown option '%s'", argv[optind - 1]);
        } else if (c == ':') {
                usage_error(v, "option '%s' needs a value", argv[optind - 1]);
                c = '?';
        }
        return c;
}

int verb_check_args(const struct verb *v, int n) {
        if (n < v->min_args)
                return usage_error(v, "missing argument (usage: fame %s %s)", v->full_name, v->usage);
        if (v->max_args >= 0 && n > v->max_args)
                return usage_error(v, "too many arguments (usage: fame %s %s)", v->full_name, v->usage);
        return 0;
}

const struct verb *verb_find(const struct verb *table, const char *name) {
        for (const struct verb *v = table; v && v->name; v++)
                if (strcmp(v->name, name) == 0)
                        return v;
        return NULL;
}
