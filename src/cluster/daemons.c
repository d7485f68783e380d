/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Background processes with pidfiles, and the cluster's switch and Librarian (daemons.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemons.h"
#include "fame.h"
#include "log.h"
#include "macro.h"
#include "programs.h"
#include "seed.h"
#include "spawn.h"
#include "topology.h"
#include "util.h"

/* The pid in pidfile if that process is alive and its command line holds `needle` (a zombie
 * or a reused pid does not count), else 0. */
pid_t pidfile_process(const char *pidfile, const char *needle) {
        char buf[64];
        int fd = open(pidfile, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (k <= 0)
                return 0;
        buf[k] = 0;
        pid_t pid = (pid_t) strtol(buf, NULL, 10);
        return pid > 0 && process_cmdline_has(pid, needle) ? pid : 0;
}

void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000 * 1000 };
        nanosleep(&ts, NULL);
}

/* ---- a helper daemon ----------------------------------------------------------------------------- */

/* One of the cluster's helper daemons: started in a session of its own with its output in a log,
 * its pid in a pidfile, ready once it has made ready_path. */
struct helper {
        const char *what;               /* messages say "the cluster's WHAT" */
        char pidfile[PATH_MAX];
        char needle[PATH_MAX];          /* in its command line: only then is a pid the helper's */
        char ready_path[PATH_MAX];      /* removed before it starts, made by it once it serves */
        char log_path[PATH_MAX];
        char not_ready[PATH_MAX + 32];  /* what it did not do in time ("did not bind PATH") */
        int ready_ms;                   /* how long it may take to be ready */
        int stop_ms;                    /* how long it may take to exit after SIGTERM */
};

static pid_t helper_pid(const struct helper *h) {
        return pidfile_process(h->pidfile, h->needle);
}

/* SIGTERM, then SIGKILL after stop_ms; the pidfile goes. */
static void helper_stop(const struct helper *h) {
        pid_t pid = helper_pid(h);
        if (pid) {
                kill(pid, SIGTERM);
                for (int i = 0; i < h->stop_ms / 10 && helper_pid(h); i++)
                        sleep_ms(10);   /* waiting for another process to exit */
                if (helper_pid(h))
                        kill(pid, SIGKILL);
        }
        (void) unlink(h->pidfile);
}

/* Runs c as the helper (stdin closed, stdout and stderr to log_fd), writes its pidfile and waits
 * until it is ready; a helper that is not ready in time is killed. */
static int helper_start(const struct helper *h, struct cmd *c, int log_fd) {
        char buf[32];
        int r;

        cmd_new_session(c);
        cmd_map_fd(c, 0, -1);
        cmd_map_fd(c, 1, log_fd);
        cmd_map_fd(c, 2, log_fd);
        (void) unlink(h->ready_path);
        pid_t pid = cmd_run_async(c);
        if (pid < 0)
                return log_error_errno(pid, "Cannot start the cluster's %s: %m", h->what);
        int k = snprintf(buf, sizeof buf, "%d\n", (int) pid);
        r = write_file_atomic(h->pidfile, 0644, buf, (size_t) k);
        if (r < 0) {
                kill(pid, SIGKILL);
                return log_error_errno(r, "Cannot write '%s': %m", h->pidfile);
        }
        for (int i = 0; i < h->ready_ms / 10 && access(h->ready_path, F_OK) < 0; i++) {
                int status;
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return log_error_errno(-EIO, "The cluster's %s exited at once; see %s", h->what, h->log_path);
                sleep_ms(10);   /* waiting for another process to bind its sockets */
        }
        if (access(h->ready_path, F_OK) < 0) {
                kill(pid, SIGKILL);
                return log_error_errno(-ETIMEDOUT, "The cluster's %s %s; see %s", h->what, h->not_ready, h->log_path);
        }
        return 0;
}

/* ---- the private segment's switch ------------------------------------------------------------- */

