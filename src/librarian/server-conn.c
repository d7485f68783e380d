/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian's connections and its poll loop (the rest of the server: server.c).
 *
 * Fair and bounded (docs/librarian.md, "Limits and fairness"): each round answers at most
 * SERVER_REQUESTS_PER_ROUND requests of each connection, so one client's pipeline does not
 * hold up the others; a connection whose unsent replies reach max_output is not read until
 * they drain (backpressure; replies are never dropped, OOB messages to it are); a connection
 * holding a partial request idle for idle_timeout is closed; one address may hold
 * max_per_peer connections to one port, and a refused client is told so in a reply; at the
 * descriptor limit the listeners rest SERVER_ACCEPT_BACKOFF seconds instead of spinning; a
 * client that half-closes gets every reply to what it sent before the connection closes.
 */
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
#include "librarian-protocol.h"
#include "lmp.h"
#include "log.h"
#include "macro.h"
#include "proto.h"
#include "server.h"
#include "util.h"

#include "server-internal.h"

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

static size_t pending(const struct client *c) {
        return c->out_len - c->out_off;
}

static void drop_client(struct server *s, size_t i) {
        int r = engine_connection_closed(s->engine, s->clients[i]->conn);
        if (r < 0)
                log_error("Librarian: failed to drop the open handles of %s: %s", s->clients[i]->peer, strerror(-r));
        client_free(s->clients[i]);
        s->clients[i] = s->clients[--s->n_clients];
}

static int client_queue(struct server *s, struct client *c, const char *data, size_t len) {
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
        if (pending(c) > s->limits.output_peak)
                s->limits.output_peak = pending(c);
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
        /* drained: a large buffer left by a burst is given back */
        c->out_off = c->out_len = 0;
        if (c->out_allocated > (64u << 10)) {
                free(c->out);
                c->out = NULL;
                c->out_allocated = 0;
        }
        return 0;
}

/* Its replies wait to be read: its requests wait too. */
static bool blocked(const struct server *s, const struct client *c) {
        return pending(c) >= s->opt.max_output;
}

/* Whether c is to get an OOB message from from: every client but from, or (watchers_only) each
 * watcher but from and the one of origin. */
static bool oob_to(const struct client *c, const struct client *from, bool watchers_only, const char *origin) {
        if (c == from)
                return false;
        if (!watchers_only)
                return true;
        return c->watching && !(origin && *origin && strcmp(c->origin, origin) == 0);
}

/* msg as an OOB message to every client but from (watchers_only: to those that watch, but not
 * the one of origin). */
static void broadcast_oob(struct server *s, struct client *from, struct json_object *msg, bool watchers_only,
                          const char *origin) {
        _cleanup_free_ char *text = NULL;
        size_t len, to = 0;

        for (size_t i = 0; i < s->n_clients; i++)
                to += oob_to(s->clients[i], from, watchers_only, origin);
        if (to == 0)
                return;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "OOBmsg", json_object_get(msg));
        if (proto_dumps(o, &text, &len) >= 0)
                for (size_t i = 0; i < s->n_clients; i++) {
                        struct client *c = s->clients[i];
                        if (!oob_to(c, from, watchers_only, origin))
                                continue;
                        if (pending(c) + len > s->opt.max_output || client_queue(s, c, text, len) < 0) {
                                s->limits.oob_dropped++;
                                if (!c->oob_logged)
                                        log_warning("Librarian: client %s does not read its messages; OOB messages "
                                                    "that would hold more than %zu bytes for it are dropped",
                                                    c->peer, s->opt.max_output);
                                c->oob_logged = true;
                        }
                }
        json_object_put(o);
}

/* One read of what the client sent (one per round: fair).  <0: drop the client. */
static int client_read(struct client *c) {
        char buf[65536];

        for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0) {
                        c->eof = true;  /* half-closed, perhaps: its replies are still sent */
                        return 0;
                }
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        return negative_errno();
                }
                c->last_input = now_seconds();
                c->more = true;
                int r = proto_feed(&c->in, buf, (size_t) n);
                if (r < 0)
                        log_warning("Librarian: client %s sent more than %u bytes without a complete request; "
                                    "closing the connection", c->peer, PROTO_MAX_BUFFER);
                return r;
        }
}

