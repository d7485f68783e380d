/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * `fame check report`'s core (src/cluster/check-report.c): findings written here by hand (the
 * checker's own structs, check-format.h) placed in the shelves of a Librarian database made as
 * `fame up` makes it — the FAM offset → (IG, book_num) → shelf and offset rule of
 * docs/librarian-model.md backwards — and without a database, with one of another FAM, with the
 * node filter; and the verb's errors when the cluster never ran with the checker.  While a
 * Librarian serves the database (locking_mode=EXCLUSIVE: nobody else can read it) the same report
 * comes from that Librarian through the protocol; and a database left by a server killed with
 * SIGKILL (its last commits only in the WAL) is read directly as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-report.h"
#include "config.h"
#include "engine.h"
#include "fame.h"
#include "librarian-client.h"
#include "librarian-fixture.h"
#include "librarian-secret.h"
#include "macro.h"
#include "server.h"
#include "testlib.h"

static struct engine *e;

/* Sends a request (JSON text with single quotes for double quotes); the reply's value, or NULL. */
static struct json_object *req(const char *fmt, ...) _printf_(1, 2);
static struct json_object *req(const char *fmt, ...) {
        char buf[4096], *reply = NULL;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        for (char *p = buf; *p; p++)
                if (*p == '\'')
                        *p = '"';
        CHECK(engine_handle_text(e, buf, &reply) == 0, "%s", buf);
        struct json_object *o = reply ? json_tokener_parse(reply) : NULL, *v = NULL;
        free(reply);
        CHECK(o && json_object_object_get_ex(o, "value", &v), "no value in the reply to %s", buf);
        v = json_object_get(v);
        json_object_put(o);
        return v;
}

static int64_t ival(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return json_object_get_int64(v);
}

#define C1 "{'node_id': 1, 'uid': 0, 'gid': 0, 'pid': 100, 'seq': 7}"

/* Makes the shelf path with n books; their FAM offsets into off[]. */
static void make_shelf(const char *path, uint64_t n, const struct fame_geometry *geo, uint64_t *off) {
        struct json_object *s = req("{'command': 'create_shelf', 'context': " C1 ", 'path': '%s', 'mode': 33188}", path);
        int64_t id = ival(s, "id");
        json_object_put(s);
        json_object_put(req("{'command': 'resize_shelf', 'context': " C1 ", 'path': '%s', 'id': %" PRId64 ", 'size_bytes': %" PRIu64
                            ", 'zero_enabled': true}", path, id, n * geo->book_size));
        struct json_object *books = req("{'command': 'list_shelf_books', 'context': " C1 ", 'path': '%s'}", path);
        CHECK(books && json_object_array_length(books) == n, "%s: %zu books", path, books ? json_object_array_length(books) : 0);
        for (size_t i = 0; books && i < json_object_array_length(books) && i < n; i++) {
                uint64_t rel = 0;
                CHECK(engine_book_offset(e, (uint64_t) ival(json_object_array_get_idx(books, i), "id"), &rel) == 0, "offset");
                off[i] = geo->book_area_offset + rel;
        }
        json_object_put(books);
}

static struct check_finding finding(uint32_t kind, uint16_t a, uint16_t b, uint64_t offset, uint64_t count) {
        return (struct check_finding) {
                .key = 1, .ready = 1, .kind = kind, .node_a = a, .node_b = b, .pc_a = 0x401136, .pc_b = 0x4011a0,
                .fam_offset = offset, .count = count,
        };
}

