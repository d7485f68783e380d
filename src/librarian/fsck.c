/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsck of a Librarian database, FAM/E's fsck_lfs (docs/librarian.md "fsck", the model in
 * docs/librarian-model.md).  The checks run in order, each on the database as the repairs of
 * the earlier ones left it, all inside one transaction (BEGIN IMMEDIATE with --repair, committed
 * at the end; a plain read transaction otherwise).  Repairs never free a book that holds a
 * shelf's data: books leave shelves only for zeroing shelves (whose data is being discarded)
 * and for rows naming no shelf; a book on two shelves is reported, never guessed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "fame-constants.h"
#include "fame.h"
#include "fsck.h"
#include "macro.h"
#include "util.h"

#define S_DIR 0040000
#define S_TYPE 0170000

struct fsck {
        sqlite3 *db;
        const struct fsck_options *o;
        struct fsck_result *res;
        char **err;
        int64_t book_size, books_total;
        int64_t lost_found;             /* id of lost+found, 0 if none */
};

struct row {
        int64_t v[6];
        char *text;
};

static void rows_free(struct row *r, size_t n) {
        for (size_t i = 0; r && i < n; i++)
                free(r[i].text);
        free(r);
}

static int db_fail(struct fsck *f, const char *what) {
        set_message(f->err, "Failed to %s the Librarian database '%s': %s", what, f->o->db_path, sqlite3_errmsg(f->db));
        return -EIO;
}

/* Runs sql (integers only interpolated by the caller). */
static int exec(struct fsck *f, const char *fmt, ...) _printf_(2, 3);
static int exec(struct fsck *f, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *sql = vstrf(fmt, ap);
        va_end(ap);
        if (!sql)
                return -ENOMEM;
        if (sqlite3_exec(f->db, sql, NULL, NULL, NULL) != SQLITE_OK)
                return db_fail(f, "write");
        return 0;
}

/* The rows of sql: its first n_int columns as integers, the next one (if any) as text. */
static int rows(struct fsck *f, int n_int, struct row **ret, size_t *ret_n, const char *fmt, ...) _printf_(5, 6);
static int rows(struct fsck *f, int n_int, struct row **ret, size_t *ret_n, const char *fmt, ...) {
        struct row *r = NULL;
        size_t n = 0, cap = 0;
        sqlite3_stmt *st = NULL;
        va_list ap;
        int k;

        va_start(ap, fmt);
        _cleanup_free_ char *sql = vstrf(fmt, ap);
        va_end(ap);
        *ret = NULL;
        *ret_n = 0;
        if (!sql)
                return -ENOMEM;
        if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) != SQLITE_OK)
                return db_fail(f, "read");
        while ((k = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == cap) {
                        cap = cap ? 2 * cap : 16;
                        struct row *nr = realloc(r, cap * sizeof *r);
                        if (!nr) {
                                sqlite3_finalize(st);
                                rows_free(r, n);
                                return -ENOMEM;
                        }
                        r = nr;
                }
                struct row *x = &r[n++];
                *x = (struct row) {};
                for (int i = 0; i < n_int && i < 6; i++)
                        x->v[i] = sqlite3_column_int64(st, i);
                if (sqlite3_column_count(st) > n_int) {
                        const unsigned char *t = sqlite3_column_text(st, n_int);
                        x->text = strdup(t ? (const char *) t : "");
                }
        }
        sqlite3_finalize(st);
        if (k != SQLITE_DONE) {
                rows_free(r, n);
                return db_fail(f, "read");
        }
        *ret = r;
        *ret_n = n;
        return 0;
}

static int value(struct fsck *f, int64_t *ret, const char *fmt, ...) _printf_(3, 4);
static int value(struct fsck *f, int64_t *ret, const char *fmt, ...) {
        sqlite3_stmt *st = NULL;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *sql = vstrf(fmt, ap);
        va_end(ap);
        if (!sql)
                return -ENOMEM;
        if (sqlite3_prepare_v2(f->db, sql, -1, &st, NULL) != SQLITE_OK)
                return db_fail(f, "read");
        int k = sqlite3_step(st);
        *ret = k == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        return k == SQLITE_ROW || k == SQLITE_DONE ? 0 : db_fail(f, "read");
}

/* Records a problem.  repair: what --repair does about it, NULL if nothing; it is recorded as
 * done only with --repair (the caller then does it). */
