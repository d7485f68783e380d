/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian server over real TCP sockets, in-process (server_step() in a thread): the
 * unframed JSON stream (several requests in one segment, one request split across reads,
 * malformed input and resynchronisation, non-object values), the exact bytes of replies and
 * OOB broadcasts, node-pinned ports, and open handles dropped with their connection.
 *
 * And the zeroer's two documented retries, each forced rather than raced for: a book whose
 * zeroing fails (fallocate fails with EIO, injected below) stays reserved and is zeroed later;
 * zeroed books that cannot be marked FREE because someone else holds the database's write lock
 * (an sqlite3 shell, a backup) become FREE once the lock is gone.  Both are observed in the
 * books' state (the database, the FAM file) and in the server's zeroing counters.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <sys/syscall.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"
#include "fame.h"
#include "librarian-secret.h"
#include "server.h"
#include "librarian-fixture.h"
#include "testlib.h"
#include "topology.h"
#include "util.h"

#define streq(a, b) (strcmp((a), (b)) == 0)

static struct server *srv;
static volatile int stop;

/* Fault injection: the server zeroes a book by punching a hole (fallocate64 once
 * _FILE_OFFSET_BITS is 64); while fail_punch is set, that fails with EIO.  The executable's
 * definition wins over libc's for the server code linked into it. */
static int fail_punch;
int fallocate64(int fd, int mode, off_t offset, off_t len) {
        if ((mode & FALLOC_FL_PUNCH_HOLE) && __atomic_load_n(&fail_punch, __ATOMIC_RELAXED)) {
                errno = EIO;
                return -1;
        }
        return (int) syscall(SYS_fallocate, fd, mode, offset, len);
}

static void *serve(void *userdata) {
        (void) userdata;
        while (!stop)
                server_step(srv, 50);
        return NULL;
}

static int connect_to(uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                CHECK(0, "connect to %u: %m", port);
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

static int connect_unix(const char *path) {
        struct sockaddr_un su = { .sun_family = AF_UNIX };
        snprintf(su.sun_path, sizeof su.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &su, sizeof su) < 0) {
                CHECK(0, "connect to %s: %m", path);
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

/* A socket file nobody listens on, as a killed server leaves it. */
static bool stale_socket(const char *path) {
        struct sockaddr_un su = { .sun_family = AF_UNIX };
        snprintf(su.sun_path, sizeof su.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *) &su, sizeof su) == 0;
        if (fd >= 0)
                close(fd);
        return ok;
}

static void send_str(int fd, const char *s) {
        CHECK(write_all(fd, s, strlen(s)) == 0, "send");
}

/* Reads until `want` complete top-level objects arrived (or 10 s); returns the bytes. */
static char *read_objects(int fd, int want) {
        static char buf[1 << 16];
        size_t len = 0;
        int depth = 0, done = 0;
        bool in_str = false, esc = false;
        double deadline = now_seconds() + 10;

        while (done < want && now_seconds() < deadline) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
                if (n <= 0)
                        break;
                for (ssize_t i = 0; i < n; i++) {
                        char c = buf[len + (size_t) i];
                        if (in_str) {
                                if (esc)
                                        esc = false;
                                else if (c == '\\')
                                        esc = true;
                                else if (c == '"')
                                        in_str = false;
                        } else if (c == '"')
                                in_str = true;
                        else if (c == '{')
                                depth++;
                        else if (c == '}' && --depth == 0)
                                done++;
                }
                len += (size_t) n;
        }
        buf[len] = 0;
        CHECK(done == want, "wanted %d objects, got %d: %s", want, done, buf);
        return buf;
}

#define CTX(node, seq) "{\"node_id\": " #node ", \"uid\": 0, \"gid\": 0, \"pid\": 1, \"seq\": " #seq "}"

