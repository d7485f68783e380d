/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian's engine, in-process against a real SQLite database: every command, its reply
 * shape and its error paths (docs/librarian-protocol.md), access control,
 * allocation policies and book states.  The server and the crash storm are in
 * test-librarian-storm.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "fame.h"
#include "macro.h"
#include "proto.h"
#include "librarian-fixture.h"
#include "testlib.h"
#include "topology.h"
#include "util.h"

#define streq_(a, b) (strcmp((a), (b)) == 0)

static struct engine *e;
static uint64_t book_size;

static double fixed_clock(void) {
        return 1560000000.0;
}

/* Sends a request (JSON text with single quotes for double quotes) and returns the reply. */
static struct json_object *req(const char *fmt, ...) _printf_(1, 2);
static struct json_object *req(const char *fmt, ...) {
        char buf[8192], *reply = NULL;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        for (char *p = buf; *p; p++)
                if (*p == '\'')
                        *p = '"';
        int r = engine_handle_text(e, buf, &reply);
        CHECK(r == 0, "engine_handle_text(%s) = %d", buf, r);
        struct json_object *o = reply ? json_tokener_parse(reply) : NULL;
        CHECK(o, "reply to %s is not JSON: %s", buf, reply ? reply : "(null)");
        free(reply);
        return o;
}

#define CTX(node, uid) "{'node_id': " #node ", 'uid': " #uid ", 'gid': " #uid ", 'pid': 100, 'seq': 7}"
#define C1 CTX(1, 0)

static int err_of(struct json_object *o) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, "errno", &v))
                return 0;
        return json_object_get_int(v);
}

static struct json_object *value_of(struct json_object *o) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, "value", &v);
        return v;
}

static int64_t ival(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return json_object_get_int64(v);
}

static const char *sval(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return json_object_get_string(v);
}

/* Expects an error reply with errno err; puts the reply. */
#define EXPECT_ERR(err, ...) do {                                                       \
                struct json_object *_o = req(__VA_ARGS__);                              \
                CHECK(err_of(_o) == (err), "expected errno %d, got %s", (err),          \
                      json_object_to_json_string(_o));                                  \
                CHECK(!json_object_object_get_ex(_o, "context", NULL), "error with a context"); \
                json_object_put(_o);                                                    \
        } while (0)

/* Expects success; returns the reply (caller puts). */
static struct json_object *ok(struct json_object *o, const char *what) {
        CHECK(o && json_object_object_get_ex(o, "value", NULL) && !json_object_object_get_ex(o, "errmsg", NULL),
              "%s failed: %s", what, o ? json_object_to_json_string(o) : "(null)");
        return o;
}

static int64_t create(const char *path, int64_t *ret_handle) {
        struct json_object *o = ok(req("{'command': 'create_shelf', 'context': " C1 ", 'path': '%s', 'mode': 33188}", path), path);
        int64_t id = ival(value_of(o), "id");
        if (ret_handle)
                *ret_handle = ival(value_of(o), "open_handle");
        json_object_put(o);
        return id;
}

static void put(struct json_object *o) {
        json_object_put(o);
}

static void test_basics(void) {
        struct json_object *o = ok(req("{'command': 'version', 'context': " C1 "}"), "version");
        CHECK(streq_(json_object_get_string(value_of(o)), "LIBRARIAN 0.997"), "version");
        CHECK(ival(json_object_object_get(o, "context"), "seq") == 7, "context echoed");
        put(o);

        o = ok(req("{'command': 'get_fs_stats', 'context': " C1 "}"), "stats");
        struct json_object *v = value_of(o), *igs = NULL;
        CHECK(ival(v, "book_size_bytes") == (int64_t) book_size, "book size");
        CHECK(ival(v, "nodes_total") == 4, "nodes");
        CHECK(ival(v, "books_used") == 0, "books used");
        CHECK(ival(v, "BIImode") == 0, "LZA");
        CHECK(json_object_object_get_ex(v, "books_per_IG", &igs) && json_object_object_length(igs) == 4, "4 IGs");
        struct json_object *ig2 = json_object_object_get(igs, "2");
        CHECK(ig2 && json_object_get_int64(json_object_array_get_idx(ig2, 1)) == -1, "base -1 in LZA");
        CHECK(ival(v, "books_total") == 4 * json_object_get_int64(json_object_array_get_idx(ig2, 0)), "books total");
        put(o);

        /* the exact bytes of a reply (Python json.dumps format) */
        char *reply = NULL;
        CHECK(engine_handle_text(e, "{\"command\":\"close_shelf\",\"context\":{\"seq\":5,\"node_id\":3},\"id\":4,\"open_handle\":99}",
                                 &reply) == 0, "close");
        CHECK(reply && streq_(reply, "{\"value\": {\"id\": 4, \"creator_id\": 0, \"size_bytes\": 0, \"book_count\": 0, "
                              "\"ctime\": 0, \"mtime\": 0, \"name\": 0, \"mode\": 0, \"parent_id\": 0, \"link_count\": 0, "
                              "\"bos\": [], \"open_handle\": null}, \"context\": {\"seq\": 5, \"node_id\": 3}}"),
              "close_shelf skeleton: %s", reply);
        free(reply);
}

static void test_protocol_errors(void) {
        EXPECT_ERR(ENOSYS, "{'command': 'frobnicate', 'context': " C1 "}");
        EXPECT_ERR(ENOSYS, "{'command': 'version'}");
        EXPECT_ERR(ENOSYS, "{'context': " C1 "}");
        EXPECT_ERR(EACCES, "{'command': 'version', 'context': {'node_id': 5}}");
        EXPECT_ERR(EINVAL, "{'command': 'version', 'context': {'node_id': 81}}");
        EXPECT_ERR(EINVAL, "{'command': 'version', 'context': {'node_id': 'x'}}");
        EXPECT_ERR(EINVAL, "{'command': 'get_shelf', 'context': " C1 "}");
        EXPECT_ERR(EINVAL, "{'command': 'get_shelf', 'context': " C1 ", 'path': '/', 'extra': 1}");
        EXPECT_ERR(EINVAL, "{'command': 'get_shelf', 'context': " C1 ", 'path': 5}");
        /* a node_id given as a decimal string (repl_client) is accepted */
        struct json_object *o = ok(req("{'command': 'version', 'context': {'node_id': '3', 'seq': 1}}"), "string node");
        put(o);
        /* a connection pinned to node 2 may not act as node 3 */
        struct engine_request_info info = { .pinned_node = 2 };
        struct json_object *r = json_tokener_parse("{\"command\": \"version\", \"context\": {\"node_id\": 3}}");
        char *reply = NULL;
        size_t len;
        CHECK(engine_handle(e, r, &info, &reply, &len) == 0 && strstr(reply, "\"errno\": 13"), "pinned: %s", reply);
        free(reply);
        put(r);
}