static int add(struct fsck *f, const char *check, bool note, const char *repair, char *object,
               const char *fmt, ...) _printf_(6, 7);
static int add(struct fsck *f, const char *check, bool note, const char *repair, char *object,
               const char *fmt, ...) {
        struct fsck_result *res = f->res;
        va_list ap;

        if (!object)
                return -ENOMEM;
        struct fsck_problem *np = realloc(res->p, (res->n + 1) * sizeof *np);
        if (!np) {
                free(object);
                return -ENOMEM;
        }
        res->p = np;
        struct fsck_problem *p = &res->p[res->n];
        va_start(ap, fmt);
        *p = (struct fsck_problem) { .check = check, .object = object, .message = vstrf(fmt, ap),
                                     .repairable = repair != NULL, .note = note };
        va_end(ap);
        if (repair && f->o->repair) {
                p->repair = strdup(repair);
                res->n_repaired++;
        }
        res->n++;
        if (!note)
                res->n_problems++;
        return p->message && (!repair || !f->o->repair || p->repair) ? 0 : -ENOMEM;
}

static char *shelf_obj(int64_t id, const char *name) {
        return strf("shelf %lld \"%s\"", (long long) id, name ? name : "");
}

static char *book_obj(int64_t id) {
        return strf("book 0x%llx", (unsigned long long) id);
}

#define TRY(expr) do { int _r = (expr); if (_r < 0) return _r; } while (0)
#define REPAIR(...) do { if (f->o->repair) TRY(exec(f, __VA_ARGS__)); } while (0)

/* SQL: the shelf's name starts with the zeroing prefix */
#define ZEROING(col) "substr(" col ", 1, " STRINGIFY_LEN ") = '" FAME_LFS_PENDING_ZERO_PREFIX "'"
#define STRINGIFY_LEN "18"
_Static_assert(sizeof FAME_LFS_PENDING_ZERO_PREFIX - 1 == 18, "STRINGIFY_LEN");

/* ---- globals ------------------------------------------------------------------------------- */

static int check_globals(struct fsck *f) {
        struct row *r = NULL;
        size_t n = 0;

        TRY(rows(f, 3, &r, &n, "SELECT book_size_bytes, nvm_bytes_total, books_total, schema_version FROM globals"));
        if (n != 1) {
                rows_free(r, n);
                set_message(f->err, "'%s': globals has %zu rows, not 1: not a Librarian database", f->o->db_path, n);
                return -EINVAL;
        }
        struct row g = r[0];
        bool schema = g.text && strcmp(g.text, LIBRARIAN_SCHEMA) == 0;
        rows_free(r, n);
        if (!schema) {
                set_message(f->err, "'%s': schema version is not %s", f->o->db_path, LIBRARIAN_SCHEMA);
                return -EINVAL;
        }
        f->book_size = g.v[0];
        if (f->book_size <= 0 || (f->book_size & (f->book_size - 1))) {
                set_message(f->err, "'%s': book size %lld is not a power of two", f->o->db_path, (long long) f->book_size);
                return -EINVAL;
        }
        TRY(value(f, &f->books_total, "SELECT count(*) FROM books"));
        if (g.v[2] != f->books_total) {
                TRY(add(f, "globals-books", false, "set books_total", strdup("globals"),
                        "books_total is %lld, the books table has %lld books", (long long) g.v[2], (long long) f->books_total));
                REPAIR("UPDATE globals SET books_total = %lld", (long long) f->books_total);
        }
        if (g.v[1] != f->books_total * f->book_size) {
                TRY(add(f, "globals-bytes", false, "set nvm_bytes_total", strdup("globals"),
                        "nvm_bytes_total is %lld, %lld books of %lld bytes are %lld", (long long) g.v[1],
                        (long long) f->books_total, (long long) f->book_size, (long long) (f->books_total * f->book_size)));
                REPAIR("UPDATE globals SET nvm_bytes_total = %lld", (long long) (f->books_total * f->book_size));
        }
        return 0;
}

/* ---- the three initial shelves --------------------------------------------------------------- */

