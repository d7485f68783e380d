/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A cluster as the verbs find it (cluster-state.h): lock, plan, backend, node pids and slots. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cluster-state.h"
#include "fam_atomic.h"
#include "fame.h"
#include "log.h"
#include "util.h"

int cluster_lock(struct cluster *cl, const char *state_dir) {
        char path[PATH_MAX];
        int r = mkdir_p(state_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory '%s': %m", state_dir);
        snprintf(path, sizeof path, "%s/lock", state_dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to open '%s': %m", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                close(fd);
                return log_error_errno(-EBUSY, "Another fame command is starting or stopping this cluster (%s is locked); wait for it to finish", path);
        }
        cl->lock_fd = fd;
        return 0;
}

int cluster_lock_existing(struct cluster *cl, const char *state_dir) {
        if (access(state_dir, F_OK) < 0 && errno == ENOENT)
                return 0;
        return cluster_lock(cl, state_dir);
}

int cluster_open_backend(struct cluster *cl) {
        if (cl->be)
                return 0;
        return backend_open(cl->plan.backend, cl->plan.name, cl->plan.libvirt_uri, &cl->be);
}

int cluster_load(struct cluster *cl, const struct fame_config *c) {
        int r = plan_load(c->state_dir, &cl->plan);
        if (r == -ENOENT)
                return log_error_errno(r, "Cluster '%s' has never been started (no %s/cluster.json); start it with 'fame up'", c->name, c->state_dir);
        if (r < 0)
                return r;
        return cluster_open_backend(cl);
}

int cluster_load_node(struct cluster *cl, const struct fame_config *c, const char *name, struct node_plan **ret) {
        uint32_t id;
        int r = cluster_load(cl, c);
        if (r < 0)
                return r;
        r = cluster_node_id(&cl->plan, name, &id);
        if (r < 0)
                return r;
        *ret = &cl->plan.node[id - 1];
        return 0;
}

void cluster_done(struct cluster *cl) {
        backend_free(cl->be);
        cl->be = NULL;
        plan_done(&cl->plan);
        if (cl->lock_fd >= 0)
                close(cl->lock_fd);
        cl->lock_fd = -1;
}

void cluster_take_plan(struct cluster *cl, struct cluster_plan *ret) {
        *ret = cl->plan;
        cl->plan = (struct cluster_plan) { 0 };
}

int cluster_node_range(const struct cluster_plan *p, const char *name, uint32_t *ret_first, uint32_t *ret_last) {
        *ret_first = 1;
        *ret_last = p->nodes;
        if (!name)
                return 0;
        int r = cluster_node_id(p, name, ret_first);
        if (r >= 0)
                *ret_last = *ret_first;
        return r;
}

int cluster_node_id(const struct cluster_plan *p, const char *name, uint32_t *ret) {
        uint32_t v;

        if (parse_node_name(name, false, &v) < 0)
                return log_error_errno(-EINVAL, "'%s' is not a node name: use node01..node%02" PRIu32 " or a number", name, p->nodes);
        if (v > p->nodes)
                return log_error_errno(-EINVAL, "There is no %s: the cluster has %" PRIu32 " node%s (node01..node%02" PRIu32 ")",
                                       name, p->nodes, p->nodes == 1 ? "" : "s", p->nodes);
        *ret = v;
        return 0;
}

pid_t cluster_node_pid(const struct cluster *cl, const struct node_plan *n) {
        return cl->be->ops->pid(cl->be->data, &cl->plan, n);
}

int cluster_running(const struct cluster *cl) {
        int n = 0;
        for (uint32_t i = 0; i < cl->plan.nodes; i++)
                n += cluster_node_pid(cl, &cl->plan.node[i]) > 0;
        return n;
}

int cluster_require_running(const struct cluster *cl, const struct node_plan *n) {
        if (cluster_node_pid(cl, n))
                return 0;
        return log_error_errno(-ESRCH, "%s is not running; start it with 'fame start %s'", n->name, n->name);
}

int cluster_agent(const struct cluster *cl, const struct node_plan *n, int timeout_ms, struct qmp **ret) {
        return cl->be->ops->agent(cl->be->data, &cl->plan, n, timeout_ms, ret);
}

void cluster_stop_node_hard(const struct cluster *cl, const struct node_plan *n, int timeout_ms) {
        cl->be->ops->destroy(cl->be->data, &cl->plan, n, timeout_ms);
}

struct fame_slot_header *slot_of(struct fame *fam, uint32_t id) {
        return fam ? (struct fame_slot_header *) fame_slot(fam, id) : NULL;
}

uint64_t slot_boot(struct fame *fam, uint32_t id) {
        struct fame_slot_header *h = slot_of(fam, id);
        return h ? (uint64_t) fam_atomic_64_read((int64_t *) &h->boot) : 0;
}

void slot_mark_down(struct fame *fam, uint32_t id) {
        struct fame_slot_header *h = slot_of(fam, id);
        if (h)
                fam_atomic_32_write((int32_t *) &h->state, FAME_SLOT_DOWN);
}
