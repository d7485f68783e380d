/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian's shelves and paths (engine-internal.h): path resolution from the root, access
 * control (owner, group and other bits; directories are sticky; uid 0 may do everything), open
 * handles (they belong to a connection), and the commands on shelves and directories: create,
 * open, close, get, list, rename, destroy, mkdir, rmdir, symlink, readlink, times, and FAM/E's
 * fame_stat_shelf, fame_access, fame_chmod and fame_chown.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine-internal.h"
#include "fame-constants.h"

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

/* 1 found, 0 not found, < 0 error */
int shelf_by_id(struct engine *e, int64_t id, struct shelf *ret) {
        static const char sql[] = "SELECT " SHELF_COLUMNS " FROM shelves WHERE id = ?";
        sqlite3_stmt *st;
        int k;

        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, id);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
                shelf_from_row(st, ret);
        sqlite3_reset(st);
        if (r == SQLITE_ROW)
                return 1;
        if (r == SQLITE_DONE)
                return 0;
        return engine_dbfail(e, "shelf lookup");
}

static int child_by_name(struct engine *e, int64_t parent, const char *name, struct shelf *ret) {
        static const char sql[] = "SELECT " SHELF_COLUMNS
                " FROM shelves WHERE parent_id = ? AND name = ? AND id != parent_id AND id > 1";
        sqlite3_stmt *st;
        int k;

        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
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
        return engine_dbfail(e, "name lookup");
}

bool shelf_is_dir(const struct shelf *s) {
        return S_ISDIR((mode_t) s->mode);
}

/*
 * Resolves a path from the root: components split by '/', empty ones and "." ignored, ".."
 * goes up.  A missing or non-directory intermediate component is an error (ENOENT,
 * ENOTDIR); the last one may be missing (found = false).
 */