static void test_map(const char *db, const struct fame_geometry *geo) {
        uint64_t unflushed[3] = { 0 }, other[1] = { 0 };

        json_object_put(req("{'command': 'mkdir', 'context': " C1 ", 'path': '/check', 'mode': 16877}"));
        make_shelf("/check/unflushed", 3, geo, unflushed);
        make_shelf("/top", 1, geo, other);
        /* the last book of the FAM is on no shelf: the shelves above take the first ones */
        uint64_t free_book = geo->book_area_offset + (geo->books_total - 1) * geo->book_size;
        CHECK(free_book != unflushed[0] && free_book != unflushed[1] && free_book != unflushed[2] && free_book != other[0],
              "the last book is free");

        struct check_finding f[] = {
                finding(CHECK_UNFLUSHED_READ, 1, 2, unflushed[1] + 0x40, 12),
                finding(CHECK_STALE_READ, 3, 1, unflushed[2] + geo->book_size - CHECK_LINE, 1),
                finding(CHECK_PLAIN_ATOMIC, 2, 3, other[0], 4),
                finding(CHECK_CONFLICTING_WRITES, 1, 4, free_book + 0x1000, 2),
                finding(CHECK_UNSEEN_FLUSH, 4, 0, 0x1000, 7),   /* in the metadata */
        };
        struct cluster_check_report r;

        CHECK(check_report_map(f, ELEMENTSOF(f), 0, db, NULL, geo, &r) == 0, "map");
        CHECK(r.n == 5 && r.occurrences == 12 + 1 + 4 + 2 + 7 && r.overflow == 0, "n %zu, %" PRIu64 " occurrences", r.n, r.occurrences);
        if (r.n == 5) {
                CHECK(r.item[0].place == CHECK_PLACE_SHELF && strcmp(r.item[0].shelf, "/check/unflushed") == 0 &&
                      r.item[0].shelf_offset == geo->book_size + 0x40, "item 0: %d %s +%#" PRIx64, r.item[0].place,
                      r.item[0].shelf ? r.item[0].shelf : "-", r.item[0].shelf_offset);
                CHECK(r.item[0].f.count == 12 && r.item[0].f.node_a == 1 && r.item[0].f.pc_b == 0x4011a0, "the finding is kept");
                CHECK(r.item[1].place == CHECK_PLACE_SHELF && strcmp(r.item[1].shelf, "/check/unflushed") == 0 &&
                      r.item[1].shelf_offset == 3 * geo->book_size - CHECK_LINE, "item 1: last line of the third book: +%#" PRIx64,
                      r.item[1].shelf_offset);
                CHECK(r.item[2].place == CHECK_PLACE_SHELF && strcmp(r.item[2].shelf, "/top") == 0 && r.item[2].shelf_offset == 0,
                      "item 2: a shelf in the root: %s", r.item[2].shelf ? r.item[2].shelf : "-");
                CHECK(r.item[3].place == CHECK_PLACE_NO_SHELF && !r.item[3].shelf, "item 3: a free book: %d", r.item[3].place);
                CHECK(r.item[4].place == CHECK_PLACE_METADATA, "item 4: metadata: %d", r.item[4].place);
        }
        cluster_check_report_done(&r);
        cluster_check_report_done(&r);          /* idempotent */

        /* --node 3: the findings that involve node 3, as a or as b */
        CHECK(check_report_map(f, ELEMENTSOF(f), 3, db, NULL, geo, &r) == 0, "map node 3");
        CHECK(r.n == 2 && r.node == 3 && r.item[0].f.kind == CHECK_STALE_READ && r.item[1].f.kind == CHECK_PLAIN_ATOMIC &&
              r.occurrences == 5, "node 3: %zu", r.n);
        cluster_check_report_done(&r);
        CHECK(check_report_map(f, ELEMENTSOF(f), 9, db, NULL, geo, &r) == 0 && r.n == 0 && r.occurrences == 0, "node 9: none");
        cluster_check_report_done(&r);

        /* no database, no geometry, a database of another FAM: no shelves, and no error */
        char missing[512];
        snprintf(missing, sizeof missing, "%s/missing.db", test_tmpdir());
        CHECK(check_report_map(f, ELEMENTSOF(f), 0, missing, NULL, geo, &r) == 0 && r.n == 5, "missing db");
        for (size_t i = 0; i < r.n; i++)
                CHECK(r.item[i].place == CHECK_PLACE_UNKNOWN && !r.item[i].shelf, "missing db: item %zu: %d", i, r.item[i].place);
        CHECK(access(missing, F_OK) < 0, "a read-only open made no database");
        cluster_check_report_done(&r);
        CHECK(check_report_map(f, ELEMENTSOF(f), 0, db, NULL, NULL, &r) == 0 && r.n == 5 && r.item[0].place == CHECK_PLACE_UNKNOWN,
              "no geometry");
        cluster_check_report_done(&r);
        struct fame_geometry other_geo = *geo;
        other_geo.book_size *= 2;
        CHECK(check_report_map(f, ELEMENTSOF(f), 0, db, NULL, &other_geo, &r) == 0 && r.n == 5 && r.item[0].place == CHECK_PLACE_UNKNOWN,
              "another book size");
        cluster_check_report_done(&r);
        CHECK(check_report_map(NULL, 0, 0, db, NULL, geo, &r) == 0 && r.n == 0, "no findings");
        cluster_check_report_done(&r);
}

