/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Processes fame starts in the background with a pidfile, and the cluster's helper daemons: the
 * private segment's switch (`fame debug net-switch`, STATE/switch.{sock,pid,log}), the agent
 * keeper (`fame debug agents`, STATE/agents.{pid,ready,log}) and the Librarian (`fame-librarian
 * serve`, STATE/librarian/: database, topology, pid, log, port).
 */
#ifndef FAME_DAEMONS_H
#define FAME_DAEMONS_H

#include <sys/types.h>

#include "plan.h"

/* The pid in pidfile if that process is alive and its command line holds needle (a zombie or a
 * reused pid does not count), else 0. */
pid_t pidfile_process(const char *pidfile, const char *needle);
/* Waiting for another process (a daemon to bind, a QEMU to exit, a node to write its slot): the
 * poll interval. */
void sleep_ms(long ms);

/* The switch: started unless it runs; its pid or 0; stopped (SIGTERM, then SIGKILL). */
int switch_start(const struct cluster_plan *p);
pid_t switch_pid(const struct cluster_plan *p);
void switch_stop(const struct cluster_plan *p);

/* The agent keeper (agent-keeper.h, `fame debug agents`, STATE/agents.{pid,ready,log}), direct
 * backend only (libvirt keeps its own connection to each guest agent: these do nothing, and
 * agents_pid() is 0): started unless it runs; its pid or 0; stopped. */
int agents_start(const struct cluster_plan *p);
pid_t agents_pid(const struct cluster_plan *p);
void agents_stop(const struct cluster_plan *p);

/* The Librarian (docs/librarian.md): fills p->librarian_port and every node's librarian_node and
 * librarian_port (all 0 when the FAM's topology cannot have a Librarian: a warning, not an
 * error). */
int librarian_start(struct cluster_plan *p);
pid_t librarian_pid(const struct cluster_plan *p);
void librarian_stop(const struct cluster_plan *p);

#endif
