/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The management view (src/lmp, docs/lmp.md) against a real Librarian database and FAM: every
 * route of FAM/E's API and of tm-lmp's answered through lmp_handle(), bad paths and methods,
 * tm-lmp's content negotiation and version check, a shelf named like markup escaped in HTML,
 * golden JSON for the deterministic answers (tests/golden/lmp; FAME_REGENERATE=1 rewrites
 * them), and the same server over real HTTP (libmicrohttpd, driven by the test's own loop).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "fame.h"
#include "librarian-fixture.h"
#include "lmp.h"
#include "macro.h"
#include "testlib.h"
#include "util.h"

static struct engine *e;
static struct lmp *l;
static int golden_rewritten;

static double fixed_clock(void) {
        return 1767225600.0;
}

static void req(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void req(const char *fmt, ...) {
        char buf[4096], *reply = NULL;
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

#define C1 "{'node_id': 1, 'uid': 1000, 'gid': 1000, 'pid': 100, 'seq': 7}"

/* GET path with an Accept header; the reply's status must be want; returns the parsed JSON body
 * (NULL if not JSON; caller puts) and leaves the raw reply in *raw when asked. */
static struct json_object *get(const char *path, const char *accept, unsigned want, struct lmp_reply *raw) {
        struct lmp_reply r;
        CHECK(lmp_handle(l, "GET", path, accept, &r) == 0, "GET %s", path);
        CHECK(r.status == want, "GET %s: status %u, expected %u: %.*s", path, r.status, want, (int) r.len, r.body ? r.body : "");
        struct json_object *o = r.body && strstr(r.content_type, "json") ? json_tokener_parse(r.body) : NULL;
        if (raw)
                *raw = r;
        else
                lmp_reply_done(&r);
        return o;
}

static const char *J = "application/json;version=1.0";

static struct json_object *at(struct json_object *o, const char *path) {
        /* "a.b.0.c": objects by key, arrays by index */
        char buf[256];
        snprintf(buf, sizeof buf, "%s", path);
        for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
                if (json_object_is_type(o, json_type_array))
                        o = json_object_array_get_idx(o, (size_t) atoi(k));
                else if (!json_object_object_get_ex(o, k, &o))
                        o = NULL;
        return o;
}

static int64_t ival(struct json_object *o, const char *path) {
        return json_object_get_int64(at(o, path));
}

/* Times that differ from run to run (the database's own creation) are zeroed for goldens. */
static void zero_times(struct json_object *o) {
        if (json_object_is_type(o, json_type_array))
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        zero_times(json_object_array_get_idx(o, i));
        else if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, k, v) {
                        if (strcmp(k, "ctime") == 0 || strcmp(k, "mtime") == 0)
                                json_object_set_int64(v, 0);
                        else
                                zero_times(v);
                }
        }
}

static void golden(const char *name, const char *path, const char *accept) {
        struct json_object *o = get(path, accept, 200, NULL);
        CHECK(o, "%s: no JSON", path);
        if (!o)
                return;
        zero_times(o);
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
        const char *root = getenv("FAME_SOURCE_ROOT");
        _cleanup_free_ char *file = strf("%s/tests/golden/lmp/%s.json", root ? root : ".", name);
        _cleanup_free_ char *want = read_file(file, 1 << 24, NULL);
        _cleanup_free_ char *have = strf("%s\n", text);
        if ((!want || strcmp(want, have) != 0) && getenv("FAME_REGENERATE") && strcmp(getenv("FAME_REGENERATE"), "1") == 0) {
                CHECK(write_file_atomic(file, 0644, have, strlen(have)) == 0, "write %s", file);
                fprintf(stderr, "regenerated %s: review git diff, then run again\n", file);
                golden_rewritten++;
        } else
                CHECK(want && strcmp(want, have) == 0, "%s differs from %s (FAME_REGENERATE=1 rewrites it):\n%s", path, file, have);
        json_object_put(o);
}

static void test_api(const struct fame_geometry *geo) {
        struct json_object *o;
        uint64_t bs = geo->book_size;

        o = get("/api/v1/summary", NULL, 200, NULL);
        CHECK(ival(o, "fam.books_allocated") == 3 && ival(o, "fam.book_size") == (int64_t) bs, "summary: %s", json_object_to_json_string(o));
        CHECK(ival(o, "fam.books_free") + 3 == ival(o, "fam.books_total"), "free + allocated = total");
        int64_t gen = ival(o, "generation");
        json_object_put(o);
        req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/later', 'mode': 33188}");
        o = get("/api/v1/summary", NULL, 200, NULL);
        CHECK(ival(o, "generation") > gen, "generation grows with a change: %lld then %lld", (long long) gen,
              (long long) ival(o, "generation"));
        json_object_put(o);

        o = get("/api/v1/shelves", NULL, 200, NULL);
        size_t n = json_object_array_length(at(o, "shelves"));
        bool script = false, a = false, inner = false;
        for (size_t i = 0; i < n; i++) {
                const char *p = json_object_get_string(at(json_object_array_get_idx(at(o, "shelves"), i), "path"));
                script |= strcmp(p, "/<script>") == 0;
                a |= strcmp(p, "/a") == 0;
                inner |= strcmp(p, "/d/inner") == 0;
        }
        CHECK(a && script && inner && n == 6, "shelves: %s", json_object_to_json_string(o));
        json_object_put(o);

        o = get("/api/v1/shelves/a", NULL, 200, NULL);
        CHECK(json_object_array_length(at(o, "books")) == 2 && ival(o, "uid") == 1000 && ival(o, "size_bytes") == (int64_t) (2 * bs),
              "/a: %s", json_object_to_json_string(o));
        /* LZA ascending from IG 0: books 0 and 1 of node 1's group, right after the book area's start */
        CHECK(ival(o, "books.0.lza") == 0 && ival(o, "books.1.lza") == (INT64_C(1) << 33), "lzas");
        CHECK(ival(o, "books.1.fam_offset") == (int64_t) (geo->book_area_offset + bs), "fam_offset %lld",
              (long long) ival(o, "books.1.fam_offset"));
        json_object_put(o);
        json_object_put(get("/api/v1/shelves/d/inner", NULL, 200, NULL));
        o = get("/api/v1/shelves/nope", NULL, 404, NULL);
        CHECK(o && strstr(json_object_get_string(at(o, "error")), "/nope") && strcmp(json_object_get_string(at(o, "path")),
              "/api/v1/shelves/nope") == 0, "404 JSON");
        json_object_put(o);

        o = get("/api/v1/fam/map", NULL, 200, NULL);
        size_t cells = 0, of_a = 0;
        for (size_t g = 0; g < json_object_array_length(at(o, "groups")); g++) {
                struct json_object *c = at(json_object_array_get_idx(at(o, "groups"), g), "cells");
                cells += json_object_array_length(c);
                for (size_t i = 0; i < json_object_array_length(c); i++) {
                        int64_t v = json_object_get_int64(json_object_array_get_idx(c, i));
                        struct json_object *sh = v >= 0 ? json_object_array_get_idx(at(o, "shelves"), (size_t) v) : NULL;
                        if (sh && strcmp(json_object_get_string(at(sh, "path")), "/a") == 0)
                                of_a++;
                }
        }
        CHECK(cells == geo->books_per_node * geo->node_count && of_a == 2, "map: %zu cells, %zu of /a", cells, of_a);
        json_object_put(o);

        /* no cluster state: the FAM's geometry names the nodes, their slots say they never joined */
        o = get("/api/v1/nodes", NULL, 200, NULL);
        CHECK(json_object_array_length(at(o, "nodes")) == geo->node_count &&
              strcmp(json_object_get_string(at(o, "nodes.1.name")), "node02") == 0 &&
              strcmp(json_object_get_string(at(o, "nodes.1.slot.state")), "never") == 0 && ival(o, "nodes.1.slot.node") == 2 &&
              strcmp(json_object_get_string(at(o, "nodes.1.state")), "unknown") == 0, "nodes: %s", json_object_to_json_string(o));
        json_object_put(o);

        o = get("/api/v1/fam", NULL, 200, NULL);
        struct json_object *regions = at(o, "regions");
        struct json_object *books = regions ? json_object_array_get_idx(regions, json_object_array_length(regions) - 1) : NULL;
        CHECK(books && strcmp(json_object_get_string(at(books, "name")), "books") == 0 &&
              ival(books, "offset") == (int64_t) geo->book_area_offset && ival(o, "nodes") == (int64_t) geo->node_count &&
              ival(o, "size_bytes") == (int64_t) geo->total_size, "fam: %s", json_object_to_json_string(o));
        json_object_put(o);

        /* bad paths and methods: one JSON error each */
        json_object_put(get("/nope", NULL, 404, NULL));
        json_object_put(get("/api/v2/summary", NULL, 404, NULL));
        struct lmp_reply r;
        CHECK(lmp_handle(l, "POST", "/api/v1/summary", NULL, &r) == 0 && r.status == 405, "POST: %u", r.status);
        lmp_reply_done(&r);
        CHECK(lmp_handle(l, "GET", "/", NULL, &r) == 0 && r.status == 200 && strstr(r.content_type, "text/html"), "page");
        lmp_reply_done(&r);
}

static void test_tm_lmp(const struct fame_geometry *geo) {
        struct json_object *o;
        struct lmp_reply r;
        int64_t bs = (int64_t) geo->book_size;

        o = get("/lmp/global/", J, 200, &r);
        CHECK(strcmp(r.content_type, "application/json;charset=utf-8;version=1.0") == 0, "type %s", r.content_type);
        lmp_reply_done(&r);
        CHECK(ival(o, "memory.allocated") == 3 * bs && ival(o, "memory.total") == (int64_t) (geo->books_per_node * geo->node_count) * bs,
              "global: %s", json_object_to_json_string(o));
        /* every create opened its shelf: /a (2 books), /d/inner (1), /<script> and /later */
        CHECK(ival(o, "active.shelves") == 4 && ival(o, "active.books") == 3, "active: %s", json_object_to_json_string(at(o, "active")));
        json_object_put(o);

        /* the version a JSON client must send */
        o = get("/lmp/global/", "application/json", 418, NULL);
        CHECK(o && strcmp(json_object_get_string(at(o, "error")), "No version sent") == 0, "no version");
        json_object_put(o);
        o = get("/lmp/global/", "application/json;version=2.0", 418, NULL);
        CHECK(o && strstr(json_object_get_string(at(o, "error")), "Bad version"), "bad version");
        json_object_put(o);
        json_object_put(get("/lmp/global", J, 308, &r));
        CHECK(r.location && strcmp(r.location, "/lmp/global/") == 0, "redirect to %s", r.location ? r.location : "");
        lmp_reply_done(&r);
        json_object_put(get("/lmp/", J, 404, NULL));

        o = get("/lmp/shelf/a", J, 200, NULL);
        CHECK(json_object_array_length(at(o, "books")) == 2 && ival(o, "booksize") == bs && ival(o, "size") == 2 * bs &&
              strcmp(json_object_get_string(at(o, "policy")), "LZAascending") == 0, "shelf: %s", json_object_to_json_string(o));
        json_object_put(o);
        o = get("/lmp/shelf/nope", J, 404, NULL);
        CHECK(o && strcmp(json_object_get_string(at(o, "error")), "Shelf does not exist") == 0, "unknown shelf");
        json_object_put(o);
        json_object_put(get("/lmp/books/99", J, 404, NULL));
        json_object_put(get("/lmp/books/x", J, 400, NULL));
        json_object_put(get("/lmp/active/x/Node/1", J, 404, NULL));
        o = get("/lmp/books/1", J, 200, NULL);
        CHECK(json_object_array_length(at(o, "books")) == geo->books_per_node && !at(o, "books.0.ig"), "books of IG 1");
        json_object_put(o);

        /* a client that does not ask for JSON gets a page, with every name escaped */
        get("/lmp/shelf/", "text/html", 200, &r);
        CHECK(strncmp(r.content_type, "text/html", 9) == 0 && strstr(r.body, "&lt;script&gt;") && !strstr(r.body, "<script>"),
              "HTML escapes names: %.*s", (int) r.len, r.body);
        lmp_reply_done(&r);
}

static void test_goldens(void) {
        golden("api-shelves", "/api/v1/shelves", NULL);
        golden("api-shelf-a", "/api/v1/shelves/a", NULL);
        golden("api-fam-map", "/api/v1/fam/map", NULL);
        golden("lmp-nodes", "/lmp/nodes/", J);
        golden("lmp-interleave-groups", "/lmp/interleaveGroups/", J);
        golden("lmp-shelf", "/lmp/shelf/", J);
        golden("lmp-shelf-a", "/lmp/shelf/a", J);
        golden("lmp-books-0", "/lmp/books/0", J);
        golden("lmp-allocated", "/lmp/allocated/MemoryBoard", J);
}

/* The same server over HTTP: the test drives its loop as the Librarian's poll loop does. */
static char *http(const char *request) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(lmp_port(l)) };
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        CHECK(connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0, "connect: %m");
        CHECK(write(fd, request, strlen(request)) == (ssize_t) strlen(request), "write");
        fcntl(fd, F_SETFL, O_NONBLOCK);
        char *buf = calloc(1, 1 << 16);
        size_t len = 0;
        double until = now_seconds() + 10;
        while (now_seconds() < until) {
                struct pollfd p[2] = { { .fd = lmp_poll_fd(l), .events = POLLIN }, { .fd = fd, .events = POLLIN } };
                (void) poll(p, 2, 100);
                lmp_run(l);
                ssize_t k = read(fd, buf + len, (1 << 16) - 1 - len);
                if (k == 0)
                        break;          /* Connection: close: the whole reply is in */
                if (k > 0)
                        len += (size_t) k;
        }
        close(fd);
        return buf;
}

