/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian's commands (librarian-protocol.md §5, librarian-model.md §5-9), with FAM/E's
 * corrections and additions:
 *   - correct errnos where the original sent 0, ESTALE or "INTERNAL CODING ERROR" (ENOENT for
 *     a missing path component, ENOTDIR, EBUSY for destroy-while-open, EINVAL for a bad
 *     parameter);
 *   - access control: a shelf records its creator node (creator_id) and owner uid/gid; open
 *     needs read permission, resize and xattr changes write permission, create/mkdir/symlink
 *     write permission on the directory, destroy/rmdir/rename write permission on the directory
 *     and ownership of the shelf or of the directory (directories behave as sticky, like
 *     /tmp); uid 0 may do everything.  A request's node_id must be a node of the topology, and
 *     a connection pinned to a node may use only that node_id;
 *   - books leaving a shelf are zeroed by the Librarian itself before they become FREE, so
 *     resize never hands a zeroing shelf to the client ("z_shelf_path" is always null);
 *   - LocalEnc is implemented (every node of the caller's enclosure, shuffled);
 *   - AllocationPolicyDefault is kept in the database and survives restarts.
 */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine.h"
#include "macro.h"
#include "proto.h"
#include "fame-constants.h"

#define streq_(a, b) (strcmp((a), (b)) == 0)
#define ROOT_ID 2
#define NAME_MAX_LEN 255
#define NOBODY 65534

enum { BOOK_FREE = 0, BOOK_INUSE = 1, BOOK_ZOMBIE = 2, BOOK_OFFLINE = 3 };

static const char *const policies[] = {
        "RandomBooks", "LocalNode", "LocalEnc", "NonLocal_Enc", "Nearest", "NearestRemote",
        "NearestEnc", "NearestRack", "LZAascending", "LZAdescending", "RequestIG",
};

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

        /* the current request */
        uint64_t tail_book, tail_from, tail_len;
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

struct req {
        struct json_object *obj, *context;
        uint64_t conn;
        const char *command;
        int64_t node_id, uid, gid, pid;
        const char *physloc;
        uint32_t enc;
        bool has_node;
};

/* ---------------------------------------------------------------------------------------- */
/* errors and statements */

static int fail(struct engine *e, int err, const char *fmt, ...) _printf_(3, 4);
static int fail(struct engine *e, int err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(e->errmsg, sizeof e->errmsg, fmt, ap);
        va_end(ap);
        e->err = err;
        return -1;
}

static int dbfail(struct engine *e, const char *what) {
        return fail(e, EREMOTEIO, "Librarian database error (%s): %s", what, sqlite3_errmsg(e->db));
}

static sqlite3_stmt *stmt(struct engine *e, const char *sql) {
        for (size_t i = 0; i < e->n_stmts; i++)
                if (e->stmts[i].sql == sql) {
                        sqlite3_reset(e->stmts[i].st);
                        sqlite3_clear_bindings(e->stmts[i].st);
                        return e->stmts[i].st;
                }
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v3(e->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
                dbfail(e, "prepare");
                return NULL;
        }
        if (e->n_stmts < ELEMENTSOF(e->stmts))
                e->stmts[e->n_stmts++] = (struct cached_stmt) { sql, st };
        else
                abort();        /* more distinct statements than slots: a coding error */
        return st;
}

/* Runs a statement that returns no rows; binds int64 arguments (count, values...). */
static int exec_int(struct engine *e, const char *sql, int n, ...) {
        sqlite3_stmt *st = stmt(e, sql);
        va_list ap;

        if (!st)
                return -1;
        va_start(ap, n);
        for (int i = 0; i < n; i++)
                sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        va_end(ap);
        int r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE && r != SQLITE_ROW)
                return dbfail(e, sql);
        return 0;
}

/* A query returning one integer (or def when there is no row). */
static int query_int(struct engine *e, const char *sql, int64_t def, int64_t *ret, int n, ...) {
        sqlite3_stmt *st = stmt(e, sql);
        va_list ap;

        if (!st)
                return -1;
        va_start(ap, n);
        for (int i = 0; i < n; i++)
                sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        va_end(ap);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        else if (r == SQLITE_DONE)
                *ret = def;
        sqlite3_reset(st);
        if (r != SQLITE_ROW && r != SQLITE_DONE)
                return dbfail(e, sql);
        return 0;
}

static int64_t now(struct engine *e) {
        return e->clock ? (int64_t) e->clock() : (int64_t) time(NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* shelves and paths */

#define SHELF_COLUMNS "id, creator_id, size_bytes, book_count, ctime, mtime, name, mode, parent_id, link_count, uid, gid"

static void shelf_from_row(sqlite3_stmt *st, struct shelf *s) {
        s->id = sqlite3_column_int64(st, 0);
        s->creator_id = sqlite3_column_int64(st, 1);
        s->size_bytes = sqlite3_column_int64(st, 2);
        s->book_count = sqlite3_column_int64(st, 3);
        s->ctime = sqlite3_column_int64(st, 4);
        s->mtime = sqlite3_column_int64(st, 5);
        const unsigned char *name = sqlite3_column_text(st, 6);
        snprintf(s->name, sizeof s->name, "%s", name ? (const char *) name : "");
        s->mode = sqlite3_column_int64(st, 7);
        s->parent_id = sqlite3_column_int64(st, 8);
        s->link_count = sqlite3_column_int64(st, 9);
        s->uid = sqlite3_column_int64(st, 10);
        s->gid = sqlite3_column_int64(st, 11);
}

/* 1 found, 0 not found, -1 error */
static int shelf_by_id(struct engine *e, int64_t id, struct shelf *ret) {
        static const char sql[] = "SELECT " SHELF_COLUMNS " FROM shelves WHERE id = ?";
        sqlite3_stmt *st = stmt(e, sql);

        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, id);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
                shelf_from_row(st, ret);
        sqlite3_reset(st);
        if (r == SQLITE_ROW)
                return 1;
        if (r == SQLITE_DONE)
                return 0;
        return dbfail(e, "shelf lookup");
}

static int child_by_name(struct engine *e, int64_t parent, const char *name, struct shelf *ret) {
        static const char sql[] = "SELECT " SHELF_COLUMNS
                " FROM shelves WHERE parent_id = ? AND name = ? AND id != parent_id AND id > 1";
        sqlite3_stmt *st = stmt(e, sql);

        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, parent);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
                shelf_from_row(st, ret);
        sqlite3_reset(st);
        if (r == SQLITE_ROW)
                return 1;
        if (r == SQLITE_DONE)
                return 0;
        return dbfail(e, "name lookup");
}

static bool is_dir(const struct shelf *s) {
        return S_ISDIR((mode_t) s->mode);
}

struct resolved {
        struct shelf parent;            /* the directory holding the last component */
        struct shelf shelf;             /* valid when found */
        char name[NAME_MAX_LEN + 1];    /* the last component ("." for the root) */
        bool found;
};

/*
 * Resolves a path from the root: components split by '/', empty ones and "." ignored, ".."
 * goes up.  A missing or non-directory intermediate component is an error (ENOENT,
 * ENOTDIR); the last one may be missing (found = false).
 */
static int resolve(struct engine *e, const char *path, struct resolved *ret) {
        char comp[NAME_MAX_LEN + 1];
        const char *p = path;
        int r;

        r = shelf_by_id(e, ROOT_ID, &ret->shelf);
        if (r <= 0)
                return r < 0 ? r : fail(e, EREMOTEIO, "The root shelf is missing from the database");
        ret->parent = ret->shelf;
        snprintf(ret->name, sizeof ret->name, ".");
        ret->found = true;

        for (;;) {
                while (*p == '/')
                        p++;
                if (!*p)
                        return 0;
                size_t n = strcspn(p, "/");
                if (n > NAME_MAX_LEN)
                        return fail(e, ENAMETOOLONG, "Shelf name too long in \"%s\" (at most %d bytes)",
                                    path, NAME_MAX_LEN);
                memcpy(comp, p, n);
                comp[n] = 0;
                p += n;
                if (streq_(comp, "."))
                        continue;
                if (!ret->found)
                        return fail(e, ENOENT, "No such directory \"%s\" in \"%s\"", ret->name, path);
                if (!is_dir(&ret->shelf))
                        return fail(e, ENOTDIR, "\"%s\" in \"%s\" is not a directory", ret->shelf.name, path);
                if (streq_(comp, "..")) {
                        r = shelf_by_id(e, ret->shelf.parent_id, &ret->shelf);
                        if (r <= 0)
                                return r < 0 ? r : fail(e, ENOENT, "Broken parent link in \"%s\"", path);
                        r = shelf_by_id(e, ret->shelf.parent_id, &ret->parent);
                        if (r <= 0)
                                return r < 0 ? r : fail(e, ENOENT, "Broken parent link in \"%s\"", path);
                        snprintf(ret->name, sizeof ret->name, "%s", ret->shelf.name);
                        continue;
                }
                ret->parent = ret->shelf;
                snprintf(ret->name, sizeof ret->name, "%s", comp);
                r = child_by_name(e, ret->parent.id, comp, &ret->shelf);
                if (r < 0)
                        return r;
                ret->found = r > 0;
        }
}

static int resolve_existing(struct engine *e, const char *path, struct resolved *ret) {
        if (resolve(e, path, ret) < 0)
                return -1;
        if (!ret->found)
                return fail(e, ENOENT, "no such shelf %s", ret->name);
        return 0;
}

/* The request's "path", which must exist. */
static int existing_path(struct engine *e, const struct req *r, struct resolved *ret);

static struct json_object *shelf_json(const struct shelf *s, int64_t open_handle) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_int64(s->id));
        json_object_object_add(o, "creator_id", json_object_new_int64(s->creator_id));
        json_object_object_add(o, "size_bytes", json_object_new_int64(s->size_bytes));
        json_object_object_add(o, "book_count", json_object_new_int64(s->book_count));
        json_object_object_add(o, "ctime", json_object_new_int64(s->ctime));
        json_object_object_add(o, "mtime", json_object_new_int64(s->mtime));
        json_object_object_add(o, "name", json_object_new_string(s->name));
        json_object_object_add(o, "mode", json_object_new_int64(s->mode));
        json_object_object_add(o, "parent_id", json_object_new_int64(s->parent_id));
        json_object_object_add(o, "link_count", json_object_new_int64(s->link_count));
        json_object_object_add(o, "bos", json_object_new_array());
        json_object_object_add(o, "open_handle", open_handle >= 0 ? json_object_new_int64(open_handle) : NULL);
        return o;
}

static struct json_object *book_json(const struct book *b) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_int64(b->id));
        json_object_object_add(o, "intlv_group", json_object_new_int64(b->intlv_group));
        json_object_object_add(o, "book_num", json_object_new_int64(b->book_num));
        json_object_object_add(o, "allocated", json_object_new_int64(b->allocated));
        json_object_object_add(o, "attributes", json_object_new_int64(b->attributes));
        return o;
}

static void book_from_row(sqlite3_stmt *st, struct book *b) {
        b->id = sqlite3_column_int64(st, 0);
        b->intlv_group = sqlite3_column_int64(st, 1);
        b->book_num = sqlite3_column_int64(st, 2);
        b->allocated = sqlite3_column_int64(st, 3);
        b->attributes = sqlite3_column_int64(st, 4);
}

