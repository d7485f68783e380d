/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "backend.h"
#include "cluster.h"
#include "fam_atomic.h"
#include "fame.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "net.h"
#include "plan.h"
#include "qmp.h"
#include "seed.h"
#include "spawn.h"
#include "topology.h"
#include "util.h"

#define QGA_PING_MS 400
/* sshd re-executes itself for every connection: its banner takes about a second under TCG. */
#define SSH_BANNER_MS 5000

/* ---- small helpers ------------------------------------------------------------------- */

/* "node02", "2", "02" -> 2 (1..nodes); logs and returns -EINVAL otherwise. */
static int node_id(const char *s, uint32_t nodes, uint32_t *ret) {
        uint32_t v;

        if (parse_node_name(s, false, &v) < 0)
                return log_error_errno(-EINVAL, "'%s' is not a node name: use node01..node%02" PRIu32 " or a number", s, nodes);
        if (v > nodes)
                return log_error_errno(-EINVAL, "There is no %s: the cluster has %" PRIu32 " node%s (node01..node%02" PRIu32 ")",
                                       s, nodes, nodes == 1 ? "" : "s", nodes);
        *ret = v;
        return 0;
}

static int lock_state(const char *state_dir, int *ret_fd) {
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
        *ret_fd = fd;
        return 0;
}

/* The pid in pidfile if that process is alive and its command line holds `needle` (a zombie
 * or a reused pid does not count), else 0. */
static pid_t pidfile_process(const char *pidfile, const char *needle) {
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

/* The QEMU of this node, or 0 (the plan's backend is open). */
static pid_t node_pid(const struct cluster_plan *p, const struct node_plan *n) {
        return p->be->ops->pid(p->be->data, p, n);
}

/* Waiting for another process (a QEMU to exit, a node to write its slot): poll interval. */
static void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000 * 1000 };
        nanosleep(&ts, NULL);
}

static uint64_t random_nonce(void) {
        uint64_t v = 0;
        while (v == 0)
                if (getrandom(&v, sizeof v, 0) != sizeof v)
                        v = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
        return v & INT64_MAX;           /* stays positive on the kernel command line and in JSON */
}

static char *last_console_line(const struct node_plan *n) {
        int fd = open(n->console_log, O_RDONLY | O_CLOEXEC);
        char buf[4096];
        if (fd < 0)
                return strdup("(no console output)");
        off_t end = lseek(fd, 0, SEEK_END);
        off_t start = end > (off_t) sizeof buf - 1 ? end - (off_t) sizeof buf + 1 : 0;
        ssize_t k = pread(fd, buf, sizeof buf - 1, start);
        close(fd);
        if (k <= 0)
                return strdup("(no console output)");
        buf[k] = 0;
        /* last non-empty line, without control characters */
        char *end_p = buf + k;
        while (end_p > buf && (end_p[-1] == '\n' || end_p[-1] == '\r' || end_p[-1] == ' '))
                *--end_p = 0;
        char *line = strrchr(buf, '\n');
        line = line ? line + 1 : buf;
        for (char *p = line; *p; p++)
                if ((unsigned char) *p < 0x20)
                        *p = ' ';
        return strdup(*line ? line : "(no console output)");
}

static struct fame_slot_header *slot_of(struct fame *fam, uint32_t id) {
        return fam ? (struct fame_slot_header *) fame_slot(fam, id) : NULL;
}

static uint64_t slot_boot(struct fame *fam, uint32_t id) {
        struct fame_slot_header *h = slot_of(fam, id);
        return h ? (uint64_t) fam_atomic_64_read((int64_t *) &h->boot) : 0;
}

static void slot_mark_down(struct fame *fam, uint32_t id) {
        struct fame_slot_header *h = slot_of(fam, id);
        if (h)
                fam_atomic_32_write((int32_t *) &h->state, FAME_SLOT_DOWN);
}

static int agent_connect(const struct cluster_plan *p, const struct node_plan *n, int timeout_ms, struct qmp **ret) {
        return p->be->ops->agent(p->be->data, p, n, timeout_ms, ret);
}

static bool qga_answers(const struct cluster_plan *p, const struct node_plan *n, int timeout_ms) {
        struct qmp *q = NULL;
        bool ok = agent_connect(p, n, timeout_ms, &q) >= 0 && qga_ping(q, timeout_ms) >= 0;
        qmp_close(q);
        return ok;
}

/* Stops the node's QEMU now (nothing when it does not run). */
static void stop_node_hard(const struct cluster_plan *p, const struct node_plan *n, int timeout_ms) {
        p->be->ops->destroy(p->be->data, p, n, timeout_ms);
}

/* A program of FAM/E next to this fame (build tree) or installed beside it: $ENV if set, else
 * the first of candidates (appended to this fame's directory: "/name" or "-suffix/name") that is executable. */
static char *find_companion(const char *env_name, const char *const *candidates, size_t n) {
        const char *env = getenv(env_name);
        char self[PATH_MAX], *slash, *path = NULL;
        if (env && *env)
                return strdup(env);
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0)
                return NULL;
        self[k] = 0;
        slash = strrchr(self, '/');
        if (!slash)
                return NULL;
        *slash = 0;
        for (size_t i = 0; i < n; i++) {
                free(path);
                if (asprintf(&path, "%s%s", self, candidates[i]) < 0)
                        return NULL;
                if (access(path, X_OK) == 0)
                        return path;
        }
        free(path);
        return NULL;
}

/* The node-side fame binary that goes into node images. */
static char *node_binary(void) {
        static const char *const candidates[] = { "/fame-static", "/../../fame-static", "/../libexec/fame/fame-static" };
        return find_companion("FAME_NODE_BINARY", candidates, ELEMENTSOF(candidates));
}

/* ---- FAM and image ---------------------------------------------------------------------- */

static int ensure_fam(const struct fame_config *c) {
        struct fame_geometry g;
        struct stat st;
        int r;

        if (stat(c->fam_path, &st) < 0) {
                if (errno != ENOENT)
                        return log_error_errno(-errno, "Failed to look at FAM file '%s': %m", c->fam_path);
                struct fame_create_params p = {
                        .total_size = c->fam_size,
                        .book_size = c->book_size,
                        .node_count = c->nodes,
                        .nodes_per_enclosure = c->nodes_per_enclosure,
                        .enclosures_per_rack = c->enclosures_per_rack,
                        .created = -1,
                };
                r = fame_file_create(c->fam_path, &p, 0, &g);
                if (r < 0)
                        return r;
                log_progress("created FAM %s", c->fam_path);
                return 0;
        }
        r = fame_file_inspect(c->fam_path, &g);
        if (r < 0)
                return r;
        if (g.node_count < c->nodes)
                return log_error_errno(-EINVAL, "FAM '%s' was made for %" PRIu32 " nodes, but nodes = %" PRIu32 "; remove it to start afresh (its content is lost) or use another cluster (-c NAME)",
                                       c->fam_path, g.node_count, c->nodes);
        return 0;
}

