/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who runs the nodes' QEMUs: the cluster lifecycle (cluster.c and the files it uses) does
 * everything else — the FAM, images, the switch, the Librarian, readiness, the verbs — and asks
 * its backend for these node-level operations only.  The backend is a live connection: struct
 * cluster (cluster-state.h) holds it beside the plan, which stays a value.  Every operation is
 * given the plan and the node it is about.  Two backends:
 *   qemu     fame starts QEMU itself (daemonized, pidfile, QMP and guest agent on UNIX sockets
 *            in STATE/nodes/nodeNN) — backend-qemu.c;
 *   libvirt  each node is a transient libvirt domain made from the same plan (domain XML in
 *            backend-libvirt.c), driven through the libvirt C API — backend-libvirt.c, linked
 *            into the host fame only; other programs get backend-none.c, which says it is not
 *            built in.
 */
#ifndef FAME_BACKEND_H
#define FAME_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct cluster_plan;
struct node_plan;
struct qmp;

struct backend_ops {
        const char *name;
        /* Connects; logs one line (what is wrong and how to fix it) on failure.  cluster: the
         * cluster's name for messages (NULL: not known yet); libvirt_uri: where libvirtd is. */
        int (*open)(const char *cluster, const char *libvirt_uri, void **ret_data);
        void (*close)(void *data);
        /* Launches the node's QEMU and returns once it runs (or logs why it could not). */
        int (*start)(void *data, const struct cluster_plan *p, const struct node_plan *n);
        /* The node's QEMU process if it runs, else 0. */
        pid_t (*pid)(void *data, const struct cluster_plan *p, const struct node_plan *n);
        /* A QMP client of the node's QEMU, and one of its guest agent (qmp.h). */
        int (*monitor)(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms, struct qmp **ret);
        int (*agent)(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms, struct qmp **ret);
        /* Asks the guest to power off (no wait). */
        void (*shutdown)(void *data, const struct cluster_plan *p, const struct node_plan *n);
        /* Stops the QEMU now; waits up to timeout_ms for it to be gone. */
        void (*destroy)(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms);
        /* Stops the QEMU as a power loss would: at once, without asking it to quit (SIGKILL;
         * libvirt: virDomainDestroy); returns once it is gone, or a negative errno (logged). */
        int (*crash)(void *data, const struct cluster_plan *p, const struct node_plan *n);
        /* A connected stream socket to the node's serial console (caller closes). */
        int (*console)(void *data, const struct cluster_plan *p, const struct node_plan *n, int *ret_fd);
        /* The QOM path of the FAM's memory backend (its "share" property must be true). */
        const char *(*fam_object)(const struct cluster_plan *p);
};

struct backend {
        const struct backend_ops *ops;
        void *data;
};

extern const struct backend_ops backend_qemu_ops;
extern const struct backend_ops backend_libvirt_ops;

/* Opens a backend of this kind (backend.c); one error line on failure. */
int backend_open(enum fame_backend kind, const char *cluster, const char *libvirt_uri, struct backend **ret);
void backend_free(struct backend *be);      /* accepts NULL */

/* ---- backend-libvirt.c ---- */

/* The node's libvirt domain name: fame-CLUSTER-nodeNN. */
void domain_name(const struct cluster_plan *p, const struct node_plan *n, char *buf, size_t len);
/* The domain XML of a node (caller frees), a pure function of the plan, checked against golden
 * files; emulator: the QEMU binary's absolute path.  NULL after one error line. */
char *domain_xml(const struct cluster_plan *p, const struct node_plan *n, const char *emulator);
/* `fame libvirt export DIR`: nodeNN.xml for every node of the plan; wrote() is given each file
 * once it is written. */
int domain_export(const struct cluster_plan *p, const char *dir, void (*wrote)(const char *path, void *userdata), void *userdata);

#endif