/* The books of a shelf in seq order; also checks the seq progression 1..n. */
static int shelf_books(struct engine *e, const struct shelf *s, struct book **ret, size_t *ret_n,
                       bool check_seq) {
        static const char sql[] =
                "SELECT b.id, b.intlv_group, b.book_num, b.allocated, b.attributes, s.seq_num"
                " FROM books_on_shelves s JOIN books b ON b.id = s.book_id"
                " WHERE s.shelf_id = ? ORDER BY s.seq_num";
        sqlite3_stmt *st = stmt(e, sql);
        struct book *v = NULL;
        size_t n = 0, allocated = 0;
        int r;

        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, s->id);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 16;
                        struct book *nv = realloc(v, allocated * sizeof *v);
                        if (!nv) {
                                free(v);
                                sqlite3_reset(st);
                                return fail(e, ENOMEM, "Out of memory");
                        }
                        v = nv;
                }
                book_from_row(st, &v[n]);
                if (check_seq && sqlite3_column_int64(st, 5) != (int64_t) n + 1) {
                        free(v);
                        sqlite3_reset(st);
                        return fail(e, EBADFD, "Corrupt BOS sequence progression for %s", s->name);
                }
                n++;
        }
        sqlite3_reset(st);
        if (r != SQLITE_DONE) {
                free(v);
                return dbfail(e, "shelf books");
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int64_t books_for(const struct engine *e, int64_t size) {
        return (int64_t) (((uint64_t) size + e->geo.book_size - 1) / e->geo.book_size);
}

/* ---------------------------------------------------------------------------------------- */
/* access control */

enum { MAY_READ = 4, MAY_WRITE = 2 };

static bool may(const struct req *r, const struct shelf *s, int want) {
        if (r->uid == 0)
                return true;
        int bits;
        if (r->uid == s->uid)
                bits = (int) (s->mode >> 6) & 7;
        else if (r->gid == s->gid)
                bits = (int) (s->mode >> 3) & 7;
        else
                bits = (int) s->mode & 7;
        return (bits & want) == want;
}

static int check_access(struct engine *e, const struct req *r, const struct shelf *s, int want,
                        const char *what) {
        if (may(r, s, want))
                return 0;
        return fail(e, EACCES, "Permission denied: %s \"%s\" (mode %04o, owner %lld:%lld) for uid %lld "
                    "gid %lld on node %lld", what, s->name, (unsigned) (s->mode & 07777),
                    (long long) s->uid, (long long) s->gid, (long long) r->uid, (long long) r->gid,
                    (long long) r->node_id);
}

/* Removing or renaming s out of directory dir: write permission on dir, and (sticky
 * semantics) ownership of s or of dir. */
static int check_unlink(struct engine *e, const struct req *r, const struct shelf *dir,
                        const struct shelf *s, const char *what) {
        if (check_access(e, r, dir, MAY_WRITE, "write to directory") < 0)
                return -1;
        if (r->uid == 0 || r->uid == s->uid || r->uid == dir->uid)
                return 0;
        return fail(e, EACCES, "Permission denied: only the owner (uid %lld) may %s \"%s\"",
                    (long long) s->uid, what, s->name);
}

/* ---------------------------------------------------------------------------------------- */
/* request parameters */

static struct json_object *param(const struct req *r, const char *name) {
        struct json_object *v = NULL;
        json_object_object_get_ex(r->obj, name, &v);
        return v;
}

static int get_int(struct engine *e, const struct req *r, const char *name, int64_t *ret) {
        struct json_object *v = param(r, name);

        if (!v || !json_object_is_type(v, json_type_int))
                return fail(e, EINVAL, "%s: parameter \"%s\" must be an integer", r->command, name);
        *ret = json_object_get_int64(v);
        return 0;
}

static int get_str(struct engine *e, const struct req *r, const char *name, const char **ret) {
        struct json_object *v = param(r, name);

        if (!v || !json_object_is_type(v, json_type_string))
                return fail(e, EINVAL, "%s: parameter \"%s\" must be a string", r->command, name);
        if (strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
                return fail(e, EINVAL, "%s: parameter \"%s\" must not contain NUL", r->command, name);
        *ret = json_object_get_string(v);
        return 0;
}

static int existing_path(struct engine *e, const struct req *r, struct resolved *ret) {
        const char *path;
        if (get_str(e, r, "path", &path) < 0)
                return -1;
        return resolve_existing(e, path, ret);
}

/* ---------------------------------------------------------------------------------------- */
/* books: state changes and zombies */

static int book_state(struct engine *e, int64_t id, int64_t *ret) {
        return query_int(e, "SELECT allocated FROM books WHERE id = ?", -1, ret, 1, id);
}

static int set_book_state(struct engine *e, int64_t id, int64_t to) {
        int64_t from;

        if (book_state(e, id, &from) < 0)
                return -1;
        if (from == to)
                return 0;
        bool legal = (from == BOOK_FREE && to == BOOK_INUSE) ||
                     (from == BOOK_INUSE && to == BOOK_ZOMBIE) ||
                     (from == BOOK_ZOMBIE && to == BOOK_FREE);
        if (!legal)
                return fail(e, EUCLEAN, "Book allocation %lld -> %lld", (long long) from, (long long) to);
        return exec_int(e, "UPDATE books SET allocated = ? WHERE id = ?", 2, to, id);
}

static bool inflight_has(const struct engine *e, uint64_t id) {
        for (size_t i = 0; i < e->n_inflight; i++)
                if (e->inflight[i] == id)
                        return true;
        return false;
}

int engine_take_zombies(struct engine *e, uint64_t **ret_ids, size_t *ret_n) {
        static const char sql[] =
                "SELECT id FROM books WHERE allocated = 2 AND id NOT IN (SELECT book_id FROM books_on_shelves)"
                " ORDER BY id";
        sqlite3_stmt *st;
        uint64_t *v = NULL;
        size_t n = 0, allocated = 0;
        int r;

        /* only after a request that took books off shelves (and at start, and to retry) */
        if (!e->zombies_dirty) {
                *ret_ids = NULL;
                *ret_n = 0;
                return 0;
        }
        st = stmt(e, sql);
        if (!st)
                return -EIO;
        e->zombies_dirty = false;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                uint64_t id = (uint64_t) sqlite3_column_int64(st, 0);
                if (inflight_has(e, id))
                        continue;
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 16;
                        uint64_t *nv = realloc(v, allocated * sizeof *v);
                        if (!nv) {
                                free(v);
                                                sqlite3_reset(st);
                                e->zombies_dirty = true;
                                return -ENOMEM;
                        }
                        v = nv;
                }
                v[n++] = id;
        }
        sqlite3_reset(st);
        if (r != SQLITE_DONE) {
                free(v);
                e->zombies_dirty = true;
                return -EIO;
        }
        if (e->n_inflight + n > e->allocated_inflight) {
                size_t na = (e->n_inflight + n) * 2;
                uint64_t *ni = realloc(e->inflight, na * sizeof *ni);
                if (!ni) {
                        free(v);
                        e->zombies_dirty = true;
                        return -ENOMEM;
                }
                e->inflight = ni;
                e->allocated_inflight = na;
        }
        if (n)
                memcpy(e->inflight + e->n_inflight, v, n * sizeof *v);
        e->n_inflight += n;
        *ret_ids = v;
        *ret_n = n;
        return 0;
}

void engine_release_zombies(struct engine *e, const uint64_t *ids, size_t n) {
        if (n)
                e->zombies_dirty = true;
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < e->n_inflight; j++)
                        if (e->inflight[j] == ids[i]) {
                                e->inflight[j] = e->inflight[--e->n_inflight];
                                break;
                        }
}

