/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame bench lfs on the host (bench-lfs.h): /lfs as a node has it, but private to this run —
 * a FAM file, a Librarian on a loopback port and fame-lfs mounted, all in a temporary
 * directory — beside a tmpfs; everything stopped and removed afterwards.
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-lfs.h"
#include "daemons.h"
#include "fame.h"
#include "librarian-secret.h"
#include "log.h"
#include "macro.h"
#include "programs.h"
#include "spawn.h"
#include "topology.h"
#include "util.h"

enum { START_MS = 15000 };

/* What one host run set up, so that teardown undoes exactly that. */
struct host {
        char dir[PATH_MAX];             /* $TMPDIR/fame-bench-lfs-XXXXXX */
        char fam[PATH_MAX + 16], db[PATH_MAX + 16], topology[PATH_MAX + 16], log[PATH_MAX + 16];
        char port_file[PATH_MAX + 16], ready[PATH_MAX + 16], mnt[PATH_MAX + 16], tmpfs[PATH_MAX + 16];
        char secret[PATH_MAX + 32];
        const char *baseline;
        pid_t librarian, lfs;
        bool mounted_tmpfs;
};

/* Waits for another process to make path (a port file, a ready file): 0, or -ETIMEDOUT, or
 * -ECHILD when pid exited first, or -EINTR on a stop request. */
static int wait_for_file(const char *path, pid_t pid) {
        for (double end = now_seconds() + START_MS / 1000.0; now_seconds() < end; ) {
                if (access(path, F_OK) == 0)
                        return 0;
                if (lfs_bench_stop)
                        return -EINTR;
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        return -ECHILD;
                sleep_ms(10);   /* waiting for another process to bind or to mount */
        }
        return access(path, F_OK) == 0 ? 0 : -ETIMEDOUT;
}

/* SIGTERM, then SIGKILL when it has not exited within 5 s. */
static void stop_process(pid_t *pid) {
        if (*pid <= 0)
                return;
        kill(*pid, SIGTERM);
        if (wait_pid_timeout(*pid, 5000) == -ETIMEDOUT) {
                kill(*pid, SIGKILL);
                (void) wait_pid_timeout(*pid, 5000);
        }
        *pid = 0;
}

static void host_teardown(struct host *h) {
        if (h->lfs > 0 && umount2(h->mnt, 0) < 0 && errno != EINVAL && errno != ENOENT)
                (void) umount2(h->mnt, MNT_DETACH);     /* still busy: let go of it anyway */
        stop_process(&h->lfs);
        stop_process(&h->librarian);
        if (h->mounted_tmpfs && umount2(h->tmpfs, MNT_DETACH) < 0)
                log_warning("Failed to unmount '%s': %m", h->tmpfs);
        if (h->dir[0])
                lfs_bench_rm_rf(h->dir);
}

/* The Librarian's database for a one-node FAM, and the Librarian serving it. */
static int start_librarian(struct host *h, const struct fame_geometry *geo, int log_fd) {
        _cleanup_free_ char *bin = cluster_librarian_binary(), *ini = NULL, *err = NULL;
        int r;

        if (!bin)
                return log_error_errno(-ENOENT, "Cannot find fame-librarian next to fame; rebuild with 'make' or set FAME_LIBRARIAN_BINARY");
        r = topology_ini_for_geometry(geo, "fame bench lfs", &ini, &err);
        if (r < 0)
                return log_error_errno(r, "Cannot make the Librarian topology: %s", err ? err : "?");
        r = write_file_atomic(h->topology, 0644, ini, strlen(ini));
        if (r < 0)
                return log_error_errno(r, "Failed to write '%s': %m", h->topology);

        _cleanup_cmd_ struct cmd *init = cmd_new(bin);
        cmd_args(init, (const char *const[]) { "init", "--db", h->db, "--topology", h->topology, NULL });
        cmd_map_fd(init, 0, -1);
        cmd_map_fd(init, 1, log_fd);
        cmd_map_fd(init, 2, log_fd);
        r = cmd_run_timeout(init, 60000, NULL);
        if (r != 0)
                return log_error_errno(r < 0 ? r : -EIO, "Initialising the Librarian database failed; see %s", h->log);

        _cleanup_cmd_ struct cmd *serve = cmd_new(bin);
        cmd_args(serve, (const char *const[]) { "serve", "--db", h->db, "--fam", h->fam, "--bind", "127.0.0.1",
                                                "--port", "0", "--port-file", h->port_file, NULL });
        cmd_map_fd(serve, 0, -1);
        cmd_map_fd(serve, 1, log_fd);
        cmd_map_fd(serve, 2, log_fd);
        cmd_die_with_parent(serve);
        h->librarian = cmd_run_async(serve);
        if (h->librarian < 0)
                return log_error_errno(h->librarian, "Cannot run %s: %m", bin);
        r = wait_for_file(h->port_file, h->librarian);
        if (r == -EINTR)
                return r;
        if (r < 0)
                return log_error_errno(r, "The Librarian did not start; see %s", h->log);
        return 0;
}