int path_resolve(struct engine *e, const char *path, struct resolved *ret) {
        char comp[NAME_MAX_LEN + 1];
        const char *p = path;
        int r;

        r = shelf_by_id(e, ROOT_ID, &ret->shelf);
        if (r <= 0)
                return r < 0 ? r : engine_fail(e, EREMOTEIO, "The root shelf is missing from the database");
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
                        return engine_fail(e, ENAMETOOLONG, "Shelf name too long in \"%s\" (at most %d bytes)",
                                           path, NAME_MAX_LEN);
                memcpy(comp, p, n);
                comp[n] = 0;
                p += n;
                if (streq_(comp, "."))
                        continue;
                if (!ret->found)
                        return engine_fail(e, ENOENT, "No such directory \"%s\" in \"%s\"", ret->name, path);
                if (!shelf_is_dir(&ret->shelf))
                        return engine_fail(e, ENOTDIR, "\"%s\" in \"%s\" is not a directory", ret->shelf.name, path);
                if (e->req && (r = shelf_check_access(e, e->req, &ret->shelf, MAY_EXEC, "search directory")) < 0)
                        return r;
                if (streq_(comp, "..")) {
                        r = shelf_by_id(e, ret->shelf.parent_id, &ret->shelf);
                        if (r <= 0)
                                return r < 0 ? r : engine_fail(e, ENOENT, "Broken parent link in \"%s\"", path);
                        r = shelf_by_id(e, ret->shelf.parent_id, &ret->parent);
                        if (r <= 0)
                                return r < 0 ? r : engine_fail(e, ENOENT, "Broken parent link in \"%s\"", path);
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

int path_resolve_existing(struct engine *e, const char *path, struct resolved *ret) {
        int k;

        k = path_resolve(e, path, ret);
        if (k < 0)
                return k;
        if (!ret->found)
                return engine_fail(e, ENOENT, "no such shelf %s", ret->name);
        return 0;
}

struct json_object *shelf_json(const struct shelf *s, int64_t open_handle) {
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

/* ---------------------------------------------------------------------------------------- */
/* access control */

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

int shelf_check_access(struct engine *e, const struct req *r, const struct shelf *s, int want,
                       const char *what) {
        if (may(r, s, want))
                return 0;
        return engine_fail(e, EACCES, "Permission denied: %s \"%s\" (mode %04o, owner %lld:%lld) for uid %lld "
                           "gid %lld on node %lld", what, s->name, (unsigned) (s->mode & 07777),
                           (long long) s->uid, (long long) s->gid, (long long) r->uid, (long long) r->gid,
                           (long long) r->node_id);
}

/* Removing or renaming s out of directory dir: write permission on dir, and (sticky
 * semantics) ownership of s or of dir. */
static int check_unlink(struct engine *e, const struct req *r, const struct shelf *dir,
                        const struct shelf *s, const char *what) {
        int k;

        k = shelf_check_access(e, r, dir, MAY_WRITE, "write to directory");
        if (k < 0)
                return k;
        if (r->uid == 0 || r->uid == s->uid || r->uid == dir->uid)
                return 0;
        return engine_fail(e, EACCES, "Permission denied: only the owner (uid %lld) may %s \"%s\"",
                           (long long) s->uid, what, s->name);
}

int req_existing_path(struct engine *e, const struct req *r, struct resolved *ret) {
        const char *path;
        int k;

        k = req_str(e, r, "path", &path);
        if (k < 0)
                return k;
        return path_resolve_existing(e, path, ret);
}

/* ---------------------------------------------------------------------------------------- */
/* open handles */

int engine_save_next_handle(struct engine *e) {
        return engine_exec(e, "INSERT OR REPLACE INTO fame_settings (name, value) VALUES ('NextOpenHandle', ?)", 1,
                           e->next_handle);
}

/* Deletes the handles sql selects (with its one argument) and records the next handle number
 * in the same transaction: the numbers of deleted handles are not handed out again after a
 * restart either. */
static int drop_handles(struct engine *e, const char *sql, int64_t arg, size_t *ret_n) {
        int k;

        if (sqlite3_exec(e->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
                return -EIO;
        k = engine_exec(e, sql, 1, arg);
        int changed = sqlite3_changes(e->db);
        if (k >= 0 && changed > 0)
                k = engine_save_next_handle(e);
        if (k >= 0 && sqlite3_exec(e->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                k = -EIO;
        if (k < 0) {
                sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
                return -EIO;
        }
        if (ret_n)
                *ret_n = (size_t) changed;
        return 0;
}

int engine_connection_closed(struct engine *e, uint64_t conn) {
        if (conn == 0)
                return 0;
        return drop_handles(e, "DELETE FROM opened_shelves WHERE fame_conn = ?", (int64_t) conn, NULL);
}

int engine_drop_unclaimed_handles(struct engine *e, size_t *ret_n) {
        return drop_handles(e, "DELETE FROM opened_shelves WHERE fame_conn = ?", ENGINE_UNCLAIMED_CONN, ret_n);
}

int engine_unclaimed_handles(struct engine *e, size_t *ret_n) {
        int64_t n = 0;
        if (engine_query_int(e, "SELECT COUNT(*) FROM opened_shelves WHERE fame_conn = ?", 0, &n, 1,
                             (int64_t) ENGINE_UNCLAIMED_CONN) < 0)
                return -EIO;
        *ret_n = (size_t) n;
        return 0;
}

static int new_open_handle(struct engine *e, const struct req *r, const struct shelf *s, int64_t *ret) {
        int64_t id = e->next_handle;
        int k;

        k = engine_exec(e, "INSERT INTO opened_shelves (id, shelf_id, node_id, pid, fame_conn) VALUES (?, ?, ?, ?, ?)", 5,
                        id, s->id, r->node_id, r->pid, (int64_t) r->conn);
        if (k < 0)
                return k;
        e->next_handle++;       /* (a rolled-back request skips a number: harmless) */
        *ret = id;
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* commands */

static int insert_shelf(struct engine *e, const struct req *r, int64_t parent, const char *name,
                        int64_t mode, int64_t link_count, struct shelf *ret) {
        static const char sql[] = "INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime,"
                " name, mode, parent_id, link_count, uid, gid) VALUES (?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?)";
        sqlite3_stmt *st;
        int64_t t = engine_now(e);
        int k;

        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
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
                return engine_dbfail(e, "create shelf");
        return shelf_by_id(e, sqlite3_last_insert_rowid(e->db), ret) == 1 ? 0 : engine_dbfail(e, "create shelf");
}

static int check_new_name(struct engine *e, struct resolved *res, const struct req *r) {
        if (streq_(res->name, ".") || streq_(res->name, ".."))
                return engine_fail(e, EEXIST, "\"%s\" already exists", res->name);
        if (!shelf_is_dir(&res->parent))
                return engine_fail(e, ENOTDIR, "\"%s\" is not a directory", res->parent.name);
        return shelf_check_access(e, r, &res->parent, MAY_WRITE, "create in directory");
}

int cmd_create_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t mode, handle;
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_int(e, r, "mode", &mode)) < 0 || (k = path_resolve(e, path, &res)) < 0)
                return k;
        if (res.found) {
                if (shelf_is_dir(&res.shelf))
                        return engine_fail(e, EISDIR, "\"%s\" is a directory", res.name);
                k = shelf_check_access(e, r, &res.shelf, MAY_READ, "open");
                if (k < 0)
                        return k;
        } else {
                k = check_new_name(e, &res, r);
                if (k < 0)
                        return k;
                if ((mode & 07777) == 0 && (mode & S_IFMT) == 0)
                        mode = S_IFREG | 0666;
                if ((mode & S_IFMT) == 0)
                        mode |= S_IFREG;
                k = insert_shelf(e, r, res.parent.id, res.name, mode, 1, &res.shelf);
                if (k < 0)
                        return k;
                if ((k = xattr_set(e, res.shelf.id, "user.LFS.AllocationPolicy", e->policy_default,
                                   strlen(e->policy_default))) < 0 ||
                    (k = xattr_set(e, res.shelf.id, "user.LFS.InterleaveRequest", "", 0)) < 0 ||
                    (k = xattr_set(e, res.shelf.id, "user.LFS.InterleaveRequestPos", "", 0)) < 0)
                        return k;
        }
        k = new_open_handle(e, r, &res.shelf, &handle);
        if (k < 0)
                return k;
        *ret = shelf_json(&res.shelf, handle);
        return 0;
}

int cmd_get_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        int k;

        k = req_existing_path(e, r, &res);
        if (k < 0)
                return k;
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

int cmd_open_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        int64_t handle;
        int k;

        k = req_existing_path(e, r, &res);
        if (k < 0)
                return k;
        if ((k = shelf_check_access(e, r, &res.shelf, MAY_READ, "open")) < 0 || (k = new_open_handle(e, r, &res.shelf, &handle)) < 0)
                return k;
        *ret = shelf_json(&res.shelf, handle);
        return 0;
}

int cmd_close_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        int64_t id, handle;
        int k;

        if ((k = req_int(e, r, "id", &id)) < 0 || (k = req_int(e, r, "open_handle", &handle)) < 0)
                return k;
        /* a connection closes only its own handles, and its node's handles of an earlier run
         * that nobody reclaimed */
        k = engine_exec(e, "DELETE FROM opened_shelves WHERE id = ? AND shelf_id = ? AND node_id = ?"
                        " AND (? = 0 OR fame_conn = ? OR fame_conn = ?)", 6, handle, id, r->node_id, (int64_t) r->conn,
                        (int64_t) r->conn, (int64_t) ENGINE_UNCLAIMED_CONN);
        if (k >= 0 && sqlite3_changes(e->db) > 0)
                k = engine_save_next_handle(e);
        if (k < 0)
                return k;
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

/* FAM/E: a client that reconnected after the Librarian restarted takes back a handle it held
 * (the handle of an earlier run, kept for the grace period, belonging to no connection). */
int cmd_fame_reclaim_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        int64_t id, handle, n = 0;
        struct shelf s;
        int k;

        if ((k = req_int(e, r, "id", &id)) < 0 || (k = req_int(e, r, "open_handle", &handle)) < 0)
                return k;
        k = engine_query_int(e, "SELECT COUNT(*) FROM opened_shelves WHERE id = ? AND shelf_id = ? AND node_id = ?"
                             " AND (fame_conn = ? OR fame_conn = ?)", 0, &n, 5, handle, id, r->node_id,
                             (int64_t) ENGINE_UNCLAIMED_CONN, (int64_t) r->conn);
        if (k < 0)
                return k;
        if (n == 0)
                return engine_fail(e, ESTALE, "Handle %lld of shelf %lld is not held by node %lld: it was closed, "
                                   "or not reclaimed within the grace period", (long long) handle, (long long) id,
                                   (long long) r->node_id);
        k = shelf_by_id(e, id, &s);
        if (k < 0)
                return k;
        if (k == 0)
                return engine_fail(e, ESTALE, "Shelf %lld of handle %lld no longer exists", (long long) id, (long long) handle);
        k = engine_exec(e, "UPDATE opened_shelves SET fame_conn = ? WHERE id = ?", 2, (int64_t) r->conn, handle);
        if (k < 0)
                return k;
        *ret = shelf_json(&s, handle);
        return 0;
}

static struct json_object *entry_json(const struct shelf *s, bool with_owner) {
        struct json_object *o = shelf_json(s, -1);
        if (with_owner) {
                json_object_object_add(o, "uid", json_object_new_int64(s->uid));
                json_object_object_add(o, "gid", json_object_new_int64(s->gid));
        }
        return o;
}

/* The directory's entries, "." and ".." first; with_owner: each with its uid and gid too. */
static int list_dir(struct engine *e, struct req *r, bool with_owner, struct json_object **ret) {
        static const char sql[] = "SELECT " SHELF_COLUMNS
                " FROM shelves WHERE parent_id = ? AND id != parent_id AND id > 1 ORDER BY id";
        struct resolved res;
        struct shelf dot, dotdot;
        int k;

        k = req_existing_path(e, r, &res);
        if (k < 0)
                return k;
        if (shelf_by_id(e, res.shelf.parent_id, &dotdot) != 1)
                return engine_fail(e, ENOENT, "The parent of %s is missing", res.name);
        if (shelf_is_dir(&res.shelf) && (k = shelf_check_access(e, r, &res.shelf, MAY_READ, "list directory")) < 0)
                return k;
        dot = res.shelf;
        snprintf(dot.name, sizeof dot.name, ".");
        snprintf(dotdot.name, sizeof dotdot.name, "..");
        struct json_object *a = json_object_new_array();
        json_object_array_add(a, entry_json(&dot, with_owner));
        json_object_array_add(a, entry_json(&dotdot, with_owner));
        *ret = a;
        if (!shelf_is_dir(&res.shelf))
                return 0;
        sqlite3_stmt *st;
        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, res.shelf.id);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                struct shelf c;
                shelf_from_row(st, &c);
                json_object_array_add(a, entry_json(&c, with_owner));
        }
        sqlite3_reset(st);
        return s == SQLITE_DONE ? 0 : engine_dbfail(e, "list shelves");
}

int cmd_list_shelves(struct engine *e, struct req *r, struct json_object **ret) {
        return list_dir(e, r, false, ret);
}

/* FAM/E: list_shelves with each entry's owner (uid, gid), as fame_stat_shelf gives them: one
 * request gives fame-lfs a directory's names and attributes (readdirplus). */
int cmd_fame_list_dir(struct engine *e, struct req *r, struct json_object **ret) {
        return list_dir(e, r, true, ret);
}

int cmd_list_open_shelves(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT id, shelf_id, node_id, pid FROM opened_shelves ORDER BY id";
        sqlite3_stmt *st;
        int s;
        (void) r;

        s = engine_stmt(e, sql, &st);
        if (s < 0)
                return s;
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
        return s == SQLITE_DONE ? 0 : engine_dbfail(e, "list open shelves");
}

static bool startswith(const char *s, const char *p) {
        return strncmp(s, p, strlen(p)) == 0;
}

int cmd_rename_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved from, to;
        const char *path, *newpath;
        int64_t id;
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_int(e, r, "id", &id)) < 0 ||
            (k = req_str(e, r, "newpath", &newpath)) < 0 || (k = path_resolve_existing(e, path, &from)) < 0)
                return k;
        if (from.shelf.id == ROOT_ID)
                return engine_fail(e, EBUSY, "The root cannot be renamed");
        k = path_resolve(e, newpath, &to);
        if (k < 0)
                return k;
        if (to.found)
                return engine_fail(e, EEXIST, "Duplicate path found during rename %s", newpath);
        if ((k = check_unlink(e, r, &from.parent, &from.shelf, "rename")) < 0 || (k = check_new_name(e, &to, r)) < 0)
                return k;
        /* no directory may move into itself */
        for (int64_t p = to.parent.id; shelf_is_dir(&from.shelf); ) {
                struct shelf ps;
                if (p == from.shelf.id)
                        return engine_fail(e, EINVAL, "Cannot move \"%s\" into itself", path);
                if (p == ROOT_ID || shelf_by_id(e, p, &ps) != 1)
                        break;
                p = ps.parent_id;
        }
        int64_t t = engine_now(e), mode = from.shelf.mode, zombies;
        if (!startswith(to.name, FAME_LFS_PENDING_ZERO_PREFIX)) {
                k = engine_query_int(e, "SELECT COUNT(*) FROM books_on_shelves s JOIN books b ON b.id = s.book_id"
                                     " WHERE s.shelf_id = ? AND b.allocated = 2", 0, &zombies, 1, from.shelf.id);
                if (k < 0)
                        return k;
                if (zombies > 0)
                        return engine_fail(e, EBUSY, "The books of %s are waiting to be zeroed; truncate it to 0 before "
                                           "giving it a name without " FAME_LFS_PENDING_ZERO_PREFIX, from.shelf.name);
        }
        if (startswith(to.name, FAME_LFS_PENDING_ZERO_PREFIX)) {
                _cleanup_free_ struct book *books = NULL;
                size_t n;
                k = shelf_books(e, &from.shelf, &books, &n, false);
                if (k < 0)
                        return k;
                for (size_t i = 0; i < n; i++)
                        if (books[i].allocated == BOOK_INUSE && (k = book_set_state(e, books[i].id, BOOK_ZOMBIE)) < 0)
                                return k;
                if (mode & 060000)
                        mode = 0100000;
        }
        static const char sql[] = "UPDATE shelves SET name = ?, parent_id = ?, mtime = ?, mode = ? WHERE id = ?";
        sqlite3_stmt *st;
        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_text(st, 1, to.name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, to.parent.id);
        sqlite3_bind_int64(st, 3, t);
        sqlite3_bind_int64(st, 4, mode);
        sqlite3_bind_int64(st, 5, from.shelf.id);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
                return engine_dbfail(e, "rename");
        if (shelf_is_dir(&from.shelf) && from.parent.id != to.parent.id &&
            ((k = engine_exec(e, "UPDATE shelves SET link_count = link_count - 1 WHERE id = ?", 1, from.parent.id)) < 0 ||
             (k = engine_exec(e, "UPDATE shelves SET link_count = link_count + 1 WHERE id = ?", 1, to.parent.id)) < 0))
                return k;
        struct shelf s2;
        if (shelf_by_id(e, from.shelf.id, &s2) != 1)
                return engine_dbfail(e, "rename");
        *ret = shelf_json(&s2, -1);
        return 0;
}

