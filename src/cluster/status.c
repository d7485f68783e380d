/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `fame status` (cluster.h): what runs of a cluster — its nodes (pid, FAM slot, guest agent,
 * sshd, the checker's findings), its switch and its Librarian. */
#include <errno.h>
#include <inttypes.h>

#include "cluster-check.h"
#include "cluster-state.h"
#include "cluster.h"
#include "daemons.h"
#include "fam_atomic.h"
#include "fame.h"
#include "macro.h"
#include "ready.h"

int cluster_status(const struct fame_config *c, bool probe_ssh, struct cluster_status *ret) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        struct cluster_plan *p = &cl.plan;
        struct fame *fam = NULL;
        int r;

        *ret = (struct cluster_status) { 0 };
        r = plan_load(c->state_dir, p);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = cluster_open_backend(&cl);
        if (r < 0)
                return r;
        ret->started = true;
        (void) fame_open(p->fam_path, FAME_OPEN_NOREGISTER, &fam);
        if (fam)
                fam_atomic_register_region(fame_base(fam), fame_size(fam), -1, 0);
        for (uint32_t i = 0; i < p->nodes; i++) {
                const struct node_plan *n = &p->node[i];
                pid_t pid = cluster_node_pid(&cl, n);
                struct fame_slot_header *h = slot_of(fam, n->id);
                bool joined = pid && h && slot_boot(fam, n->id) == n->boot;
                bool agent = joined && qga_answers(&cl, n, QGA_PING_MS);

                ret->node[i].pid = pid;
                ret->node[i].state = !pid ? "stopped" : agent ? "ready" : joined ? "joined" : "booting";
                ret->node[i].joins = h ? (uint64_t) fam_atomic_64_read((int64_t *) &h->join_count) : 0;
                if (probe_ssh && p->kind == FAME_KIND_DEBIAN)
                        ret->node[i].ssh = agent && ssh_answers(n, SSH_BANNER_MS);
                ret->running += pid > 0;
                ret->ready += agent;
        }
        uint64_t findings[FAME_MAX_NODES];
        ret->check_known = cluster_check_node_findings(p, findings) > 0;
        for (uint32_t i = 0; i < p->nodes; i++)
                ret->node[i].check_findings = findings[i];
        ret->switch_pid = switch_pid(p);
        ret->librarian_pid = librarian_pid(p);
        fame_close(fam);
        cluster_take_plan(&cl, &ret->plan);
        return 0;
}
