/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Librarian's connections and its poll loop (the rest of the server: server.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"
#include "fame.h"
#include "log.h"
#include "macro.h"
#include "proto.h"
#include "server.h"
#include "util.h"

#include "server-internal.h"

#define MAX_OUTPUT (64u << 20)  /* a client that does not read its replies is dropped */

/* ---------------------------------------------------------------------------------------- */
/* clients */

void client_free(struct client *c) {
        if (!c)
                return;
        if (c->fd >= 0)
                close(c->fd);
        proto_stream_done(&c->in);
        free(c->out);
        free(c);
}

static void drop_client(struct server *s, size_t i) {
        int r = engine_connection_closed(s->engine, s->clients[i]->conn);
        if (r < 0)
                log_error("Librarian: failed to drop the open handles of %s: %s", s->clients[i]->peer, strerror(-r));
        client_free(s->clients[i]);
        s->clients[i] = s->clients[--s->n_clients];
}

static int client_queue(struct client *c, const char *data, size_t len) {
        if (c->out_off > 0 && c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        if (c->out_len - c->out_off + len > MAX_OUTPUT)
                return -ENOBUFS;
        if (c->out_len + len > c->out_allocated) {
                if (c->out_off > 0) {
                        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
                        c->out_len -= c->out_off;
                        c->out_off = 0;
                }
                if (c->out_len + len > c->out_allocated) {
                        size_t na = (c->out_len + len) * 2;
                        char *no = realloc(c->out, na);
                        if (!no)
                                return -ENOMEM;
                        c->out = no;
                        c->out_allocated = na;
                }
        }
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
        return 0;
}

static int client_flush(struct client *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        return negative_errno();
                }
                c->out_off += (size_t) n;
        }
        return 0;
}

static void broadcast_oob(struct server *s, struct client *from, struct json_object *msg) {
        struct json_object *o = json_object_new_object();
        _cleanup_free_ char *text = NULL;
        size_t len;

        json_object_object_add(o, "OOBmsg", json_object_get(msg));
        if (proto_dumps(o, &text, &len) >= 0)
                for (size_t i = 0; i < s->n_clients; i++)
                        if (s->clients[i] != from)
                                (void) client_queue(s->clients[i], text, len);
        json_object_put(o);
}

/* Reads what the client sent and answers every complete request.  <0: drop the client. */
static int client_input(struct server *s, struct client *c) {
        char buf[65536];
        bool wrote = false;

        for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        return negative_errno();
                }
                int r = proto_feed(&c->in, buf, (size_t) n);
                if (r < 0) {
                        log_warning("Librarian: client %s sent more than %u bytes without a complete request; "
                                    "closing the connection", c->peer, PROTO_MAX_BUFFER);
                        return r;
                }
                if ((size_t) n < sizeof buf)
                        break;
        }
        for (;;) {
                struct json_object *req = proto_next(&c->in);
                if (!req)
                        break;
                struct engine_request_info info = { .pinned_node = c->pinned, .conn = c->conn };
                _cleanup_free_ char *reply = NULL;
                size_t len;
                int r = engine_handle(s->engine, req, &info, &reply, &len);
                if (r < 0) {
                        json_object_put(req);
                        return r;
                }
                if (info.tail_len && s->fam_fd >= 0) {
                        /* truncation inside a book: zeroed before the client hears back */
                        uint64_t off;
                        int k = engine_book_offset(s->engine, info.tail_book, &off);
                        if (k >= 0)
                                k = zero_range(s->fam_fd, s->book_area_offset + off + info.tail_from, info.tail_len);
                        if (k >= 0)
                                host_wrote(s, s->book_area_offset + off + info.tail_from, info.tail_len);
                        if (k < 0)
                                log_error("Librarian: zeroing the end of book %#llx failed: %s",
                                          (unsigned long long) info.tail_book, strerror(-k));
                }
                r = client_queue(c, reply, len);
                if (info.oob) {
                        broadcast_oob(s, c, info.oob);
                        json_object_put(info.oob);
                }
                json_object_put(req);
                if (r < 0)
                        return r;
                wrote = true;
        }
        if (wrote) {
                int r = queue_zombies(s);
                if (r < 0)
                        log_error("Librarian: failed to queue freed books for zeroing: %s", strerror(-r));
        }
        return client_flush(c);
}

