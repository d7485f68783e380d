/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The verbs that work inside running nodes (cluster.h): exec and cp through the guest agent,
 * the serial console, its log, and ssh to a Debian node.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cluster-state.h"
#include "cluster.h"
#include "daemons.h"
#include "fame.h"
#include "log.h"
#include "macro.h"
#include "qmp.h"
#include "seed.h"
#include "util.h"

/* ---- ssh ---------------------------------------------------------------------------------- */

int cluster_ssh(const struct fame_config *c, const char *node, char *const *argv) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        _cleanup_free_ char *key = NULL, *known = NULL;
        struct node_plan *n;
        int r = cluster_load_node(&cl, c, node, &n);
        if (r < 0)
                return r;
        const struct cluster_plan *p = &cl.plan;
        if (p->kind != FAME_KIND_DEBIAN)
                return log_error_errno(-EINVAL, "%s is a diskless node, which has no sshd: use 'fame exec %s -- CMD', or start the cluster with --kind debian",
                                       n->name, n->name);
        r = cluster_require_running(&cl, n);
        if (r < 0)
                return r;
        key = seed_login_key(p->state_dir);
        known = seed_known_hosts(p->state_dir);
        char port[16], alias[64], kh[PATH_MAX + 32], dest[128];
        snprintf(port, sizeof port, "%u", n->ssh_port);
        snprintf(alias, sizeof alias, "HostKeyAlias=%s", n->name);
        snprintf(kh, sizeof kh, "UserKnownHostsFile=%s", known ? known : "/dev/null");
        snprintf(dest, sizeof dest, "%s@127.0.0.1", p->user);
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
        return log_error_errno(-errno, errno == ENOENT ? "ssh not found: install openssh-client (scripts/install-deps)" : "Cannot run ssh: %m");
}

/* ---- guest agent verbs -------------------------------------------------------------------- */