static void same_report(const struct cluster_check_report *a, const struct cluster_check_report *b, const char *what) {
        CHECK(a->n == b->n && a->occurrences == b->occurrences && a->node == b->node, "%s: %zu items, %zu expected", what,
              b->n, a->n);
        for (size_t i = 0; i < a->n && i < b->n; i++)
                CHECK(a->item[i].place == b->item[i].place && !a->item[i].shelf == !b->item[i].shelf &&
                      (!a->item[i].shelf || strcmp(a->item[i].shelf, b->item[i].shelf) == 0) &&
                      a->item[i].shelf_offset == b->item[i].shelf_offset &&
                      memcmp(&a->item[i].f, &b->item[i].f, sizeof a->item[i].f) == 0,
                      "%s: item %zu: %d %s +%#" PRIx64 ", expected %d %s +%#" PRIx64, what, i, b->item[i].place,
                      b->item[i].shelf ? b->item[i].shelf : "-", b->item[i].shelf_offset, a->item[i].place,
                      a->item[i].shelf ? a->item[i].shelf : "-", a->item[i].shelf_offset);
}

static struct server *srv;
static volatile int stop;

static void *serve(void *userdata) {
        (void) userdata;
        while (!stop)
                server_step(srv, 50);
        return NULL;
}

/* The findings of test_map's shelves, placed with the database (e closed), then with a live
 * server that holds it exclusively: the database cannot be read, the Librarian is asked, the
 * report is the same; and the same again once the server is gone. */
