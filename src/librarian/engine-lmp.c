/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tm-lmp's views of the database (the LFS Management Protocol of HPE's tm-librarian, served
 * under /lmp/ by src/lmp; docs/lmp.md says what each field means).  The same tables and the
 * same arithmetic as the original, field names included; keys are added in alphabetical order,
 * as the original's JSON encoder sorts them.  Read-only, like engine-views.c.
 */
#include <errno.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine-internal.h"

#define SOC_HEARTBEAT_SECS 10       /* a SOC whose heartbeat is older is "indeterminate" */
#define POLICY_XATTR "user.LFS.AllocationPolicy"

/* A column as the original's JSON gives it: an integer, a float, a string or null. */
static struct json_object *column_json(sqlite3_stmt *st, int i) {
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
                return json_object_new_int64(sqlite3_column_int64(st, i));
        case SQLITE_FLOAT:
                return json_object_new_double(sqlite3_column_double(st, i));
        case SQLITE_NULL:
                return NULL;
        default:
                return json_object_new_string((const char *) sqlite3_column_text(st, i));
        }
}

static const char *const state_names[] = { "available", "allocated", "notready", "offline" };

static const char *state_name(int64_t allocated) {
        return allocated >= 0 && allocated < 4 ? state_names[allocated] : "unknown";
}

struct json_object *engine_lmp_global(struct engine *e) {
        int64_t bs = (int64_t) e->geo.book_size, now = (int64_t) time(NULL);
        struct json_object *o = json_object_new_object(), *active = json_object_new_object(),
                           *memory = json_object_new_object(), *pools = json_object_new_object(),
                           *socs = json_object_new_object();
        if (!o || !active || !memory || !pools || !socs) {
                json_object_put(o);
                json_object_put(active);
                json_object_put(memory);
                json_object_put(pools);
                json_object_put(socs);
                return view_fail(ENOMEM);
        }
        /* every open counts (a shelf open on two nodes twice), as in the original */
        view_add_int(active, "books", view_query_int(e, "SELECT sum(s.book_count) FROM shelves s JOIN opened_shelves o ON s.id = o.shelf_id", 0, 0));
        view_add_int(active, "shelves", view_query_int(e, "SELECT count(*) FROM shelves s JOIN opened_shelves o ON s.id = o.shelf_id", 0, 0));
        json_object_object_add(o, "active", active);

        int64_t n[4];
        if (view_book_counts(e, n) < 0) {
                json_object_put(o);
                json_object_put(memory);
                json_object_put(pools);
                json_object_put(socs);
                return view_fail(EIO);
        }
        view_add_int(memory, "allocated", bs * n[BOOK_INUSE]);
        view_add_int(memory, "available", bs * n[BOOK_FREE]);
        view_add_int(memory, "notready", bs * n[BOOK_ZOMBIE]);
        view_add_int(memory, "offline", bs * n[BOOK_OFFLINE]);
        view_add_int(memory, "total", bs * (int64_t) e->geo.books_total);
        json_object_object_add(o, "memory", memory);

        view_add_int(pools, "active", view_query_int(e, "SELECT count(*) FROM FAModules WHERE status = 1", 0, 0));
        view_add_int(pools, "offline", view_query_int(e, "SELECT count(*) FROM FAModules WHERE status = 0", 0, 0));
        view_add_int(pools, "total", view_query_int(e, "SELECT count(*) FROM FAModules", 0, 0));
        json_object_object_add(o, "pools", pools);

