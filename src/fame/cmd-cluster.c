/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cluster verbs: parse options, load the configuration, call src/cluster. */
#include <dirent.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent-keeper.h"
#include "backend.h"
#include "cli.h"
#include "cluster.h"
#include "config.h"
#include "fame.h"
#include "image.h"
#include "image-debian-arm.h"
#include "log.h"
#include "net.h"
#include "plan.h"
#include "util.h"
#include "verbs.h"


enum { CLUSTER_CONFIG = 0x200, CLUSTER_SET };
const struct verb_options cluster_options = {
        .heading = "Cluster options (every cluster verb)",
        .list = (const struct verb_option[]) {
                { "cluster", 'c', "NAME", "the cluster (default \"default\"; several live side by side)", VERB_OPT_SHORT },
                { "config", CLUSTER_CONFIG, "FILE", "the configuration file (default $FAME_CONFIG, else\n"
                                                    "~/.config/fame/NAME.conf if it exists); see docs/config.md" },
                { "set", CLUSTER_SET, "KEY=VALUE", "override one configuration key (repeatable)" },
                {}
        },
};

/* Handles -c/--config/--set; returns 1 if the option was one of them, 0 if not, <0 on error. */
int cluster_opt(const struct verb *v, int c, struct cluster_opts *o) {
        switch (c) {
        case 'c':
                if (!*optarg)
                        return cli_usage_error(v, "-c/--cluster '': the cluster name is empty; give a name, "
                                               "or leave the option out for the cluster \"default\"");
                o->cluster = optarg;
                return 1;
        case CLUSTER_CONFIG:
                o->config_file = optarg;
                return 1;
        case CLUSTER_SET:
                if (o->n_sets >= ELEMENTSOF(o->sets))
                        return cli_usage_error(v, "too many --set options");
                if (!strchr(optarg, '='))
                        return cli_usage_error(v, "--set '%s' is not KEY=VALUE", optarg);
                o->sets[o->n_sets++] = optarg;
                return 1;
        }
        return 0;
}

/* defaults < config file < --set/options.  extra: more KEY=VALUE from verb options. */
int load_config(const struct cluster_opts *o, const char *const *extra, struct fame_config *c) {
        const char *file = o->config_file;
        _cleanup_free_ char *def = NULL;
        int r;

        const char *cluster = o->cluster ? o->cluster : getenv("FAME_CLUSTER_NAME");
        r = config_init(c, cluster && *cluster ? cluster : NULL);
        if (r < 0)
                return r;
        if (!file) {
                const char *env = getenv("FAME_CONFIG");
                if (env && *env)
                        file = env;
        }
        if (!file) {
                def = config_default_path(c->name);
                if (def && access(def, F_OK) == 0)
                        file = def;
        }
        if (file) {
                r = config_load_file(c, file);
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; i < o->n_sets; i++) {
                char key[128];
                const char *eq = strchr(o->sets[i], '=');
                snprintf(key, sizeof key, "%.*s", (int) (eq - o->sets[i]), o->sets[i]);
                r = config_set(c, key, eq + 1, "command line");
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; extra && extra[i]; i += 2) {
                r = config_set(c, extra[i], extra[i + 1], "command line");
                if (r < 0)
                        goto fail;
        }
        config_size_fam(c);
        r = config_check(c);
        if (r < 0)
                goto fail;
        return 0;
fail:
        config_done(c);
        return r;
}

/* What the cluster verbs found or did, as text or JSON (--json). */

static void put_json(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
        json_object_put(o);
}

static const char *node_accel(const struct cluster_plan *p, const struct node_plan *n) {
        return plan_node_kvm(p, n) ? "kvm" : "tcg";
}

/* The management view's address, or JSON null when the Librarian serves none. */
static json_object *lmp_url(const struct cluster_plan *p) {
        char url[64];
        if (!p->lmp_port)
                return NULL;
        snprintf(url, sizeof url, "http://127.0.0.1:%u/", p->lmp_port);
        return json_object_new_string(url);
}

