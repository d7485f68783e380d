/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the Librarian wire protocol framing and encoding (src/librarian/proto.c).
 * Input is fed in two parts; every object that comes out must encode, and its encoding must
 * parse back as JSON.  tests/fuzz/run-fuzz.sh builds it with clang and runs it briefly. */
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include "proto.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct proto_stream s;
        proto_stream_init(&s);
        size_t half = size / 2;
        proto_feed(&s, data, half);
        for (struct json_object *o; (o = proto_next(&s)); ) {
                char *out = NULL;
                proto_dumps(o, &out, NULL);
                free(out);
                json_object_put(o);
        }
        proto_feed(&s, data + half, size - half);
        for (struct json_object *o; (o = proto_next(&s)); ) {
                char *out = NULL;
                if (proto_dumps(o, &out, NULL) == 0) {
                        struct json_object *back = json_tokener_parse(out);
                        if (!back) __builtin_trap();
                        json_object_put(back);
                }
                free(out);
                json_object_put(o);
        }
        proto_stream_done(&s);
        return 0;
}
