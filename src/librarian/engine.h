/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian's command engine: one request object in, one encoded reply out, against the
 * SQLite database (docs/librarian-protocol.md, docs/librarian-model.md).
 * No sockets here: the server (server.c) feeds it, tests call it directly.
 *
 * Single-threaded: one engine, one thread.  Every request runs in one SQLite transaction, so a
 * crash at any point leaves the database as it was before or after that request.
 *
 * Freed books: the engine never marks a book FREE itself.  Books leaving a shelf (shrink,
 * destroy, truncation of a zeroing shelf) become ZOMBIE and are reported through
 * engine_take_zombies(); whoever zeroes them in FAM calls engine_books_zeroed() afterwards.
 */
#ifndef FAME_LIBRARIAN_ENGINE_H
#define FAME_LIBRARIAN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
struct topology;
struct engine;

#define LIBRARIAN_SCHEMA "LIBRARIAN 0.997"

/* FAM/E: a truncation inside a book records the range to zero here, in its own transaction;
 * the row goes once the range is zeroed, and the Librarian redoes every row when it starts.
 * Created by init and, for older databases, when the engine opens one. */
#define FAME_PENDING_ZERO_TABLE                                                                 \
        "CREATE TABLE IF NOT EXISTS fame_pending_zero (shelf_id INT, book_id INT, seq_num INT,"  \
        " offset INT, length INT)"

/* opened_shelves.fame_conn of a handle left by an earlier run: it belongs to no connection
 * until its client reclaims it (fame_reclaim_shelf) or the grace period ends. */
#define ENGINE_UNCLAIMED_CONN (-1)

/* Creates a new database at path from a topology: written to a temporary sibling and renamed
 * into place, so path is either absent or complete.  -EEXIST if path exists and !force. */
int librarian_db_create(const char *path, const struct topology *t, bool force, char **ret_error);

/*
 * Locks the database at path for one Librarian: flock(LOCK_EX) of PATH.lock, which then holds
 * this process's pid.  Another Librarian that holds it: -EBUSY and a message naming its pid.
 * The lock lasts until *ret_fd is closed.
 */
int librarian_db_lock(const char *path, int *ret_fd, char **ret_error);

/* Opens an existing database (WAL mode) and checks its schema version. */
int engine_open(const char *path, struct engine **ret, char **ret_error);

/*
 * engine_open() with flags.  ENGINE_OPEN_EXCLUSIVE: PRAGMA locking_mode=EXCLUSIVE, set before
 * the connection first enters WAL mode: SQLite then takes its file locks once and keeps them
 * until engine_free(), takes no fcntl locks per transaction and keeps the WAL index in heap
 * memory (no -shm).  For the server only, which holds PATH.lock for its whole life anyway: every
 * other reader of the database gets SQLITE_BUSY until the engine is freed (docs/librarian.md).
 */
#define ENGINE_OPEN_EXCLUSIVE 0x1u
int engine_open_flags(const char *path, unsigned flags, struct engine **ret, char **ret_error);
void engine_free(struct engine *e);

struct engine_request_info {
        uint32_t pinned_node;           /* in: 0, or the only node_id this connection may use */
        uint64_t conn;                  /* in: the client connection (open handles belong to it;
                                         * engine_connection_closed() drops them), 0: none */
        /* in: the secret this connection must send ("authenticate") before it may assert a node
         * or a caller; NULL: none (the compatibility setting, or a tool's own engine) */
        const char *secret;
        bool authenticated;             /* in/out: it has sent the secret */
        bool auth_failed;               /* out: it sent a wrong one (the server closes it) */
        struct json_object *oob;        /* out: send_OOB's message, to broadcast (caller puts) */
        /* out: a NOTICE command changed these paths (a JSON array of normalised paths), to send
         * to every watching connection but this one (caller puts); NULL: nothing changed */
        struct json_object *notice;
        bool watch;                     /* out: this connection now watches (fame_watch) */
        /* out: fame_watch's origin, or a NOTICE request's context's; valid until the request
         * is put, NULL: none */
        const char *origin;
        uint32_t node_id;               /* out: the request's node, 0 if none */
        const char *command;            /* out: valid until the request object is put */
        /* out: a shrink that ends inside a book: bytes [tail_from, tail_from + tail_len) of book
         * tail_book must read zero before the reply goes out (truncate semantics) */
        uint64_t tail_book, tail_from, tail_len;
        uint64_t tail_shelf;            /* out: the shelf, for engine_tail_zeroed() */
};

/* Handles one request; *ret_reply is the encoded reply (value or errmsg), always set on
 * success (0).  Negative only for -ENOMEM or a database failure that makes the engine
 * unusable. */
int engine_handle(struct engine *e, struct json_object *request, struct engine_request_info *info,
                  char **ret_reply, size_t *ret_len);

/* Convenience for tests and tools: request as JSON text. */
int engine_handle_text(struct engine *e, const char *request, char **ret_reply);

/* Ids of ZOMBIE books that are on no shelf and not yet handed out by this call; the caller
 * zeroes them and then reports them with engine_books_zeroed(). */
int engine_take_zombies(struct engine *e, uint64_t **ret_ids, size_t *ret_n);
int engine_books_zeroed(struct engine *e, const uint64_t *ids, size_t n);
/* Books handed out by engine_take_zombies() that could not be zeroed or marked FREE: the next
 * engine_take_zombies() hands them out again. */
void engine_release_zombies(struct engine *e, const uint64_t *ids, size_t n);

/* A client connection closed: its open handles are dropped (as fsck_lfs does for all handles
 * when the original restarts). */
