/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * When a node is ready (docs/cluster.md, "What `fame up` does", 7): it has joined the FAM (its
 * slot carries this boot's nonce), its guest agent answers, and a Debian node's sshd answers
 * with its banner.  `fame up` and `fame start` wait for it; `fame status` asks.
 */
#ifndef FAME_READY_H
#define FAME_READY_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster-state.h"

struct fame;

#define QGA_PING_MS 400
/* sshd re-executes itself for every connection: its banner takes about a second under TCG. */
#define SSH_BANNER_MS 5000

/* One per node of the plan, zeroed before the nodes start. */
struct ready_state {
        bool started, joined, agent, ready, failed;
        double t_start, t_ready;
        unsigned attempts;              /* boots started by this `fame up` */
        char why[1024];                 /* failed: why, with the console's last lines */
        int ssh_fd;                     /* a connection waiting for sshd's banner, or -1 */
        double ssh_since, ssh_next;     /* when it was opened; when to try again */
};

/* One look at a started node that is not ready yet: READY_DONE when it became ready now,
 * READY_FAILED when its QEMU exited or it is not ready timeout_s after its start (s->why says
 * which, what it waited for, and its console's last lines), else READY_WAITING. */
enum ready_step { READY_WAITING, READY_DONE, READY_FAILED };
enum ready_step ready_check(const struct cluster *cl, struct fame *fam, const struct node_plan *n, struct ready_state *s,
                            uint32_t timeout_s);
/* Waits until every started node is ready; fails fast when a QEMU exits, and after timeout_s
 * with one line naming the node, what it waits for and its last console line. */
int wait_ready(const struct cluster *cl, struct fame *fam, struct ready_state *st, uint32_t timeout_s);
/* The last `lines` lines of a console log that say something (escape sequences, prompts and
 * blank lines left out), joined by "\n"; "(no console output)" when there are none.  The
 * caller frees it; NULL only when out of memory. */
char *console_last_lines(const char *path, int lines);
/* Whether the node's guest agent answers a ping. */
bool qga_answers(const struct cluster *cl, const struct node_plan *n, int timeout_ms);
/* Whether sshd answers with its banner ("SSH-2.0-...") on the node's forwarded port. */
bool ssh_answers(const struct node_plan *n, int timeout_ms);

#endif
