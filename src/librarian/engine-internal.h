/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internals of the Librarian's command engine (engine.h), shared by its rooms:
 *   engine.c          dispatch: a handler for each command of librarian-protocol.h, a
 *                     request's context, node check and exact parameters, one transaction per
 *                     request; SQL statements and errors; opening the database
 *   engine-shelves.c  paths and shelves: resolution, access control, open handles, the shelf
 *                     and directory commands
 *   engine-books.c    books: a shelf's books, state changes and zombies, allocation policies,
 *                     resize and the book commands
 *   engine-xattrs.c   extended attributes, including the user.LFS.* ones
 *
 * Errors: functions return >= 0 or a negative errno.  Where a request fails, engine_fail()
 * records the reply's errno and message and returns the errno negated, which callers pass up
 * unchanged; the reply is made from what engine_fail() recorded.
 */
#ifndef FAME_LIBRARIAN_ENGINE_INTERNAL_H
#define FAME_LIBRARIAN_ENGINE_INTERNAL_H

#include <json-c/json.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "librarian-protocol.h"
#include "macro.h"

#define streq_(a, b) (strcmp((a), (b)) == 0)
#define ROOT_ID 2
#define NAME_MAX_LEN 255
#define NOBODY 65534

enum { BOOK_FREE = 0, BOOK_INUSE = 1, BOOK_ZOMBIE = 2, BOOK_OFFLINE = 3 };

struct node_info {
        uint32_t node_id, enc;
        int64_t heartbeat;              /* last value written, to skip redundant writes */
};

struct ig_info {
        uint32_t ig;                    /* low 16 bits of intlv_group */
        uint64_t books;
        int64_t base;                   /* lowest book id (PHYSADDR), -1 in LZA mode */
        uint64_t start;                 /* igstart: books of all lower IGs */
};

struct cached_stmt {
        const char *sql;
        sqlite3_stmt *st;
};

struct engine {
        sqlite3 *db;
        bool fail_zeroed;               /* test hook: engine_set_fail_zeroed() (atomic) */
        bool sync_each_change;          /* engine_set_sync_each_change() */
        struct cached_stmt stmts[96];
        size_t n_stmts;

        struct engine_geometry geo;
        struct node_info *nodes;
        uint32_t *node_ids;
        size_t n_nodes;
        struct ig_info *igs;
        size_t n_igs;
        char policy_default[32];
        double (*clock)(void);

        int64_t next_handle;            /* open handles are never reused within a run */

        /* zombies: ids handed out by engine_take_zombies() and not yet reported zeroed */
        uint64_t *inflight;
        size_t n_inflight, allocated_inflight;
        bool zombies_dirty;             /* books may have left shelves since the last look */

        /* the current request (NULL between requests: internal lookups are not access-checked) */
        const struct req *req;
        uint64_t tail_book, tail_from, tail_len, tail_shelf;
        int err;
        char errmsg[512];
};

struct shelf {
        int64_t id, creator_id, size_bytes, book_count, ctime, mtime, mode, parent_id, link_count;
        int64_t uid, gid;
        char name[NAME_MAX_LEN + 1];
};

struct book {
        int64_t id, intlv_group, book_num, allocated, attributes;
};

/* The request being handled. */
struct req {
        struct json_object *obj, *context;
        uint64_t conn;
        const char *command;            /* as sent */
        enum librarian_command cmd;     /* valid once the command is known */
        int64_t node_id, uid, gid, pid;
        const char *physloc;
        uint32_t enc;
        bool has_node;
        /* authentication (engine_request_info): the port's secret, NULL when none is asked */
        const char *secret;
        bool authenticated, auth_failed;
};

/* A path, resolved (path_resolve). */
struct resolved {
        struct shelf parent;            /* the directory holding the last component */
        struct shelf shelf;             /* valid when found */
        char name[NAME_MAX_LEN + 1];    /* the last component ("." for the root) */
        bool found;
};

/* ---- engine.c: errors, statements, request parameters, the topology ---------------------- */

/* Records the reply's errno (err > 0) and message; returns -err. */
int engine_fail(struct engine *e, int err, const char *fmt, ...) _printf_(3, 4);
/* EREMOTEIO with SQLite's message. */
int engine_dbfail(struct engine *e, const char *what);
/* A prepared statement for sql (a string constant: cached by its address), reset and unbound. */
int engine_stmt(struct engine *e, const char *sql, sqlite3_stmt **ret);
/* Runs a statement that returns no rows; binds n int64_t arguments. */
int engine_exec(struct engine *e, const char *sql, int n, ...);
/* A query returning one integer (or def when there is no row); binds n int64_t arguments. */
int engine_query_int(struct engine *e, const char *sql, int64_t def, int64_t *ret, int n, ...);
int64_t engine_now(struct engine *e);