static int check_special(struct fsck *f) {
        static const struct { int64_t id, parent, links; const char *name; } special[] = {
                { 1, 0, 0, "garbage" }, { 2, 2, 3, "." }, { 3, 2, 2, "lost+found" },
        };
        for (size_t i = 0; i < ELEMENTSOF(special); i++) {
                struct row *r = NULL;
                size_t n = 0;
                int64_t id = special[i].id;
                TRY(rows(f, 2, &r, &n, "SELECT mode, parent_id, name FROM shelves WHERE id = %lld", (long long) id));
                bool ok = n == 1 && (r[0].v[0] & S_TYPE) == S_DIR && r[0].v[1] == special[i].parent &&
                          strcmp(r[0].text, special[i].name) == 0;
                bool missing = n == 0;
                _cleanup_free_ char *name = n ? strdup(r[0].text) : NULL;
                rows_free(r, n);
                if (ok)
                        continue;
                if (missing) {
                        TRY(add(f, "special-shelf", false, "recreated it", shelf_obj(id, special[i].name),
                                "is missing"));
                        REPAIR("INSERT INTO shelves VALUES (%lld, 0, 0, 0, strftime('%%s','now'), strftime('%%s','now'),"
                               " '%s', %d, %lld, %lld, 0, 0)", (long long) id, special[i].name, S_DIR | 0777,
                               (long long) special[i].parent, (long long) special[i].links);
                } else if (id == 3) {
                        /* another shelf took id 3: it keeps its data; there is no lost+found */
                        TRY(add(f, "special-shelf", false, NULL, shelf_obj(id, name),
                                "is not the directory lost+found in the root"));
                        continue;
                } else {
                        TRY(add(f, "special-shelf", false, "made it a directory with its name and parent",
                                shelf_obj(id, name), "is not the directory \"%s\" with parent %lld",
                                special[i].name, (long long) special[i].parent));
                        REPAIR("UPDATE shelves SET mode = %d, parent_id = %lld, name = '%s' WHERE id = %lld",
                               S_DIR | 0777, (long long) special[i].parent, special[i].name, (long long) id);
                }
        }
        int64_t lf = 0;
        TRY(value(f, &lf, "SELECT id FROM shelves WHERE id = 3 AND name = 'lost+found' AND parent_id = 2"
                          " AND (mode & %d) = %d", S_TYPE, S_DIR));
        f->lost_found = lf;
        return 0;
}

/* ---- zeroing shelves: finish lfs_fuse's unlink cycle ------------------------------------------ */

static int check_zeroing(struct fsck *f) {
        struct row *r = NULL;
        size_t n = 0;
        int r2 = 0;

        TRY(rows(f, 2, &r, &n, "SELECT s.id, (SELECT count(*) FROM books_on_shelves o WHERE o.shelf_id = s.id"
                 " AND o.book_id IN (SELECT book_id FROM books_on_shelves p WHERE p.shelf_id != s.id)), s.name"
                 " FROM shelves s WHERE " ZEROING("s.name") " AND (s.mode & %d) != %d AND s.id > 3 ORDER BY s.id",
                 S_TYPE, S_DIR));
        for (size_t i = 0; i < n && r2 >= 0; i++) {
                int64_t id = r[i].v[0];
                if (r[i].v[1] > 0) {
                        r2 = add(f, "zeroing-shelf", false, NULL, shelf_obj(id, r[i].text),
                                 "zeroing shelf left by a crash, not destroyed: %lld of its books are also on another shelf",
                                 (long long) r[i].v[1]);
                        continue;
                }
                r2 = add(f, "zeroing-shelf", false, "resized it to 0 and destroyed it: its books are ZOMBIE, to be zeroed",
                         shelf_obj(id, r[i].text), "zeroing shelf left by a crash");
                if (r2 >= 0 && f->o->repair)
                        r2 = exec(f, "UPDATE books SET allocated = 2 WHERE allocated = 1 AND id IN"
                                     " (SELECT book_id FROM books_on_shelves WHERE shelf_id = %1$lld);"
                                     "DELETE FROM books_on_shelves WHERE shelf_id = %1$lld;"
                                     "DELETE FROM shelf_xattrs WHERE shelf_id = %1$lld;"
                                     "DELETE FROM links WHERE shelf_id = %1$lld;"
                                     "DELETE FROM opened_shelves WHERE shelf_id = %1$lld;"
                                     "DELETE FROM shelves WHERE id = %1$lld;", (long long) id);
        }
        rows_free(r, n);
        return r2;
}

/* ---- books_on_shelves rows and book states --------------------------------------------------- */

