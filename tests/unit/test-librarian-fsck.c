/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsck of a Librarian database (src/librarian/fsck.c, docs/librarian.md "fsck"): a database
 * with shelves made by the engine is corrupted with SQL, one way per check; fsck finds each
 * problem, --repair fixes what it may, fsck is then clean, and every shelf keeps its books in
 * their order.  Also: all corruptions at once, the FAM geometry, and --repair refused while
 * another process has the database open.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "fame.h"
#include "fsck.h"
#include "librarian-fixture.h"
#include "macro.h"
#include "testlib.h"

static char clean_db[512], fam[512];
static long long book_size, sa, sb, sd, sf, sz, free1, free2, a1;

static void req(struct engine *e, const char *fmt, ...) _printf_(2, 3);
static void req(struct engine *e, const char *fmt, ...) {
        char buf[1024], *reply = NULL;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        for (char *p = buf; *p; p++)
                if (*p == '\'')
                        *p = '"';
        CHECK(engine_handle_text(e, buf, &reply) == 0 && reply && !strstr(reply, "errmsg"), "%s: %s", buf, reply ? reply : "");
        free(reply);
}

static long long q(const char *db, const char *fmt, ...) _printf_(2, 3);
static long long q(const char *db, const char *fmt, ...) {
        char sql[1024];
        sqlite3 *h = NULL;
        sqlite3_stmt *st = NULL;
        long long v = -1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sql, sizeof sql, fmt, ap);
        va_end(ap);
        CHECK(sqlite3_open(db, &h) == SQLITE_OK, "open %s", db);
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        else
                CHECK(false, "%s: %s", sql, sqlite3_errmsg(h));
        sqlite3_finalize(st);
        sqlite3_close(h);
        return v;
}

static void sql(const char *db, const char *s) {
        sqlite3 *h = NULL;
        char *msg = NULL;
        CHECK(sqlite3_open(db, &h) == SQLITE_OK, "open %s", db);
        CHECK(sqlite3_exec(h, s, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", s, msg ? msg : "");
        sqlite3_free(msg);
        sqlite3_close(h);
}

/* Each shelf's books in order, as one text: "id:book,book,...;" (the zeroing shelf sz left out
 * when skip_z). */
static char *fingerprint(const char *db, bool skip_z) {
        sqlite3 *h = NULL;
        sqlite3_stmt *st = NULL;
        char *out = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&out, &len);
        sqlite3_open(db, &h);
        sqlite3_prepare_v2(h, "SELECT shelf_id, book_id FROM books_on_shelves WHERE shelf_id IN (SELECT id FROM shelves)"
                           " ORDER BY shelf_id, seq_num", -1, &st, NULL);
        while (sqlite3_step(st) == SQLITE_ROW)
                if (!skip_z || sqlite3_column_int64(st, 0) != sz)
                        fprintf(m, "%lld:%lld;", (long long) sqlite3_column_int64(st, 0), (long long) sqlite3_column_int64(st, 1));
        sqlite3_finalize(st);
        sqlite3_close(h);
        fclose(m);
        return out;
}

static int run(const char *db, bool repair, const char *fam_path, struct fsck_result *res) {
        struct fsck_options o = { .db_path = db, .fam_path = fam_path, .repair = repair };
        char *err = NULL;
        int r = librarian_fsck(&o, res, &err);
        CHECK(r >= 0, "fsck %s: %s", db, err ? err : "");
        free(err);
        return r;
}

static size_t count(const struct fsck_result *res, const char *check, bool repaired) {
        size_t n = 0;
        for (size_t i = 0; i < res->n; i++)
                if (strcmp(res->p[i].check, check) == 0 && (!repaired || res->p[i].repair))
                        n++;
        return n;
}

static void dump(const struct fsck_result *res) {
        for (size_t i = 0; i < res->n; i++)
                fprintf(stderr, "  %s %s: %s [%s]\n", res->p[i].check, res->p[i].object, res->p[i].message,
                        res->p[i].repair ? res->p[i].repair : "-");
}

static void copy_clean(const char *to) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", clean_db, to);
        CHECK(system(cmd) == 0, "%s", cmd);
}