static int has_children(struct engine *e, int64_t id, bool *ret) {
        int64_t c;
        int k;

        k = engine_query_int(e, "SELECT COUNT(*) FROM shelves WHERE parent_id = ? AND id > 1", 0, &c, 1, id);
        if (k < 0)
                return k;
        *ret = c > 0;
        return 0;
}

int cmd_destroy_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        int64_t opens;
        bool children;
        int k;

        k = req_existing_path(e, r, &res);
        if (k < 0)
                return k;
        if (res.shelf.id == ROOT_ID || res.shelf.id == 3)
                return engine_fail(e, EBUSY, "\"%s\" cannot be removed", res.shelf.id == ROOT_ID ? "/" : "lost+found");
        k = check_unlink(e, r, &res.parent, &res.shelf, "remove");
        if (k < 0)
                return k;
        k = engine_query_int(e, "SELECT COUNT(*) FROM opened_shelves WHERE shelf_id = ?", 0, &opens, 1, res.shelf.id);
        if (k < 0)
                return k;
        if (opens > 0)
                return engine_fail(e, EBUSY, "%s has active opens", res.name);
        if (shelf_is_dir(&res.shelf)) {
                k = has_children(e, res.shelf.id, &children);
                if (k < 0)
                        return k;
                if (children)
                        return engine_fail(e, ENOTEMPTY, "Directory is not empty");
        }
        _cleanup_free_ struct book *books = NULL;
        size_t n;
        k = shelf_books(e, &res.shelf, &books, &n, false);
        if (k < 0)
                return k;
        for (size_t i = 0; i < n; i++)
                if ((k = book_set_state(e, books[i].id, BOOK_ZOMBIE)) < 0)
                        return k;
        e->zombies_dirty = e->zombies_dirty || n > 0;
        if ((k = engine_exec(e, "DELETE FROM books_on_shelves WHERE shelf_id = ?", 1, res.shelf.id)) < 0 ||
            (k = engine_exec(e, "DELETE FROM shelf_xattrs WHERE shelf_id = ?", 1, res.shelf.id)) < 0 ||
            (k = engine_exec(e, "DELETE FROM links WHERE shelf_id = ?", 1, res.shelf.id)) < 0 ||
            (k = engine_exec(e, "DELETE FROM shelves WHERE id = ?", 1, res.shelf.id)) < 0)
                return k;
        k = shelf_is_dir(&res.shelf) &&
            engine_exec(e, "UPDATE shelves SET link_count = link_count - 1 WHERE id = ?", 1, res.parent.id);
        if (k < 0)
                return k;
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