static void test_stream(uint16_t port) {
        int fd = connect_to(port), other = connect_to(port);
        char *r;

        /* three requests in one segment: three replies, in order, nothing between them */
        send_str(fd, "{\"command\": \"version\", \"context\": " CTX(1, 1) "}"
                     "{\"command\": \"version\", \"context\": " CTX(1, 2) "}"
                     "{\"command\": \"frob\", \"context\": " CTX(1, 3) "}");
        r = read_objects(fd, 3);
        CHECK(streq(r, "{\"value\": \"LIBRARIAN 0.997\", \"context\": {\"node_id\": 1, \"uid\": 0, \"gid\": 0, \"pid\": 1, \"seq\": 1}}"
                       "{\"value\": \"LIBRARIAN 0.997\", \"context\": {\"node_id\": 1, \"uid\": 0, \"gid\": 0, \"pid\": 1, \"seq\": 2}}"
                       "{\"errmsg\": \"engine failed lookup on \\\"'frob'\\\"\", \"errno\": 38}"),
              "concatenated replies, exact bytes: %s", r);

        /* one request split across reads: the first half is consumed in a round that answers
         * the other connection, then the rest follows */
        send_str(fd, "{\"command\": \"get_shelf\", \"conte");
        send_str(other, "{\"command\": \"version\", \"context\": " CTX(2, 9) "}");
        read_objects(other, 1);
        send_str(fd, "xt\": " CTX(1, 4) ", \"path\": \"/lost+found\"}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"name\": \"lost+found\"") && strstr(r, "\"seq\": 4"), "split request: %s", r);

        /* malformed, then resynchronisation at "}{"; values that are not objects are dropped */
        send_str(fd, "{\"command\": nonsense}{\"command\": \"version\", \"context\": " CTX(1, 5) "}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"seq\": 5}}"), "resync after malformed input: %s", r);
        send_str(fd, "[1, 2]\"x\"{\"command\": \"version\", \"context\": " CTX(1, 6) "}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"seq\": 6}}"), "non-objects skipped: %s", r);
        send_str(fd, "  \n{\"command\": \"version\", \"context\": " CTX(1, 7) "}\n");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"seq\": 7}}") && !strchr(r, '\n'), "white space skipped, no newline sent: %s", r);

        /* an unknown node: an error without context */
        send_str(fd, "{\"command\": \"version\", \"context\": {\"node_id\": 77, \"seq\": 8}}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"errno\": 13}") && !strstr(r, "context"), "unknown node: %s", r);

        /* non-ASCII is sent as \u escapes */
        send_str(fd, "{\"command\": \"set_xattr\", \"context\": " CTX(1, 10) ", \"path\": \"/lost+found\", \"xattr\": \"user.x\","
                     " \"value\": \"h\\u00e9\\ud83d\\ude00\"}{\"command\": \"get_xattr\", \"context\": " CTX(1, 11) ","
                     " \"path\": \"/lost+found\", \"xattr\": \"user.x\"}");
        r = read_objects(fd, 2);
        CHECK(strstr(r, "{\"value\": {\"value\": \"h\\u00e9\\ud83d\\ude00\"}"), "ASCII-only encoding: %s", r);
        for (const char *p = r; *p; p++)
                CHECK((unsigned char) *p < 0x80, "non-ASCII byte in a reply");

        /* out-of-band: the sender gets its node id, every other client the message */
        send_str(fd, "{\"command\": \"send_OOB\", \"context\": " CTX(1, 12) ", \"msg\": {\"text\": \"hi\"}}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "{\"value\": {\"value\": 1}"), "send_OOB reply: %s", r);
        r = read_objects(other, 1);
        CHECK(streq(r, "{\"OOBmsg\": {\"text\": \"hi\"}}"), "OOB broadcast: %s", r);
        close(fd);
        close(other);
}

/* Notices (fame_watch): a watcher hears of others' changes to shelves, with normalised paths,
 * before the changer's reply; not of its own origin's; non-watchers and quiet commands hear
 * nothing. */
