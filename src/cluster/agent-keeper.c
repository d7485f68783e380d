/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The agent keeper (agent-keeper.h): a single-threaded poll() loop over every node's listening
 * socket, its one client and its one upstream connection to QEMU's agent chardev. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent-keeper.h"
#include "log.h"
#include "macro.h"
#include "util.h"

/* Not connected to the agent: how often to try again (QEMU not started yet, or restarting). */
#define RETRY_MS 100
/* Per direction: an agent request or reply larger than this simply waits for room. */
#define BUF_SIZE (64 * 1024)

struct buffer {
        size_t len;
        unsigned char data[BUF_SIZE];
};

struct keeper_node {
        char sock_path[sizeof ((struct sockaddr_un *) 0)->sun_path];    /* D/agent.sock */
        char qga_path[sizeof ((struct sockaddr_un *) 0)->sun_path];     /* D/qga.sock */
        int listen_fd, client_fd, up_fd;
        int64_t next_try;               /* not connected: when to try again (ms, monotonic) */
        bool up_logged;                 /* "connected" said once per connection */
        struct buffer to_up, to_client;
};

static volatile sig_atomic_t stop_flag;

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd) {
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

static int listen_on(const char *path) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(-errno, "socket: %m");
        (void) unlink(path);    /* a stale socket of a keeper that was killed */
        /* 0600 from the start: no other user may reach a node's agent, not even briefly */
        mode_t old = umask(0177);
        int r = bind(fd, (struct sockaddr *) &a, sizeof a);
        umask(old);
        if (r < 0 || listen(fd, 16) < 0) {
                r = log_error_errno(-errno, "Cannot listen on '%s': %m", path);
                close(fd);
                return r;
        }
        return fd;
}

/* One non-blocking attempt to reach QEMU's agent socket; quiet: not being there is normal. */
static void connect_up(struct keeper_node *n) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof a.sun_path, "%s", n->qga_path);
        n->next_try = now_ms() + RETRY_MS;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                log_error_errno(-errno, "socket: %m");
                return;
        }
        /* A UNIX stream connect completes at once or fails (EAGAIN: backlog full, try later). */
        if (connect(fd, (struct sockaddr *) &a, sizeof a) < 0) {
                close(fd);
                return;
        }
        n->up_fd = fd;
        n->to_up.len = n->to_client.len = 0;
        log_debug("%s: connected", n->qga_path);
}

static void drop_client(struct keeper_node *n) {
        close_fd(&n->client_fd);
        /* the rest of its replies: nobody to read them */
        n->to_client.len = 0;
}

/* The agent went away (QEMU stopped or restarted): its client goes too, and we try again. */
static void drop_up(struct keeper_node *n) {
        log_debug("%s: disconnected", n->qga_path);
        close_fd(&n->up_fd);
        n->to_up.len = 0;
        if (n->client_fd >= 0) {
                /* what the agent said before it went: best effort, never blocking */
                if (n->to_client.len > 0)
                        (void) send(n->client_fd, n->to_client.data, n->to_client.len, MSG_NOSIGNAL | MSG_DONTWAIT);
                drop_client(n);
        }
        n->next_try = now_ms() + RETRY_MS;
}

static void accept_client(struct keeper_node *n) {
        int fd = accept4(n->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                        log_error_errno(-errno, "Cannot accept on '%s': %m", n->sock_path);
                return;
        }
        if (n->up_fd < 0)
                connect_up(n);
        if (n->up_fd < 0) {
                /* no agent to lend: the client sees EOF at once rather than a hang */
                close(fd);
                return;
        }
        n->client_fd = fd;
        n->to_client.len = 0;
}