int cmd_set_am_time(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t mtime;
        struct json_object *at = req_param(r, "atime");
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_int(e, r, "mtime", &mtime)) < 0)
                return k;
        if (!at || !(json_object_is_type(at, json_type_int) || json_object_is_type(at, json_type_double)))
                return engine_fail(e, EINVAL, "set_am_time: parameter \"atime\" must be a number");
        if ((k = path_resolve_existing(e, path, &res)) < 0 || (k = shelf_check_access(e, r, &res.shelf, MAY_WRITE, "set times of")) < 0)
                return k;
        *ret = NULL;
        return engine_exec(e, "UPDATE shelves SET mtime = ? WHERE id = ?", 2, mtime ? mtime : engine_now(e), res.shelf.id);
}

int cmd_mkdir(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t mode;
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_int(e, r, "mode", &mode)) < 0 || (k = path_resolve(e, path, &res)) < 0)
                return k;
        if (!res.found) {
                if ((k = check_new_name(e, &res, r)) < 0 ||
                    (k = insert_shelf(e, r, res.parent.id, res.name, S_IFDIR | (mode & 07777), 2, &res.shelf)) < 0 ||
                    (k = engine_exec(e, "UPDATE shelves SET link_count = link_count + 1 WHERE id = ?", 1, res.parent.id)) < 0)
                        return k;
        }
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

