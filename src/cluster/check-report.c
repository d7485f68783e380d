/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `fame check report` (check-report.h): findings, placed in the Librarian's shelves. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check-report.h"
#include "check.h"
#include "cluster-state.h"
#include "fame.h"
#include "librarian-client.h"
#include "proto.h"
#include "log.h"
#include "macro.h"
#include "util.h"

#define MAX_DEPTH 256           /* of a shelf path: more is a loop in a broken database */

/* An interleave group's books in the book area: they start at book index `start`. */
struct ig_range {
        uint32_t ig;
        uint64_t books, start;
};

/* A book on a shelf, as the running Librarian listed it. */
struct remote_book {
        uint32_t ig;
        uint64_t book_num, seq;         /* seq: 1.. in the shelf */
        size_t shelf;                   /* in shelves.paths */
};

/* The Librarian database, open read-only, or what the running Librarian said of it (remote);
 * and what placing an offset needs of either. */
struct shelves {
        sqlite3 *db;
        sqlite3_stmt *book, *shelf;
        bool remote;
        struct remote_book *books;      /* remote: sorted by (ig, book_num) */
        size_t n_books;
        char **paths;                   /* remote: the shelves' full paths */
        size_t n_paths;
        struct ig_range *igs;
        size_t n_igs;
        uint64_t book_size, book_area;
};

static void shelves_close(struct shelves *s) {
        sqlite3_finalize(s->book);
        sqlite3_finalize(s->shelf);
        if (s->db)
                sqlite3_close(s->db);
        for (size_t i = 0; i < s->n_paths; i++)
                free(s->paths[i]);
        free(s->paths);
        free(s->books);
        free(s->igs);
        *s = (struct shelves) { 0 };
}

/* Opens path read-only and reads the IGs (as the engine does at start: ascending, each as long
 * as its books).  <0 (nothing logged) when it cannot be used for this geometry. */
static int shelves_open(const char *path, const struct fame_geometry *geo, struct shelves *s) {
        sqlite3_stmt *st = NULL;
        int r = -EIO;

        *s = (struct shelves) { .book_size = geo->book_size, .book_area = geo->book_area_offset };
        if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
                goto fail;
        /* a running Librarian holds its database exclusively (docs/librarian.md): SQLITE_BUSY,
         * and the caller asks that Librarian instead; so no long wait here */
        sqlite3_busy_timeout(s->db, 250);
        /* books of another size: a database made for another FAM */
        int k = sqlite3_prepare_v2(s->db, "SELECT book_size_bytes FROM globals", -1, &st, NULL);
        if (k == SQLITE_OK)
                k = sqlite3_step(st);
        if ((k & 0xff) == SQLITE_BUSY) {
                r = -EBUSY;
                goto fail;
        }
        if (k != SQLITE_ROW || (uint64_t) sqlite3_column_int64(st, 0) != geo->book_size)
                goto fail;
        sqlite3_finalize(st);
        /* PHYSADDR books (intlv_group >> 16 == 1) have no place in a FAM file */
        if (sqlite3_prepare_v2(s->db, "SELECT intlv_group & 65535, COUNT(*), MAX(intlv_group >> 16) FROM books"
                               " GROUP BY intlv_group & 65535 ORDER BY 1", -1, &st, NULL) != SQLITE_OK)
                goto fail;
        for (uint64_t start = 0; (r = sqlite3_step(st)) == SQLITE_ROW;) {
                if (sqlite3_column_int64(st, 2) != 0) {
                        r = -EINVAL;
                        goto fail;
                }
                struct ig_range *n = realloc(s->igs, (s->n_igs + 1) * sizeof *n);
                if (!n) {
                        r = -ENOMEM;
                        goto fail;
                }
                s->igs = n;
                s->igs[s->n_igs] = (struct ig_range) { (uint32_t) sqlite3_column_int64(st, 0), (uint64_t) sqlite3_column_int64(st, 1), start };
                start += s->igs[s->n_igs++].books;
        }
        if (r != SQLITE_DONE) {
                r = -EIO;
                goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(s->db, "SELECT s.shelf_id, s.seq_num FROM books b JOIN books_on_shelves s ON s.book_id = b.id"
                               " WHERE (b.intlv_group & 65535) = ? AND b.book_num = ?", -1, &s->book, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db, "SELECT name, parent_id FROM shelves WHERE id = ?", -1, &s->shelf, NULL) != SQLITE_OK) {
                r = -EIO;
                goto fail;
        }
        return 0;
fail:
        log_debug("check report: the Librarian database '%s' cannot be used: %s", path, s->db ? sqlite3_errmsg(s->db) : "?");
        sqlite3_finalize(st);
        shelves_close(s);
        return r < 0 ? r : -EIO;
}