/* One corruption: fsck finds `check` (n times at least), --repair fixes it, fsck is then clean
 * (notes allowed) and every shelf keeps its books. */
static void one(const char *name, const char *corrupt, const char *check, size_t n, bool repairable) {
        char db[600];
        struct fsck_result res;
        snprintf(db, sizeof db, "%s/%s.db", test_tmpdir(), name);
        copy_clean(db);
        sql(db, corrupt);
        bool zeroing = strcmp(check, "zeroing-shelf") == 0;
        char *before = fingerprint(db, zeroing);

        int failures = test_failures;
        if (run(db, false, NULL, &res) >= 0) {
                CHECK(count(&res, check, false) >= n && res.n_problems >= n && res.n_repaired == 0,
                      "%s: %zu '%s' of %zu problems", name, count(&res, check, false), check, res.n_problems);
                if (test_failures != failures)
                        dump(&res);
                fsck_result_done(&res);
        }
        if (run(db, true, NULL, &res) >= 0) {
                CHECK(repairable ? count(&res, check, true) >= n : count(&res, check, true) == 0,
                      "%s: %zu '%s' repaired", name, count(&res, check, true), check);
                fsck_result_done(&res);
        }
        if (run(db, false, NULL, &res) >= 0) {
                if (repairable)
                        CHECK(res.n_problems == 0, "%s: %zu problems after --repair", name, res.n_problems);
                else
                        CHECK(count(&res, check, false) >= n, "%s: '%s' still reported", name, check);
                if (res.n_problems && repairable)
                        dump(&res);
                fsck_result_done(&res);
        }
        char *after = fingerprint(db, zeroing);
        CHECK(strcmp(before, after) == 0, "%s: shelves lost books:\n  %s\n  %s", name, before, after);
        free(before);
        free(after);
}

