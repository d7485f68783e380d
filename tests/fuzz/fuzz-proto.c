/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the Librarian wire protocol framing and encoding (lib/proto.c).
 * Input is fed in two parts; every object that comes out must encode, and its encoding must
 * parse back as JSON.  An object proto_next() returned was decoded by json-c's tokener (at
 * most 32 levels deep, valid UTF-8), so proto_dumps() has no reason to refuse it: a failed
 * encode, a missing or NUL-holding buffer, a non-ASCII byte (replies are ASCII, as Python's
 * json.dumps) or an encoding that does not parse back aborts, and libFuzzer reports the input.
 * tests/fuzz/run-fuzz.sh builds it with clang and runs it briefly. */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <json-c/json.h>
#include "proto.h"

static void check_encodes(struct json_object *o) {
        char *out = NULL;
        size_t len = 0;
        int r = proto_dumps(o, &out, &len);
        if (r != 0) {
                fprintf(stderr, "proto_dumps() failed (%d) on a decoded object: %s\n", r,
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                abort();
        }
        if (!out || len == 0 || strlen(out) != len) {
                fprintf(stderr, "proto_dumps() returned %s (length %zu)\n", out ? "a buffer holding NUL bytes" : "no buffer", len);
                abort();
        }
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) out[i] >= 0x80) {
                        fprintf(stderr, "proto_dumps() wrote the non-ASCII byte 0x%02x at %zu: %s\n", (unsigned char) out[i], i, out);
                        abort();
                }
        struct json_object *back = json_tokener_parse(out);
        if (!back) {
                fprintf(stderr, "the encoding does not parse back as JSON: %s\n", out);
                abort();
        }
        json_object_put(back);
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct proto_stream s;
        proto_stream_init(&s);
        size_t half = size / 2;
        proto_feed(&s, data, half);
        for (struct json_object *o; (o = proto_next(&s)); ) {
                check_encodes(o);
                json_object_put(o);
        }
        proto_feed(&s, data + half, size - half);
        for (struct json_object *o; (o = proto_next(&s)); ) {
                check_encodes(o);
                json_object_put(o);
        }
        proto_stream_done(&s);
        return 0;
}