static int check_books(struct fsck *f) {
        struct row *r = NULL;
        size_t n = 0;
        int k = 0;

        /* rows naming no shelf or no book */
        TRY(rows(f, 3, &r, &n, "SELECT rowid, shelf_id, book_id FROM books_on_shelves WHERE shelf_id NOT IN"
                 " (SELECT id FROM shelves) OR book_id NOT IN (SELECT id FROM books) ORDER BY rowid"));
        for (size_t i = 0; i < n && k >= 0; i++) {
                k = add(f, "book-row", false, "deleted the row", book_obj(r[i].v[2]),
                        "is listed on shelf %lld (place %lld), but %s", (long long) r[i].v[1], (long long) r[i].v[0],
                        "that shelf or that book does not exist");
                if (k >= 0 && f->o->repair)
                        k = exec(f, "DELETE FROM books_on_shelves WHERE rowid = %lld", (long long) r[i].v[0]);
        }
        rows_free(r, n);
        TRY(k);

        /* a book on two shelves (possible in a database without IDX_bos_book): reported only */
        TRY(rows(f, 2, &r, &n, "SELECT book_id, count(*), group_concat(shelf_id, ', ') FROM books_on_shelves"
                 " GROUP BY book_id HAVING count(*) > 1 ORDER BY book_id"));
        for (size_t i = 0; i < n && k >= 0; i++)
                k = add(f, "book-two-shelves", false, NULL, book_obj(r[i].v[0]),
                        "is on %lld shelves (%s): not repaired, decide which shelf keeps it", (long long) r[i].v[1], r[i].text);
        rows_free(r, n);
        TRY(k);

        /* ZOMBIE books on no shelf: the zeroing did not finish; a note, the Librarian zeroes them
         * when it starts (with its FAM) */
        TRY(rows(f, 1, &r, &n, "SELECT id FROM books WHERE allocated = 2 AND id NOT IN"
                 " (SELECT book_id FROM books_on_shelves) ORDER BY id"));
        for (size_t i = 0; i < n && k >= 0; i++)
                k = add(f, "book-zombie", true, NULL, book_obj(r[i].v[0]),
                        "is ZOMBIE on no shelf: not zeroed yet; the Librarian zeroes it when it starts");
        rows_free(r, n);
        TRY(k);

        /* books on a shelf that are not INUSE (ZOMBIE is right on a zeroing shelf): they hold
         * the shelf's data */
        TRY(rows(f, 3, &r, &n, "SELECT b.id, b.allocated, s.id, s.name FROM books b JOIN books_on_shelves o"
                 " ON o.book_id = b.id JOIN shelves s ON s.id = o.shelf_id WHERE b.allocated != 1"
                 " AND NOT (b.allocated = 2 AND " ZEROING("s.name") ") ORDER BY b.id"));
        for (size_t i = 0; i < n && k >= 0; i++) {
                k = add(f, "book-state", false, "marked it INUSE", book_obj(r[i].v[0]),
                        "is on shelf %lld \"%s\" but its state is %lld, not INUSE (1)", (long long) r[i].v[2], r[i].text,
                        (long long) r[i].v[1]);
                if (k >= 0 && f->o->repair)
                        k = exec(f, "UPDATE books SET allocated = 1 WHERE id = %lld", (long long) r[i].v[0]);
        }
        rows_free(r, n);
        TRY(k);

        /* INUSE (or unknown state) on no shelf: an orphan; it holds no shelf's data */
        TRY(rows(f, 2, &r, &n, "SELECT id, allocated FROM books WHERE allocated NOT IN (0, 2, 3) AND id NOT IN"
                 " (SELECT book_id FROM books_on_shelves) ORDER BY id"));
        for (size_t i = 0; i < n && k >= 0; i++) {
                k = add(f, "book-orphan", false, "marked it ZOMBIE, to be zeroed", book_obj(r[i].v[0]),
                        "is %s (state %lld) but on no shelf", r[i].v[1] == 1 ? "INUSE" : "in an unknown state",
                        (long long) r[i].v[1]);
                if (k >= 0 && f->o->repair)
                        k = exec(f, "UPDATE books SET allocated = 2 WHERE id = %lld", (long long) r[i].v[0]);
        }
        rows_free(r, n);
        return k;
}

/* ---- each shelf's books: places 1..n, book_count, size_bytes --------------------------------- */

