/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bringing a cluster up and down (cluster.h, docs/cluster.md): the order in which the images,
 * the FAM, the switch, the Librarian and the nodes are made and started, and undone when
 * something fails; kill and start of one node; `fame libvirt export`.  What they are made of
 * lives in files of its own: cluster-state.c, node-images.c, daemons.c, ready.c, the backends.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "cluster-check.h"
#include "cluster-state.h"
#include "cluster.h"
#include "daemons.h"
#include "fame.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "node-images.h"
#include "programs.h"
#include "qmp.h"
#include "ready.h"
#include "seed.h"
#include "util.h"

/* ---- starting and stopping nodes ---------------------------------------------------------- */

static uint64_t random_nonce(void) {
        uint64_t v = 0;
        while (v == 0)
                if (getrandom(&v, sizeof v, 0) != sizeof v)
                        v = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
        return v & INT64_MAX;           /* stays positive on the kernel command line and in JSON */
}

static void rotate_log(const char *path) {
        char old[PATH_MAX];
        snprintf(old, sizeof old, "%s.1", path);
        (void) rename(path, old);
}

static int spawn_node(const struct cluster *cl, struct node_plan *n) {
        int r = mkdir_p(n->dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create '%s': %m", n->dir);
        unlink(n->qmp_sock);
        unlink(n->qga_sock);
        unlink(n->console_sock);
        unlink(n->net_sock);
        unlink(n->pidfile);
        rotate_log(n->console_log);
        n->boot = random_nonce();
        return cl->be->ops->start(cl->be->data, &cl->plan, n);
}

/* Checks that the FAM backend really is shared: QEMU must have share=on. */
static int check_shared(const struct cluster *cl, const struct node_plan *n) {
        struct qmp *q = NULL;
        json_object *args = json_object_new_object(), *ret = NULL;
        int r;

        json_object_object_add(args, "path", json_object_new_string(cl->be->ops->fam_object(&cl->plan)));
        json_object_object_add(args, "property", json_object_new_string("share"));
        r = cl->be->ops->monitor(cl->be->data, &cl->plan, n, 5000, &q);
        if (r >= 0)
                r = qmp_execute(q, "qom-get", args, 5000, &ret, NULL);
        else
                json_object_put(args);
        qmp_close(q);
        if (r < 0)
                return log_error_errno(r, "%s: cannot ask QEMU whether the FAM is shared: %m", n->name);
        bool shared = ret && json_object_get_boolean(ret);
        json_object_put(ret);
        if (!shared)
                return log_error_errno(-EIO, "%s: QEMU maps the FAM privately (share=off): nodes would not see each other's stores", n->name);
        return 0;
}

static int stop_nodes(const struct cluster *cl, const bool *which, uint32_t timeout_s) {
        const struct cluster_plan *p = &cl->plan;

        /* Graceful first: ask each guest agent to power off, then wait, then force. */
        for (uint32_t i = 0; i < p->nodes; i++) {
                if (!which[i] || !cluster_node_pid(cl, &p->node[i]))
                        continue;
                cl->be->ops->shutdown(cl->be->data, p, &p->node[i]);
        }
        double deadline = now_seconds() + timeout_s;
        for (;;) {
                bool left = false;
                for (uint32_t i = 0; i < p->nodes; i++)
                        left = left || (which[i] && cluster_node_pid(cl, &p->node[i]));
                if (!left || now_seconds() > deadline)
                        break;
                sleep_ms(20);       /* waiting for other processes to exit */
        }
        for (uint32_t i = 0; i < p->nodes; i++)
                if (which[i] && cluster_node_pid(cl, &p->node[i])) {
                        log_warning("%s did not power off within %" PRIu32 " s: stopping it", p->node[i].name, timeout_s);
                        cluster_stop_node_hard(cl, &p->node[i], 3000);
                }
        for (uint32_t i = 0; i < p->nodes; i++)
                if (which[i] && cluster_node_pid(cl, &p->node[i]))
                        return log_error_errno(-EIO, "%s (pid %d) could not be stopped", p->node[i].name, (int) cluster_node_pid(cl, &p->node[i]));
        return 0;
}

static bool ssh_port_free(uint16_t port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        return port && fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof a) == 0;
}