int engine_books_zeroed(struct engine *e, const uint64_t *ids, size_t n) {
        int r = 0;

        if (sqlite3_exec(e->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
                r = -EBUSY;
        for (size_t i = 0; i < n && r == 0; i++)
                if (exec_int(e, "UPDATE books SET allocated = 0 WHERE id = ? AND allocated = 2"
                             " AND id NOT IN (SELECT book_id FROM books_on_shelves)", 1, (int64_t) ids[i]) < 0)
                        r = -EIO;
        if (r == 0 && sqlite3_exec(e->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                r = -EBUSY;
        if (r < 0)
                sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
        /* on failure they are handed out (and zeroed) again later */
        engine_release_zombies(e, ids, n);
        return r;
}

int engine_connection_closed(struct engine *e, uint64_t conn) {
        if (conn == 0)
                return 0;
        return exec_int(e, "DELETE FROM opened_shelves WHERE fame_conn = ?", 1, (int64_t) conn) < 0 ? -EIO : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* xattrs */

static int xattr_get(struct engine *e, int64_t shelf, const char *name, char **ret, size_t *ret_len) {
        static const char sql[] = "SELECT value FROM shelf_xattrs WHERE shelf_id = ? AND xattr = ?";
        sqlite3_stmt *st = stmt(e, sql);

        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, shelf);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        *ret = NULL;
        if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
                int len = sqlite3_column_bytes(st, 0);
                const void *blob = sqlite3_column_blob(st, 0);
                *ret = malloc((size_t) len + 1);
                if (*ret) {
                        if (len)
                                memcpy(*ret, blob, (size_t) len);
                        (*ret)[len] = 0;
                        if (ret_len)
                                *ret_len = (size_t) len;
                }
        }
        sqlite3_reset(st);
        if (r != SQLITE_ROW && r != SQLITE_DONE)
                return dbfail(e, "xattr lookup");
        if (r == SQLITE_ROW && !*ret && sqlite3_column_type(st, 0) != SQLITE_NULL)
                return fail(e, ENOMEM, "Out of memory");
        return 0;
}

static int xattr_set(struct engine *e, int64_t shelf, const char *name, const char *value, size_t len) {
        static const char sql[] = "INSERT OR REPLACE INTO shelf_xattrs VALUES (?, ?, ?)";
        sqlite3_stmt *st = stmt(e, sql);

        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, shelf);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, value, (int) len, SQLITE_STATIC);
        int r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
                return dbfail(e, "xattr update");
        return 0;
}

static bool known_policy(const char *p) {
        for (size_t i = 0; i < ELEMENTSOF(policies); i++)
                if (streq_(p, policies[i]))
                        return true;
        return false;
}

static const struct ig_info *find_ig(const struct engine *e, uint32_t ig) {
        for (size_t i = 0; i < e->n_igs; i++)
                if (e->igs[i].ig == ig)
                        return &e->igs[i];
        return NULL;
}

static const struct node_info *find_node(const struct engine *e, int64_t node_id) {
        for (size_t i = 0; i < e->n_nodes; i++)
                if ((int64_t) e->nodes[i].node_id == node_id)
                        return &e->nodes[i];
        return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* allocation policies */

struct idlist {
        int64_t *v;
        size_t n, allocated;
};

static int idlist_add(struct idlist *l, int64_t id) {
        if (l->n == l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 16;
                int64_t *nv = realloc(l->v, na * sizeof *nv);
                if (!nv)
                        return -ENOMEM;
                l->v = nv;
                l->allocated = na;
        }
        l->v[l->n++] = id;
        return 0;
}

enum tier { TIER_LOCAL, TIER_ENC, TIER_OTHER };

/* The tier of an IG relative to the caller.  A PHYSADDR topology is one enclosure. */
static enum tier ig_tier(const struct engine *e, const struct req *r, uint32_t ig) {
        if ((int64_t) ig + 1 == r->node_id)
                return TIER_LOCAL;
        if (e->geo.bii_mode == 1)
                return TIER_ENC;
        const struct node_info *n = find_node(e, (int64_t) ig + 1);
        if (n && n->enc == r->enc)
                return TIER_ENC;
        return TIER_OTHER;
}

/* Appends up to `want` free books of the IGs whose tier is in tiers (bitmask), shuffled or by
 * ascending/descending id. */
static int take_free(struct engine *e, const struct req *r, unsigned tiers, int order, size_t want,
                     struct idlist *out) {
        static const char *const sqls[] = {
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY random()",
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY id",
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY id DESC",
        };
        /* every tier: no filtering, so SQLite need not sort (or shuffle) more than it hands out */
        static const char *const limited[] = {
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY random() LIMIT ?",
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY id LIMIT ?",
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY id DESC LIMIT ?",
        };
        bool all = tiers == ((1u << TIER_LOCAL) | (1u << TIER_ENC) | (1u << TIER_OTHER));
        sqlite3_stmt *st;
        int s;

        if (want == 0)
                return 0;
        st = stmt(e, all ? limited[order] : sqls[order]);
        if (!st)
                return -1;
        if (all)
                sqlite3_bind_int64(st, 1, (int64_t) want);
        size_t target = out->n + want;
        while (out->n < target && (s = sqlite3_step(st)) == SQLITE_ROW) {
                uint32_t ig = (uint32_t) sqlite3_column_int64(st, 1) & 0xFFFF;
                if (!(tiers & (1u << ig_tier(e, r, ig))))
                        continue;
                if (idlist_add(out, sqlite3_column_int64(st, 0)) < 0) {
                        sqlite3_reset(st);
                        return fail(e, ENOMEM, "Out of memory");
                }
        }
        sqlite3_reset(st);
        return 0;
}

enum { ORDER_RANDOM, ORDER_ASC, ORDER_DESC };
#define T(x) (1u << (x))

static int request_ig(struct engine *e, const struct shelf *s, size_t want, struct idlist *out) {
        _cleanup_free_ char *req = NULL, *pos_s = NULL;
        size_t req_len = 0;

        if (xattr_get(e, s->id, "user.LFS.InterleaveRequest", &req, &req_len) < 0 ||
            xattr_get(e, s->id, "user.LFS.InterleaveRequestPos", &pos_s, NULL) < 0)
                return -1;
        if (!req || req_len == 0)
                return fail(e, ERANGE, "RequestIG policy requires prior setting of user.LFS.InterleaveRequest on %s",
                            s->name);
        char *end = NULL;
        long pos = pos_s ? strtol(pos_s, &end, 10) : 0;
        if (!pos_s || !end || *end || pos < 0 || (size_t) pos >= req_len)
                pos = 0;
        for (size_t i = 0; i < want; i++) {
                int64_t id;
                uint32_t ig = (unsigned char) req[pos];
                if (query_int(e, "SELECT id FROM books WHERE allocated = 0 AND (intlv_group & 65535) = ?"
                              " AND id NOT IN (SELECT value FROM temp_taken) ORDER BY id LIMIT 1",
                              -1, &id, 1, (int64_t) ig) < 0)
                        return -1;
                if (id < 0)
                        return fail(e, ENOSPC, "Not enough books remaining in IG %u", ig);
                if (exec_int(e, "INSERT INTO temp_taken VALUES (?)", 1, id) < 0 || idlist_add(out, id) < 0)
                        return -1;
                pos = (long) (((size_t) pos + 1) % req_len);
        }
        char buf[32];
        snprintf(buf, sizeof buf, "%ld", pos);
        return xattr_set(e, s->id, "user.LFS.InterleaveRequestPos", buf, strlen(buf));
}

static int pick_books(struct engine *e, const struct req *r, const struct shelf *s, size_t want,
                      struct idlist *out) {
        _cleanup_free_ char *policy = NULL;

        if (xattr_get(e, s->id, "user.LFS.AllocationPolicy", &policy, NULL) < 0)
                return -1;
        if (!policy || !known_policy(policy))
                return fail(e, EINVAL, "Unknown policy \"%s\"", policy ? policy : "None");
        if (e->geo.bii_mode == 0 && e->n_igs != e->n_nodes)
                return fail(e, EMFILE, "IG:node != 1:1");

        if (streq_(policy, "RandomBooks"))
                return take_free(e, r, T(TIER_LOCAL) | T(TIER_ENC) | T(TIER_OTHER), ORDER_RANDOM, want, out);
        if (streq_(policy, "LocalNode"))
                return take_free(e, r, T(TIER_LOCAL), ORDER_ASC, want, out);
        if (streq_(policy, "LocalEnc"))
                return take_free(e, r, T(TIER_LOCAL) | T(TIER_ENC), ORDER_RANDOM, want, out);
        if (streq_(policy, "NonLocal_Enc"))
                return take_free(e, r, T(TIER_ENC), ORDER_RANDOM, want, out);
        if (streq_(policy, "NearestRack"))
                return take_free(e, r, T(TIER_OTHER), ORDER_RANDOM, want, out);
        if (streq_(policy, "LZAascending"))
                return take_free(e, r, T(TIER_LOCAL) | T(TIER_ENC) | T(TIER_OTHER), ORDER_ASC, want, out);
        if (streq_(policy, "LZAdescending"))
                return take_free(e, r, T(TIER_LOCAL) | T(TIER_ENC) | T(TIER_OTHER), ORDER_DESC, want, out);
        if (streq_(policy, "RequestIG"))
                return request_ig(e, s, want, out);

        bool local = !streq_(policy, "NearestRemote");
        bool other = streq_(policy, "Nearest") || streq_(policy, "NearestRemote");
        size_t start = out->n;
        if (local && take_free(e, r, T(TIER_LOCAL), ORDER_ASC, want, out) < 0)
                return -1;
        if (take_free(e, r, T(TIER_ENC), ORDER_RANDOM, want - (out->n - start), out) < 0)
                return -1;
        if (other && take_free(e, r, T(TIER_OTHER), ORDER_RANDOM, want - (out->n - start), out) < 0)
                return -1;
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* commands */

typedef int (*command_fn)(struct engine *e, struct req *r, struct json_object **ret);

static int cmd_version(struct engine *e, struct req *r, struct json_object **ret) {
        (void) e; (void) r;
        *ret = json_object_new_string(LIBRARIAN_SCHEMA);
        return 0;
}

static int cmd_get_fs_stats(struct engine *e, struct req *r, struct json_object **ret) {
        int64_t used;
        (void) r;

        if (query_int(e, "SELECT COUNT(*) FROM books WHERE allocated > 0", 0, &used, 0) < 0)
                return -1;
        struct json_object *o = json_object_new_object(), *igs = json_object_new_object();
        json_object_object_add(o, "schema_version", json_object_new_string(LIBRARIAN_SCHEMA));
        json_object_object_add(o, "book_size_bytes", json_object_new_int64((int64_t) e->geo.book_size));
        json_object_object_add(o, "nvm_bytes_total", json_object_new_int64((int64_t) e->geo.nvm_bytes_total));
        json_object_object_add(o, "books_total", json_object_new_int64((int64_t) e->geo.books_total));
        json_object_object_add(o, "nodes_total", json_object_new_int64(e->geo.nodes_total));
        json_object_object_add(o, "books_used", json_object_new_int64(used));
        for (size_t i = 0; i < e->n_igs; i++) {
                char key[16];
                struct json_object *pair = json_object_new_array();
                json_object_array_add(pair, json_object_new_int64((int64_t) e->igs[i].books));
                json_object_array_add(pair, json_object_new_int64(e->igs[i].base));
                snprintf(key, sizeof key, "%u", e->igs[i].ig);
                json_object_object_add(igs, key, pair);
        }
        json_object_object_add(o, "books_per_IG", igs);
        json_object_object_add(o, "BIImode", json_object_new_int(e->geo.bii_mode));
        *ret = o;
        return 0;
}

static int new_open_handle(struct engine *e, const struct req *r, const struct shelf *s, int64_t *ret) {
        int64_t id = e->next_handle;
        if (exec_int(e, "INSERT INTO opened_shelves (id, shelf_id, node_id, pid, fame_conn) VALUES (?, ?, ?, ?, ?)", 5,
                     id, s->id, r->node_id, r->pid, (int64_t) r->conn) < 0)
                return -1;
        e->next_handle++;       /* (a rolled-back request skips a number: harmless) */
        *ret = id;
        return 0;
}

static int insert_shelf(struct engine *e, const struct req *r, int64_t parent, const char *name,
                        int64_t mode, int64_t link_count, struct shelf *ret) {
        static const char sql[] = "INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime,"
                " name, mode, parent_id, link_count, uid, gid) VALUES (?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?)";
        sqlite3_stmt *st = stmt(e, sql);
        int64_t t = now(e);

        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, r->node_id);
        sqlite3_bind_int64(st, 2, t);
        sqlite3_bind_int64(st, 3, t);
        sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, mode);
        sqlite3_bind_int64(st, 6, parent);
        sqlite3_bind_int64(st, 7, link_count);
        sqlite3_bind_int64(st, 8, r->uid);
        sqlite3_bind_int64(st, 9, r->gid);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
                return dbfail(e, "create shelf");
        return shelf_by_id(e, sqlite3_last_insert_rowid(e->db), ret) == 1 ? 0 : dbfail(e, "create shelf");
}

static int check_new_name(struct engine *e, struct resolved *res, const struct req *r) {
        if (streq_(res->name, ".") || streq_(res->name, ".."))
                return fail(e, EEXIST, "\"%s\" already exists", res->name);
        if (!is_dir(&res->parent))
                return fail(e, ENOTDIR, "\"%s\" is not a directory", res->parent.name);
        return check_access(e, r, &res->parent, MAY_WRITE, "create in directory");
}

static int cmd_create_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t mode, handle;

        if (get_str(e, r, "path", &path) < 0 || get_int(e, r, "mode", &mode) < 0 || resolve(e, path, &res) < 0)
                return -1;
        if (res.found) {
                if (is_dir(&res.shelf))
                        return fail(e, EISDIR, "\"%s\" is a directory", res.name);
                if (check_access(e, r, &res.shelf, MAY_READ, "open") < 0)
                        return -1;
        } else {
                if (check_new_name(e, &res, r) < 0)
                        return -1;
                if ((mode & 07777) == 0 && (mode & S_IFMT) == 0)
                        mode = S_IFREG | 0666;
                if ((mode & S_IFMT) == 0)
                        mode |= S_IFREG;
                if (insert_shelf(e, r, res.parent.id, res.name, mode, 1, &res.shelf) < 0)
                        return -1;
                if (xattr_set(e, res.shelf.id, "user.LFS.AllocationPolicy", e->policy_default,
                              strlen(e->policy_default)) < 0 ||
                    xattr_set(e, res.shelf.id, "user.LFS.InterleaveRequest", "", 0) < 0 ||
                    xattr_set(e, res.shelf.id, "user.LFS.InterleaveRequestPos", "", 0) < 0)
                        return -1;
        }
        if (new_open_handle(e, r, &res.shelf, &handle) < 0)
                return -1;
        *ret = shelf_json(&res.shelf, handle);
        return 0;
}