static void test_namespace(void) {
        int64_t h1, h2;
        int64_t id = create("/demo", &h1);
        CHECK(id == 4, "first shelf id %lld", (long long) id);
        CHECK(h1 > 0, "handle");
        CHECK(create("/demo", &h2) == id && h2 != h1, "create of an existing shelf opens it");

        struct json_object *o = ok(req("{'command': 'get_shelf', 'context': " C1 ", 'path': 'demo'}"), "get_shelf");
        struct json_object *v = value_of(o);
        CHECK(ival(v, "link_count") == 1 && ival(v, "mode") == 33188 && ival(v, "parent_id") == 2, "shelf fields");
        CHECK(streq_(sval(v, "name"), "demo") && ival(v, "ctime") == 1560000000, "name/time");
        CHECK(ival(v, "creator_id") == 1, "creator node");
        CHECK(json_object_is_type(json_object_object_get(v, "open_handle"), json_type_null), "no handle");
        CHECK(json_object_object_length(v) == 12, "12 members");
        put(o);

        EXPECT_ERR(ENOENT, "{'command': 'get_shelf', 'context': " C1 ", 'path': '/nope'}");
        EXPECT_ERR(ENOENT, "{'command': 'get_shelf', 'context': " C1 ", 'path': '/nodir/x'}");
        EXPECT_ERR(ENOTDIR, "{'command': 'get_shelf', 'context': " C1 ", 'path': '/demo/x'}");
        EXPECT_ERR(ENOENT, "{'command': 'create_shelf', 'context': " C1 ", 'path': '/nodir/x', 'mode': 0}");
        EXPECT_ERR(ENOENT, "{'command': 'readlink', 'context': " C1 ", 'path': '/nope'}");
        EXPECT_ERR(EINVAL, "{'command': 'readlink', 'context': " C1 ", 'path': '/demo'}");

        /* mkdir, symlink, list, path */
        o = ok(req("{'command': 'mkdir', 'context': " C1 ", 'path': '/d', 'mode': 16895}"), "mkdir");
        int64_t dir = ival(value_of(o), "id");
        CHECK(ival(value_of(o), "link_count") == 2, "dir link count");
        put(o);
        o = ok(req("{'command': 'mkdir', 'context': " C1 ", 'path': '/d', 'mode': 16895}"), "mkdir again");
        CHECK(ival(value_of(o), "id") == dir, "existing dir returned");
        put(o);
        o = ok(req("{'command': 'get_shelf', 'context': " C1 ", 'path': '/'}"), "root");
        CHECK(ival(value_of(o), "link_count") == 4, "root link count after mkdir: %lld", (long long) ival(value_of(o), "link_count"));
        put(o);
        put(ok(req("{'command': 'symlink', 'context': " C1 ", 'path': '/d/l', 'target': '/demo'}"), "symlink"));
        o = ok(req("{'command': 'readlink', 'context': " C1 ", 'path': '/d/l'}"), "readlink");
        CHECK(streq_(json_object_get_string(value_of(o)), "/demo"), "target");
        put(o);
        o = ok(req("{'command': 'get_shelf', 'context': " C1 ", 'path': '/d/l'}"), "link");
        CHECK(ival(value_of(o), "mode") == 41471, "link mode");
        put(o);
        o = ok(req("{'command': 'get_shelf_path', 'context': " C1 ", 'name': 'l', 'parent_id': %lld}", (long long) dir), "path");
        CHECK(streq_(json_object_get_string(value_of(o)), "/d/l"), "get_shelf_path: %s", json_object_get_string(value_of(o)));
        put(o);
        o = ok(req("{'command': 'list_shelves', 'context': " C1 ", 'path': '/'}"), "list /");
        v = value_of(o);
        CHECK(json_object_array_length(v) == 5, "., .., lost+found, demo, d: %zu", json_object_array_length(v));
        CHECK(streq_(sval(json_object_array_get_idx(v, 0), "name"), ".") && streq_(sval(json_object_array_get_idx(v, 1), "name"), ".."),
              ". and ..");
        CHECK(streq_(sval(json_object_array_get_idx(v, 2), "name"), "lost+found"), "id order");
        put(o);
        o = ok(req("{'command': 'list_shelves', 'context': " C1 ", 'path': '/demo'}"), "list file");
        CHECK(json_object_array_length(value_of(o)) == 2, "file lists itself and parent");
        put(o);

        EXPECT_ERR(ENOTEMPTY, "{'command': 'rmdir', 'context': " C1 ", 'path': '/d'}");
        EXPECT_ERR(ENOTEMPTY, "{'command': 'rmdir', 'context': " C1 ", 'path': '/'}");
        EXPECT_ERR(ENOTDIR, "{'command': 'rmdir', 'context': " C1 ", 'path': '/demo'}");

        /* rename */
        EXPECT_ERR(EEXIST, "{'command': 'rename_shelf', 'context': " C1 ", 'path': '/d/l', 'id': 0, 'newpath': '/demo'}");
        EXPECT_ERR(EINVAL, "{'command': 'rename_shelf', 'context': " C1 ", 'path': '/d', 'id': 0, 'newpath': '/d/sub'}");
        o = ok(req("{'command': 'rename_shelf', 'context': " C1 ", 'path': '/d/l', 'id': 0, 'newpath': '/l2'}"), "rename");
        CHECK(streq_(sval(value_of(o), "name"), "l2") && ival(value_of(o), "parent_id") == 2, "renamed");
        put(o);
        put(ok(req("{'command': 'rmdir', 'context': " C1 ", 'path': '/d'}"), "rmdir"));
        o = ok(req("{'command': 'get_shelf', 'context': " C1 ", 'path': '/'}"), "root");
        CHECK(ival(value_of(o), "link_count") == 3, "root link count after rmdir");
        put(o);
        put(ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/l2'}"), "destroy link"));

        /* destroy while open: EBUSY; close both handles, then it goes */
        EXPECT_ERR(EBUSY, "{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/demo'}");
        put(ok(req("{'command': 'close_shelf', 'context': " C1 ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h1), "close"));
        o = ok(req("{'command': 'list_open_shelves', 'context': " C1 "}"), "list open");
        CHECK(json_object_array_length(value_of(o)) == 1 && ival(json_object_array_get_idx(value_of(o), 0), "id") == h2 &&
              ival(json_object_array_get_idx(value_of(o), 0), "node_id") == 1 && ival(json_object_array_get_idx(value_of(o), 0), "pid") == 100,
              "open shelves: %s", json_object_to_json_string(value_of(o)));
        put(o);
        /* another node cannot close this node's handle */
        put(ok(req("{'command': 'close_shelf', 'context': " CTX(2, 0) ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h2), "close other"));
        EXPECT_ERR(EBUSY, "{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/demo'}");
        put(ok(req("{'command': 'close_shelf', 'context': " C1 ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h2), "close"));
        o = ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/demo'}"), "destroy");
        CHECK(streq_(sval(value_of(o), "name"), "demo"), "destroyed shelf returned");
        put(o);
        EXPECT_ERR(ENOENT, "{'command': 'get_shelf', 'context': " C1 ", 'path': '/demo'}");
}

/* books of a shelf as a JSON array (caller puts the reply) */
static struct json_object *books_of(const char *path, struct json_object **ret_reply) {
        *ret_reply = ok(req("{'command': 'list_shelf_books', 'context': " C1 ", 'path': '%s'}", path), "books");
        return value_of(*ret_reply);
}

static int64_t books_used(void) {
        struct json_object *o = ok(req("{'command': 'get_fs_stats', 'context': " C1 "}"), "stats");
        int64_t n = ival(value_of(o), "books_used");
        put(o);
        return n;
}

static void zero_all(void) {
        uint64_t *ids = NULL;
        size_t n = 0;
        CHECK(engine_take_zombies(e, &ids, &n) == 0, "take zombies");
        CHECK(engine_books_zeroed(e, ids, n) == 0, "zeroed");
        free(ids);
}

static void test_resize(void) {
        int64_t h, h2;
        int64_t id = create("/r", &h);
        struct json_object *o, *reply;

        o = ok(req("{'command': 'resize_shelf', 'context': " C1 ", 'path': '/r', 'id': %lld, 'size_bytes': %llu, 'zero_enabled': true}",
                   (long long) id, (unsigned long long) (2 * book_size + 1)), "grow");
        CHECK(json_object_is_type(json_object_object_get(value_of(o), "z_shelf_path"), json_type_null), "z_shelf_path null");
        put(o);
        struct json_object *b = books_of("/r", &reply);
        CHECK(json_object_array_length(b) == 3, "3 books");
        for (size_t i = 0; i < json_object_array_length(b); i++) {
                struct json_object *bk = json_object_array_get_idx(b, i);
                CHECK(ival(bk, "allocated") == 1, "INUSE");
                CHECK(ival(bk, "id") == (int64_t) (((uint64_t) ival(bk, "intlv_group") << 46) | ((uint64_t) ival(bk, "book_num") << 33)),
                      "LZA id");
        }
        put(reply);
        o = ok(req("{'command': 'get_shelf', 'context': " C1 ", 'path': '/r'}"), "get");
        CHECK(ival(value_of(o), "book_count") == 3 && ival(value_of(o), "size_bytes") == (int64_t) (2 * book_size + 1), "counts");
        put(o);
        CHECK(books_used() == 3, "books used 3");

        EXPECT_ERR(ENOENT, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/r', 'id': 999, 'size_bytes': 0, 'zero_enabled': true}");
        EXPECT_ERR(EINVAL, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/r', 'id': %lld, 'size_bytes': -1, 'zero_enabled': true}", (long long) id);
        EXPECT_ERR(EINVAL, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/r', 'id': %lld, 'size_bytes': 0, 'zero_enabled': 1}", (long long) id);
        EXPECT_ERR(ENOSPC, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/r', 'id': %lld, 'size_bytes': %llu, 'zero_enabled': true}",
                   (long long) id, (unsigned long long) (100000 * book_size));
        CHECK(books_used() == 3, "ENOSPC changed nothing");

        /* shrink while another (node, pid) has it open: EMFILE; the same pid may */
        o = ok(req("{'command': 'open_shelf', 'context': " CTX(2, 0) ", 'path': '/r'}"), "open on node 2");
        h2 = ival(value_of(o), "open_handle");
        put(o);
        EXPECT_ERR(EMFILE, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/r', 'id': %lld, 'size_bytes': 1, 'zero_enabled': true}", (long long) id);
        put(ok(req("{'command': 'close_shelf', 'context': " CTX(2, 0) ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h2), "close"));
        put(ok(req("{'command': 'resize_shelf', 'context': " C1 ", 'path': '/r', 'id': %lld, 'size_bytes': 1, 'zero_enabled': true}", (long long) id), "shrink"));
        b = books_of("/r", &reply);
        CHECK(json_object_array_length(b) == 1, "1 book left");
        put(reply);
        CHECK(books_used() == 3, "freed books are ZOMBIE until zeroed");
        uint64_t *ids = NULL;
        size_t n = 0;
        CHECK(engine_take_zombies(e, &ids, &n) == 0 && n == 2, "2 zombies to zero: %zu", n);
        uint64_t *again = NULL;
        size_t n2 = 9;
        CHECK(engine_take_zombies(e, &again, &n2) == 0 && n2 == 0, "handed out once");
        free(again);
        o = ok(req("{'command': 'get_book', 'context': " C1 ", 'id': %llu}", (unsigned long long) ids[0]), "get_book");
        CHECK(ival(value_of(o), "allocated") == 2, "ZOMBIE");
        put(o);
        CHECK(engine_books_zeroed(e, ids, n) == 0, "zeroed");
        o = ok(req("{'command': 'get_book', 'context': " C1 ", 'id': %llu}", (unsigned long long) ids[0]), "get_book");
        CHECK(ival(value_of(o), "allocated") == 0, "FREE after zeroing");
        put(o);
        free(ids);
        CHECK(books_used() == 1, "books used 1");
        o = ok(req("{'command': 'get_book', 'context': " C1 ", 'id': 12345}"), "no book");
        CHECK(json_object_is_type(value_of(o), json_type_null), "unknown book is null");
        put(o);

        /* rename to a zeroing name turns books ZOMBIE; truncating it to 0 detaches them */
        put(ok(req("{'command': 'close_shelf', 'context': " C1 ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h), "close"));
        put(ok(req("{'command': 'rename_shelf', 'context': " C1 ", 'path': '/r', 'id': %lld, 'newpath': '/.lfs_pending_zero_%lld'}",
                   (long long) id, (long long) id), "rename to zero"));
        b = books_of("/.lfs_pending_zero_4", &reply);
        (void) b;
        put(reply);
        char zpath[64];
        snprintf(zpath, sizeof zpath, "/.lfs_pending_zero_%lld", (long long) id);
        b = books_of(zpath, &reply);
        CHECK(json_object_array_length(b) == 1 && ival(json_object_array_get_idx(b, 0), "allocated") == 2, "ZOMBIE on zeroing shelf");
        put(reply);
        /* its ZOMBIE books may not go back to an ordinary name */
        EXPECT_ERR(EBUSY, "{'command': 'rename_shelf', 'context': " C1 ", 'path': '%s', 'id': 0, 'newpath': '/back'}", zpath);
        put(ok(req("{'command': 'resize_shelf', 'context': " C1 ", 'path': '%s', 'id': %lld, 'size_bytes': 0, 'zero_enabled': true}", zpath,
                   (long long) id), "truncate zeroing shelf"));
        put(ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '%s'}", zpath), "destroy"));
        zero_all();
        CHECK(books_used() == 0, "all free");
}

static void test_xattrs(void) {
        int64_t h;
        int64_t id = create("/x", &h);
        struct json_object *o;

        o = ok(req("{'command': 'list_xattrs', 'context': " C1 ", 'path': '/x'}"), "list");
        struct json_object *names = json_object_object_get(value_of(o), "value");
        CHECK(names && json_object_array_length(names) == 5, "5 names");
        CHECK(streq_(json_object_get_string(json_object_array_get_idx(names, 0)), "user.LFS.AllocationPolicy"), "sorted");
        put(o);
        o = ok(req("{'command': 'get_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.AllocationPolicy'}"), "get");
        CHECK(streq_(sval(value_of(o), "value"), "RandomBooks"), "default policy");
        put(o);
        o = ok(req("{'command': 'get_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.AllocationPolicyList'}"), "list");
        CHECK(strstr(sval(value_of(o), "value"), "RandomBooks,LocalNode,LocalEnc,"), "policy list");
        put(o);
        o = ok(req("{'command': 'get_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.none'}"), "absent");
        CHECK(json_object_is_type(json_object_object_get(value_of(o), "value"), json_type_null), "absent is null");
        put(o);
        put(ok(req("{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.mine', 'value': 'a\\u0000b'}"), "set"));
        o = ok(req("{'command': 'get_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.mine'}"), "get");
        CHECK(json_object_get_string_len(json_object_object_get(value_of(o), "value")) == 3, "value with NUL kept");
        put(o);
        put(ok(req("{'command': 'remove_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.mine'}"), "remove"));
        put(ok(req("{'command': 'remove_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.mine'}"), "remove absent"));

        EXPECT_ERR(EINVAL, "{'command': 'get_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'nodot'}");
        EXPECT_ERR(EINVAL, "{'command': 'get_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS'}");
        EXPECT_ERR(EINVAL, "{'command': 'get_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.a.b'}");
        EXPECT_ERR(EINVAL, "{'command': 'remove_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.AllocationPolicy'}");
        EXPECT_ERR(EINVAL, "{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.a', 'value': null}");
        EXPECT_ERR(ENOTSUP, "{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.AllocationPolicy', 'value': 'Bogus'}");
        EXPECT_ERR(ENOTSUP, "{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.Interleave', 'value': 'x'}");
        EXPECT_ERR(ENOTSUP, "{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.Whatever', 'value': 'x'}");
        EXPECT_ERR(ENOTSUP, "{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.InterleaveRequest', 'value': '\\u0009'}");

        /* RequestIG: the documented example, 0x0203 then 5 books → 0x0203020302, Pos 1 */
        put(ok(req("{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.AllocationPolicy', 'value': 'RequestIG'}"), "policy"));
        EXPECT_ERR(ERANGE, "{'command': 'resize_shelf', 'context': " C1 ", 'path': '/x', 'id': %lld, 'size_bytes': 1, 'zero_enabled': true}", (long long) id);
        put(ok(req("{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.InterleaveRequest', 'value': '\\u0002\\u0003'}"), "request"));
        put(ok(req("{'command': 'resize_shelf', 'context': " C1 ", 'path': '/x', 'id': %lld, 'size_bytes': %llu, 'zero_enabled': true}",
                   (long long) id, (unsigned long long) (5 * book_size)), "grow 5"));
        o = ok(req("{'command': 'get_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.Interleave'}"), "interleave");
        struct json_object *iv = json_object_object_get(value_of(o), "value");
        CHECK(json_object_get_string_len(iv) == 5 && memcmp(json_object_get_string(iv), "\2\3\2\3\2", 5) == 0, "interleave 0x0203020302");
        put(o);
        o = ok(req("{'command': 'get_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.InterleaveRequestPos'}"), "pos");
        CHECK(streq_(sval(value_of(o), "value"), "1"), "pos 1: %s", sval(value_of(o), "value"));
        put(o);
        /* lowest free ids of each IG */
        struct json_object *reply, *b = books_of("/x", &reply);
        CHECK(ival(json_object_array_get_idx(b, 0), "book_num") == 0 && ival(json_object_array_get_idx(b, 2), "book_num") == 1, "lowest first");
        put(reply);

        /* the default policy is kept in the database */
        put(ok(req("{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.AllocationPolicyDefault', 'value': 'LZAdescending'}"), "default"));
        EXPECT_ERR(ENOTSUP, "{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.AllocationPolicyDefault', 'value': 'RequestIG'}");
        int64_t h2, id2 = create("/y", &h2);
        o = ok(req("{'command': 'get_xattr', 'context': " C1 ", 'path': '/y', 'xattr': 'user.LFS.AllocationPolicy'}"), "get");
        CHECK(streq_(sval(value_of(o), "value"), "LZAdescending"), "new default applies");
        put(o);
        put(ok(req("{'command': 'set_xattr', 'context': " C1 ", 'path': '/x', 'xattr': 'user.LFS.AllocationPolicyDefault', 'value': 'RandomBooks'}"), "default back"));
        put(ok(req("{'command': 'close_shelf', 'context': " C1 ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h), "close"));
        put(ok(req("{'command': 'close_shelf', 'context': " C1 ", 'id': %lld, 'open_handle': %lld}", (long long) id2, (long long) h2), "close"));
        put(ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/x'}"), "destroy"));
        put(ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/y'}"), "destroy"));
        zero_all();
}

/* Grows a new shelf on node `node` with `policy` by n books; returns its books' IGs (bitmask). */
static unsigned policy_igs(const char *policy, int node, int n, int *ret_err, int64_t *ret_first_id) {
        char ctx[128], path[64];
        struct json_object *o, *reply;
        unsigned mask = 0;

        snprintf(ctx, sizeof ctx, "{'node_id': %d, 'uid': 0, 'gid': 0, 'pid': 1, 'seq': 1}", node);
        snprintf(path, sizeof path, "/p-%s-%d", policy, node);
        o = ok(req("{'command': 'create_shelf', 'context': %s, 'path': '%s', 'mode': 33188}", ctx, path), "create");
        int64_t id = ival(value_of(o), "id"), h = ival(value_of(o), "open_handle");
        put(o);
        put(ok(req("{'command': 'set_xattr', 'context': %s, 'path': '%s', 'xattr': 'user.LFS.AllocationPolicy', 'value': '%s'}", ctx, path, policy), "policy"));
        o = req("{'command': 'resize_shelf', 'context': %s, 'path': '%s', 'id': %lld, 'size_bytes': %llu, 'zero_enabled': true}", ctx, path,
                (long long) id, (unsigned long long) n * book_size);
        *ret_err = err_of(o);
        put(o);
        struct json_object *b = books_of(path, &reply);
        for (size_t i = 0; i < json_object_array_length(b); i++)
                mask |= 1u << ival(json_object_array_get_idx(b, i), "intlv_group");
        if (ret_first_id)
                *ret_first_id = json_object_array_length(b) ? ival(json_object_array_get_idx(b, 0), "id") : -1;
        put(reply);
        put(ok(req("{'command': 'close_shelf', 'context': %s, 'id': %lld, 'open_handle': %lld}", ctx, (long long) id, (long long) h), "close"));
        put(ok(req("{'command': 'destroy_shelf', 'context': %s, 'path': '%s'}", ctx, path), "destroy"));
        zero_all();
        return mask;
}

/* The errno of a request whose string parameter `key` is `fill` repeated n times
 * (requests too long for req()'s buffer). */
static int err_with_long(const char *head, const char *key, char fill, size_t n, const char *tail) {
        size_t len = strlen(head) + strlen(key) + n + strlen(tail) + 16;
        char *buf = malloc(len), *reply = NULL;
        int err = -1;

        if (!buf)
                return -1;
        int at = snprintf(buf, len, "%s, \"%s\": \"", head, key);
        memset(buf + at, fill, n);
        snprintf(buf + at + n, len - (size_t) at - n, "\"%s", tail);
        for (char *p = buf; *p; p++)
                if (*p == '\'')
                        *p = '"';
        if (engine_handle_text(e, buf, &reply) == 0) {
                struct json_object *o = reply ? json_tokener_parse(reply) : NULL;
                err = o ? err_of(o) : -1;
                json_object_put(o);
        }
        free(reply);
        free(buf);
        return err;
}

/* Linux's limits on xattr names and values and on symbolic link targets, with Linux's errno. */
static void test_limits(void) {
        int64_t h;
        int64_t id = create("/lim", &h);
        const char *set = "{'command': 'set_xattr', 'context': " C1 ", 'path': '/lim', 'value': 'v'";
        CHECK(err_with_long(set, "xattr", 'n', 250, "}") == EINVAL, "a name without a namespace is EINVAL");
        char name[1024];
        snprintf(name, sizeof name, "{'command': 'set_xattr', 'context': " C1 ", 'path': '/lim', 'xattr': 'user.%0250d'", 0);
        CHECK(err_with_long(name, "value", 'v', 65536, "}") == 0, "a 64 KiB value is accepted");
        CHECK(err_with_long(name, "value", 'v', 65537, "}") == E2BIG, "a value over 64 KiB is E2BIG");
        snprintf(name, sizeof name, "{'command': 'set_xattr', 'context': " C1 ", 'path': '/lim', 'xattr': 'user.%0251d'", 0);
        CHECK(err_with_long(name, "value", 'v', 1, "}") == ERANGE, "a name over 255 bytes is ERANGE");
        const char *link = "{'command': 'symlink', 'context': " C1 ", 'path': '/lim-link'";
        CHECK(err_with_long(link, "target", 't', 4096, "}") == ENAMETOOLONG, "a 4096-byte target is ENAMETOOLONG");
        CHECK(err_with_long(link, "target", 't', 0, "}") == ENOENT, "an empty target is ENOENT");
        CHECK(err_with_long(link, "target", 't', 4095, "}") == 0, "a 4095-byte target is accepted");
        struct json_object *o = ok(req("{'command': 'readlink', 'context': " C1 ", 'path': '/lim-link'}"), "readlink");
        CHECK(o && strlen(json_object_get_string(value_of(o))) == 4095, "readlink gives the 4095 bytes back");
        put(o);
        put(ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/lim-link'}"), "rm link"));
        put(ok(req("{'command': 'close_shelf', 'context': " C1 ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h), "close"));
        put(ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/lim'}"), "rm"));
}

static void test_policies(void) {
        int err;
        int64_t first;

        CHECK(policy_igs("LocalNode", 3, 4, &err, &first) == 1u << 2 && err == 0, "LocalNode: IG 2 only");
        CHECK(first == (int64_t) ((UINT64_C(2) << 46)), "LocalNode ascending from book 0");
        CHECK(policy_igs("NearestRemote", 3, 4, &err, NULL) == 0 || !(policy_igs("NearestRemote", 3, 4, &err, NULL) & (1u << 2)),
              "NearestRemote avoids the local IG");
        CHECK(err == 0, "NearestRemote works");
        CHECK(policy_igs("Nearest", 1, 2, &err, NULL) == 1u && err == 0, "Nearest: local first");
        CHECK(policy_igs("NearestEnc", 1, 2, &err, NULL) == 1u && err == 0, "NearestEnc: local first");
        CHECK((policy_igs("NonLocal_Enc", 1, 4, &err, NULL) & 1u) == 0 && err == 0, "NonLocal_Enc: not local");
        CHECK(policy_igs("LocalEnc", 1, 4, &err, NULL) != 0 && err == 0, "LocalEnc implemented");
        /* all 4 nodes share enclosure 1: nothing outside it */
        policy_igs("NearestRack", 1, 1, &err, NULL);
        CHECK(err == ENOSPC, "NearestRack: ENOSPC in one enclosure (%d)", err);
        CHECK(policy_igs("LZAascending", 2, 1, &err, &first) == 1u && first == 0, "LZAascending: lowest id");
        CHECK(policy_igs("LZAdescending", 2, 1, &err, NULL) == 1u << 3, "LZAdescending: highest IG");
        CHECK(policy_igs("LocalNode", 4, 100000, &err, NULL) == 0 && err == ENOSPC, "LocalNode short: ENOSPC, nothing kept");

        /* RandomBooks probes the free books at random ids (not a shuffle of them all): it still
         * finds every one, wrapping around, spreads them over the IGs, and runs out exactly */
        struct json_object *o = ok(req("{'command': 'get_fs_stats', 'context': " C1 "}"), "stats");
        int total = (int) (ival(value_of(o), "books_total") - ival(value_of(o), "books_used"));
        put(o);
        CHECK(policy_igs("RandomBooks", 1, total, &err, NULL) == 0xfu && err == 0, "RandomBooks: all %d free books (%d)", total, err);
        CHECK(policy_igs("RandomBooks", 1, total + 1, &err, NULL) == 0 && err == ENOSPC, "RandomBooks: one more is ENOSPC");
        unsigned spread = 0;
        for (int i = 0; i < 8; i++)
                spread |= policy_igs("RandomBooks", 2, 1, &err, NULL);
        CHECK(spread != 1u && spread != 2u && spread != 4u && spread != 8u, "RandomBooks: single books land in more than one IG");
}

static void test_access(void) {
        struct json_object *o;
        /* uid 1000 makes a private shelf */
        o = ok(req("{'command': 'create_shelf', 'context': " CTX(1, 1000) ", 'path': '/priv', 'mode': 33152}"), "create 0600");
        int64_t id = ival(value_of(o), "id"), h = ival(value_of(o), "open_handle");
        put(o);
        EXPECT_ERR(EACCES, "{'command': 'open_shelf', 'context': " CTX(2, 1001) ", 'path': '/priv'}");
        EXPECT_ERR(EACCES, "{'command': 'resize_shelf', 'context': " CTX(2, 1001) ", 'path': '/priv', 'id': %lld, 'size_bytes': 1, 'zero_enabled': true}", (long long) id);
        EXPECT_ERR(EACCES, "{'command': 'destroy_shelf', 'context': " CTX(2, 1001) ", 'path': '/priv'}");
        EXPECT_ERR(EACCES, "{'command': 'set_xattr', 'context': " CTX(2, 1001) ", 'path': '/priv', 'xattr': 'user.a', 'value': 'b'}");
        EXPECT_ERR(EACCES, "{'command': 'rename_shelf', 'context': " CTX(2, 1001) ", 'path': '/priv', 'id': 0, 'newpath': '/mine'}");
        EXPECT_ERR(EPERM, "{'command': 'fame_chmod', 'context': " CTX(2, 1001) ", 'path': '/priv', 'mode': 511}");
        EXPECT_ERR(EPERM, "{'command': 'fame_chown', 'context': " CTX(1, 1000) ", 'path': '/priv', 'uid': 1001, 'gid': -1}");
        /* the owner, from another node, may */
        o = ok(req("{'command': 'open_shelf', 'context': " CTX(3, 1000) ", 'path': '/priv'}"), "owner opens on node 3");
        int64_t h3 = ival(value_of(o), "open_handle");
        put(o);
        put(ok(req("{'command': 'close_shelf', 'context': " CTX(3, 1000) ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h3), "close"));
        o = ok(req("{'command': 'fame_stat_shelf', 'context': " C1 ", 'path': '/priv'}"), "stat");
        CHECK(ival(value_of(o), "uid") == 1000 && ival(value_of(o), "gid") == 1000 && ival(value_of(o), "creator_id") == 1, "owner recorded");
        put(o);
        /* chmod by the owner opens it to others */
        put(ok(req("{'command': 'fame_chmod', 'context': " CTX(1, 1000) ", 'path': '/priv', 'mode': 420}"), "chmod 0644"));
        o = ok(req("{'command': 'open_shelf', 'context': " CTX(2, 1001) ", 'path': '/priv'}"), "others may read now");
        int64_t h2 = ival(value_of(o), "open_handle");
        put(o);
        EXPECT_ERR(EACCES, "{'command': 'resize_shelf', 'context': " CTX(2, 1001) ", 'path': '/priv', 'id': %lld, 'size_bytes': 1, 'zero_enabled': true}", (long long) id);
        put(ok(req("{'command': 'close_shelf', 'context': " CTX(2, 1001) ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h2), "close"));
        put(ok(req("{'command': 'fame_chown', 'context': " C1 ", 'path': '/priv', 'uid': 1001, 'gid': -1}"), "root chowns"));
        o = ok(req("{'command': 'fame_stat_shelf', 'context': " C1 ", 'path': '/priv'}"), "stat");
        CHECK(ival(value_of(o), "uid") == 1001 && ival(value_of(o), "gid") == 1000, "chown");
        put(o);
        /* no context uid: nobody */
        EXPECT_ERR(EACCES, "{'command': 'destroy_shelf', 'context': {'node_id': 1}, 'path': '/priv'}");
        put(ok(req("{'command': 'close_shelf', 'context': " CTX(1, 1000) ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h), "close"));
        put(ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/priv'}"), "root destroys"));

        /* reads follow a POSIX file system's rules: listing needs read permission on the
         * directory, and every lookup search permission on each directory of the path */
        put(ok(req("{'command': 'mkdir', 'context': " CTX(1, 1000) ", 'path': '/home', 'mode': %d}", 040700), "mkdir 0700"));
        o = ok(req("{'command': 'create_shelf', 'context': " CTX(1, 1000) ", 'path': '/home/notes', 'mode': 33188}"), "create 0644");
        id = ival(value_of(o), "id");
        h = ival(value_of(o), "open_handle");
        put(o);
        put(ok(req("{'command': 'set_xattr', 'context': " CTX(1, 1000) ", 'path': '/home/notes', 'xattr': 'user.a', 'value': 'b'}"), "xattr"));
        put(ok(req("{'command': 'list_shelves', 'context': " CTX(1, 1000) ", 'path': '/home'}"), "the owner lists"));
        put(ok(req("{'command': 'get_shelf', 'context': " CTX(1, 1000) ", 'path': '/home/notes'}"), "the owner looks up"));
        put(ok(req("{'command': 'list_shelves', 'context': " C1 ", 'path': '/home'}"), "root lists"));
        EXPECT_ERR(EACCES, "{'command': 'list_shelves', 'context': " CTX(2, 1001) ", 'path': '/home'}");
        EXPECT_ERR(EACCES, "{'command': 'get_shelf', 'context': " CTX(2, 1001) ", 'path': '/home/notes'}");
        EXPECT_ERR(EACCES, "{'command': 'list_shelf_books', 'context': " CTX(2, 1001) ", 'path': '/home/notes'}");
        EXPECT_ERR(EACCES, "{'command': 'get_xattr', 'context': " CTX(2, 1001) ", 'path': '/home/notes', 'xattr': 'user.a'}");
        EXPECT_ERR(EACCES, "{'command': 'list_xattrs', 'context': " CTX(2, 1001) ", 'path': '/home/notes'}");
        EXPECT_ERR(EACCES, "{'command': 'open_shelf', 'context': " CTX(2, 1001) ", 'path': '/home/notes'}");
        EXPECT_ERR(EACCES, "{'command': 'get_shelf', 'context': {'node_id': 2}, 'path': '/home/notes'}");
        /* search without read (0711): lookups work, listing does not */
        put(ok(req("{'command': 'fame_chmod', 'context': " CTX(1, 1000) ", 'path': '/home', 'mode': %d}", 0711), "chmod 0711"));
        put(ok(req("{'command': 'get_shelf', 'context': " CTX(2, 1001) ", 'path': '/home/notes'}"), "0711: others look up"));
        put(ok(req("{'command': 'list_shelf_books', 'context': " CTX(2, 1001) ", 'path': '/home/notes'}"), "0711: others read a 0644 shelf's books"));
        EXPECT_ERR(EACCES, "{'command': 'list_shelves', 'context': " CTX(2, 1001) ", 'path': '/home'}");
        /* read without search (0744): listing works, lookups below do not */
        put(ok(req("{'command': 'fame_chmod', 'context': " CTX(1, 1000) ", 'path': '/home', 'mode': %d}", 0744), "chmod 0744"));
        put(ok(req("{'command': 'list_shelves', 'context': " CTX(2, 1001) ", 'path': '/home'}"), "0744: others list"));
        EXPECT_ERR(EACCES, "{'command': 'get_shelf', 'context': " CTX(2, 1001) ", 'path': '/home/notes'}");
        put(ok(req("{'command': 'close_shelf', 'context': " CTX(1, 1000) ", 'id': %lld, 'open_handle': %lld}", (long long) id, (long long) h), "close"));
        put(ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/home/notes'}"), "root destroys"));
        put(ok(req("{'command': 'rmdir', 'context': " C1 ", 'path': '/home'}"), "rmdir"));
}

/* Open handles belong to the connection that opened them. */
static void test_connections(void) {
        struct engine_request_info info = { .conn = 7 };
        struct json_object *r = json_tokener_parse("{\"command\": \"create_shelf\", \"context\": {\"node_id\": 1, \"uid\": 0},"
                                                   " \"path\": \"/conn\", \"mode\": 0}");
        char *reply = NULL;
        size_t len;
        CHECK(engine_handle(e, r, &info, &reply, &len) == 0 && strstr(reply, "\"open_handle\": "), "open on connection 7: %s", reply);
        free(reply);
        CHECK(info.notice && json_object_array_length(info.notice) == 1 &&
              strcmp(json_object_get_string(json_object_array_get_idx(info.notice, 0)), "/conn") == 0,
              "a notice of /conn for the watchers");
        json_object_put(info.notice);
        put(r);
        /* another connection cannot close it, even with the right ids */
        struct json_object *o = ok(req("{'command': 'list_open_shelves', 'context': " C1 "}"), "list");
        CHECK(json_object_array_length(value_of(o)) == 1, "one handle");
        int64_t h = ival(json_object_array_get_idx(value_of(o), 0), "id"), id = ival(json_object_array_get_idx(value_of(o), 0), "shelf_id");
        put(o);
        info.conn = 8;
        char buf[256];
        snprintf(buf, sizeof buf, "{\"command\": \"close_shelf\", \"context\": {\"node_id\": 1}, \"id\": %lld, \"open_handle\": %lld}",
                 (long long) id, (long long) h);
        r = json_tokener_parse(buf);
        CHECK(engine_handle(e, r, &info, &reply, &len) == 0, "close from connection 8");
        free(reply);
        put(r);
        EXPECT_ERR(EBUSY, "{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/conn'}");
        /* when connection 7 goes, so do its handles */
        CHECK(engine_connection_closed(e, 7) == 0, "connection closed");
        put(ok(req("{'command': 'destroy_shelf', 'context': " C1 ", 'path': '/conn'}"), "destroy after the connection closed"));
}

static void test_nodes(void) {
        put(ok(req("{'command': 'update_node_soc_status', 'context': " CTX(2, 0) ", 'status': 1, 'cpu_percent': 5, 'rootfs_percent': 6,"
                   " 'network_in': 7, 'network_out': 8, 'mem_percent': 9}"), "soc status"));
        put(ok(req("{'command': 'update_node_mc_status', 'context': " CTX(2, 0) ", 'status': 1}"), "mc status"));
        put(ok(req("{'command': 'kill_zombie_books', 'context': " C1 "}"), "kill zombies"));
        struct json_object *o = ok(req("{'command': 'send_OOB', 'context': " CTX(4, 0) ", 'msg': 'hello'}"), "oob");
        CHECK(ival(value_of(o), "value") == 4, "OOB value is the sender node");
        put(o);
        o = ok(req("{'command': 'get_book_ig', 'context': " C1 ", 'intlv_group': [1, 0]}"), "get_book_ig");
        struct json_object *v = value_of(o);
        CHECK(json_object_array_length(v) > 2 && ival(json_object_array_get_idx(v, 0), "intlv_group") == 0, "ascending over groups");
        put(o);
        EXPECT_ERR(EINVAL, "{'command': 'get_book_ig', 'context': " C1 ", 'intlv_group': 1}");
        o = ok(req("{'command': 'get_book_info_all', 'context': " C1 ", 'intlv_group': 1}"), "info all");
        CHECK(json_object_array_length(value_of(o)) > 0 &&
              json_object_is_type(json_object_object_get(json_object_array_get_idx(value_of(o), 0), "shelf_id"), json_type_null),
              "book info of a free book has null shelf fields");
        put(o);
        o = ok(req("{'command': 'get_book_all', 'context': " C1 "}"), "all");
        CHECK(json_object_array_length(value_of(o)) > 0, "all books");
        put(o);
        put(ok(req("{'command': 'set_am_time', 'context': " C1 ", 'path': '/lost+found', 'atime': 0, 'mtime': 1234}"), "set time"));
        o = ok(req("{'command': 'get_shelf', 'context': " C1 ", 'path': '/lost+found'}"), "get");
        CHECK(ival(value_of(o), "mtime") == 1234, "mtime set");
        put(o);
}

/* A child commits to db in WAL mode and dies without closing it: a -wal with commits stays. */
static void leave_stale_wal(const char *db) {
        pid_t pid = fork();
        if (pid == 0) {
                sqlite3 *s = NULL;
                if (sqlite3_open(db, &s) != SQLITE_OK ||
                    sqlite3_exec(s, "PRAGMA wal_autocheckpoint=0; CREATE TABLE stale (x INT);"
                                 " INSERT INTO stale VALUES (42); UPDATE globals SET books_total = 96;",
                                 NULL, NULL, NULL) != SQLITE_OK) {
                        fprintf(stderr, "child: %s\n", s ? sqlite3_errmsg(s) : "?");
                        _exit(1);
                }
                _exit(0);
        }
        int status = -1;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && status == 0, "child writing %s", db);
        char wal[600];
        struct stat st;
        snprintf(wal, sizeof wal, "%s-wal", db);
        CHECK(stat(wal, &st) == 0 && st.st_size > 0, "%s has commits", wal);
}

/* -1 when db cannot be opened, else whether it holds the table stale with 42 */
static int has_stale(const char *db) {
        sqlite3 *s = NULL;
        sqlite3_stmt *st = NULL;
        int r = -1;
        if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(s, "SELECT count(*) FROM sqlite_master WHERE name = 'stale'", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                r = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (r == 1) {
                r = sqlite3_prepare_v2(s, "SELECT x FROM stale", -1, &st, NULL) == SQLITE_OK &&
                    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 42;
                sqlite3_finalize(st);
        }
        sqlite3_close(s);
        return r;
}

/* Group sync (the server's): a commit's sync waits for engine_sync(); reads leave none pending. */
static void test_group_sync(void) {
        CHECK(!engine_sync_pending(e), "no sync pending without group sync");
        put(ok(req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/gs1', 'mode': 33188}"), "create /gs1"));
        CHECK(!engine_sync_pending(e), "each commit synced without group sync");

        CHECK(engine_set_group_sync(e, true) == 0, "group sync on");
        engine_set_sync_each_change(e, true);
        put(ok(req("{'command': 'version', 'context': " C1 "}"), "version"));
        CHECK(!engine_sync_pending(e), "a read leaves no sync pending");
        put(ok(req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/gs2', 'mode': 33188}"), "create /gs2"));
        put(ok(req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/gs4', 'mode': 33188}"), "create /gs4"));
        CHECK(engine_sync_pending(e), "the commits wait for engine_sync()");
        CHECK(engine_sync(e) == 0 && !engine_sync_pending(e), "engine_sync() makes them");
        CHECK(engine_sync(e) == 0, "nothing to sync is no error");

        put(ok(req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/gs5', 'mode': 33188}"), "create /gs5"));
        CHECK(engine_sync_pending(e), "pending again");
        CHECK(engine_set_group_sync(e, false) == 0 && !engine_sync_pending(e), "off: the pending sync is made");
        put(ok(req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/gs3', 'mode': 33188}"), "create /gs3"));
        put(ok(req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/gs6', 'mode': 33188}"), "create /gs6"));
        CHECK(!engine_sync_pending(e), "off: each commit synced again");

        /* --sync second (the server's default): no reply waits; the server syncs within a second */
        CHECK(engine_set_group_sync(e, true) == 0, "group sync on again");
        engine_set_sync_each_change(e, false);
        put(ok(req("{'command': 'create_shelf', 'context': " C1 ", 'path': '/gs7', 'mode': 33188}"), "create /gs7"));
        CHECK(!engine_sync_pending(e) && engine_unsynced(e), "a change waits for no sync, and is not synced yet");
        CHECK(engine_sync_now(e) == 0 && !engine_unsynced(e), "engine_sync_now() makes it");
        /* each-change: open handles and status still wait for nothing */
        engine_set_sync_each_change(e, true);
        struct json_object *o = ok(req("{'command': 'open_shelf', 'context': " C1 ", 'path': '/gs7'}"), "open /gs7");
        CHECK(!engine_sync_pending(e) && engine_unsynced(e), "an open handle's commit waits for no sync");
        put(o);
        put(ok(req("{'command': 'mkdir', 'context': " C1 ", 'path': '/gs8', 'mode': 16877}"), "mkdir /gs8"));
        CHECK(engine_sync_pending(e), "a change to shelves waits for its sync (each-change)");
        CHECK(engine_sync(e) == 0 && !engine_unsynced(e), "that sync covers the open's commit before it");
        CHECK(engine_set_group_sync(e, false) == 0, "group sync off");
}

/* Issue 16 #4: init --force and fame up's move-aside of a database an unclean stop left with a
 * -wal: the new database gets none of the old commits, the moved copy keeps all of them. */
static void test_stale_wal(const struct fame_geometry *geo) {
        struct topology *t = NULL;
        char *ini = NULL, *err = NULL, db[512], aside[600], path[700];

        CHECK(topology_ini_for_geometry(geo, "test", &ini, &err) == 0 &&
              topology_parse(ini, strlen(ini), "test", &t, &err) == 0, "topology: %s", err ? err : "");
        snprintf(db, sizeof db, "%s/wal.db", test_tmpdir());
        snprintf(aside, sizeof aside, "%s.old-1", db);
        CHECK(t && librarian_db_create(db, t, false, &err) == 0, "create: %s", err ? err : "");

        leave_stale_wal(db);
        CHECK(librarian_db_create(db, t, true, &err) == 0, "init --force: %s", err ? err : "");
        CHECK(has_stale(db) == 0, "init --force: the old -wal is not replayed into the new database");

        leave_stale_wal(db);
        CHECK(sqlite_files_rename(db, aside) == 0, "move aside");
        CHECK(access(db, F_OK) < 0, "%s moved", db);
        snprintf(path, sizeof path, "%s-wal", db);
        CHECK(access(path, F_OK) < 0, "%s moved", path);
        CHECK(librarian_db_create(db, t, false, &err) == 0, "init after move-aside: %s", err ? err : "");
        CHECK(has_stale(db) == 0, "move-aside: the new database has none of the old commits");
        CHECK(has_stale(aside) == 1, "move-aside: the copy moved aside keeps its last commits");
        topology_free(t);
        free(ini);
        free(err);
}

int main(void) {
        char fam[512], db[512], *err = NULL;
        struct fame_geometry geo;

        if (librarian_fixture(UINT64_C(1) << 30, 4, fam, sizeof fam, db, sizeof db, &geo) < 0)
                return test_exit();
        book_size = geo.book_size;
        CHECK(engine_open(db, &e, &err) == 0, "open: %s", err ? err : "");
        free(err);
        if (test_failures)
                return test_exit();
        engine_set_clock(e, fixed_clock);

        test_basics();
        test_protocol_errors();
        test_namespace();
        test_resize();
        test_xattrs();
        test_limits();
        test_policies();
        test_access();
        test_connections();
        test_nodes();
        test_group_sync();
        test_stale_wal(&geo);
        engine_free(e);
        return test_exit();
}
