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

int main(void) {
        test_framing();
        test_linear_cost();
        test_encoding();
        return test_exit();
}