/* Moves what fits from fd into b; false on EOF or an error.  revents: poll's for fd. */
static bool read_into(int fd, struct buffer *b, short revents) {
        /* Full (POLLIN was not asked for): a hangup now would be reported on every poll until
         * the other side drained the buffer, so the peer is taken as gone at once. */
        if (b->len == sizeof b->data)
                return !(revents & (POLLHUP | POLLERR));
        ssize_t k = read(fd, b->data + b->len, sizeof b->data - b->len);
        if (k > 0) {
                b->len += (size_t) k;
                return true;
        }
        return k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

/* Writes what fd takes of b (a partial write keeps the rest); false on an error. */
static bool write_from(int fd, struct buffer *b) {
        ssize_t k = send(fd, b->data, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        memmove(b->data, b->data + k, b->len - (size_t) k);
        b->len -= (size_t) k;
        return true;
}

/* Bytes of the agent with no client attached: late replies to a client that left. */
static bool discard(int fd) {
        unsigned char junk[4096];
        ssize_t k = read(fd, junk, sizeof junk);
        if (k > 0)
                return true;
        return k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

/* The poll entries of node n: [0] listener, [1] client, [2] upstream (fd -1: ignored). */
static void node_events(const struct keeper_node *n, struct pollfd pfd[3]) {
        pfd[0] = (struct pollfd) { .fd = n->client_fd < 0 ? n->listen_fd : -1, .events = POLLIN };
        pfd[1] = (struct pollfd) { .fd = n->client_fd, .events = 0 };
        pfd[2] = (struct pollfd) { .fd = n->up_fd, .events = 0 };
        if (n->client_fd >= 0) {
                if (n->to_up.len < sizeof n->to_up.data)
                        pfd[1].events |= POLLIN;
                if (n->to_client.len > 0)
                        pfd[1].events |= POLLOUT;
        }
        if (n->up_fd >= 0) {
                if (n->client_fd < 0 || n->to_client.len < sizeof n->to_client.data)
                        pfd[2].events |= POLLIN;
                if (n->to_up.len > 0)
                        pfd[2].events |= POLLOUT;
        }
}

static void node_handle(struct keeper_node *n, const struct pollfd pfd[3]) {
        /* upstream first: an agent that went away also takes the client */
        if (n->up_fd >= 0 && pfd[2].revents) {
                bool ok = true;
                if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR))
                        ok = n->client_fd >= 0 ? read_into(n->up_fd, &n->to_client, pfd[2].revents) : discard(n->up_fd);
                if (ok && (pfd[2].revents & POLLOUT))
                        ok = write_from(n->up_fd, &n->to_up);
                if (!ok)
                        drop_up(n);
        }
        if (n->client_fd >= 0 && pfd[1].revents) {
                bool ok = true;
                if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
                        ok = read_into(n->client_fd, &n->to_up, pfd[1].revents);
                if (ok && (pfd[1].revents & POLLOUT))
                        ok = write_from(n->client_fd, &n->to_client);
                /* A client that left: the connection to the agent stays, and what the client sent
                 * last still goes to the agent (a request it did not wait for, guest-shutdown). */
                if (!ok)
                        drop_client(n);
        }
        if (n->client_fd >= 0 && n->up_fd < 0)
                drop_client(n);
        /* a full buffer from the client's side can be written to the agent now */
        if (n->up_fd >= 0 && n->to_up.len > 0 && !write_from(n->up_fd, &n->to_up))
                drop_up(n);
        if (n->client_fd < 0 && pfd[0].fd >= 0 && (pfd[0].revents & POLLIN))
                accept_client(n);
}

int agent_keeper_run(const char *ready_file, char *const *node_dirs) {
        struct keeper_node *nodes = NULL;
        struct pollfd *pfd = NULL;
        size_t n = 0;
        sigset_t orig;
        int r = 0;

        while (node_dirs[n])
                n++;
        nodes = calloc(n ? n : 1, sizeof *nodes);
        pfd = calloc(3 * (n ? n : 1), sizeof *pfd);
        if (!nodes || !pfd) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                nodes[i].listen_fd = nodes[i].client_fd = nodes[i].up_fd = -1;

        /* SIGTERM/SIGINT arrive only inside ppoll() */
        stop_signals_setup(&stop_flag, &orig);

        for (size_t i = 0; i < n; i++) {
                struct keeper_node *k = &nodes[i];
                if (snprintf(k->sock_path, sizeof k->sock_path, "%s/agent.sock", node_dirs[i]) >= (int) sizeof k->sock_path ||
                    snprintf(k->qga_path, sizeof k->qga_path, "%s/qga.sock", node_dirs[i]) >= (int) sizeof k->qga_path) {
                        r = log_error_errno(-ENAMETOOLONG, "Node directory '%s' is too long for a UNIX socket path", node_dirs[i]);
                        goto out;
                }
                r = mkdir_p(node_dirs[i], 0755);
                if (r < 0) {
                        log_error_errno(r, "Failed to create '%s': %m", node_dirs[i]);
                        goto out;
                }
                r = k->listen_fd = listen_on(k->sock_path);
                if (r < 0)
                        goto out;
                connect_up(k);
        }
        r = write_file_atomic(ready_file, 0644, "", 0);
        if (r < 0) {
                log_error_errno(r, "Failed to write '%s': %m", ready_file);
                goto out;
        }

        while (!stop_flag) {
                int64_t now = now_ms(), wait = -1;
                for (size_t i = 0; i < n; i++) {
                        if (nodes[i].up_fd >= 0)
                                continue;
                        int64_t left = nodes[i].next_try - now;
                        if (left <= 0) {
                                connect_up(&nodes[i]);
                                if (nodes[i].up_fd >= 0)
                                        continue;
                                left = RETRY_MS;
                        }
                        if (wait < 0 || left < wait)
                                wait = left;
                }
                for (size_t i = 0; i < n; i++)
                        node_events(&nodes[i], pfd + 3 * i);
                struct timespec ts = { wait / 1000, (wait % 1000) * 1000000 };
                int k = ppoll(pfd, 3 * n, wait >= 0 ? &ts : NULL, &orig);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = log_error_errno(-errno, "poll: %m");
                        break;
                }
                for (size_t i = 0; i < n; i++)
                        node_handle(&nodes[i], pfd + 3 * i);
        }

out:
        for (size_t i = 0; nodes && i < n; i++) {
                if (nodes[i].listen_fd >= 0)
                        (void) unlink(nodes[i].sock_path);
                close_fd(&nodes[i].listen_fd);
                close_fd(&nodes[i].client_fd);
                close_fd(&nodes[i].up_fd);
        }
        (void) unlink(ready_file);
        free(nodes);
        free(pfd);
        return r < 0 ? r : 0;
}