static void test_live(const char *fam, const char *db, const struct fame_geometry *geo) {
        uint64_t unflushed[3] = { 0 }, top[1] = { 0 }, deep[2] = { 0 };
        struct cluster_check_report direct, live, blocked, after;
        char dir[600], secret[700], address[64], *err = NULL;

        /* more shelves: nested directories, a symlink (its target is placed once), an empty one */
        json_object_put(req("{'command': 'mkdir', 'context': " C1 ", 'path': '/live', 'mode': 16877}"));
        json_object_put(req("{'command': 'mkdir', 'context': " C1 ", 'path': '/live/a', 'mode': 16877}"));
        make_shelf("/live/a/deep", 2, geo, deep);
        json_object_put(req("{'command': 'symlink', 'context': " C1 ", 'path': '/live/link', 'target': '/live/a/deep'}"));
        json_object_put(req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/live/empty', 'mode': 33188}"));
        struct json_object *books = req("{'command': 'list_shelf_books', 'context': " C1 ", 'path': '/check/unflushed'}");
        for (size_t i = 0; books && i < 3; i++) {
                uint64_t rel = 0;
                CHECK(engine_book_offset(e, (uint64_t) ival(json_object_array_get_idx(books, i), "id"), &rel) == 0, "offset");
                unflushed[i] = geo->book_area_offset + rel;
        }
        json_object_put(books);
        books = req("{'command': 'list_shelf_books', 'context': " C1 ", 'path': '/top'}");
        uint64_t rel = 0;
        CHECK(books && engine_book_offset(e, (uint64_t) ival(json_object_array_get_idx(books, 0), "id"), &rel) == 0, "offset");
        top[0] = geo->book_area_offset + rel;
        json_object_put(books);
        engine_free(e);
        e = NULL;

        struct check_finding f[] = {
                finding(CHECK_UNFLUSHED_READ, 1, 2, unflushed[1] + 0x40, 12),
                finding(CHECK_STALE_READ, 3, 1, deep[1] + 0x80, 1),
                finding(CHECK_PLAIN_ATOMIC, 2, 3, top[0], 4),
                finding(CHECK_CONFLICTING_WRITES, 1, 4, geo->book_area_offset + (geo->books_total - 1) * geo->book_size, 2),
                finding(CHECK_UNSEEN_FLUSH, 4, 0, 0x1000, 7),
                finding(CHECK_STALE_READ, 2, 4, deep[0] + geo->book_size - CHECK_LINE, 3),
        };
        CHECK(check_report_map(f, ELEMENTSOF(f), 0, db, NULL, geo, &direct) == 0 && direct.n == ELEMENTSOF(f), "direct");
        CHECK(direct.n == ELEMENTSOF(f) && direct.item[1].place == CHECK_PLACE_SHELF &&
              strcmp(direct.item[1].shelf, "/live/a/deep") == 0 && direct.item[1].shelf_offset == geo->book_size + 0x80 &&
              direct.item[5].shelf_offset == geo->book_size - CHECK_LINE && direct.item[3].place == CHECK_PLACE_NO_SHELF,
              "direct: the nested shelf");

        snprintf(dir, sizeof dir, "%s/live-secrets", test_tmpdir());
        struct server_options o = { .db_path = db, .fam_path = fam, .port = 0, .secrets_dir = dir };
        CHECK(server_new(&o, &srv, &err) == 0 && server_start(srv, &err) == 0, "server: %s", err ? err : "");
        free(err);
        if (!srv)
                return;
        stop = 0;
        pthread_t th;
        pthread_create(&th, NULL, serve, NULL);
        snprintf(address, sizeof address, "127.0.0.1:%u", server_port(srv));
        snprintf(secret, sizeof secret, "%s/host.secret", dir);
        setenv(LIBRARIAN_SECRET_ENV, secret, 1);

        /* the server holds the database: a direct read finds nothing, the Librarian is asked */
        CHECK(check_report_map(f, ELEMENTSOF(f), 0, db, NULL, geo, &blocked) == 0 && blocked.n == ELEMENTSOF(f), "blocked");
        for (size_t i = 0; i < blocked.n; i++)
                if (blocked.item[i].place != CHECK_PLACE_METADATA)
                        CHECK(blocked.item[i].place == CHECK_PLACE_UNKNOWN, "the server holds the database: item %zu: %d", i,
                              blocked.item[i].place);
        CHECK(check_report_map(f, ELEMENTSOF(f), 0, db, address, geo, &live) == 0, "live");
        same_report(&direct, &live, "through the Librarian");
        cluster_check_report_done(&live);
        CHECK(check_report_map(f, ELEMENTSOF(f), 2, NULL, address, geo, &live) == 0, "live, node 2, no database path");
        CHECK(check_report_map(f, ELEMENTSOF(f), 2, db, NULL, geo, &after) == 0, "node 2: blocked");
        cluster_check_report_done(&after);
        {
                struct cluster_check_report node2;
                /* what the database says for node 2 is checked once the server is gone */
                stop = 1;
                pthread_join(th, NULL);
                server_free(srv);
                srv = NULL;
                CHECK(check_report_map(f, ELEMENTSOF(f), 2, db, NULL, geo, &node2) == 0, "node 2");
                same_report(&node2, &live, "node 2 through the Librarian");
                cluster_check_report_done(&node2);
        }
        cluster_check_report_done(&live);
        /* a wrong secret: no shelves, no error */
        setenv(LIBRARIAN_SECRET_ENV, "/nonexistent/host.secret", 1);
        CHECK(check_report_map(f, ELEMENTSOF(f), 0, db, address, geo, &after) == 0, "after");
        same_report(&direct, &after, "after the server");
        cluster_check_report_done(&after);
        unsetenv(LIBRARIAN_SECRET_ENV);
        cluster_check_report_done(&blocked);
        cluster_check_report_done(&direct);
}

/* A server killed with SIGKILL right after a commit (in its WAL only, no -shm: the exclusive
 * WAL index was in its heap): the database reads as usual, the commit included. */
static void test_killed(const char *fam, const char *db, const struct fame_geometry *geo) {
        char wal[600];
        int p[2];

        CHECK(pipe(p) == 0, "pipe");
        pid_t pid = fork();
        if (pid == 0) {
                struct server_options o = { .db_path = db, .fam_path = fam, .port = 0, .trust_clients = true };
                char *err = NULL;
                close(p[0]);
                if (server_new(&o, &srv, &err) < 0 || server_start(srv, &err) < 0)
                        _exit(2);
                uint16_t port = server_port(srv);
                if (write(p[1], &port, sizeof port) != sizeof port)
                        _exit(3);
                for (;;)
                        server_step(srv, -1);
        }
        close(p[1]);
        uint16_t port = 0;
        CHECK(pid > 0 && read(p[0], &port, sizeof port) == sizeof port, "the server runs");
        close(p[0]);
        /* a commit by the server, then SIGKILL */
        struct fame_librarian *l = NULL;
        char address[64];
        snprintf(address, sizeof address, "127.0.0.1:%u", port);
        unsetenv(LIBRARIAN_SECRET_ENV);
        CHECK(port && fame_librarian_connect(address, &l) == 0 && librarian_create_shelf(l, "/killed", 0100644, NULL) == 0,
              "create /killed: %s", l ? fame_librarian_error(l) : "-");
        if (l)
                fame_librarian_disconnect(l);
        snprintf(wal, sizeof wal, "%s-wal", db);
        struct stat st;
        CHECK(stat(wal, &st) == 0 && st.st_size > 0, "the commit is in the WAL");
        if (pid > 0) {
                kill(pid, SIGKILL);
                int status = 0;
                waitpid(pid, &status, 0);
                CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "killed: %#x", status);
        }
        /* read directly (check report) and opened by a non-exclusive engine (tools, fsck's way) */
        struct check_finding f[] = { finding(CHECK_UNSEEN_FLUSH, 4, 0, 0x1000, 7) };
        struct cluster_check_report r;
        CHECK(check_report_map(f, 1, 0, db, NULL, geo, &r) == 0 && r.n == 1 && r.item[0].place == CHECK_PLACE_METADATA,
              "check report after SIGKILL");
        cluster_check_report_done(&r);
        char *err = NULL;
        CHECK(engine_open(db, &e, &err) == 0, "open after SIGKILL: %s", err ? err : "");
        free(err);
        if (!e)
                return;
        struct json_object *s = req("{'command': 'get_shelf', 'context': " C1 ", 'path': '/killed'}");
        CHECK(s && ival(s, "id") > 0, "the killed server's last commit is there");
        json_object_put(s);
        engine_free(e);
        e = NULL;
}

