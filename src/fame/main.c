/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fame: the FAM/E command line.  main() only dispatches; the verbs live in cmd-*.c, what they
 * share in cli.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "cli.h"
#include "fame.h"
#include "verbs.h"

static void log_to_stderr(int priority, const char *message, void *userdata) {
        (void) userdata;
        if (priority <= LOG_WARNING)
                fprintf(stderr, "fame: %s\n", message);
        else if (getenv("FAME_DEBUG"))
                fprintf(stderr, "fame: debug: %s\n", message);
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