static void test_notices(uint16_t port) {
        int w = connect_to(port), x = connect_to(port), plain = connect_to(port);
        char *r;

        send_str(w, "{\"command\": \"fame_watch\", \"context\": " CTX(1, 1) ", \"origin\": \"mount-w\"}");
        r = read_objects(w, 1);
        CHECK(strstr(r, "\"watching\": true"), "fame_watch: %s", r);
        send_str(x, "{\"command\": \"mkdir\", \"context\": " CTX(2, 2) ", \"path\": \"//nd/./\", \"mode\": 16877}");
        read_objects(x, 1);
        r = read_objects(w, 1);
        CHECK(streq(r, "{\"OOBmsg\": {\"fame_changed\": [\"/nd\"], \"command\": \"mkdir\"}}"), "mkdir's notice: %s", r);
        send_str(x, "{\"command\": \"symlink\", \"context\": " CTX(2, 3) ", \"path\": \"/nd/../nd/a\", \"target\": \"t\"}"
                    "{\"command\": \"rename_shelf\", \"context\": " CTX(2, 4) ", \"path\": \"/nd/a\", \"id\": 0, \"newpath\": \"/nd/b\"}"
                    "{\"command\": \"get_shelf\", \"context\": " CTX(2, 5) ", \"path\": \"/nd/b\"}");
        read_objects(x, 3);
        r = read_objects(w, 2);
        CHECK(streq(r, "{\"OOBmsg\": {\"fame_changed\": [\"/nd/a\"], \"command\": \"symlink\"}}"
                       "{\"OOBmsg\": {\"fame_changed\": [\"/nd/a\", \"/nd/b\"], \"command\": \"rename_shelf\"}}"),
              "symlink's and rename's notices, nothing for get_shelf: %s", r);
        /* a failed change sends nothing; the watcher's own origin's change neither */
        send_str(x, "{\"command\": \"rmdir\", \"context\": " CTX(2, 6) ", \"path\": \"/nd\"}"
                    "{\"command\": \"fame_chmod\", \"context\": {\"node_id\": 2, \"uid\": 0, \"gid\": 0, \"seq\": 7,"
                    " \"fame_origin\": \"mount-w\"}, \"path\": \"/nd/b\", \"mode\": 384}"
                    "{\"command\": \"set_am_time\", \"context\": " CTX(2, 8) ", \"path\": \"/nd/b\", \"atime\": 0, \"mtime\": 5}");
        r = read_objects(x, 3);
        CHECK(strstr(r, "\"errno\": 39"), "rmdir of a directory with entries fails: %s", r);
        r = read_objects(w, 1);
        CHECK(streq(r, "{\"OOBmsg\": {\"fame_changed\": [\"/nd/b\"], \"command\": \"set_am_time\"}}"),
              "only set_am_time's notice (not the failed rmdir's, not mount-w's own chmod): %s", r);
        /* a change made on the watching connection itself is not sent back to it */
        send_str(w, "{\"command\": \"destroy_shelf\", \"context\": " CTX(1, 9) ", \"path\": \"/nd/b\"}");
        r = read_objects(w, 1);
        CHECK(strstr(r, "\"seq\": 9") && !strstr(r, "OOBmsg"), "the watcher's own destroy: only its reply: %s", r);
        send_str(x, "{\"command\": \"rmdir\", \"context\": " CTX(2, 10) ", \"path\": \"/nd\"}");
        read_objects(x, 1);
        r = read_objects(w, 1);
        CHECK(streq(r, "{\"OOBmsg\": {\"fame_changed\": [\"/nd\"], \"command\": \"rmdir\"}}"), "rmdir's notice: %s", r);
        /* the connection that does not watch got nothing of all this */
        send_str(plain, "{\"command\": \"version\", \"context\": " CTX(1, 11) "}");
        r = read_objects(plain, 1);
        CHECK(strstr(r, "\"seq\": 11") && !strstr(r, "OOBmsg"), "no notices without fame_watch: %s", r);
        /* an origin longer than 64 bytes is refused */
        send_str(x, "{\"command\": \"fame_watch\", \"context\": " CTX(2, 12) ", \"origin\": "
                    "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}");
        r = read_objects(x, 1);
        CHECK(strstr(r, "\"errno\": 22"), "a long origin: %s", r);
        close(w);
        close(x);
        close(plain);
}

static void test_pinned(uint16_t pin_port) {
        int fd = connect_to(pin_port);
        send_str(fd, "{\"command\": \"version\", \"context\": " CTX(3, 1) "}{\"command\": \"version\", \"context\": " CTX(2, 2) "}");
        char *r = read_objects(fd, 2);
        CHECK(strstr(r, "\"errno\": 13}") && strstr(r, "belongs to node 2") && strstr(r, "\"seq\": 2}}"),
              "node port of node 2: %s", r);
        close(fd);
}

static void test_handles(uint16_t port) {
        int a = connect_to(port), b = connect_to(port);
        send_str(a, "{\"command\": \"create_shelf\", \"context\": " CTX(1, 1) ", \"path\": \"/held\", \"mode\": 0}");
        char *r = read_objects(a, 1);
        CHECK(strstr(r, "\"open_handle\": "), "open: %s", r);
        send_str(b, "{\"command\": \"destroy_shelf\", \"context\": " CTX(1, 1) ", \"path\": \"/held\"}");
        r = read_objects(b, 1);
        CHECK(strstr(r, "\"errno\": 16}"), "open elsewhere: EBUSY: %s", r);
        close(a);
        /* the server notices the closed connection and drops its handle */
        bool gone = false;
        for (double deadline = now_seconds() + 10; !gone && now_seconds() < deadline; ) {
                send_str(b, "{\"command\": \"destroy_shelf\", \"context\": " CTX(1, 2) ", \"path\": \"/held\"}");
                r = read_objects(b, 1);
                gone = strstr(r, "\"value\": ") != NULL;
        }
        CHECK(gone, "the handle went with its connection");
        close(b);
}