static int renumber(struct fsck *f, int64_t shelf) {
        struct row *r = NULL;
        size_t n = 0;
        int k;

        TRY(rows(f, 1, &r, &n, "SELECT rowid FROM books_on_shelves WHERE shelf_id = %lld ORDER BY seq_num, rowid",
                 (long long) shelf));
        /* out of the way first: IDX_bos_shelf is unique */
        k = exec(f, "UPDATE books_on_shelves SET seq_num = -rowid WHERE shelf_id = %lld", (long long) shelf);
        for (size_t i = 0; i < n && k >= 0; i++)
                k = exec(f, "UPDATE books_on_shelves SET seq_num = %zu WHERE rowid = %lld", i + 1, (long long) r[i].v[0]);
        rows_free(r, n);
        return k;
}

static int check_shelf_books(struct fsck *f) {
        struct row *r = NULL;
        size_t n = 0;
        int k = 0;
        int64_t bs = f->book_size;

        TRY(rows(f, 6, &r, &n, "SELECT s.id, s.book_count, s.size_bytes, s.mode, count(o.rowid),"
                 " coalesce(max(o.seq_num), 0) = count(o.rowid) AND coalesce(min(o.seq_num), 1) = 1"
                 " AND count(DISTINCT o.seq_num) = count(o.rowid), s.name"
                 " FROM shelves s LEFT JOIN books_on_shelves o ON o.shelf_id = s.id GROUP BY s.id ORDER BY s.id"));
        for (size_t i = 0; i < n && k >= 0; i++) {
                int64_t id = r[i].v[0], count = r[i].v[1], size = r[i].v[2], mode = r[i].v[3], books = r[i].v[4];
                bool holds = (mode & S_TYPE) == 0100000 || (mode & S_TYPE) == 0060000;
                if (!r[i].v[5]) {
                        k = add(f, "shelf-seq", false, "renumbered them 1..n in their order", shelf_obj(id, r[i].text),
                                "the places (seq_num) of its %lld books are not 1..%lld", (long long) books, (long long) books);
                        if (k >= 0 && f->o->repair)
                                k = renumber(f, id);
                }
                if (k >= 0 && count != books) {
                        k = add(f, "shelf-count", false, "set book_count", shelf_obj(id, r[i].text),
                                "book_count is %lld but %lld books are on it", (long long) count, (long long) books);
                        if (k >= 0 && f->o->repair)
                                k = exec(f, "UPDATE shelves SET book_count = %lld WHERE id = %lld", (long long) books, (long long) id);
                }
                if (k < 0 || (!holds && books == 0 && size == 0))
                        continue;
                if (size < 0 || size > books * bs) {
                        k = add(f, "shelf-size", false, "cut size_bytes to its books", shelf_obj(id, r[i].text),
                                "size_bytes %lld does not fit its %lld books of %lld bytes", (long long) size,
                                (long long) books, (long long) bs);
                        if (k >= 0 && f->o->repair)
                                k = exec(f, "UPDATE shelves SET size_bytes = %lld WHERE id = %lld",
                                         (long long) (books * bs), (long long) id);
                } else if ((size + bs - 1) / bs != books) {
                        /* keep the books (they may hold data written past a stale size) */
                        k = add(f, "shelf-size", false, "raised size_bytes to cover its books (none freed)",
                                shelf_obj(id, r[i].text), "size_bytes %lld needs %lld books, %lld are on it",
                                (long long) size, (long long) ((size + bs - 1) / bs), (long long) books);
                        if (k >= 0 && f->o->repair)
                                k = exec(f, "UPDATE shelves SET size_bytes = %lld WHERE id = %lld",
                                         (long long) (books * bs), (long long) id);
                }
        }
        rows_free(r, n);
        return k;
}

/* ---- the name space: parents, link counts ----------------------------------------------------- */

