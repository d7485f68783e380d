/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The verb table (verb-table.c) and what it is made of: a row per verb (kvmtool style) with
 * its help, and per verb one option table (struct verb_options, next to the verb's code in
 * cmd-*.c).  verb_getopt() (cli.c) makes getopt_long's arguments from the option table, and
 * cmd-help.c the "Options:" part of the help and of the man page: each option is declared once.
 */
#ifndef FAME_VERBS_H
#define FAME_VERBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

struct verb_options;

/* One option: its row in an option table. */
struct verb_option {
        const char *name;               /* --NAME */
        int key;                        /* what verb_getopt() returns for it; a letter for -KEY */
        const char *arg;                /* its value's name in the help ("SIZE"); NULL: no value */
        const char *help;               /* its help; after a '\n' it goes on under the first line;
                                         * NULL: not in the help */
        unsigned flags;                 /* VERB_OPT_* */
        const struct verb_options *group; /* a row that takes in a group of options (name NULL) */
};

enum {
        VERB_OPT_SHORT = 1 << 0,        /* -KEY works too, and the help shows it */
        VERB_OPT_SEE = 1 << 2,          /* only a help line, for the option called name in a group
                                         * this table takes in (in this table's words) */
        VERB_OPT_JOIN = 1 << 3,         /* shares the next row's help line: "--config FILE, --set" */
        VERB_OPT_UNLISTED = 1 << 4,     /* a group row whose options get no section of their own */
};

/* A verb's options, or a group of options that several verbs take in (the cluster options).
 * In the help, a table's own options come under its heading, then each group it takes in
 * under the group's heading. */
struct verb_options {
        const char *intro;              /* a paragraph before the heading, or NULL */
        const char *heading;            /* NULL: "Options" */
        bool in_order;                  /* '+' in getopt's short options (exec, ssh; see cli.c) */
        const struct verb_option *list; /* ends with {} */
};

struct verb;
typedef int (*verb_fn)(const struct verb *v, int argc, char **argv);

/* One row of the verb table (kvmtool style).  Nested verbs ("fam create") have sub. */
struct verb {
        const char *name;
        verb_fn fn;
        int min_args, max_args;         /* positional arguments after the options */
        const char *usage;              /* after "fame NAME " */
        const char *summary;            /* one line */
        const char *help;               /* the description, plain text */
        const struct verb_options *options; /* NULL: none */
        const char *epilog;             /* plain text after the options, or NULL */
        const struct verb *sub;         /* NULL-terminated table of sub-verbs */
        bool no_man_page;               /* not installed as a man page, nor are its sub-verbs */
        const char *full_name;          /* "fam create": filled in by the dispatcher */
};

/* Exit codes: the CLI's only place that picks them is main(). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

extern const struct verb fame_verbs[];

/* cmd-help.c: the help of one verb, as text or as a man page (roff). */
void verb_print_help(const struct verb *v, bool man);

/* The option tables of the verbs (cmd-*.c). */
extern const struct verb_options cluster_options;       /* every cluster verb's (a group) */
extern const struct verb_options shelf_options;         /* every shelf verb's (a group) */
extern const struct verb_options fam_create_options, fam_info_options, fam_dump_options;
extern const struct verb_options bench_fam_options, bench_lfs_options, info_options, node_setup_options;
extern const struct verb_options help_options, version_options;
extern const struct verb_options up_options, cluster_json_options, logs_options, exec_options;
extern const struct verb_options cp_options, debug_node_options, image_build_options, image_prune_options, ssh_options;
extern const struct verb_options shelf_create_options, crash_options, check_report_options;

struct cluster_opts {
        const char *cluster;
        const char *config_file;
        const char *sets[64];
        size_t n_sets;
};
struct fame_config;
/* Handles the cluster options; returns 1 if the option was one of them, 0 if not, <0 on error. */
int cluster_opt(const struct verb *v, int c, struct cluster_opts *o);
/* defaults < config file < --set/options.  extra: more KEY=VALUE from verb options. */
int load_config(const struct cluster_opts *o, const char *const *extra, struct fame_config *c);