/* Answers up to SERVER_REQUESTS_PER_ROUND complete requests.  <0: drop the client. */
static int client_serve(struct server *s, struct client *c) {
        bool wrote = false;
        int r = 0;

        for (unsigned k = 0; ; k++) {
                if (k == SERVER_REQUESTS_PER_ROUND || blocked(s, c))
                        break;          /* c->more stays set: the next round goes on */
                struct json_object *req = proto_next(&c->in);
                if (!req) {
                        c->more = false;
                        break;
                }
                struct engine_request_info info = { .pinned_node = c->pinned, .conn = c->conn,
                                                    .secret = c->secret, .authenticated = c->authenticated };
                _cleanup_free_ char *reply = NULL;
                size_t len;
                r = engine_handle(s->engine, req, &info, &reply, &len);
                if (r < 0) {
                        json_object_put(req);
                        break;
                }
                s->requests++;
                if (s->lmp) {   /* the management view's recent rate: a clock read only for it */
                        int64_t sec = (int64_t) now_seconds();
                        size_t slot = (size_t) (sec % SERVER_RATE_SECONDS);
                        if (s->rate_second[slot] != sec) {
                                s->rate_second[slot] = sec;
                                s->rate_count[slot] = 0;
                        }
                        s->rate_count[slot]++;
                }
                c->authenticated = info.authenticated;
                if (info.auth_failed) {
                        /* no second guess on this connection: the reply, then it closes */
                        log_warning("Librarian: client %s sent a wrong secret; closing it", c->peer);
                        c->closing = true;
                }
                if (info.tail_len) {
                        /* truncation inside a book: zeroed before the client hears back (its
                         * record, written with the truncation, makes a crash redo it) */
                        struct engine_tail t = { info.tail_shelf, info.tail_book, info.tail_from, info.tail_len };
                        zero_tail(s, &t);
                }
                r = client_queue(s, c, reply, len);
                if (info.watch) {
                        c->watching = true;
                        snprintf(c->origin, sizeof c->origin, "%s", info.origin ? info.origin : "");
                }
                if (info.oob) {
                        broadcast_oob(s, c, info.oob, false, NULL);
                        json_object_put(info.oob);
                }
                if (info.notice) {
                        /* queued before the reply goes out: a watcher hears of the change no
                         * later than the one who made it */
                        struct json_object *n = json_object_new_object();
                        json_object_object_add(n, LIBRARIAN_NOTICE_KEY, info.notice);
                        json_object_object_add(n, "command", json_object_new_string(info.command));
                        broadcast_oob(s, c, n, true, info.origin);
                        json_object_put(n);
                }
                json_object_put(req);
                if (r < 0)
                        break;
                wrote = true;
                if (c->closing) {
                        c->eof = true;  /* read nothing more: close once the reply is out */
                        c->more = false;
                        break;
                }
        }
        if (wrote) {
                int k = queue_zombies(s);
                if (k < 0)
                        log_error("Librarian: failed to queue freed books for zeroing: %s", strerror(-k));
        }
        /* a reply waits for the round's sync of the commits before it (handle_events) */
        return r < 0 || engine_sync_pending(s->engine) ? r : client_flush(c);
}

/* The Librarian or this peer is full: the client hears why (its library reports the errmsg
 * of the first reply it reads) rather than seeing the connection reset. */
static void refuse(struct server *s, int fd, const char *why) {
        _cleanup_free_ char *text = NULL;
        size_t len;

        s->limits.refused++;
        if (proto_error(why, EUSERS, &text, &len) >= 0)
                (void) !send(fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        shutdown(fd, SHUT_WR);
        close(fd);
}

static void accept_clients(struct server *s, struct listener *l) {
        for (;;) {
                struct sockaddr_in sa = { 0 };
                socklen_t len = sizeof sa;
                int fd = accept4(l->fd, (struct sockaddr *) &sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                /* the connection stays in the backlog: rest rather than spin */
                                if (!s->accept_failing)
                                        log_warning("Librarian: cannot accept a connection: %m; "
                                                    "%zu clients connected", s->n_clients);
                                s->accept_failing = true;
                                s->accept_resume = now_seconds() + SERVER_ACCEPT_BACKOFF;
                                s->limits.accept_backoffs++;
                        }
                        return;
                }
                s->accept_resume = 0;
                s->accept_failing = false;
                char ip[INET_ADDRSTRLEN] = "?";
                if (l->path) {
                        /* a node's socket: its peer is the node, and every connection of it one address */
                        snprintf(ip, sizeof ip, "node %u", l->pinned);
                        sa = (struct sockaddr_in) { 0 };
                } else
                        inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
                if (s->n_clients == MAX_CLIENTS) {
                        char why[160];
                        snprintf(why, sizeof why, "Librarian full (%u connections): try again when some have closed",
                                 MAX_CLIENTS);
                        log_warning("Librarian: %u clients connected; refusing %s", MAX_CLIENTS, ip);
                        refuse(s, fd, why);
                        continue;
                }
                unsigned same = 0;
                for (size_t i = 0; i < s->n_clients; i++)
                        same += s->clients[i]->addr.s_addr == sa.sin_addr.s_addr && s->clients[i]->from == l;
                if (same >= s->opt.max_per_peer) {
                        char why[200];
                        snprintf(why, sizeof why, "Librarian full (%u connections from %s to port %u): "
                                 "close some, or try again later", same, ip, l->port);
                        if (s->limits.refused == 0)
                                log_warning("Librarian: %s holds %u connections to port %u; refusing more",
                                            ip, same, l->port);
                        refuse(s, fd, why);
                        continue;
                }
                int one = 1;
                if (!l->path)
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct client *c = calloc(1, sizeof *c);
                if (!c) {
                        close(fd);
                        return;
                }
                c->fd = fd;
                c->pinned = l->pinned;
                c->secret = l->secret;
                c->port = l->port;
                c->from = l;
                c->addr = sa.sin_addr;
                c->conn = ++s->next_conn;
                c->last_input = now_seconds();
                proto_stream_init(&c->in);
                if (l->path)
                        snprintf(c->peer, sizeof c->peer, "%s's port", ip);
                else
                        snprintf(c->peer, sizeof c->peer, "%s:%u", ip, ntohs(sa.sin_port));
                s->clients[s->n_clients++] = c;
        }
}

