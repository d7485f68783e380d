/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fame: the FAM/E command line.  main() only dispatches; the verbs live in cmd-*.c. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "fame.h"
#include "verbs.h"

static void log_to_stderr(int priority, const char *message, void *userdata) {
        (void) userdata;
        if (priority <= LOG_WARNING)
                fprintf(stderr, "fame: %s\n", message);
        else if (getenv("FAME_DEBUG"))
                fprintf(stderr, "fame: debug: %s\n", message);
}

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

static int dispatch(const struct verb *table, const char *prefix, int argc, char **argv) {
        char full[128];
        struct verb v;

        if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
                char *help[] = { (char *) "help", (char *) prefix, NULL };
                return cmd_help(NULL, *prefix ? 2 : 1, help);
        }
        const struct verb *found = verb_find(table, argv[0]);
        if (!found) {
                if (*prefix)
                        fprintf(stderr, "fame %s: unknown verb '%s'; see 'fame help %s'\n", prefix, argv[0], prefix);
                else
                        fprintf(stderr, "fame: unknown verb '%s'; see 'fame help'\n", argv[0]);
                return -EINVAL;
        }
        snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? " " : "", found->name);
        if (found->sub && !found->fn)
                return dispatch(found->sub, full, argc - 1, argv + 1);

        v = *found;
        v.full_name = full;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        break;
                if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        verb_print_help(&v, false);
                        return 0;
                }
        }
        return v.fn(&v, argc, argv);
}

int main(int argc, char **argv) {
        int r;

        signal(SIGPIPE, SIG_IGN);
        fame_set_log(log_to_stderr, NULL);
        if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0))
                return cmd_version(NULL, argc - 1, argv + 1) < 0 ? EXIT_FAIL : EXIT_OK;
        r = dispatch(fame_verbs, "", argc - 1, argv + 1);
        if (r == -EINVAL)
                return EXIT_USAGE;
        /* A verb returns a negative errno, 0, or an exit status to pass on (fame exec). */
        return r < 0 ? EXIT_FAIL : r > 255 ? EXIT_FAIL : r;
}
