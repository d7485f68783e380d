/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Read-only views of the Librarian's database for the management API (src/lmp, docs/lmp.md):
 * the FAM's geometry and book counts, the topology's nodes and interleave groups, the shelves
 * with their paths, one shelf with its books, and the FAM map (every book and the shelf holding
 * it).  They run outside any request (no access check: the management API is loopback only and
 * changes nothing) and never write.  Statements are prepared per call: a view is asked for a few
 * times a second at most, and the engine's statement cache is kept for the request path.
 */
#include <errno.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine-internal.h"

/* Every shelf and directory with its path ("" for the root, "/a/b" below it). */
#define TREE_CTE                                                                                \
        "WITH RECURSIVE tree(id, path) AS ("                                                    \
        " SELECT id, '' FROM shelves WHERE id = 2"                                              \
        " UNION ALL"                                                                            \
        " SELECT s.id, tree.path || '/' || s.name FROM shelves s JOIN tree ON s.parent_id = tree.id" \
        " WHERE s.id != s.parent_id) "

#define SHELF_VIEW_COLUMNS                                                                      \
        "s.id, t.path, s.name, s.uid, s.gid, s.mode, s.creator_id, s.size_bytes, s.book_count," \
        " s.ctime, s.mtime, (SELECT count(*) FROM opened_shelves o WHERE o.shelf_id = s.id)"

struct json_object *view_fail(int err) {
        errno = err;
        return NULL;
}

sqlite3_stmt *view_prepare(struct engine *e, const char *sql) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(e->db, sql, -1, &st, NULL) != SQLITE_OK) {
                sqlite3_finalize(st);
                errno = EIO;
                return NULL;
        }
        return st;
}

void view_add_int(struct json_object *o, const char *key, int64_t v) {
        json_object_object_add(o, key, json_object_new_int64(v));
}

static void add_str(struct json_object *o, const char *key, const char *v) {
        json_object_object_add(o, key, json_object_new_string(v ? v : ""));
}

static const char *col_text(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return t ? (const char *) t : "";
}

uint64_t engine_generation(struct engine *e) {
        /* total_changes: every row this connection wrote; data_version: commits of any other
         * connection (a database served by hand while something else writes it).  Both only
         * grow, and so does their sum. */
        int64_t other = 0;
        sqlite3_stmt *st = view_prepare(e, "PRAGMA data_version");
        if (st && sqlite3_step(st) == SQLITE_ROW)
                other = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return (uint64_t) sqlite3_total_changes64(e->db) + (uint64_t) other;
}

