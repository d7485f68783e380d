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

/* A console line as it reads: escape sequences (ESC [ ... letter) and control characters out,
 * trailing blanks trimmed. */
static void clean_line(char *l) {
        char *w = l;
        for (char *r = l; *r; r++) {
                if (*r == 0x1b) {
                        if (r[1] == '[') {
                                r += 2;
                                while (*r && !((*r >= '@' && *r <= '~') && *r != '['))
                                        r++;
                                if (!*r)
                                        break;
                        }
                        continue;
                }
                if ((unsigned char) *r < 0x20)
                        continue;
                *w++ = *r;
        }
        while (w > l && w[-1] == ' ')
                w--;
        *w = 0;
}

/* A shell prompt ("node01:~# ") says nothing about why a node failed. */
static bool is_prompt(const char *l) {
        size_t n = strlen(l);
        return n > 0 && (l[n - 1] == '#' || l[n - 1] == '$') && strchr(l, ':') && !strchr(l, ' ');
}

char *console_last_lines(const char *path, int lines) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        char buf[8192];
        ssize_t k = 0;
        if (fd >= 0) {
                off_t end = lseek(fd, 0, SEEK_END);
                off_t start = end > (off_t) sizeof buf - 1 ? end - (off_t) sizeof buf + 1 : 0;
                k = pread(fd, buf, sizeof buf - 1, start);
        }
        buf[k > 0 ? k : 0] = 0;
        /* a kernel panic says why in its first line; what follows is its stack trace */
        char *panic = NULL;
        for (char *q = strstr(buf, "Kernel panic - not syncing"); q; q = strstr(q + 1, "Kernel panic - not syncing"))
                panic = q;
        if (panic) {
                char *eol = strchr(panic, '\n');
                if (eol)
                        k = eol - buf;
        }
        /* from the end backwards: the last `lines` lines that say something */
        char *found[16];
        int n = 0;
        if (lines > (int) ELEMENTSOF(found))
                lines = ELEMENTSOF(found);
        for (char *end = buf + (k > 0 ? k : 0); end > buf && n < lines;) {
                *end = 0;
                char *l = end;
                while (l > buf && l[-1] != '\n')
                        l--;
                char *next = l > buf ? l - 1 : buf;
                clean_line(l);
                if (*l && !is_prompt(l))
                        found[n++] = l;
                end = next;
                if (l == buf)
                        break;
        }
        if (n == 0)
                return strdup("(no console output)");
        size_t len = 1;
        for (int i = 0; i < n; i++)
                len += strlen(found[i]) + 1;
        char *out = malloc(len), *w = out;
        if (!out)
                return NULL;
        for (int i = n - 1; i >= 0; i--)
                w += sprintf(w, "%s%s", found[i], i ? "\n" : "");
        *w = 0;
        return out;
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

enum ready_step ready_check(const struct cluster *cl, struct fame *fam, const struct node_plan *n, struct ready_state *s,
                            uint32_t timeout_s) {
        const struct cluster_plan *p = &cl->plan;
        if (!cluster_node_pid(cl, n)) {
                _cleanup_free_ char *last = console_last_lines(n->console_log, 3);
                snprintf(s->why, sizeof s->why, "QEMU exited while booting; its console's last lines:\n%s", last ? last : "");
                return READY_FAILED;
        }
        if (!s->joined)
                s->joined = slot_boot(fam, n->id) == n->boot;
        if (s->joined && !s->agent)
                s->agent = qga_answers(cl, n, QGA_PING_MS);
        if (s->agent && (p->kind != FAME_KIND_DEBIAN || ssh_probe(n, s))) {
                s->ready = true;
                s->t_ready = now_seconds();
                return READY_DONE;
        }
        if (now_seconds() - s->t_start > timeout_s) {
                _cleanup_free_ char *last = console_last_lines(n->console_log, 3);
                snprintf(s->why, sizeof s->why, "not ready within %" PRIu32 " s: %s; its console's last lines:\n%s", timeout_s,
                         s->agent ? "its sshd does not answer" : s->joined ? "its guest agent does not answer" : "it did not join the FAM",
                         last ? last : "");
                return READY_FAILED;
        }
        return READY_WAITING;
}

/* Waits until every started node is ready; the first failure ends the wait. */
static int wait_ready_inner(const struct cluster *cl, struct fame *fam, struct ready_state *st, uint32_t timeout_s) {
        const struct cluster_plan *p = &cl->plan;
        for (;;) {
                uint32_t pending = 0;
                for (uint32_t i = 0; i < p->nodes; i++) {
                        const struct node_plan *n = &p->node[i];
                        struct ready_state *s = &st[i];
                        if (!s->started || s->ready)
                                continue;
                        enum ready_step k = ready_check(cl, fam, n, s, timeout_s);
                        if (k == READY_FAILED) {
                                s->failed = true;
                                return log_error_errno(-EIO, "%s: %s (fame logs %s)", n->name, s->why, n->name);
                        }
                        pending += k == READY_WAITING;
                }
                if (pending == 0)
                        return 0;
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
