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

/* ---- the private segment's switch ------------------------------------------------------------- */

/* The cluster's switch, or 0. */
pid_t switch_pid(const struct cluster_plan *p) {
        return pidfile_process(p->switch_pid, p->switch_sock);
}

void switch_stop(const struct cluster_plan *p) {
        pid_t pid = switch_pid(p);
        if (pid) {
                kill(pid, SIGTERM);
                for (int i = 0; i < 100 && switch_pid(p); i++)
                        sleep_ms(10);   /* waiting for another process to exit */
                if (switch_pid(p))
                        kill(pid, SIGKILL);
        }
        (void) unlink(p->switch_pid);
}

int switch_start(const struct cluster_plan *p) {
        char log_path[PATH_MAX];
        if (switch_pid(p))
                return 0;
        switch_stop(p);
        snprintf(log_path, sizeof log_path, "%s/switch.log", p->state_dir);
        _cleanup_close_ int lfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        _cleanup_cmd_ struct cmd *c = cmd_new(p->fame_bin);
        cmd_args(c, (const char *const[]) { "debug", "net-switch", p->switch_sock, NULL });
        for (uint32_t i = 0; i < p->nodes; i++)
                cmd_arg(c, p->node[i].net_sock);
        cmd_new_session(c);
        cmd_map_fd(c, 0, -1);
        cmd_map_fd(c, 1, lfd);
        cmd_map_fd(c, 2, lfd);
        (void) unlink(p->switch_sock);
        pid_t pid = cmd_run_async(c);
        if (pid < 0)
                return log_error_errno(pid, "Cannot start the cluster's network switch: %m");
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d\n", (int) pid);
        int fd = open(p->switch_pid, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write_all(fd, buf, (size_t) n) < 0) {
                if (fd >= 0)
                        close(fd);
                kill(pid, SIGKILL);
                return log_error_errno(-EIO, "Cannot write '%s': %m", p->switch_pid);
        }
        close(fd);
        /* ready when its socket exists */
        for (int i = 0; i < 500 && access(p->switch_sock, F_OK) < 0; i++) {
                int status;
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return log_error_errno(-EIO, "The cluster's network switch exited at once; see %s", log_path);
                sleep_ms(10);   /* waiting for another process to bind its socket */
        }
        if (access(p->switch_sock, F_OK) < 0)
                return log_error_errno(-ETIMEDOUT, "The cluster's network switch did not bind %s; see %s", p->switch_sock, log_path);
        return 0;
}

/* ---- the Librarian ------------------------------------------------------------------------------ */

static void librarian_path(const struct cluster_plan *p, const char *name, char *buf, size_t len) {
        snprintf(buf, len, "%s/%s", p->librarian_dir, name);
}

/* The cluster's Librarian, or 0. */
pid_t librarian_pid(const struct cluster_plan *p) {
        char pidfile[PATH_MAX], db[PATH_MAX];
        librarian_path(p, "librarian.pid", pidfile, sizeof pidfile);
        librarian_path(p, "librarian.db", db, sizeof db);
        return pidfile_process(pidfile, db);
}

