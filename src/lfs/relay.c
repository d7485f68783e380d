/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fame-lfs's relay (relay.h): one thread accepts, one thread per relayed connection. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "librarian-client.h"
#include "librarian-secret.h"
#include "log.h"
#include "macro.h"
#include "proto.h"
#include "relay.h"
#include "util.h"

#define RELAY_MAX_CONNECTIONS 256

struct relay {
        int fd;
        int stop[2];                    /* written to stop every thread */
        char *path, *address;
        char secret[LIBRARIAN_SECRET_LEN + 1];
        pthread_t thread;
        bool running;                   /* the accepting thread was started */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned active;                /* relayed connections (their threads) */
};

struct conn {
        struct relay *relay;
        int fd;                         /* the local caller */
        int up;                         /* the Librarian */
        struct ucred cred;
};

/* Tells the caller why it cannot be relayed, in the protocol's error form. */
static void refuse(int fd, const char *why, int err) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (proto_error(why, err, &text, &len) >= 0)
                (void) librarian_send_all(fd, text, len);
}

/* The caller's credentials, as a request's context says them. */
static struct json_object *caller(const struct conn *c, struct json_object *ctx) {
        json_object_object_add(ctx, "uid", json_object_new_int64(c->cred.uid));
        json_object_object_add(ctx, "gid", json_object_new_int64(c->cred.gid));
        json_object_object_add(ctx, "pid", json_object_new_int64(c->cred.pid));
        return ctx;
}

/* The Librarian connection of one caller, authenticated with the node's secret. */
static int connect_up(struct conn *c, struct proto_stream *upin) {
        char err[512];
        int r = librarian_dial(c->relay->address, &c->up, err, sizeof err);
        if (r < 0) {
                refuse(c->fd, err, -r);
                return r;
        }
        if (!c->relay->secret[0])
                return 0;
        r = librarian_authenticate_fd(c->up, upin, c->relay->secret, caller(c, json_object_new_object()), err, sizeof err);
        if (r < 0)
                refuse(c->fd, err[0] ? err : "fame-lfs's relay lost the Librarian while authenticating", -r);
        return r;
}

/* A request from the caller, with the caller's credentials in its context. */
static int forward_request(struct conn *c, struct json_object *req) {
        struct json_object *ctx = NULL;

        if (!json_object_object_get_ex(req, "context", &ctx) || !json_object_is_type(ctx, json_type_object)) {
                ctx = json_object_new_object();
                json_object_object_add(req, "context", ctx);
        }
        caller(c, ctx);
        const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        return librarian_send_all(c->up, text, strlen(text));
}

static void relay_conn(struct conn *c) {
        struct proto_stream in, upin;
        bool client_open = true;
        char buf[65536];
        int r;

        proto_stream_init(&in);
        proto_stream_init(&upin);
        r = connect_up(c, &upin);
        if (r >= 0 && upin.len > upin.off)      /* sent after the authentication's reply */
                r = librarian_send_all(c->fd, upin.buf + upin.off, upin.len - upin.off);
        while (r >= 0) {
                struct pollfd p[3] = {
                        { .fd = client_open ? c->fd : -1, .events = POLLIN },
                        { .fd = c->up, .events = POLLIN },
                        { .fd = c->relay->stop[0], .events = POLLIN },
                };
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[2].revents)
                        break;
                if (p[1].revents) {
                        ssize_t n = recv(c->up, buf, sizeof buf, 0);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break;          /* the Librarian closed: so does the caller's */
                        r = librarian_send_all(c->fd, buf, (size_t) n);
                        continue;
                }
                if (p[0].revents) {
                        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                /* half-closed: the Librarian answers what it got, then closes */
                                client_open = false;
                                shutdown(c->up, SHUT_WR);
                                continue;
                        }
                        r = proto_feed(&in, buf, (size_t) n);
                        if (r < 0)
                                refuse(c->fd, "fame-lfs's relay: request too large", EMSGSIZE);
                        struct json_object *req;
                        while (r >= 0 && (req = proto_next(&in))) {
                                r = forward_request(c, req);
                                json_object_put(req);
                        }
                }
        }
        proto_stream_done(&in);
        proto_stream_done(&upin);
}

static void *conn_thread(void *userdata) {
        struct conn *c = userdata;
        struct relay *relay = c->relay;

        relay_conn(c);
        close(c->fd);
        if (c->up >= 0)
                close(c->up);
        free(c);
        pthread_mutex_lock(&relay->lock);
        relay->active--;
        pthread_cond_broadcast(&relay->cond);
        pthread_mutex_unlock(&relay->lock);
        return NULL;
}