int cmd_rmdir(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        bool children;
        int k;

        k = req_existing_path(e, r, &res);
        if (k < 0)
                return k;
        if (!shelf_is_dir(&res.shelf))
                return engine_fail(e, ENOTDIR, "\"%s\" is not a directory", res.name);
        if (res.shelf.id == ROOT_ID)
                return engine_fail(e, ENOTEMPTY, "Directory is not empty");
        k = has_children(e, res.shelf.id, &children);
        if (k < 0)
                return k;
        if (children)
                return engine_fail(e, ENOTEMPTY, "Directory is not empty");
        if (res.shelf.id == 3)
                return engine_fail(e, EBUSY, "lost+found cannot be removed");
        if ((k = check_unlink(e, r, &res.parent, &res.shelf, "remove")) < 0 ||
            (k = engine_exec(e, "DELETE FROM shelves WHERE id = ?", 1, res.shelf.id)) < 0 ||
            (k = engine_exec(e, "DELETE FROM shelf_xattrs WHERE shelf_id = ?", 1, res.shelf.id)) < 0 ||
            (k = engine_exec(e, "UPDATE shelves SET link_count = link_count - 1 WHERE id = ?", 1, res.parent.id)) < 0)
                return k;
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

int cmd_symlink(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path, *target;
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_str(e, r, "target", &target)) < 0 || (k = path_resolve(e, path, &res)) < 0)
                return k;
        /* as symlink(2): a target of PATH_MAX bytes or more, with its NUL, is ENAMETOOLONG */
        if (strlen(target) >= 4096)
                return engine_fail(e, ENAMETOOLONG, "Symbolic link target too long (%zu bytes; at most 4095)", strlen(target));
        if (!*target)
                return engine_fail(e, ENOENT, "A symbolic link needs a target");
        if (!res.found) {
                if ((k = check_new_name(e, &res, r)) < 0 ||
                    (k = insert_shelf(e, r, res.parent.id, res.name, S_IFLNK | 0777, 1, &res.shelf)) < 0)
                        return k;
                static const char sql[] = "INSERT INTO links VALUES (?, ?, NULL)";
                sqlite3_stmt *st;
                k = engine_stmt(e, sql, &st);
                if (k < 0)
                        return k;
                sqlite3_bind_int64(st, 1, res.shelf.id);
                sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
                int s = sqlite3_step(st);
                sqlite3_reset(st);
                if (s != SQLITE_DONE)
                        return engine_dbfail(e, librarian_command_name(r->cmd));
        }
        *ret = shelf_json(&res.shelf, -1);
        return 0;
}

