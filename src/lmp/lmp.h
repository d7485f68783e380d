/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The management view (docs/lmp.md): an HTTP server on loopback that answers tm-lmp's REST API
 * (/lmp/...), FAM/E's own versioned API (/api/v1/...) and the page at / from one route table.
 * Data flows one way: the Librarian's engine (read-only views, engine-views.c), the FAM's node
 * slots and the cluster's state directory → JSON → the page.  Nothing here changes state.
 *
 * A daemon is a library first: lmp_new() binds and listens; the owner's poll loop watches
 * lmp_poll_fd() with at most lmp_timeout_ms() and calls lmp_run(), which answers what is ready
 * without blocking, on the owner's thread (so the engine needs no lock).  lmp_handle() answers
 * one request without HTTP, for tests.  libmicrohttpd parses HTTP; this file never does.
 */
#ifndef FAME_LMP_H
#define FAME_LMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine;
struct fame;
struct json_object;

/* What the view reads: the Librarian's read-only views of its database (src/librarian,
 * engine_views), called with lmp_source.engine.  Each returns a new JSON object, or NULL with
 * errno set (ENOENT: no such shelf or group). */
struct lmp_views {
        struct json_object *(*summary)(struct engine *e);
        struct json_object *(*nodes)(struct engine *e);
        struct json_object *(*shelves)(struct engine *e);
        struct json_object *(*shelf)(struct engine *e, const char *path, int64_t fam_base);
        struct json_object *(*fam_map)(struct engine *e, int64_t fam_base);
        uint64_t (*generation)(struct engine *e);
        /* tm-lmp's */
        struct json_object *(*tm_global)(struct engine *e);
        struct json_object *(*tm_nodes)(struct engine *e);
        struct json_object *(*tm_interleave_groups)(struct engine *e);
        struct json_object *(*tm_allocated)(struct engine *e, const char *coordinate);
        struct json_object *(*tm_active)(struct engine *e, const char *soc);
        struct json_object *(*tm_directory)(struct engine *e);
        struct json_object *(*tm_shelf)(struct engine *e, const char *name);
        struct json_object *(*tm_books)(struct engine *e, int64_t ig);
};

/* The Librarian's own figures, for /api/v1/summary (filled by its owner). */
struct lmp_counters {
        double uptime_s;
        uint64_t connections;           /* clients connected now */
        uint64_t requests_total;        /* requests answered since the start */
        double requests_per_second;     /* over the last few seconds */
};

struct lmp_source {
        const struct lmp_views *views;  /* required */
        struct engine *engine;          /* what the views read */
        const struct fame *fam;         /* the FAM (node slots), NULL: none */
        const char *cluster;            /* the cluster's name, NULL or "": served by hand */
        const char *state_dir;          /* the cluster's state directory (node pids, plan), NULL: none */
        void (*counters)(void *userdata, struct lmp_counters *ret);     /* NULL: none */
        /* The coherence checker's findings as {"findings": [...], "overflow": N}, or NULL
         * (errno 0) when the cluster runs without the checker; NULL callback: never. */
        struct json_object *(*findings)(void *userdata);
        void *userdata;
};

struct lmp_options {
        const char *bind;               /* an IPv4 address; NULL: 127.0.0.1 */
        uint16_t port;                  /* 0: any free port (lmp_port) */
};

struct lmp;

/* Binds and listens; on failure sets *ret_error (caller frees) and returns a negative errno. */
int lmp_new(const struct lmp_options *o, const struct lmp_source *src, struct lmp **ret, char **ret_error);
uint16_t lmp_port(const struct lmp *l);
int lmp_poll_fd(const struct lmp *l);           /* readable when lmp_run() has work */
int lmp_timeout_ms(const struct lmp *l);        /* -1: no deadline */
void lmp_run(struct lmp *l);
void lmp_free(struct lmp *l);

/* One request without HTTP (tests, goldens): status, content type and body of the reply. */
struct lmp_reply {
        unsigned status;
        const char *content_type;
        char *body;                     /* malloc'ed */
        size_t len;
        char *location;                 /* a redirect's target (malloc'ed), or NULL */
};
int lmp_handle(struct lmp *l, const char *method, const char *path, const char *accept, struct lmp_reply *ret);
void lmp_reply_done(struct lmp_reply *r);

#endif
