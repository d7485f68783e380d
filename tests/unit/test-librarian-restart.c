/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian across restarts and crashes (docs/librarian.md, "open handles"; the model's
 * "Partial books"):
 *
 *   handles  a shelf opened on connection A, the Librarian killed (-9) and started again on the
 *            same database and port: another caller (B) still cannot shrink it, A's client
 *            reclaims its handle when it reconnects, handle numbers are never reused, and a
 *            handle nobody reclaims is dropped when the grace period ends.
 *   tails    the database a crash between a truncation's commit and its tail zeroing leaves:
 *            the next start zeroes that tail before serving, and never zeroes a book that left
 *            the shelf or a range the shelf grew over again.
 *
 * The servers of the first part are forked children killed with SIGKILL; every wait is on a
 * condition (the port file, a reply) with a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "fame.h"
#include "librarian-client.h"
#include "librarian-fixture.h"
#include "server.h"
#include "librarian-secret.h"
#include "testlib.h"

static char fam[512], db[512], port_file[600];
static struct fame_geometry geo;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void pause_ms(long ms) {
        struct timespec ts = { 0, ms * 1000000L };
        nanosleep(&ts, NULL);
}

/* One integer from the database (-1: none). */
static long long q(const char *fmt, ...) _printf_(1, 2);
static long long q(const char *fmt, ...) {
        char sql[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sql, sizeof sql, fmt, ap);
        va_end(ap);
        sqlite3 *h = NULL;
        sqlite3_stmt *st = NULL;
        long long v = -1;
        if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        else
                CHECK(0, "query %s: %s", sql, h ? sqlite3_errmsg(h) : "");
        sqlite3_finalize(st);
        sqlite3_close(h);
        return v;
}

static void sql(const char *s) {
        sqlite3 *h = NULL;
        char *msg = NULL;
        CHECK(sqlite3_open(db, &h) == SQLITE_OK && sqlite3_exec(h, s, NULL, NULL, &msg) == SQLITE_OK, "sql %s: %s", s,
              msg ? msg : "");
        sqlite3_free(msg);
        sqlite3_close(h);
}

/* A Librarian in a child process on db and fam (port 0: any); its port once it listens. */
static pid_t start_server(uint16_t port, double grace, uint16_t *ret_port) {
        unlink(port_file);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
                struct server_options o = { .db_path = db, .fam_path = fam, .port = port, .port_file = port_file,
                                            .handle_grace = grace };
                struct server *s = NULL;
                char *err = NULL;
                static volatile sig_atomic_t stop_flag;
                sigset_t m;
                sigemptyset(&m);
                if (server_new(&o, &s, &err) < 0 || server_start(s, &err) < 0) {
                        fprintf(stderr, "child server: %s\n", err ? err : "?");
                        _exit(1);
                }
                server_run(s, &stop_flag, &m);
                _exit(0);
        }
        CHECK(pid > 0, "fork");
        *ret_port = 0;
        for (double deadline = now() + 20; now() < deadline; pause_ms(10)) {
                FILE *f = fopen(port_file, "re");
                unsigned p = 0;
                if (f && fscanf(f, "%u", &p) == 1 && p) {
                        fclose(f);
                        *ret_port = (uint16_t) p;
                        return pid;
                }
                if (f)
                        fclose(f);
                int status;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        CHECK(0, "the server exited at start (status %d)", status);
                        return -1;
                }
        }
        CHECK(0, "the server did not write %s in time", port_file);
        return pid;
}

static void kill_server(pid_t pid) {
        if (pid <= 0)
                return;
        kill(pid, SIGKILL);     /* a crash: no clean stop */
        waitpid(pid, NULL, 0);
}

static struct fame_librarian *connect_as(uint16_t port, int64_t pid) {
        char addr[64];
        struct fame_librarian *l = NULL;
        snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
        CHECK(fame_librarian_connect(addr, &l) == 0, "connect to %s", addr);
        if (l) {
                fame_librarian_set_node(l, 1);
                librarian_set_caller(l, getuid(), getgid(), pid);
                librarian_set_quiet(l, true);
        }
        return l;
}

static int64_t member(struct json_object *o, const char *k) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, k, &v);
        return json_object_get_int64(v);
}

/* B's resize: sent until it gets an answer from a Librarian (the first try may meet the dead
 * one's connection). */
static int resize_answered(struct fame_librarian *l, const char *path, int64_t id, int64_t size) {
        int r = -ECONNRESET;
        for (double deadline = now() + 10; now() < deadline; pause_ms(20)) {
                r = librarian_resize_shelf(l, path, id, size, false, NULL);
                if (!librarian_transport_error(r))
                        break;
        }
        return r;
}

