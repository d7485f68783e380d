/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef FAME_VERBS_H
#define FAME_VERBS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

struct verb;
typedef int (*verb_fn)(const struct verb *v, int argc, char **argv);

/* One row of the verb table (kvmtool style).  Nested verbs ("fam create") have sub. */
struct verb {
        const char *name;
        verb_fn fn;
        int min_args, max_args;         /* positional arguments after the options */
        const char *usage;              /* after "fame NAME " */
        const char *summary;            /* one line */
        const char *help;               /* description and options, plain text */
        const struct verb *sub;         /* NULL-terminated table of sub-verbs */
        const char *full_name;          /* "fam create": filled in by the dispatcher */
};

/* Exit codes: the CLI's only place that picks them is main(). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

extern const struct verb fame_verbs[];

/* cmd-help.c: the help of one verb, as text or as a man page (roff). */
void verb_print_help(const struct verb *v, bool man);

/* Options every cluster verb takes (cmd-cluster.c). */
#define CLUSTER_LONGOPTS \
        { "cluster", required_argument, NULL, 'c' }, \
        { "config", required_argument, NULL, 0x200 }, \
        { "set", required_argument, NULL, 0x201 }

struct cluster_opts {
        const char *cluster;
        const char *config_file;
        const char *sets[64];
        size_t n_sets;
};
struct fame_config;
/* Handles -c/--config/--set; returns 1 if the option was one of them, 0 if not, <0 on error. */
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
int cmd_fam_create(const struct verb *v, int argc, char **argv);
int cmd_fam_info(const struct verb *v, int argc, char **argv);
int cmd_fam_dump(const struct verb *v, int argc, char **argv);
int cmd_info(const struct verb *v, int argc, char **argv);
int cmd_bench_fam(const struct verb *v, int argc, char **argv);
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
int cmd_ssh(const struct verb *v, int argc, char **argv);
int cmd_debug_net_switch(const struct verb *v, int argc, char **argv);
int cmd_debug_relay(const struct verb *v, int argc, char **argv);
int cmd_debug_image_populate(const struct verb *v, int argc, char **argv);
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

/* print-geometry.c */
struct fame_geometry;
struct json_object;
void print_geometry(const struct fame_geometry *g);
struct json_object *geometry_to_json(const struct fame_geometry *g);
int print_json(struct json_object *o);

#endif
