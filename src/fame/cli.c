/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CLI's helpers for every verb (cli.h): usage and failure lines, getopt, argument counts,
 * verb lookup. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_usage_error(const struct verb *v, const char *fmt, ...) {
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

int cli_fail(int r, const char *fmt, ...) {
        va_list ap;

        errno = r < 0 ? -r : r;
        fputs("fame: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return r;
}

/* getopt_long()'s arguments, made from an option table. */
struct getopt_args {
        struct option longopts[48];
        char shortopts[2 * 48 + 3];
        size_t n_long, n_short;
};

static void add_options(struct getopt_args *a, const struct verb_options *o) {
        for (const struct verb_option *p = o->list; p->name || p->group; p++) {
                if (p->group) {
                        add_options(a, p->group);
                        continue;
                }
                if (p->flags & VERB_OPT_SEE)
                        continue;
                assert(a->n_long + 1 < ELEMENTSOF(a->longopts));
                a->longopts[a->n_long++] = (struct option) { p->name, p->arg ? required_argument : no_argument, NULL, p->key };
                if (p->flags & VERB_OPT_SHORT) {
                        a->shortopts[a->n_short++] = (char) p->key;
                        if (p->arg)
                                a->shortopts[a->n_short++] = ':';
                }
        }
}

int verb_getopt(const struct verb *v, int argc, char **argv, bool *first) {
        struct getopt_args a = {};
        int c;

        /* '+' first for the verbs whose arguments are a command line (exec, ssh): options end at
         * the first argument, so `fame exec node01 ls -l` runs `ls -l` (glibc honours '+' only
         * as the very first character).  Then ':': getopt prints nothing and tells a missing
         * value (':') from an unknown option ('?'). */
        if (v->options && v->options->in_order)
                a.shortopts[a.n_short++] = '+';
        a.shortopts[a.n_short++] = ':';
        if (v->options)
                add_options(&a, v->options);
        if (*first) {
                optind = 0;     /* full reset of GNU getopt */
                *first = false;
        }
        opterr = 0;
        c = getopt_long(argc, argv, a.shortopts, a.longopts, NULL);
        /* the options are done: the arguments left must be as many as the verb takes */
        if (c == -1 && verb_check_args(v, argc - optind) < 0)
                return '?';
        if (c == '?') {
                if (optopt)
                        cli_usage_error(v, "unknown option '-%c'", optopt);
                else
                        cli_usage_error(v, "unknown option '%s'", argv[optind - 1]);
        } else if (c == ':') {
                cli_usage_error(v, "option '%s' needs a value", argv[optind - 1]);
                c = '?';
        }
        return c;
}

int verb_getopt_json(const struct verb *v, int argc, char **argv, bool *first, bool *json) {
        int c;
        while ((c = verb_getopt(v, argc, argv, first)) == VERB_JSON)
                *json = true;
        return c;
}

int verb_check_args(const struct verb *v, int n) {
        if (n < v->min_args)
                return cli_usage_error(v, "missing argument (usage: fame %s %s)", v->full_name, v->usage);
        if (v->max_args >= 0 && n > v->max_args)
                return cli_usage_error(v, "too many arguments (usage: fame %s %s)", v->full_name, v->usage);
        return 0;
}

const struct verb *verb_find(const struct verb *table, const char *name) {
        for (const struct verb *v = table; v && v->name; v++)
                if (strcmp(v->name, name) == 0)
                        return v;
        return NULL;
}