        int64_t stale = now - SOC_HEARTBEAT_SECS;
        view_add_int(socs, "active", view_query_int(e, "SELECT count(*) FROM SOCs WHERE status = 1 AND heartbeat >= ?", 0, 1, stale));
        sqlite3_stmt *st = view_prepare(e, "SELECT avg(cpu_percent) FROM SOCs");
        json_object_object_add(socs, "cpu_percent",
                               st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
                                       ? json_object_new_double(sqlite3_column_double(st, 0)) : NULL);
        sqlite3_finalize(st);
        view_add_int(socs, "indeterminate", view_query_int(e, "SELECT count(*) FROM SOCs WHERE status = 1 AND heartbeat < ?", 0, 1, stale));
        view_add_int(socs, "offline", view_query_int(e, "SELECT count(*) FROM SOCs WHERE status = 0", 0, 0));
        view_add_int(socs, "total", view_query_int(e, "SELECT count(*) FROM FRDnodes", 0, 0));
        json_object_object_add(o, "socs", socs);
        return o;
}

static struct json_object *node_mcs(struct engine *e, int64_t node_id) {
        struct json_object *a = json_object_new_array();
        sqlite3_stmt *st = view_prepare(e, "SELECT coordinate, memorySize FROM FAModules WHERE node_id = ?");
        if (!a || !st) {
                sqlite3_finalize(st);
                return a;
        }
        sqlite3_bind_int64(st, 1, node_id);
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct json_object *m = json_object_new_object();
                json_object_object_add(m, "coordinate", column_json(st, 0));
                json_object_object_add(m, "memorySize", column_json(st, 1));
                json_object_array_add(a, m);
        }
        sqlite3_finalize(st);
        return a;
}

static struct json_object *node_soc(struct engine *e, int64_t node_id) {
        static const char *const names[] = { "coordinate", "cpu_percent", "macAddress", "mem_percent", "network_in",
                                             "network_out", "rootfs_percent", "tlsPublicCertificate" };
        struct json_object *s = json_object_new_object();
        sqlite3_stmt *st = view_prepare(e, "SELECT coordinate, cpu_percent, MAC, mem_percent, network_in, network_out,"
                                      " rootfs_percent, tlsPublicCertificate FROM SOCs WHERE node_id = ?");
        if (!s || !st) {
                sqlite3_finalize(st);
                return s;
        }
        sqlite3_bind_int64(st, 1, node_id);
        if (sqlite3_step(st) == SQLITE_ROW)
                for (int i = 0; i < (int) ELEMENTSOF(names); i++)
                        json_object_object_add(s, names[i], column_json(st, i));
        sqlite3_finalize(st);
        return s;
}

struct json_object *engine_lmp_nodes(struct engine *e) {
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        sqlite3_stmt *st = view_prepare(e, "SELECT coordinate, enc, node_id, node, rack, serialNumber FROM FRDnodes");
        if (!o || !a || !st) {
                json_object_put(o);
                json_object_put(a);
                sqlite3_finalize(st);
                return view_fail(st ? ENOMEM : EIO);
        }
        json_object_object_add(o, "nodes", a);
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct json_object *n = json_object_new_object();
                int64_t id = sqlite3_column_int64(st, 2);
                json_object_object_add(n, "coordinate", column_json(st, 0));
                json_object_object_add(n, "enc_num", column_json(st, 1));
                json_object_object_add(n, "mediaControllers", node_mcs(e, id));
                json_object_object_add(n, "node_id", column_json(st, 2));
                json_object_object_add(n, "node_num", column_json(st, 3));
                json_object_object_add(n, "rack_num", column_json(st, 4));
                json_object_object_add(n, "serialNumber", column_json(st, 5));
                json_object_object_add(n, "soc", node_soc(e, id));
                json_object_array_add(a, n);
        }
        sqlite3_finalize(st);
        return o;
}