static void print_up(const struct cluster_up_result *u, bool json) {
        const struct cluster_plan *p = &u->plan;
        if (json) {
                json_object *out = json_object_new_object(), *nodes = json_object_new_array();
                json_object_object_add(out, "cluster", json_object_new_string(p->name));
                json_object_object_add(out, "accel", json_object_new_string(accel_to_string(p->accel)));
                json_object_object_add(out, "backend", json_object_new_string(backend_to_string(p->backend)));
                json_object_object_add(out, "seconds", json_object_new_double(u->seconds));
                json_object_object_add(out, "down", json_object_new_int((int) u->down));
                json_object_object_add(out, "librarian_port", json_object_new_int(p->librarian_port));
                json_object_object_add(out, "lmp_url", lmp_url(p));
                for (uint32_t i = 0; i < p->nodes; i++) {
                        json_object *n = json_object_new_object();
                        json_object_object_add(n, "name", json_object_new_string(p->node[i].name));
                        json_object_object_add(n, "pid", json_object_new_int(u->node[i].pid));
                        json_object_object_add(n, "ready", json_object_new_boolean(u->node[i].ready));
                        json_object_object_add(n, "boots", json_object_new_int((int) u->node[i].attempts));
                        json_object_object_add(n, "ready_seconds", json_object_new_double(u->node[i].ready_seconds));
                        json_object_array_add(nodes, n);
                }
                json_object_object_add(out, "nodes", nodes);
                put_json(out);
                return;
        }
        printf("%-8s %8s  %-7s  %-5s  %-8s %8s\n", "NODE", "PID", "ARCH", "ACCEL", "STATE", "READY");
        for (uint32_t i = 0; i < p->nodes; i++) {
                const struct node_plan *n = &p->node[i];
                pid_t pid = u->node[i].pid;
                printf("%-8s %8d  %-7s  %-5s  %-8s %7.2fs\n", n->name, (int) pid, arch_to_string(n->arch), node_accel(p, n),
                       u->node[i].ready ? "ready" : pid ? "running" : "down", u->node[i].ready_seconds);
        }
        char sz[32];
        if (u->down)
                printf("%" PRIu32 " of %" PRIu32 " nodes ready in %.2fs on FAM %s (%s); %" PRIu32 " down (see above; fame start NODE)\n",
                       p->nodes - u->down, p->nodes, u->seconds, p->fam_path, format_bytes(p->fam_size, sz, sizeof sz), u->down);
        else
                printf("%" PRIu32 " node%s ready in %.2fs on FAM %s (%s)\n", p->nodes, p->nodes == 1 ? "" : "s", u->seconds,
                       p->fam_path, format_bytes(p->fam_size, sz, sizeof sz));
        if (p->librarian_port)
                printf("Librarian on 127.0.0.1:%u, torms:%u in the nodes (fame shelf ls)\n", p->librarian_port,
                       FAME_LIBRARIAN_PORT);
        if (p->lmp_port)
                printf("The Machine and its FAM: http://127.0.0.1:%u/ (tm-lmp's API under /lmp/)\n", p->lmp_port);
        if (p->backend == FAME_BACKEND_LIBVIRT)
                printf("libvirt domains fame-%s-node01..%02" PRIu32 " at %s (virsh -c %s list)\n", p->name, p->nodes,
                       p->libvirt_uri, p->libvirt_uri);
}

static void print_status_json(const struct fame_config *c, const struct cluster_status *st) {
        const struct cluster_plan *p = &st->plan;
        json_object *o = json_object_new_object(), *nodes = json_object_new_array();

        if (!st->started) {
                json_object_object_add(o, "cluster", json_object_new_string(c->name));
                json_object_object_add(o, "state", json_object_new_string("never started"));
                json_object_object_add(o, "nodes", nodes);
                put_json(o);
                return;
        }
        for (uint32_t i = 0; i < p->nodes; i++) {
                const struct node_plan *n = &p->node[i];
                json_object *no = json_object_new_object();
                json_object_object_add(no, "name", json_object_new_string(n->name));
                json_object_object_add(no, "id", json_object_new_uint64(n->id));
                json_object_object_add(no, "pid", json_object_new_int(st->node[i].pid));
                json_object_object_add(no, "state", json_object_new_string(st->node[i].state));
                json_object_object_add(no, "joins", json_object_new_uint64(st->node[i].joins));
                json_object_object_add(no, "arch", json_object_new_string(arch_to_string(n->arch)));
                json_object_object_add(no, "accel", json_object_new_string(node_accel(p, n)));
                json_object_object_add(no, "memory", json_object_new_uint64(n->memory));
                json_object_object_add(no, "console_log", json_object_new_string(n->console_log));
                if (p->check != FAME_CHECK_OFF)
                        json_object_object_add(no, "check_findings",
                                               st->check_known ? json_object_new_uint64(st->node[i].check_findings) : NULL);
                if (p->backend == FAME_BACKEND_LIBVIRT) {
                        char dom[128];
                        domain_name(p, n, dom, sizeof dom);
                        json_object_object_add(no, "domain", json_object_new_string(dom));
                }
                if (p->kind == FAME_KIND_DEBIAN) {
                        json_object_object_add(no, "ssh_port", json_object_new_int(n->ssh_port));
                        json_object_object_add(no, "ssh", json_object_new_boolean(st->node[i].ssh));
                        json_object_object_add(no, "disk", json_object_new_string(n->disk));
                }
                json_object_array_add(nodes, no);
        }
        json_object_object_add(o, "cluster", json_object_new_string(p->name));
        json_object_object_add(o, "state", json_object_new_string(st->running == 0 ? "down" : st->ready == (int) p->nodes ? "up" : "degraded"));
        json_object_object_add(o, "accel", json_object_new_string(accel_to_string(p->accel)));
        json_object_object_add(o, "kind", json_object_new_string(kind_to_string(p->kind)));
        json_object_object_add(o, "check", json_object_new_string(check_to_string(p->check)));
        json_object_object_add(o, "backend", json_object_new_string(backend_to_string(p->backend)));
        if (p->backend == FAME_BACKEND_LIBVIRT)
                json_object_object_add(o, "libvirt_uri", json_object_new_string(p->libvirt_uri));
        json_object_object_add(o, "switch_pid", json_object_new_int(st->switch_pid));
        json_object *lib = json_object_new_object();
        json_object_object_add(lib, "pid", json_object_new_int(st->librarian_pid));
        json_object_object_add(lib, "port", json_object_new_int(st->librarian_pid ? p->librarian_port : 0));
        json_object_object_add(lib, "db", json_object_new_string(p->librarian_dir));
        json_object_object_add(lib, "lmp_url", st->librarian_pid ? lmp_url(p) : NULL);
        json_object_object_add(o, "librarian", lib);
        json_object_object_add(o, "fam", json_object_new_string(p->fam_path));
        json_object_object_add(o, "fam_size", json_object_new_uint64(p->fam_size));
        json_object_object_add(o, "running", json_object_new_int(st->running));
        json_object_object_add(o, "ready", json_object_new_int(st->ready));
        json_object_object_add(o, "nodes", nodes);
        put_json(o);
}

