/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cluster's private Ethernet segment and the relay to host services (net.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "log.h"
#include "macro.h"
#include "net.h"
#include "util.h"

#define MAC_TABLE 256

struct mac_entry {
        unsigned char mac[6];
        int port;               /* index into ports, -1: free */
};

static int port_of(char *const *ports, size_t n, const struct sockaddr_un *from, socklen_t len) {
        if (len <= offsetof(struct sockaddr_un, sun_path))
                return -1;
        for (size_t i = 0; i < n; i++)
                if (strncmp(ports[i], from->sun_path, sizeof from->sun_path) == 0)
                        return (int) i;
        return -1;
}

static void send_to(int fd, const char *path, const void *frame, size_t len, struct netswitch_stats *st) {
        struct sockaddr_un to = { .sun_family = AF_UNIX };
        snprintf(to.sun_path, sizeof to.sun_path, "%s", path);
        /* Never block on one slow or stopped node: a full queue drops the frame, as a switch would. */
        if (sendto(fd, frame, len, MSG_DONTWAIT, (const struct sockaddr *) &to, sizeof to) < 0) {
                if (st)
                        st->dropped++;
        } else if (st)
                st->forwarded++;
}

int netswitch_serve(int fd, char *const *ports, volatile sig_atomic_t *stop, struct netswitch_stats *st) {
        struct mac_entry table[MAC_TABLE];
        unsigned char frame[65536];
        size_t n = 0, next = 0;

        while (ports[n])
                n++;
        for (size_t i = 0; i < MAC_TABLE; i++)
                table[i].port = -1;

        while (!stop || !*stop) {
                struct sockaddr_un from;
                socklen_t flen = sizeof from;
                ssize_t k = recvfrom(fd, frame, sizeof frame, 0, (struct sockaddr *) &from, &flen);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k < 14)
                        continue;       /* not an Ethernet frame */
                int src = port_of(ports, n, &from, flen);
                if (src < 0)
                        continue;       /* not one of this cluster's nodes */
                if (st)
                        st->received++;
                /* learn: the source MAC lives behind this port */
                const unsigned char *dst = frame, *smac = frame + 6;
                if (!(smac[0] & 1)) {
                        size_t i;
                        for (i = 0; i < MAC_TABLE; i++)
                                if (table[i].port >= 0 && memcmp(table[i].mac, smac, 6) == 0)
                                        break;
                        if (i == MAC_TABLE) {
                                i = next;
                                next = (next + 1) % MAC_TABLE;
                        }
                        memcpy(table[i].mac, smac, 6);
                        table[i].port = src;
                }
                /* forward: unicast to a known port, else flood */
                int out = -1;
                if (!(dst[0] & 1))
                        for (size_t i = 0; i < MAC_TABLE; i++)
                                if (table[i].port >= 0 && memcmp(table[i].mac, dst, 6) == 0) {
                                        out = table[i].port;
                                        break;
                                }
                if (out == src)
                        continue;
                if (out >= 0)
                        send_to(fd, ports[out], frame, (size_t) k, st);
                else
                        for (size_t i = 0; i < n; i++)
                                if ((int) i != src)
                                        send_to(fd, ports[i], frame, (size_t) k, st);
        }
        return 0;
}

int netswitch_bind(const char *sock_path) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        if (strlen(sock_path) >= sizeof a.sun_path)
                return log_error_errno(-ENAMETOOLONG, "Socket path '%s' is too long", sock_path);
        strcpy(a.sun_path, sock_path);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(-errno, "socket: %m");
        (void) unlink(sock_path);
        if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0) {
                int r = log_error_errno(-errno, "Cannot bind '%s': %m", sock_path);
                close(fd);
                return r;
        }
        int sz = 1 << 20;
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        return fd;
}

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
        (void) sig;
        stop_flag = 1;
}

int netswitch_run(const char *sock_path, char *const *ports) {
        struct sigaction sa = { .sa_handler = on_signal };      /* no SA_RESTART: recvfrom returns */
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        int fd = netswitch_bind(sock_path);
        if (fd < 0)
                return fd;
        int r = netswitch_serve(fd, ports, &stop_flag, NULL);
        close(fd);
        (void) unlink(sock_path);
        if (r < 0 && !stop_flag)
                return log_error_errno(r, "Switch '%s' failed: %m", sock_path);
        return 0;
}

/* ---- relay ------------------------------------------------------------------------------------- */

int tcp_connect_loopback(uint16_t port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &a, sizeof a) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int tcp_relay(uint16_t port, int in_fd, int out_fd) {
        int s = tcp_connect_loopback(port);
        if (s < 0)
                return log_error_errno(s, "Cannot connect to 127.0.0.1:%u: %m", port);
        signal(SIGPIPE, SIG_IGN);
        bool in_open = true, sock_open = true;
        char buf[65536];
        while (sock_open) {
                struct pollfd p[2] = { { .fd = s, .events = POLLIN }, { .fd = in_open ? in_fd : -1, .events = POLLIN } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents) {
                        ssize_t k = read(in_fd, buf, sizeof buf);
                        if (k <= 0) {
                                in_open = false;
                                shutdown(s, SHUT_WR);
                        } else if (write_all(s, buf, (size_t) k) < 0)
                                break;
                }
                if (p[0].revents) {
                        ssize_t k = read(s, buf, sizeof buf);
                        if (k <= 0)
                                sock_open = false;
                        else if (write_all(out_fd, buf, (size_t) k) < 0)
                                break;
                }
        }
        close(s);
        return 0;
}
