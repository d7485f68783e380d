/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `fame status`: what runs of a cluster — its nodes (pid, FAM slot, guest agent, sshd), switch and Librarian. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "cluster-state.h"
#include "cluster.h"
#include "daemons.h"
#include "fam_atomic.h"
#include "fame.h"
#include "macro.h"
#include "ready.h"

int cluster_status(const struct fame_config *c, bool json) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        const struct cluster_plan *p = &cl.plan;
        struct fame *fam = NULL;
        int r = plan_load(c->state_dir, &cl.plan);

        if (r == -ENOENT) {
                if (json) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "cluster", json_object_new_string(c->name));
                        json_object_object_add(o, "state", json_object_new_string("never started"));
                        json_object_object_add(o, "nodes", json_object_new_array());
                        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
                        json_object_put(o);
                } else
                        printf("Cluster '%s' has never been started; 'fame up' starts it\n", c->name);
                return 0;
        }
        if (r < 0)
                return r;
        r = cluster_open_backend(&cl);
        if (r < 0)
                return r;
        (void) fame_open(p->fam_path, FAME_OPEN_NOREGISTER, &fam);
        if (fam)
                fam_atomic_register_region(fame_base(fam), fame_size(fam), -1, 0);
        json_object *o = json_object_new_object(), *nodes = json_object_new_array();
        int running = 0, ready = 0;
        if (!json && p->kind == FAME_KIND_DEBIAN)
                printf("%-8s %8s  %-7s  %-5s  %-8s %8s  %-15s  %s\n", "NODE", "PID", "ARCH", "ACCEL", "STATE", "JOINS", "SSH", "CONSOLE");
        else if (!json)
                printf("%-8s %8s  %-7s  %-5s  %-8s %8s  %s\n", "NODE", "PID", "ARCH", "ACCEL", "STATE", "JOINS", "CONSOLE");
        for (uint32_t i = 0; i < p->nodes; i++) {
                const struct node_plan *n = &p->node[i];
                pid_t pid = cluster_node_pid(&cl, n);
                struct fame_slot_header *h = slot_of(fam, n->id);
                bool joined = pid && h && slot_boot(fam, n->id) == n->boot;
                bool agent = joined && qga_answers(&cl, n, QGA_PING_MS);
                const char *state = !pid ? "stopped" : agent ? "ready" : joined ? "joined" : "booting";
                uint64_t joins = h ? (uint64_t) fam_atomic_64_read((int64_t *) &h->join_count) : 0;
                running += pid > 0;
                ready += agent;
                if (json) {
                        json_object *no = json_object_new_object();
                        json_object_object_add(no, "name", json_object_new_string(n->name));
                        json_object_object_add(no, "id", json_object_new_uint64(n->id));
                        json_object_object_add(no, "pid", json_object_new_int(pid));
                        json_object_object_add(no, "state", json_object_new_string(state));
                        json_object_object_add(no, "joins", json_object_new_uint64(joins));
                        json_object_object_add(no, "arch", json_object_new_string(arch_to_string(n->arch)));
                        json_object_object_add(no, "accel", json_object_new_string(plan_node_kvm(p, n) ? "kvm" : "tcg"));
                        json_object_object_add(no, "memory", json_object_new_uint64(n->memory));
                        json_object_object_add(no, "console_log", json_object_new_string(n->console_log));
                        if (p->backend == FAME_BACKEND_LIBVIRT) {
                                char dom[128];
                                domain_name(p, n, dom, sizeof dom);
                                json_object_object_add(no, "domain", json_object_new_string(dom));
                        }
                        if (p->kind == FAME_KIND_DEBIAN) {
                                json_object_object_add(no, "ssh_port", json_object_new_int(n->ssh_port));
                                json_object_object_add(no, "ssh", json_object_new_boolean(agent && ssh_answers(n, SSH_BANNER_MS)));
                                json_object_object_add(no, "disk", json_object_new_string(n->disk));
                        }
                        json_object_array_add(nodes, no);
                } else if (p->kind == FAME_KIND_DEBIAN) {
                        char ssh[32];
                        snprintf(ssh, sizeof ssh, "127.0.0.1:%u", n->ssh_port);
                        printf("%-8s %8d  %-7s  %-5s  %-8s %8" PRIu64 "  %-15s  %s\n", n->name, (int) pid, arch_to_string(n->arch),
                               plan_node_kvm(p, n) ? "kvm" : "tcg", state, joins,
                               ssh, n->console_log);
                } else
                        printf("%-8s %8d  %-7s  %-5s  %-8s %8" PRIu64 "  %s\n", n->name, (int) pid, arch_to_string(n->arch),
                               plan_node_kvm(p, n) ? "kvm" : "tcg", state, joins,
                               n->console_log);
        }
        if (json) {
                json_object_object_add(o, "cluster", json_object_new_string(p->name));
                json_object_object_add(o, "state", json_object_new_string(running == 0 ? "down" : ready == (int) p->nodes ? "up" : "degraded"));
                json_object_object_add(o, "accel", json_object_new_string(accel_to_string(p->accel)));
                json_object_object_add(o, "kind", json_object_new_string(kind_to_string(p->kind)));
                json_object_object_add(o, "backend", json_object_new_string(backend_to_string(p->backend)));
                if (p->backend == FAME_BACKEND_LIBVIRT)
                        json_object_object_add(o, "libvirt_uri", json_object_new_string(p->libvirt_uri));
                json_object_object_add(o, "switch_pid", json_object_new_int(switch_pid(p)));
                {
                        json_object *lib = json_object_new_object();
                        pid_t lp = librarian_pid(p);
                        json_object_object_add(lib, "pid", json_object_new_int(lp));
                        json_object_object_add(lib, "port", json_object_new_int(lp ? p->librarian_port : 0));
                        json_object_object_add(lib, "db", json_object_new_string(p->librarian_dir));
                        json_object_object_add(o, "librarian", lib);
                }
                json_object_object_add(o, "fam", json_object_new_string(p->fam_path));
                json_object_object_add(o, "fam_size", json_object_new_uint64(p->fam_size));
                json_object_object_add(o, "running", json_object_new_int(running));
                json_object_object_add(o, "ready", json_object_new_int(ready));
                json_object_object_add(o, "nodes", nodes);
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
        } else {
                printf("cluster '%s': %d of %" PRIu32 " nodes running, %d ready; FAM %s\n", p->name, running, p->nodes, ready, p->fam_path);
                if (p->backend == FAME_BACKEND_LIBVIRT)
                        printf("libvirt: %s, domains fame-%s-node01..%02" PRIu32 "\n", p->libvirt_uri, p->name, p->nodes);
                pid_t lp = librarian_pid(p);
                if (lp)
                        printf("librarian: pid %d, 127.0.0.1:%u for the host, torms:%u in the nodes; %s\n", (int) lp,
                               p->librarian_port, FAME_LIBRARIAN_PORT, p->librarian_dir);
                else
                        printf("librarian: not running\n");
                json_object_put(nodes);
        }
        json_object_put(o);
        fame_close(fam);
        return 0;
}

