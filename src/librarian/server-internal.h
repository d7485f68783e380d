/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What server.c (set-up, the zeroer) and server-conn.c (connections, the poll loop) share.
 * Not a public header: the rest of the Librarian sees server.h.
 */
#ifndef FAME_LIBRARIAN_SERVER_INTERNAL_H
#define FAME_LIBRARIAN_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "librarian-protocol.h"
#include "librarian-secret.h"
#include "proto.h"
#include "server.h"

struct lmp;
struct fame;

#define SERVER_RATE_SECONDS 10          /* the management view's requests per second: over these */

#define MAX_CLIENTS SERVER_MAX_CLIENTS

struct client {
        int fd;
        uint64_t conn;                  /* unique in this run; owns the handles it opened */
        uint32_t pinned;
        uint16_t port;                  /* of the listener it came through */
        const struct listener *from;    /* that listener */
        const char *secret;             /* its listener's (NULL: none asked) */
        bool authenticated;             /* it sent the secret */
        bool closing;                   /* it sent a wrong secret: flush the reply, then close */
        struct in_addr addr;            /* of the peer */
        struct proto_stream in;
        char *out;
        size_t out_len, out_off, out_allocated;
        double last_input;              /* when it last sent something */
        bool eof;                       /* it half-closed: answer what it sent, then close */
        bool more;                      /* requests may wait in `in` (the per-round limit) */
        bool oob_logged;                /* its dropped OOB messages were logged */
        bool watching;                  /* it asked for notices of others' changes (fame_watch) */
        char origin[LIBRARIAN_ORIGIN_MAX + 1];  /* its fame_watch's: changes from there are not sent */
        char peer[64];
};

struct listener {
        int fd;
        uint32_t pinned;
        uint16_t port;                  /* 0: a unix socket */
        const char *secret;             /* what its connections must send; NULL: none */
        const char *path;               /* a unix socket's, which server_free() removes */
        dev_t dev;                      /* ... if it is still this one */
        ino_t ino;
};

struct job {
        uint64_t id;
        uint64_t offset;        /* in the FAM file */
};

struct server {
        struct server_options opt;
        struct engine *engine;
        struct engine_geometry geo;

        int lock_fd;                    /* PATH.lock of the database, held while serving */
        char *secrets_dir;              /* NULL with trust_clients */
        char secrets[SERVER_MAX_PINS + 1][LIBRARIAN_SECRET_LEN + 1];    /* host, then each pin's */
        int fam_fd;
        uint64_t book_area_offset, fam_size;
        struct check *check;            /* the cluster's checker (check_state), or NULL */

        struct listener listeners[2 * SERVER_MAX_PINS + 1];
        size_t n_listeners;
        struct client *clients[MAX_CLIENTS];
        size_t n_clients;
        double unsynced_since;          /* when a commit was first left unsynced, 0: none */
        double accept_resume;           /* listeners rest until then after EMFILE (0: polled) */
        bool accept_failing;            /* logged; until a connection is accepted again */
        struct server_limits limits;
        uint64_t requests;              /* answered since the start */
        /* requests answered in each of the last SERVER_RATE_SECONDS seconds (slot = second % N) */
        uint64_t rate_count[SERVER_RATE_SECONDS];
        int64_t rate_second[SERVER_RATE_SECONDS];
        double started;                 /* now_seconds() at server_new() */
        struct lmp *lmp;                /* the management view, or NULL */
        struct fame *fam;               /* the FAM mapped read-only for the view's node slots */
        double unclaimed_until;         /* the previous run's handles not reclaimed by then are
                                         * dropped (0: none left to wait for) */

        /* zeroer */
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct job *todo;
        size_t n_todo, allocated_todo;
        uint64_t *done;
        size_t n_done, allocated_done;
        uint64_t *failed;               /* could not be zeroed: retried */
        size_t n_failed, allocated_failed;
        double retry_at;                /* queue the zombies again then (0: no need) */
        uint64_t next_conn;
        bool quit;
        int wake[2];            /* zeroer → poll loop */
        struct server_zeroing stats;    /* atomics: read by server_zeroing_stats() */
        int zero_error;
};


int zero_range(int fd, uint64_t offset, uint64_t len);
void host_wrote(struct server *s, uint64_t offset, uint64_t len);
int queue_zombies(struct server *s);
int collect_zeroed(struct server *s);
void client_free(struct client *c);
void zero_tail(struct server *s, const struct engine_tail *t);

#endif