static int cmd_get_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;

        if (existing_path(e, r, &res) < 0)
                return -1;
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

static int cmd_open_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        int64_t handle;

        if (existing_path(e, r, &res) < 0)
                return -1;
        if (check_access(e, r, &res.shelf, MAY_READ, "open") < 0 || new_open_handle(e, r, &res.shelf, &handle) < 0)
                return -1;
        *ret = shelf_json(&res.shelf, handle);
        return 0;
}

static int cmd_close_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        int64_t id, handle;

        if (get_int(e, r, "id", &id) < 0 || get_int(e, r, "open_handle", &handle) < 0)
                return -1;
        /* a connection closes only its own handles */
        if (exec_int(e, "DELETE FROM opened_shelves WHERE id = ? AND shelf_id = ? AND node_id = ?"
                     " AND (? = 0 OR fame_conn = ?)", 5, handle, id, r->node_id, (int64_t) r->conn, (int64_t) r->conn) < 0)
                return -1;
        struct json_object *o = json_object_new_object();
        static const char *const zero[] = { "creator_id", "size_bytes", "book_count", "ctime", "mtime",
                                            "name", "mode", "parent_id", "link_count" };
        json_object_object_add(o, "id", json_object_new_int64(id));
        for (size_t i = 0; i < ELEMENTSOF(zero); i++)
                json_object_object_add(o, zero[i], json_object_new_int(0));
        json_object_object_add(o, "bos", json_object_new_array());
        json_object_object_add(o, "open_handle", NULL);
        *ret = o;
        return 0;
}

static int cmd_list_shelves(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT " SHELF_COLUMNS
                " FROM shelves WHERE parent_id = ? AND id != parent_id AND id > 1 ORDER BY id";
        struct resolved res;
        struct shelf dot, dotdot;

        if (existing_path(e, r, &res) < 0)
                return -1;
        if (shelf_by_id(e, res.shelf.parent_id, &dotdot) != 1)
                return fail(e, ENOENT, "The parent of %s is missing", res.name);
        dot = res.shelf;
        snprintf(dot.name, sizeof dot.name, ".");
        snprintf(dotdot.name, sizeof dotdot.name, "..");
        struct json_object *a = json_object_new_array();
        json_object_array_add(a, shelf_json(&dot, -1));
        json_object_array_add(a, shelf_json(&dotdot, -1));
        *ret = a;
        if (!is_dir(&res.shelf))
                return 0;
        sqlite3_stmt *st = stmt(e, sql);
        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, res.shelf.id);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                struct shelf c;
                shelf_from_row(st, &c);
                json_object_array_add(a, shelf_json(&c, -1));
        }
        sqlite3_reset(st);
        return s == SQLITE_DONE ? 0 : dbfail(e, "list shelves");
}

static int cmd_list_shelf_books(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        _cleanup_free_ struct book *books = NULL;
        size_t n;

        if (existing_path(e, r, &res) < 0 ||
            shelf_books(e, &res.shelf, &books, &n, false) < 0)
                return -1;
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, book_json(&books[i]));
        *ret = a;
        return 0;
}

static int cmd_list_open_shelves(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT id, shelf_id, node_id, pid FROM opened_shelves ORDER BY id";
        sqlite3_stmt *st = stmt(e, sql);
        int s;
        (void) r;

        if (!st)
                return -1;
        struct json_object *a = json_object_new_array();
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(st, 0)));
                json_object_object_add(o, "shelf_id", json_object_new_int64(sqlite3_column_int64(st, 1)));
                json_object_object_add(o, "node_id", json_object_new_int64(sqlite3_column_int64(st, 2)));
                json_object_object_add(o, "pid", json_object_new_int64(sqlite3_column_int64(st, 3)));
                json_object_array_add(a, o);
        }
        sqlite3_reset(st);
        *ret = a;
        return s == SQLITE_DONE ? 0 : dbfail(e, "list open shelves");
}

static int cmd_resize_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t id, size, count;
        struct json_object *zv = param(r, "zero_enabled");
        _cleanup_free_ struct book *books = NULL;
        size_t n;

        if (get_str(e, r, "path", &path) < 0 || get_int(e, r, "id", &id) < 0 ||
            get_int(e, r, "size_bytes", &size) < 0)
                return -1;
        if (!zv || !json_object_is_type(zv, json_type_boolean))
                return fail(e, EINVAL, "resize_shelf: parameter \"zero_enabled\" must be true or false");
        if (resolve_existing(e, path, &res) < 0)
                return -1;
        if (res.shelf.id != id)
                return fail(e, ENOENT, "no such shelf %s with id %lld", res.name, (long long) id);
        if (size < 0)
                return fail(e, EINVAL, "Bad size");
        if (!S_ISREG((mode_t) res.shelf.mode) && !S_ISBLK((mode_t) res.shelf.mode))
                return fail(e, is_dir(&res.shelf) ? EISDIR : EINVAL, "Cannot resize \"%s\": not a regular file",
                            res.name);
        if (check_access(e, r, &res.shelf, MAY_WRITE, "resize") < 0)
                return -1;
        if (res.shelf.book_count != books_for(e, res.shelf.size_bytes))
                return fail(e, EBADF, "%s size metadata mismatch", res.name);
        if (shelf_books(e, &res.shelf, &books, &n, true) < 0)
                return -1;
        if ((int64_t) n != res.shelf.book_count)
                return fail(e, EREMOTEIO, "%s book count mismatch", res.name);

        *ret = json_object_new_object();
        json_object_object_add(*ret, "z_shelf_path", NULL);
        if (size == res.shelf.size_bytes)
                return 0;
        int64_t new_count = books_for(e, size);
        if (size < res.shelf.size_bytes) {
                if (query_int(e, "SELECT COUNT(*) FROM opened_shelves WHERE shelf_id = ? AND NOT (node_id = ? AND pid = ?)",
                              0, &count, 3, res.shelf.id, r->node_id, r->pid) < 0)
                        return -1;
                if (count > 0)
                        return fail(e, EMFILE, "Cannot shrink multiply-opened shelf");
        }
        if (new_count > (int64_t) n) {
                struct idlist got = {};
                size_t want = (size_t) new_count - n;
                if (exec_int(e, "DELETE FROM temp_taken", 0) < 0 || pick_books(e, r, &res.shelf, want, &got) < 0) {
                        free(got.v);
                        return -1;
                }
                if (got.n < want) {
                        free(got.v);
                        return fail(e, ENOSPC, "out of space for \"%s\" (%zu more books wanted)", res.name, want);
                }
                for (size_t i = 0; i < got.n; i++)
                        if (set_book_state(e, got.v[i], BOOK_INUSE) < 0 ||
                            exec_int(e, "INSERT INTO books_on_shelves VALUES (?, ?, ?)", 3, res.shelf.id,
                                     got.v[i], (int64_t) (n + i + 1)) < 0) {
                                free(got.v);
                                return -1;
                        }
                free(got.v);
        } else if (new_count < (int64_t) n) {
                for (int64_t i = (int64_t) n - 1; i >= new_count; i--)
                        if (exec_int(e, "DELETE FROM books_on_shelves WHERE book_id = ?", 1, books[i].id) < 0 ||
                            set_book_state(e, books[i].id, BOOK_ZOMBIE) < 0)
                                return -1;
                e->zombies_dirty = true;
        }
        /* a shrink that ends inside the last kept book: the rest of what was in it must read zero
         * if the shelf grows again */
        uint64_t bs = e->geo.book_size, within = (uint64_t) size % bs;
        if (size < res.shelf.size_bytes && new_count > 0 && within) {
                uint64_t old_end = (uint64_t) res.shelf.size_bytes - (uint64_t) (new_count - 1) * bs;
                e->tail_book = (uint64_t) books[new_count - 1].id;
                e->tail_from = within;
                e->tail_len = (old_end < bs ? old_end : bs) - within;
        }
        return exec_int(e, "UPDATE shelves SET size_bytes = ?, book_count = ?, mtime = ? WHERE id = ?", 4,
                        size, new_count, now(e), res.shelf.id);
}

static bool startswith(const char *s, const char *p) {
        return strncmp(s, p, strlen(p)) == 0;
}

static int cmd_rename_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved from, to;
        const char *path, *newpath;
        int64_t id;

        if (get_str(e, r, "path", &path) < 0 || get_int(e, r, "id", &id) < 0 ||
            get_str(e, r, "newpath", &newpath) < 0 || resolve_existing(e, path, &from) < 0)
                return -1;
        if (from.shelf.id == ROOT_ID)
                return fail(e, EBUSY, "The root cannot be renamed");
        if (resolve(e, newpath, &to) < 0)
                return -1;
        if (to.found)
                return fail(e, EEXIST, "Duplicate path found during rename %s", newpath);
        if (check_unlink(e, r, &from.parent, &from.shelf, "rename") < 0 || check_new_name(e, &to, r) < 0)
                return -1;
        /* no directory may move into itself */
        for (int64_t p = to.parent.id; is_dir(&from.shelf); ) {
                struct shelf ps;
                if (p == from.shelf.id)
                        return fail(e, EINVAL, "Cannot move \"%s\" into itself", path);
                if (p == ROOT_ID || shelf_by_id(e, p, &ps) != 1)
                        break;
                p = ps.parent_id;
        }
        int64_t t = now(e), mode = from.shelf.mode, zombies;
        if (!startswith(to.name, FAME_LFS_PENDING_ZERO_PREFIX)) {
                if (query_int(e, "SELECT COUNT(*) FROM books_on_shelves s JOIN books b ON b.id = s.book_id"
                              " WHERE s.shelf_id = ? AND b.allocated = 2", 0, &zombies, 1, from.shelf.id) < 0)
                        return -1;
                if (zombies > 0)
                        return fail(e, EBUSY, "The books of %s are waiting to be zeroed; truncate it to 0 before "
                                    "giving it a name without " FAME_LFS_PENDING_ZERO_PREFIX, from.shelf.name);
        }
        if (startswith(to.name, FAME_LFS_PENDING_ZERO_PREFIX)) {
                _cleanup_free_ struct book *books = NULL;
                size_t n;
                if (shelf_books(e, &from.shelf, &books, &n, false) < 0)
                        return -1;
                for (size_t i = 0; i < n; i++)
                        if (books[i].allocated == BOOK_INUSE && set_book_state(e, books[i].id, BOOK_ZOMBIE) < 0)
                                return -1;
                if (mode & 060000)
                        mode = 0100000;
        }
        static const char sql[] = "UPDATE shelves SET name = ?, parent_id = ?, mtime = ?, mode = ? WHERE id = ?";
        sqlite3_stmt *st = stmt(e, sql);
        if (!st)
                return -1;
        sqlite3_bind_text(st, 1, to.name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, to.parent.id);
        sqlite3_bind_int64(st, 3, t);
        sqlite3_bind_int64(st, 4, mode);
        sqlite3_bind_int64(st, 5, from.shelf.id);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
                return dbfail(e, "rename");
        if (is_dir(&from.shelf) && from.parent.id != to.parent.id &&
            (exec_int(e, "UPDATE shelves SET link_count = link_count - 1 WHERE id = ?", 1, from.parent.id) < 0 ||
             exec_int(e, "UPDATE shelves SET link_count = link_count + 1 WHERE id = ?", 1, to.parent.id) < 0))
                return -1;
        struct shelf s2;
        if (shelf_by_id(e, from.shelf.id, &s2) != 1)
                return dbfail(e, "rename");
        *ret = shelf_json(&s2, -1);
        return 0;
}