void librarian_stop(const struct cluster_plan *p) {
        char pidfile[PATH_MAX];
        pid_t pid = librarian_pid(p);
        if (pid) {
                kill(pid, SIGTERM);
                for (int i = 0; i < 500 && librarian_pid(p); i++)
                        sleep_ms(10);   /* waiting for another process to exit */
                if (librarian_pid(p))
                        kill(pid, SIGKILL);
        }
        librarian_path(p, "librarian.pid", pidfile, sizeof pidfile);
        (void) unlink(pidfile);
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

/*
 * Starts the cluster's Librarian (docs/librarian.md): the topology of the FAM in
 * STATE/librarian/topology.ini, the database initialised once from it (a database made for
 * another FAM or topology is moved aside, never overwritten), the daemon on a free loopback
 * port for host clients and one port per node that accepts only that node's id.
 */
int librarian_start(struct cluster_plan *p) {
        char db[PATH_MAX], topo[PATH_MAX], pidfile[PATH_MAX], log_path[PATH_MAX], portfile[PATH_MAX];
        struct fame_geometry geo;
        _cleanup_free_ char *ini = NULL, *err = NULL, *old = NULL, *bin = NULL;
        char uuid[37], comment[256];
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
        librarian_path(p, "librarian.db", db, sizeof db);
        librarian_path(p, "topology.ini", topo, sizeof topo);
        librarian_path(p, "librarian.pid", pidfile, sizeof pidfile);
        librarian_path(p, "librarian.log", log_path, sizeof log_path);
        librarian_path(p, "port", portfile, sizeof portfile);
        librarian_stop(p);

        fame_uuid_format(geo.uuid, uuid);
        snprintf(comment, sizeof comment, "cluster %s, FAM %s (uuid %s)", p->name, p->fam_path, uuid);
        r = topology_ini_for_geometry(&geo, comment, &ini, &err);
        if (r < 0)
                return log_error_errno(r, "Cannot make the Librarian topology: %s", err ? err : "?");
        size_t old_len = 0;
        old = read_file(topo, 1 << 20, &old_len);
        if (access(db, F_OK) == 0 && (!old || strcmp(old, ini) != 0)) {
                char aside[PATH_MAX];
                snprintf(aside, sizeof aside, "%s.old-%lld", db, (long long) time(NULL));
                if (rename(db, aside) < 0)
                        return log_error_errno(-errno, "Failed to move '%s' aside: %m", db);
                log_warning("The Librarian database was made for another FAM or topology; kept as %s, starting a new one", aside);
        }
        r = write_file_atomic(topo, 0644, ini, strlen(ini));
        if (r < 0)
                return log_error_errno(r, "Failed to write '%s': %m", topo);

        _cleanup_close_ int lfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (lfd < 0)
                return log_error_errno(-errno, "Failed to open '%s': %m", log_path);
        if (access(db, F_OK) < 0) {
                _cleanup_cmd_ struct cmd *c = cmd_new(bin);
                cmd_args(c, (const char *const[]) { "init", "--db", db, "--topology", topo, NULL });
                cmd_map_fd(c, 0, -1);
                cmd_map_fd(c, 1, lfd);
                cmd_map_fd(c, 2, lfd);
                r = cmd_run_timeout(c, 120000, NULL);
                if (r != 0)
                        return log_error_errno(-EIO, "Initialising the Librarian database %s failed; see %s", db, log_path);
        }

        size_t n_used = 0;
        p->librarian_port = free_port_except(used, n_used);
        used[n_used++] = p->librarian_port;
        _cleanup_cmd_ struct cmd *c = cmd_new(bin);
        cmd_args(c, (const char *const[]) { "serve", "--db", db, "--fam", p->fam_path, "--bind", "127.0.0.1", NULL });
        cmd_argf(c, "--port=%u", p->librarian_port);
        cmd_argf(c, "--port-file=%s", portfile);
        for (uint32_t i = 0; i < p->nodes; i++) {
                struct node_plan *n = &p->node[i];
                n->librarian_node = fame_librarian_node_id(&geo, n->id);
                n->librarian_port = free_port_except(used, n_used);
                used[n_used++] = n->librarian_port;
                if (!n->librarian_port || !n->librarian_node)
                        return log_error_errno(-EADDRNOTAVAIL, "No free TCP port on 127.0.0.1 for the Librarian of %s", n->name);
                cmd_argf(c, "--node-port=%" PRIu32 "=%u", n->librarian_node, n->librarian_port);
        }
        cmd_new_session(c);
        cmd_map_fd(c, 0, -1);
        cmd_map_fd(c, 1, lfd);
        cmd_map_fd(c, 2, lfd);
        (void) unlink(portfile);
        pid_t pid = cmd_run_async(c);
        if (pid < 0)
                return log_error_errno(pid, "Cannot start the cluster's Librarian: %m");
        char buf[32];
        int k = snprintf(buf, sizeof buf, "%d\n", (int) pid);
        r = write_file_atomic(pidfile, 0644, buf, (size_t) k);
        if (r < 0) {
                kill(pid, SIGKILL);
                return log_error_errno(r, "Cannot write '%s': %m", pidfile);
        }
        /* ready when it has written its port file (after binding every port) */
        for (int i = 0; i < 1000 && access(portfile, F_OK) < 0; i++) {
                int status;
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return log_error_errno(-EIO, "The cluster's Librarian exited at once; see %s", log_path);
                sleep_ms(10);   /* waiting for another process to bind its ports */
        }
        if (access(portfile, F_OK) < 0) {
                kill(pid, SIGKILL);
                return log_error_errno(-ETIMEDOUT, "The cluster's Librarian did not start listening; see %s", log_path);
        }
        return 0;
}
