/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replies over 4 MiB (issue 14), in-process over real TCP through the client library (what
 * `fame shelf ls`, `fame shelf info` and fame-lfs call):
 *
 *   directory   list_shelves of a directory of 24,000 shelves (a reply of about 5 MiB; it
 *               failed with "Message too long"), and of one of 6,000: the time per shelf of
 *               both is printed (linear: about the same)
 *   books       list_shelf_books of a shelf of 60,000 books (about 90 bytes a book: over
 *               4 MiB), in a Librarian without a FAM (128 GiB: 8 nodes of 8188 books of
 *               2 MiB; a topology only, no file)
 *   then        the same connection still answers small requests
 *
 * The shelves and books are written into the database before the server starts (one
 * transaction, as create_shelf and resize_shelf would leave them), so the test takes seconds.
 * Each directory is listed once before the figures are taken: warm against warm.
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "fame.h"
#include "librarian-client.h"
#include "server.h"
#include "testlib.h"
#include "topology.h"

#define SMALL_DIR 6000
#define LARGE_DIR 24000
#define BOOKS 60000
#define BOOK_SIZE (UINT64_C(2) << 20)
#define BOOK_INUSE 1                    /* books.allocated (engine-internal.h) */

static struct server *srv;
static volatile int stop;

static void *serve(void *userdata) {
        (void) userdata;
        while (!stop)
                server_step(srv, 50);
        return NULL;
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* A database for a FAM of 128 GiB, 8 nodes of 8188 books of 2 MiB, without a FAM file. */
static int make_db(char *db, size_t db_len) {
        struct fame_create_params params = {
                .total_size = UINT64_C(128) << 30,
                .book_size = BOOK_SIZE,
                .node_count = 8,
        };
        struct fame_geometry geo;
        struct topology *t = NULL;
        char *ini = NULL, *err = NULL;
        int failures = test_failures;

        snprintf(db, db_len, "%s/librarian.db", test_tmpdir());
        if (fame_geometry_compute(&params, &geo) < 0) {
                CHECK(0, "geometry");
                return -1;
        }
        CHECK((uint64_t) geo.books_per_node * geo.node_count >= BOOKS, "geometry: %u books per node",
              geo.books_per_node);
        CHECK(topology_ini_for_geometry(&geo, "test", &ini, &err) == 0, "ini: %s", err ? err : "");
        CHECK(ini && topology_parse(ini, strlen(ini), "test", &t, &err) == 0, "parse: %s", err ? err : "");
        CHECK(t && librarian_db_create(db, t, false, &err) == 0, "db: %s", err ? err : "");
        topology_free(t);
        free(ini);
        free(err);
        return test_failures == failures ? 0 : -1;
}

/* Directory /NAME (under the root, id 2) with n regular shelves, written straight into the
 * database: what n create_shelf requests would leave. */
static void add_directory(sqlite3 *db, const char *name, int n) {
        char sql[1024];
        sqlite3_int64 dir;

        snprintf(sql, sizeof sql,
                 "INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime, name, mode, parent_id,"
                 " link_count, uid, gid) VALUES (1, 0, 0, 1700000000, 1700000000, '%s', %d, 2, 2, %d, %d)",
                 name, S_IFDIR | 0755, (int) getuid(), (int) getgid());
        CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "mkdir %s: %s", name, sqlite3_errmsg(db));
        dir = sqlite3_last_insert_rowid(db);
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
                 "INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime, name, mode, parent_id,"
                 " link_count, uid, gid) SELECT 1, 0, 0, 1700000000, 1700000000, printf('shelf-%%06d', i), %d,"
                 " %lld, 1, %d, %d FROM n",
                 n, S_IFREG | 0644, (long long) dir, (int) getuid(), (int) getgid());
        CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%d shelves in %s: %s", n, name,
              sqlite3_errmsg(db));
}

/* Shelf /NAME holding the first n books, as n books' worth of resize_shelf would leave it. */
static void add_book_shelf(sqlite3 *db, const char *name, int n) {
        char sql[1024];
        sqlite3_int64 shelf;

        snprintf(sql, sizeof sql,
                 "INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime, name, mode, parent_id,"
                 " link_count, uid, gid) VALUES (1, %llu, %d, 1700000000, 1700000000, '%s', %d, 2, 1, %d, %d)",
                 (unsigned long long) (n * BOOK_SIZE), n, name, S_IFREG | 0644, (int) getuid(), (int) getgid());
        CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "create %s: %s", name, sqlite3_errmsg(db));
        shelf = sqlite3_last_insert_rowid(db);
        snprintf(sql, sizeof sql,
                 "UPDATE books SET allocated = %d WHERE id IN (SELECT id FROM books ORDER BY id LIMIT %d);"
                 "INSERT INTO books_on_shelves SELECT %lld, id, ROW_NUMBER() OVER (ORDER BY id)"
                 " FROM books WHERE allocated = %d ORDER BY id",
                 BOOK_INUSE, n, (long long) shelf, BOOK_INUSE);
        CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%d books on %s: %s", n, name, sqlite3_errmsg(db));
}