static void *accept_thread(void *userdata) {
        struct relay *relay = userdata;

        for (;;) {
                struct pollfd p[2] = { { .fd = relay->fd, .events = POLLIN }, { .fd = relay->stop[0], .events = POLLIN } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return NULL;
                }
                if (p[1].revents)
                        return NULL;
                int fd = accept4(relay->fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE) {
                                /* rest rather than spin on a connection that stays queued */
                                struct pollfd s = { .fd = relay->stop[0], .events = POLLIN };
                                (void) poll(&s, 1, 100);
                        }
                        continue;
                }
                struct conn *c = calloc(1, sizeof *c);
                socklen_t len = sizeof c->cred;
                if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
                        free(c);
                        close(fd);
                        continue;
                }
                c->relay = relay;
                c->fd = fd;
                c->up = -1;
                pthread_mutex_lock(&relay->lock);
                bool full = relay->active >= RELAY_MAX_CONNECTIONS;
                if (!full)
                        relay->active++;
                pthread_mutex_unlock(&relay->lock);
                pthread_t t;
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                if (full || pthread_create(&t, &attr, conn_thread, c) != 0) {
                        refuse(fd, full ? "fame-lfs's relay is full (256 connections): close some" :
                                          "fame-lfs's relay could not start a thread", EUSERS);
                        close(fd);
                        free(c);
                        if (!full) {
                                pthread_mutex_lock(&relay->lock);
                                relay->active--;
                                pthread_mutex_unlock(&relay->lock);
                        }
                }
                pthread_attr_destroy(&attr);
        }
}

int relay_listen(const char *path, const char *address, const char *secret, struct relay **ret) {
        struct sockaddr_un su = { .sun_family = AF_UNIX };
        _cleanup_free_ char *dir = NULL;
        struct relay *relay;
        int r;

        if (strlen(path) >= sizeof su.sun_path)
                return log_error_errno(-ENAMETOOLONG, "fame-lfs: relay socket %s: path too long", path);
        relay = calloc(1, sizeof *relay);
        if (!relay)
                return -ENOMEM;
        relay->fd = relay->stop[0] = relay->stop[1] = -1;
        pthread_mutex_init(&relay->lock, NULL);
        pthread_cond_init(&relay->cond, NULL);
        relay->path = strdup(path);
        relay->address = strdup(address);
        snprintf(relay->secret, sizeof relay->secret, "%s", secret ? secret : "");
        if (!relay->path || !relay->address) {
                r = -ENOMEM;
                goto fail;
        }
        dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash && slash != dir) {
                *slash = 0;
                r = mkdir_p(dir, 0755);
                if (r < 0) {
                        log_error_errno(r, "fame-lfs: cannot create %s for the relay socket: %m", dir);
                        goto fail;
                }
        }
        strcpy(su.sun_path, path);
        relay->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (relay->fd < 0 || pipe2(relay->stop, O_CLOEXEC) < 0) {
                r = log_error_errno(-errno, "fame-lfs: relay: %m");
                goto fail;
        }
        (void) unlink(path);    /* a socket left by an earlier fame-lfs of this node */
        if (bind(relay->fd, (struct sockaddr *) &su, sizeof su) < 0 || chmod(path, 0666) < 0 || listen(relay->fd, 64) < 0) {
                r = log_error_errno(-errno, "fame-lfs: cannot listen on %s: %m", path);
                goto fail;
        }
        *ret = relay;
        return 0;
fail:
        if (relay->fd >= 0) {
                close(relay->fd);
                relay->fd = -1;
        }
        relay_stop(relay);
        return r;
}

int relay_run(struct relay *relay) {
        int r = -pthread_create(&relay->thread, NULL, accept_thread, relay);
        if (r < 0)
                return log_error_errno(r, "fame-lfs: cannot start the relay: %m");
        relay->running = true;
        return 0;
}

void relay_stop(struct relay *relay) {
        if (!relay)
                return;
        if (relay->fd >= 0) {
                (void) !write(relay->stop[1], "x", 1);
                if (relay->running)
                        pthread_join(relay->thread, NULL);
                close(relay->fd);
                unlink(relay->path);
                pthread_mutex_lock(&relay->lock);
                while (relay->active)
                        pthread_cond_wait(&relay->cond, &relay->lock);
                pthread_mutex_unlock(&relay->lock);
        }
        if (relay->stop[0] >= 0)
                close(relay->stop[0]);
        if (relay->stop[1] >= 0)
                close(relay->stop[1]);
        explicit_bzero(relay->secret, sizeof relay->secret);
        pthread_mutex_destroy(&relay->lock);
        pthread_cond_destroy(&relay->cond);
        free(relay->path);
        free(relay->address);
        free(relay);
}
