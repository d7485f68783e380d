/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tm-librarian wire protocol's framing (split, concatenated, malformed streams) and its
 * encoding (byte for byte what Python's json.dumps() writes). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto.h"
#include "testlib.h"

static void feed(struct proto_stream *s, const char *text) {
        CHECK(proto_feed(s, text, strlen(text)) == 0, "feed '%s'", text);
}

/* The next object's "k" member as text, "" when no object is ready. */
static const char *next_k(struct proto_stream *s, char *buf, size_t len) {
        struct json_object *o = proto_next(s), *k;
        *buf = 0;
        if (o && json_object_object_get_ex(o, "k", &k))
                snprintf(buf, len, "%s", json_object_get_string(k));
        else if (o)
                snprintf(buf, len, "(object without k)");
        json_object_put(o);
        return buf;
}

static void test_framing(void) {
        struct proto_stream s;
        char b[64];
        proto_stream_init(&s);

        feed(&s, "{\"k\": \"a\"}{\"k\": \"b\"}");
        CHECK(strcmp(next_k(&s, b, sizeof b), "a") == 0, "concatenated 1: %s", b);
        CHECK(strcmp(next_k(&s, b, sizeof b), "b") == 0, "concatenated 2: %s", b);
        CHECK(strcmp(next_k(&s, b, sizeof b), "") == 0, "then nothing: %s", b);

        feed(&s, "{\"k\": \"sp");
        CHECK(strcmp(next_k(&s, b, sizeof b), "") == 0, "a split request waits: %s", b);
        feed(&s, "lit\", \"x\": [1, {\"y\": 2}]");
        CHECK(strcmp(next_k(&s, b, sizeof b), "") == 0, "still waiting: %s", b);
        feed(&s, "}{\"k\": \"after\"}");
        CHECK(strcmp(next_k(&s, b, sizeof b), "split") == 0, "split: %s", b);
        CHECK(strcmp(next_k(&s, b, sizeof b), "after") == 0, "after split: %s", b);

        feed(&s, "[1, 2]\"str\"{\"k\": \"obj\"}");
        CHECK(strcmp(next_k(&s, b, sizeof b), "obj") == 0, "non-objects dropped: %s", b);

        feed(&s, "garbage}{\"k\": \"resync\"}");
        CHECK(strcmp(next_k(&s, b, sizeof b), "resync") == 0, "resync after garbage: %s", b);

        feed(&s, "{\"k\": \"one\"}\n  {\"k\": \"two\"}\n");
        CHECK(strcmp(next_k(&s, b, sizeof b), "one") == 0, "newline-separated 1: %s", b);
        CHECK(strcmp(next_k(&s, b, sizeof b), "two") == 0, "newline-separated 2: %s", b);

        feed(&s, "not json at all");
        CHECK(strcmp(next_k(&s, b, sizeof b), "") == 0 && s.len == 0, "garbage discarded (len %zu)", s.len);

        feed(&s, "{\"k\": \"\xff\xfe\"}{\"k\": \"utf8\"}");
        CHECK(strcmp(next_k(&s, b, sizeof b), "utf8") == 0, "invalid UTF-8 request dropped: %s", b);

        feed(&s, "{\"k\": bad}");
        CHECK(strcmp(next_k(&s, b, sizeof b), "") == 0 && s.len == 0, "malformed object discarded");

        /* a string with \u0000 keeps its length */
        feed(&s, "{\"k\": \"a\\u0000b\"}");
        struct json_object *o = proto_next(&s), *k = NULL;
        CHECK(o && json_object_object_get_ex(o, "k", &k) && json_object_get_string_len(k) == 3, "embedded NUL");
        json_object_put(o);

        /* a peer that never finishes an object */
        static char big[1 << 20];
        memset(big, ' ', sizeof big);
        big[0] = '{';
        int r = 0;
        for (int i = 0; i < 8 && r == 0; i++)
                r = proto_feed(&s, big, sizeof big);
        CHECK(r == -EMSGSIZE && s.len == 0, "oversized buffer: r=%d len=%zu", r, s.len);
        proto_stream_done(&s);
}

static void expect_dump(const char *json_in, const char *want) {
        struct json_object *o = json_tokener_parse(json_in);
        char *out = NULL;
        CHECK(o, "parse %s", json_in);
        CHECK(proto_dumps(o, &out, NULL) == 0 && out && strcmp(out, want) == 0, "dumps %s:\n got %s\nwant %s", json_in,
              out ? out : "(null)", want);
        free(out);
        json_object_put(o);
}

static void test_encoding(void) {
        expect_dump("{\"value\":{\"a\":[1,2.5,\"x\",true,null]},\"context\":{}}",
                    "{\"value\": {\"a\": [1, 2.5, \"x\", true, null]}, \"context\": {}}");
        expect_dump("{\"s\":\"caf\\u00e9 \\ud83d\\ude00\"}", "{\"s\": \"caf\\u00e9 \\ud83d\\ude00\"}");
        expect_dump("{\"s\":\"a/b \\\"q\\\" \\\\ \\n\\t\\u0001\\u007f\"}", "{\"s\": \"a/b \\\"q\\\" \\\\ \\n\\t\\u0001\\u007f\"}");
        expect_dump("{\"s\":\"x\\u0000y\"}", "{\"s\": \"x\\u0000y\"}");
        expect_dump("[1.0, 0.1, 1e16, 1.5e-7, 123456.789, -0.5, 100.0]", "[1.0, 0.1, 1e+16, 1.5e-07, 123456.789, -0.5, 100.0]");
        expect_dump("[140883517243392, -1, 18446744073709551615]", "[140883517243392, -1, 18446744073709551615]");
        expect_dump("[]", "[]");
        expect_dump("{}", "{}");

        char *out = NULL;
        CHECK(proto_error("Cannot shrink multiply-opened shelf", 24, &out, NULL) == 0 &&
              strcmp(out, "{\"errmsg\": \"Cannot shrink multiply-opened shelf\", \"errno\": 24}") == 0, "error: %s", out);
        free(out);
        struct json_object *ctx = json_tokener_parse("{\"umask\": 18, \"node_id\": 3, \"seq\": 41}");
        struct json_object *val = json_object_new_string("LIBRARIAN 0.997");
        CHECK(proto_reply(val, ctx, &out, NULL) == 0 &&
              strcmp(out, "{\"value\": \"LIBRARIAN 0.997\", \"context\": {\"umask\": 18, \"node_id\": 3, \"seq\": 41}}") == 0,
              "reply: %s", out);
        free(out);
        CHECK(proto_reply(NULL, ctx, &out, NULL) == 0 && strncmp(out, "{\"value\": null, \"context\": {", 28) == 0, "null reply: %s", out);
        free(out);
        json_object_put(val);
        json_object_put(ctx);
}

static double cpu_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Issue 16, items 10 and 12: a request arriving in small pieces is parsed once, not again from
 * its start on every piece (3 MB in 2 KB pieces took seconds), and many pipelined requests are
 * consumed in linear time (no memmove of the rest after each).  Measured in CPU time, with a
 * bound far above the linear cost and far below the quadratic one. */
static void test_linear_cost(void) {
        struct proto_stream s;
        char b[64];
        proto_stream_init(&s);

        size_t big = 3u << 20;
        char *req = malloc(big);
        CHECK(req, "malloc");
        if (!req)
                return;
        int head = snprintf(req, big, "{\"k\": \"big\", \"pad\": \"");
        memset(req + head, 'x', big - (size_t) head - 2);
        memcpy(req + big - 2, "\"}", 2);
        double t0 = cpu_seconds();
        size_t got = 0;
        for (size_t at = 0; at < big; at += 2048) {
                size_t n = big - at < 2048 ? big - at : 2048;
                CHECK(proto_feed(&s, req + at, n) == 0, "feed piece at %zu", at);
                got += strcmp(next_k(&s, b, sizeof b), "big") == 0;
        }
        double t = cpu_seconds() - t0;
        CHECK(got == 1 && t < 1.0, "3 MB in 2 KB pieces: %zu object(s), %.2f s of CPU", got, t);

        /* 150,000 small requests in one buffer, against the same requests fed one at a time
         * (the same parsing work, always an almost empty buffer): no more than a few times
         * that, sanitizers or not (a memmove of the rest after each: ~50 times) */
        const char *one = "{\"k\": 1}";
        size_t n = 150000, len = 0, one_len = strlen(one);
        for (size_t i = 0; i < n; i++, len += one_len)
                memcpy(req + len, one, one_len);
        t0 = cpu_seconds();
        got = 0;
        for (size_t i = 0; i < n; i++) {
                CHECK(proto_feed(&s, one, one_len) == 0, "feed one");
                struct json_object *o = proto_next(&s);
                got += o != NULL;
                json_object_put(o);
        }
        double baseline = cpu_seconds() - t0;
        CHECK(got == n, "%zu of %zu fed one at a time", got, n);
        t0 = cpu_seconds();
        CHECK(proto_feed(&s, req, len) == 0, "feed pipelined");
        got = 0;
        for (;;) {
                struct json_object *o = proto_next(&s);
                if (!o)
                        break;
                got++;
                json_object_put(o);
        }
        t = cpu_seconds() - t0;
        CHECK(got == n && t < 4 * baseline + 0.1, "%zu pipelined requests: %zu parsed, %.2f s of CPU (one at a time: %.2f s)",
              n, got, t, baseline);

        /* a UTF-8 character split between two pieces */
        feed(&s, "{\"k\": \"caf\xc3");
        CHECK(strcmp(next_k(&s, b, sizeof b), "") == 0, "split UTF-8 waits: %s", b);
        feed(&s, "\xa9\"}");
        CHECK(strcmp(next_k(&s, b, sizeof b), "caf\xc3\xa9") == 0, "split UTF-8 character: %s", b);
        free(req);
        proto_stream_done(&s);
}

/* A list_shelves reply of n shelves as the server encodes it, as Python's json.dumps would. */
static char *list_reply(size_t n, size_t *ret_len) {
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_new_object();
                char name[32];
                snprintf(name, sizeof name, "shelf-%06zu", i);
                json_object_object_add(o, "id", json_object_new_int64((int64_t) i + 4));
                json_object_object_add(o, "creator_id", json_object_new_int64(1));
                json_object_object_add(o, "size_bytes", json_object_new_int64(8 << 20));
                json_object_object_add(o, "book_count", json_object_new_int64(1));
                json_object_object_add(o, "ctime", json_object_new_int64(1700000000));
                json_object_object_add(o, "mtime", json_object_new_int64(1700000000));
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "mode", json_object_new_int64(0100644));
                json_object_object_add(o, "parent_id", json_object_new_int64(3));
                json_object_object_add(o, "link_count", json_object_new_int64(1));
                json_object_object_add(o, "bos", json_object_new_array());
                json_object_object_add(o, "open_handle", NULL);
                json_object_array_add(a, o);
        }
        char *text = NULL;
        int r = proto_reply(a, NULL, &text, ret_len);
        json_object_put(a);
        CHECK(r == 0, "encode %zu shelves", n);
        return r == 0 ? text : NULL;
}