/* ---------------------------------------------------------------------------------------- */
/* the zeroer's retries */

#define ZBOOKS 4

struct zshelf {
        int64_t id[ZBOOKS];
        uint64_t offset[ZBOOKS];        /* in the FAM file */
};

static struct json_object *call_json(int fd, const char *request) {
        send_str(fd, request);
        struct json_object *o = json_tokener_parse(read_objects(fd, 1));
        CHECK(o, "reply to %s is not JSON", request);
        return o;
}

static int64_t reply_int(struct json_object *o, const char *name) {
        struct json_object *value = NULL, *v = NULL;
        if (!json_object_object_get_ex(o, "value", &value) || !json_object_object_get_ex(value, name, &v))
                return INT64_MIN;
        return json_object_get_int64(v);
}

/* allocated (0 FREE, 1 on a shelf, 2 ZOMBIE) of every book of `z`, as the server says (get_book:
 * it holds its database exclusively, so nobody else reads it while it runs). */
static bool books_in_state(int fd, const struct zshelf *z, int want) {
        bool all = true;
        for (size_t i = 0; i < ZBOOKS; i++) {
                char req[256];
                snprintf(req, sizeof req, "{\"command\": \"get_book\", \"context\": " CTX(1, 20) ", \"id\": %" PRId64 "}", z->id[i]);
                struct json_object *o = call_json(fd, req);
                int64_t allocated = reply_int(o, "allocated");
                CHECK(allocated != INT64_MIN, "book %#" PRIx64 ": %s", (uint64_t) z->id[i], json_object_to_json_string(o));
                all = all && allocated == want;
                json_object_put(o);
        }
        return all;
}

/* 1: every byte of every book of `z` is zero in the FAM file; 0: some byte is not. */
static bool books_zero(int fam_fd, const struct zshelf *z, uint64_t book_size) {
        static unsigned char buf[1 << 16];
        for (size_t i = 0; i < ZBOOKS; i++)
                for (uint64_t done = 0; done < book_size; done += sizeof buf) {
                        size_t n = book_size - done < sizeof buf ? (size_t) (book_size - done) : sizeof buf;
                        CHECK(pread(fam_fd, buf, n, (off_t) (z->offset[i] + done)) == (ssize_t) n, "pread FAM: %m");
                        for (size_t k = 0; k < n; k++)
                                if (buf[k])
                                        return false;
                }
        return true;
}

/* A shelf of ZBOOKS books made through the server, its books marked non-zero in the FAM. */
static void make_marked_shelf(int fd, int fam_fd, const struct fame_geometry *geo, const char *path,
                              struct zshelf *z) {
        char req[512];
        snprintf(req, sizeof req, "{\"command\": \"create_shelf\", \"context\": " CTX(1, 1) ", \"path\": \"%s\", \"mode\": 33152}", path);
        struct json_object *o = call_json(fd, req);
        int64_t id = reply_int(o, "id"), handle = reply_int(o, "open_handle");
        json_object_put(o);
        snprintf(req, sizeof req, "{\"command\": \"resize_shelf\", \"context\": " CTX(1, 2) ", \"path\": \"%s\", \"id\": %" PRId64
                 ", \"size_bytes\": %" PRIu64 ", \"zero_enabled\": true}", path, id, ZBOOKS * geo->book_size);
        json_object_put(call_json(fd, req));
        snprintf(req, sizeof req, "{\"command\": \"close_shelf\", \"context\": " CTX(1, 3) ", \"id\": %" PRId64
                 ", \"open_handle\": %" PRId64 "}", id, handle);
        json_object_put(call_json(fd, req));

        snprintf(req, sizeof req, "{\"command\": \"list_shelf_books\", \"context\": " CTX(1, 4) ", \"path\": \"%s\"}", path);
        struct json_object *books = call_json(fd, req), *list = NULL;
        CHECK(books && json_object_object_get_ex(books, "value", &list) && json_object_is_type(list, json_type_array),
              "list_shelf_books %s: %s", path, json_object_to_json_string(books));
        size_t n = 0;
        static unsigned char mark[4096];
        memset(mark, 0xA5, sizeof mark);
        for (size_t i = 0; list && i < json_object_array_length(list) && n < ZBOOKS; i++) {
                struct json_object *b = json_object_array_get_idx(list, i), *v = NULL;
                z->id[n] = json_object_object_get_ex(b, "id", &v) ? json_object_get_int64(v) : 0;
                uint64_t ig = (uint64_t) (json_object_object_get_ex(b, "intlv_group", &v) ? json_object_get_int64(v) : 0) & 0xFFFF;
                uint64_t num = (uint64_t) (json_object_object_get_ex(b, "book_num", &v) ? json_object_get_int64(v) : 0);
                z->offset[n] = geo->book_area_offset + (ig * geo->books_per_node + num) * geo->book_size;
                /* first page, a middle one and the last one */
                CHECK(pwrite(fam_fd, mark, sizeof mark, (off_t) z->offset[n]) == sizeof mark &&
                      pwrite(fam_fd, mark, sizeof mark, (off_t) (z->offset[n] + geo->book_size / 2)) == sizeof mark &&
                      pwrite(fam_fd, mark, sizeof mark, (off_t) (z->offset[n] + geo->book_size - sizeof mark)) == sizeof mark,
                      "pwrite FAM: %m");
                n++;
        }
        json_object_put(books);
        CHECK(n == ZBOOKS, "%s has %zu books, expected %d", path, n, ZBOOKS);
}