static int mount_lfs(struct host *h, const struct fame_geometry *geo, int log_fd) {
        _cleanup_free_ char *bin = program_lfs_binary(), *port = NULL;
        char addr[64], node[16];
        int r;

        if (!bin)
                return log_error_errno(-ENOENT, "Cannot find fame-lfs next to fame; rebuild with 'make' or set FAME_LFS_BINARY");
        port = read_file(h->port_file, 64, NULL);
        if (!port)
                return log_error_errno(negative_errno(), "Failed to read '%s': %m", h->port_file);
        port[strcspn(port, "\n")] = 0;
        snprintf(addr, sizeof addr, "127.0.0.1:%s", port);
        snprintf(node, sizeof node, "%u", fame_librarian_node_id(geo, 1));
        if (mkdir(h->mnt, 0755) < 0)
                return log_error_errno(-errno, "Failed to create '%s': %m", h->mnt);

        _cleanup_cmd_ struct cmd *c = cmd_new(bin);
        cmd_args(c, (const char *const[]) { "--foreground", "--fam", h->fam, "--librarian", addr, "--node", node,
                                            "--ready-file", h->ready, h->mnt, NULL });
        /* root, as a node's fame-lfs: it authenticates with the Librarian's host secret */
        cmd_setenv(c, LIBRARIAN_SECRET_ENV, h->secret);
        cmd_map_fd(c, 0, -1);
        cmd_map_fd(c, 1, log_fd);
        cmd_map_fd(c, 2, log_fd);
        cmd_die_with_parent(c);
        h->lfs = cmd_run_async(c);
        if (h->lfs < 0)
                return log_error_errno(h->lfs, "Cannot run %s: %m", bin);
        r = wait_for_file(h->ready, h->lfs);
        if (r == -EINTR)
                return r;
        if (r < 0)
                return log_error_errno(r, "fame-lfs did not mount '%s'; see %s", h->mnt, h->log);
        return 0;
}

/* /dev/shm when it is a tmpfs we may write, else a tmpfs of our own. */
static int baseline_tmpfs(struct host *h) {
        struct statfs sf;
        if (statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC && access("/dev/shm", W_OK) == 0) {
                h->baseline = "/dev/shm";
                return 0;
        }
        if (mkdir(h->tmpfs, 0700) < 0)
                return log_error_errno(-errno, "Failed to create '%s': %m", h->tmpfs);
        if (mount("tmpfs", h->tmpfs, "tmpfs", MS_NOSUID | MS_NODEV, "size=512m,mode=0700") < 0)
                return log_error_errno(-errno, "Failed to mount a tmpfs on '%s': %m", h->tmpfs);
        h->mounted_tmpfs = true;
        h->baseline = h->tmpfs;
        return 0;
}

int lfs_bench_host(bool quick, struct lfs_bench_result *ret) {
        struct host h = { 0 };
        struct fame_geometry geo;
        const char *tmp = getenv("TMPDIR");
        int r;

        if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) < 0)
                return log_error_errno(-EPERM, "Measuring /lfs on the host mounts fame-lfs with FUSE, which needs root and /dev/fuse; "
                                       "or measure a mounted directory with --at DIR --baseline DIR");
        if (!tmp || !*tmp)
                tmp = "/tmp";
        if (snprintf(h.dir, sizeof h.dir, "%s/fame-bench-lfs-XXXXXX", tmp) >= (int) sizeof h.dir)
                return log_error_errno(-ENAMETOOLONG, "$TMPDIR is too long a path");
        if (!mkdtemp(h.dir)) {
                r = log_error_errno(-errno, "Failed to create a temporary directory in '%s': %m", tmp);
                h.dir[0] = 0;
                return r;
        }
        snprintf(h.fam, sizeof h.fam, "%s/fam", h.dir);
        snprintf(h.db, sizeof h.db, "%s/db", h.dir);
        snprintf(h.topology, sizeof h.topology, "%s/topology.ini", h.dir);
        snprintf(h.log, sizeof h.log, "%s/log", h.dir);
        snprintf(h.port_file, sizeof h.port_file, "%s/port", h.dir);
        snprintf(h.ready, sizeof h.ready, "%s/ready", h.dir);
        snprintf(h.mnt, sizeof h.mnt, "%s/lfs", h.dir);
        snprintf(h.tmpfs, sizeof h.tmpfs, "%s/tmpfs", h.dir);
        snprintf(h.secret, sizeof h.secret, "%s.secrets/host.secret", h.db);

        _cleanup_close_ int log_fd = open(h.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0) {
                r = log_error_errno(-errno, "Failed to create '%s': %m", h.log);
                goto out;
        }
        /* one node: room for the 64 MiB file and the small ones (sparse, like a cluster's FAM) */
        struct fame_create_params p = { .total_size = UINT64_C(512) << 20, .node_count = 1, .created = -1 };
        r = fame_file_create(h.fam, &p, 0, &geo);
        if (r < 0) {
                log_error_errno(r, "Failed to create the FAM file '%s': %m", h.fam);
                goto out;
        }
        r = start_librarian(&h, &geo, log_fd);
        if (r >= 0)
                r = mount_lfs(&h, &geo, log_fd);
        if (r >= 0)
                r = baseline_tmpfs(&h);
        if (r == -EINTR)
                log_error_errno(r, "Stopped by a signal");
        if (r >= 0)
                r = lfs_bench_run(h.mnt, h.baseline, quick, ret);
        if (r >= 0)
                snprintf(ret->at, sizeof ret->at, "fame-lfs on the host");
        if (r < 0 && r != -EINTR) {
                /* the daemons' log goes with the directory: its last lines may be the reason */
                size_t len = 0;
                _cleanup_free_ char *text = read_file(h.log, 1 << 20, &len);
                if (text && len > 0)
                        fprintf(stderr, "fame: the end of the daemons' log:\n%s", text + (len > 2048 ? len - 2048 : 0));
        }
out:
        host_teardown(&h);
        return r;
}