/* node_binary(), or NULL after one error line. */
static char *require_node_binary(void) {
        char *bin = node_binary();
        if (!bin)
                log_error("Cannot find the node-side fame binary (fame-static next to fame); rebuild with 'make' or set FAME_NODE_BINARY");
        return bin;
}

static int ensure_image(const struct fame_config *c, const char *const *adds, struct image *img) {
        _cleanup_free_ char *bin = require_node_binary();
        if (!bin)
                return -ENOENT;
        struct image_params p = {
                .kernel = c->kernel && *c->kernel ? c->kernel : NULL,
                .cache_dir = c->cache_dir,
                .fame_static = bin,
                .overlay = c->overlay && *c->overlay ? c->overlay : NULL,
                .adds = adds,
        };
        return image_diskless_ensure(&p, img);
}

/* The aarch64 node binary: $FAME_NODE_BINARY_AARCH64, else the cross build beside this fame's
 * build directory (build/fame → build-aarch64/fame-static, which `make` builds), else
 * PREFIX/libexec/fame/aarch64/fame-static. */
static char *node_binary_aarch64(void) {
        static const char *const candidates[] = { "-aarch64/fame-static", "/../libexec/fame/aarch64/fame-static" };
        return find_companion("FAME_NODE_BINARY_AARCH64", candidates, ELEMENTSOF(candidates));
}

static bool any_arch(const struct fame_config *c, enum fame_arch a) {
        for (uint32_t i = 0; i < c->nodes; i++)
                if (c->node[i].arch == a)
                        return true;
        return false;
}

/* The diskless image of aarch64 nodes: Debian's arm64 packages and FAM/E's cross-built node
 * programs (docs/aarch64.md). */
static int ensure_image_aarch64(const struct fame_config *c, const char *const *adds, struct image *img) {
        _cleanup_free_ char *bin = node_binary_aarch64(), *root = NULL;
        if (!bin)
                return log_error_errno(-ENOENT, "Cannot find the aarch64 node binary (build-aarch64/fame-static beside this fame's build directory); build it with 'make' or set FAME_NODE_BINARY_AARCH64");
        int r = image_arch_root(c->cache_dir, "aarch64", &root);
        if (r < 0)
                return r;
        struct image_params p = {
                .cache_dir = c->cache_dir,
                .fame_static = bin,
                .overlay = c->overlay && *c->overlay ? c->overlay : NULL,
                .adds = adds,
                .root = root,
                .arch = "aarch64",
        };
        return image_diskless_ensure(&p, img);
}

static int ensure_debian_image(const struct fame_config *c, struct image *img) {
        _cleanup_free_ char *bin = require_node_binary();
        if (!bin)
                return -ENOENT;
        struct debian_params p = {
                .cache_dir = c->cache_dir,
                .release = c->release,
                .mirror = c->mirror,
                .packages = c->packages,
                .disk_size = c->disk_size,
                .fame_static = bin,
        };
        return image_debian_ensure(&p, img);
}

static void print_image(const char *kind, struct image *img) {
        printf("%-8s  %s  kernel %s  %s%s\n", kind, img->key, img->kernel_release, img->base ? img->base : img->initrd,
               img->built ? "" : "  (cached)");
        image_done(img);
}

int cluster_image_build(const struct fame_config *c, bool diskless, bool debian) {
        struct image img = { 0 };
        int r;
        if (diskless && any_arch(c, FAME_ARCH_X86_64)) {
                r = ensure_image(c, NULL, &img);
                if (r < 0)
                        return r;
                print_image("diskless", &img);
        }
        if (diskless && any_arch(c, FAME_ARCH_AARCH64)) {
                r = ensure_image_aarch64(c, NULL, &img);
                if (r < 0)
                        return r;
                print_image("diskless", &img);
        }
        if (debian) {
                r = ensure_debian_image(c, &img);
                if (r < 0)
                        return r;
                print_image("debian", &img);
        }
        return 0;
}

/* This fame, for QEMU's guestfwd relays and the switch. */
static char *self_exe(void) {
        char self[PATH_MAX];
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0)
                return strdup("fame");
        self[k] = 0;
        return strdup(self);
}

/* ---- the private segment's switch ------------------------------------------------------------- */

/* The cluster's switch, or 0. */
static pid_t switch_pid(const struct cluster_plan *p) {
        return pidfile_process(p->switch_pid, p->switch_sock);
}

