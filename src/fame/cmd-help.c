/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame help and fame version.  A verb's help, and its man page, are made from the verb table
 * (verb-table.c): usage, summary and description from the verb's row, the options from its
 * option table (struct verb_options in cmd-*.c), as "Options:" and a section per option group.
 * `fame help --write-man-pages DIR` writes the man pages the build installs: which ones, too,
 * comes from the verb table.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fame-config.h"
#include "fame.h"
#include "verbs.h"

/* The help column: where an option's help begins. */
#define HELP_COLUMN 32

/* Text, as it is or for roff (nroff needs backslashes doubled and leading dots and quotes
 * escaped); bol: at the beginning of a line. */
struct out {
        FILE *f;
        bool roff, bol;
};

static void out_text(struct out *o, const char *s) {
        if (!o->roff) {
                fputs(s, o->f);
                return;
        }
        for (; *s; s++) {
                if (o->bol && (*s == '.' || *s == '\''))
                        fputs("\\&", o->f);
                if (*s == '\\')
                        fputs("\\e", o->f);
                else if (*s == '-')
                        fputs("\\-", o->f);
                else
                        fputc(*s, o->f);
                o->bol = *s == '\n';
        }
}

static void print_table(FILE *f, const struct verb *table, const char *prefix) {
        for (const struct verb *v = table; v->name; v++) {
                char name[64];
                snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? " " : "", v->name);
                if (v->sub) {
                        print_table(f, v->sub, name);
                        continue;
                }
                fprintf(f, "  %-18s %s\n", name, v->summary);
        }
}

/* ---- the options part of a verb's help ---------------------------------------------------- */

/* The option called name in o or the groups it takes in (not a VERB_OPT_SEE row). */
static const struct verb_option *find_option(const struct verb_options *o, const char *name) {
        for (const struct verb_option *p = o->list; p->name || p->group; p++) {
                const struct verb_option *found = NULL;
                if (p->group)
                        found = find_option(p->group, name);
                else if (!(p->flags & VERB_OPT_SEE) && strcmp(p->name, name) == 0)
                        found = p;
                if (found)
                        return found;
        }
        return NULL;
}

static bool row_shown(const struct verb_option *p) {
        return !p->group && (p->help || (p->flags & VERB_OPT_JOIN));
}

/* An option's help, its lines after the first under the first. */
static void print_help_lines(struct out *out, const char *help) {
        char line[256];
        for (const char *h = help; *h; ) {
                size_t len = strcspn(h, "\n");
                snprintf(line, sizeof line, "%*s%.*s\n", h == help ? 0 : HELP_COLUMN, "", (int) len, h);
                out_text(out, line);
                h += len;
                if (*h)
                        h++;
        }
}

/* "  -s, --size SIZE               total size; ...": the table's own options, one a line. */
static void print_option_rows(struct out *out, const struct verb_options *o) {
        char left[160];
        size_t n = 0;

        for (const struct verb_option *p = o->list; p->name || p->group; p++) {
                if (!row_shown(p))
                        continue;
                const struct verb_option *opt = p->flags & VERB_OPT_SEE ? find_option(o, p->name) : p;
                assert(opt);
                bool shows_short = opt->flags & VERB_OPT_SHORT;
                if (n == 0)
                        n = (size_t) snprintf(left, sizeof left, "%s", shows_short ? "  " : "      ");
                else
                        n += (size_t) snprintf(left + n, sizeof left - n, ", ");
                if (shows_short)
                        n += (size_t) snprintf(left + n, sizeof left - n, "-%c, ", opt->key);
                n += (size_t) snprintf(left + n, sizeof left - n, "--%s%s%s", opt->name, opt->arg ? " " : "",
                                       opt->arg ? opt->arg : "");
                if (p->flags & VERB_OPT_JOIN)
                        continue;       /* the next row ends the line */
                /* the help at HELP_COLUMN, or 3 spaces after a longer synopsis */
                snprintf(left + n, sizeof left - n, "%*s", n + 3 > HELP_COLUMN ? 3 : (int) (HELP_COLUMN - n), "");
                out_text(out, left);
                print_help_lines(out, p->help);
                n = 0;
        }
}

/* "\nOptions:\n" and the table's own options, then a section for each group it takes in. */
static void print_options(struct out *out, const struct verb_options *o) {
        bool any = false;
        for (const struct verb_option *p = o->list; p->name || p->group; p++)
                any = any || row_shown(p);
        if (any) {
                out_text(out, "\n");
                if (o->intro)
                        out_text(out, o->intro);
                out_text(out, o->heading ? o->heading : "Options");
                out_text(out, ":\n");
                print_option_rows(out, o);
        }
        for (const struct verb_option *p = o->list; p->name || p->group; p++)
                if (p->group && !(p->flags & VERB_OPT_UNLISTED))
                        print_options(out, p->group);
}