struct json_object *engine_lmp_interleave_groups(struct engine *e) {
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        /* grouped in order of first appearance, as the original walks the rows */
        sqlite3_stmt *st = view_prepare(e, "SELECT IG, coordinate, memorySize FROM FAModules ORDER BY rowid");
        if (!o || !a || !st) {
                json_object_put(o);
                json_object_put(a);
                sqlite3_finalize(st);
                return view_fail(st ? ENOMEM : EIO);
        }
        json_object_object_add(o, "interleaveGroups", a);
        while (sqlite3_step(st) == SQLITE_ROW) {
                int64_t ig = sqlite3_column_int64(st, 0);
                struct json_object *g = NULL, *v;
                for (size_t i = 0; i < json_object_array_length(a) && !g; i++) {
                        struct json_object *c = json_object_array_get_idx(a, i);
                        if (json_object_object_get_ex(c, "groupId", &v) && json_object_get_int64(v) == ig)
                                g = c;
                }
                if (!g) {
                        g = json_object_new_object();
                        view_add_int(g, "baseAddress", ig << 46);
                        view_add_int(g, "groupId", ig);
                        json_object_object_add(g, "mediaControllers", json_object_new_array());
                        view_add_int(g, "size", 0);
                        json_object_array_add(a, g);
                }
                json_object_object_get_ex(g, "mediaControllers", &v);
                json_object_array_add(v, column_json(st, 1));
                json_object_object_get_ex(g, "size", &v);
                json_object_set_int64(v, json_object_get_int64(v) + sqlite3_column_int64(st, 2));
        }
        sqlite3_finalize(st);
        return o;
}

struct json_object *engine_lmp_allocated(struct engine *e, const char *coordinate) {
        /* Every book of a media controller whose coordinate starts with /COORDINATE (SQL LIKE,
         * as the original: any level from the datacenter to one controller), its bytes split
         * evenly among the controllers of its interleave group. */
        double sum[5] = { 0 };          /* available, allocated, notready, offline, total */
        char *like = NULL;
        if (asprintf(&like, "/%s%%", coordinate) < 0)
                return view_fail(ENOMEM);
        sqlite3_stmt *st = view_prepare(e, "SELECT b.allocated, (SELECT count(*) FROM FAModules m2 WHERE m2.IG = b.intlv_group)"
                                      " FROM books b JOIN FAModules m ON b.intlv_group = m.IG WHERE m.coordinate LIKE ?");
        if (!st) {
                free(like);
                return view_fail(EIO);
        }
        sqlite3_bind_text(st, 1, like, -1, SQLITE_TRANSIENT);
        free(like);
        while (sqlite3_step(st) == SQLITE_ROW) {
                int64_t state = sqlite3_column_int64(st, 0), mcs = sqlite3_column_int64(st, 1);
                double share = (double) e->geo.book_size / (double) (mcs > 0 ? mcs : 1);
                if (state >= 0 && state < 4)
                        sum[state] += share;
                sum[4] += share;
        }
        sqlite3_finalize(st);
        struct json_object *o = json_object_new_object(), *m = json_object_new_object();
        if (!o || !m) {
                json_object_put(o);
                json_object_put(m);
                return view_fail(ENOMEM);
        }
        view_add_int(m, "allocated", (int64_t) sum[1]);
        view_add_int(m, "available", (int64_t) sum[0]);
        view_add_int(m, "notready", (int64_t) sum[2]);
        view_add_int(m, "offline", (int64_t) sum[3]);
        view_add_int(m, "total", (int64_t) sum[4]);
        json_object_object_add(o, "memory", m);
        return o;
}