static int has_children(struct engine *e, int64_t id, bool *ret) {
        int64_t c;
        if (query_int(e, "SELECT COUNT(*) FROM shelves WHERE parent_id = ? AND id > 1", 0, &c, 1, id) < 0)
                return -1;
        *ret = c > 0;
        return 0;
}

static int cmd_destroy_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        int64_t opens;
        bool children;

        if (existing_path(e, r, &res) < 0)
                return -1;
        if (res.shelf.id == ROOT_ID || res.shelf.id == 3)
                return fail(e, EBUSY, "\"%s\" cannot be removed", res.shelf.id == ROOT_ID ? "/" : "lost+found");
        if (check_unlink(e, r, &res.parent, &res.shelf, "remove") < 0)
                return -1;
        if (query_int(e, "SELECT COUNT(*) FROM opened_shelves WHERE shelf_id = ?", 0, &opens, 1, res.shelf.id) < 0)
                return -1;
        if (opens > 0)
                return fail(e, EBUSY, "%s has active opens", res.name);
        if (is_dir(&res.shelf)) {
                if (has_children(e, res.shelf.id, &children) < 0)
                        return -1;
                if (children)
                        return fail(e, ENOTEMPTY, "Directory is not empty");
        }
        _cleanup_free_ struct book *books = NULL;
        size_t n;
        if (shelf_books(e, &res.shelf, &books, &n, false) < 0)
                return -1;
        for (size_t i = 0; i < n; i++)
                if (set_book_state(e, books[i].id, BOOK_ZOMBIE) < 0)
                        return -1;
        e->zombies_dirty = e->zombies_dirty || n > 0;
        if (exec_int(e, "DELETE FROM books_on_shelves WHERE shelf_id = ?", 1, res.shelf.id) < 0 ||
            exec_int(e, "DELETE FROM shelf_xattrs WHERE shelf_id = ?", 1, res.shelf.id) < 0 ||
            exec_int(e, "DELETE FROM links WHERE shelf_id = ?", 1, res.shelf.id) < 0 ||
            exec_int(e, "DELETE FROM shelves WHERE id = ?", 1, res.shelf.id) < 0)
                return -1;
        if (is_dir(&res.shelf) &&
            exec_int(e, "UPDATE shelves SET link_count = link_count - 1 WHERE id = ?", 1, res.parent.id) < 0)
                return -1;
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

static int cmd_get_book(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT id, intlv_group, book_num, allocated, attributes FROM books WHERE id = ?";
        int64_t id;

        if (get_int(e, r, "id", &id) < 0)
                return -1;
        sqlite3_stmt *st = stmt(e, sql);
        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, id);
        int s = sqlite3_step(st);
        struct book b;
        if (s == SQLITE_ROW)
                book_from_row(st, &b);
        sqlite3_reset(st);
        if (s != SQLITE_ROW && s != SQLITE_DONE)
                return dbfail(e, "get book");
        *ret = s == SQLITE_ROW ? book_json(&b) : NULL;
        return 0;
}

static int books_query(struct engine *e, sqlite3_stmt *st, struct json_object **ret) {
        struct json_object *a = json_object_new_array();
        int s;

        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                struct book b;
                book_from_row(st, &b);
                json_object_array_add(a, book_json(&b));
        }
        sqlite3_reset(st);
        *ret = a;
        return s == SQLITE_DONE ? 0 : dbfail(e, "books");
}

static int cmd_get_book_all(struct engine *e, struct req *r, struct json_object **ret) {
        sqlite3_stmt *st = stmt(e, "SELECT id, intlv_group, book_num, allocated, attributes FROM books ORDER BY id");
        (void) r;
        return st ? books_query(e, st, ret) : -1;
}

static int cmp_book_id(const void *a, const void *b) {
        struct json_object *const *x = a, *const *y = b, *ix = NULL, *iy = NULL;
        json_object_object_get_ex(*x, "id", &ix);
        json_object_object_get_ex(*y, "id", &iy);
        int64_t u = json_object_get_int64(ix), v = json_object_get_int64(iy);
        return u < v ? -1 : u > v;
}

static int cmd_get_book_ig(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT id, intlv_group, book_num, allocated, attributes FROM books"
                " WHERE intlv_group = ? AND allocated < 3 ORDER BY id LIMIT ?";
        struct json_object *igs = param(r, "intlv_group");

        if (!igs || !json_object_is_type(igs, json_type_array))
                return fail(e, EINVAL, "get_book_ig: parameter \"intlv_group\" must be an array of interleave groups");
        struct json_object *a = json_object_new_array();
        int64_t left = 9999;
        for (size_t i = 0; i < json_object_array_length(igs) && left > 0; i++) {
                struct json_object *g = json_object_array_get_idx(igs, i);
                if (!json_object_is_type(g, json_type_int)) {
                        json_object_put(a);
                        return fail(e, EINVAL, "get_book_ig: interleave groups must be integers");
                }
                sqlite3_stmt *st = stmt(e, sql);
                if (!st) {
                        json_object_put(a);
                        return -1;
                }
                sqlite3_bind_int64(st, 1, json_object_get_int64(g));
                sqlite3_bind_int64(st, 2, left);
                int s;
                while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                        struct book b;
                        book_from_row(st, &b);
                        json_object_array_add(a, book_json(&b));
                        left--;
                }
                sqlite3_reset(st);
                if (s != SQLITE_DONE) {
                        json_object_put(a);
                        return dbfail(e, "get_book_ig");
                }
        }
        /* ascending over all requested groups */
        json_object_array_sort(a, cmp_book_id);
        *ret = a;
        return 0;
}

static int cmd_get_book_info_all(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] =
                "SELECT b.id, b.allocated, b.attributes, b.intlv_group, s.shelf_id, s.seq_num, sh.creator_id,"
                " sh.size_bytes, sh.book_count, sh.ctime, sh.mtime, sh.name FROM books b"
                " LEFT JOIN books_on_shelves s ON s.book_id = b.id LEFT JOIN shelves sh ON sh.id = s.shelf_id"
                " WHERE b.intlv_group = ? ORDER BY b.id";
        static const char *const names[] = { "id", "allocated", "attributes", "intlv_group", "shelf_id",
                                             "seq_num", "creator_id", "size_bytes", "book_count", "ctime",
                                             "mtime", "name" };
        int64_t ig;

        if (get_int(e, r, "intlv_group", &ig) < 0)
                return -1;
        sqlite3_stmt *st = stmt(e, sql);
        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, ig);
        struct json_object *a = json_object_new_array();
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                struct json_object *o = json_object_new_object();
                for (int c = 0; c < (int) ELEMENTSOF(names); c++) {
                        struct json_object *v = NULL;
                        if (sqlite3_column_type(st, c) == SQLITE_INTEGER)
                                v = json_object_new_int64(sqlite3_column_int64(st, c));
                        else if (sqlite3_column_type(st, c) == SQLITE_TEXT)
                                v = json_object_new_string((const char *) sqlite3_column_text(st, c));
                        json_object_object_add(o, names[c], v);
                }
                json_object_array_add(a, o);
        }
        sqlite3_reset(st);
        *ret = a;
        return s == SQLITE_DONE ? 0 : dbfail(e, "get_book_info_all");
}

/* Checks an xattr name: "a.b[.c...]"; returns the LFS attribute (after "user.LFS.") or NULL. */
static int xattr_name(struct engine *e, const char *name, const char **ret_lfs) {
        const char *dot = strchr(name, '.');

        *ret_lfs = NULL;
        if (!dot)
                return fail(e, EINVAL, "Extended attribute name \"%s\" has no namespace (e.g. user.%s)", name, name);
        const char *second = dot + 1, *dot2 = strchr(second, '.');
        size_t len = dot2 ? (size_t) (dot2 - second) : strlen(second);
        if (len == 3 && strncmp(second, "LFS", 3) == 0) {
                if (!dot2 || strchr(dot2 + 1, '.') || !dot2[1])
                        return fail(e, EINVAL, "LFS xattrs are of form \"user.LFS.xxx\"");
                *ret_lfs = dot2 + 1;
        }
        return 0;
}

static int cmd_get_xattr(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path, *name, *lfs;
        _cleanup_free_ char *value = NULL;
        size_t len = 0;

        if (get_str(e, r, "path", &path) < 0 || get_str(e, r, "xattr", &name) < 0 ||
            resolve_existing(e, path, &res) < 0 || xattr_name(e, name, &lfs) < 0)
                return -1;
        struct json_object *v = NULL;
        if (lfs && streq_(lfs, "AllocationPolicyList")) {
                char buf[256] = "";
                for (size_t i = 0; i < ELEMENTSOF(policies); i++) {
                        if (i)
                                strcat(buf, ",");
                        strcat(buf, policies[i]);
                }
                v = json_object_new_string(buf);
        } else if (lfs && streq_(lfs, "AllocationPolicyDefault")) {
                v = json_object_new_string(e->policy_default);
        } else if (lfs && streq_(lfs, "Interleave")) {
                _cleanup_free_ struct book *books = NULL;
                size_t n;
                if (shelf_books(e, &res.shelf, &books, &n, false) < 0)
                        return -1;
                _cleanup_free_ char *s = malloc(n + 1);
                if (!s)
                        return fail(e, ENOMEM, "Out of memory");
                for (size_t i = 0; i < n; i++)
                        s[i] = (char) (books[i].intlv_group & 0x7F);
                v = json_object_new_string_len(s, (int) n);
        } else {
                if (xattr_get(e, res.shelf.id, name, &value, &len) < 0)
                        return -1;
                if (value)
                        v = json_object_new_string_len(value, (int) len);
        }
        *ret = json_object_new_object();
        json_object_object_add(*ret, "value", v);
        return 0;
}

static int cmd_list_xattrs(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT xattr FROM shelf_xattrs WHERE shelf_id = ?"
                " UNION SELECT 'user.LFS.AllocationPolicyList' UNION SELECT 'user.LFS.Interleave' ORDER BY 1";
        struct resolved res;

        if (existing_path(e, r, &res) < 0)
                return -1;
        sqlite3_stmt *st = stmt(e, sql);
        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, res.shelf.id);
        struct json_object *a = json_object_new_array();
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW)
                json_object_array_add(a, json_object_new_string((const char *) sqlite3_column_text(st, 0)));
        sqlite3_reset(st);
        *ret = json_object_new_object();
        json_object_object_add(*ret, "value", a);
        return s == SQLITE_DONE ? 0 : dbfail(e, "list xattrs");
}