static void test_handles(void) {
        const int64_t bs = (int64_t) geo.book_size;
        struct json_object *s = NULL;
        uint16_t port, port2;

        pid_t srv = start_server(0, 0, &port);
        if (!port)
                return;
        struct fame_librarian *a = connect_as(port, 0), *b = connect_as(port, 4242);
        if (!a || !b)
                goto out;
        CHECK(librarian_create_shelf(a, "/held", 0100644, &s) == 0, "create /held: %s", fame_librarian_error(a));
        int64_t id = member(s, "id"), ha = member(s, "open_handle");
        json_object_put(s);
        CHECK(librarian_held_handles(a) == 1, "A holds its handle");
        CHECK(librarian_resize_shelf(a, "/held", id, 2 * bs, false, NULL) == 0, "grow /held: %s", fame_librarian_error(a));
        CHECK(librarian_resize_shelf(b, "/held", id, bs, false, NULL) == -EMFILE, "B cannot shrink while A has it open");

        /* crash and restart on the same database and port */
        kill_server(srv);
        srv = start_server(port, 0, &port2);
        CHECK(port2 == port, "same port %u, got %u", port, port2);
        /* A has not come back yet: its handle, kept for the grace period, still counts */
        CHECK(resize_answered(b, "/held", id, bs) == -EMFILE,
              "after the restart, B cannot shrink the shelf A had open: %s", fame_librarian_error(b));
        /* the server holds the database exclusively: it is read between a crash and the next
         * start, which finds it as the crashed one left it */
        kill_server(srv);
        CHECK(q("SELECT count(*) FROM opened_shelves WHERE id = %lld AND fame_conn = -1", (long long) ha) == 1,
              "A's handle waits unclaimed");
        srv = start_server(port, 0, &port2);
        CHECK(port2 == port, "same port %u, got %u", port, port2);
        /* A's next request reconnects and reclaims the handle first */
        CHECK(librarian_get_shelf(a, "/held", &s) == 0, "A after the restart: %s", fame_librarian_error(a));
        json_object_put(s);
        CHECK(librarian_held_handles(a) == 1, "A still holds its handle");
        kill_server(srv);
        CHECK(q("SELECT fame_conn FROM opened_shelves WHERE id = %lld", (long long) ha) > 0, "A's handle is A's connection's again");
        srv = start_server(port, 0, &port2);
        CHECK(port2 == port, "same port %u, got %u", port, port2);
        CHECK(librarian_get_shelf(a, "/held", &s) == 0, "A reclaims its handle again: %s", fame_librarian_error(a));
        json_object_put(s);
        CHECK(librarian_held_handles(a) == 1, "A still holds its handle");
        CHECK(resize_answered(b, "/held", id, bs) == -EMFILE, "B still cannot shrink it");
        /* new handles never take a number handed out before */
        CHECK(librarian_open_shelf(b, "/held", &s) == 0, "B opens /held");
        int64_t hb = member(s, "open_handle");
        json_object_put(s);
        CHECK(hb > ha, "B's handle %lld after A's %lld", (long long) hb, (long long) ha);
        CHECK(librarian_close_shelf(b, id, hb, NULL) == 0 && librarian_close_shelf(a, id, ha, NULL) == 0, "close");
        CHECK(librarian_held_handles(a) == 0, "A holds nothing");
        /* closed everywhere: B may shrink now, into the second book (its end is zeroed, the
         * pending record deleted) */
        CHECK(librarian_resize_shelf(b, "/held", id, bs + 4096, false, NULL) == 0, "B shrinks /held: %s",
              fame_librarian_error(b));

        /* a handle nobody reclaims goes when the grace period ends */
        CHECK(librarian_open_shelf(a, "/held", &s) == 0, "A opens /held again");
        int64_t ha2 = member(s, "open_handle");
        json_object_put(s);
        CHECK(ha2 > hb, "A's new handle %lld after %lld", (long long) ha2, (long long) hb);
        kill_server(srv);
        /* B's shrink, committed before the crash: its tail was zeroed (nothing since touched
         * the table) */
        CHECK(q("SELECT count(*) FROM fame_pending_zero") == 0, "the tail zeroed, its record gone");
        srv = start_server(port, 0.3, &port2);
        int r = -EMFILE;
        for (double deadline = now() + 15; r == -EMFILE && now() < deadline; pause_ms(20))
                r = resize_answered(b, "/held", id, 4096);
        CHECK(r == 0, "after the grace period B shrinks the shelf: %s", strerror(-r));
        CHECK(librarian_get_shelf(a, "/held", &s) == 0, "A after the grace period");
        json_object_put(s);
        CHECK(librarian_held_handles(a) == 0, "A's handle is gone: it forgets it");
        CHECK(librarian_open_shelf(b, "/held", &s) == 0, "B opens /held");
        CHECK(member(s, "open_handle") > ha2, "no handle number reused after the drop");
        json_object_put(s);
out:
        fame_librarian_disconnect(a);
        fame_librarian_disconnect(b);
        kill_server(srv);
}

/* ---- tails ---------------------------------------------------------------------------------- */

#define C1 "{'node_id': 1, 'uid': 0, 'gid': 0, 'pid': 100, 'seq': 1}"

