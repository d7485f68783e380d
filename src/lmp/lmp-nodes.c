/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /api/v1/nodes: the Librarian's topology (engine_view_nodes) with what the FAM and the cluster
 * say of each node.  The FAM's slot is the node's own word (it joined this boot, its heartbeat);
 * the cluster's state directory adds its name, architecture and accelerator (STATE/cluster.json,
 * the plan `fame up` wrote) and whether its QEMU runs (STATE/nodes/NAME/qemu.pid).  State:
 *   ready    its QEMU runs and it joined the FAM this boot
 *   booting  its QEMU runs and it has not joined yet
 *   down     it joined, and its QEMU is gone without leaving (killed, crashed, power lost)
 *   stopped  its QEMU is not running and it left (or never joined)
 *   unknown  nothing says (served by hand without the cluster's state)
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fame.h"
#include "lmp-internal.h"
#include "macro.h"
#include "util.h"

struct plan_node {
        uint32_t id;                    /* FAM/E's node number: the FAM slot */
        const char *arch;
        uint64_t boot;
};

/* The plan's node whose Librarian node id is lib_id; false if none. */
static bool find_plan_node(struct json_object *plan, int64_t lib_id, struct plan_node *ret) {
        struct json_object *nodes, *n, *v;
        if (!plan || !json_object_object_get_ex(plan, "nodes", &nodes) || !json_object_is_type(nodes, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(nodes); i++) {
                n = json_object_array_get_idx(nodes, i);
                if (!json_object_object_get_ex(n, "librarian_node", &v) || json_object_get_int64(v) != lib_id)
                        continue;
                *ret = (struct plan_node) { 0 };
                if (json_object_object_get_ex(n, "id", &v))
                        ret->id = (uint32_t) json_object_get_int64(v);
                if (json_object_object_get_ex(n, "arch", &v))
                        ret->arch = json_object_get_string(v);
                if (json_object_object_get_ex(n, "boot", &v))
                        ret->boot = (uint64_t) json_object_get_uint64(v);
                return ret->id > 0;
        }
        return false;
}

/* Whether node NAME's QEMU runs (1), does not (0), or nobody can tell (-1: no pid file, as
 * under libvirt).  started: the pid file's time. */
static int qemu_runs(const char *state_dir, const char *name, double *started) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/nodes/%s/qemu.pid", state_dir, name) >= (int) sizeof path)
                return -1;
        _cleanup_free_ char *text = read_file(path, 64, NULL);
        struct stat st;
        if (!text)
                return errno == ENOENT ? 0 : -1;
        if (stat(path, &st) == 0)
                *started = (double) st.st_mtim.tv_sec + (double) st.st_mtim.tv_nsec / 1e9;
        long pid = strtol(text, NULL, 10);
        return pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM);
}

static void add_node_state(const struct lmp_source *src, struct json_object *plan, struct json_object *n) {
        struct json_object *v;
        int64_t lib_id = json_object_object_get_ex(n, "node_id", &v) ? json_object_get_int64(v) : 0;
        struct plan_node pn = { 0 };
        bool planned = find_plan_node(plan, lib_id, &pn);
        char name[32] = "";
        double started = 0, now = lmp_realtime();
        const char *state = "unknown", *accel = "";

        if (!planned && src->fam) {
                /* served by hand: the FAM's geometry says which FAM/E node has this Librarian id */
                const struct fame_geometry *geo = fame_get_geometry(src->fam);
                for (uint32_t k = 1; k <= geo->node_count && !pn.id; k++)
                        if (fame_librarian_node_id(geo, k) == (uint32_t) lib_id)
                                pn.id = k;
        }
        if (pn.id)
                snprintf(name, sizeof name, "node%02" PRIu32, pn.id);
        if (plan && json_object_object_get_ex(plan, "accel", &v))
                accel = json_object_get_string(v);
        int runs = planned && src->state_dir ? qemu_runs(src->state_dir, name, &started) : -1;

        /* the FAM slot: the node's own word */
        const struct fame_slot_header *slot = src->fam && pn.id ? fame_slot(src->fam, pn.id) : NULL;
        uint32_t slot_state = slot ? __atomic_load_n(&slot->state, __ATOMIC_RELAXED) : FAME_SLOT_NEVER;
        uint64_t slot_boot = slot ? __atomic_load_n(&slot->boot, __ATOMIC_RELAXED) : 0;
        uint64_t beat = slot ? __atomic_load_n(&slot->heartbeat_ns, __ATOMIC_RELAXED) : 0;
        bool joined = slot_state == FAME_SLOT_UP && (!pn.boot || slot_boot == pn.boot);

        if (runs == 1)
                state = joined ? "ready" : "booting";
        else if (runs == 0)
                state = joined ? "down" : "stopped";
        else if (slot)
                state = slot_state == FAME_SLOT_UP ? "ready" : slot_state == FAME_SLOT_DOWN ? "stopped" : "unknown";

        json_object_object_add(n, "name", json_object_new_string(name));
        json_object_object_add(n, "state", json_object_new_string(state));
        json_object_object_add(n, "arch", json_object_new_string(pn.arch ? pn.arch : ""));
        json_object_object_add(n, "accel", json_object_new_string(planned ? accel : ""));
        json_object_object_add(n, "booted_at", runs == 1 && started > 0 ? json_object_new_double(started) : NULL);
        json_object_object_add(n, "heartbeat_age_s",
                               slot_state == FAME_SLOT_UP && beat ? json_object_new_double(now - (double) beat / 1e9) : NULL);
        /* the slot itself (docs/fam-format.md); the boot nonce as text: 64 bits do not fit a
         * JavaScript number */
        struct json_object *so = NULL;
        if (slot && (so = json_object_new_object())) {
                char nonce[32];
                snprintf(nonce, sizeof nonce, "%" PRIu64, slot_boot);
                json_object_object_add(so, "node", json_object_new_int((int32_t) pn.id));
                json_object_object_add(so, "state", json_object_new_string(slot_state == FAME_SLOT_UP ? "up" :
                                                                           slot_state == FAME_SLOT_DOWN ? "down" : "never"));
                json_object_object_add(so, "joins", json_object_new_int64((int64_t) __atomic_load_n(&slot->join_count, __ATOMIC_RELAXED)));
                json_object_object_add(so, "boot", json_object_new_string(nonce));
                json_object_object_add(so, "heartbeat", beat ? json_object_new_double((double) beat / 1e9) : NULL);
        }
        json_object_object_add(n, "slot", so);
}

struct json_object *lmp_nodes(const struct lmp_source *src) {
        struct json_object *o = src->views->nodes(src->engine), *nodes;
        if (!o)
                return NULL;
        struct json_object *plan = NULL;
        if (src->state_dir) {
                _cleanup_free_ char *path = strf("%s/cluster.json", src->state_dir);
                plan = path ? json_object_from_file(path) : NULL;      /* none: a cluster not up */
        }
        if (json_object_object_get_ex(o, "nodes", &nodes))
                for (size_t i = 0; i < json_object_array_length(nodes); i++)
                        add_node_state(src, plan, json_object_array_get_idx(nodes, i));
        json_object_put(plan);
        return o;
}