int cmd_readlink(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT target FROM links WHERE shelf_id = ?";
        struct resolved res;
        int k;

        k = req_existing_path(e, r, &res);
        if (k < 0)
                return k;
        if (!S_ISLNK((mode_t) res.shelf.mode))
                return engine_fail(e, EINVAL, "\"%s\" is not a symbolic link", res.name);
        sqlite3_stmt *st;
        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, res.shelf.id);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
                *ret = json_object_new_string((const char *) sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        if (s == SQLITE_DONE)
                return engine_fail(e, ENOENT, "The symbolic link \"%s\" has no target", res.name);
        return s == SQLITE_ROW ? 0 : engine_dbfail(e, librarian_command_name(r->cmd));
}

int cmd_get_shelf_path(struct engine *e, struct req *r, struct json_object **ret) {
        const char *name;
        int64_t parent;
        char path[4096], tmp[4096];
        int k;

        if ((k = req_str(e, r, "name", &name)) < 0 || (k = req_int(e, r, "parent_id", &parent)) < 0)
                return k;
        snprintf(path, sizeof path, "/%s", name);
        for (int depth = 0; parent != ROOT_ID; depth++) {
                struct shelf p;
                if (depth > 256 || shelf_by_id(e, parent, &p) != 1)
                        return engine_fail(e, ENOENT, "No shelf with id %lld on the path of %s", (long long) parent, name);
                snprintf(tmp, sizeof tmp, "/%s%s", p.name, path);
                memcpy(path, tmp, sizeof path);
                parent = p.parent_id;
        }
        *ret = json_object_new_string(path);
        return 0;
}