/* cmd-*.c */
int cmd_shelf_ls(const struct verb *v, int argc, char **argv);
int cmd_shelf_create(const struct verb *v, int argc, char **argv);
int cmd_shelf_mkdir(const struct verb *v, int argc, char **argv);
int cmd_shelf_resize(const struct verb *v, int argc, char **argv);
int cmd_shelf_rm(const struct verb *v, int argc, char **argv);
int cmd_shelf_info(const struct verb *v, int argc, char **argv);
int cmd_shelf_mv(const struct verb *v, int argc, char **argv);
int cmd_shelf_fill(const struct verb *v, int argc, char **argv);
int cmd_shelf_checksum(const struct verb *v, int argc, char **argv);
int cmd_librarian(const struct verb *v, int argc, char **argv);
int cmd_lmp_serve(const struct verb *v, int argc, char **argv);
int cmd_fam_create(const struct verb *v, int argc, char **argv);
int cmd_fam_info(const struct verb *v, int argc, char **argv);
int cmd_fam_dump(const struct verb *v, int argc, char **argv);
int cmd_info(const struct verb *v, int argc, char **argv);
int cmd_bench_fam(const struct verb *v, int argc, char **argv);
int cmd_bench_lfs(const struct verb *v, int argc, char **argv);
int cmd_help(const struct verb *v, int argc, char **argv);
int cmd_up(const struct verb *v, int argc, char **argv);
int cmd_down(const struct verb *v, int argc, char **argv);
int cmd_status(const struct verb *v, int argc, char **argv);
int cmd_config(const struct verb *v, int argc, char **argv);
int cmd_kill(const struct verb *v, int argc, char **argv);
int cmd_start(const struct verb *v, int argc, char **argv);
int cmd_logs(const struct verb *v, int argc, char **argv);
int cmd_console(const struct verb *v, int argc, char **argv);
int cmd_exec(const struct verb *v, int argc, char **argv);
int cmd_cp(const struct verb *v, int argc, char **argv);
int cmd_image_build(const struct verb *v, int argc, char **argv);
int cmd_image_prune(const struct verb *v, int argc, char **argv);
int cmd_ssh(const struct verb *v, int argc, char **argv);
int cmd_debug_net_switch(const struct verb *v, int argc, char **argv);
int cmd_debug_agents(const struct verb *v, int argc, char **argv);
int cmd_debug_relay(const struct verb *v, int argc, char **argv);
int cmd_debug_image_populate(const struct verb *v, int argc, char **argv);
int cmd_debug_debian_arm_unpacked(const struct verb *v, int argc, char **argv);
int cmd_debug_qemu_args(const struct verb *v, int argc, char **argv);
int cmd_debug_domain_xml(const struct verb *v, int argc, char **argv);
int cmd_libvirt_export(const struct verb *v, int argc, char **argv);
int cmd_node_join(const struct verb *v, int argc, char **argv);
int cmd_node_setup(const struct verb *v, int argc, char **argv);
int cmd_node_slots(const struct verb *v, int argc, char **argv);
int cmd_node_fetch_add(const struct verb *v, int argc, char **argv);
int cmd_node_fill(const struct verb *v, int argc, char **argv);
int cmd_node_checksum(const struct verb *v, int argc, char **argv);
int cmd_node_memcpy_bench(const struct verb *v, int argc, char **argv);
int cmd_version(const struct verb *v, int argc, char **argv);
int cmd_check_report(const struct verb *v, int argc, char **argv);

/* print-geometry.c */
struct fame_geometry;
struct json_object;
void print_geometry(const struct fame_geometry *g);
struct json_object *geometry_to_json(const struct fame_geometry *g);
int print_json(struct json_object *o);

#endif