/* The verb's core on a cluster that never ran with the checker: one error line. */
static void test_no_state(void) {
        struct fame_config c;
        struct cluster_check_report r;
        char state[512];

        snprintf(state, sizeof state, "%s/state", test_tmpdir());
        CHECK(config_init(&c, NULL) == 0, "config_init");
        CHECK(config_set(&c, "state_dir", state, NULL) == 0, "state_dir");
        CHECK(cluster_check_report(&c, NULL, &r) == -ENOENT && r.n == 0, "no checker state");
        cluster_check_report_done(&r);
        CHECK(cluster_check_report(&c, "node1x", &r) == -EINVAL, "a bad node name");
        cluster_check_report_done(&r);
        config_done(&c);
}

int main(void) {
        char fam[512], db[512], *err = NULL;
        struct fame_geometry geo;

        setenv("HOME", test_tmpdir(), 1);
        if (librarian_fixture(UINT64_C(1) << 30, 4, fam, sizeof fam, db, sizeof db, &geo) < 0)
                return test_exit();
        CHECK(engine_open(db, &e, &err) == 0, "open: %s", err ? err : "");
        free(err);
        if (test_failures)
                return test_exit();
        test_map(db, &geo);
        test_live(fam, db, &geo);
        test_killed(fam, db, &geo);
        test_no_state();
        return test_exit();
}