struct json_object *engine_lmp_active(struct engine *e, const char *soc_coordinate) {
        /* soc_coordinate NULL: the whole machine; else the SOC whose coordinate is exactly it */
        char *soc = NULL;
        if (soc_coordinate && asprintf(&soc, "/%s", soc_coordinate) < 0)
                return view_fail(ENOMEM);
        sqlite3_stmt *st = view_prepare(e, soc
                ? "SELECT count(*), sum(book_count) FROM (SELECT DISTINCT o.shelf_id, s.book_count FROM opened_shelves o"
                  " JOIN shelves s ON s.id = o.shelf_id JOIN SOCs c ON c.node_id = o.node_id WHERE c.coordinate = ?)"
                : "SELECT count(*), sum(book_count) FROM (SELECT DISTINCT o.shelf_id, s.book_count FROM opened_shelves o"
                  " JOIN shelves s ON s.id = o.shelf_id JOIN SOCs c ON c.node_id = o.node_id)");
        if (!st) {
                free(soc);
                return view_fail(EIO);
        }
        if (soc)
                sqlite3_bind_text(st, 1, soc, -1, SQLITE_TRANSIENT);
        free(soc);
        int64_t shelves = 0, books = 0;
        if (sqlite3_step(st) == SQLITE_ROW) {
                shelves = sqlite3_column_int64(st, 0);
                books = sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        struct json_object *o = json_object_new_object(), *a = json_object_new_object();
        if (!o || !a) {
                json_object_put(o);
                json_object_put(a);
                return view_fail(ENOMEM);
        }
        view_add_int(a, "books", books);
        view_add_int(a, "shelves", shelves);
        json_object_object_add(o, "active", a);
        return o;
}

static struct json_object *policy_of(struct engine *e, int64_t shelf_id) {
        sqlite3_stmt *st = view_prepare(e, "SELECT value FROM shelf_xattrs WHERE shelf_id = ? AND xattr = '" POLICY_XATTR "'");
        struct json_object *p = NULL;
        if (st) {
                sqlite3_bind_int64(st, 1, shelf_id);
                if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                        p = json_object_new_string((const char *) sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
        return p ? p : json_object_new_string("unknown");
}

struct json_object *engine_lmp_directory(struct engine *e) {
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        sqlite3_stmt *st = view_prepare(e, "SELECT id, name, mode, size_bytes, uid, gid FROM shelves ORDER BY id");
        if (!o || !a || !st) {
                json_object_put(o);
                json_object_put(a);
                sqlite3_finalize(st);
                return view_fail(st ? ENOMEM : EIO);
        }
        json_object_object_add(o, "entries", a);
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct json_object *x = json_object_new_object();
                int64_t id = sqlite3_column_int64(st, 0), mode = sqlite3_column_int64(st, 2);
                view_add_int(x, "group", sqlite3_column_int64(st, 5));
                view_add_int(x, "id", id);
                view_add_int(x, "mode", mode);
                json_object_object_add(x, "name", column_json(st, 1));
                view_add_int(x, "owner", sqlite3_column_int64(st, 4));
                json_object_object_add(x, "policy", policy_of(e, id));
                view_add_int(x, "size", sqlite3_column_int64(st, 3));
                json_object_object_add(x, "type", json_object_new_string(S_ISDIR((mode_t) mode) ? "directory" : "file"));
                json_object_array_add(a, x);
        }
        sqlite3_finalize(st);
        /* the directory itself: the root's owner and mode */
        view_add_int(o, "group", view_query_int(e, "SELECT gid FROM shelves WHERE id = 2", 0, 0));
        char m[16];
        snprintf(m, sizeof m, "%04llo", (unsigned long long) (view_query_int(e, "SELECT mode FROM shelves WHERE id = 2", 0777, 0) & 07777));
        json_object_object_add(o, "mode", json_object_new_string(m));
        view_add_int(o, "owner", view_query_int(e, "SELECT uid FROM shelves WHERE id = 2", 0, 0));
        return o;
}

struct json_object *engine_lmp_shelf(struct engine *e, const char *name) {
        /* by name, as the original (its one flat directory): the last of equal names */
        sqlite3_stmt *st = view_prepare(e, "SELECT id, mode, size_bytes, uid, gid FROM shelves WHERE name = ? ORDER BY id DESC LIMIT 1");
        if (!st)
                return view_fail(EIO);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_ROW) {
                sqlite3_finalize(st);
                return view_fail(ENOENT);
        }
        int64_t id = sqlite3_column_int64(st, 0), mode = sqlite3_column_int64(st, 1), size = sqlite3_column_int64(st, 2),
                uid = sqlite3_column_int64(st, 3), gid = sqlite3_column_int64(st, 4);
        sqlite3_finalize(st);