static void destroy(int fd, const char *path) {
        char req[256];
        snprintf(req, sizeof req, "{\"command\": \"destroy_shelf\", \"context\": " CTX(1, 9) ", \"path\": \"%s\"}", path);
        struct json_object *o = call_json(fd, req);
        CHECK(o && json_object_object_get_ex(o, "value", NULL), "destroy_shelf %s: %s", path, json_object_to_json_string(o));
        json_object_put(o);
}

/* Polls cond(arg) until it holds or `seconds` passed; the server thread works meanwhile. */
static bool wait_for(bool (*cond)(const void *arg), const void *arg, double seconds) {
        for (double end = now_seconds() + seconds; now_seconds() < end; ) {
                if (cond(arg))
                        return true;
                struct pollfd none;
                poll(&none, 0, 20);
        }
        return cond(arg);
}

struct books_of { int fd; const struct zshelf *z; };
static bool books_free(const void *arg) {
        const struct books_of *b = arg;
        return books_in_state(b->fd, b->z, 0);
}

/* Until the books are FREE in the database (the server's retry) or 20 s passed. */
static bool wait_books_free(int fd, const struct zshelf *z) {
        return wait_for(books_free, &(struct books_of) { fd, z }, 20);
}

/* The server's zeroing counters have grown by at least zero_failures failed zeroings, and by a
 * failure to mark books FREE if mark_failure; *now is what they were at the last look. */
struct counters_grew { const struct server_zeroing *before; struct server_zeroing *now; uint64_t zero_failures; bool mark_failure;
                        uint64_t zeroed; };
static bool counters_grew(const void *arg) {
        const struct counters_grew *w = arg;
        server_zeroing_stats(srv, w->now);
        return w->now->zero_failures >= w->before->zero_failures + w->zero_failures &&
               (!w->mark_failure || w->now->mark_failures > w->before->mark_failures) &&
               w->now->zeroed >= w->before->zeroed + w->zeroed;
}

