/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent keeper (`fame debug agents`, direct backend only): one host process per cluster that
 * holds a connection to every node's guest agent socket (STATE/nodes/NAME/qga.sock, where QEMU is
 * the server and takes one client at a time) and lends it to host clients that connect to
 * STATE/nodes/NAME/agent.sock, one at a time.
 *
 * Why: qemu-ga polls its virtio-serial port every 100 ms while no host client is connected, so
 * the first request of every new connection waited up to 100 ms, and every idle node woke ten
 * times a second.  libvirt keeps such a connection itself; the keeper does so for fame.
 *
 * The connection outlives its clients: bytes the agent sends while no client is attached (late
 * replies to an earlier client) are dropped, and qga_connect()'s guest-sync-delimited skips any
 * that arrive after a new client attached.
 */
#ifndef FAME_AGENT_KEEPER_H
#define FAME_AGENT_KEEPER_H

/* Listens on D/agent.sock for each node directory D of node_dirs (NULL-terminated; made if
 * missing), creates ready_file once every socket is bound, and relays until SIGTERM/SIGINT, then
 * removes the sockets and ready_file.  0 on a signal, -errno on a setup error (logged). */
int agent_keeper_run(const char *ready_file, char *const *node_dirs);

#endif