static void print_status(const struct fame_config *c, const struct cluster_status *st) {
        const struct cluster_plan *p = &st->plan;
        bool debian = p->kind == FAME_KIND_DEBIAN, check = p->check != FAME_CHECK_OFF;

        if (!st->started) {
                printf("Cluster '%s' has never been started; 'fame up' starts it\n", c->name);
                return;
        }
        printf("%-8s %8s  %-7s  %-5s  %-8s %8s  ", "NODE", "PID", "ARCH", "ACCEL", "STATE", "JOINS");
        if (check)
                printf("%8s  ", "FINDINGS");
        if (debian)
                printf("%-15s  ", "SSH");
        printf("%s\n", "CONSOLE");
        for (uint32_t i = 0; i < p->nodes; i++) {
                const struct node_plan *n = &p->node[i];
                printf("%-8s %8d  %-7s  %-5s  %-8s %8" PRIu64 "  ", n->name, (int) st->node[i].pid, arch_to_string(n->arch),
                       node_accel(p, n), st->node[i].state, st->node[i].joins);
                if (check && st->check_known)
                        printf("%8" PRIu64 "  ", st->node[i].check_findings);
                else if (check)
                        printf("%8s  ", "-");
                if (debian) {
                        char ssh[32];
                        snprintf(ssh, sizeof ssh, "127.0.0.1:%u", n->ssh_port);
                        printf("%-15s  ", ssh);
                }
                printf("%s\n", n->console_log);
        }
        printf("cluster '%s': %d of %" PRIu32 " nodes running, %d ready; FAM %s\n", p->name, st->running, p->nodes, st->ready, p->fam_path);
        if (p->backend == FAME_BACKEND_LIBVIRT)
                printf("libvirt: %s, domains fame-%s-node01..%02" PRIu32 "\n", p->libvirt_uri, p->name, p->nodes);
        if (st->librarian_pid)
                printf("librarian: pid %d, 127.0.0.1:%u for the host, torms:%u in the nodes; %s\n", (int) st->librarian_pid,
                       p->librarian_port, FAME_LIBRARIAN_PORT, p->librarian_dir);
        if (st->librarian_pid && p->lmp_port)
                printf("the Machine and its FAM: http://127.0.0.1:%u/\n", p->lmp_port);
        else
                printf("librarian: not running\n");
        if (check)
                printf("checker: %s%s; 'fame check report' lists the findings\n", check_to_string(p->check),
                       st->check_known ? "" : " (its findings cannot be read)");
}

static void print_image(const char *kind, const struct image *img, void *userdata) {
        (void) userdata;
        printf("%-8s  %s  kernel %s  %s%s\n", kind, img->key, img->kernel_release, img->base ? img->base : img->initrd,
               img->built ? "" : "  (cached)");
}

static void print_line(const char *line, void *userdata) {
        (void) userdata;
        printf("%s\n", line);
}

enum { O_ADD = 0x100, O_ACCEL, O_KIND, O_RESET, O_BACKEND, O_ARCH, O_CHECK, O_FAM_SIZE };
const struct verb_options up_options = {
        .list = (const struct verb_option[]) {
                { "nodes", 'n', "N", "number of nodes (the nodes key)", VERB_OPT_SHORT },
                { "fam-size", O_FAM_SIZE, "SIZE", "size of a new FAM (the fam_size key; by default 1G, or\n"
                                                  "what the nodes need when that is more)" },
                { "kind", O_KIND, "diskless|debian", "the kind key" },
                { "accel", O_ACCEL, "auto|kvm|tcg", "the accel key" },
                { "backend", O_BACKEND, "qemu|libvirt", "the backend key: fame's own QEMU processes, or libvirt domains" },
                { "arch", O_ARCH, "x86_64|aarch64", "the arch key (nodeNN.arch sets one node's: mixed clusters)" },
                { "check", O_CHECK, NULL, "run the coherence and crash checker in every node (check =\n"
                                          "coherence; TCG only): see fame check report, fame kill --crash" },
                { "reset", O_RESET, NULL, "debian: give every node a new disk from the current image\n"
                                           "(what was changed inside the nodes is lost; keys are kept)" },
                { "add", O_ADD, "HOSTPATH:NODEPATH", "put a host file or directory into every node's image" },
                { "json", VERB_JSON, NULL, "print the result as JSON" },
                { .group = &cluster_options },
                {}
        },
};

