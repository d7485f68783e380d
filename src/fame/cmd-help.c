/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fame-config.h"
#include "fame.h"
#include "verbs.h"

static void print_table(const struct verb *table, const char *prefix) {
        for (const struct verb *v = table; v->name; v++) {
                char name[64];
                snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? " " : "", v->name);
                if (v->sub) {
                        print_table(v->sub, name);
                        continue;
                }
                printf("  %-18s %s\n", name, v->summary);
        }
}

/* roff needs backslashes doubled and leading dots/quotes escaped. */
static void roff_text(const char *s) {
        bool bol = true;
        for (; *s; s++) {
                if (bol && (*s == '.' || *s == '\''))
                        fputs("\\&", stdout);
                if (*s == '\\')
                        fputs("\\e", stdout);
                else if (*s == '-')
                        fputs("\\-", stdout);
                else
                        putchar(*s);
                bol = *s == '\n';
        }
}

void verb_print_help(const struct verb *v, bool man) {
        if (!man) {
                printf("Usage: fame %s %s\n\n%s.\n\n%s", v->full_name, v->usage, v->summary, v->help);
                if (v->sub) {
                        printf("\nVerbs:\n");
                        print_table(v->sub, v->full_name);
                }
                return;
        }
        char upper[64];
        size_t i;
        for (i = 0; v->full_name[i] && i + 1 < sizeof upper; i++)
                upper[i] = v->full_name[i] == ' ' ? '-' : (char) (v->full_name[i] >= 'a' && v->full_name[i] <= 'z' ? v->full_name[i] - 32 : v->full_name[i]);
        upper[i] = 0;
        printf(".TH FAME-%s 1 \"\" \"FAM/E %s\" \"FAM/E Manual\"\n", upper, FAME_VERSION);
        printf(".SH NAME\nfame\\-");
        for (i = 0; v->full_name[i]; i++)
                putchar(v->full_name[i] == ' ' ? '-' : v->full_name[i]);
        printf(" \\- ");
        roff_text(v->summary);
        printf("\n.SH SYNOPSIS\n.B fame %s\n", v->full_name);
        roff_text(v->usage);
        printf("\n.SH DESCRIPTION\n.nf\n");
        roff_text(v->help);
        printf(".fi\n.SH SEE ALSO\n.BR fame (1)\n");
}

static void print_overview(bool man) {
        if (man) {
                printf(".TH FAME 1 \"\" \"FAM/E %s\" \"FAM/E Manual\"\n", FAME_VERSION);
                printf(".SH NAME\nfame \\- Fabric-Attached Memory Emulation\n.SH SYNOPSIS\n.B fame\nVERB [ARGS...]\n");
                printf(".SH DESCRIPTION\n.nf\n");
        } else
                printf("Usage: fame VERB [ARGS...]\n\n");
        printf("FAM/E emulates fabric-attached memory: nodes (QEMU processes, or host processes)\n"
               "share one FAM region through IVSHMEM or its backing file.\n\nVerbs:\n");
        print_table(fame_verbs, "");
        printf("\n'fame help VERB' or 'fame VERB --help' shows the help of one verb.\n");
        if (man)
                printf(".fi\n");
}

int cmd_help(const struct verb *self, int argc, char **argv) {
        static const struct option options[] = {
                { "man", no_argument, NULL, 'm' },
                {}
        };
        struct verb fallback = { .name = "help", .full_name = "help", .usage = "[VERB [SUBVERB]] [--man]" };
        bool man = false, first = true;
        int c;

        if (!self)
                self = &fallback;
        while ((c = verb_getopt(self, argc, argv, "", options, &first)) != -1) {
                if (c == 'm')
                        man = true;
                else
                        return -EINVAL;
        }
        const struct verb *table = fame_verbs, *v = NULL;
        char full[128] = "";
        for (int i = optind; i < argc; i++) {
                if (!argv[i] || !*argv[i])
                        continue;
                v = verb_find(table, argv[i]);
                if (!v)
                        return usage_error(NULL, "no verb '%s%s%s'; 'fame help' lists them", full, *full ? " " : "", argv[i]);
                snprintf(full + strlen(full), sizeof full - strlen(full), "%s%s", *full ? " " : "", v->name);
                table = v->sub;
                if (!table && i + 1 < argc)
                        return usage_error(NULL, "'%s' has no sub-verbs", full);
        }
        if (!v) {
                print_overview(man);
                return 0;
        }
        struct verb copy = *v;
        copy.full_name = full;
        verb_print_help(&copy, man);
        return 0;
}

int cmd_version(const struct verb *v, int argc, char **argv) {
        enum { O_JSON = 0x100 };
        static const struct option options[] = { { "json", no_argument, NULL, O_JSON }, {} };
        bool first = true, json = false;
        int c;

        /* `fame --version` comes without a verb: no options then */
        if (v) {
                while ((c = verb_getopt(v, argc, argv, "", options, &first)) != -1) {
                        if (c != O_JSON)
                                return -EINVAL;
                        json = true;
                }
                int r = verb_check_args(v, argc - optind);
                if (r < 0)
                        return r;
        }
        if (json)
                printf("{\n  \"fame\": \"%s\",\n  \"libfame\": \"%s\",\n  \"fam_format\": \"%d.%d\"\n}\n", FAME_VERSION,
                       fame_version(), FAME_FORMAT_MAJOR, FAME_FORMAT_MINOR);
        else
                printf("fame %s\nlibfame %s\nFAM format %d.%d\n", FAME_VERSION, fame_version(), FAME_FORMAT_MAJOR,
                       FAME_FORMAT_MINOR);
        return 0;
}