/* FAM/E: the owner and creator of a shelf (uid, gid, node), with the shelf record. */
int cmd_fame_stat_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        int k;

        k = req_existing_path(e, r, &res);
        if (k < 0)
                return k;
        *ret = shelf_json(&res.shelf, -1);
        json_object_object_add(*ret, "uid", json_object_new_int64(res.shelf.uid));
        json_object_object_add(*ret, "gid", json_object_new_int64(res.shelf.gid));
        return 0;
}

/* FAM/E: access(2) for the request's uid/gid: mode is R_OK|W_OK|X_OK bits, 0 for existence. */
int cmd_fame_access(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        int64_t mode;
        int k;

        if ((k = req_int(e, r, "mode", &mode)) < 0 || (k = req_existing_path(e, r, &res)) < 0)
                return k;
        if (mode & ~7)
                return engine_fail(e, EINVAL, "fame_access: mode %lld is not a combination of 4, 2 and 1", (long long) mode);
        if (r->uid == 0 && (mode & 1) && !shelf_is_dir(&res.shelf) && !(res.shelf.mode & 0111))
                return engine_fail(e, EACCES, "Permission denied: \"%s\" is not executable", res.name);
        if ((mode & 6) && (k = shelf_check_access(e, r, &res.shelf, (int) (mode & 6), "access")) < 0)
                return k;
        if ((mode & 1) && r->uid != 0 && !may(r, &res.shelf, 1))
                return engine_fail(e, EACCES, "Permission denied: search/execute \"%s\"", res.name);
        *ret = NULL;
        return 0;
}

/* FAM/E: chmod (owner or root) */
int cmd_fame_chmod(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t mode;
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_int(e, r, "mode", &mode)) < 0 || (k = path_resolve_existing(e, path, &res)) < 0)
                return k;
        if (r->uid != 0 && r->uid != res.shelf.uid)
                return engine_fail(e, EPERM, "Only the owner (uid %lld) or root may change the mode of \"%s\"",
                                   (long long) res.shelf.uid, res.name);
        *ret = NULL;
        return engine_exec(e, "UPDATE shelves SET mode = ? WHERE id = ?", 2,
                           (res.shelf.mode & S_IFMT) | (mode & 07777), res.shelf.id);
}

/* FAM/E: chown (root only; -1 keeps a value) */
int cmd_fame_chown(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t uid, gid;
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_int(e, r, "uid", &uid)) < 0 || (k = req_int(e, r, "gid", &gid)) < 0 ||
            (k = path_resolve_existing(e, path, &res)) < 0)
                return k;
        if (r->uid != 0)
                return engine_fail(e, EPERM, "Only root may change the owner of \"%s\"", res.name);
        *ret = NULL;
        return engine_exec(e, "UPDATE shelves SET uid = ?, gid = ? WHERE id = ?", 3,
                           uid < 0 ? res.shelf.uid : uid, gid < 0 ? res.shelf.gid : gid, res.shelf.id);
}
