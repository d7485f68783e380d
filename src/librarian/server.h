/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian server: TCP listeners, one poll loop driving the engine, and a zeroing thread.
 *
 * Why one poll loop and not threads: every request is a short SQLite transaction and SQLite
 * has one writer at a time anyway, so threads would only add lock hand-offs.  The loop answers
 * each client's requests in order, a few per client per round, and writes replies without
 * blocking (a client that stops reading only delays itself); the limits that keep one client
 * from taking the server are in server-conn.c and docs/librarian.md.  The one slow job,
 * zeroing freed books in FAM, runs in its own thread, so no request waits for it.
 *
 * Listeners: TCP (the main port and --node-port) and unix sockets (--node-socket).
 *
 * Life cycle (a daemon is a library first): server_new() opens the database and the FAM and
 * checks that they match, and opens the checker's state (check_state), then redoes the tail
 * zeroings a crash interrupted (fame_pending_zero) and starts the grace period of the previous
 * run's open handles (handle_grace); server_start() binds the listeners and starts the zeroer;
 * server_run() polls until *stop is set (or server_step() does one poll for tests);
 * server_free() stops everything and is idempotent on NULL.
 */
#ifndef FAME_LIBRARIAN_SERVER_H
#define FAME_LIBRARIAN_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define SERVER_MAX_PINS 128

struct server_options {
        const char *db_path;
        const char *fam_path;           /* NULL: no FAM attached, freed books are not zeroed */
        const char *bind;               /* default 127.0.0.1 */
        uint16_t port;                  /* 0: any free port (see server_port) */
        /* extra listeners whose connections may only act as one node */
        struct { uint32_t node_id; uint16_t port; } pins[SERVER_MAX_PINS];
        size_t n_pins;
        /* unix sockets for one node each (--node-socket): a node's virtio-serial port to the
         * Librarian, whose host end (QEMU's chardev) connects here.  What arrives can only come
         * from that node's root, so its connections are pinned and trusted without a secret;
         * made mode 0600, replacing a stale socket, removed by server_free() */
        struct { uint32_t node_id; const char *path; } sockets[SERVER_MAX_PINS];
        size_t n_sockets;
        const char *port_file;          /* if set, the bound port is written there when listening */
        const char *check_state;        /* the cluster's state directory when it runs with the
                                         * checker (fame up --check): what the zeroer writes into
                                         * the FAM is told to it (STATE/check); needs fam_path */
        /* Who may say what (docs/librarian.md): a connection must send its port's secret
         * ("authenticate") before it may assert a node or a caller.  The secrets are files in
         * secrets_dir (default DB_PATH.secrets; made, mode 0700, with what is missing): host.secret
         * for the main port, node-ID.secret for each --node-port. */
        const char *secrets_dir;
        bool trust_clients;             /* the compatibility setting for HPE's original clients,
                                         * which send no secret: every connection is believed */
        /* Limits (docs/librarian.md, "Limits and fairness"); 0: the default */
        unsigned max_per_peer;          /* connections from one address to one port (64) */
        double idle_timeout;            /* seconds a connection may hold a partial request
                                         * without sending more (30) */
        size_t max_output;              /* unsent replies held for one connection before its
                                         * requests are no longer read (256 KiB) */
        /* The management view (src/lmp, docs/lmp.md): HTTP on http_bind:http_port when http */
        bool http;
        const char *http_bind;          /* default 127.0.0.1 */
        uint16_t http_port;             /* 0: any free port (server_http_port) */
        const char *http_port_file;     /* if set, its port is written there when listening */
        const char *cluster_name;       /* for the page; NULL: served by hand */
        const char *cluster_state;      /* the cluster's state directory (node states), or NULL */
        bool sync_each_change;          /* engine_set_sync_each_change(); else SERVER_SYNC_SECONDS */
        double handle_grace;            /* seconds after the start during which the open handles
                                         * of the previous run wait to be reclaimed by their
                                         * reconnecting clients (and keep their shelves from
                                         * shrinking); 0: the default (30), < 0: dropped at once */
};

#define SERVER_MAX_CLIENTS 1024
/* Commits not synced before their replies are synced at most this long after (--sync second). */
#define SERVER_SYNC_SECONDS 1.0
#define SERVER_MAX_PER_PEER 64
#define SERVER_IDLE_TIMEOUT 30.0
#define SERVER_MAX_OUTPUT (256u << 10)
#define SERVER_REQUESTS_PER_ROUND 4     /* answered per connection per poll round */
#define SERVER_ACCEPT_BACKOFF 0.1       /* seconds the listeners rest after EMFILE */
#define SERVER_HANDLE_GRACE 30.0        /* seconds the previous run's handles wait to be reclaimed */

struct server;

int server_new(const struct server_options *o, struct server **ret, char **ret_error);
int server_start(struct server *s, char **ret_error);
/* One poll round (timeout_ms -1: wait); -EINTR when interrupted by a signal. */
int server_step(struct server *s, int timeout_ms);
/* Polls until *stop becomes non-zero; signals in `blocked` are unblocked only while polling. */
int server_run(struct server *s, volatile sig_atomic_t *stop, const sigset_t *unblocked_mask);
uint16_t server_port(const struct server *s);
uint16_t server_http_port(const struct server *s);     /* 0: no management view */
/* Writes "PORT\n" to path atomically (--port-file and its kin); sets *ret_error on failure. */
int server_write_port(const char *path, uint16_t port, char **ret_error);
uint16_t server_pin_port(const struct server *s, size_t i);
/* The secrets directory in use (NULL with trust_clients). */
const char *server_secrets_dir(const struct server *s);
/* What the zeroer has done so far (for logs, status and tests); safe from any thread. */
struct server_zeroing {
        uint64_t zeroed;                /* books zeroed in FAM */
        uint64_t zero_failures;         /* books whose zeroing failed (they stay reserved, retried) */
        uint64_t mark_failures;         /* times zeroed books could not be marked FREE (database
                                         * busy or failing); they are zeroed and marked again */
};
void server_zeroing_stats(const struct server *s, struct server_zeroing *ret);
/* Test hook: engine_set_fail_zeroed() of the server's engine (marking zeroed books FREE fails
 * while on, as under a lock).  Any thread may call it. */
void server_set_fail_marks(struct server *s, bool on);
/* What the limits did so far (poll loop's thread only: tests step the server themselves). */
struct server_limits {
        size_t clients;                 /* connected now */
        size_t output_held;             /* unsent reply bytes held for all connections now */
        size_t output_peak;             /* the most ever held for one connection */
        uint64_t refused;               /* connections refused: the Librarian or the peer full */
        uint64_t idle_closed;           /* closed holding a partial request too long */
        uint64_t oob_dropped;           /* OOB messages not queued for a client not reading */
        uint64_t accept_backoffs;       /* times accept failed for lack of descriptors */
        uint64_t rounds;                /* poll rounds */
};
void server_limits_stats(const struct server *s, struct server_limits *ret);
void server_free(struct server *s);

#endif