static void test_http(void) {
        char req_buf[512];
        snprintf(req_buf, sizeof req_buf, "GET /api/v1/summary HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n", lmp_port(l));
        _cleanup_free_ char *a = http(req_buf);
        CHECK(strncmp(a, "HTTP/1.1 200", 12) == 0 && strstr(a, "Content-Security-Policy: default-src 'self'") &&
              strstr(a, "\"books_allocated\":3"), "HTTP summary: %s", a);
        snprintf(req_buf, sizeof req_buf, "GET / HTTP/1.1\r\nHost: attacker.example:%u\r\nConnection: close\r\n\r\n", lmp_port(l));
        _cleanup_free_ char *b = http(req_buf);
        CHECK(strncmp(b, "HTTP/1.1 403", 12) == 0, "another Host is refused: %s", b);
        snprintf(req_buf, sizeof req_buf, "GET /api/v1/shelves/nope HTTP/1.1\r\nHost: localhost:%u\r\nConnection: close\r\n\r\n",
                 lmp_port(l));
        _cleanup_free_ char *c = http(req_buf);
        CHECK(strncmp(c, "HTTP/1.1 404", 12) == 0 && strstr(c, "application/json"), "HTTP 404: %s", c);
        _cleanup_free_ char *d = http("GARBAGE\r\n\r\n");
        CHECK(strncmp(d, "HTTP/1.1 400", 12) == 0 || !*d, "garbage: %s", d);
}

