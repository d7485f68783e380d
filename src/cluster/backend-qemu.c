/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The direct backend (backend.h): fame runs each node's QEMU itself, daemonized, with a pidfile,
 * its monitor (QMP), guest agent and serial console on UNIX sockets in STATE/nodes/nodeNN; the
 * command line is qemu_command() of the plan (plan.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "daemons.h"
#include "log.h"
#include "macro.h"
#include "plan.h"
#include "qmp.h"
#include "spawn.h"

static int qemu_open(const char *cluster, const char *libvirt_uri, void **ret_data) {
        (void) cluster;
        (void) libvirt_uri;
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

/* The node's agent: through the agent keeper while it runs (it holds qga.sock, where QEMU takes
 * one client at a time: connecting there would wait for ever), else qga.sock itself (a cluster
 * started before the keeper existed, or a keeper that was killed). */
static const char *agent_socket(const struct cluster_plan *p, const struct node_plan *n) {
        return agents_pid(p) > 0 ? n->agent_sock : n->qga_sock;
}

static int qemu_agent(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms, struct qmp **ret) {
        (void) data;
        return qga_connect(agent_socket(p, n), timeout_ms, ret);
}

static void qemu_shutdown(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        struct qmp *q = NULL;
        (void) data;
        if (qga_connect(agent_socket(p, n), 1000, &q) >= 0) {
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

/* The direct backend's start: QEMU daemonizes once the node runs; its messages go to qemu.err. */
static int qemu_start(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        char err_path[PATH_MAX];
        snprintf(err_path, sizeof err_path, "%s/qemu.err", n->dir);
        _cleanup_close_ int efd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        _cleanup_cmd_ struct cmd *c = qemu_command(p, n);
        cmd_map_fd(c, 0, -1);
        cmd_map_fd(c, 1, efd);
        cmd_map_fd(c, 2, efd);
        /* guest RAM in 4 KiB pages as the guest touches it, not in the 2 MiB pages QEMU asks
         * for: a node whose RAM was restored held all 256 MiB in huge pages.  For a booted
         * node it changes little (PSS 169 -> 167 MiB at 40 nodes). */
        cmd_no_huge_pages(c);
        _cleanup_free_ char *s = cmd_to_string(c);
        log_debug("%s: %s", n->name, s);
        int r = cmd_run_timeout(c, 60000, NULL);
        if (r == 0 && qemu_pid(data, p, n) > 0)
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

static void qemu_destroy(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms) {
        pid_t pid = qemu_pid(data, p, n);
        struct qmp *q = NULL;

        if (!pid)
                return;
        if (qmp_connect(n->qmp_sock, 1000, &q) >= 0)
                (void) qmp_execute(q, "quit", NULL, 1000, NULL, NULL);
        qmp_close(q);
        for (int waited = 0; waited < timeout_ms && qemu_pid(data, p, n); waited += 20) {
                sleep_ms(20);       /* waiting for another process to exit */
        }
        pid = qemu_pid(data, p, n);
        if (pid) {
                kill(pid, SIGKILL);
                for (int i = 0; i < 100 && qemu_pid(data, p, n); i++) {
                        sleep_ms(10);
                }
        }
}

/* Power loss: SIGKILL, no quit through the monitor. */
static int qemu_crash(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        pid_t pid = qemu_pid(data, p, n);

        if (!pid)
                return 0;
        if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
                return log_error_errno(-errno, "%s: cannot kill QEMU (pid %d): %m", n->name, (int) pid);
        for (int i = 0; i < 500 && qemu_pid(data, p, n); i++)
                sleep_ms(10);   /* waiting for another process to exit */
        if (qemu_pid(data, p, n))
                return log_error_errno(-EIO, "%s: QEMU (pid %d) is still there 5 s after SIGKILL", n->name, (int) pid);
        return 0;
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
        .crash = qemu_crash,
        .console = qemu_console,
        .fam_object = qemu_fam_object,
};