static int save_policy_default(struct engine *e, const char *p) {
        static const char sql[] = "INSERT OR REPLACE INTO fame_settings VALUES ('AllocationPolicyDefault', ?)";
        sqlite3_stmt *st = stmt(e, sql);
        if (!st)
                return -1;
        sqlite3_bind_text(st, 1, p, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        return s == SQLITE_DONE ? 0 : dbfail(e, "policy default");
}

static int cmd_set_xattr(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path, *name, *lfs;
        struct json_object *vj = param(r, "value");

        if (get_str(e, r, "path", &path) < 0 || get_str(e, r, "xattr", &name) < 0 ||
            resolve_existing(e, path, &res) < 0 || xattr_name(e, name, &lfs) < 0)
                return -1;
        if (!vj || json_object_is_type(vj, json_type_null))
                return fail(e, EINVAL, "Trying to set a null value");
        if (!json_object_is_type(vj, json_type_string))
                return fail(e, EINVAL, "set_xattr: parameter \"value\" must be a string");
        const char *value = json_object_get_string(vj);
        size_t len = (size_t) json_object_get_string_len(vj);
        if (check_access(e, r, &res.shelf, MAY_WRITE, "set attributes of") < 0)
                return -1;
        *ret = NULL;
        if (!lfs)
                return xattr_set(e, res.shelf.id, name, value, len);
        if (streq_(lfs, "AllocationPolicy")) {
                if (strlen(value) != len || !known_policy(value))
                        return fail(e, ENOTSUP, "Bad AllocationPolicy \"%.64s\"; one of user.LFS.AllocationPolicyList",
                                    value);
                return xattr_set(e, res.shelf.id, name, value, len);
        }
        if (streq_(lfs, "AllocationPolicyDefault")) {
                if (strlen(value) != len || !known_policy(value) || streq_(value, "RequestIG"))
                        return fail(e, ENOTSUP, "Bad AllocationPolicy \"%.64s\" for the default", value);
                if (xattr_set(e, res.shelf.id, "user.LFS.AllocationPolicy", value, len) < 0 ||
                    save_policy_default(e, value) < 0)
                        return -1;
                snprintf(e->policy_default, sizeof e->policy_default, "%s", value);
                return 0;
        }
        if (streq_(lfs, "InterleaveRequest")) {
                for (size_t i = 0; i < len; i++)
                        if (!find_ig(e, (unsigned char) value[i]))
                                return fail(e, ENOTSUP, "Requested IGs not subset of known IGs (%u is unknown)",
                                            (unsigned char) value[i]);
                _cleanup_free_ char *pos = NULL;
                if (xattr_get(e, res.shelf.id, "user.LFS.InterleaveRequestPos", &pos, NULL) < 0)
                        return -1;
                if (!pos)
                        return fail(e, EINVAL, "\"%s\" has no interleave position (only files have)", res.name);
                if (xattr_set(e, res.shelf.id, name, value, len) < 0)
                        return -1;
                return xattr_set(e, res.shelf.id, "user.LFS.InterleaveRequestPos", "0", 1);
        }
        if (streq_(lfs, "AllocationPolicyList") || streq_(lfs, "Interleave") || streq_(lfs, "InterleaveRequestPos"))
                return fail(e, ENOTSUP, "Setting %s is prohibited", name);
        return fail(e, ENOTSUP, "Bad LFS attribute %s", name);
}

static int cmd_remove_xattr(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path, *name, *lfs;

        if (get_str(e, r, "path", &path) < 0 || get_str(e, r, "xattr", &name) < 0 ||
            resolve_existing(e, path, &res) < 0 || xattr_name(e, name, &lfs) < 0)
                return -1;
        if (lfs)
                return fail(e, EINVAL, "Removal of LFS xattrs is prohibited");
        if (check_access(e, r, &res.shelf, MAY_WRITE, "remove attributes of") < 0)
                return -1;
        static const char sql[] = "DELETE FROM shelf_xattrs WHERE shelf_id = ? AND xattr = ?";
        sqlite3_stmt *st = stmt(e, sql);
        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, res.shelf.id);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        *ret = NULL;
        return s == SQLITE_DONE ? 0 : dbfail(e, "remove xattr");
}

static int cmd_set_am_time(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t mtime;
        struct json_object *at = param(r, "atime");

        if (get_str(e, r, "path", &path) < 0 || get_int(e, r, "mtime", &mtime) < 0)
                return -1;
        if (!at || !(json_object_is_type(at, json_type_int) || json_object_is_type(at, json_type_double)))
                return fail(e, EINVAL, "set_am_time: parameter \"atime\" must be a number");
        if (resolve_existing(e, path, &res) < 0 || check_access(e, r, &res.shelf, MAY_WRITE, "set times of") < 0)
                return -1;
        *ret = NULL;
        return exec_int(e, "UPDATE shelves SET mtime = ? WHERE id = ?", 2, mtime ? mtime : now(e), res.shelf.id);
}