int main(void) {
        char fam_path[4096], db[4096];
        struct fame_geometry geo;
        CHECK(librarian_fixture(UINT64_C(1) << 28, 2, fam_path, sizeof fam_path, db, sizeof db, &geo) == 0, "fixture");
        char *err = NULL;
        CHECK(engine_open(db, &e, &err) == 0, "engine: %s", err ? err : "");
        if (!e)
                return test_exit();
        engine_set_clock(e, fixed_clock);

        /* /a: 2 books, ascending from the lowest LZA, open on node 1; a directory; markup */
        req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/a', 'mode': 33188}");
        req("{'command': 'set_xattr', 'context': " C1 ", 'path': '/a', 'xattr': 'user.LFS.AllocationPolicy', 'value': 'LZAascending'}");
        req("{'command': 'resize_shelf', 'context': " C1 ", 'path': '/a', 'id': 4, 'size_bytes': %llu, 'zero_enabled': true}",
            (unsigned long long) (2 * geo.book_size));
        req("{'command': 'mkdir', 'context': " C1 ", 'path': '/d', 'mode': 16877}");
        req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/d/inner', 'mode': 33188}");
        req("{'command': 'set_xattr', 'context': " C1 ", 'path': '/d/inner', 'xattr': 'user.LFS.AllocationPolicy', 'value': 'LZAascending'}");
        req("{'command': 'resize_shelf', 'context': " C1 ", 'path': '/d/inner', 'id': 6, 'size_bytes': 1, 'zero_enabled': true}");
        req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/<script>', 'mode': 33188}");

        struct fame *fam = NULL;
        CHECK(fame_open(fam_path, FAME_OPEN_RDONLY, &fam) == 0, "fame_open");
        struct lmp_source src = { .views = &engine_views, .engine = e, .fam = fam, .cluster = "test" };
        struct lmp_options o = { .port = 0 };
        CHECK(lmp_new(&o, &src, &l, &err) == 0, "lmp_new: %s", err ? err : "");
        if (l) {
                test_goldens();
                test_api(&geo);
                test_tm_lmp(&geo);
                test_http();
        }
        lmp_free(l);
        fame_close(fam);
        engine_free(e);
        free(err);
        if (golden_rewritten)
                test_failures++;
        return test_exit();
}
