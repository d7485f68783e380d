/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A cluster that runs or ran, as the verbs find it: the plan its nodes were started with
 * (STATE/cluster.json, a value), the backend connection that runs them (live), and STATE/lock,
 * which verbs that start or stop nodes hold.  struct cluster owns all three; cluster_done()
 * releases them.  Also what a node's state is made of: its QEMU's pid (from the backend) and
 * its slot in the FAM.
 */
#ifndef FAME_CLUSTER_STATE_H
#define FAME_CLUSTER_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "config.h"
#include "plan.h"

struct fame;
struct qmp;

struct cluster {
        struct cluster_plan plan;
        struct backend *be;             /* NULL until opened */
        int lock_fd;                    /* STATE/lock while held, else -1 */
};

#define CLUSTER_INIT { .lock_fd = -1 }

/* Takes STATE/lock (made with the state directory if need be), or fails at once with one line
 * when another fame command holds it. */
int cluster_lock(struct cluster *cl, const char *state_dir);
/* The same for verbs that need a cluster that was started (down, kill, start): a state
 * directory that does not exist is not made, and nothing is locked (cluster_load() then says
 * the cluster was never started). */
int cluster_lock_existing(struct cluster *cl, const char *state_dir);
/* Opens the backend of cl->plan (no-op when open). */
int cluster_open_backend(struct cluster *cl);
/* The plan from STATE/cluster.json and its backend; "has never been started" is an error here. */
int cluster_load(struct cluster *cl, const struct fame_config *c);
/* cluster_load() and the node called name ("node02", "2"). */
int cluster_load_node(struct cluster *cl, const struct fame_config *c, const char *name, struct node_plan **ret);
/* Closes the backend, frees the plan, releases the lock; accepts a cluster never loaded. */
void cluster_done(struct cluster *cl);
/* Hands the plan out (the caller frees it with plan_done()); cl keeps an empty one. */
void cluster_take_plan(struct cluster *cl, struct cluster_plan *ret);

/* The node called name in plan p: "node02", "2", "02" -> 2 (1..nodes); logs and returns -EINVAL
 * otherwise. */
int cluster_node_id(const struct cluster_plan *p, const char *name, uint32_t *ret);
/* The node ids a verb acts on: name's, or (name NULL) every node's. */
int cluster_node_range(const struct cluster_plan *p, const char *name, uint32_t *ret_first, uint32_t *ret_last);

/* The node's QEMU process, or 0. */
pid_t cluster_node_pid(const struct cluster *cl, const struct node_plan *n);
/* How many nodes run. */
int cluster_running(const struct cluster *cl);
/* 0 when the node runs, else -ESRCH after one line saying how to start it. */
int cluster_require_running(const struct cluster *cl, const struct node_plan *n);
/* A client of the node's guest agent (qmp.h). */
int cluster_agent(const struct cluster *cl, const struct node_plan *n, int timeout_ms, struct qmp **ret);
/* Stops the node's QEMU now (nothing when it does not run). */
void cluster_stop_node_hard(const struct cluster *cl, const struct node_plan *n, int timeout_ms);

/* A node's slot in the FAM (fam may be NULL: then NULL, 0, nothing). */
struct fame_slot_header *slot_of(struct fame *fam, uint32_t id);
/* The boot nonce the node wrote when it joined. */
uint64_t slot_boot(struct fame *fam, uint32_t id);
void slot_mark_down(struct fame *fam, uint32_t id);

#endif