static int cmd_mkdir(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t mode;

        if (get_str(e, r, "path", &path) < 0 || get_int(e, r, "mode", &mode) < 0 || resolve(e, path, &res) < 0)
                return -1;
        if (!res.found) {
                if (check_new_name(e, &res, r) < 0 ||
                    insert_shelf(e, r, res.parent.id, res.name, S_IFDIR | (mode & 07777), 2, &res.shelf) < 0 ||
                    exec_int(e, "UPDATE shelves SET link_count = link_count + 1 WHERE id = ?", 1, res.parent.id) < 0)
                        return -1;
        }
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

static int cmd_rmdir(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        bool children;

        if (existing_path(e, r, &res) < 0)
                return -1;
        if (!is_dir(&res.shelf))
                return fail(e, ENOTDIR, "\"%s\" is not a directory", res.name);
        if (res.shelf.id == ROOT_ID)
                return fail(e, ENOTEMPTY, "Directory is not empty");
        if (has_children(e, res.shelf.id, &children) < 0)
                return -1;
        if (children)
                return fail(e, ENOTEMPTY, "Directory is not empty");
        if (res.shelf.id == 3)
                return fail(e, EBUSY, "lost+found cannot be removed");
        if (check_unlink(e, r, &res.parent, &res.shelf, "remove") < 0 ||
            exec_int(e, "DELETE FROM shelves WHERE id = ?", 1, res.shelf.id) < 0 ||
            exec_int(e, "DELETE FROM shelf_xattrs WHERE shelf_id = ?", 1, res.shelf.id) < 0 ||
            exec_int(e, "UPDATE shelves SET link_count = link_count - 1 WHERE id = ?", 1, res.parent.id) < 0)
                return -1;
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

static int cmd_symlink(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path, *target;

        if (get_str(e, r, "path", &path) < 0 || get_str(e, r, "target", &target) < 0 || resolve(e, path, &res) < 0)
                return -1;
        if (!res.found) {
                if (check_new_name(e, &res, r) < 0 ||
                    insert_shelf(e, r, res.parent.id, res.name, S_IFLNK | 0777, 1, &res.shelf) < 0)
                        return -1;
                static const char sql[] = "INSERT INTO links VALUES (?, ?, NULL)";
                sqlite3_stmt *st = stmt(e, sql);
                if (!st)
                        return -1;
                sqlite3_bind_int64(st, 1, res.shelf.id);
                sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
                int s = sqlite3_step(st);
                sqlite3_reset(st);
                if (s != SQLITE_DONE)
                        return dbfail(e, "symlink");
        }
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

static int cmd_readlink(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT target FROM links WHERE shelf_id = ?";
        struct resolved res;

        if (existing_path(e, r, &res) < 0)
                return -1;
        if (!S_ISLNK((mode_t) res.shelf.mode))
                return fail(e, EINVAL, "\"%s\" is not a symbolic link", res.name);
        sqlite3_stmt *st = stmt(e, sql);
        if (!st)
                return -1;
        sqlite3_bind_int64(st, 1, res.shelf.id);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
                *ret = json_object_new_string((const char *) sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        if (s == SQLITE_DONE)
                return fail(e, ENOENT, "The symbolic link \"%s\" has no target", res.name);
        return s == SQLITE_ROW ? 0 : dbfail(e, "readlink");
}

static int cmd_get_shelf_path(struct engine *e, struct req *r, struct json_object **ret) {
        const char *name;
        int64_t parent;
        char path[4096], tmp[4096];

        if (get_str(e, r, "name", &name) < 0 || get_int(e, r, "parent_id", &parent) < 0)
                return -1;
        snprintf(path, sizeof path, "/%s", name);
        for (int depth = 0; parent != ROOT_ID; depth++) {
                struct shelf p;
                if (depth > 256 || shelf_by_id(e, parent, &p) != 1)
                        return fail(e, ENOENT, "No shelf with id %lld on the path of %s", (long long) parent, name);
                snprintf(tmp, sizeof tmp, "/%s%s", p.name, path);
                memcpy(path, tmp, sizeof path);
                parent = p.parent_id;
        }
        *ret = json_object_new_string(path);
        return 0;
}

static int cmd_send_oob(struct engine *e, struct req *r, struct json_object **ret) {
        (void) e;
        *ret = json_object_new_object();
        json_object_object_add(*ret, "value", json_object_new_int64(r->node_id));
        return 0;
}

static int cmd_update_node_soc_status(struct engine *e, struct req *r, struct json_object **ret) {
        int64_t v[6];
        static const char *const names[] = { "status", "cpu_percent", "rootfs_percent", "network_in",
                                             "network_out", "mem_percent" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (get_int(e, r, names[i], &v[i]) < 0)
                        return -1;
        *ret = NULL;
        return exec_int(e, "UPDATE SOCs SET status = ?, cpu_percent = ?, rootfs_percent = ?, network_in = ?,"
                        " network_out = ?, mem_percent = ?, heartbeat = ? WHERE node_id = ?", 8,
                        v[0], v[1], v[2], v[3], v[4], v[5], now(e), r->node_id);
}

static int cmd_update_node_mc_status(struct engine *e, struct req *r, struct json_object **ret) {
        int64_t status;

        if (get_int(e, r, "status", &status) < 0)
                return -1;
        *ret = NULL;
        return exec_int(e, "UPDATE FAModules SET status = ? WHERE node_id = ?", 2, status, r->node_id);
}

static int cmd_kill_zombie_books(struct engine *e, struct req *r, struct json_object **ret) {
        (void) e; (void) r;
        *ret = NULL;
        return 0;
}

/* FAM/E: the owner and creator of a shelf (uid, gid, node), with the shelf record. */
static int cmd_fame_stat_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;

        if (existing_path(e, r, &res) < 0)
                return -1;
        *ret = shelf_json(&res.shelf, -1);
        json_object_object_add(*ret, "uid", json_object_new_int64(res.shelf.uid));
        json_object_object_add(*ret, "gid", json_object_new_int64(res.shelf.gid));
        return 0;
}

/* FAM/E: access(2) for the request's uid/gid: mode is R_OK|W_OK|X_OK bits, 0 for existence. */
static int cmd_fame_access(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        int64_t mode;

        if (get_int(e, r, "mode", &mode) < 0 || existing_path(e, r, &res) < 0)
                return -1;
        if (mode & ~7)
                return fail(e, EINVAL, "fame_access: mode %lld is not a combination of 4, 2 and 1", (long long) mode);
        if (r->uid == 0 && (mode & 1) && !is_dir(&res.shelf) && !(res.shelf.mode & 0111))
                return fail(e, EACCES, "Permission denied: \"%s\" is not executable", res.name);
        if ((mode & 6) && check_access(e, r, &res.shelf, (int) (mode & 6), "access") < 0)
                return -1;
        if ((mode & 1) && r->uid != 0 && !may(r, &res.shelf, 1))
                return fail(e, EACCES, "Permission denied: search/execute \"%s\"", res.name);
        *ret = NULL;
        return 0;
}

/* FAM/E: chmod (owner or root) */
static int cmd_fame_chmod(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t mode;

        if (get_str(e, r, "path", &path) < 0 || get_int(e, r, "mode", &mode) < 0 || resolve_existing(e, path, &res) < 0)
                return -1;
        if (r->uid != 0 && r->uid != res.shelf.uid)
                return fail(e, EPERM, "Only the owner (uid %lld) or root may change the mode of \"%s\"",
                            (long long) res.shelf.uid, res.name);
        *ret = NULL;
        return exec_int(e, "UPDATE shelves SET mode = ? WHERE id = ?", 2,
                        (res.shelf.mode & S_IFMT) | (mode & 07777), res.shelf.id);
}

/* FAM/E: chown (root only; -1 keeps a value) */
static int cmd_fame_chown(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t uid, gid;

        if (get_str(e, r, "path", &path) < 0 || get_int(e, r, "uid", &uid) < 0 || get_int(e, r, "gid", &gid) < 0 ||
            resolve_existing(e, path, &res) < 0)
                return -1;
        if (r->uid != 0)
                return fail(e, EPERM, "Only root may change the owner of \"%s\"", res.name);
        *ret = NULL;
        return exec_int(e, "UPDATE shelves SET uid = ?, gid = ? WHERE id = ?", 3,
                        uid < 0 ? res.shelf.uid : uid, gid < 0 ? res.shelf.gid : gid, res.shelf.id);
}

struct command {
        const char *name;
        command_fn fn;
        bool writes;
        const char *params[7];
};

static const struct command commands[] = {
        { "version", cmd_version, false, {} },
        { "get_fs_stats", cmd_get_fs_stats, false, {} },
        { "create_shelf", cmd_create_shelf, true, { "path", "mode" } },
        { "get_shelf", cmd_get_shelf, false, { "path" } },
        { "open_shelf", cmd_open_shelf, true, { "path" } },
        { "close_shelf", cmd_close_shelf, true, { "id", "open_handle" } },
        { "list_shelves", cmd_list_shelves, false, { "path" } },
        { "list_shelf_books", cmd_list_shelf_books, false, { "path" } },
        { "list_open_shelves", cmd_list_open_shelves, false, {} },
        { "resize_shelf", cmd_resize_shelf, true, { "path", "id", "size_bytes", "zero_enabled" } },
        { "rename_shelf", cmd_rename_shelf, true, { "path", "id", "newpath" } },
        { "destroy_shelf", cmd_destroy_shelf, true, { "path" } },
        { "get_book", cmd_get_book, false, { "id" } },
        { "get_book_all", cmd_get_book_all, false, {} },
        { "get_book_ig", cmd_get_book_ig, false, { "intlv_group" } },
        { "get_book_info_all", cmd_get_book_info_all, false, { "intlv_group" } },
        { "get_xattr", cmd_get_xattr, false, { "path", "xattr" } },
        { "list_xattrs", cmd_list_xattrs, false, { "path" } },
        { "set_xattr", cmd_set_xattr, true, { "path", "xattr", "value" } },
        { "remove_xattr", cmd_remove_xattr, true, { "path", "xattr" } },
        { "set_am_time", cmd_set_am_time, true, { "path", "atime", "mtime" } },
        { "mkdir", cmd_mkdir, true, { "path", "mode" } },
        { "rmdir", cmd_rmdir, true, { "path" } },
        { "symlink", cmd_symlink, true, { "path", "target" } },
        { "readlink", cmd_readlink, false, { "path" } },
        { "get_shelf_path", cmd_get_shelf_path, false, { "name", "parent_id" } },
        { "send_OOB", cmd_send_oob, false, { "msg" } },
        { "update_node_soc_status", cmd_update_node_soc_status, true,
          { "status", "cpu_percent", "rootfs_percent", "network_in", "network_out", "mem_percent" } },
        { "update_node_mc_status", cmd_update_node_mc_status, true, { "status" } },
        { "kill_zombie_books", cmd_kill_zombie_books, false, {} },
        { "fame_stat_shelf", cmd_fame_stat_shelf, false, { "path" } },
        { "fame_access", cmd_fame_access, false, { "path", "mode" } },
        { "fame_chmod", cmd_fame_chmod, true, { "path", "mode" } },
        { "fame_chown", cmd_fame_chown, true, { "path", "uid", "gid" } },
};

static const struct command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq_(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

/* Exactly the command's parameters, plus "command" and "context". */
static int check_params(struct engine *e, const struct command *c, struct req *r) {
        size_t want = 0;

        for (; want < ELEMENTSOF(c->params) && c->params[want]; want++)
                if (!param(r, c->params[want]))
                        return fail(e, EINVAL, "%s: missing parameter \"%s\"", c->name, c->params[want]);
        json_object_object_foreach(r->obj, key, val) {
                (void) val;
                if (streq_(key, "command") || streq_(key, "context"))
                        continue;
                bool known = false;
                for (size_t i = 0; i < want; i++)
                        known = known || streq_(key, c->params[i]);
                if (!known)
                        return fail(e, EINVAL, "%s: unknown parameter \"%s\"", c->name, key);
        }
        return 0;
}

static int context_int(struct json_object *ctx, const char *name, int64_t def, int64_t *ret) {
        struct json_object *v;

        *ret = def;
        if (!json_object_object_get_ex(ctx, name, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (json_object_is_type(v, json_type_int)) {
                *ret = json_object_get_int64(v);
                return 0;
        }
        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                char *end = NULL;
                errno = 0;
                long long n = strtoll(s, &end, 10);
                if (errno == 0 && end != s && *end == 0) {
                        *ret = n;
                        return 0;
                }
        }
        return -EINVAL;
}

/* Node check and heartbeat (protocol §8). */
static int check_node(struct engine *e, struct req *r, uint32_t pinned) {
        int64_t node;

        if (context_int(r->context, "node_id", -1, &node) < 0)
                return fail(e, EINVAL, "Bad node enumeration value: context.node_id must be an integer");
        if (node < 1 || node > FAME_LIBRARIAN_MAX_NODE)
                return fail(e, EINVAL, "Bad node enumeration value %lld (1-%d)", (long long) node, FAME_LIBRARIAN_MAX_NODE);
        struct node_info *n = (struct node_info *) find_node(e, node);
        if (!n)
                return fail(e, EACCES, "Node is not configured in Librarian topology (node_id %lld)", (long long) node);
        if (pinned && node != pinned)
                return fail(e, EACCES, "This connection belongs to node %u; it may not act as node %lld",
                            pinned, (long long) node);
        r->node_id = node;
        r->enc = n->enc;
        r->has_node = true;
        int64_t t = now(e);
        if (n->heartbeat != t) {
                if (exec_int(e, "UPDATE SOCs SET heartbeat = ? WHERE node_id = ?", 2, t, node) < 0)
                        return -1;
                n->heartbeat = t;
        }
        return 0;
}

static int run(struct engine *e, struct req *r, uint32_t pinned, struct json_object **ret, bool *ret_has_value) {
        struct json_object *cmd;

        if (!json_object_object_get_ex(r->obj, "command", &cmd))
                return fail(e, ENOSYS, "engine failed lookup on \"'command'\"");
        if (!json_object_is_type(cmd, json_type_string))
                return fail(e, EINVAL, "\"command\" must be a string");
        r->command = json_object_get_string(cmd);
        const struct command *c = find_command(r->command);
        if (!c)
                return fail(e, ENOSYS, "engine failed lookup on \"'%.64s'\"", r->command);
        if (!json_object_object_get_ex(r->obj, "context", &r->context))
                return fail(e, ENOSYS, "engine failed lookup on \"'context'\"");
        if (!json_object_is_type(r->context, json_type_object))
                return fail(e, EINVAL, "\"context\" must be an object");
        if (check_node(e, r, pinned) < 0)
                return -1;
        if (context_int(r->context, "uid", NOBODY, &r->uid) < 0 || context_int(r->context, "gid", NOBODY, &r->gid) < 0 ||
            context_int(r->context, "pid", 0, &r->pid) < 0)
                return fail(e, EINVAL, "context: uid, gid and pid must be integers");
        if (check_params(e, c, r) < 0)
                return -1;

        if (sqlite3_exec(e->db, c->writes ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
                return dbfail(e, "begin");
        *ret = NULL;
        if (c->fn(e, r, ret) < 0) {
                json_object_put(*ret);
                *ret = NULL;
                sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
                return -1;
        }
        if (sqlite3_exec(e->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
                json_object_put(*ret);
                *ret = NULL;
                dbfail(e, "commit");
                sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
                return -1;
        }
        *ret_has_value = true;
        return 0;
}

int engine_handle(struct engine *e, struct json_object *request, struct engine_request_info *info,
                  char **ret_reply, size_t *ret_len) {
        struct req r = { .obj = request, .conn = info->conn };
        struct json_object *value = NULL;
        bool has_value = false;
        int k;

        e->err = 0;
        e->errmsg[0] = 0;
        e->tail_book = e->tail_from = e->tail_len = 0;
        info->tail_book = info->tail_from = info->tail_len = 0;
        info->oob = NULL;
        info->node_id = 0;
        info->command = NULL;
        if (run(e, &r, info->pinned_node, &value, &has_value) < 0 || !has_value) {
                info->command = r.command;
                info->node_id = r.has_node ? (uint32_t) r.node_id : 0;
                return proto_error(e->errmsg, e->err, ret_reply, ret_len);
        }
        info->command = r.command;
        info->node_id = (uint32_t) r.node_id;
        info->tail_book = e->tail_book;
        info->tail_from = e->tail_from;
        info->tail_len = e->tail_len;
        if (streq_(r.command, "send_OOB"))
                info->oob = json_object_get(param(&r, "msg"));
        k = proto_reply(value, r.context, ret_reply, ret_len);
        json_object_put(value);
        if (k == -EINVAL)
                return proto_error("Librarian could not encode its reply", EPROTO, ret_reply, ret_len);
        return k;
}

int engine_handle_text(struct engine *e, const char *request, char **ret_reply) {
        struct json_object *o = json_tokener_parse(request);
        struct engine_request_info info = {};
        size_t len;
        int r;

        if (!o)
                return -EINVAL;
        r = engine_handle(e, o, &info, ret_reply, &len);
        json_object_put(info.oob);
        json_object_put(o);
        return r;
}

/* ---------------------------------------------------------------------------------------- */
/* open */

static int load(struct engine *e, char **ret_error) {
        sqlite3_stmt *st = NULL;
        int r = -EIO;

#define ERR(...) do { if (ret_error) { free(*ret_error); if (asprintf(ret_error, __VA_ARGS__) < 0) *ret_error = NULL; } goto out; } while (0)
        if (sqlite3_prepare_v2(e->db, "SELECT schema_version, book_size_bytes, nvm_bytes_total, books_total,"
                               " nodes_total FROM globals", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
                ERR("'%s' is not a Librarian database (%s); create one with fame librarian init",
                    sqlite3_db_filename(e->db, "main"), sqlite3_errmsg(e->db));
        const char *version = (const char *) sqlite3_column_text(st, 0);
        if (!version || !streq_(version, LIBRARIAN_SCHEMA))
                ERR("'%s' has schema \"%s\", not \"%s\"; create a new one with fame librarian init",
                    sqlite3_db_filename(e->db, "main"), version ? version : "", LIBRARIAN_SCHEMA);
        e->geo.book_size = (uint64_t) sqlite3_column_int64(st, 1);
        e->geo.nvm_bytes_total = (uint64_t) sqlite3_column_int64(st, 2);
        e->geo.books_total = (uint64_t) sqlite3_column_int64(st, 3);
        e->geo.nodes_total = (uint32_t) sqlite3_column_int64(st, 4);
        sqlite3_finalize(st);
        st = NULL;
        if (!is_power_of_two_u64(e->geo.book_size))
                ERR("'%s': book size %llu is not a power of two", sqlite3_db_filename(e->db, "main"),
                    (unsigned long long) e->geo.book_size);

        if (sqlite3_prepare_v2(e->db, "SELECT f.node_id, f.enc, s.heartbeat FROM FRDnodes f"
                               " LEFT JOIN SOCs s ON s.node_id = f.node_id ORDER BY f.node_id", -1, &st, NULL) != SQLITE_OK)
                ERR("'%s': %s", sqlite3_db_filename(e->db, "main"), sqlite3_errmsg(e->db));
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct node_info *nn = realloc(e->nodes, (e->n_nodes + 1) * sizeof *nn);
                uint32_t *ni = realloc(e->node_ids, (e->n_nodes + 1) * sizeof *ni);
                if (nn)
                        e->nodes = nn;
                if (ni)
                        e->node_ids = ni;
                if (!nn || !ni) {
                        r = -ENOMEM;
                        goto out;
                }
                e->nodes[e->n_nodes] = (struct node_info) {
                        (uint32_t) sqlite3_column_int64(st, 0), (uint32_t) sqlite3_column_int64(st, 1),
                        sqlite3_column_int64(st, 2) };
                e->node_ids[e->n_nodes] = e->nodes[e->n_nodes].node_id;
                e->n_nodes++;
        }
        sqlite3_finalize(st);
        st = NULL;

        if (sqlite3_prepare_v2(e->db, "SELECT intlv_group & 65535, COUNT(*), MIN(id), MAX(intlv_group >> 16)"
                               " FROM books GROUP BY intlv_group & 65535 ORDER BY 1", -1, &st, NULL) != SQLITE_OK)
                ERR("'%s': %s", sqlite3_db_filename(e->db, "main"), sqlite3_errmsg(e->db));
        uint64_t start = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct ig_info *ni = realloc(e->igs, (e->n_igs + 1) * sizeof *ni);
                if (!ni) {
                        r = -ENOMEM;
                        goto out;
                }
                e->igs = ni;
                int mode = (int) sqlite3_column_int64(st, 3);
                e->geo.bii_mode = mode;
                e->igs[e->n_igs] = (struct ig_info) {
                        .ig = (uint32_t) sqlite3_column_int64(st, 0),
                        .books = (uint64_t) sqlite3_column_int64(st, 1),
                        .base = mode == 1 ? sqlite3_column_int64(st, 2) : -1,
                        .start = start,
                };
                start += e->igs[e->n_igs].books;
                e->n_igs++;
        }
        sqlite3_finalize(st);
        st = NULL;

        snprintf(e->policy_default, sizeof e->policy_default, "RandomBooks");
        if (sqlite3_prepare_v2(e->db, "SELECT value FROM fame_settings WHERE name = 'AllocationPolicyDefault'",
                               -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
                const char *p = (const char *) sqlite3_column_text(st, 0);
                if (p && known_policy(p))
                        snprintf(e->policy_default, sizeof e->policy_default, "%s", p);
        }
        r = 0;
out:
        sqlite3_finalize(st);
        return r;
#undef ERR
}

/*
 * A database made by tm-book-register (or an older FAM/E) gets FAM/E's owner columns and
 * indexes; its existing shelves are owned by root.  Idempotent.
 */
static int upgrade(struct engine *e, const char *path, char **ret_error) {
        sqlite3_stmt *st = NULL;
        bool has_uid = false, has_conn = false;
        char *msg = NULL;

        if (sqlite3_prepare_v2(e->db, "PRAGMA table_info(shelves)", -1, &st, NULL) == SQLITE_OK)
                while (sqlite3_step(st) == SQLITE_ROW)
                        has_uid = has_uid || streq_((const char *) sqlite3_column_text(st, 1), "uid");
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(e->db, "PRAGMA table_info(opened_shelves)", -1, &st, NULL) == SQLITE_OK)
                while (sqlite3_step(st) == SQLITE_ROW)
                        has_conn = has_conn || streq_((const char *) sqlite3_column_text(st, 1), "fame_conn");
        sqlite3_finalize(st);
        if (!has_conn &&
            sqlite3_exec(e->db, "ALTER TABLE opened_shelves ADD COLUMN fame_conn INT DEFAULT 0;", NULL, NULL, &msg) != SQLITE_OK)
                goto fail;
        if (sqlite3_exec(e->db,
                         "BEGIN IMMEDIATE;"
                         "CREATE INDEX IF NOT EXISTS IDX_books_allocated ON books (allocated, intlv_group);"
                         "CREATE INDEX IF NOT EXISTS IDX_shelves_parent ON shelves (parent_id, name);"
                         "CREATE UNIQUE INDEX IF NOT EXISTS IDX_bos_book ON books_on_shelves (book_id);"
                         "CREATE UNIQUE INDEX IF NOT EXISTS IDX_bos_shelf ON books_on_shelves (shelf_id, seq_num);"
                         "CREATE INDEX IF NOT EXISTS IDX_opened_shelf ON opened_shelves (shelf_id);"
                         "COMMIT;", NULL, NULL, &msg) != SQLITE_OK)
                goto fail;
        if (!has_uid &&
            sqlite3_exec(e->db, "BEGIN IMMEDIATE;"
                         "ALTER TABLE shelves ADD COLUMN uid INT DEFAULT 0;"
                         "ALTER TABLE shelves ADD COLUMN gid INT DEFAULT 0;"
                         "COMMIT;", NULL, NULL, &msg) != SQLITE_OK)
                goto fail;
        return 0;
fail:
        sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
        if (ret_error && asprintf(ret_error, "Cannot use the Librarian database '%s': %s (a book on two shelves "
                                  "needs fsck_lfs first)", path, msg ? msg : sqlite3_errmsg(e->db)) < 0)
                *ret_error = NULL;
        sqlite3_free(msg);
        return -EIO;
}

int engine_open(const char *path, struct engine **ret, char **ret_error) {
        struct engine *e = calloc(1, sizeof *e);
        int r;

        if (!e)
                return -ENOMEM;
        if (access(path, F_OK) < 0) {
                r = negative_errno();
                if (ret_error && asprintf(ret_error, "No Librarian database '%s': %s; create it with "
                                          "fame librarian init --db %s --topology FILE", path, strerror(-r), path) < 0)
                        *ret_error = NULL;
                free(e);
                return r;
        }
        if (sqlite3_open_v2(path, &e->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
                if (ret_error && asprintf(ret_error, "Failed to open the Librarian database '%s': %s", path,
                                          e->db ? sqlite3_errmsg(e->db) : "out of memory") < 0)
                        *ret_error = NULL;
                engine_free(e);
                return -EIO;
        }
        sqlite3_busy_timeout(e->db, 5000);
        char *msg = NULL;
        if (sqlite3_exec(e->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"
                         "CREATE TEMP TABLE temp_taken (value INTEGER PRIMARY KEY);"
                         "CREATE TABLE IF NOT EXISTS fame_settings (name TEXT PRIMARY KEY, value TEXT);",
                         NULL, NULL, &msg) != SQLITE_OK) {
                if (ret_error && asprintf(ret_error, "Failed to open the Librarian database '%s': %s", path,
                                          msg ? msg : sqlite3_errmsg(e->db)) < 0)
                        *ret_error = NULL;
                sqlite3_free(msg);
                engine_free(e);
                return -EIO;
        }
        e->zombies_dirty = true;       /* a previous run may have left some */
        r = upgrade(e, path, ret_error);
        if (r >= 0)
                r = load(e, ret_error);
        if (r >= 0) {
                /* the connections that held handles are gone with the previous run */
                if (query_int(e, "SELECT COALESCE(MAX(id), 0) + 1 FROM opened_shelves", 1, &e->next_handle, 0) < 0 ||
                    exec_int(e, "DELETE FROM opened_shelves", 0) < 0) {
                        if (ret_error && asprintf(ret_error, "Failed to clear the open handles of '%s': %s", path,
                                                  e->errmsg) < 0)
                                *ret_error = NULL;
                        r = -EIO;
                }
        }
        if (r < 0) {
                engine_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

void engine_free(struct engine *e) {
        if (!e)
                return;
        for (size_t i = 0; i < e->n_stmts; i++)
                sqlite3_finalize(e->stmts[i].st);
        if (e->db)
                sqlite3_close(e->db);
        free(e->nodes);
        free(e->node_ids);
        free(e->igs);
        free(e->inflight);
        free(e);
}

void engine_get_geometry(const struct engine *e, struct engine_geometry *ret) {
        *ret = e->geo;
}

int engine_book_offset(const struct engine *e, uint64_t book_id, uint64_t *ret_offset) {
        if (e->geo.bii_mode != 0 || (book_id & ((UINT64_C(1) << 33) - 1)) || (book_id >> 53))
                return -EINVAL;
        uint32_t ig = (uint32_t) (book_id >> 46) & 0x7F;
        uint64_t num = (book_id >> 33) & 0x1FFF;
        const struct ig_info *g = find_ig(e, ig);
        if (!g || num >= g->books)
                return -EINVAL;
        *ret_offset = (g->start + num) * e->geo.book_size;
        return 0;
}

size_t engine_node_ids(const struct engine *e, const uint32_t **ret) {
        *ret = e->node_ids;
        return e->n_nodes;
}

void engine_set_clock(struct engine *e, double (*clock)(void)) {
        e->clock = clock;
}