static int exec_one(const struct cluster *cl, const struct node_plan *n, char *const *argv, int timeout_s,
                    struct qga_exec_result *res) {
        struct qmp *q = NULL;
        int r;

        r = cluster_require_running(cl, n);
        if (r < 0)
                return r;
        r = cluster_agent(cl, n, 5000, &q);
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

int cluster_exec(const struct fame_config *c, const char *node, char *const *argv, int timeout_s, int out_fd, int err_fd) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        uint32_t id = 0;
        int r = cluster_load(&cl, c);
        if (r < 0)
                return r;
        struct cluster_plan *p = &cl.plan;
        if (node) {
                r = cluster_node_id(p, node, &id);
                if (r < 0)
                        return r;
                struct qga_exec_result res = { 0 };
                r = exec_one(&cl, &p->node[id - 1], argv, timeout_s, &res);
                if (r >= 0) {
                        write_all(out_fd, res.out ? res.out : "", res.out_len);
                        write_all(err_fd, res.err ? res.err : "", res.err_len);
                        r = res.signal ? 128 + res.signal : res.exit_code;
                }
                qga_exec_result_done(&res);
                return r;
        }

        /* --all: one child per node, run concurrently; output printed in node order. */
        pid_t pids[FAME_MAX_NODES];
        int pipes[FAME_MAX_NODES][2];
        uint32_t nodes = p->nodes;
        fflush(stdout);
        fflush(stderr);
        for (uint32_t i = 0; i < nodes; i++) {
                if (pipe2(pipes[i], O_CLOEXEC) < 0) {
                        r = log_error_errno(-errno, "pipe: %m");
                        nodes = i;
                        break;
                }
                pids[i] = fork();
                if (pids[i] == 0) {
                        struct qga_exec_result res = { 0 };
                        close(pipes[i][0]);
                        /* A connection is not shared across fork (libvirt's would be closed
                         * under the parent): the child opens its own. */
                        cl.be = NULL;
                        if (cluster_open_backend(&cl) < 0)
                                _exit(255);
                        /* The child's own error lines go through the pipe too, prefixed. */
                        int k = exec_one(&cl, &p->node[i], argv, timeout_s, &res);
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
        for (uint32_t i = 0; i < nodes; i++) {
                size_t lens[2] = { 0, 0 };
                char *out = NULL, *err = NULL;
                FILE *f = fdopen(pipes[i][0], "r");
                if (f && fread(lens, sizeof lens, 1, f) == 1) {
                        out = malloc(lens[0] + 1);
                        err = malloc(lens[1] + 1);
                        if (out && err && fread(out, 1, lens[0], f) == lens[0] && fread(err, 1, lens[1], f) == lens[1]) {
                                write_prefixed(out_fd, p->node[i].name, out, lens[0]);
                                write_prefixed(err_fd, p->node[i].name, err, lens[1]);
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
        return r < 0 ? r : worst == 255 ? -EIO : worst;
}

int cluster_kind(const struct fame_config *c, enum fame_kind *ret) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        int r = cluster_load(&cl, c);
        if (r < 0)
                return r;
        *ret = cl.plan.kind;
        return 0;
}

int cluster_cp(const struct fame_config *c, const char *host_path, const char *node, const char *node_path) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        struct stat st;
        _cleanup_free_ char *data = NULL;
        int r = cluster_load(&cl, c);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(host_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return log_error_errno(fd < 0 ? -errno : -EINVAL, fd < 0 ? "Cannot read '%s': %m" : "'%s' is not a regular file", host_path);
        data = malloc((size_t) st.st_size + 1);
        if (!data || read(fd, data, (size_t) st.st_size) != st.st_size)
                return log_error_errno(-EIO, "Cannot read '%s': %m", host_path);
        uint32_t first, last;
        r = cluster_node_range(&cl.plan, node, &first, &last);
        if (r < 0)
                return r;
        for (uint32_t id = first; id <= last; id++) {
                const struct node_plan *n = &cl.plan.node[id - 1];
                struct qmp *q = NULL;
                r = cluster_require_running(&cl, n);
                if (r < 0)
                        return r;
                r = cluster_agent(&cl, n, 5000, &q);
                if (r >= 0)
                        r = qga_write_file(q, node_path, data, (size_t) st.st_size, st.st_mode & 07777, 60000);
                qmp_close(q);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot write '%s': %m", n->name, node_path);
        }
        return 0;
}

/* ---- the serial console ---------------------------------------------------------------------- */

int cluster_logs(const struct fame_config *c, const char *node, bool follow, int out_fd) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        struct node_plan *n;
        int r = cluster_load_node(&cl, c, node, &n);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(n->console_log, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(-errno, "%s has no console log yet (%s): %m", n->name, n->console_log);
        char buf[65536];
        for (;;) {
                ssize_t k = read(fd, buf, sizeof buf);
                if (k > 0) {
                        write_all(out_fd, buf, (size_t) k);
                        continue;
                }
                if (!follow || !cluster_node_pid(&cl, n))
                        break;
                sleep_ms(200);       /* tail -f: wait for the node to write more */
        }
        return 0;
}

int cluster_console(const struct fame_config *c, const char *node, int in_fd, int out_fd) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        struct node_plan *n;
        struct termios saved, raw;
        bool tty = isatty(in_fd);
        int r = cluster_load_node(&cl, c, node, &n);
        if (r < 0)
                return r;
        r = cluster_require_running(&cl, n);
        if (r < 0)
                return r;
        int s = -1;
        r = cl.be->ops->console(cl.be->data, &cl.plan, n, &s);
        if (r < 0)
                return r;
        fprintf(stderr, "Connected to %s's console; press Ctrl-] to leave.\r\n", n->name);
        if (tty && tcgetattr(in_fd, &saved) == 0) {
                raw = saved;
                cfmakeraw(&raw);
                tcsetattr(in_fd, TCSANOW, &raw);
        } else
                tty = false;
        write_all(s, "\n", 1);          /* wake up the prompt */
        char buf[4096];
        for (;;) {
                struct pollfd fds[2] = { { .fd = in_fd, .events = POLLIN }, { .fd = s, .events = POLLIN } };
                if (poll(fds, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (fds[0].revents) {
                        ssize_t k = read(in_fd, buf, sizeof buf);
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
                        write_all(out_fd, buf, (size_t) k);
                }
        }
        if (tty)
                tcsetattr(in_fd, TCSANOW, &saved);
        close(s);
        fprintf(stderr, "\nLeft %s's console.\n", n->name);
        return 0;
}
