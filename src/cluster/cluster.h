/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cluster verbs, for the CLI (src/fame/cmd-cluster.c): up, down, status, kill/start of one
 * node, the verbs inside nodes (exec, cp, logs, console, ssh), `fame image build` and
 * `fame libvirt export`.  They return what they found or did; the CLI prints it (progress and
 * errors go to stderr through log.h).  State lives in the cluster's state directory:
 *   STATE/fam                  the FAM file (unless fam= points elsewhere)
 *   STATE/lock                 flock()ed by verbs that start or stop nodes
 *   STATE/cluster.json         the plan the nodes were started with
 *   STATE/nodes/nodeNN/        qemu.pid qmp.sock qga.sock console.sock console.log qemu.err
 * Results that carry a plan are always initialised: free it with plan_done(), also on failure.
 */
#ifndef FAME_CLUSTER_H
#define FAME_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "plan.h"
#include "programs.h"             /* cluster_librarian_binary() */

struct image;

struct up_options {
        const char *const *adds;        /* "HOSTPATH:NODEPATH", NULL-terminated, or NULL */
        bool reset;                     /* debian: new disks from the current image */
};

/* `fame up`: every node ready. */
struct cluster_up_result {
        struct cluster_plan plan;       /* the plan the nodes run with */
        struct {
                pid_t pid;
                bool ready;
                unsigned attempts;      /* boots it took (2: the first failed) */
                double ready_seconds;   /* from the start of its last boot */
        } node[FAME_MAX_NODES];
        uint32_t down;                  /* nodes that failed to boot twice and are stopped */
        double seconds;                 /* the whole `fame up` */
};
int cluster_up(const struct fame_config *c, const struct up_options *o, struct cluster_up_result *ret);

/* `fame down`: every node stopped, the switch and the Librarian too; the FAM is kept.  crash
 * (a cluster with the checker only, else -EINVAL): every running node loses power at once
 * (docs/check.md). */
struct cluster_down_result {
        struct cluster_plan plan;       /* the plan the nodes ran with */
        int stopped;                    /* nodes that were running */
        bool crash;                     /* --crash */
        bool check_told;                /* the checker was told: restored[] holds its answer */
        bool crashed[FAME_MAX_NODES];   /* crash: the nodes that were running and lost power */
        uint64_t restored[FAME_MAX_NODES]; /* lines the crashed node had not written back, now
                                            * back to their last written-back content */
};
int cluster_down(const struct fame_config *c, bool crash, struct cluster_down_result *ret);

/* `fame status` */
struct cluster_status {
        bool started;                   /* false: never started, and nothing else is set */
        struct cluster_plan plan;
        struct {
                pid_t pid;              /* 0: not running */
                const char *state;      /* "stopped", "booting", "joined" (the FAM), "ready" (its agent answers) */
                uint64_t joins;         /* how often it joined the FAM */
                bool ssh;               /* debian nodes, with probe_ssh: sshd answers */
                uint64_t check_findings; /* with check_known: distinct findings involving it */
        } node[FAME_MAX_NODES];
        bool check_known;               /* the plan has the checker and its findings were read */
        int running, ready;
        pid_t switch_pid, librarian_pid;
};
/* probe_ssh: also ask every ready Debian node's sshd (up to a few seconds each). */
int cluster_status(const struct fame_config *c, bool probe_ssh, struct cluster_status *ret);

/* `fame kill NODE` and `fame start NODE`: the node's name ("node02"); start: when it was ready.
 * kill with crash (a cluster with the checker only, else -EINVAL): a power loss, SIGKILL, after
 * which the lines the node had not written back return to their last written-back content. */
struct cluster_node_result {
        char name[16];
        double ready_seconds;
        bool crashed;                   /* kill --crash */
        bool check_told;                /* the checker was told: restored is its answer */
        uint64_t restored;              /* crashed: lines put back */
};
int cluster_kill_node(const struct fame_config *c, const char *node, bool crash, struct cluster_node_result *ret);
int cluster_start_node(const struct fame_config *c, const char *node, struct cluster_node_result *ret);

/* A range of the FAM file: [offset, offset + len). */
struct fam_range {
        uint64_t offset, len;
};
/* The host wrote these ranges of a cluster's FAM file itself (`fame shelf fill` on the host):
 * told to the checker when the cluster has its state (STATE/check), else nothing.  Logs why it
 * fails. */
int cluster_check_host_wrote(const char *state_dir, const char *fam_path, const struct fam_range *ranges, size_t n);

/* `fame libvirt export DIR`: the domain XML of every node, from the running cluster's plan, or
 * (never started) from a plan made as `fame up` would make it; wrote() is given each file as it
 * is written. */
int cluster_libvirt_export(const struct fame_config *c, const char *dir, void (*wrote)(const char *path, void *userdata),
                           void *userdata);
/* `fame image build`: builds (or finds in the cache) the node images of the kinds asked for;
 * each() is given every image as it is ready, with its kind ("diskless", "debian"). */
int cluster_image_build(const struct fame_config *c, bool diskless, bool debian,
                        void (*each)(const char *kind, const struct image *img, void *userdata), void *userdata);

/* Runs argv on one node (node != NULL) or all nodes concurrently, its output to out_fd and
 * err_fd ("nodeNN: " before every line with all nodes); returns the command's exit status (the
 * highest over all nodes), or a negative errno. */
int cluster_exec(const struct fame_config *c, const char *node, char *const *argv, int timeout_s, int out_fd, int err_fd);
int cluster_cp(const struct fame_config *c, const char *host_path, const char *node, const char *node_path);
/* The kind of the nodes the cluster was started with (its saved plan), for verbs that run
 * programs in them. */
int cluster_kind(const struct fame_config *c, enum fame_kind *ret);
/* cluster_cp() of a program with the shared libraries it needs that the node lacks
 * (guest-libs.c): each goes to the node's /usr/lib/TRIPLET, never over a file there.  report
 * (may be NULL) is told of every file: copied, or already in the node (copied false). */
typedef void (*cluster_cp_report_fn)(void *userdata, const char *node, const char *from, const char *to, bool copied);
int cluster_cp_libs(const struct fame_config *c, const char *host_path, const char *node, const char *node_path,
                    cluster_cp_report_fn report, void *userdata);
/* The node's serial console: in_fd (raw when a terminal) to it, it to out_fd; Ctrl-] leaves. */
int cluster_console(const struct fame_config *c, const char *node, int in_fd, int out_fd);
/* The node's console log to out_fd; follow: then what it writes while it runs. */
int cluster_logs(const struct fame_config *c, const char *node, bool follow, int out_fd);
/* `fame ssh`: execs ssh to the node (user, port, key, known_hosts of the cluster); returns only
 * on error. */
int cluster_ssh(const struct fame_config *c, const char *node, char *const *argv);

#endif