static void stop_switch(const struct cluster_plan *p) {
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

static int start_switch(const struct cluster_plan *p) {
        char log_path[PATH_MAX];
        if (switch_pid(p))
                return 0;
        stop_switch(p);
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

/* fame-librarian next to this fame (build tree) or in PREFIX/libexec/fame; $FAME_LIBRARIAN_BINARY wins. */
char *cluster_librarian_binary(void) {
        static const char *const candidates[] = { "/fame-librarian", "/../libexec/fame/fame-librarian" };
        return find_companion("FAME_LIBRARIAN_BINARY", candidates, ELEMENTSOF(candidates));
}

static void librarian_path(const struct cluster_plan *p, const char *name, char *buf, size_t len) {
        snprintf(buf, len, "%s/%s", p->librarian_dir, name);
}

/* The cluster's Librarian, or 0. */
static pid_t librarian_pid(const struct cluster_plan *p) {
        char pidfile[PATH_MAX], db[PATH_MAX];
        librarian_path(p, "librarian.pid", pidfile, sizeof pidfile);
        librarian_path(p, "librarian.db", db, sizeof db);
        return pidfile_process(pidfile, db);
}

static void stop_librarian(const struct cluster_plan *p) {
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
static int start_librarian(struct cluster_plan *p) {
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
        stop_librarian(p);

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

static bool ssh_port_free(uint16_t port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        return port && fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof a) == 0;
}

/* sshd answers with its banner ("SSH-2.0-...") on the node's forwarded port. */
static bool ssh_answers(const struct node_plan *n, int timeout_ms) {
        char buf[64] = "";
        _cleanup_close_ int fd = tcp_connect_loopback(n->ssh_port);
        if (fd < 0)
                return false;
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        if (poll(&pf, 1, timeout_ms) <= 0)
                return false;
        ssize_t k = read(fd, buf, sizeof buf - 1);
        return k >= 4 && strncmp(buf, "SSH-", 4) == 0;
}

/* ---- starting and stopping nodes ---------------------------------------------------------- */

static void rotate_log(const char *path) {
        char old[PATH_MAX];
        snprintf(old, sizeof old, "%s.1", path);
        (void) rename(path, old);
}

/* The direct backend's start: QEMU daemonizes once the node runs; its messages go to qemu.err. */
static int qemu_start(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        char err_path[PATH_MAX];
        snprintf(err_path, sizeof err_path, "%s/qemu.err", n->dir);
        _cleanup_close_ int efd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        _cleanup_cmd_ struct cmd *c = qemu_command(p, n);
        cmd_map_fd(c, 0, -1);
        cmd_map_fd(c, 1, efd);
        cmd_map_fd(c, 2, efd);
        _cleanup_free_ char *s = cmd_to_string(c);
        log_debug("%s: %s", n->name, s);
        int r = cmd_run_timeout(c, 60000, NULL);
        if (r == 0 && backend_qemu_ops.pid(data, p, n) > 0)
                return 0;

        char msg[1024] = "";
        int fd = open(err_path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t k = read(fd, msg, sizeof msg - 1);
                msg[k > 0 ? k : 0] = 0;
                close(fd);
                msg[strcspn(msg, "\n")] = 0;
        }
        if (r == 127)
                return log_error_errno(-ENOENT, "%s: cannot run '%s': install qemu-system-x86 (scripts/install-deps) or set qemu =", n->name, p->qemu);
        if (r < 0)
                return log_error_errno(r, "%s: failed to start QEMU: %m", n->name);
        return log_error_errno(-EIO, "%s: QEMU failed to start: %s", n->name, *msg ? msg : "(no message; see qemu.err)");
}

static int spawn_node(const struct cluster_plan *p, struct node_plan *n) {
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
        return p->be->ops->start(p->be->data, p, n);
}

/* Checks that the FAM backend really is shared: QEMU must have share=on. */
static int check_shared(const struct cluster_plan *p, const struct node_plan *n) {
        struct qmp *q = NULL;
        json_object *args = json_object_new_object(), *ret = NULL;
        int r;

        json_object_object_add(args, "path", json_object_new_string(p->be->ops->fam_object(p)));
        json_object_object_add(args, "property", json_object_new_string("share"));
        r = p->be->ops->monitor(p->be->data, p, n, 5000, &q);
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

static void qemu_destroy(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms) {
        pid_t pid = backend_qemu_ops.pid(data, p, n);
        struct qmp *q = NULL;

        if (!pid)
                return;
        if (qmp_connect(n->qmp_sock, 1000, &q) >= 0)
                (void) qmp_execute(q, "quit", NULL, 1000, NULL, NULL);
        qmp_close(q);
        for (int waited = 0; waited < timeout_ms && backend_qemu_ops.pid(data, p, n); waited += 20) {
                sleep_ms(20);       /* waiting for another process to exit */
        }
        pid = backend_qemu_ops.pid(data, p, n);
        if (pid) {
                kill(pid, SIGKILL);
                for (int i = 0; i < 100 && backend_qemu_ops.pid(data, p, n); i++) {
                        sleep_ms(10);
                }
        }
}

struct ready_state {
        bool started, joined, agent, ready, failed;
        double t_start, t_ready;
        int ssh_fd;                     /* a connection waiting for sshd's banner, or -1 */
        double ssh_since, ssh_next;     /* when it was opened; when to try again */
};

/* One connection at a time, at most one a second: each connection costs the node an sshd
 * process (a second of CPU under TCG), and sshd refuses new ones beyond MaxStartups. */
static bool ssh_probe(const struct node_plan *n, struct ready_state *s) {
        double now = now_seconds();
        if (s->ssh_fd <= 0) {
                if (now < s->ssh_next)
                        return false;
                int fd = tcp_connect_loopback(n->ssh_port);
                if (fd < 0) {
                        s->ssh_next = now + 1;
                        return false;
                }
                s->ssh_fd = fd;
                s->ssh_since = now;
        }
        struct pollfd pf = { .fd = s->ssh_fd, .events = POLLIN };
        if (poll(&pf, 1, 0) <= 0) {
                if (now - s->ssh_since < 15)
                        return false;   /* still waiting for the banner */
        } else {
                char buf[64];
                ssize_t k = read(s->ssh_fd, buf, sizeof buf);
                if (k >= 4 && strncmp(buf, "SSH-", 4) == 0) {
                        close(s->ssh_fd);
                        s->ssh_fd = -1;
                        return true;
                }
        }
        close(s->ssh_fd);
        s->ssh_fd = -1;
        s->ssh_next = now + 1;
        return false;
}

/* Waits until every started node has joined the FAM (its slot carries this boot's nonce) and its
 * guest agent answers.  Fails fast when a QEMU exits. */
static int wait_ready_inner(const struct cluster_plan *p, struct fame *fam, struct ready_state *st, uint32_t timeout_s) {
        double deadline = now_seconds() + timeout_s;
        uint32_t pending;

        for (;;) {
                pending = 0;
                for (uint32_t i = 0; i < p->nodes; i++) {
                        const struct node_plan *n = &p->node[i];
                        struct ready_state *s = &st[i];
                        if (!s->started || s->ready)
                                continue;
                        if (!node_pid(p, n)) {
                                _cleanup_free_ char *last = last_console_line(n);
                                return log_error_errno(-EIO, "%s: QEMU exited while booting; last console line: %s (fame logs %s)", n->name, last, n->name);
                        }
                        if (!s->joined)
                                s->joined = slot_boot(fam, n->id) == n->boot;
                        if (s->joined && !s->agent)
                                s->agent = qga_answers(p, n, QGA_PING_MS);
                        if (s->agent && (p->kind != FAME_KIND_DEBIAN || ssh_probe(n, s))) {
                                s->ready = true;
                                s->t_ready = now_seconds();
                                continue;
                        }
                        pending++;
                }
                if (pending == 0)
                        return 0;
                if (now_seconds() > deadline) {
                        for (uint32_t i = 0; i < p->nodes; i++) {
                                const struct node_plan *n = &p->node[i];
                                if (!st[i].started || st[i].ready)
                                        continue;
                                _cleanup_free_ char *last = last_console_line(n);
                                return log_error_errno(-ETIMEDOUT, "%s did not become ready within %" PRIu32 " s: %s; last console line: %s",
                                                       n->name, timeout_s,
                                                       st[i].agent ? "its sshd does not answer" :
                                                       st[i].joined ? "its guest agent does not answer" : "it did not join the FAM", last);
                        }
                }
                sleep_ms(20);       /* polling remote state: node slots and agents */
        }
}

static int wait_ready(const struct cluster_plan *p, struct fame *fam, struct ready_state *st, uint32_t timeout_s) {
        int r = wait_ready_inner(p, fam, st, timeout_s);
        for (uint32_t i = 0; i < p->nodes; i++)
                if (st[i].ssh_fd > 0) {
                        close(st[i].ssh_fd);
                        st[i].ssh_fd = -1;
                }
        return r;
}

static void print_table(const struct cluster_plan *p, const struct ready_state *st) {
        printf("%-8s %8s  %-7s  %-5s  %-8s %8s\n", "NODE", "PID", "ARCH", "ACCEL", "STATE", "READY");
        for (uint32_t i = 0; i < p->nodes; i++) {
                const struct node_plan *n = &p->node[i];
                pid_t pid = node_pid(p, n);
                printf("%-8s %8d  %-7s  %-5s  %-8s %7.2fs\n", n->name, (int) pid, arch_to_string(n->arch), plan_node_kvm(p, n) ? "kvm" : "tcg",
                       st[i].ready ? "ready" : pid ? "running" : "stopped", st[i].t_ready - st[i].t_start);
        }
}

static int any_running(const struct cluster_plan *p) {
        int n = 0;
        for (uint32_t i = 0; i < p->nodes; i++)
                n += node_pid(p, &p->node[i]) > 0;
        return n;
}

/* The Debian image for `fame up`: the one the nodes' disks were made from while they exist
 * (so that what users changed in them is kept), else the current one, built if needed. */
static int debian_image_for(const struct fame_config *c, bool reset, struct image *img) {
        struct cluster_plan probe = { .state_dir = c->state_dir };
        _cleanup_free_ char *recorded = reset ? NULL : seed_recorded_image(&probe);
        bool disks = false;
        for (uint32_t i = 0; i < c->nodes && !disks; i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/nodes/node%02" PRIu32 "/disk.qcow2", c->state_dir, i + 1);
                disks = access(path, F_OK) == 0;
        }
        if (recorded && disks) {
                int r = image_debian_load(recorded, img);
                if (r == 0)
                        return 0;
                return log_error_errno(-ENOENT, "The nodes' disks were made from image %s, which is no longer in the cache; 'fame up --reset' gives them new disks from the current image (what was changed in them is lost)",
                                       recorded);
        }
        return ensure_debian_image(c, img);
}

/* Keys, overlays, seeds and ports of Debian nodes. */
static int prepare_debian_nodes(struct cluster_plan *p, bool reset) {
        int r = seed_ensure_keys(p);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < p->nodes; i++) {
                struct node_plan *n = &p->node[i];
                r = seed_ensure_overlay(p, n, reset);
                if (r < 0)
                        return r;
                n->ssh_port = (uint16_t) seed_free_port();
                if (!n->ssh_port)
                        return log_error_errno(-EADDRNOTAVAIL, "No free TCP port on 127.0.0.1 for %s's SSH", n->name);
                r = seed_write(p, n);
                if (r < 0)
                        return r;
        }
        return seed_record_image(p);
}

/* What `fame up` (and `fame libvirt export`) prepare before starting anything: the image, the
 * FAM, the accelerator, the plan, and for Debian nodes their disks and seeds.  p->be, if set, is
 * kept. */
static int prepare_plan(const struct fame_config *c, const struct up_options *o, struct image *img, struct image *img_arm,
                        struct cluster_plan *p) {
        bool debian = c->kind == FAME_KIND_DEBIAN, reset = o && o->reset;
        bool arm = any_arch(c, FAME_ARCH_AARCH64), x86 = any_arch(c, FAME_ARCH_X86_64);
        _cleanup_free_ char *self = self_exe();
        enum fame_accel accel = FAME_ACCEL_TCG;
        int r;

        if (debian)
                r = debian_image_for(c, reset, img);
        else
                r = x86 ? ensure_image(c, o ? o->adds : NULL, img) : 0;
        if (r < 0)
                return r;
        if (arm) {
                r = ensure_image_aarch64(c, o ? o->adds : NULL, img_arm);
                if (r < 0)
                        return r;
        }
        r = ensure_fam(c);
        if (r < 0)
                return r;
        /* aarch64 nodes are always TCG: KVM is for x86_64 nodes on this x86_64 host */
        if (x86) {
                r = accel_resolve(c->accel, c->qemu, img->kernel, c->cache_dir, &accel);
                if (r < 0)
                        return r;
        } else if (c->accel == FAME_ACCEL_KVM)
                return log_error_errno(-EINVAL, "accel = kvm, but every node is aarch64, which runs under TCG on this host; use accel = auto or tcg");
        struct backend *be = TAKE_PTR(p->be);
        r = plan_build(c, accel, img, arm ? img_arm : NULL, self, p);
        p->be = be;
        if (r < 0)
                return r;
        return debian ? prepare_debian_nodes(p, reset) : 0;
}

int cluster_libvirt_export(const struct fame_config *c, const char *dir) {
        _cleanup_close_ int lock = -1;
        struct cluster_plan p = { 0 };
        struct image img = { 0 }, img_arm = { 0 };
        int r = lock_state(c->state_dir, &lock);
        if (r < 0)
                return r;
        r = plan_load(c->state_dir, &p);
        if (r == -ENOENT) {
                r = prepare_plan(c, NULL, &img, &img_arm, &p);
                if (r >= 0)
                        log_warning("Cluster '%s' is not up: its nodes will have no Librarian (torms:%d) and no private segment unless 'fame up' runs them; the XML is for its FAM %s",
                                    c->name, FAME_LIBRARIAN_PORT, p.fam_path);
        }
        if (r >= 0)
                r = domain_export(&p, dir);
        plan_done(&p);
        image_done(&img);
        image_done(&img_arm);
        return r;
}

int cluster_up(const struct fame_config *c, const struct up_options *o) {
        _cleanup_close_ int lock = -1;
        struct cluster_plan old, p = { 0 };
        struct image img = { 0 }, img_arm = { 0 };
        struct fame *fam = NULL;
        struct ready_state st[FAME_MAX_NODES] = { 0 };
        enum fame_accel accel;
        double t0 = now_seconds();
        int r;

        r = lock_state(c->state_dir, &lock);
        if (r < 0)
                return r;
        if (plan_load(c->state_dir, &old) >= 0) {
                r = backend_open(&old);
                if (r < 0) {
                        plan_done(&old);
                        return r;
                }
                int running = any_running(&old);
                plan_done(&old);
                if (running > 0)
                        return log_error_errno(-EEXIST, "Cluster '%s' is already up (%d node%s running); see 'fame status', or stop it with 'fame down'",
                                               c->name, running, running == 1 ? "" : "s");
        }
        /* The backend first (a libvirtd that does not answer), then the image: a missing kernel
         * or package must not leave a new FAM file behind. */
        struct cluster_plan probe = { .backend = c->backend, .libvirt_uri = c->libvirt_uri };
        r = backend_open(&probe);
        if (r < 0)
                return r;
        p.be = TAKE_PTR(probe.be);
        r = prepare_plan(c, o, &img, &img_arm, &p);
        if (r < 0)
                goto out;
        accel = p.accel;
        r = start_switch(&p);
        if (r < 0)
                goto out;
        r = start_librarian(&p);
        if (r < 0) {
                stop_switch(&p);
                goto out;
        }
        r = fame_open(p.fam_path, 0, &fam);
        if (r < 0)
                goto out;

        log_progress("starting %" PRIu32 " node%s (%s)", p.nodes, p.nodes == 1 ? "" : "s", accel_to_string(accel));
        for (uint32_t i = 0; i < p.nodes; i++) {
                st[i].t_start = now_seconds();
                r = spawn_node(&p, &p.node[i]);
                if (r < 0)
                        goto fail;
                st[i].started = true;
                if (i == 0) {
                        r = check_shared(&p, &p.node[0]);
                        if (r < 0)
                                goto fail;
                }
        }
        r = plan_save(&p);
        if (r < 0)
                goto fail;
        log_progress("waiting for the nodes to join the FAM and their guest agents to answer");
        r = wait_ready(&p, fam, st, c->ready_timeout);
        if (r < 0)
                goto fail;

        if (o && o->json) {
                json_object *out = json_object_new_object(), *nodes = json_object_new_array();
                json_object_object_add(out, "cluster", json_object_new_string(p.name));
                json_object_object_add(out, "accel", json_object_new_string(accel_to_string(accel)));
                json_object_object_add(out, "backend", json_object_new_string(backend_to_string(p.backend)));
                json_object_object_add(out, "seconds", json_object_new_double(now_seconds() - t0));
                json_object_object_add(out, "librarian_port", json_object_new_int(p.librarian_port));
                for (uint32_t i = 0; i < p.nodes; i++) {
                        json_object *n = json_object_new_object();
                        json_object_object_add(n, "name", json_object_new_string(p.node[i].name));
                        json_object_object_add(n, "pid", json_object_new_int(node_pid(&p, &p.node[i])));
                        json_object_object_add(n, "ready_seconds", json_object_new_double(st[i].t_ready - st[i].t_start));
                        json_object_array_add(nodes, n);
                }
                json_object_object_add(out, "nodes", nodes);
                puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
                json_object_put(out);
        } else {
                print_table(&p, st);
                char sz[32];
                printf("%" PRIu32 " node%s ready in %.2fs on FAM %s (%s)\n", p.nodes, p.nodes == 1 ? "" : "s", now_seconds() - t0,
                       p.fam_path, format_bytes(p.fam_size, sz, sizeof sz));
                if (p.librarian_port)
                        printf("Librarian on 127.0.0.1:%u, torms:%u in the nodes (fame shelf ls)\n", p.librarian_port,
                               FAME_LIBRARIAN_PORT);
                if (p.backend == FAME_BACKEND_LIBVIRT)
                        printf("libvirt domains fame-%s-node01..%02" PRIu32 " at %s (virsh -c %s list)\n", p.name, p.nodes,
                               p.libvirt_uri, p.libvirt_uri);
        }
        r = 0;
        goto out;
fail:
        /* No orphans: stop every QEMU this call started, and the switch. */
        for (uint32_t i = 0; i < p.nodes; i++)
                if (st[i].started)
                        stop_node_hard(&p, &p.node[i], 2000);
        stop_switch(&p);
        stop_librarian(&p);
out:
        fame_close(fam);
        plan_done(&p);
        image_done(&img);
        image_done(&img_arm);
        return r;
}

/* The cluster's plan, with its backend open. */
static int load_plan(const struct fame_config *c, struct cluster_plan *p) {
        int r = plan_load(c->state_dir, p);
        if (r == -ENOENT)
                return log_error_errno(r, "Cluster '%s' has never been started (no %s/cluster.json); start it with 'fame up'", c->name, c->state_dir);
        if (r < 0)
                return r;
        r = backend_open(p);
        if (r < 0)
                plan_done(p);
        return r;
}

static int stop_nodes(const struct cluster_plan *p, const bool *which, uint32_t timeout_s) {
        /* Graceful first: ask each guest agent to power off, then wait, then force. */
        for (uint32_t i = 0; i < p->nodes; i++) {
                if (!which[i] || !node_pid(p, &p->node[i]))
                        continue;
                p->be->ops->shutdown(p->be->data, p, &p->node[i]);
        }
        double deadline = now_seconds() + timeout_s;
        for (;;) {
                bool left = false;
                for (uint32_t i = 0; i < p->nodes; i++)
                        left = left || (which[i] && node_pid(p, &p->node[i]));
                if (!left || now_seconds() > deadline)
                        break;
                sleep_ms(20);       /* waiting for other processes to exit */
        }
        for (uint32_t i = 0; i < p->nodes; i++)
                if (which[i] && node_pid(p, &p->node[i])) {
                        log_warning("%s did not power off within %" PRIu32 " s: stopping it", p->node[i].name, timeout_s);
                        stop_node_hard(p, &p->node[i], 3000);
                }
        for (uint32_t i = 0; i < p->nodes; i++)
                if (which[i] && node_pid(p, &p->node[i]))
                        return log_error_errno(-EIO, "%s (pid %d) could not be stopped", p->node[i].name, (int) node_pid(p, &p->node[i]));
        return 0;
}

int cluster_down(const struct fame_config *c) {
        _cleanup_close_ int lock = -1;
        struct cluster_plan p;
        bool which[FAME_MAX_NODES];
        struct fame *fam = NULL;
        int r;

        r = lock_state(c->state_dir, &lock);
        if (r < 0)
                return r;
        r = load_plan(c, &p);
        if (r < 0)
                return r;
        int running = any_running(&p);
        for (uint32_t i = 0; i < p.nodes; i++)
                which[i] = true;
        r = stop_nodes(&p, which, c->down_timeout);
        if (r >= 0) {
                stop_switch(&p);
                stop_librarian(&p);
        }
        if (r >= 0 && fame_open(p.fam_path, 0, &fam) >= 0) {
                for (uint32_t i = 0; i < p.nodes; i++)
                        slot_mark_down(fam, p.node[i].id);
                fame_close(fam);
        }
        if (r >= 0)
                printf("Cluster '%s' is down (%d node%s stopped); FAM kept in %s\n", p.name, running, running == 1 ? "" : "s", p.fam_path);
        plan_done(&p);
        return r;
}

int cluster_status(const struct fame_config *c, bool json) {
        struct cluster_plan p;
        struct fame *fam = NULL;
        int r = plan_load(c->state_dir, &p);

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
        r = backend_open(&p);
        if (r < 0) {
                plan_done(&p);
                return r;
        }
        (void) fame_open(p.fam_path, FAME_OPEN_NOREGISTER, &fam);
        if (fam)
                fam_atomic_register_region(fame_base(fam), fame_size(fam), -1, 0);
        json_object *o = json_object_new_object(), *nodes = json_object_new_array();
        int running = 0, ready = 0;
        if (!json && p.kind == FAME_KIND_DEBIAN)
                printf("%-8s %8s  %-7s  %-5s  %-8s %8s  %-15s  %s\n", "NODE", "PID", "ARCH", "ACCEL", "STATE", "JOINS", "SSH", "CONSOLE");
        else if (!json)
                printf("%-8s %8s  %-7s  %-5s  %-8s %8s  %s\n", "NODE", "PID", "ARCH", "ACCEL", "STATE", "JOINS", "CONSOLE");
        for (uint32_t i = 0; i < p.nodes; i++) {
                const struct node_plan *n = &p.node[i];
                pid_t pid = node_pid(&p, n);
                struct fame_slot_header *h = slot_of(fam, n->id);
                bool joined = pid && h && slot_boot(fam, n->id) == n->boot;
                bool agent = joined && qga_answers(&p, n, QGA_PING_MS);
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
                        json_object_object_add(no, "accel", json_object_new_string(plan_node_kvm(&p, n) ? "kvm" : "tcg"));
                        json_object_object_add(no, "memory", json_object_new_uint64(n->memory));
                        json_object_object_add(no, "console_log", json_object_new_string(n->console_log));
                        if (p.backend == FAME_BACKEND_LIBVIRT) {
                                char dom[128];
                                domain_name(&p, n, dom, sizeof dom);
                                json_object_object_add(no, "domain", json_object_new_string(dom));
                        }
                        if (p.kind == FAME_KIND_DEBIAN) {
                                json_object_object_add(no, "ssh_port", json_object_new_int(n->ssh_port));
                                json_object_object_add(no, "ssh", json_object_new_boolean(agent && ssh_answers(n, SSH_BANNER_MS)));
                                json_object_object_add(no, "disk", json_object_new_string(n->disk));
                        }
                        json_object_array_add(nodes, no);
                } else if (p.kind == FAME_KIND_DEBIAN) {
                        char ssh[32];
                        snprintf(ssh, sizeof ssh, "127.0.0.1:%u", n->ssh_port);
                        printf("%-8s %8d  %-7s  %-5s  %-8s %8" PRIu64 "  %-15s  %s\n", n->name, (int) pid, arch_to_string(n->arch),
                               plan_node_kvm(&p, n) ? "kvm" : "tcg", state, joins,
                               ssh, n->console_log);
                } else
                        printf("%-8s %8d  %-7s  %-5s  %-8s %8" PRIu64 "  %s\n", n->name, (int) pid, arch_to_string(n->arch),
                               plan_node_kvm(&p, n) ? "kvm" : "tcg", state, joins,
                               n->console_log);
        }
        if (json) {
                json_object_object_add(o, "cluster", json_object_new_string(p.name));
                json_object_object_add(o, "state", json_object_new_string(running == 0 ? "down" : ready == (int) p.nodes ? "up" : "degraded"));
                json_object_object_add(o, "accel", json_object_new_string(accel_to_string(p.accel)));
                json_object_object_add(o, "kind", json_object_new_string(kind_to_string(p.kind)));
                json_object_object_add(o, "backend", json_object_new_string(backend_to_string(p.backend)));
                if (p.backend == FAME_BACKEND_LIBVIRT)
                        json_object_object_add(o, "libvirt_uri", json_object_new_string(p.libvirt_uri));
                json_object_object_add(o, "switch_pid", json_object_new_int(switch_pid(&p)));
                {
                        json_object *lib = json_object_new_object();
                        pid_t lp = librarian_pid(&p);
                        json_object_object_add(lib, "pid", json_object_new_int(lp));
                        json_object_object_add(lib, "port", json_object_new_int(lp ? p.librarian_port : 0));
                        json_object_object_add(lib, "db", json_object_new_string(p.librarian_dir));
                        json_object_object_add(o, "librarian", lib);
                }
                json_object_object_add(o, "fam", json_object_new_string(p.fam_path));
                json_object_object_add(o, "fam_size", json_object_new_uint64(p.fam_size));
                json_object_object_add(o, "running", json_object_new_int(running));
                json_object_object_add(o, "ready", json_object_new_int(ready));
                json_object_object_add(o, "nodes", nodes);
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
        } else {
                printf("cluster '%s': %d of %" PRIu32 " nodes running, %d ready; FAM %s\n", p.name, running, p.nodes, ready, p.fam_path);
                if (p.backend == FAME_BACKEND_LIBVIRT)
                        printf("libvirt: %s, domains fame-%s-node01..%02" PRIu32 "\n", p.libvirt_uri, p.name, p.nodes);
                pid_t lp = librarian_pid(&p);
                if (lp)
                        printf("librarian: pid %d, 127.0.0.1:%u for the host, torms:%u in the nodes; %s\n", (int) lp,
                               p.librarian_port, FAME_LIBRARIAN_PORT, p.librarian_dir);
                else
                        printf("librarian: not running\n");
                json_object_put(nodes);
        }
        json_object_put(o);
        fame_close(fam);
        plan_done(&p);
        return 0;
}

/* Load the cluster's plan and find the node in it; on error nothing is left to free. */
static int load_plan_node(const struct fame_config *c, const char *node, struct cluster_plan *p, uint32_t *ret_id) {
        int r = load_plan(c, p);
        if (r < 0)
                return r;
        r = node_id(node, p->nodes, ret_id);
        if (r < 0)
                plan_done(p);
        return r;
}

/* Lock the cluster, load its plan and find the node: the start of kill and start. */
static int lock_plan_node(const struct fame_config *c, const char *node, int *ret_lock, struct cluster_plan *p, uint32_t *ret_id) {
        int r = lock_state(c->state_dir, ret_lock);
        if (r < 0)
                return r;
        return load_plan_node(c, node, p, ret_id);
}

int cluster_kill_node(const struct fame_config *c, const char *node) {
        _cleanup_close_ int lock = -1;
        struct cluster_plan p;
        uint32_t id;
        int r;

        r = lock_plan_node(c, node, &lock, &p, &id);
        if (r < 0)
                return r;
        {
                const struct node_plan *n = &p.node[id - 1];
                if (!node_pid(&p, n))
                        r = log_error_errno(-ESRCH, "%s is not running", n->name);
                else {
                        stop_node_hard(&p, n, 3000);
                        struct fame *fam = NULL;
                        if (fame_open(p.fam_path, 0, &fam) >= 0) {
                                slot_mark_down(fam, n->id);
                                fame_close(fam);
                        }
                        if (node_pid(&p, n))
                                r = log_error_errno(-EIO, "%s could not be stopped", n->name);
                        else
                                printf("%s stopped\n", n->name);
                }
        }
        plan_done(&p);
        return r;
}

int cluster_start_node(const struct fame_config *c, const char *node) {
        _cleanup_close_ int lock = -1;
        struct cluster_plan p;
        struct ready_state st[FAME_MAX_NODES] = { 0 };
        struct fame *fam = NULL;
        uint32_t id;
        int r;

        r = lock_plan_node(c, node, &lock, &p, &id);
        if (r < 0)
                return r;
        struct node_plan *n = &p.node[id - 1];
        if (node_pid(&p, n)) {
                r = log_error_errno(-EEXIST, "%s is already running", n->name);
                goto out;
        }
        r = fame_open(p.fam_path, 0, &fam);
        if (r < 0)
                goto out;
        r = start_switch(&p);
        if (r < 0)
                goto out;
        if (p.kind == FAME_KIND_DEBIAN && !ssh_port_free(n->ssh_port)) {
                n->ssh_port = (uint16_t) seed_free_port();
                if (!n->ssh_port) {
                        r = log_error_errno(-EADDRNOTAVAIL, "No free TCP port on 127.0.0.1 for %s's SSH", n->name);
                        goto out;
                }
        }
        st[id - 1].t_start = now_seconds();
        r = spawn_node(&p, n);
        if (r < 0)
                goto out;
        st[id - 1].started = true;
        r = plan_save(&p);
        if (r >= 0)
                r = wait_ready(&p, fam, st, c->ready_timeout);
        if (r < 0) {
                stop_node_hard(&p, n, 2000);
                goto out;
        }
        printf("%s ready in %.2fs\n", n->name, st[id - 1].t_ready - st[id - 1].t_start);
out:
        fame_close(fam);
        plan_done(&p);
        return r;
}

/* ---- ssh ---------------------------------------------------------------------------------- */

static int require_running(const struct cluster_plan *p, const struct node_plan *n) {
        if (node_pid(p, n))
                return 0;
        return log_error_errno(-ESRCH, "%s is not running; start it with 'fame start %s'", n->name, n->name);
}


int cluster_ssh(const struct fame_config *c, const char *node, char *const *argv) {
        _cleanup_free_ char *key = NULL, *known = NULL;
        struct cluster_plan p;
        uint32_t id;
        int r = load_plan_node(c, node, &p, &id);
        if (r < 0)
                return r;
        const struct node_plan *n = &p.node[id - 1];
        if (p.kind != FAME_KIND_DEBIAN) {
                r = log_error_errno(-EINVAL, "%s is a diskless node, which has no sshd: use 'fame exec %s -- CMD', or start the cluster with --kind debian",
                                    n->name, n->name);
                goto out;
        }
        r = require_running(&p, n);
        if (r < 0)
                goto out;
        key = seed_login_key(p.state_dir);
        known = seed_known_hosts(p.state_dir);
        char port[16], alias[64], kh[PATH_MAX + 32], dest[128];
        snprintf(port, sizeof port, "%u", n->ssh_port);
        snprintf(alias, sizeof alias, "HostKeyAlias=%s", n->name);
        snprintf(kh, sizeof kh, "UserKnownHostsFile=%s", known ? known : "/dev/null");
        snprintf(dest, sizeof dest, "%s@127.0.0.1", p.user);
        const char *args[64 + 256] = {
                "ssh", "-p", port, "-i", key ? key : "/dev/null", "-o", "IdentitiesOnly=yes", "-o", kh,
                "-o", "StrictHostKeyChecking=yes", "-o", alias, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", dest,
        };
        size_t k = 0;
        while (args[k])
                k++;
        if (argv && argv[0]) {
                args[k++] = "--";
                for (size_t i = 0; argv[i] && k < ELEMENTSOF(args) - 1; i++)
                        args[k++] = argv[i];
        }
        args[k] = NULL;
        fflush(stdout);
        execvp("ssh", (char *const *) args);
        r = log_error_errno(-errno, errno == ENOENT ? "ssh not found: install openssh-client (scripts/install-deps)" : "Cannot run ssh: %m");
out:
        plan_done(&p);
        return r;
}

/* ---- guest agent verbs -------------------------------------------------------------------- */

static int exec_one(const struct cluster_plan *p, const struct node_plan *n, char *const *argv, int timeout_s,
                    struct qga_exec_result *res) {
        struct qmp *q = NULL;
        int r;

        r = require_running(p, n);
        if (r < 0)
                return r;
        r = agent_connect(p, n, 5000, &q);
        if (r < 0)
                return log_error_errno(r, "%s: its guest agent does not answer (is it still booting? see 'fame status')", n->name);
        r = qga_exec(q, (const char *const *) argv, NULL, 0, timeout_s * 1000, res);
        qmp_close(q);
        if (r == -ETIMEDOUT)
                return log_error_errno(r, "%s: '%s' did not finish within %d s", n->name, argv[0], timeout_s);
        if (r < 0) {
                _cleanup_free_ char *why = res->error ? qga_error_reason(res->error) : NULL;
                return log_error_errno(r, "%s: cannot run '%s'%s%s", n->name, argv[0], why ? ": " : "", why ? why : "");
        }
        return 0;
}

/* Writes text with "nodeNN: " before every line. */
static void write_prefixed(int fd, const char *name, const char *buf, size_t len) {
        size_t start = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i == len || buf[i] == '\n') {
                        if (i == len && i == start)
                                break;
                        write_all(fd, name, strlen(name));
                        write_all(fd, ": ", 2);
                        write_all(fd, buf + start, i - start);
                        write_all(fd, "\n", 1);
                        start = i + 1;
                }
        }
}