int cmd_up(const struct verb *v, int argc, char **argv) {
        struct cluster_opts o = { 0 };
        const char *extra[32] = { 0 }, *adds[65] = { 0 };
        size_t n_extra = 0, n_adds = 0;
        bool first = true, json = false, reset = false;
        struct fame_config c;
        int ch, r;

        while ((ch = verb_getopt_json(v, argc, argv, &first, &json)) != -1) {
                r = cluster_opt(v, ch, &o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                /* the options that stand for a configuration key: KEY=VALUE */
                const char *key = ch == 'n' ? "nodes" : ch == O_ACCEL ? "accel" : ch == O_KIND ? "kind" :
                                  ch == O_BACKEND ? "backend" : ch == O_ARCH ? "arch" : ch == O_CHECK ? "check" :
                                  ch == O_FAM_SIZE ? "fam_size" : NULL;
                if (key) {
                        if (n_extra + 2 >= ELEMENTSOF(extra))
                                return cli_usage_error(v, "too many options");
                        extra[n_extra++] = key;
                        extra[n_extra++] = ch == O_CHECK ? "coherence" : optarg;
                        continue;
                }
                switch (ch) {
                case O_RESET:
                        reset = true;
                        break;
                case O_ADD:
                        if (n_adds >= 64)
                                return cli_usage_error(v, "too many --add options");
                        if (!strchr(optarg, ':') || strchr(optarg, ':')[1] != '/')
                                return cli_usage_error(v, "--add '%s' is not HOSTPATH:/NODEPATH", optarg);
                        adds[n_adds++] = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        }
        r = load_config(&o, extra, &c);
        if (r < 0)
                return r;
        if (n_adds && c.kind == FAME_KIND_DEBIAN) {
                config_done(&c);
                return cli_usage_error(v, "--add works for diskless nodes; copy files into Debian nodes with 'fame cp' or scp");
        }
        struct up_options uo = { .adds = n_adds ? adds : NULL, .reset = reset };
        struct cluster_up_result u;
        r = cluster_up(&c, &uo, &u);
        if (r >= 0)
                print_up(&u, json);
        plan_done(&u.plan);
        config_done(&c);
        /* the cluster is up, but not all of it: say so in the exit status */
        return r < 0 ? r : u.down ? EXIT_FAIL : 0;
}

/* The options of status and config, and of logs. */
const struct verb_options cluster_json_options = {
        .list = (const struct verb_option[]) {
                { "json", 'j', NULL, "machine-readable output" },
                { .group = &cluster_options },
                {}
        },
};
const struct verb_options logs_options = {
        .list = (const struct verb_option[]) {
                { "follow", 'f', NULL, "keep printing while the node runs", VERB_OPT_SHORT },
                { .group = &cluster_options },
                {}
        },
};

enum { O_CRASH = 0x180 };
/* The options of kill and down. */
const struct verb_options crash_options = {
        .list = (const struct verb_option[]) {
                { "crash", O_CRASH, NULL, "a power loss (a cluster started with --check): stop the QEMU at\n"
                                          "once, and the lines not written back return to their last\n"
                                          "written-back content (docs/check.md)" },
                { .group = &cluster_options },
                {}
        },
};

/* Verbs whose only options are the cluster ones, plus perhaps a flag (--json, --follow, --crash). */
static int simple_verb(const struct verb *v, int argc, char **argv, bool *ret_flag, struct fame_config *c) {
        struct cluster_opts o = { 0 };
        bool first = true;
        int ch, r;

        if (ret_flag)
                *ret_flag = false;
        while ((ch = verb_getopt(v, argc, argv, &first)) != -1) {
                r = cluster_opt(v, ch, &o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if ((ch == 'j' || ch == 'f' || ch == O_CRASH) && ret_flag)
                        *ret_flag = true;
                else
                        return -EINVAL;
        }
        return load_config(&o, NULL, c);
}

/* The verbs that only take cluster options, a flag and maybe a node. */
static int with_config(const struct verb *v, int argc, char **argv,
                       int (*fn)(const struct fame_config *c, const char *node, bool flag)) {
        struct fame_config c;
        bool set;
        int r = simple_verb(v, argc, argv, &set, &c);
        if (r < 0)
                return r;
        r = fn(&c, v->min_args > 0 ? argv[optind] : NULL, set);
        config_done(&c);
        return r < 0 ? r : 0;
}

/* What a crash did to a node, as the checker says it. */
static void print_crash(const char *name, bool check_told, uint64_t restored) {
        if (!check_told)
                printf("%s: power lost (the checker's state was not updated)\n", name);
        else
                printf("%s: power lost; %" PRIu64 " line%s it had not written back %s back to %s last written-back content\n", name,
                       restored, restored == 1 ? "" : "s", restored == 1 ? "is" : "are", restored == 1 ? "its" : "their");
}

static int do_down(const struct fame_config *c, const char *node, bool crash) {
        struct cluster_down_result d;
        (void) node;
        int r = cluster_down(c, crash, &d);
        for (uint32_t i = 0; i < d.plan.nodes; i++)
                if (d.crashed[i])
                        print_crash(d.plan.node[i].name, d.check_told, d.restored[i]);
        if (r >= 0)
                printf("Cluster '%s' is down (%d node%s stopped); FAM kept in %s\n", d.plan.name, d.stopped, d.stopped == 1 ? "" : "s",
                       d.plan.fam_path);
        plan_done(&d.plan);
        return r;
}
static int do_status(const struct fame_config *c, const char *node, bool json) {
        struct cluster_status st;
        (void) node;
        int r = cluster_status(c, json, &st);
        if (r >= 0) {
                if (json)
                        print_status_json(c, &st);
                else
                        print_status(c, &st);
        }
        plan_done(&st.plan);
        return r;
}
static int do_config(const struct fame_config *c, const char *node, bool json) { (void) node; return config_print(c, stdout, json); }
static int do_kill(const struct fame_config *c, const char *node, bool crash) {
        struct cluster_node_result k;
        int r = cluster_kill_node(c, node, crash, &k);
        if (r >= 0 && k.crashed)
                print_crash(k.name, k.check_told, k.restored);
        else if (r >= 0)
                printf("%s stopped\n", k.name);
        return r;
}
static int do_start(const struct fame_config *c, const char *node, bool flag) {
        struct cluster_node_result s;
        (void) flag;
        int r = cluster_start_node(c, node, &s);
        if (r >= 0)
                printf("%s ready in %.2fs\n", s.name, s.ready_seconds);
        return r;
}
static int do_logs(const struct fame_config *c, const char *node, bool follow) { return cluster_logs(c, node, follow, STDOUT_FILENO); }
static int do_console(const struct fame_config *c, const char *node, bool flag) {
        (void) flag;
        return cluster_console(c, node, STDIN_FILENO, STDOUT_FILENO);
}

int cmd_down(const struct verb *v, int argc, char **argv) { return with_config(v, argc, argv, do_down); }
int cmd_status(const struct verb *v, int argc, char **argv) { return with_config(v, argc, argv, do_status); }
int cmd_config(const struct verb *v, int argc, char **argv) { return with_config(v, argc, argv, do_config); }
int cmd_kill(const struct verb *v, int argc, char **argv) { return with_config(v, argc, argv, do_kill); }
int cmd_start(const struct verb *v, int argc, char **argv) { return with_config(v, argc, argv, do_start); }
int cmd_logs(const struct verb *v, int argc, char **argv) { return with_config(v, argc, argv, do_logs); }
int cmd_console(const struct verb *v, int argc, char **argv) { return with_config(v, argc, argv, do_console); }

const struct verb_options exec_options = {
        .in_order = true,
        .list = (const struct verb_option[]) {
                { "all", 'a', NULL, "every node", VERB_OPT_SHORT },
                { "timeout", 't', "S", "give up after S seconds (default 600)" },
                { .group = &cluster_options },
                {}
        },
};

/* fame exec [--all | NODE] [--timeout S] -- CMD ARGS... */
int cmd_exec(const struct verb *v, int argc, char **argv) {
        struct cluster_opts o = { 0 };
        bool first = true, all = false;
        uint32_t timeout = 600;
        struct fame_config c;
        int ch, r;

        /* Options end at the node name or "--": the command's own options are not ours. */
        while ((ch = verb_getopt(v, argc, argv, &first)) != -1) {
                r = cluster_opt(v, ch, &o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (ch == 'a')
                        all = true;
                else if (ch == 't') {
                        if (parse_uint32(optarg, 1, 86400, &timeout) < 0)
                                return cli_usage_error(v, "--timeout '%s' is not a number of seconds", optarg);
                } else
                        return -EINVAL;
        }
        const char *node = NULL;
        if (!all) {
                if (optind >= argc || strcmp(argv[optind], "--") == 0)
                        return cli_usage_error(v, "name a node or --all (usage: fame exec NODE|--all -- CMD ARGS...)");
                node = argv[optind++];
        }
        if (optind < argc && strcmp(argv[optind], "--") == 0)
                optind++;
        if (optind >= argc)
                return cli_usage_error(v, "no command to run (usage: fame exec NODE|--all -- CMD ARGS...)");
        r = load_config(&o, NULL, &c);
        if (r < 0)
                return r;
        r = cluster_exec(&c, node, argv + optind, (int) timeout, STDOUT_FILENO, STDERR_FILENO);
        config_done(&c);
        return r;
}

/* Prints s with the state directory replaced by @STATE@. */
static void put_replacing(const char *s, const char *state_dir) {
        size_t sl = strlen(state_dir);
        const char *hit;
        while ((hit = strstr(s, state_dir))) {
                fwrite(s, 1, (size_t) (hit - s), stdout);
                fputs("@STATE@", stdout);
                s = hit + sl;
        }
        puts(s);
}

/* --node and --accel: in the usage line, not under Options */
const struct verb_options debug_node_options = {
        .list = (const struct verb_option[]) {
                { "node", 'N', "N", NULL },
                { "accel", 'A', "kvm|tcg", NULL },
                { .group = &cluster_options },
                {}
        },
};

/* fame debug qemu-args and domain-xml: a node's QEMU command line (one argument per line) or
 * libvirt domain XML, with placeholders for paths (golden tests). */
static int debug_node(const struct verb *v, int argc, char **argv, bool xml) {
        struct cluster_opts o = { 0 };
        bool first = true;
        uint32_t node = 1;
        const char *accel = "tcg";
        struct fame_config c;
        struct cluster_plan p;
        int ch, r;

        while ((ch = verb_getopt(v, argc, argv, &first)) != -1) {
                r = cluster_opt(v, ch, &o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (ch == 'N') {
                        if (parse_uint32(optarg, 1, FAME_MAX_NODES, &node) < 0)
                                return cli_usage_error(v, "--node '%s' is not a node number", optarg);
                } else if (ch == 'A') {
                        if (strcmp(optarg, "kvm") != 0 && strcmp(optarg, "tcg") != 0)
                                return cli_usage_error(v, "--accel '%s' is not kvm or tcg", optarg);
                        accel = optarg;
                } else
                        return -EINVAL;
        }
        r = load_config(&o, NULL, &c);
        if (r < 0)
                return r;
        if (node > c.nodes) {
                uint32_t nodes = c.nodes;
                config_done(&c);
                return cli_usage_error(v, "--node %" PRIu32 " but the cluster has %" PRIu32 " nodes", node, nodes);
        }
        struct image img = { .kernel = (char *) "@KERNEL@", .initrd = (char *) "@INITRD@", .dir = (char *) "@IMAGE@",
                             .base = (char *) "@IMAGE@/base.qcow2" };
        struct image img_arm = { .kernel = (char *) "@KERNEL_AARCH64@", .initrd = (char *) "@INITRD_AARCH64@",
                                 .dir = (char *) "@IMAGE_AARCH64@", .base = (char *) "@IMAGE_AARCH64@/base.qcow2" };
        r = plan_build(&c, strcmp(accel, "kvm") == 0 ? FAME_ACCEL_KVM : FAME_ACCEL_TCG, &img, &img_arm, "@FAME@",
                       "@CHECK_PLUGIN@", &p);
        config_done(&c);
        if (r < 0)
                return r;
        struct node_plan *n = &p.node[node - 1];
        n->boot = 42;
        n->ssh_port = (uint16_t) (10000 + node);
        n->librarian_port = (uint16_t) (11000 + node);
        n->librarian_node = node;
        snprintf(n->machine_id, sizeof n->machine_id, "@MACHINE_ID@");
        p.uid = p.gid = 1000;
        if (xml) {
                _cleanup_free_ char *text = domain_xml(&p, n, "@EMULATOR@");
                if (text)
                        put_replacing(text, p.state_dir);
                r = text ? 0 : -ENOMEM;
        } else {
                struct cmd *cmd = qemu_command(&p, n);
                char *const *args = cmd_argv(cmd);
                for (size_t i = 0; args[i]; i++)
                        put_replacing(args[i], p.state_dir);
                cmd_free(cmd);
        }
        plan_done(&p);
        return r;
}

int cmd_debug_qemu_args(const struct verb *v, int argc, char **argv) {
        return debug_node(v, argc, argv, false);
}

int cmd_debug_domain_xml(const struct verb *v, int argc, char **argv) {
        return debug_node(v, argc, argv, true);
}

/* fame libvirt export DIR */
int cmd_libvirt_export(const struct verb *v, int argc, char **argv) {
        struct fame_config c;
        int r = simple_verb(v, argc, argv, NULL, &c);
        if (r < 0)
                return r;
        r = cluster_libvirt_export(&c, argv[optind], print_line, NULL);
        config_done(&c);
        return r < 0 ? r : 0;
}

const struct verb_options image_build_options = {
        .list = (const struct verb_option[]) {
                { "kind", 'k', "KIND", "diskless, debian or all (default all)", VERB_OPT_SHORT },
                { .group = &cluster_options },
                {}
        },
};

int cmd_image_build(const struct verb *v, int argc, char **argv) {
        struct cluster_opts o = { 0 };
        const char *kind = NULL;
        bool first = true;
        struct fame_config c;
        int ch, r;

        while ((ch = verb_getopt(v, argc, argv, &first)) != -1) {
                r = cluster_opt(v, ch, &o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                switch (ch) {
                case 'k':
                        if (strcmp(optarg, "diskless") != 0 && strcmp(optarg, "debian") != 0 && strcmp(optarg, "all") != 0)
                                return cli_usage_error(v, "--kind '%s': expected diskless, debian or all", optarg);
                        kind = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        }
        r = load_config(&o, NULL, &c);
        if (r < 0)
                return r;
        if (!kind)
                kind = "all";
        r = cluster_image_build(&c, strcmp(kind, "debian") != 0, strcmp(kind, "diskless") != 0, print_image, NULL);
        config_done(&c);
        return r < 0 ? 1 : 0;
}

const struct verb_options image_prune_options = {
        .list = (const struct verb_option[]) {
                { "dry-run", 'n', NULL, "say what would be removed, remove nothing", VERB_OPT_SHORT },
                { "json", VERB_JSON, NULL, "print the result as JSON" },
                { .group = &cluster_options },
                {}
        },
};

struct prune_out {
        bool json, dry_run;
        json_object *list;
};

static void print_pruned(const char *path, const char *what, uint64_t bytes, void *userdata) {
        struct prune_out *po = userdata;
        char sz[32];
        if (po->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "path", json_object_new_string(path));
                json_object_object_add(o, "what", json_object_new_string(what));
                json_object_object_add(o, "bytes", json_object_new_uint64(bytes));
                json_object_array_add(po->list, o);
        } else
                printf("%s %-22s %10s  %s\n", po->dry_run ? "would remove" : "removed", what, format_bytes(bytes, sz, sizeof sz), path);
}

/* Adds the image paths the plan in FILE names (its kernels, initrds, image directory, base). */
static int add_plan_paths(const char *file, char ***v, size_t *n) {
        static const char *const keys[] = { "kernel", "initrd", "kernel_aarch64", "initrd_aarch64", "image_dir", "base",
                                            "image_dir_aarch64", "base_aarch64", NULL };
        json_object *plan = access(file, R_OK) == 0 ? json_object_from_file(file) : NULL, *s;
        int r = 0;
        for (const char *const *k = keys; plan && *k && r == 0; k++) {
                if (!json_object_object_get_ex(plan, *k, &s) || !json_object_is_type(s, json_type_string) || !*json_object_get_string(s))
                        continue;
                char **nv = realloc(*v, (*n + 2) * sizeof *nv);
                if (!nv || !(nv[*n] = strdup(json_object_get_string(s)))) {
                        if (nv)
                                *v = nv;
                        r = -ENOMEM;
                        break;
                }
                *v = nv;
                (*v)[++*n] = NULL;
        }
        json_object_put(plan);
        return r;
}

/* The paths every cluster boots from: the plans in STATE_ROOT/NAME/cluster.json, and the
 * configured state directory's (state_dir may lie elsewhere). */
static int used_image_paths(const struct fame_config *c, char ***ret) {
        _cleanup_free_ char *root = path_dirname(c->state_dir), *mine = strf("%s/cluster.json", c->state_dir);
        char **v = calloc(1, sizeof *v);
        size_t n = 0;
        int r = v && root && mine ? add_plan_paths(mine, &v, &n) : -ENOMEM;
        DIR *d = r == 0 ? opendir(root) : NULL;
        struct dirent *de;
        while (d && r == 0 && (de = readdir(d))) {
                _cleanup_free_ char *file = strf("%s/%s/cluster.json", root, de->d_name);
                r = file ? add_plan_paths(file, &v, &n) : -ENOMEM;
        }
        if (d)
                closedir(d);
        if (r < 0) {
                for (size_t i = 0; v && i < n; i++)
                        free(v[i]);
                free(v);
                return log_error_errno(r, "Out of memory");
        }
        *ret = v;
        return 0;
}

/* fame image prune [--dry-run] [--json] */
int cmd_image_prune(const struct verb *v, int argc, char **argv) {
        struct cluster_opts o = { 0 };
        struct prune_out po = { 0 };
        bool first = true;
        struct fame_config c;
        int ch, r;

        while ((ch = verb_getopt(v, argc, argv, &first)) != -1) {
                r = cluster_opt(v, ch, &o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                switch (ch) {
                case 'n': po.dry_run = true; break;
                case VERB_JSON: po.json = true; break;
                default: return -EINVAL;
                }
        }
        r = load_config(&o, NULL, &c);
        if (r < 0)
                return r;
        char **used = NULL;
        uint64_t freed = 0;
        r = used_image_paths(&c, &used);
        if (r >= 0 && po.json && !(po.list = json_object_new_array()))
                r = -ENOMEM;
        if (r >= 0)
                r = image_prune(c.cache_dir, used, po.dry_run, print_pruned, &po, &freed);
        if (r >= 0) {
                char sz[32];
                if (po.json) {
                        json_object *out = json_object_new_object();
                        json_object_object_add(out, "cache_dir", json_object_new_string(c.cache_dir));
                        json_object_object_add(out, "dry_run", json_object_new_boolean(po.dry_run));
                        json_object_object_add(out, "removed", po.list);
                        json_object_object_add(out, "bytes", json_object_new_uint64(freed));
                        po.list = NULL;
                        put_json(out);
                } else
                        printf("%s %s in %s\n", po.dry_run ? "would free" : "freed", format_bytes(freed, sz, sizeof sz), c.cache_dir);
        }
        json_object_put(po.list);
        for (char **u = used; u && *u; u++)
                free(*u);
        free(used);
        config_done(&c);
        return r < 0 ? 1 : 0;
}

const struct verb_options ssh_options = {
        .in_order = true,
        .list = (const struct verb_option[]) {
                { .group = &cluster_options },
                {}
        },
};

/* fame ssh NODE [-- CMD ARGS...] */
int cmd_ssh(const struct verb *v, int argc, char **argv) {
        struct cluster_opts o = { 0 };
        bool first = true;
        struct fame_config c;
        int ch, r;

        while ((ch = verb_getopt(v, argc, argv, &first)) != -1) {
                r = cluster_opt(v, ch, &o);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -EINVAL;
        }
        if (optind >= argc || strcmp(argv[optind], "--") == 0)
                return cli_usage_error(v, "name a node (usage: fame ssh NODE [-- CMD ARGS...])");
        const char *node = argv[optind++];
        if (optind < argc && strcmp(argv[optind], "--") == 0)
                optind++;
        r = load_config(&o, NULL, &c);
        if (r < 0)
                return r;
        r = cluster_ssh(&c, node, argv + optind);
        config_done(&c);
        return r;
}

/* fame debug net-switch SOCKET PORT... (started by fame up) */
int cmd_debug_net_switch(const struct verb *v, int argc, char **argv) {
        (void) v;
        if (argc < 3)
                return cli_usage_error(v, "usage: fame debug net-switch SOCKET NODESOCKET...");
        return netswitch_run(argv[1], argv + 2) < 0 ? 1 : 0;
}

/* fame debug agents READYFILE NODEDIR... (started by fame up, direct backend) */
int cmd_debug_agents(const struct verb *v, int argc, char **argv) {
        if (argc < 3)
                return cli_usage_error(v, "usage: fame debug agents READYFILE NODEDIR...");
        return agent_keeper_run(argv[1], argv + 2) < 0 ? 1 : 0;
}

/* fame debug relay PORT: QEMU's guestfwd command; stdin/stdout <-> 127.0.0.1:PORT */
int cmd_debug_relay(const struct verb *v, int argc, char **argv) {
        uint32_t port;
        if (argc != 2 || parse_uint32(argv[1], 1, 65535, &port) < 0)
                return cli_usage_error(v, "usage: fame debug relay PORT (1 to 65535)");
        return tcp_relay((uint16_t) port, STDIN_FILENO, STDOUT_FILENO) < 0 ? 1 : 0;
}

/* fame debug populate TREE TMP SIZE [ARCH]: stage 2 of a Debian image, run by `fame image build`
 * itself as root, or in mmdebstrap's user namespace (--unshare-helper) without root. */
int cmd_debug_image_populate(const struct verb *v, int argc, char **argv) {
        uint64_t size;
        if (argc < 4 || argc > 5 || parse_size(argv[3], &size) < 0 ||
            (argc == 5 && strcmp(argv[4], "x86_64") != 0 && strcmp(argv[4], "aarch64") != 0))
                return cli_usage_error(v, "usage: fame debug populate TREE TMPDIR SIZE [x86_64|aarch64]");
        return image_debian_populate(argv[1], argv[2], size, argc == 5 ? argv[4] : NULL, NULL) < 0 ? 1 : 0;
}

/* fame debug arm-unpack CACHE_DIR [RELEASE [MIRROR]]: the host side of an arm64 Debian
 * image (image-debian-arm.h); prints the tree's path. */
int cmd_debug_debian_arm_unpacked(const struct verb *v, int argc, char **argv) {
        if (argc < 2 || argc > 4)
                return cli_usage_error(v, "usage: fame debug arm-unpack CACHE_DIR [RELEASE [MIRROR]]");
        struct debian_arm_params p = {
                .cache_dir = argv[1], .release = argc > 2 ? argv[2] : "bookworm", .mirror = argc > 3 ? argv[3] : NULL,
        };
        _cleanup_free_ char *tree = NULL;
        if (image_debian_arm_unpacked(&p, &tree) < 0)
                return 1;
        printf("%s\n", tree);
        return 0;
}
