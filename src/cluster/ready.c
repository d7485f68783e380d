/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Readiness of nodes (ready.h): FAM slots, guest agents, sshd banners. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemons.h"
#include "log.h"
#include "macro.h"
#include "net.h"
#include "qmp.h"
#include "ready.h"
#include "util.h"

/* The node's last console line, for errors (never NULL unless out of memory). */
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

bool qga_answers(const struct cluster *cl, const struct node_plan *n, int timeout_ms) {
        struct qmp *q = NULL;
        bool ok = cluster_agent(cl, n, timeout_ms, &q) >= 0 && qga_ping(q, timeout_ms) >= 0;
        qmp_close(q);
        return ok;
}

/* sshd answers with its banner ("SSH-2.0-...") on the node's forwarded port. */
bool ssh_answers(const struct node_plan *n, int timeout_ms) {
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
static int wait_ready_inner(const struct cluster *cl, struct fame *fam, struct ready_state *st, uint32_t timeout_s) {
        const struct cluster_plan *p = &cl->plan;
        double deadline = now_seconds() + timeout_s;
        uint32_t pending;

        for (;;) {
                pending = 0;
                for (uint32_t i = 0; i < p->nodes; i++) {
                        const struct node_plan *n = &p->node[i];
                        struct ready_state *s = &st[i];
                        if (!s->started || s->ready)
                                continue;
                        if (!cluster_node_pid(cl, n)) {
                                _cleanup_free_ char *last = last_console_line(n);
                                return log_error_errno(-EIO, "%s: QEMU exited while booting; last console line: %s (fame logs %s)", n->name, last, n->name);
                        }
                        if (!s->joined)
                                s->joined = slot_boot(fam, n->id) == n->boot;
                        if (s->joined && !s->agent)
                                s->agent = qga_answers(cl, n, QGA_PING_MS);
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

int wait_ready(const struct cluster *cl, struct fame *fam, struct ready_state *st, uint32_t timeout_s) {
        int r = wait_ready_inner(cl, fam, st, timeout_s);
        for (uint32_t i = 0; i < cl->plan.nodes; i++)
                if (st[i].ssh_fd > 0) {
                        close(st[i].ssh_fd);
                        st[i].ssh_fd = -1;
                }
        return r;
}