int cluster_exec(const struct fame_config *c, const char *node, char *const *argv, int timeout_s) {
        struct cluster_plan p;
        uint32_t id = 0;
        int r = load_plan(c, &p);
        if (r < 0)
                return r;
        if (node) {
                r = node_id(node, p.nodes, &id);
                if (r < 0)
                        goto out;
                struct qga_exec_result res = { 0 };
                r = exec_one(&p, &p.node[id - 1], argv, timeout_s, &res);
                if (r >= 0) {
                        write_all(STDOUT_FILENO, res.out ? res.out : "", res.out_len);
                        write_all(STDERR_FILENO, res.err ? res.err : "", res.err_len);
                        r = res.signal ? 128 + res.signal : res.exit_code;
                }
                qga_exec_result_done(&res);
                goto out;
        }

        /* --all: one child per node, run concurrently; output printed in node order. */
        pid_t pids[FAME_MAX_NODES];
        int pipes[FAME_MAX_NODES][2];
        fflush(stdout);
        fflush(stderr);
        for (uint32_t i = 0; i < p.nodes; i++) {
                if (pipe2(pipes[i], O_CLOEXEC) < 0) {
                        r = log_error_errno(-errno, "pipe: %m");
                        p.nodes = i;
                        break;
                }
                pids[i] = fork();
                if (pids[i] == 0) {
                        struct qga_exec_result res = { 0 };
                        close(pipes[i][0]);
                        /* A connection is not shared across fork (libvirt's would be closed
                         * under the parent): the child opens its own. */
                        p.be = NULL;
                        if (backend_open(&p) < 0)
                                _exit(255);
                        /* The child's own error lines go through the pipe too, prefixed. */
                        int k = exec_one(&p, &p.node[i], argv, timeout_s, &res);
                        if (k < 0)
                                _exit(255);
                        /* frame: "O" + len + data, "E" + len + data */
                        size_t lens[2] = { res.out_len, res.err_len };
                        write_all(pipes[i][1], (const char *) lens, sizeof lens);
                        write_all(pipes[i][1], res.out ? res.out : "", res.out_len);
                        write_all(pipes[i][1], res.err ? res.err : "", res.err_len);
                        _exit(res.signal ? 128 + res.signal : res.exit_code);
                }
                close(pipes[i][1]);
        }
        int worst = 0;
        for (uint32_t i = 0; i < p.nodes; i++) {
                size_t lens[2] = { 0, 0 };
                char *out = NULL, *err = NULL;
                FILE *f = fdopen(pipes[i][0], "r");
                if (f && fread(lens, sizeof lens, 1, f) == 1) {
                        out = malloc(lens[0] + 1);
                        err = malloc(lens[1] + 1);
                        if (out && err && fread(out, 1, lens[0], f) == lens[0] && fread(err, 1, lens[1], f) == lens[1]) {
                                write_prefixed(STDOUT_FILENO, p.node[i].name, out, lens[0]);
                                write_prefixed(STDERR_FILENO, p.node[i].name, err, lens[1]);
                        }
                }
                if (f)
                        fclose(f);
                free(out);
                free(err);
                int status = 0;
                while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
                        ;
                int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                if (code > worst)
                        worst = code;
        }
        r = r < 0 ? r : worst == 255 ? -EIO : worst;
out:
        plan_done(&p);
        return r;
}