int64_t view_query_int(struct engine *e, const char *sql, int64_t def, int n, ...) {
        sqlite3_stmt *st = view_prepare(e, sql);
        int64_t v = def;
        va_list ap;
        if (!st)
                return def;
        va_start(ap, n);
        for (int i = 0; i < n; i++)
                sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        va_end(ap);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

int view_book_counts(struct engine *e, int64_t ret[4]) {
        sqlite3_stmt *st = view_prepare(e, "SELECT allocated, count(*) FROM books GROUP BY allocated");
        int k;
        memset(ret, 0, 4 * sizeof *ret);
        if (!st)
                return -EIO;
        while ((k = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t state = sqlite3_column_int64(st, 0);
                if (state >= 0 && state < 4)
                        ret[state] = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        return k == SQLITE_DONE ? 0 : -EIO;
}

struct json_object *engine_view_summary(struct engine *e) {
        int64_t n[4];
        if (view_book_counts(e, n) < 0)
                return view_fail(EIO);
        struct json_object *o = json_object_new_object();
        if (!o)
                return view_fail(ENOMEM);
        view_add_int(o, "size_bytes", (int64_t) e->geo.nvm_bytes_total);
        view_add_int(o, "book_size", (int64_t) e->geo.book_size);
        view_add_int(o, "books_total", (int64_t) e->geo.books_total);
        view_add_int(o, "books_free", n[BOOK_FREE]);
        view_add_int(o, "books_allocated", n[BOOK_INUSE]);
        view_add_int(o, "books_zombie", n[BOOK_ZOMBIE]);
        view_add_int(o, "books_offline", n[BOOK_OFFLINE]);
        view_add_int(o, "nodes_total", (int64_t) e->geo.nodes_total);
        add_str(o, "book_addressing", e->geo.bii_mode ? "PHYSADDR" : "LZA");
        return o;
}

/* The interleave groups of one node, as JSON integers (low 16 bits, as the engine uses them). */
static struct json_object *node_igs(struct engine *e, int64_t node_id) {
        struct json_object *a = json_object_new_array();
        sqlite3_stmt *st = view_prepare(e, "SELECT DISTINCT IG & 65535 FROM FAModules WHERE node_id = ? ORDER BY 1");
        if (!a || !st) {
                json_object_put(a);
                sqlite3_finalize(st);
                return NULL;
        }
        sqlite3_bind_int64(st, 1, node_id);
        while (sqlite3_step(st) == SQLITE_ROW)
                json_object_array_add(a, json_object_new_int64(sqlite3_column_int64(st, 0) & 0xFFFF));
        sqlite3_finalize(st);
        return a;
}

struct json_object *engine_view_nodes(struct engine *e) {
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        sqlite3_stmt *st = view_prepare(e,
                "SELECT f.node_id, f.rack, f.enc, f.node, f.coordinate, f.serialNumber, s.status, s.heartbeat"
                " FROM FRDnodes f LEFT JOIN SOCs s ON s.node_id = f.node_id ORDER BY f.node_id");
        if (!o || !a || !st) {
                json_object_put(o);
                json_object_put(a);
                sqlite3_finalize(st);
                return view_fail(st ? ENOMEM : EIO);
        }
        json_object_object_add(o, "nodes", a);
        int k;
        while ((k = sqlite3_step(st)) == SQLITE_ROW) {
                struct json_object *n = json_object_new_object();
                if (!n)
                        break;
                json_object_array_add(a, n);
                int64_t id = sqlite3_column_int64(st, 0);
                view_add_int(n, "node_id", id);
                view_add_int(n, "rack", sqlite3_column_int64(st, 1));
                view_add_int(n, "enclosure", sqlite3_column_int64(st, 2));
                view_add_int(n, "node", sqlite3_column_int64(st, 3));
                add_str(n, "coordinate", col_text(st, 4));
                add_str(n, "serial_number", col_text(st, 5));
                view_add_int(n, "soc_status", sqlite3_column_int64(st, 6));
                if (sqlite3_column_type(st, 7) == SQLITE_NULL || sqlite3_column_int64(st, 7) == 0)
                        json_object_object_add(n, "heartbeat", NULL);
                else
                        view_add_int(n, "heartbeat", sqlite3_column_int64(st, 7));
                json_object_object_add(n, "interleave_groups", node_igs(e, id));
        }
        sqlite3_finalize(st);
        if (k != SQLITE_DONE) {
                json_object_put(o);
                return view_fail(EIO);
        }
        return o;
}

static struct json_object *shelf_row(sqlite3_stmt *st) {
        struct json_object *s = json_object_new_object();
        if (!s)
                return NULL;
        int64_t mode = sqlite3_column_int64(st, 5);
        char m[16];
        snprintf(m, sizeof m, "%04llo", (unsigned long long) (mode & 07777));
        view_add_int(s, "id", sqlite3_column_int64(st, 0));
        add_str(s, "path", col_text(st, 1));
        add_str(s, "name", col_text(st, 2));
        view_add_int(s, "uid", sqlite3_column_int64(st, 3));
        view_add_int(s, "gid", sqlite3_column_int64(st, 4));
        add_str(s, "mode", m);
        json_object_object_add(s, "is_dir", json_object_new_boolean(S_ISDIR((mode_t) mode)));
        view_add_int(s, "creator_node", sqlite3_column_int64(st, 6));
        view_add_int(s, "size_bytes", sqlite3_column_int64(st, 7));
        view_add_int(s, "book_count", sqlite3_column_int64(st, 8));
        view_add_int(s, "ctime", sqlite3_column_int64(st, 9));
        view_add_int(s, "mtime", sqlite3_column_int64(st, 10));
        view_add_int(s, "open_count", sqlite3_column_int64(st, 11));
        return s;
}

struct json_object *engine_view_shelves(struct engine *e) {
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        sqlite3_stmt *st = view_prepare(e, TREE_CTE "SELECT " SHELF_VIEW_COLUMNS
                                   " FROM tree t JOIN shelves s ON s.id = t.id WHERE s.id != 2 ORDER BY t.path");
        if (!o || !a || !st) {
                json_object_put(o);
                json_object_put(a);
                sqlite3_finalize(st);
                return view_fail(st ? ENOMEM : EIO);
        }
        json_object_object_add(o, "shelves", a);
        int k;
        while ((k = sqlite3_step(st)) == SQLITE_ROW)
                json_object_array_add(a, shelf_row(st));
        sqlite3_finalize(st);
        if (k != SQLITE_DONE) {
                json_object_put(o);
                return view_fail(EIO);
        }
        return o;
}

/* A book's offset in the FAM; false in PHYSADDR mode or when the book area's place is unknown. */
static bool book_offset(const struct engine *e, int64_t fam_base, int64_t ig, int64_t num, uint64_t *ret) {
        const struct ig_info *g = engine_find_ig(e, (uint32_t) (ig & 0xFFFF));
        if (fam_base < 0 || e->geo.bii_mode != 0 || !g || num < 0 || (uint64_t) num >= g->books)
                return false;
        *ret = (uint64_t) fam_base + (g->start + (uint64_t) num) * e->geo.book_size;
        return true;
}

struct json_object *engine_view_shelf(struct engine *e, const char *path, int64_t fam_base) {
        sqlite3_stmt *st = view_prepare(e, TREE_CTE "SELECT " SHELF_VIEW_COLUMNS
                                   " FROM tree t JOIN shelves s ON s.id = t.id WHERE s.id != 2 AND t.path = ?");
        if (!st)
                return view_fail(EIO);
        sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
        int k = sqlite3_step(st);
        struct json_object *s = k == SQLITE_ROW ? shelf_row(st) : NULL;
        int64_t id = k == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (k == SQLITE_DONE)
                return view_fail(ENOENT);
        if (!s)
                return view_fail(k == SQLITE_ROW ? ENOMEM : EIO);

        struct json_object *books = json_object_new_array();
        st = view_prepare(e, "SELECT b.id, b.intlv_group, b.book_num, o.seq_num FROM books_on_shelves o"
                        " JOIN books b ON b.id = o.book_id WHERE o.shelf_id = ? ORDER BY o.seq_num");
        if (!books || !st) {
                json_object_put(s);
                json_object_put(books);
                sqlite3_finalize(st);
                return view_fail(st ? ENOMEM : EIO);
        }
        json_object_object_add(s, "books", books);
        sqlite3_bind_int64(st, 1, id);
        while ((k = sqlite3_step(st)) == SQLITE_ROW) {
                struct json_object *b = json_object_new_object();
                if (!b)
                        break;
                json_object_array_add(books, b);
                int64_t ig = sqlite3_column_int64(st, 1), num = sqlite3_column_int64(st, 2);
                uint64_t off;
                view_add_int(b, "seq", sqlite3_column_int64(st, 3));
                view_add_int(b, "lza", sqlite3_column_int64(st, 0));
                view_add_int(b, "interleave_group", ig & 0xFFFF);
                view_add_int(b, "book_num", num);
                if (book_offset(e, fam_base, ig, num, &off))
                        view_add_int(b, "fam_offset", (int64_t) off);
                else
                        json_object_object_add(b, "fam_offset", NULL);
        }
        sqlite3_finalize(st);
        if (k != SQLITE_DONE) {
                json_object_put(s);
                return view_fail(EIO);
        }
        return s;
}

/* Cell values of the FAM map besides a shelf's index. */
enum { CELL_FREE = -1, CELL_ZOMBIE = -2, CELL_OFFLINE = -3 };

struct json_object *engine_view_fam_map(struct engine *e, int64_t fam_base) {
        struct json_object *o = json_object_new_object(), *shelves = json_object_new_array(),
                           *groups = json_object_new_array();
        sqlite3_stmt *st = view_prepare(e, TREE_CTE
                "SELECT b.intlv_group, b.book_num, b.allocated, o.shelf_id, t.path, s.uid"
                " FROM books b LEFT JOIN books_on_shelves o ON o.book_id = b.id"
                " LEFT JOIN shelves s ON s.id = o.shelf_id LEFT JOIN tree t ON t.id = o.shelf_id"
                " ORDER BY b.intlv_group, b.book_num");
        if (!o || !shelves || !groups || !st) {
                json_object_put(o);
                json_object_put(shelves);
                json_object_put(groups);
                sqlite3_finalize(st);
                return view_fail(st ? ENOMEM : EIO);
        }
        view_add_int(o, "book_size", (int64_t) e->geo.book_size);
        json_object_object_add(o, "shelves", shelves);
        json_object_object_add(o, "groups", groups);

        /* shelf id → its index in "shelves", in order of first appearance */
        struct { int64_t id; int64_t index; } *seen = NULL;
        size_t n_seen = 0, allocated = 0, last = 0;
        struct json_object *cells = NULL;
        int64_t cur_ig = -1;
        int k;
        while ((k = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t ig = sqlite3_column_int64(st, 0) & 0xFFFF, state = sqlite3_column_int64(st, 2);
                if (ig != cur_ig || !cells) {
                        const struct ig_info *g = engine_find_ig(e, (uint32_t) ig);
                        struct json_object *grp = json_object_new_object();
                        cells = json_object_new_array();
                        if (!grp || !cells) {
                                json_object_put(grp);
                                json_object_put(cells);
                                k = SQLITE_NOMEM;
                                break;
                        }
                        view_add_int(grp, "ig", ig);
                        int64_t node = view_query_int(e, "SELECT node_id FROM FAModules WHERE (IG & 65535) = ? LIMIT 1", 0, 1, ig);
                        view_add_int(grp, "node_id", node);
                        view_add_int(grp, "books", g ? (int64_t) g->books : 0);
                        if (g && fam_base >= 0 && e->geo.bii_mode == 0)
                                view_add_int(grp, "first_offset", fam_base + (int64_t) (g->start * e->geo.book_size));
                        else
                                json_object_object_add(grp, "first_offset", NULL);
                        json_object_object_add(grp, "cells", cells);
                        json_object_array_add(groups, grp);
                        cur_ig = ig;
                }
                int64_t cell;
                if (state == BOOK_ZOMBIE)
                        cell = CELL_ZOMBIE;
                else if (state == BOOK_OFFLINE)
                        cell = CELL_OFFLINE;
                else if (sqlite3_column_type(st, 3) == SQLITE_NULL)
                        cell = CELL_FREE;
                else {
                        int64_t id = sqlite3_column_int64(st, 3);
                        size_t i;
                        if (last < n_seen && seen[last].id == id)
                                i = last;       /* a shelf's books tend to be neighbours */
                        else
                                for (i = 0; i < n_seen && seen[i].id != id; i++)
                                        ;
                        if (i == n_seen) {
                                if (n_seen == allocated) {
                                        size_t na = allocated ? allocated * 2 : 64;
                                        void *p = realloc(seen, na * sizeof *seen);
                                        if (!p) {
                                                k = SQLITE_NOMEM;
                                                break;
                                        }
                                        seen = p;
                                        allocated = na;
                                }
                                struct json_object *sh = json_object_new_object();
                                view_add_int(sh, "id", id);
                                add_str(sh, "path", col_text(st, 4));
                                view_add_int(sh, "uid", sqlite3_column_int64(st, 5));
                                json_object_array_add(shelves, sh);
                                seen[n_seen].id = id;
                                seen[n_seen].index = (int64_t) n_seen;
                                n_seen++;
                        }
                        cell = seen[i].index;
                        last = i;
                }
                json_object_array_add(cells, json_object_new_int64(cell));
        }
        free(seen);
        sqlite3_finalize(st);
        if (k != SQLITE_DONE) {
                json_object_put(o);
                return view_fail(k == SQLITE_NOMEM ? ENOMEM : EIO);
        }
        return o;
}