/* How many nodes boot at once: a TCG boot keeps a host core busy, and booting more nodes than
 * the host has cores only makes every boot longer (and starves vCPUs past what a kernel
 * tolerates).  Measured on 2 cores, single runs (4, 16 and 40 nodes): one at a time 17.2 s
 * and 53.4 s; one per core 8.3 s, 32.7 s and 106.7 s; two per core 8.5 s, 34.0 s and 96.3 s. */
static uint32_t boots_at_once(void) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        return cpus > 0 && cpus < 64 ? (uint32_t) cpus * 2 : 2;
}

/* $FAME_FAULT_BOOT (docs/cluster.md, "When a node fails to boot"): NODE[:N][,NODE[:N]...],
 * the first N (default 1) boots of NODE in this `fame up` fail on purpose. */
static int parse_fault_boot(const struct cluster_plan *p, unsigned faults[FAME_MAX_NODES]) {
        const char *env = getenv("FAME_FAULT_BOOT");
        memset(faults, 0, sizeof(unsigned) * FAME_MAX_NODES);
        if (!env || !*env)
                return 0;
        _cleanup_free_ char *copy = strdup(env);
        if (!copy)
                return log_error_errno(-ENOMEM, "Out of memory");
        char *save = NULL;
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                char *colon = strchr(w, ':'), *end = NULL;
                unsigned long count = 1;
                if (colon) {
                        *colon = 0;
                        errno = 0;
                        count = strtoul(colon + 1, &end, 10);
                        if (errno || !end || *end || count < 1 || count > 9)
                                return log_error_errno(-EINVAL, "FAME_FAULT_BOOT: '%s' is not a count of failing boots (1..9); use NODE or NODE:N",
                                                       colon + 1);
                }
                uint32_t i = 0;
                while (i < p->nodes && strcmp(p->node[i].name, w) != 0)
                        i++;
                if (i == p->nodes)
                        return log_error_errno(-EINVAL, "FAME_FAULT_BOOT: this cluster has no node '%s' (node01..node%02" PRIu32 ")",
                                               w, p->nodes);
                faults[i] = (unsigned) count;
        }
        return 0;
}

/* A failure's text with its console lines indented under it. */
static void log_node_failure(bool final, const struct node_plan *n, const struct ready_state *s) {
        char buf[2048];
        size_t w = 0;
        for (const char *r = s->why; *r && w + 8 < sizeof buf; r++) {
                buf[w++] = *r;
                if (*r == '\n') {
                        memcpy(buf + w, "  | ", 4);
                        w += 4;
                }
        }
        buf[w] = 0;
        if (final)
                log_error("%s is down after %u boots: %s\n  bring it back with 'fame start %s' (fame logs %s)",
                          n->name, s->attempts, buf, n->name, n->name);
        else
                log_warning("%s failed to boot: %s\n  starting %s again", n->name, buf, n->name);
}

/* Starts the plan's nodes, at most boots_at_once() booting at a time, and waits until each is
 * ready or has failed twice.  A node that fails is stopped, told to the checker, and started
 * once more; one that fails again stays down (*ret_down counts them; st[i].failed).  Errors
 * that are not a node's boot (QEMU cannot be started, the FAM is not shared) are returned. */