static int check_parents(struct fsck *f) {
        struct row *r = NULL;
        size_t n = 0;
        int k = 0;

        TRY(rows(f, 2, &r, &n, "SELECT s.id, s.parent_id, s.name FROM shelves s LEFT JOIN shelves p ON p.id = s.parent_id"
                 " WHERE s.id > 2 AND (p.id IS NULL OR p.id = 1 OR (p.mode & %d) != %d) ORDER BY s.id", S_TYPE, S_DIR));
        for (size_t i = 0; i < n && k >= 0; i++) {
                int64_t id = r[i].v[0];
                bool can = f->lost_found && id != f->lost_found;
                k = add(f, "shelf-parent", false, can ? "moved it to lost+found" : NULL, shelf_obj(id, r[i].text),
                        "its parent %lld does not exist or is not a directory", (long long) r[i].v[1]);
                if (k < 0 || !can || !f->o->repair)
                        continue;
                int64_t taken = 0;
                k = value(f, &taken, "SELECT count(*) FROM shelves WHERE parent_id = %lld AND name = (SELECT name FROM shelves"
                          " WHERE id = %lld)", (long long) f->lost_found, (long long) id);
                if (k >= 0)
                        k = exec(f, "UPDATE shelves SET parent_id = %lld%s WHERE id = %lld", (long long) f->lost_found,
                                 taken ? ", name = name || '.' || id" : "", (long long) id);
        }
        rows_free(r, n);
        TRY(k);

        /* cycles: shelves the root does not reach though their parents exist; with --repair the
         * lowest id of them moves to lost+found (with its subtree), until the root reaches all */
        for (int64_t round = 0; k >= 0; round++) {
                TRY(rows(f, 2, &r, &n, "WITH RECURSIVE up(id) AS (SELECT 2 UNION SELECT s.id FROM shelves s JOIN up"
                         " ON s.parent_id = up.id) SELECT id, parent_id, name FROM shelves WHERE id > 2 AND id NOT IN"
                         " (SELECT id FROM up) ORDER BY id"));
                bool can = f->lost_found && f->o->repair && n > 0 && round < 100000;
                for (size_t i = 0; i < n && k >= 0 && (i == 0 || !can); i++)
                        k = add(f, "shelf-cycle", false, f->lost_found ? "moved it to lost+found" : NULL,
                                shelf_obj(r[i].v[0], r[i].text), "is not reachable from the root: its ancestors (parent %lld) form a cycle",
                                (long long) r[i].v[1]);
                if (k >= 0 && can)
                        k = exec(f, "UPDATE shelves SET parent_id = %lld WHERE id = %lld", (long long) f->lost_found, (long long) r[0].v[0]);
                rows_free(r, n);
                if (!can)
                        break;
        }
        TRY(k);

        /* two shelves of one name in one directory: the later ones are renamed NAME.ID */
        TRY(rows(f, 2, &r, &n, "SELECT s.id, s.parent_id, s.name FROM shelves s WHERE s.id > 3 AND EXISTS (SELECT 1"
                 " FROM shelves t WHERE t.parent_id = s.parent_id AND t.name = s.name AND t.id < s.id) ORDER BY s.id"));
        for (size_t i = 0; i < n && k >= 0; i++) {
                k = add(f, "shelf-name", false, "renamed it NAME.ID", shelf_obj(r[i].v[0], r[i].text),
                        "another shelf of directory %lld has its name", (long long) r[i].v[1]);
                if (k >= 0 && f->o->repair)
                        k = exec(f, "UPDATE shelves SET name = name || '.' || id WHERE id = %lld", (long long) r[i].v[0]);
        }
        rows_free(r, n);
        TRY(k);

        TRY(rows(f, 4, &r, &n, "SELECT s.id, s.link_count, s.mode, (SELECT count(*) FROM shelves c WHERE c.parent_id = s.id"
                 " AND c.id != s.id AND (c.mode & %d) = %d), s.name FROM shelves s WHERE s.id != 1 ORDER BY s.id", S_TYPE, S_DIR));
        for (size_t i = 0; i < n && k >= 0; i++) {
                int64_t want = (r[i].v[2] & S_TYPE) == S_DIR ? 2 + r[i].v[3] : 1;
                if (r[i].v[1] == want)
                        continue;
                k = add(f, "shelf-links", false, "set link_count", shelf_obj(r[i].v[0], r[i].text),
                        "link_count is %lld, should be %lld", (long long) r[i].v[1], (long long) want);
                if (k >= 0 && f->o->repair)
                        k = exec(f, "UPDATE shelves SET link_count = %lld WHERE id = %lld", (long long) want, (long long) r[i].v[0]);
        }
        rows_free(r, n);
        return k;
}

/* ---- open handles ------------------------------------------------------------------------------ */

