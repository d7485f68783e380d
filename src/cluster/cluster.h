/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cluster lifecycle on the direct QEMU backend: up, down, status, kill/start of one node, and
 * the guest-agent verbs (exec, cp).  State lives in the cluster's state directory:
 *   STATE/fam                  the FAM file (unless fam= points elsewhere)
 *   STATE/lock                 flock()ed by verbs that start or stop nodes
 *   STATE/cluster.json         the plan the nodes were started with
 *   STATE/nodes/nodeNN/        qemu.pid qmp.sock qga.sock console.sock console.log qemu.err
 */
#ifndef FAME_CLUSTER_H
#define FAME_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "programs.h"             /* cluster_librarian_binary() */

struct up_options {
        const char *const *adds;        /* "HOSTPATH:NODEPATH", NULL-terminated, or NULL */
        bool json;
        bool reset;                     /* debian: new disks from the current image */
};

int cluster_up(const struct fame_config *c, const struct up_options *o);
int cluster_down(const struct fame_config *c);
/* `fame libvirt export DIR`: the domain XML of every node, from the running cluster's plan, or
 * (never started) from a plan made as `fame up` would make it. */
int cluster_libvirt_export(const struct fame_config *c, const char *dir);
/* `fame image build`: builds (or finds in the cache) the node images of the kinds asked for and
 * prints one line for each. */
int cluster_image_build(const struct fame_config *c, bool diskless, bool debian);
int cluster_status(const struct fame_config *c, bool json);
int cluster_kill_node(const struct fame_config *c, const char *node);
int cluster_start_node(const struct fame_config *c, const char *node);

/* Runs argv on one node (node != NULL) or all nodes concurrently; returns the command's exit
 * status (the highest over all nodes), or a negative errno. */
int cluster_exec(const struct fame_config *c, const char *node, char *const *argv, int timeout_s);
int cluster_cp(const struct fame_config *c, const char *host_path, const char *node, const char *node_path);
int cluster_console(const struct fame_config *c, const char *node);
int cluster_logs(const struct fame_config *c, const char *node, bool follow);
/* `fame ssh`: execs ssh to the node (user, port, key, known_hosts of the cluster); returns only
 * on error. */
int cluster_ssh(const struct fame_config *c, const char *node, char *const *argv);


#endif