static void make_clean(void) {
        struct fame_geometry geo;
        char db[512], *err = NULL;
        struct engine *e = NULL;

        if (librarian_fixture(UINT64_C(1) << 30, 4, fam, sizeof fam, db, sizeof db, &geo) < 0)
                exit(test_exit());
        book_size = (long long) geo.book_size;
        snprintf(clean_db, sizeof clean_db, "%s", db);
        CHECK(engine_open(db, &e, &err) == 0, "open: %s", err ? err : "");
        free(err);
        if (!e)
                exit(test_exit());
#define C1 "{'node_id': 1, 'uid': 0, 'gid': 0, 'pid': 100, 'seq': 7}"
        req(e, "{'command': 'create_shelf', 'context': " C1 ", 'path': '/a', 'mode': 33188}");
        req(e, "{'command': 'create_shelf', 'context': " C1 ", 'path': '/b', 'mode': 33188}");
        req(e, "{'command': 'mkdir', 'context': " C1 ", 'path': '/d', 'mode': 16895}");
        req(e, "{'command': 'create_shelf', 'context': " C1 ", 'path': '/d/f', 'mode': 33188}");
        req(e, "{'command': 'create_shelf', 'context': " C1 ", 'path': '/z', 'mode': 33188}");
        engine_free(e);
        sa = q(db, "SELECT id FROM shelves WHERE name = 'a'");
        sb = q(db, "SELECT id FROM shelves WHERE name = 'b'");
        sd = q(db, "SELECT id FROM shelves WHERE name = 'd'");
        sf = q(db, "SELECT id FROM shelves WHERE name = 'f'");
        sz = q(db, "SELECT id FROM shelves WHERE name = 'z'");
        CHECK(engine_open(db, &e, &err) == 0, "open: %s", err ? err : "");
        free(err);
        req(e, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/a', 'id': %lld, 'size_bytes': %lld, 'zero_enabled': true}", sa, 3 * book_size - 100);
        req(e, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/b', 'id': %lld, 'size_bytes': %lld, 'zero_enabled': true}", sb, 2 * book_size);
        req(e, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/d/f', 'id': %lld, 'size_bytes': %lld, 'zero_enabled': true}", sf, book_size);
        req(e, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/z', 'id': %lld, 'size_bytes': %lld, 'zero_enabled': true}", sz, 2 * book_size);
        engine_free(e);
        free1 = q(db, "SELECT min(id) FROM books WHERE allocated = 0");
        free2 = q(db, "SELECT max(id) FROM books WHERE allocated = 0");
        a1 = q(db, "SELECT book_id FROM books_on_shelves WHERE shelf_id = %lld AND seq_num = 1", sa);
}

static void test_clean(void) {
        struct fsck_result res;
        if (run(clean_db, false, fam, &res) >= 0) {
                CHECK(res.n == 0 && res.n_problems == 0 && res.server_pid == 0, "clean: %zu findings", res.n);
                if (res.n)
                        dump(&res);
                fsck_result_done(&res);
        }
}

static void test_each(void) {
        char s[1024];

        snprintf(s, sizeof s, "UPDATE globals SET books_total = books_total + 1, nvm_bytes_total = 5");
        one("globals", s, "globals-books", 1, true);
        one("globals2", s, "globals-bytes", 1, true);
        one("root", "UPDATE shelves SET mode = 33188 WHERE id = 2", "special-shelf", 1, true);
        one("lost-found", "DELETE FROM shelves WHERE id = 3", "special-shelf", 1, true);
        snprintf(s, sizeof s, "DROP INDEX IDX_bos_book; INSERT INTO books_on_shelves VALUES (%lld, %lld, 3);"
                 "UPDATE shelves SET book_count = 3, size_bytes = %lld WHERE id = %lld", sb, a1, 3 * book_size, sb);
        one("two-shelves", s, "book-two-shelves", 1, false);
        snprintf(s, sizeof s, "UPDATE books SET allocated = 0 WHERE id = %lld", a1);
        one("state-free", s, "book-state", 1, true);
        snprintf(s, sizeof s, "UPDATE books SET allocated = 2 WHERE id = %lld", a1);
        one("state-zombie", s, "book-state", 1, true);
        snprintf(s, sizeof s, "UPDATE books SET allocated = 1 WHERE id = %lld", free1);
        one("orphan", s, "book-orphan", 1, true);
        snprintf(s, sizeof s, "INSERT INTO books_on_shelves VALUES (777, %lld, 1); UPDATE books SET allocated = 1 WHERE id = %lld",
                 free2, free2);
        one("dangling-row", s, "book-row", 1, true);
        snprintf(s, sizeof s, "UPDATE books_on_shelves SET seq_num = seq_num + 5 WHERE shelf_id = %lld", sa);
        one("seq-gap", s, "shelf-seq", 1, true);
        snprintf(s, sizeof s, "DROP INDEX IDX_bos_shelf; UPDATE books_on_shelves SET seq_num = 1 WHERE shelf_id = %lld", sb);
        one("seq-dup", s, "shelf-seq", 1, true);
        snprintf(s, sizeof s, "UPDATE shelves SET book_count = 7 WHERE id = %lld", sa);
        one("book-count", s, "shelf-count", 1, true);
        snprintf(s, sizeof s, "UPDATE shelves SET size_bytes = %lld WHERE id = %lld", 10 * book_size, sa);
        one("size-big", s, "shelf-size", 1, true);
        snprintf(s, sizeof s, "UPDATE shelves SET size_bytes = 1 WHERE id = %lld", sa);
        one("size-small", s, "shelf-size", 1, true);
        snprintf(s, sizeof s, "UPDATE shelves SET parent_id = 999 WHERE id = %lld", sf);
        one("parent-missing", s, "shelf-parent", 1, true);
        snprintf(s, sizeof s, "UPDATE shelves SET parent_id = %lld WHERE id = %lld", sa, sd);
        one("parent-file", s, "shelf-parent", 1, true);
        /* /d inside a new directory /d/e, which is inside /d: a cycle */
        snprintf(s, sizeof s, "INSERT INTO shelves VALUES (50, 0, 0, 0, 0, 0, 'e', 16895, %lld, 3, 0, 0);"
                 "UPDATE shelves SET parent_id = 50 WHERE id = %lld", sd, sd);
        one("cycle", s, "shelf-cycle", 1, true);
        snprintf(s, sizeof s, "UPDATE shelves SET name = 'a' WHERE id = %lld", sb);
        one("same-name", s, "shelf-name", 1, true);
        one("links", "UPDATE shelves SET link_count = 9 WHERE id = 2", "shelf-links", 1, true);
        snprintf(s, sizeof s, "UPDATE shelves SET name = '.lfs_pending_zero_z' WHERE id = %lld;"
                 "UPDATE books SET allocated = 2 WHERE id IN (SELECT book_id FROM books_on_shelves WHERE shelf_id = %lld)", sz, sz);
        one("zeroing", s, "zeroing-shelf", 1, true);
        /* a handle of an existing shelf is not stale (its client may reclaim it after the
         * next start); one of a shelf that does not exist is */
        one("open-handle", "INSERT INTO opened_shelves VALUES (50, 999, 1, 1234, 7)", "open-handle", 1, true);
        /* a truncation's pending zeroing naming a book that is not at that place of the shelf */
        snprintf(s, sizeof s, "INSERT INTO fame_pending_zero VALUES (%lld, %lld, 2, 10, 10)", sa, a1);
        one("pending-zero", s, "pending-zero", 1, true);
}

/* A pending zeroing that still applies is a note (the Librarian redoes it when it starts), as
 * is a handle of an existing shelf with no Librarian running (kept for its client to reclaim). */
static void test_pending_note(void) {
        char db[600], s[512];
        struct fsck_result res;

        snprintf(db, sizeof db, "%s/pending-note.db", test_tmpdir());
        copy_clean(db);
        long long last = q(db, "SELECT book_id FROM books_on_shelves WHERE shelf_id = %lld AND seq_num = 3", sa);
        snprintf(s, sizeof s, "INSERT INTO fame_pending_zero VALUES (%lld, %lld, 3, %lld, 100);"
                 "INSERT INTO opened_shelves VALUES (50, %lld, 1, 1234, 7)", sa, last, book_size - 100, sa);
        sql(db, s);
        if (run(db, false, NULL, &res) >= 0) {
                CHECK(res.n_problems == 0 && count(&res, "pending-zero", false) == 1,
                      "pending note: %zu problems, %zu pending-zero", res.n_problems, count(&res, "pending-zero", false));
                if (res.n_problems)
                        dump(&res);
                fsck_result_done(&res);
        }
        /* a database without the table (the original's, an older FAM/E's) is checked as before */
        sql(db, "DROP TABLE fame_pending_zero");
        if (run(db, false, NULL, &res) >= 0) {
                CHECK(res.n_problems == 0 && count(&res, "pending-zero", false) == 0, "no table: %zu problems",
                      res.n_problems);
                fsck_result_done(&res);
        }
}

/* Every repairable corruption at once; the moved shelf ends in lost+found, the zeroing shelf's
 * books wait as ZOMBIE (notes), the other shelves keep their books. */
static void test_all(void) {
        char db[600], s[2048];
        struct fsck_result res;

        snprintf(db, sizeof db, "%s/all.db", test_tmpdir());
        copy_clean(db);
        snprintf(s, sizeof s,
                 "UPDATE globals SET books_total = 1;"
                 "UPDATE books SET allocated = 0 WHERE id = %1$lld;"
                 "UPDATE books SET allocated = 1 WHERE id = %2$lld;"
                 "UPDATE books_on_shelves SET seq_num = seq_num * 2 + 10 WHERE shelf_id = %3$lld;"
                 "UPDATE shelves SET book_count = 0, size_bytes = 1 WHERE id = %4$lld;"
                 "UPDATE shelves SET parent_id = 999 WHERE id = %5$lld;"
                 "UPDATE shelves SET name = '.lfs_pending_zero_z' WHERE id = %6$lld;"
                 "INSERT INTO opened_shelves VALUES (50, 999, 1, 1234, 7);",
                 a1, free1, sa, sb, sd, sz);
        sql(db, s);
        char *before = fingerprint(db, true);
        if (run(db, false, NULL, &res) >= 0) {
                CHECK(res.n_problems >= 8, "all: %zu problems", res.n_problems);
                fsck_result_done(&res);
        }
        if (run(db, true, NULL, &res) >= 0) {
                CHECK(res.n_repaired == res.n_problems, "all: %zu of %zu repaired", res.n_repaired, res.n_problems);
                fsck_result_done(&res);
        }
        if (run(db, false, NULL, &res) >= 0) {
                CHECK(res.n_problems == 0 && count(&res, "book-zombie", false) == 3,
                      "all: %zu problems, %zu zombies after --repair", res.n_problems, count(&res, "book-zombie", false));
                if (res.n_problems)
                        dump(&res);
                fsck_result_done(&res);
        }
        char *after = fingerprint(db, true);
        CHECK(strcmp(before, after) == 0, "all: shelves lost books:\n  %s\n  %s", before, after);
        CHECK(q(db, "SELECT parent_id FROM shelves WHERE id = %lld", sd) == 3, "/d moved to lost+found");
        CHECK(q(db, "SELECT count(*) FROM shelves WHERE id = %lld", sz) == 0, "zeroing shelf destroyed");
        free(before);
        free(after);
}

static void test_fam(void) {
        char other[600];
        struct fame_create_params params = { .total_size = UINT64_C(1) << 30, .node_count = 2 };
        struct fame_geometry geo;
        struct fsck_result res;

        snprintf(other, sizeof other, "%s/other.fam", test_tmpdir());
        CHECK(fame_file_create(other, &params, 0, &geo) == 0, "create other FAM");
        if (run(clean_db, false, other, &res) >= 0) {
                CHECK(res.n_problems == 1 && count(&res, "fam-geometry", false) == 1, "FAM of 2 nodes: %zu problems", res.n_problems);
                fsck_result_done(&res);
        }
        struct fsck_options o = { .db_path = clean_db, .fam_path = "/nonexistent/fam" };
        char *err = NULL;
        CHECK(librarian_fsck(&o, &res, &err) < 0 && err, "missing FAM: could not check");
        free(err);
        err = NULL;
        o = (struct fsck_options) { .db_path = "/nonexistent/librarian.db" };
        CHECK(librarian_fsck(&o, &res, &err) < 0 && err, "missing database: could not check");
        free(err);
}

/* Another process with the database open (as a Librarian has it): --repair refused naming it. */
static void test_server(void) {
        char db[600];
        int p[2];

        snprintf(db, sizeof db, "%s/served.db", test_tmpdir());
        copy_clean(db);
        char s[256];
        snprintf(s, sizeof s, "INSERT INTO opened_shelves VALUES (50, %lld, 1, 1234, 7)", sa);
        sql(db, s);
        CHECK(pipe(p) == 0, "pipe");
        pid_t child = fork();
        if (child == 0) {
                sqlite3 *h = NULL;
                close(p[0]);
                if (sqlite3_open(db, &h) != SQLITE_OK || sqlite3_exec(h, "SELECT count(*) FROM books", NULL, NULL, NULL) != SQLITE_OK)
                        _exit(1);
                if (write(p[1], "x", 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        close(p[1]);
        char c;
        CHECK(read(p[0], &c, 1) == 1, "child opened the database");
        close(p[0]);
        CHECK(fsck_server_pid(db) == child, "server pid %d, child %d", (int) fsck_server_pid(db), (int) child);
        struct fsck_options o = { .db_path = db, .repair = true };
        struct fsck_result res;
        char *err = NULL;
        CHECK(librarian_fsck(&o, &res, &err) == -EBUSY && err && strstr(err, "pid"), "repair refused: %s", err ? err : "");
        free(err);
        if (run(db, false, NULL, &res) >= 0) {
                /* a running Librarian's handles are its own */
                CHECK(res.server_pid == child && res.n_problems == 0, "check while served: pid %d, %zu problems",
                      (int) res.server_pid, res.n_problems);
                fsck_result_done(&res);
        }
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
        CHECK(fsck_server_pid(db) == 0, "no server after the child exited");
}

int main(void) {
        make_clean();
        test_clean();
        test_each();
        test_all();
        test_pending_note();
        test_fam();
        test_server();
        return test_exit();
}