/* Holds a partial request (nothing complete waits). */
static bool holds_partial(const struct client *c) {
        return !c->more && c->in.len > c->in.off;
}

/* What to poll a client for. */
static short client_events(const struct server *s, const struct client *c) {
        short ev = pending(c) ? POLLOUT : 0;
        if (!c->eof && !c->more && !blocked(s, c))
                ev |= POLLIN;
        return ev;
}

/* <0: drop it. */
static int client_step(struct server *s, struct client *c, short revents, double now) {
        int r = 0;

        if (revents & POLLOUT)
                r = client_flush(c);
        if (r >= 0 && (revents & (POLLIN | POLLHUP | POLLERR)) && !c->eof && !c->more && !blocked(s, c))
                r = client_read(c);
        else if (r >= 0 && (revents & (POLLHUP | POLLERR)))
                r = client_flush(c);    /* gone for good: send fails and it is dropped */
        if (r >= 0 && c->more && !blocked(s, c))
                r = client_serve(s, c);
        if (r < 0)
                return r;
        /* (a reply waiting for the round's sync is pending output: not dropped before it) */
        if (c->eof && !c->more && !pending(c))
                return -ECONNRESET;     /* everything it sent is answered */
        if (c->more || blocked(s, c))
                c->last_input = now;    /* not read for now: the wait is not the client's */
        if (!c->eof && holds_partial(c) && now - c->last_input >= s->opt.idle_timeout) {
                s->limits.idle_closed++;
                log_warning("Librarian: client %s held a partial request for %.1f s without sending more; "
                            "closing the connection", c->peer, now - c->last_input);
                return -ETIMEDOUT;
        }
        return 0;
}

/*
 * Group sync: the round's commits were written to the WAL but not synced (engine_set_group_sync);
 * one fdatasync makes them all durable, then their replies go out.  If the sync fails, nobody
 * hears that its change was made: the clients holding replies are dropped.
 */
static void sync_and_flush(struct server *s) {
        if (!engine_sync_pending(s->engine))
                return;
        int r = engine_sync(s->engine);
        if (r < 0)
                log_error("Librarian: syncing the database failed: %s; dropping the clients waiting for "
                          "a reply", strerror(-r));
        for (size_t i = s->n_clients; i-- > 0; ) {
                struct client *c = s->clients[i];
                if (!pending(c))
                        continue;
                if (r < 0 || client_flush(c) < 0 || (c->eof && !c->more && !pending(c)))
                        drop_client(s, i);
        }
}

static void handle_events(struct server *s, struct pollfd *pfd, size_t nl, size_t nc, bool listening) {
        /* new connections first, so that a broadcast in this round reaches them too */
        if (s->accept_resume && now_seconds() >= s->accept_resume)
                s->accept_resume = 0;
        for (size_t i = 0; listening && i < nl; i++)
                if (pfd[i].revents & POLLIN)
                        accept_clients(s, &s->listeners[i]);
        /* then the clients polled (indexes shift when one is dropped: walk backwards; the
         * ones just accepted sit after them) */
        double now = now_seconds();
        for (size_t i = nc; i-- > 0; )
                if (client_step(s, s->clients[i], pfd[nl + 1 + i].revents, now) < 0)
                        drop_client(s, i);
        if (pfd[nl].revents & POLLIN)
                collect_zeroed(s);
        sync_and_flush(s);
}

static void earlier(double *t, double at) {
        if (at > 0 && (*t < 0 || at < *t))
                *t = at;
}