int cluster_cp(const struct fame_config *c, const char *host_path, const char *node, const char *node_path) {
        struct cluster_plan p;
        struct stat st;
        _cleanup_free_ char *data = NULL;
        int r = load_plan(c, &p);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(host_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                r = log_error_errno(fd < 0 ? -errno : -EINVAL, fd < 0 ? "Cannot read '%s': %m" : "'%s' is not a regular file", host_path);
                goto out;
        }
        data = malloc((size_t) st.st_size + 1);
        if (!data || read(fd, data, (size_t) st.st_size) != st.st_size) {
                r = log_error_errno(-EIO, "Cannot read '%s': %m", host_path);
                goto out;
        }
        uint32_t first = 1, last = p.nodes;
        if (node) {
                r = node_id(node, p.nodes, &first);
                if (r < 0)
                        goto out;
                last = first;
        }
        for (uint32_t id = first; id <= last; id++) {
                const struct node_plan *n = &p.node[id - 1];
                struct qmp *q = NULL;
                r = require_running(&p, n);
                if (r < 0)
                        goto out;
                r = agent_connect(&p, n, 5000, &q);
                if (r >= 0)
                        r = qga_write_file(q, node_path, data, (size_t) st.st_size, st.st_mode & 07777, 60000);
                qmp_close(q);
                if (r < 0) {
                        r = log_error_errno(r, "%s: cannot write '%s': %m", n->name, node_path);
                        goto out;
                }
        }
        r = 0;
out:
        plan_done(&p);
        return r;
}