/* Description, options, epilog. */
static void print_help_body(struct out *out, const struct verb *v) {
        out_text(out, v->help);
        if (v->options)
                print_options(out, v->options);
        if (v->epilog) {
                out_text(out, "\n");
                out_text(out, v->epilog);
        }
}

/* ---- help and man page of a verb, and of fame ---------------------------------------------- */

static void print_verb_help(FILE *f, const struct verb *v, bool man) {
        if (!man) {
                struct out out = { .f = f };
                fprintf(f, "Usage: fame %s %s\n\n%s.\n\n", v->full_name, v->usage, v->summary);
                print_help_body(&out, v);
                if (v->sub) {
                        fprintf(f, "\nVerbs:\n");
                        print_table(f, v->sub, v->full_name);
                }
                return;
        }
        char upper[64];
        size_t i;
        for (i = 0; v->full_name[i] && i + 1 < sizeof upper; i++)
                upper[i] = v->full_name[i] == ' ' ? '-' : (char) (v->full_name[i] >= 'a' && v->full_name[i] <= 'z' ? v->full_name[i] - 32 : v->full_name[i]);
        upper[i] = 0;
        fprintf(f, ".TH FAME-%s 1 \"\" \"FAM/E %s\" \"FAM/E Manual\"\n", upper, FAME_VERSION);
        fprintf(f, ".SH NAME\nfame\\-");
        for (i = 0; v->full_name[i]; i++)
                fputc(v->full_name[i] == ' ' ? '-' : v->full_name[i], f);
        fprintf(f, " \\- ");
        out_text(&(struct out) { .f = f, .roff = true, .bol = true }, v->summary);
        fprintf(f, "\n.SH SYNOPSIS\n.B fame %s\n", v->full_name);
        out_text(&(struct out) { .f = f, .roff = true, .bol = true }, v->usage);
        fprintf(f, "\n.SH DESCRIPTION\n.nf\n");
        print_help_body(&(struct out) { .f = f, .roff = true, .bol = true }, v);
        fprintf(f, ".fi\n.SH SEE ALSO\n.BR fame (1)\n");
}

void verb_print_help(const struct verb *v, bool man) {
        print_verb_help(stdout, v, man);
}

static void print_overview(FILE *f, bool man) {
        if (man) {
                fprintf(f, ".TH FAME 1 \"\" \"FAM/E %s\" \"FAM/E Manual\"\n", FAME_VERSION);
                fprintf(f, ".SH NAME\nfame \\- Fabric-Attached Memory Emulation\n.SH SYNOPSIS\n.B fame\nVERB [ARGS...]\n");
                fprintf(f, ".SH DESCRIPTION\n.nf\n");
        } else
                fprintf(f, "Usage: fame VERB [ARGS...]\n\n");
        fprintf(f, "FAM/E emulates fabric-attached memory: nodes (QEMU processes, or host processes)\n"
                   "share one FAM region through IVSHMEM or its backing file.\n\nVerbs:\n");
        print_table(f, fame_verbs, "");
        fprintf(f, "\n'fame help VERB' or 'fame VERB --help' shows the help of one verb.\n");
        if (man)
                fprintf(f, ".fi\n");
}

/* ---- every man page, for the build (man/meson.build) --------------------------------------- */