static void test_zeroing_retries(uint16_t port, const char *fam, const char *dbpath, const struct fame_geometry *geo) {
        struct server_zeroing before, now;
        struct zshelf z = {};
        sqlite3 *db = NULL;
        int fd = connect_to(port), fam_fd = open(fam, O_RDWR | O_CLOEXEC);

        CHECK(fam_fd >= 0, "open %s: %m", fam);
        /* the server holds its database exclusively: not even a read-only look */
        CHECK(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open %s", dbpath);
        CHECK(sqlite3_exec(db, "SELECT count(*) FROM books", NULL, NULL, NULL) == SQLITE_BUSY,
              "another connection reads the database of a running server: %s", sqlite3_errmsg(db));
        if (test_failures)
                goto out;

        /* 1. zeroing fails (EIO): the books stay ZOMBIE and unzeroed, never FREE; once zeroing
         *    works again they are zeroed and FREE without anyone asking */
        make_marked_shelf(fd, fam_fd, geo, "/zio", &z);
        server_zeroing_stats(srv, &before);
        __atomic_store_n(&fail_punch, 1, __ATOMIC_RELAXED);
        destroy(fd, "/zio");
        /* the zeroer retries once a second: two rounds of failures */
        wait_for(counters_grew, &(struct counters_grew) { &before, &now, 2 * ZBOOKS, false }, 20);
        CHECK(now.zero_failures >= before.zero_failures + 2 * ZBOOKS,
              "zeroing under EIO: %" PRIu64 " failed attempts counted, expected two rounds of %d", now.zero_failures - before.zero_failures, ZBOOKS);
        CHECK(now.zeroed == before.zeroed, "books counted as zeroed while zeroing fails");
        CHECK(books_in_state(fd, &z, 2), "books whose zeroing failed are not ZOMBIE");
        CHECK(!books_zero(fam_fd, &z, geo->book_size), "the marks are gone although zeroing failed");
        __atomic_store_n(&fail_punch, 0, __ATOMIC_RELAXED);
        CHECK(wait_books_free(fd, &z), "books whose zeroing failed are not FREE 20 s after zeroing works again");
        CHECK(books_zero(fam_fd, &z, geo->book_size), "books FREE again after an I/O error but not zero in the FAM");

        /* 2. zeroed books cannot be marked FREE (as when the database was locked by another
         *    process, which the exclusive server no longer meets: engine_set_fail_zeroed()):
         *    FREE after the lock.  The order is forced: zeroing fails until the lock is held,
         *    so the server's next attempt zeroes the books and then meets the lock. */
        make_marked_shelf(fd, fam_fd, geo, "/zlock", &z);
        server_zeroing_stats(srv, &before);
        __atomic_store_n(&fail_punch, 1, __ATOMIC_RELAXED);
        destroy(fd, "/zlock");
        server_set_fail_marks(srv, true);
        __atomic_store_n(&fail_punch, 0, __ATOMIC_RELAXED);
        /* the first batch's marking can fail before the last book is zeroed: wait for both */
        wait_for(counters_grew, &(struct counters_grew) { &before, &now, 0, true, ZBOOKS }, 30);
        CHECK(now.mark_failures > before.mark_failures, "the server never reported zeroed books it could not mark FREE");
        CHECK(now.zeroed >= before.zeroed + ZBOOKS, "%" PRIu64 " books zeroed under the lock, expected %d",
              now.zeroed - before.zeroed, ZBOOKS);
        CHECK(books_zero(fam_fd, &z, geo->book_size), "the zeroer did not zero the books while the database was locked");
        CHECK(books_in_state(fd, &z, 2), "books are not ZOMBIE while the database is locked");
        server_set_fail_marks(srv, false);
        CHECK(wait_books_free(fd, &z), "zeroed books are not FREE 20 s after the database lock went");
        CHECK(books_zero(fam_fd, &z, geo->book_size), "books FREE after the lock but not zero in the FAM");
out:
        sqlite3_close(db);
        if (fam_fd >= 0)
                close(fam_fd);
        if (fd >= 0)
                close(fd);
}

/* --check-state: the checker's state must open, and it follows a FAM file; a server that
 * cannot have it does not start (one message saying why). */
static void test_check_state(const char *fam, const char *db) {
        struct server *s = NULL;
        char *err = NULL;
        struct server_options o = { .db_path = db, .check_state = test_tmpdir() };

        CHECK(server_new(&o, &s, &err) == -EINVAL && !s && err && strstr(err, "give --fam too"), "no FAM: %s", err ? err : "");
        free(err);
        err = NULL;
        o.fam_path = fam;       /* a state directory without STATE/check */
        CHECK(server_new(&o, &s, &err) < 0 && !s && err && strstr(err, "Cannot open the checker's state in ") &&
              strstr(err, "start the cluster with fame up --check"), "no checker state: %s", err ? err : "");
        free(err);
}

/* Who may say what (docs/librarian.md): without --trust-clients a connection must send its
 * port's secret before it may assert a node or a caller; a wrong one closes it. */
static void auth_request(int fd, const char *secret, int seq) {
        char req[512];
        snprintf(req, sizeof req, "{\"command\": \"authenticate\", \"context\": {\"node_id\": 2, \"uid\": 0, "
                 "\"gid\": 0, \"pid\": 1, \"seq\": %d}, \"secret\": \"%s\"}", seq, secret);
        send_str(fd, req);
}

static void test_auth(const char *fam, const char *db) {
        char dir[600], host[LIBRARIAN_SECRET_LEN + 1] = "", node[LIBRARIAN_SECRET_LEN + 1] = "", path[700], *err = NULL;
        struct stat st;

        snprintf(dir, sizeof dir, "%s/secrets", test_tmpdir());
        struct server_options o = { .db_path = db, .fam_path = fam, .port = 0, .n_pins = 1, .secrets_dir = dir, .n_sockets = 1 };
        o.pins[0].node_id = 2;
        /* node 2's socket for its virtio-serial port, where a killed Librarian left one */
        char sock[700];
        snprintf(sock, sizeof sock, "%s/node2.sock", test_tmpdir());
        CHECK(stale_socket(sock), "a stale socket at %s", sock);
        o.sockets[0].node_id = 2;
        o.sockets[0].path = sock;
        CHECK(server_new(&o, &srv, &err) == 0 && server_start(srv, &err) == 0, "server with secrets: %s", err ? err : "");
        free(err);
        err = NULL;
        if (!srv)
                return;
        CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "the secrets directory is 0700");
        snprintf(path, sizeof path, "%s/host.secret", dir);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && librarian_secret_read(path, host) == 0, "host.secret");
        snprintf(path, sizeof path, "%s/node-2.secret", dir);
        CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && librarian_secret_read(path, node) == 0, "node-2.secret");
        CHECK(strlen(host) == LIBRARIAN_SECRET_LEN && strcmp(host, node) != 0, "two different secrets");
        stop = 0;
        pthread_t th;
        pthread_create(&th, NULL, serve, NULL);
        uint16_t port = server_port(srv), pin = server_pin_port(srv, 0);

        /* unauthenticated: version only */
        int fd = connect_to(port);
        send_str(fd, "{\"command\": \"version\", \"context\": " CTX(1, 1) "}"
                     "{\"command\": \"list_shelves\", \"context\": " CTX(1, 2) ", \"path\": \"/\"}"
                     "{\"command\": \"destroy_shelf\", \"context\": " CTX(1, 3) ", \"path\": \"/x\"}");
        char *r = read_objects(fd, 3);
        CHECK(strstr(r, "\"LIBRARIAN 0.997\"") && strstr(r, "list_shelves: not authenticated") &&
              strstr(r, "destroy_shelf: not authenticated") && !strstr(r, "lost+found"), "unauthenticated: %s", r);
        /* the host's secret: then anything */
        auth_request(fd, host, 4);
        send_str(fd, "{\"command\": \"list_shelves\", \"context\": " CTX(3, 5) ", \"path\": \"/\"}");
        r = read_objects(fd, 2);
        CHECK(strstr(r, "{\"value\": true") && strstr(r, "lost+found"), "authenticated on the host port: %s", r);
        close(fd);

        /* a node's port: its own secret, not the host's; a wrong one closes the connection */
        fd = connect_to(pin);
        auth_request(fd, host, 1);
        send_str(fd, "{\"command\": \"version\", \"context\": " CTX(2, 2) "}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"errno\": 13}") && strstr(r, "wrong secret"), "the host's secret on node 2's port: %s", r);
        char c;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK(poll(&p, 1, 10000) == 1 && read(fd, &c, 1) == 0, "closed after a wrong secret");
        close(fd);
        fd = connect_to(pin);
        auth_request(fd, node, 1);
        send_str(fd, "{\"command\": \"list_shelves\", \"context\": " CTX(2, 2) ", \"path\": \"/\"}"
                     "{\"command\": \"list_shelves\", \"context\": " CTX(3, 3) ", \"path\": \"/\"}");
        r = read_objects(fd, 3);
        CHECK(strstr(r, "{\"value\": true") && strstr(r, "lost+found") && strstr(r, "belongs to node 2"),
              "node 2's secret: node 2 only: %s", r);
        close(fd);

        /* node 2's socket: no secret, node 2's root (a caller's uid is believed), node 2 only */
        CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600, "node 2's socket, mode 0600: %o",
              (unsigned) st.st_mode);
        fd = connect_unix(sock);
        send_str(fd, "{\"command\": \"mkdir\", \"context\": {\"node_id\": 2, \"uid\": 1234, \"gid\": 1234, \"pid\": 1, "
                     "\"seq\": 1}, \"path\": \"/by-port\", \"mode\": 16877}"
                     "{\"command\": \"fame_stat_shelf\", \"context\": " CTX(2, 2) ", \"path\": \"/by-port\"}"
                     "{\"command\": \"list_shelves\", \"context\": " CTX(3, 3) ", \"path\": \"/\"}");
        r = read_objects(fd, 3);
        CHECK(!strstr(r, "not authenticated") && strstr(r, "\"uid\": 1234") && strstr(r, "belongs to node 2"),
              "node 2's socket: %s", r);
        /* an authenticating client (libfame always does, when it has a secret) still works */
        auth_request(fd, node, 4);
        send_str(fd, "{\"command\": \"rmdir\", \"context\": " CTX(2, 5) ", \"path\": \"/by-port\"}");
        r = read_objects(fd, 2);
        CHECK(strstr(r, "{\"value\": true") && !strstr(r, "errno"), "authenticate and rmdir on node 2's socket: %s", r);
        close(fd);
        stop = 1;
        pthread_join(th, NULL);
        server_free(srv);
        srv = NULL;
        CHECK(access(sock, F_OK) < 0 && errno == ENOENT, "node 2's socket removed with the server");

        /* a file at the socket's path that is not a socket is left alone and refused */
        FILE *g = fopen(sock, "w");
        CHECK(g && fclose(g) == 0, "a file at %s", sock);
        CHECK(server_new(&o, &srv, &err) == 0, "server: %s", err ? err : "");
        free(err);
        err = NULL;
        CHECK(srv && server_start(srv, &err) == -EEXIST && err && strstr(err, "exists and is not a socket"),
              "a file where the socket goes: %s", err ? err : "");
        free(err);
        err = NULL;
        server_free(srv);
        srv = NULL;
        CHECK(stat(sock, &st) == 0 && S_ISREG(st.st_mode), "the file stays");
        unlink(sock);
        /* a node the topology does not have */
        o.sockets[0].node_id = 77;
        CHECK(server_new(&o, &srv, &err) == -EINVAL && !srv && err && strstr(err, "--node-socket 77=") &&
              strstr(err, "node 77 is not in the Librarian's topology"), "node 77's socket: %s", err ? err : "");
        free(err);
        err = NULL;
        o.n_sockets = 0;

        /* a secrets directory others can read is refused, and so is a damaged secret */
        CHECK(chmod(dir, 0755) == 0, "chmod");
        CHECK(server_new(&o, &srv, &err) == -EPERM && !srv && err && strstr(err, "open to other users (mode 755): chmod 700"),
              "secrets open to others: %s", err ? err : "");
        free(err);
        err = NULL;
        CHECK(chmod(dir, 0700) == 0, "chmod");
        FILE *f = fopen(path, "w");
        CHECK(f && fputs("not a secret\n", f) >= 0 && fclose(f) == 0, "damage node-2.secret");
        CHECK(server_new(&o, &srv, &err) == -EBADMSG && !srv && err && strstr(err, "must hold 64 hex digits"),
              "a damaged secret: %s", err ? err : "");
        free(err);
}