static int round_(struct server *s, const struct timespec *timeout, const sigset_t *mask) {
        struct pollfd pfd[ELEMENTSOF(((struct server *) 0)->listeners) + 1 + MAX_CLIENTS];
        size_t n = 0, nl = s->n_listeners, nc = s->n_clients;
        double now = now_seconds(), wake = -1;        /* when to wake up at the latest */
        bool listening = !s->accept_resume || now >= s->accept_resume;

        for (size_t i = 0; i < nl; i++)
                pfd[n++] = (struct pollfd) { .fd = listening ? s->listeners[i].fd : -1, .events = POLLIN };
        if (!listening)
                earlier(&wake, s->accept_resume);
        pfd[n++] = (struct pollfd) { .fd = s->wake[0], .events = POLLIN };
        for (size_t i = 0; i < nc; i++) {
                struct client *c = s->clients[i];
                pfd[n++] = (struct pollfd) { .fd = c->fd, .events = client_events(s, c) };
                if (c->more && !blocked(s, c))
                        earlier(&wake, now);    /* requests wait: do not sleep */
                else if (!c->eof && holds_partial(c) && !blocked(s, c))
                        earlier(&wake, c->last_input + s->opt.idle_timeout);
        }
        /* the management view (lmp.h): one epoll descriptor for all its sockets, and its deadline */
        if (s->lmp) {
                pfd[n++] = (struct pollfd) { .fd = lmp_poll_fd(s->lmp), .events = POLLIN };
                int ms = lmp_timeout_ms(s->lmp);
                if (ms >= 0)
                        earlier(&wake, now + ms / 1000.0);
        }
        /* zombies that could not be zeroed or freed: again a second later */
        earlier(&wake, s->retry_at);
        /* the previous run's handles: dropped when their grace period ends */
        earlier(&wake, s->unclaimed_until);
        /* commits not synced before their replies: at most SERVER_SYNC_SECONDS later */
        if (engine_unsynced(s->engine)) {
                if (!s->unsynced_since)
                        s->unsynced_since = now;
                earlier(&wake, s->unsynced_since + SERVER_SYNC_SECONDS);
        } else
                s->unsynced_since = 0;
        struct timespec at;
        const struct timespec *t = timeout;
        if (wake >= 0) {
                double left = wake - now;
                if (left < 0)
                        left = 0;
                at = (struct timespec) { (time_t) left, (long) ((left - (double) (time_t) left) * 1e9) };
                if (!t || t->tv_sec > at.tv_sec || (t->tv_sec == at.tv_sec && t->tv_nsec > at.tv_nsec))
                        t = &at;
        }
        s->limits.rounds++;
        int r = ppoll(pfd, n, t, mask);
        if (r < 0)
                return negative_errno();
        if (s->lmp)
                lmp_run(s->lmp);        /* what is ready and what timed out; never blocks */
        handle_events(s, pfd, nl, nc, listening);
        if (s->unclaimed_until && now_seconds() >= s->unclaimed_until) {
                size_t dropped = 0;
                int k = engine_drop_unclaimed_handles(s->engine, &dropped);
                if (k < 0)
                        log_error("Librarian: failed to drop the unclaimed handles of the previous run: %s", strerror(-k));
                else {
                        s->unclaimed_until = 0;
                        if (dropped)
                                log_info("Librarian: dropped %zu open handle(s) of the previous run that no client reclaimed",
                                         dropped);
                }
        }
        if (s->unsynced_since && now_seconds() >= s->unsynced_since + SERVER_SYNC_SECONDS) {
                int k = engine_sync_now(s->engine);
                if (k < 0)
                        log_error("Librarian: syncing the database failed: %s", strerror(-k));
                s->unsynced_since = 0;
        }
        if (s->retry_at && now_seconds() >= s->retry_at) {
                s->retry_at = 0;
                int k = queue_zombies(s);
                if (k < 0)
                        log_error("Librarian: failed to queue freed books for zeroing: %s", strerror(-k));
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
        /* Asked to stop: one last look, without waiting, so that the connections already closed
         * (fame down stops the nodes first) drop their handles now.  The handles left are kept
         * for the grace period of the next start; those of clients that are gone would keep
         * their shelves from shrinking until it ends. */
        struct timespec zero = { 0, 0 };
        (void) round_(s, &zero, unblocked_mask);
        return 0;
}

void server_limits_stats(const struct server *s, struct server_limits *ret) {
        *ret = s->limits;
        ret->clients = s->n_clients;
        ret->output_held = 0;
        for (size_t i = 0; i < s->n_clients; i++)
                ret->output_held += pending(s->clients[i]);
}