static int boot_nodes(struct cluster *cl, struct fame *fam, struct ready_state *st, const unsigned *faults,
                      uint32_t timeout_s, uint32_t *ret_down) {
        struct cluster_plan *p = &cl->plan;
        uint32_t admit = boots_at_once(), next = 0, down = 0;
        bool again[FAME_MAX_NODES] = { false }, checked = false;
        int r;

        for (;;) {
                uint32_t booting = 0, queued = 0;
                for (uint32_t i = 0; i < p->nodes; i++) {
                        booting += st[i].started && !st[i].ready && !st[i].failed && !again[i];
                        queued += again[i];
                }
                while (booting < admit && (queued > 0 || next < p->nodes)) {
                        uint32_t i = 0;
                        if (queued > 0) {
                                while (!again[i])
                                        i++;
                                again[i] = false;
                                queued--;
                        } else
                                i = next++;
                        struct node_plan *n = &p->node[i];
                        struct ready_state *s = &st[i];
                        n->fault_boot = s->attempts < faults[i];
                        s->attempts++;
                        s->joined = s->agent = false;
                        s->t_start = now_seconds();
                        r = spawn_node(cl, n);
                        if (r < 0)
                                return r;
                        s->started = true;
                        booting++;
                        if (!checked && (r = check_shared(cl, n)) < 0)
                                return r;
                        checked = true;
                        if ((r = plan_save(p)) < 0)
                                return r;
                }
                uint32_t pending = queued;
                for (uint32_t i = 0; i < p->nodes; i++) {
                        struct node_plan *n = &p->node[i];
                        struct ready_state *s = &st[i];
                        if (!s->started || s->ready || s->failed || again[i])
                                continue;
                        enum ready_step k = ready_check(cl, fam, n, s, timeout_s);
                        if (k == READY_WAITING)
                                pending++;
                        if (k != READY_FAILED)
                                continue;
                        /* stopped (a node that timed out still runs), its lines given up */
                        bool which[FAME_MAX_NODES] = { false };
                        which[i] = true;
                        cluster_stop_node_hard(cl, n, 2000);
                        (void) cluster_check_stopped(p, which, NULL, NULL);
                        slot_mark_down(fam, n->id);
                        bool last = s->attempts >= 2;
                        log_node_failure(last, n, s);
                        if (last) {
                                s->failed = true;
                                down++;
                        } else {
                                again[i] = true;
                                pending++;
                        }
                }
                if (pending == 0 && next >= p->nodes)
                        break;
                sleep_ms(20);       /* polling remote state: node slots and agents */
        }
        *ret_down = down;
        return 0;
}

/* ---- the plan ------------------------------------------------------------------------------ */

/* What `fame up` (and `fame libvirt export`) prepare before starting anything: the image, the
 * FAM, the accelerator, the plan, and for Debian nodes their disks and seeds. */
static int prepare_plan(const struct fame_config *c, const struct up_options *o, struct image *img, struct image *img_arm,
                        struct cluster_plan *p) {
        bool debian = c->kind == FAME_KIND_DEBIAN, reset = o && o->reset;
        bool arm = config_has_arch(c, FAME_ARCH_AARCH64), x86 = config_has_arch(c, FAME_ARCH_X86_64);
        _cleanup_free_ char *self = program_self(), *plugin = NULL;
        enum fame_accel accel = FAME_ACCEL_TCG;
        int r;

        /* the checker's plugin first: a missing one must not leave images or a FAM behind */
        if (c->check != FAME_CHECK_OFF) {
                const char *env = getenv("FAME_CHECK_PLUGIN");
                r = program_check_plugin(&plugin);
                if (r == -ENOMEM)
                        return log_error_errno(r, "Out of memory");
                if (r < 0)
                        return log_error_errno(r, "check = %s needs the checker's QEMU plugin, which is not at %s: build it with 'ninja -C build'%s",
                                               check_to_string(c->check), plugin ? plugin : "src/check/fame-check.so beside fame",
                                               env && *env ? " or fix FAME_CHECK_PLUGIN" : "");
        }
        r = node_images_for_up(c, o ? o->adds : NULL, reset, img, img_arm);
        if (r < 0)
                return r;
        r = fam_ensure(c);
        if (r < 0)
                return r;
        /* aarch64 nodes are always TCG: KVM is for x86_64 nodes on this x86_64 host; the
         * checker is a TCG plugin (config_check() refused accel = kvm with it) */
        if (x86 && c->check == FAME_CHECK_OFF) {
                r = accel_resolve(c->accel, c->qemu, img->kernel, c->cache_dir, &accel);
                if (r < 0)
                        return r;
        } else if (!x86 && c->accel == FAME_ACCEL_KVM)
                return log_error_errno(-EINVAL, "accel = kvm, but every node is aarch64, which runs under TCG on this host; use accel = auto or tcg");
        r = plan_build(c, accel, img, arm ? img_arm : NULL, self, plugin, p);
        if (r < 0)
                return r;
        /* an existing FAM keeps its size whatever fam_size says now (it grows with the node
         * count when nobody set it): the nodes map the file as it is */
        struct fame_geometry g;
        if (fame_file_inspect(p->fam_path, &g) >= 0 && g.total_size != p->fam_size)
                p->fam_size = g.total_size;
        return debian ? debian_nodes_prepare(p, reset) : 0;
}