static void req(struct engine *e, const char *fmt, ...) _printf_(2, 3);
static void req(struct engine *e, const char *fmt, ...) {
        char text[1024], *reply = NULL;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        for (char *p = text; *p; p++)
                if (*p == '\'')
                        *p = '"';
        CHECK(engine_handle_text(e, text, &reply) == 0 && reply && !strstr(reply, "errmsg"), "%s: %s", text,
              reply ? reply : "");
        free(reply);
}

/* A shelf of one book filled with byte c: its id and the book's FAM offset. */
static void filled_shelf(struct engine *e, int fd, const char *name, int c, long long *ret_id, long long *ret_book,
                         uint64_t *ret_off) {
        req(e, "{'command': 'create_shelf', 'context': " C1 ", 'path': '/%s', 'mode': 33188}", name);
        *ret_id = q("SELECT id FROM shelves WHERE name = '%s'", name);
        req(e, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/%s', 'id': %lld, 'size_bytes': %llu,"
            " 'zero_enabled': false}", name, *ret_id, (unsigned long long) geo.book_size);
        *ret_book = q("SELECT book_id FROM books_on_shelves WHERE shelf_id = %lld", *ret_id);
        uint64_t off = 0;
        CHECK(engine_book_offset(e, (uint64_t) *ret_book, &off) == 0, "book offset");
        *ret_off = geo.book_area_offset + off;
        char *buf = malloc(geo.book_size);
        memset(buf, c, geo.book_size);
        CHECK(buf && pwrite(fd, buf, geo.book_size, (off_t) *ret_off) == (ssize_t) geo.book_size, "fill %s", name);
        free(buf);
}

/* Bytes [from, to) of the FAM at off all equal c. */
static bool bytes_are(int fd, uint64_t off, uint64_t from, uint64_t to, int c) {
        char buf[65536];
        for (uint64_t at = from; at < to; ) {
                size_t n = to - at < sizeof buf ? (size_t) (to - at) : sizeof buf;
                if (pread(fd, buf, n, (off_t) (off + at)) != (ssize_t) n)
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (buf[i] != (char) c)
                                return false;
                at += n;
        }
        return true;
}

static void test_tails(void) {
        struct engine *e = NULL;
        char *err = NULL;
        long long t, tb, u, ub, g, gb;
        uint64_t toff, uoff, goff;
        const uint64_t bs = geo.book_size;

        int fd = open(fam, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0, "open FAM");
        /* a database of an older FAM/E, without the table: it is added when the engine opens it */
        sql("DROP TABLE fame_pending_zero");
        CHECK(engine_open(db, &e, &err) == 0, "engine: %s", err ? err : "");
        free(err);
        if (!e || fd < 0)
                return;
        filled_shelf(e, fd, "t", 0xAB, &t, &tb, &toff);
        filled_shelf(e, fd, "u", 0xCD, &u, &ub, &uoff);
        filled_shelf(e, fd, "g", 0xEF, &g, &gb, &goff);
        /* the crash: /t truncated inside its book, committed, and the Librarian gone before it
         * zeroed the tail (the engine alone does not zero) */
        req(e, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/t', 'id': %lld, 'size_bytes': 4096,"
            " 'zero_enabled': false}", t);
        engine_free(e);
        CHECK(bytes_are(fd, toff, 4096, bs, 0xAB), "the tail still holds the old bytes after the crash");
        /* records that no longer apply: a book now on another shelf, a range the shelf grew over */
        char s[512];
        snprintf(s, sizeof s, "INSERT INTO fame_pending_zero VALUES (%lld, %lld, 1, 100, 1000);"
                 "INSERT INTO fame_pending_zero VALUES (%lld, %lld, 1, 10, 100);", t, ub, g, gb);
        sql(s);

        struct server_options o = { .db_path = db, .fam_path = fam, .handle_grace = -1 };
        struct server *srv = NULL;
        CHECK(server_new(&o, &srv, &err) == 0, "server: %s", err ? err : "");
        free(err);
        server_free(srv);
        CHECK(bytes_are(fd, toff, 0, 4096, 0xAB), "the kept bytes of /t are kept");
        CHECK(bytes_are(fd, toff, 4096, bs, 0), "the tail of /t is zeroed at the start");
        CHECK(bytes_are(fd, uoff, 0, bs, 0xCD), "the book of another shelf is not touched");
        CHECK(bytes_are(fd, goff, 0, bs, 0xEF), "a range the shelf grew over is not touched");
        CHECK(q("SELECT count(*) FROM fame_pending_zero") == 0, "no pending zeroing left");
        close(fd);
}

int main(void) {
        if (librarian_fixture(UINT64_C(1) << 30, 4, fam, sizeof fam, db, sizeof db, &geo) < 0)
                return test_exit();
        snprintf(port_file, sizeof port_file, "%s/port", test_tmpdir());
        /* the clients authenticate, again after every restart, with the secret the first
         * server makes (DB.secrets/host.secret); reclaiming comes after that */
        char secret[600];
        snprintf(secret, sizeof secret, "%s.secrets/host.secret", db);
        setenv(LIBRARIAN_SECRET_ENV, secret, 1);
        test_tails();
        test_handles();
        return test_exit();
}