int cluster_logs(const struct fame_config *c, const char *node, bool follow) {
        struct cluster_plan p;
        uint32_t id;
        int r = load_plan_node(c, node, &p, &id);
        if (r < 0)
                return r;
        const struct node_plan *n = &p.node[id - 1];
        int fd = open(n->console_log, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = log_error_errno(-errno, "%s has no console log yet (%s): %m", n->name, n->console_log);
                goto out;
        }
        char buf[65536];
        for (;;) {
                ssize_t k = read(fd, buf, sizeof buf);
                if (k > 0) {
                        write_all(STDOUT_FILENO, buf, (size_t) k);
                        continue;
                }
                if (!follow || !node_pid(&p, n))
                        break;
                sleep_ms(200);       /* tail -f: wait for the node to write more */
        }
        close(fd);
        r = 0;
out:
        plan_done(&p);
        return r;
}

int cluster_console(const struct fame_config *c, const char *node) {
        struct cluster_plan p;
        uint32_t id;
        struct termios saved, raw;
        bool tty = isatty(STDIN_FILENO);
        int r = load_plan_node(c, node, &p, &id);
        if (r < 0)
                return r;
        const struct node_plan *n = &p.node[id - 1];
        r = require_running(&p, n);
        if (r < 0)
                goto out;
        int s = -1;
        r = p.be->ops->console(p.be->data, &p, n, &s);
        if (r < 0)
                goto out;
        fprintf(stderr, "Connected to %s's console; press Ctrl-] to leave.\r\n", n->name);
        if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
                raw = saved;
                cfmakeraw(&raw);
                tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        } else
                tty = false;
        write_all(s, "\n", 1);          /* wake up the prompt */
        char buf[4096];
        for (;;) {
                struct pollfd fds[2] = { { .fd = STDIN_FILENO, .events = POLLIN }, { .fd = s, .events = POLLIN } };
                if (poll(fds, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (fds[0].revents) {
                        ssize_t k = read(STDIN_FILENO, buf, sizeof buf);
                        if (k <= 0)
                                break;
                        if (memchr(buf, 0x1d, (size_t) k))
                                break;
                        write_all(s, buf, (size_t) k);
                }
                if (fds[1].revents) {
                        ssize_t k = read(s, buf, sizeof buf);
                        if (k <= 0)
                                break;
                        write_all(STDOUT_FILENO, buf, (size_t) k);
                }
        }
        if (tty)
                tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        close(s);
        fprintf(stderr, "\nLeft %s's console.\n", n->name);
        r = 0;
out:
        plan_done(&p);
        return r;
}

/* ---- the direct QEMU backend ------------------------------------------------------------------ */

static int qemu_open(const struct cluster_plan *p, void **ret_data) {
        (void) p;
        *ret_data = NULL;
        return 0;
}

static void qemu_close(void *data) {
        (void) data;
}

static pid_t qemu_pid(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        (void) data;
        (void) p;
        return pidfile_process(n->pidfile, n->qmp_sock);
}

static int qemu_monitor(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms, struct qmp **ret) {
        (void) data;
        (void) p;
        return qmp_connect(n->qmp_sock, timeout_ms, ret);
}

static int qemu_agent(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms, struct qmp **ret) {
        (void) data;
        (void) p;
        return qga_connect(n->qga_sock, timeout_ms, ret);
}

static void qemu_shutdown(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        struct qmp *q = NULL;
        (void) data;
        (void) p;
        if (qga_connect(n->qga_sock, 1000, &q) >= 0) {
                json_object *args = json_object_new_object();
                json_object_object_add(args, "mode", json_object_new_string("powerdown"));
                (void) qmp_execute(q, "guest-shutdown", args, 500, NULL, NULL);  /* no reply on success */
        }
        qmp_close(q);
}

static int qemu_console(void *data, const struct cluster_plan *p, const struct node_plan *n, int *ret_fd) {
        (void) data;
        (void) p;
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", n->console_sock);
        if (s < 0 || connect(s, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = log_error_errno(-errno, "%s: cannot connect to the console: %m", n->name);
                if (s >= 0)
                        close(s);
                return r;
        }
        *ret_fd = s;
        return 0;
}

static const char *qemu_fam_object(const struct cluster_plan *p) {
        (void) p;
        return "/objects/fam";
}

const struct backend_ops backend_qemu_ops = {
        .name = "qemu",
        .open = qemu_open,
        .close = qemu_close,
        .start = qemu_start,
        .pid = qemu_pid,
        .monitor = qemu_monitor,
        .agent = qemu_agent,
        .shutdown = qemu_shutdown,
        .destroy = qemu_destroy,
        .console = qemu_console,
        .fam_object = qemu_fam_object,
};

int backend_open(struct cluster_plan *p) {
        if (p->be)
                return 0;
        struct backend *be = calloc(1, sizeof *be);
        if (!be)
                return log_error_errno(-ENOMEM, "Out of memory");
        be->ops = p->backend == FAME_BACKEND_LIBVIRT ? &backend_libvirt_ops : &backend_qemu_ops;
        int r = be->ops->open(p, &be->data);
        if (r < 0) {
                free(be);
                return r;
        }
        p->be = be;
        return 0;
}

void backend_free(struct backend *be) {
        if (!be)
                return;
        be->ops->close(be->data);
        free(be);
}