int main(void) {
        char fam[512], db[512], *err = NULL;
        struct fame_geometry geo;
        pthread_t th;

        if (librarian_fixture(UINT64_C(1) << 30, 4, fam, sizeof fam, db, sizeof db, &geo) < 0)
                return test_exit();
        struct server_options o = { .db_path = db, .fam_path = fam, .port = 0, .n_pins = 1, .trust_clients = true };
        o.pins[0].node_id = 2;
        o.pins[0].port = 0;
        CHECK(server_new(&o, &srv, &err) == 0 && server_start(srv, &err) == 0, "server: %s", err ? err : "");
        free(err);
        if (test_failures)
                return test_exit();
        pthread_create(&th, NULL, serve, NULL);
        test_stream(server_port(srv));
        test_notices(server_port(srv));
        test_pinned(server_pin_port(srv, 0));
        test_handles(server_port(srv));
        test_zeroing_retries(server_port(srv), fam, db, &geo);
        {       /* a second server on the database: refused, naming this one (issue 16 #5) */
                struct server *second = NULL;
                char pid[64];
                snprintf(pid, sizeof pid, "in use by another Librarian (pid %d,", (int) getpid());
                CHECK(server_new(&o, &second, &err) == -EBUSY && !second && err && strstr(err, pid),
                      "a second server: %s", err ? err : "");
                free(err);
                err = NULL;
        }
        stop = 1;
        pthread_join(th, NULL);
        server_free(srv);
        /* the checks of options come after the lock: with the server gone */
        test_check_state(fam, db);
        test_auth(fam, db);
        return test_exit();
}