int engine_connection_closed(struct engine *e, uint64_t conn);
/* Handles of an earlier run: engine_open() keeps them, marked ENGINE_UNCLAIMED_CONN, so that
 * the shelves they hold open still cannot shrink; a client that reconnects reclaims its own
 * (fame_reclaim_shelf).  This drops those not reclaimed (the grace period is over); *ret_n
 * (optional) gets how many. */
int engine_drop_unclaimed_handles(struct engine *e, size_t *ret_n);
/* How many handles of an earlier run are not reclaimed yet. */
int engine_unclaimed_handles(struct engine *e, size_t *ret_n);

/* Pending tail zeroings (FAME_PENDING_ZERO_TABLE).  engine_pending_tails() first deletes the
 * rows that no longer apply (the book left that place of that shelf, or the shelf grew over the
 * range again: zeroing would destroy data), then returns the rest.  engine_tail_zeroed() deletes
 * a row once its range reads zero. */
struct engine_tail {
        uint64_t shelf, book, from, len;
};
int engine_pending_tails(struct engine *e, struct engine_tail **ret, size_t *ret_n);
int engine_tail_zeroed(struct engine *e, uint64_t shelf, uint64_t book, uint64_t from);

/* Geometry of the database, for the zeroer. */
struct engine_geometry {
        uint64_t book_size;
        uint64_t nvm_bytes_total;
        uint64_t books_total;
        uint32_t nodes_total;
        int bii_mode;                   /* 0 LZA, 1 PHYSADDR */
};
void engine_get_geometry(const struct engine *e, struct engine_geometry *ret);
/* Offset of a book relative to the start of the book area (igstart + book_num × book size);
 * -EINVAL in PHYSADDR mode or for an unknown id. */
int engine_book_offset(const struct engine *e, uint64_t book_id, uint64_t *ret_offset);

/* Read-only JSON views for the management API (engine-views.c, docs/lmp.md): a new object, or
 * NULL with errno set (ENOENT: no shelf at that path; ENOMEM; EIO: the database failed).  They
 * write nothing and check no access (the API is loopback only and changes nothing). */
struct json_object;
struct json_object *engine_view_summary(struct engine *e);      /* geometry and book counts */
struct json_object *engine_view_nodes(struct engine *e);        /* {"nodes": [...]}: the topology */
struct json_object *engine_view_shelves(struct engine *e);      /* {"shelves": [...]}, with paths */
/* fam_base: the FAM offset of the book area (fame_geometry.book_area_offset), -1 when unknown
 * (then "fam_offset" and "first_offset" are null) */
struct json_object *engine_view_shelf(struct engine *e, const char *path, int64_t fam_base);  /* "/a/b", with books */
struct json_object *engine_view_fam_map(struct engine *e, int64_t fam_base);  /* every book, by interleave group */
/* tm-lmp's views (engine-lmp.c; /lmp/ in docs/lmp.md), same contract.  allocated: the media
 * controllers whose coordinate starts with "/" COORDINATE; active: the SOC whose coordinate is
 * "/" SOC, or the whole machine for NULL; shelf: by name (ENOENT: none); books: one interleave
 * group, or every book for ig < 0 (ENOENT: no book). */
struct json_object *engine_lmp_global(struct engine *e);
struct json_object *engine_lmp_nodes(struct engine *e);
struct json_object *engine_lmp_interleave_groups(struct engine *e);
struct json_object *engine_lmp_allocated(struct engine *e, const char *coordinate);
struct json_object *engine_lmp_active(struct engine *e, const char *soc);
struct json_object *engine_lmp_directory(struct engine *e);
struct json_object *engine_lmp_shelf(struct engine *e, const char *name);
struct json_object *engine_lmp_books(struct engine *e, int64_t ig);
/* All of the above, as the management view takes them (src/lmp/lmp.h). */
struct lmp_views;
extern const struct lmp_views engine_views;
/* Grows whenever the database changes (this connection's writes and other connections' commits). */
uint64_t engine_generation(struct engine *e);

/* Node ids of the topology, ascending. */
size_t engine_node_ids(const struct engine *e, const uint32_t **ret);

/* Test hook: the clock, in Unix seconds (NULL: time()). */
void engine_set_clock(struct engine *e, double (*clock)(void));
/* Test hook: while on, engine_books_zeroed() rolls its transaction back and fails (-EBUSY) as it
 * did when another process held the database; the server (locking_mode=EXCLUSIVE) never meets
 * such a lock now, so tests of the zeroer's retries use this.  Any thread may call it. */
void engine_set_fail_zeroed(struct engine *e, bool on);

/* Group sync (the server's): a commit's WAL sync waits for engine_sync(), which must come before
 * any reply of a modifying request is sent; one fdatasync then covers every commit before it.
 * Off by default (each commit synced).  <0 if the database's VFS cannot do it. */
int engine_set_group_sync(struct engine *e, bool on);
bool engine_sync_pending(struct engine *e);
/* 0, or -EIO: the commits since the last sync may not survive a power loss. */
int engine_sync(struct engine *e);
/* With group sync: on, the reply to a change to shelves (a NOTICE command) waits for its
 * commit's sync (durable across a power loss of the host); off (the default), no reply waits
 * for a sync and the server makes one at most a second after a commit (engine_sync_now()): a
 * Librarian that is killed loses nothing either way, a host that loses power loses at most
 * that last second, as it loses what the FAM file had not written back. */
void engine_set_sync_each_change(struct engine *e, bool on);
bool engine_unsynced(struct engine *e);
int engine_sync_now(struct engine *e);

#endif