static int write_page(const char *dir, const char *name, const struct verb *v) {
        char path[PATH_MAX], tmp[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s.1", dir, name);
        snprintf(tmp, sizeof tmp, "%s/.%s.1.tmp", dir, name);
        FILE *f = fopen(tmp, "we");
        if (!f)
                return cli_fail(-errno, "Cannot write '%s': %m", tmp);
        if (v)
                print_verb_help(f, v, true);
        else
                print_overview(f, true);
        bool failed = ferror(f);
        if (fclose(f) != 0 || failed) {
                (void) unlink(tmp);
                return cli_fail(-EIO, "Cannot write '%s'", tmp);
        }
        if (rename(tmp, path) < 0) {
                int r = -errno;
                (void) unlink(tmp);
                return cli_fail(r, "Cannot rename '%s' to '%s': %m", tmp, path);
        }
        return 0;
}

/* fame-VERB.1 for each verb of table with a man page, fame-VERB-SUBVERB.1 for nested ones. */
static int write_pages(const char *dir, const struct verb *table, const char *prefix) {
        for (const struct verb *v = table; v->name; v++) {
                char full[128], name[140];
                int r;

                if (v->no_man_page)
                        continue;
                snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? " " : "", v->name);
                if (v->sub)
                        r = write_pages(dir, v->sub, full);
                else {
                        struct verb copy = *v;
                        copy.full_name = full;
                        snprintf(name, sizeof name, "fame-%s", full);
                        for (char *c = name; *c; c++)
                                if (*c == ' ')
                                        *c = '-';
                        r = write_page(dir, name, &copy);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* fame.1 and a page per verb, in dir, instead of the fame*.1 pages it held. */
static int write_man_pages(const char *dir) {
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return cli_fail(-errno, "Cannot create '%s': %m", dir);
        DIR *d = opendir(dir);
        if (!d)
                return cli_fail(-errno, "Cannot read '%s': %m", dir);
        for (struct dirent *de; (de = readdir(d)); ) {
                size_t len = strlen(de->d_name);
                if (strncmp(de->d_name, "fame", 4) == 0 && len > 6 && strcmp(de->d_name + len - 2, ".1") == 0 &&
                    (de->d_name[4] == '.' || de->d_name[4] == '-'))
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
        int r = write_page(dir, "fame", NULL);
        return r < 0 ? r : write_pages(dir, fame_verbs, "");
}

/* ---- the verbs ----------------------------------------------------------------------------- */

/* --write-man-pages is for the build and not in the help.  It shares no first letter with
 * --man, so every abbreviation of --man still means --man. */
enum { HELP_MAN = 'm', HELP_WRITE_MAN_PAGES = 0x100 };
const struct verb_options help_options = {
        .list = (const struct verb_option[]) {
                { "man", HELP_MAN, NULL, "print the help as a man page (roff)" },
                { "write-man-pages", HELP_WRITE_MAN_PAGES, "DIR", NULL },
                {}
        },
};

int cmd_help(const struct verb *self, int argc, char **argv) {
        struct verb fallback = { .name = "help", .full_name = "help", .usage = "[VERB [SUBVERB]] [--man]", .max_args = -1,
                                 .options = &help_options };
        const char *man_dir = NULL;
        bool man = false, first = true;
        int c;

        if (!self)
                self = &fallback;
        while ((c = verb_getopt(self, argc, argv, &first)) != -1) {
                if (c == HELP_MAN)
                        man = true;
                else if (c == HELP_WRITE_MAN_PAGES)
                        man_dir = optarg;
                else
                        return -EINVAL;
        }
        if (man_dir) {
                if (optind < argc)
                        return cli_usage_error(self, "--write-man-pages DIR writes every page; name no verb");
                return write_man_pages(man_dir);
        }
        const struct verb *table = fame_verbs, *v = NULL;
        char full[128] = "";
        for (int i = optind; i < argc; i++) {
                if (!argv[i] || !*argv[i])
                        continue;
                v = verb_find(table, argv[i]);
                if (!v)
                        return cli_usage_error(NULL, "no verb '%s%s%s'; 'fame help' lists them", full, *full ? " " : "", argv[i]);
                snprintf(full + strlen(full), sizeof full - strlen(full), "%s%s", *full ? " " : "", v->name);
                table = v->sub;
                if (!table && i + 1 < argc)
                        return cli_usage_error(NULL, "'%s' has no sub-verbs", full);
        }
        if (!v) {
                print_overview(stdout, man);
                return 0;
        }
        struct verb copy = *v;
        copy.full_name = full;
        verb_print_help(&copy, man);
        return 0;
}

const struct verb_options version_options = {
        .list = (const struct verb_option[]) {
                { "json", VERB_JSON, NULL, "machine-readable output" },
                {}
        },
};

int cmd_version(const struct verb *v, int argc, char **argv) {
        bool first = true, json = false;
        int c;

        /* `fame --version` comes without a verb: no options then */
        if (v) {
                while ((c = verb_getopt_json(v, argc, argv, &first, &json)) != -1)
                        return -EINVAL;
        }
        if (json)
                printf("{\n  \"fame\": \"%s\",\n  \"libfame\": \"%s\",\n  \"fam_format\": \"%d.%d\"\n}\n", FAME_VERSION,
                       fame_version(), FAME_FORMAT_MAJOR, FAME_FORMAT_MINOR);
        else
                printf("fame %s\nlibfame %s\nFAM format %d.%d\n", FAME_VERSION, fame_version(), FAME_FORMAT_MAJOR,
                       FAME_FORMAT_MINOR);
        return 0;
}