static void populate(const char *path) {
        sqlite3 *db = NULL;
        CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open %s", path);
        CHECK(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK, "begin");
        add_directory(db, "small", SMALL_DIR);
        add_directory(db, "large", LARGE_DIR);
        add_book_shelf(db, "many-books", BOOKS);
        CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK, "commit: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
}

/* Lists /NAME; the seconds per shelf. */
static double list_dir(struct fame_librarian *l, const char *path, int n) {
        struct json_object *list = NULL;
        double t0 = now_s();
        int r = librarian_list_shelves(l, path, &list);
        double t = now_s() - t0;
        size_t got = list ? json_object_array_length(list) : 0;
        CHECK(r == 0 && got == (size_t) n + 2, "list_shelves %s: %d (%s), %zu entries of %d + 2", path, r,
              r < 0 ? fame_librarian_error(l) : "", got, n);
        if (r == 0 && got == (size_t) n + 2) {
                struct json_object *last = json_object_array_get_idx(list, got - 1), *name = NULL;
                char want[32];
                snprintf(want, sizeof want, "shelf-%06d", n);
                CHECK(json_object_object_get_ex(last, "name", &name) && strcmp(json_object_get_string(name), want) == 0,
                      "the last entry of %s: %s", path, name ? json_object_get_string(name) : "(none)");
        }
        printf("list_shelves %s: %d shelves in %.3f s, %.2f us per shelf\n", path, n, t, t / n * 1e6);
        json_object_put(list);
        return t / n;
}

static void test_directory(struct fame_librarian *l) {
        /* listed once first: the figures compare warm with warm (SQLite's cache, malloc's arenas) */
        (void) list_dir(l, "/small", SMALL_DIR);
        (void) list_dir(l, "/large", LARGE_DIR);
        double small = list_dir(l, "/small", SMALL_DIR);
        double large = list_dir(l, "/large", LARGE_DIR);
        printf("list_shelves: 4 times the shelves cost %.2f times as much per shelf (linear: about 1)\n",
               small > 0 ? large / small : 0.0);
}

static void test_books(struct fame_librarian *l) {
        struct json_object *books = NULL, *shelf = NULL;
        double t0 = now_s();
        int r = librarian_list_shelf_books(l, "/many-books", &books);
        double t = now_s() - t0;
        size_t n = books ? json_object_array_length(books) : 0;
        CHECK(r == 0 && n == BOOKS, "list_shelf_books: %d (%s), %zu books of %d", r, r < 0 ? fame_librarian_error(l) : "",
              n, BOOKS);
        printf("list_shelf_books: %d books in %.3f s, %.2f us per book\n", BOOKS, t, t / BOOKS * 1e6);
        /* what fame shelf info asks for besides */
        CHECK(librarian_fame_stat_shelf(l, "/many-books", &shelf) == 0 && shelf, "fame_stat_shelf: %s",
              fame_librarian_error(l));
        json_object_put(shelf);
        json_object_put(books);
}

int main(void) {
        char db[512], *err = NULL;
        pthread_t th;

        if (make_db(db, sizeof db) < 0)
                return test_exit();
        populate(db);
        struct server_options o = { .db_path = db, .fam_path = NULL, .port = 0, .trust_clients = true };
        CHECK(server_new(&o, &srv, &err) == 0 && server_start(srv, &err) == 0, "server: %s", err ? err : "");
        free(err);
        if (test_failures)
                return test_exit();
        pthread_create(&th, NULL, serve, NULL);

        char address[64];
        struct fame_librarian *l = NULL;
        snprintf(address, sizeof address, "127.0.0.1:%u", server_port(srv));
        CHECK(fame_librarian_connect(address, &l) == 0, "connect to %s", address);
        if (l) {
                test_directory(l);
                test_books(l);
                struct json_object *stats = NULL;
                CHECK(librarian_get_fs_stats(l, &stats) == 0 && stats, "a small request after the large ones: %s",
                      fame_librarian_error(l));
                json_object_put(stats);
                fame_librarian_disconnect(l);
        }
        stop = 1;
        pthread_join(th, NULL);
        server_free(srv);
        return test_exit();
}
