/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Networking that needs no root and sends nothing to any address but loopback:
 *
 * The private segment: every node has a second NIC, QEMU's `-netdev dgram` on a UNIX datagram
 * socket (STATE/nodes/nodeNN/net.sock) whose peer is the cluster's switch (STATE/switch.sock).
 * One datagram is one Ethernet frame.  The switch learns which port each source MAC is behind,
 * sends unicast frames to that port and floods the rest (broadcast, multicast, unknown) to
 * every other port.  Only the cluster's own node sockets are ports.
 *
 * The relay: QEMU's user-mode network is started with restrict=on, so a node reaches nothing of
 * the host except its guestfwd rules; each rule runs `fame debug relay PORT` per connection,
 * which joins the connection (stdin/stdout) to 127.0.0.1:PORT.
 */
#ifndef FAME_NET_H
#define FAME_NET_H

#include <signal.h>
#include <stdint.h>

#include "util.h"

struct netswitch_stats {
        unsigned long received, forwarded, dropped;
};

/* A bound UNIX datagram socket at sock_path (an old socket file is replaced); fd or -errno. */
int netswitch_bind(const char *sock_path);
/* Switches frames arriving on fd among ports (NULL-terminated socket paths) until *stop is set
 * (checked after each frame or signal) or a receive error (-errno). */
int netswitch_serve(int fd, char *const *ports, volatile sig_atomic_t *stop, struct netswitch_stats *st);
/* `fame debug net-switch`: binds, serves until SIGTERM/SIGINT, removes the socket. */
int netswitch_run(const char *sock_path, char *const *ports);

/* A TCP connection to 127.0.0.1:port: fd, or -errno. */
int tcp_connect_loopback(uint16_t port);
/* Joins in_fd/out_fd with a TCP connection to 127.0.0.1:port until the server closes. */
int tcp_relay(uint16_t port, int in_fd, int out_fd);

#endif