int cluster_libvirt_export(const struct fame_config *c, const char *dir, void (*wrote)(const char *path, void *userdata),
                           void *userdata) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        struct image img = { 0 }, img_arm = { 0 };
        int r = cluster_lock(&cl, c->state_dir);
        if (r < 0)
                return r;
        r = plan_load(c->state_dir, &cl.plan);
        if (r == -ENOENT) {
                r = prepare_plan(c, NULL, &img, &img_arm, &cl.plan);
                if (r >= 0)
                        log_warning("Cluster '%s' is not up: its nodes will have no Librarian (torms:%d) and no private segment unless 'fame up' runs them; the XML is for its FAM %s",
                                    c->name, FAME_LIBRARIAN_PORT, cl.plan.fam_path);
        }
        if (r >= 0)
                r = domain_export(&cl.plan, dir, wrote, userdata);
        image_done(&img);
        image_done(&img_arm);
        return r;
}

/* ---- up and down ----------------------------------------------------------------------------- */

/* How many nodes of the cluster's last plan run (0 when it never started). */
static int running_before(const char *state_dir, int *ret_running) {
        _cleanup_(cluster_done) struct cluster old = CLUSTER_INIT;
        *ret_running = 0;
        if (plan_load(state_dir, &old.plan) < 0)
                return 0;
        int r = cluster_open_backend(&old);
        if (r < 0)
                return r;
        *ret_running = cluster_running(&old);
        return 0;
}

int cluster_up(const struct fame_config *c, const struct up_options *o, struct cluster_up_result *ret) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        struct cluster_plan *p = &cl.plan;
        struct image img = { 0 }, img_arm = { 0 };
        struct fame *fam = NULL;
        struct ready_state st[FAME_MAX_NODES] = { 0 };
        double t0 = now_seconds();
        int r, running;

        *ret = (struct cluster_up_result) { 0 };
        r = cluster_lock(&cl, c->state_dir);
        if (r < 0)
                return r;
        r = running_before(c->state_dir, &running);
        if (r < 0)
                return r;
        if (running > 0)
                return log_error_errno(-EEXIST, "Cluster '%s' is already up (%d node%s running); see 'fame status', or stop it with 'fame down'",
                                       c->name, running, running == 1 ? "" : "s");
        /* The backend first (a libvirtd that does not answer), then the image: a missing kernel
         * or package must not leave a new FAM file behind.  (No plan yet: no name to give.) */
        r = backend_open(c->backend, NULL, c->libvirt_uri, &cl.be);
        if (r < 0)
                return r;
        r = prepare_plan(c, o, &img, &img_arm, p);
        if (r < 0)
                goto out;
        unsigned faults[FAME_MAX_NODES];
        r = parse_fault_boot(p, faults);
        if (r < 0)
                goto out;
        /* the FAM has its final size; nothing has started yet */
        r = cluster_check_prepare(p);
        if (r < 0)
                goto out;
        r = switch_start(p);
        if (r < 0)
                goto out;
        r = agents_start(p);
        if (r < 0) {
                switch_stop(p);
                goto out;
        }
        r = librarian_start(p);
        if (r < 0) {
                switch_stop(p);
                agents_stop(p);
                goto out;
        }
        r = fame_open(p->fam_path, 0, &fam);
        if (r < 0)
                goto out;

        uint32_t admit = boots_at_once();
        log_progress("starting %" PRIu32 " node%s (%s), %" PRIu32 " at a time; waiting for each to join the FAM and its guest agent to answer",
                     p->nodes, p->nodes == 1 ? "" : "s", accel_to_string(p->accel), admit < p->nodes ? admit : p->nodes);
        uint32_t down = 0;
        r = boot_nodes(&cl, fam, st, faults, c->ready_timeout, &down);
        if (r < 0)
                goto fail;
        if (down == p->nodes) {
                r = log_error_errno(-EIO, "No node of cluster '%s' booted; see the errors above", c->name);
                goto fail;
        }

        for (uint32_t i = 0; i < p->nodes; i++) {
                ret->node[i].pid = cluster_node_pid(&cl, &p->node[i]);
                ret->node[i].ready = st[i].ready;
                ret->node[i].attempts = st[i].attempts;
                ret->node[i].ready_seconds = st[i].ready ? st[i].t_ready - st[i].t_start : 0;
        }
        ret->down = down;
        ret->seconds = now_seconds() - t0;
        cluster_take_plan(&cl, &ret->plan);
        r = 0;
        goto out;