static void accept_clients(struct server *s, struct listener *l) {
        for (;;) {
                struct sockaddr_in sa;
                socklen_t len = sizeof sa;
                int fd = accept4(l->fd, (struct sockaddr *) &sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                        return;
                if (s->n_clients == MAX_CLIENTS) {
                        log_warning("Librarian: %u clients connected; refusing another", MAX_CLIENTS);
                        close(fd);
                        continue;
                }
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct client *c = calloc(1, sizeof *c);
                if (!c) {
                        close(fd);
                        return;
                }
                c->fd = fd;
                c->pinned = l->pinned;
                c->conn = ++s->next_conn;
                proto_stream_init(&c->in);
                char ip[INET_ADDRSTRLEN] = "?";
                inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
                snprintf(c->peer, sizeof c->peer, "%s:%u", ip, ntohs(sa.sin_port));
                s->clients[s->n_clients++] = c;
        }
}

static void handle_events(struct server *s, struct pollfd *pfd, size_t nl, size_t nc) {
        /* new connections first, so that a broadcast in this round reaches them too */
        for (size_t i = 0; i < nl; i++)
                if (pfd[i].revents & POLLIN)
                        accept_clients(s, &s->listeners[i]);
        /* then the clients polled (indexes shift when one is dropped: walk backwards; the
         * ones just accepted sit after them) */
        for (size_t i = nc; i-- > 0; ) {
                struct pollfd *p = &pfd[nl + 1 + i];
                struct client *c = s->clients[i];
                int r = 0;
                if (p->revents & (POLLIN | POLLHUP | POLLERR))
                        r = client_input(s, c);
                if (r >= 0 && (p->revents & POLLOUT))
                        r = client_flush(c);
                if (r < 0)
                        drop_client(s, i);
        }
        if (pfd[nl].revents & POLLIN)
                collect_zeroed(s);
}

static int round_(struct server *s, const struct timespec *timeout, const sigset_t *mask) {
        struct pollfd pfd[SERVER_MAX_PINS + 2 + MAX_CLIENTS];
        {
                size_t n = 0, nl = s->n_listeners, nc = s->n_clients;
                for (size_t i = 0; i < nl; i++)
                        pfd[n++] = (struct pollfd) { .fd = s->listeners[i].fd, .events = POLLIN };
                pfd[n++] = (struct pollfd) { .fd = s->wake[0], .events = POLLIN };
                for (size_t i = 0; i < nc; i++) {
                        struct client *c = s->clients[i];
                        pfd[n++] = (struct pollfd) { .fd = c->fd,
                                .events = POLLIN | (c->out_off < c->out_len ? POLLOUT : 0) };
                }
                /* zombies that could not be zeroed or freed: again a second later */
                struct timespec retry;
                const struct timespec *t = timeout;
                if (s->retry_at) {
                        double left = s->retry_at - now_seconds();
                        if (left < 0)
                                left = 0;
                        retry = (struct timespec) { (time_t) left, (long) ((left - (double) (time_t) left) * 1e9) };
                        if (!t || t->tv_sec > retry.tv_sec || (t->tv_sec == retry.tv_sec && t->tv_nsec > retry.tv_nsec))
                                t = &retry;
                }
                int r = ppoll(pfd, n, t, mask);
                if (r < 0)
                        return negative_errno();
                handle_events(s, pfd, nl, nc);
                if (s->retry_at && now_seconds() >= s->retry_at) {
                        s->retry_at = 0;
                        int k = queue_zombies(s);
                        if (k < 0)
                                log_error("Librarian: failed to queue freed books for zeroing: %s", strerror(-k));
                }
        }
        return 0;
}

int server_step(struct server *s, int timeout_ms) {
        struct timespec ts = { timeout_ms / 1000, (long) (timeout_ms % 1000) * 1000000L };
        return round_(s, timeout_ms < 0 ? NULL : &ts, NULL);
}

int server_run(struct server *s, volatile sig_atomic_t *stop, const sigset_t *unblocked_mask) {
        while (!*stop) {
                int r = round_(s, NULL, unblocked_mask);
                if (r < 0 && r != -EINTR)
                        return log_error_errno(r, "Librarian: poll failed: %m");
        }
        return 0;
}