        struct json_object *o = json_object_new_object(), *active = json_object_new_array(), *books = json_object_new_array();
        if (!o || !active || !books) {
                json_object_put(o);
                json_object_put(active);
                json_object_put(books);
                return view_fail(ENOMEM);
        }
        st = view_prepare(e, "SELECT DISTINCT c.coordinate FROM opened_shelves o JOIN SOCs c ON c.node_id = o.node_id WHERE o.shelf_id = ?");
        if (st) {
                sqlite3_bind_int64(st, 1, id);
                while (sqlite3_step(st) == SQLITE_ROW)
                        json_object_array_add(active, column_json(st, 0));
        }
        sqlite3_finalize(st);
        st = view_prepare(e, "SELECT book_id FROM books_on_shelves WHERE shelf_id = ? ORDER BY seq_num");
        if (st) {
                sqlite3_bind_int64(st, 1, id);
                while (sqlite3_step(st) == SQLITE_ROW)
                        json_object_array_add(books, json_object_new_int64(sqlite3_column_int64(st, 0)));
        }
        sqlite3_finalize(st);
        json_object_object_add(o, "active", active);
        json_object_object_add(o, "books", books);
        view_add_int(o, "booksize", (int64_t) e->geo.book_size);
        view_add_int(o, "group", gid);
        view_add_int(o, "mode", mode);
        view_add_int(o, "owner", uid);
        json_object_object_add(o, "policy", policy_of(e, id));
        view_add_int(o, "size", size);
        return o;
}

struct json_object *engine_lmp_books(struct engine *e, int64_t ig) {
        /* ig < 0: every book, each with its "ig" */
        sqlite3_stmt *st = view_prepare(e, ig < 0
                ? "SELECT b.id, b.intlv_group, b.allocated, o.seq_num, s.name FROM books b"
                  " LEFT JOIN books_on_shelves o ON o.book_id = b.id LEFT JOIN shelves s ON s.id = o.shelf_id ORDER BY b.id"
                : "SELECT b.id, b.intlv_group, b.allocated, o.seq_num, s.name FROM books b"
                  " LEFT JOIN books_on_shelves o ON o.book_id = b.id LEFT JOIN shelves s ON s.id = o.shelf_id"
                  " WHERE (b.intlv_group & 255) = ? ORDER BY b.id");
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        if (!o || !a || !st) {
                json_object_put(o);
                json_object_put(a);
                sqlite3_finalize(st);
                return view_fail(st ? ENOMEM : EIO);
        }
        if (ig >= 0)
                sqlite3_bind_int64(st, 1, ig);
        view_add_int(o, "book_size", (int64_t) e->geo.book_size);
        json_object_object_add(o, "books", a);
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct json_object *b = json_object_new_object();
                int64_t state = sqlite3_column_int64(st, 2);
                if (ig < 0)
                        view_add_int(b, "ig", sqlite3_column_int64(st, 1) & 0xFF);
                view_add_int(b, "lza", sqlite3_column_int64(st, 0));
                /* where it is on its shelf: for a book on one (never a not-ready one) */
                if (sqlite3_column_type(st, 4) != SQLITE_NULL && state != 2) {
                        /* seq_num counts from 1: the first book is at offset 0 of its shelf */
                        view_add_int(b, "offset", (sqlite3_column_int64(st, 3) - 1) * (int64_t) e->geo.book_size);
                        json_object_object_add(b, "shelf", column_json(st, 4));
                }
                json_object_object_add(b, "state", json_object_new_string(state_name(state)));
                json_object_array_add(a, b);
        }
        sqlite3_finalize(st);
        if (json_object_array_length(a) == 0) {
                json_object_put(o);
                return view_fail(ENOENT);
        }
        return o;
}