fail:
        /* No orphans: stop every QEMU this call started, and the switch. */
        for (uint32_t i = 0; i < p->nodes; i++)
                if (st[i].started)
                        cluster_stop_node_hard(&cl, &p->node[i], 2000);
        switch_stop(p);
        agents_stop(p);
        librarian_stop(p);
out:
        fame_close(fam);
        image_done(&img);
        image_done(&img_arm);
        return r;
}

/* --crash without the checker: nothing would say what the nodes had not written back. */
static int need_check_for_crash(const struct cluster_plan *p) {
        if (p->check != FAME_CHECK_OFF)
                return 0;
        return log_error_errno(-EINVAL, "--crash needs a cluster started with --check (fame up --check): only the checker knows what was written back");
}

int cluster_down(const struct fame_config *c, bool crash, struct cluster_down_result *ret) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        const struct cluster_plan *p = &cl.plan;
        bool which[FAME_MAX_NODES];
        struct fame *fam = NULL;
        int r;

        *ret = (struct cluster_down_result) { .crash = crash };
        r = cluster_lock_existing(&cl, c->state_dir);
        if (r < 0)
                return r;
        r = cluster_load(&cl, c);
        if (r < 0)
                return r;
        if (crash && (r = need_check_for_crash(p)) < 0)
                return r;
        int running = cluster_running(&cl);
        for (uint32_t i = 0; i < p->nodes; i++) {
                which[i] = true;
                ret->crashed[i] = crash && cluster_node_pid(&cl, &p->node[i]);
        }
        if (crash) {
                /* power lost everywhere at once: no node is asked to shut down */
                for (uint32_t i = 0; i < p->nodes; i++)
                        if (ret->crashed[i] && (r = cl.be->ops->crash(cl.be->data, p, &p->node[i])) < 0)
                                return r;
        } else {
                r = stop_nodes(&cl, which, c->down_timeout);
                if (r < 0)
                        return r;
        }
        /* every node is gone: the checker learns it (nodes that stopped before: a no-op) */
        int k = cluster_check_stopped(p, which, ret->crashed, ret->restored);
        ret->check_told = k > 0;
        switch_stop(p);
        agents_stop(p);
        librarian_stop(p);
        if (fame_open(p->fam_path, 0, &fam) >= 0) {
                for (uint32_t i = 0; i < p->nodes; i++)
                        slot_mark_down(fam, p->node[i].id);
                fame_close(fam);
        }
        ret->stopped = running;
        cluster_take_plan(&cl, &ret->plan);
        return k < 0 ? k : 0;
}

/* ---- one node ------------------------------------------------------------------------------- */