/* STATE/switch.pid, .sock (ready once bound), .log */
static void switch_helper(const struct cluster_plan *p, struct helper *h) {
        *h = (struct helper) { .what = "network switch", .ready_ms = 5000, .stop_ms = 1000 };
        snprintf(h->pidfile, sizeof h->pidfile, "%s", p->switch_pid);
        snprintf(h->needle, sizeof h->needle, "%s", p->switch_sock);
        snprintf(h->ready_path, sizeof h->ready_path, "%s", p->switch_sock);
        snprintf(h->log_path, sizeof h->log_path, "%s/switch.log", p->state_dir);
        snprintf(h->not_ready, sizeof h->not_ready, "did not bind %s", p->switch_sock);
}

pid_t switch_pid(const struct cluster_plan *p) {
        struct helper h;
        switch_helper(p, &h);
        return helper_pid(&h);
}

void switch_stop(const struct cluster_plan *p) {
        struct helper h;
        switch_helper(p, &h);
        helper_stop(&h);
}

int switch_start(const struct cluster_plan *p) {
        struct helper h;
        switch_helper(p, &h);
        if (helper_pid(&h))
                return 0;
        helper_stop(&h);
        _cleanup_close_ int lfd = open(h.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        _cleanup_cmd_ struct cmd *c = cmd_new(p->fame_bin);
        cmd_args(c, (const char *const[]) { "debug", "net-switch", p->switch_sock, NULL });
        for (uint32_t i = 0; i < p->nodes; i++)
                cmd_arg(c, p->node[i].net_sock);
        return helper_start(&h, c, lfd);
}

/* ---- the agent keeper --------------------------------------------------------------------------- */

/* STATE/agents.pid, .ready (made once every node's agent.sock is bound; also in its command
 * line, which no other process has), .log */
static void agents_helper(const struct cluster_plan *p, struct helper *h) {
        *h = (struct helper) { .what = "agent keeper", .ready_ms = 5000, .stop_ms = 1000 };
        snprintf(h->pidfile, sizeof h->pidfile, "%s", p->agents_pid);
        snprintf(h->needle, sizeof h->needle, "%s", p->agents_ready);
        snprintf(h->ready_path, sizeof h->ready_path, "%s", p->agents_ready);
        snprintf(h->log_path, sizeof h->log_path, "%s/agents.log", p->state_dir);
        snprintf(h->not_ready, sizeof h->not_ready, "did not bind the nodes' agent.sock");
}

pid_t agents_pid(const struct cluster_plan *p) {
        struct helper h;
        if (p->backend != FAME_BACKEND_QEMU)
                return 0;
        agents_helper(p, &h);
        return helper_pid(&h);
}

void agents_stop(const struct cluster_plan *p) {
        struct helper h;
        if (p->backend != FAME_BACKEND_QEMU)
                return;
        agents_helper(p, &h);
        helper_stop(&h);
}

int agents_start(const struct cluster_plan *p) {
        struct helper h;
        /* libvirt keeps a connection to each guest agent itself */
        if (p->backend != FAME_BACKEND_QEMU)
                return 0;
        agents_helper(p, &h);
        if (helper_pid(&h))
                return 0;
        helper_stop(&h);
        _cleanup_close_ int lfd = open(h.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (lfd < 0)
                return log_error_errno(-errno, "Failed to open '%s': %m", h.log_path);
        _cleanup_cmd_ struct cmd *c = cmd_new(p->fame_bin);
        cmd_args(c, (const char *const[]) { "debug", "agents", p->agents_ready, NULL });
        for (uint32_t i = 0; i < p->nodes; i++)
                cmd_arg(c, p->node[i].dir);
        return helper_start(&h, c, lfd);
}

/* ---- the Librarian ------------------------------------------------------------------------------ */

/* STATE/librarian/librarian.pid, librarian.db (in its command line), port (written once it
 * listens on every port), librarian.log */
static void librarian_helper(const struct cluster_plan *p, struct helper *h) {
        *h = (struct helper) { .what = "Librarian", .ready_ms = 10000, .stop_ms = 5000 };
        snprintf(h->pidfile, sizeof h->pidfile, "%s/librarian.pid", p->librarian_dir);
        snprintf(h->needle, sizeof h->needle, "%s/librarian.db", p->librarian_dir);
        snprintf(h->ready_path, sizeof h->ready_path, "%s/port", p->librarian_dir);
        snprintf(h->log_path, sizeof h->log_path, "%s/librarian.log", p->librarian_dir);
        snprintf(h->not_ready, sizeof h->not_ready, "did not start listening");
}

pid_t librarian_pid(const struct cluster_plan *p) {
        struct helper h;
        librarian_helper(p, &h);
        return helper_pid(&h);
}

void librarian_stop(const struct cluster_plan *p) {
        struct helper h;
        librarian_helper(p, &h);
        helper_stop(&h);
}

/* A free loopback port not in used[0..n). */
static uint16_t free_port_except(const uint16_t *used, size_t n) {
        for (int tries = 0; tries < 20; tries++) {
                uint16_t port = (uint16_t) seed_free_port();
                bool dup = port == 0;
                for (size_t i = 0; i < n && !dup; i++)
                        dup = used[i] == port;
                if (!dup)
                        return port;
        }
        return 0;
}

/* The topology the cluster's Librarian database is made from, in STATE/librarian: topology.json,
 * the TMCF form with The Machine's full coordinates (topology_tmcf_for_geometry).  A database
 * made before from topology.ini (FAM/E before 2026-12-04, coordinates relative to the node) for
 * this same FAM is kept with it: nothing is lost.  A database made for another FAM or topology
 * is moved aside; the topology file is never overwritten while its database is kept.  *ret: the
 * file in use. */
static int librarian_topology(const struct cluster_plan *p, const struct fame_geometry *geo, const char *db, char **ret) {
        _cleanup_free_ char *ini = NULL, *json = NULL, *err = NULL, *old_json = NULL, *old_ini = NULL;
        _cleanup_free_ char *json_path = strf("%s/topology.json", p->librarian_dir), *ini_path = strf("%s/topology.ini", p->librarian_dir);
        char uuid[37], comment[256];
        int r;

        if (!json_path || !ini_path)
                return log_error_errno(-ENOMEM, "Out of memory");
        fame_uuid_format(geo->uuid, uuid);
        snprintf(comment, sizeof comment, "cluster %s, FAM %s (uuid %s)", p->name, p->fam_path, uuid);
        r = topology_tmcf_for_geometry(geo, &json, &err);
        if (r >= 0)
                r = topology_ini_for_geometry(geo, comment, &ini, &err);
        if (r < 0)
                return log_error_errno(r, "Cannot make the Librarian topology: %s", err ? err : "?");
        old_json = read_file(json_path, 1 << 20, NULL);
        old_ini = read_file(ini_path, 1 << 20, NULL);
        if (access(db, F_OK) == 0) {
                if (old_json && strcmp(old_json, json) == 0) {
                        *ret = TAKE_PTR(json_path);
                        return 0;
                }
                if (!old_json && old_ini && strcmp(old_ini, ini) == 0) {
                        *ret = TAKE_PTR(ini_path);
                        return 0;
                }
                char aside[PATH_MAX];
                snprintf(aside, sizeof aside, "%s.old-%lld", db, (long long) time(NULL));
                /* with its -wal: its last commits, which the new database must not get */
                r = sqlite_files_rename(db, aside);
                if (r < 0)
                        return log_error_errno(r, "Failed to move '%s' and its -wal aside to '%s': %m; "
                                               "move them by hand", db, aside);
                log_warning("The Librarian database was made for another FAM or topology; kept as %s, starting a new one", aside);
        }
        (void) unlink(ini_path);
        r = write_file_atomic(json_path, 0644, json, strlen(json));
        if (r < 0)
                return log_error_errno(r, "Failed to write '%s': %m", json_path);
        *ret = TAKE_PTR(json_path);
        return 0;
}

/*
 * Starts the cluster's Librarian (docs/librarian.md): the topology of the FAM in
 * STATE/librarian/topology.json, the database initialised once from it, the daemon on a free
 * loopback port for host clients and one port per node that accepts only that node's id.
 */
int librarian_start(struct cluster_plan *p) {
        _cleanup_free_ char *topo = NULL;
        struct fame_geometry geo;
        struct helper h;
        _cleanup_free_ char *err = NULL, *bin = NULL;
        uint16_t used[FAME_MAX_NODES + 1];
        int r;

        for (uint32_t i = 0; i < p->nodes; i++)
                p->node[i].librarian_port = p->node[i].librarian_node = 0;
        p->librarian_port = 0;
        r = fame_file_inspect(p->fam_path, &geo);
        if (r < 0)
                return log_error_errno(r, "Cannot read FAM '%s': %m", p->fam_path);
        uint32_t dummy;
        r = topology_node_id_for(&geo, geo.node_count, &dummy, &err);
        if (r < 0) {
                log_warning("No Librarian for cluster '%s': %s", p->name, err ? err : "topology not expressible");
                return 0;
        }
        bin = cluster_librarian_binary();
        if (!bin)
                return log_error_errno(-ENOENT, "Cannot find fame-librarian next to fame; rebuild with 'make' or set FAME_LIBRARIAN_BINARY");
        r = mkdir_p(p->librarian_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create '%s': %m", p->librarian_dir);
        librarian_helper(p, &h);
        helper_stop(&h);

        const char *db = h.needle;
        r = librarian_topology(p, &geo, db, &topo);
        if (r < 0)
                return r;
        _cleanup_close_ int lfd = open(h.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (lfd < 0)
                return log_error_errno(-errno, "Failed to open '%s': %m", h.log_path);
        if (access(db, F_OK) < 0) {
                _cleanup_cmd_ struct cmd *c = cmd_new(bin);
                cmd_args(c, (const char *const[]) { "init", "--db", db, "--topology", topo, NULL });
                cmd_map_fd(c, 0, -1);
                cmd_map_fd(c, 1, lfd);
                cmd_map_fd(c, 2, lfd);
                r = cmd_run_timeout(c, 120000, NULL);
                if (r != 0)
                        return log_error_errno(-EIO, "Initialising the Librarian database %s failed; see %s", db, h.log_path);
        }

        size_t n_used = 0;
        p->librarian_port = free_port_except(used, n_used);
        used[n_used++] = p->librarian_port;
        _cleanup_cmd_ struct cmd *c = cmd_new(bin);
        cmd_args(c, (const char *const[]) { "serve", "--db", db, "--fam", p->fam_path, "--bind", "127.0.0.1", NULL });
        cmd_argf(c, "--port=%u", p->librarian_port);
        /* who may say what (docs/librarian.md): the nodes' secrets reach them through fw_cfg */
        if (p->librarian_auth == FAME_LIBRARIAN_AUTH_NONE)
                cmd_arg(c, "--trust-clients");
        else
                cmd_argf(c, "--secrets=%s/" PLAN_SECRETS_DIR, p->librarian_dir);
        cmd_argf(c, "--port-file=%s", h.ready_path);
        /* its management view (docs/lmp.md): listening before the port file is written */
        p->lmp_port = free_port_except(used, n_used);
        used[n_used++] = p->lmp_port;
        if (!p->lmp_port)
                return log_error_errno(-EADDRNOTAVAIL, "No free TCP port on 127.0.0.1 for the management view");
        cmd_argf(c, "--http-port=%u", p->lmp_port);
        cmd_argf(c, "--cluster=%s", p->name);
        cmd_argf(c, "--cluster-state=%s", p->state_dir);
        /* the checker learns of the books the Librarian zeroes (cluster_check_prepare() made
         * STATE/check already) */
        if (p->check != FAME_CHECK_OFF)
                cmd_argf(c, "--check-state=%s", p->state_dir);
        for (uint32_t i = 0; i < p->nodes; i++) {
                struct node_plan *n = &p->node[i];
                n->librarian_node = fame_librarian_node_id(&geo, n->id);
                n->librarian_port = free_port_except(used, n_used);
                used[n_used++] = n->librarian_port;
                if (!n->librarian_port || !n->librarian_node)
                        return log_error_errno(-EADDRNOTAVAIL, "No free TCP port on 127.0.0.1 for the Librarian of %s", n->name);
                cmd_argf(c, "--node-port=%" PRIu32 "=%u", n->librarian_node, n->librarian_port);
                /* the node's virtio-serial port (fame-lfs's own requests): QEMU connects to it,
                 * in the node's directory, which may not be there yet */
                r = mkdir_p(n->dir, 0755);
                if (r < 0)
                        return log_error_errno(r, "Failed to create '%s': %m", n->dir);
                cmd_argf(c, "--node-socket=%" PRIu32 "=%s", n->librarian_node, n->librarian_sock);
        }
        return helper_start(&h, c, lfd);
}