static int64_t member_int(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return json_object_get_int64(v);
}

static int remote_book_cmp(const void *a, const void *b) {
        const struct remote_book *x = a, *y = b;
        if (x->ig != y->ig)
                return x->ig < y->ig ? -1 : 1;
        return x->book_num < y->book_num ? -1 : x->book_num > y->book_num;
}

/* Adds the books of every shelf under directory dir ("/" or "/a/b") to s, depth first. */
static int remote_walk(struct fame_librarian *l, struct shelves *s, const char *dir, int depth) {
        _cleanup_(json_object_putp) struct json_object *list = NULL;
        int r;

        if (depth >= MAX_DEPTH)
                return -ELOOP;
        r = librarian_list_shelves(l, dir, &list);
        if (r < 0)
                return r;
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                struct json_object *e = json_object_array_get_idx(list, i), *v = NULL;
                const char *name = json_object_object_get_ex(e, "name", &v) ? json_object_get_string(v) : NULL;
                mode_t mode = (mode_t) member_int(e, "mode");
                if (!name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        continue;
                _cleanup_free_ char *path = strf("%s/%s", strcmp(dir, "/") == 0 ? "" : dir, name);
                if (!path)
                        return -ENOMEM;
                if (S_ISDIR(mode)) {
                        r = remote_walk(l, s, path, depth + 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!S_ISREG(mode))     /* a symlink: its target is listed where it is */
                        continue;
                _cleanup_(json_object_putp) struct json_object *books = NULL;
                r = librarian_list_shelf_books(l, path, &books);
                if (r < 0)
                        return r;
                size_t n = books ? json_object_array_length(books) : 0;
                if (n == 0)
                        continue;
                char **p = realloc(s->paths, (s->n_paths + 1) * sizeof *p);
                if (!p)
                        return -ENOMEM;
                s->paths = p;
                struct remote_book *b = realloc(s->books, (s->n_books + n) * sizeof *b);
                if (!b)
                        return -ENOMEM;
                s->books = b;
                s->paths[s->n_paths] = TAKE_PTR(path);
                for (size_t k = 0; k < n; k++) {
                        struct json_object *o = json_object_array_get_idx(books, k);
                        int64_t ig = member_int(o, "intlv_group");
                        if (ig >> 16 != 0)      /* PHYSADDR: no place in a FAM file */
                                return -EINVAL;
                        s->books[s->n_books++] = (struct remote_book) {
                                .ig = (uint32_t) (ig & 65535), .book_num = (uint64_t) member_int(o, "book_num"),
                                .seq = k + 1, .shelf = s->n_paths,
                        };
                }
                s->n_paths++;
        }
        return 0;
}

/* What shelves_open() reads from the database, asked of the Librarian at address (its
 * secret: $FAME_LIBRARIAN_SECRET_FILE): get_fs_stats (book size, books_per_IG), then
 * list_shelves from "/" down and list_shelf_books of each shelf (in seq order). */
static int shelves_remote(const char *address, const struct fame_geometry *geo, struct shelves *s) {
        struct fame_librarian *l = NULL;
        _cleanup_(json_object_putp) struct json_object *stats = NULL;
        uint64_t igbooks[128], igstart[128];
        int r;

        *s = (struct shelves) { .remote = true, .book_size = geo->book_size, .book_area = geo->book_area_offset };
        r = fame_librarian_connect(address, &l);
        if (r < 0)
                goto fail;
        r = librarian_get_fs_stats(l, &stats);
        if (r < 0)
                goto fail;
        if ((uint64_t) member_int(stats, "book_size_bytes") != geo->book_size) {
                r = -EINVAL;
                goto fail;
        }
        librarian_igstart(stats, igbooks, igstart);
        for (uint32_t ig = 0; ig < 128; ig++) {
                if (!igbooks[ig])
                        continue;
                struct ig_range *n = realloc(s->igs, (s->n_igs + 1) * sizeof *n);
                if (!n) {
                        r = -ENOMEM;
                        goto fail;
                }
                s->igs = n;
                s->igs[s->n_igs++] = (struct ig_range) { ig, igbooks[ig], igstart[ig] };
        }
        r = remote_walk(l, s, "/", 0);
        if (r < 0)
                goto fail;
        if (s->n_books)
                qsort(s->books, s->n_books, sizeof *s->books, remote_book_cmp);
        fame_librarian_disconnect(l);
        return 0;
fail:
        log_debug("check report: the Librarian at %s cannot be asked: %s", address,
                  l ? fame_librarian_error(l) : strerror(-r));
        if (l)
                fame_librarian_disconnect(l);
        shelves_close(s);
        return r < 0 ? r : -EIO;
}

/* The full path of shelf id ("/dir/shelf"), or NULL. */
static char *shelf_path(struct shelves *s, int64_t id) {
        char *path = strdup("");

        for (int depth = 0; path && depth < MAX_DEPTH; depth++) {
                sqlite3_reset(s->shelf);
                sqlite3_bind_int64(s->shelf, 1, id);
                if (sqlite3_step(s->shelf) != SQLITE_ROW)
                        break;
                int64_t parent = sqlite3_column_int64(s->shelf, 1);
                if (parent == id)       /* the root is its own parent */
                        return *path ? path : (free(path), strdup("/"));
                const char *name = (const char *) sqlite3_column_text(s->shelf, 0);
                char *longer = strf("/%s%s", name ? name : "?", path);
                free(path);
                path = longer;
                id = parent;
        }
        free(path);
        return NULL;
}

/* Places item->f.fam_offset. */
static int place(struct shelves *s, struct check_report_item *item) {
        uint64_t off = item->f.fam_offset;

        if (off < s->book_area) {
                item->place = CHECK_PLACE_METADATA;
                return 0;
        }
        uint64_t index = (off - s->book_area) / s->book_size, within = (off - s->book_area) % s->book_size;
        item->place = CHECK_PLACE_NO_SHELF;
        for (size_t i = 0; i < s->n_igs; i++) {
                const struct ig_range *g = &s->igs[i];
                if (index < g->start || index >= g->start + g->books)
                        continue;
                if (s->remote) {
                        struct remote_book key = { .ig = g->ig, .book_num = index - g->start };
                        const struct remote_book *b = s->n_books ? bsearch(&key, s->books, s->n_books, sizeof *s->books,
                                                                             remote_book_cmp) : NULL;
                        if (!b)
                                return 0;
                        item->shelf = strdup(s->paths[b->shelf]);
                        if (!item->shelf) {
                                item->place = CHECK_PLACE_UNKNOWN;
                                return 0;
                        }
                        item->place = CHECK_PLACE_SHELF;
                        item->shelf_offset = (b->seq - 1) * s->book_size + within;
                        return 0;
                }
                sqlite3_reset(s->book);
                sqlite3_bind_int64(s->book, 1, g->ig);
                sqlite3_bind_int64(s->book, 2, (sqlite3_int64) (index - g->start));
                int k = sqlite3_step(s->book);
                if (k == SQLITE_DONE)
                        return 0;
                if (k != SQLITE_ROW) {
                        item->place = CHECK_PLACE_UNKNOWN;
                        return 0;
                }
                int64_t shelf = sqlite3_column_int64(s->book, 0), seq = sqlite3_column_int64(s->book, 1);
                item->shelf = shelf_path(s, shelf);
                if (!item->shelf) {
                        item->place = CHECK_PLACE_UNKNOWN;
                        return 0;
                }
                item->place = CHECK_PLACE_SHELF;
                item->shelf_offset = (uint64_t) (seq > 0 ? seq - 1 : 0) * s->book_size + within;
                return 0;
        }
        return 0;
}

int check_report_map(const struct check_finding *f, size_t n, uint32_t node, const char *db, const char *librarian,
                     const struct fame_geometry *geo, struct cluster_check_report *ret) {
        struct shelves s = { 0 };
        bool have_shelves = false;

        *ret = (struct cluster_check_report) { .node = node };
        ret->item = calloc(n ? n : 1, sizeof *ret->item);
        if (!ret->item)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (geo && geo->book_size) {
                int r = db ? shelves_open(db, geo, &s) : -ENOENT;
                /* held by the Librarian that serves it (or no database here): ask that one */
                if ((r == -EBUSY || !db) && librarian)
                        r = shelves_remote(librarian, geo, &s);
                have_shelves = r >= 0;
        }
        for (size_t i = 0; i < n; i++) {
                if (node && f[i].node_a != node && f[i].node_b != node)
                        continue;
                struct check_report_item *item = &ret->item[ret->n++];
                item->f = f[i];
                ret->occurrences += f[i].count;
                if (have_shelves)
                        place(&s, item);
        }
        shelves_close(&s);
        return 0;
}

void cluster_check_report_done(struct cluster_check_report *r) {
        if (!r)
                return;
        for (size_t i = 0; r->item && i < r->n; i++)
                free(r->item[i].shelf);
        free(r->item);
        *r = (struct cluster_check_report) { 0 };
}

int cluster_check_report(const struct fame_config *c, const char *node, struct cluster_check_report *ret) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        struct check_report findings = { 0 };
        struct fame_geometry geo;
        struct check *chk = NULL;
        uint32_t id = 0;
        int r;

        *ret = (struct cluster_check_report) { 0 };
        /* the plan says where the FAM and the Librarian are; without one, the configuration */
        bool planned = plan_load(c->state_dir, &cl.plan) >= 0;
        const char *fam = planned ? cl.plan.fam_path : c->fam_path;
        if (node) {
                if (planned)
                        r = cluster_node_id(&cl.plan, node, &id);
                else if ((r = parse_node_name(node, false, &id)) < 0)
                        log_error("'%s' is not a node name: use node01..node%02u or a number", node, FAME_MAX_NODES);
                if (r < 0)
                        return -EINVAL;
        }
        if (!check_exists(c->state_dir))
                return log_error_errno(-ENOENT, "No checker state in %s: start the cluster with fame up --check", c->state_dir);
        r = check_open(c->state_dir, fam, &chk);
        if (r >= 0) {
                r = check_read_findings(chk, &findings);
                check_close(chk);
        }
        if (r < 0)
                return r;       /* the checker logged why */
        _cleanup_free_ char *db = planned ? strf("%s/librarian.db", cl.plan.librarian_dir)
                                          : strf("%s/librarian/librarian.db", c->state_dir);
        bool have_geo = fame_file_inspect(fam, &geo) >= 0;
        /* while the cluster is up its Librarian holds the database: asked on the host port with
         * the owner's secret, as fame shelf does (docs/librarian.md "Who may say what") */
        char address[64] = "";
        if (planned && cl.plan.librarian_port) {
                snprintf(address, sizeof address, "127.0.0.1:%u", cl.plan.librarian_port);
                plan_use_host_secret(&cl.plan);
        }
        r = check_report_map(findings.f, findings.n, id, db, *address ? address : NULL, have_geo ? &geo : NULL, ret);
        ret->overflow = findings.overflow;
        check_report_done(&findings);
        return r;
}