/* Locks the cluster and finds the node in its plan: the start of kill and start. */
static int lock_node(struct cluster *cl, const struct fame_config *c, const char *node, struct node_plan **ret) {
        int r = cluster_lock_existing(cl, c->state_dir);
        return r < 0 ? r : cluster_load_node(cl, c, node, ret);
}

int cluster_kill_node(const struct fame_config *c, const char *node, bool crash, struct cluster_node_result *ret) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        bool which[FAME_MAX_NODES] = { false };
        uint64_t restored[FAME_MAX_NODES];
        struct node_plan *n;
        struct fame *fam = NULL;
        int r;

        *ret = (struct cluster_node_result) { 0 };
        r = lock_node(&cl, c, node, &n);
        if (r < 0)
                return r;
        if (crash && (r = need_check_for_crash(&cl.plan)) < 0)
                return r;
        if (!cluster_node_pid(&cl, n))
                return log_error_errno(-ESRCH, "%s is not running", n->name);
        if (crash) {
                r = cl.be->ops->crash(cl.be->data, &cl.plan, n);
                if (r < 0)
                        return r;
        } else
                cluster_stop_node_hard(&cl, n, 3000);
        if (cluster_node_pid(&cl, n))
                return log_error_errno(-EIO, "%s could not be stopped", n->name);
        /* the node is gone: what it had not written back is lost (crash) or counts as written */
        which[n->id - 1] = true;
        r = cluster_check_stopped(&cl.plan, which, crash ? which : NULL, restored);
        if (fame_open(cl.plan.fam_path, 0, &fam) >= 0) {
                slot_mark_down(fam, n->id);
                fame_close(fam);
        }
        if (r < 0)
                return r;
        snprintf(ret->name, sizeof ret->name, "%s", n->name);
        ret->crashed = crash;
        ret->check_told = r > 0;
        ret->restored = restored[n->id - 1];
        return 0;
}

int cluster_start_node(const struct fame_config *c, const char *node, struct cluster_node_result *ret) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        struct ready_state st[FAME_MAX_NODES] = { 0 };
        struct fame *fam = NULL;
        struct node_plan *n;
        int r;

        *ret = (struct cluster_node_result) { 0 };
        r = lock_node(&cl, c, node, &n);
        if (r < 0)
                return r;
        struct ready_state *s = &st[n->id - 1];
        if (cluster_node_pid(&cl, n)) {
                r = log_error_errno(-EEXIST, "%s is already running", n->name);
                goto out;
        }
        /* a QEMU that died by itself left the checker thinking the node still holds lines */
        bool which[FAME_MAX_NODES] = { false };
        which[n->id - 1] = true;
        r = cluster_check_stopped(&cl.plan, which, NULL, NULL);
        if (r < 0)
                goto out;
        r = fame_open(cl.plan.fam_path, 0, &fam);
        if (r < 0)
                goto out;
        r = switch_start(&cl.plan);
        if (r < 0)
                goto out;
        /* a cluster started before fame had the keeper, or one whose keeper was killed */
        r = agents_start(&cl.plan);
        if (r < 0)
                goto out;
        if (cl.plan.kind == FAME_KIND_DEBIAN && !ssh_port_free(n->ssh_port)) {
                n->ssh_port = (uint16_t) seed_free_port();
                if (!n->ssh_port) {
                        r = log_error_errno(-EADDRNOTAVAIL, "No free TCP port on 127.0.0.1 for %s's SSH", n->name);
                        goto out;
                }
        }
        s->t_start = now_seconds();
        r = spawn_node(&cl, n);
        if (r < 0)
                goto out;
        s->started = true;
        r = plan_save(&cl.plan);
        if (r >= 0)
                r = wait_ready(&cl, fam, st, c->ready_timeout);
        if (r < 0) {
                cluster_stop_node_hard(&cl, n, 2000);
                goto out;
        }
        snprintf(ret->name, sizeof ret->name, "%s", n->name);
        ret->ready_seconds = s->t_ready - s->t_start;
out:
        fame_close(fam);
        return r;
}