/* Feeds text in 64 KiB pieces as the client library receives it; the object, or NULL with *ret
 * the first error. */
static struct json_object *receive_pieces(struct proto_stream *s, const char *text, size_t len, int *ret) {
        struct json_object *o = NULL;
        *ret = 0;
        for (size_t at = 0; at < len && !o; at += 65536) {
                *ret = proto_feed(s, text + at, len - at < 65536 ? len - at : 65536);
                if (*ret < 0)
                        return NULL;
                o = proto_next(s);
        }
        return o;
}

/* Issue 14: a reply over 4 MiB (a directory of 24,000 shelves, a shelf of ~49k books) is
 * received by a client's stream (PROTO_MAX_REPLY), still refused by a server's (requests:
 * PROTO_MAX_BUFFER), in time linear in its size: the CPU time per entry for n and 4n entries
 * is printed (a figure, not a timed assertion). */
static void test_large_reply(void) {
        double per[2] = { 0, 0 };
        size_t sizes[2] = { 6000, 24000 };
        for (int k = 0; k < 2; k++) {
                size_t n = sizes[k], len = 0;
                char *text = list_reply(n, &len);
                if (!text)
                        return;
                struct proto_stream s;
                int r;
                proto_stream_init(&s);
                proto_stream_set_max(&s, PROTO_MAX_REPLY);
                double t0 = cpu_seconds();
                struct json_object *o = receive_pieces(&s, text, len, &r), *v = NULL;
                double t = cpu_seconds() - t0;
                per[k] = t / (double) n;
                CHECK(o && json_object_object_get_ex(o, "value", &v) && json_object_array_length(v) == n,
                      "%zu shelves (%zu bytes) received: %s", n, len, strerror(-r));
                CHECK(s.len == 0 && !s.buf, "the buffer is given back after a large reply (%zu bytes held)",
                      s.allocated);
                printf("large reply: %zu shelves, %zu bytes, %.3f s of CPU, %.2f us per shelf\n", n, len, t,
                       per[k] * 1e6);
                json_object_put(o);
                proto_stream_done(&s);

                if (k == 1) {
                        CHECK(len > PROTO_MAX_BUFFER, "the reply is over 4 MiB: %zu bytes", len);
                        proto_stream_init(&s);  /* a server's stream: requests are small */
                        o = receive_pieces(&s, text, len, &r);
                        CHECK(!o && r == -EMSGSIZE, "a server's stream refuses %zu bytes: %d", len, r);
                        json_object_put(o);
                        proto_stream_done(&s);
                }
                free(text);
        }
        printf("large reply: 4 times the shelves cost %.2f times as much per shelf (linear: about 1)\n",
               per[0] > 0 ? per[1] / per[0] : 0.0);
}

int main(void) {
        test_framing();
        test_linear_cost();
        test_large_reply();
        test_encoding();
        return test_exit();
}