static int check_opened(struct fsck *f) {
        struct row *r = NULL;
        size_t n = 0;
        int k = 0;

        /* A handle of an existing shelf is not stale, Librarian running or not: a stopped
         * Librarian's handles wait at its next start for their clients to reclaim them (its grace
         * period), and keep their shelves from shrinking meanwhile.  A handle of a shelf that
         * does not exist is. */
        TRY(rows(f, 4, &r, &n, "SELECT id, shelf_id, node_id, pid FROM opened_shelves"
                 " WHERE shelf_id NOT IN (SELECT id FROM shelves) ORDER BY id"));
        for (size_t i = 0; i < n && k >= 0; i++) {
                k = add(f, "open-handle", false, "deleted it", strf("handle %lld", (long long) r[i].v[0]),
                        "of shelf %lld (node %lld, pid %lld) is stale: its shelf does not exist", (long long) r[i].v[1],
                        (long long) r[i].v[2], (long long) r[i].v[3]);
                if (k >= 0 && f->o->repair)
                        k = exec(f, "DELETE FROM opened_shelves WHERE id = %lld", (long long) r[i].v[0]);
        }
        rows_free(r, n);
        return k;
}

/* ---- pending zeroings of truncated books ------------------------------------------------------ */

static int check_pending_zero(struct fsck *f) {
        struct row *r = NULL;
        size_t n = 0;
        int64_t has = 0;
        int k = 0;

        /* a database of the original or of an older FAM/E has no such table */
        TRY(rows(f, 1, &r, &n, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'fame_pending_zero'"));
        has = n ? r[0].v[0] : 0;
        rows_free(r, n);
        if (!has)
                return 0;
        /* v[5]: whether it still applies (the Librarian's test, engine_pending_tails) */
        TRY(rows(f, 6, &r, &n, "SELECT p.rowid, p.shelf_id, p.book_id, p.offset, p.length,"
                 " p.offset >= 0 AND p.length > 0 AND p.offset + p.length <= %1$lld AND EXISTS"
                 " (SELECT 1 FROM books_on_shelves b JOIN shelves s ON s.id = b.shelf_id"
                 "  WHERE b.shelf_id = p.shelf_id AND b.book_id = p.book_id AND b.seq_num = p.seq_num"
                 "  AND s.size_bytes <= (b.seq_num - 1) * %1$lld + p.offset)"
                 " FROM fame_pending_zero p ORDER BY p.rowid", (long long) f->book_size));
        for (size_t i = 0; i < n && k >= 0; i++) {
                char *obj = book_obj(r[i].v[2]);
                if (r[i].v[5])
                        k = add(f, "pending-zero", true, NULL, obj,
                                "bytes %lld-%lld of shelf %lld's last book: a truncation's zeroing did not finish; "
                                "the Librarian zeroes them when it starts", (long long) r[i].v[3],
                                (long long) (r[i].v[3] + r[i].v[4]), (long long) r[i].v[1]);
                else {
                        k = add(f, "pending-zero", false, "deleted the record", obj,
                                "a pending zeroing of bytes %lld-%lld for shelf %lld no longer applies: the book is not "
                                "at that place of that shelf, or the shelf grew over them", (long long) r[i].v[3],
                                (long long) (r[i].v[3] + r[i].v[4]), (long long) r[i].v[1]);
                        if (k >= 0 && f->o->repair)
                                k = exec(f, "DELETE FROM fame_pending_zero WHERE rowid = %lld", (long long) r[i].v[0]);
                }
        }
        rows_free(r, n);
        return k;
}

/* ---- the FAM --------------------------------------------------------------------------------- */

static int check_fam(struct fsck *f) {
        struct fame_geometry g;
        int r = fame_file_inspect(f->o->fam_path, &g);

        if (r < 0) {
                set_message(f->err, "Cannot read FAM '%s': %s", f->o->fam_path, strerror(-r));
                return r;
        }
        char *obj = strf("FAM '%s'", f->o->fam_path);
        if ((int64_t) g.book_size != f->book_size)
                return add(f, "fam-geometry", false, NULL, obj, "book size %llu, the database's is %lld",
                           (unsigned long long) g.book_size, (long long) f->book_size);
        uint64_t fam_books = (uint64_t) g.node_count * g.books_per_node;
        if (fam_books != (uint64_t) f->books_total || fam_books > g.books_total)
                return add(f, "fam-geometry", false, NULL, obj, "%llu books (%u nodes of %u), the database has %lld",
                           (unsigned long long) fam_books, g.node_count, g.books_per_node, (long long) f->books_total);
        free(obj);
        return 0;
}

/* ---- the server, the whole ------------------------------------------------------------------- */

static bool same_file(const char *a, const char *b) {
        struct stat sa, sb;
        return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The cluster's layout: STATE/librarian/librarian.pid beside librarian.db, and that process's
 * command line naming the database. */
static pid_t pidfile_pid(const char *db_path) {
        _cleanup_free_ char *dir = strdup(db_path);
        if (!dir)
                return 0;
        char *slash = strrchr(dir, '/');
        _cleanup_free_ char *pidfile = slash ? (*slash = 0, strf("%s/librarian.pid", *dir ? dir : "/"))
                                             : strdup("librarian.pid");
        _cleanup_free_ char *text = pidfile ? read_file(pidfile, 64, NULL) : NULL;
        long pid = text ? strtol(text, NULL, 10) : 0;
        if (pid <= 0 || pid > INT_MAX || (kill((pid_t) pid, 0) < 0 && errno != EPERM))
                return 0;
        _cleanup_free_ char *path = strf("/proc/%ld/cmdline", pid);
        size_t len = 0;
        _cleanup_free_ char *cmdline = path ? read_file(path, 1 << 16, &len) : NULL;
        for (size_t i = 0; cmdline && i < len; i += strlen(cmdline + i) + 1) {
                const char *arg = cmdline + i;
                if (strncmp(arg, "--db=", 5) == 0)
                        arg += 5;
                if (same_file(arg, db_path))
                        return (pid_t) pid;
        }
        return 0;
}

pid_t fsck_server_pid(const char *db_path) {
        pid_t pid = pidfile_pid(db_path);
        if (pid)
                return pid;
        /* any process with the database open in WAL mode holds a read lock on the DMS byte of the
         * -shm file (SQLite's unix VFS: byte 128) */
        _cleanup_free_ char *shm = strf("%s-shm", db_path);
        int fd = shm ? open(shm, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0)
                return 0;
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 128, .l_len = 1 };
        int r = fcntl(fd, F_GETLK, &fl);
        close(fd);
        return r == 0 && fl.l_type != F_UNLCK ? fl.l_pid : 0;
}

void fsck_result_done(struct fsck_result *r) {
        if (!r)
                return;
        for (size_t i = 0; r->p && i < r->n; i++) {
                free(r->p[i].object);
                free(r->p[i].message);
                free(r->p[i].repair);
        }
        free(r->p);
        *r = (struct fsck_result) {};
}

int librarian_fsck(const struct fsck_options *o, struct fsck_result *ret, char **ret_error) {
        struct fsck f = { .o = o, .res = ret, .err = ret_error };
        int r;

        *ret = (struct fsck_result) {};
        if (access(o->db_path, F_OK) < 0) {
                r = negative_errno();
                set_message(ret_error, "Cannot open the Librarian database '%s': %s", o->db_path, strerror(-r));
                return r;
        }
        ret->server_pid = fsck_server_pid(o->db_path);
        if (o->repair && ret->server_pid) {
                set_message(ret_error, "A Librarian (pid %d) is serving '%s': stop it (fame down) before fsck --repair",
                            (int) ret->server_pid, o->db_path);
                return -EBUSY;
        }
        if (sqlite3_open_v2(o->db_path, &f.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
                set_message(ret_error, "Cannot open the Librarian database '%s': %s", o->db_path,
                            f.db ? sqlite3_errmsg(f.db) : "out of memory");
                sqlite3_close(f.db);
                return -EIO;
        }
        sqlite3_busy_timeout(f.db, 5000);
        r = exec(&f, "%s", o->repair ? "BEGIN IMMEDIATE" : "BEGIN");
        if (r >= 0)
                r = check_globals(&f);
        if (r >= 0)
                r = check_special(&f);
        if (r >= 0)
                r = check_zeroing(&f);
        if (r >= 0)
                r = check_books(&f);
        if (r >= 0)
                r = check_shelf_books(&f);
        if (r >= 0)
                r = check_parents(&f);
        if (r >= 0)
                r = check_opened(&f);
        if (r >= 0)
                r = check_pending_zero(&f);
        if (r >= 0 && o->fam_path)
                r = check_fam(&f);
        if (r >= 0)
                r = exec(&f, "%s", o->repair ? "COMMIT" : "ROLLBACK");
        if (r < 0) {
                sqlite3_exec(f.db, "ROLLBACK", NULL, NULL, NULL);
                if (ret_error && !*ret_error)
                        set_message(ret_error, "fsck of '%s' failed: %s", o->db_path, strerror(-r));
                fsck_result_done(ret);
        }
        sqlite3_close(f.db);
        return r;
}