const struct ig_info *engine_find_ig(const struct engine *e, uint32_t ig);
const struct node_info *engine_find_node(const struct engine *e, int64_t node_id);

/* The request's parameter name (NULL if absent), or its value as an integer / a string
 * without NUL (EINVAL naming the parameter otherwise). */
struct json_object *req_param(const struct req *r, const char *name);
int req_int(struct engine *e, const struct req *r, const char *name, int64_t *ret);
int req_str(struct engine *e, const struct req *r, const char *name, const char **ret);

/* ---- engine-shelves.c: paths, shelves, access control ------------------------------------ */

enum { MAY_READ = 4, MAY_WRITE = 2, MAY_EXEC = 1 };

bool shelf_is_dir(const struct shelf *s);
/* 1 found, 0 not found, < 0 error */
int shelf_by_id(struct engine *e, int64_t id, struct shelf *ret);
struct json_object *shelf_json(const struct shelf *s, int64_t open_handle);
/* Read (MAY_READ) and/or write (MAY_WRITE) permission on s for the request's uid and gid. */
int shelf_check_access(struct engine *e, const struct req *r, const struct shelf *s, int want,
                       const char *what);

/* Resolves path; during a request, the caller needs search permission (x) on every directory
 * it passes through, as in a POSIX file system (EACCES). */
int path_resolve(struct engine *e, const char *path, struct resolved *ret);
/* As path_resolve(), but the last component must exist too (ENOENT). */
int path_resolve_existing(struct engine *e, const char *path, struct resolved *ret);
/* The request's "path", which must exist. */
int req_existing_path(struct engine *e, const struct req *r, struct resolved *ret);

/* ---- engine-books.c: books and allocation policies --------------------------------------- */

/* The allocation policies, in user.LFS.AllocationPolicyList order. */
extern const char *const policy_names[];
extern const size_t n_policy_names;
bool policy_known(const char *p);

/* The books of a shelf in seq order; check_seq: the seq numbers must be 1..n (EBADFD). */
int shelf_books(struct engine *e, const struct shelf *s, struct book **ret, size_t *ret_n, bool check_seq);
/* FREE -> INUSE -> ZOMBIE -> FREE; anything else is EUCLEAN. */
int book_set_state(struct engine *e, int64_t id, int64_t to);
/* Records e->next_handle in fame_settings (NextOpenHandle) in the current transaction: a handle
 * number once handed out is never handed out again, across restarts too. */
int engine_save_next_handle(struct engine *e);

/* ---- engine-xattrs.c: extended attributes ------------------------------------------------ */

/* A shelf's attribute (*ret NULL when it has none; NUL-terminated, *ret_len bytes). */
int xattr_get(struct engine *e, int64_t shelf, const char *name, char **ret, size_t *ret_len);
int xattr_set(struct engine *e, int64_t shelf, const char *name, const char *value, size_t len);

/* ---- the commands ------------------------------------------------------------------------- */

/* One handler per command of LIBRARIAN_COMMANDS, cmd_<name>(): the request's parameters are
 * there (exactly those of the table) and its node is checked; *ret is the reply's value. */
typedef int (*command_fn)(struct engine *e, struct req *r, struct json_object **ret);
#define CMD_PROTOTYPE_(name, access, resend, notice, params) \
        int cmd_##name(struct engine *e, struct req *r, struct json_object **ret);
LIBRARIAN_COMMANDS(CMD_PROTOTYPE_)
#undef CMD_PROTOTYPE_

/* ---- engine-views.c: helpers of the read-only views (also engine-lmp.c) -------------------- */

/* NULL with errno = err */
struct json_object *view_fail(int err);
/* A statement prepared for one view (not cached); NULL with errno EIO */
sqlite3_stmt *view_prepare(struct engine *e, const char *sql);
void view_add_int(struct json_object *o, const char *key, int64_t v);
/* One integer from a query (def when it fails or gives no row or NULL); binds n int64_t
 * arguments.  Not cached, as every view statement. */
int64_t view_query_int(struct engine *e, const char *sql, int64_t def, int n, ...);
/* The books in each state (BOOK_FREE ... BOOK_OFFLINE); -EIO when the query fails. */
int view_book_counts(struct engine *e, int64_t ret[4]);

#endif
