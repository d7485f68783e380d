/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the Librarian's request parser and command engine.  Input is a byte stream
 * as a client would send it; every complete object is handled by the engine against a real
 * SQLite database (made once, from a 2-node topology).  Every reply must be one JSON object
 * with either value + context or errmsg + errno; the engine must never fail hard.
 * tests/fuzz/run-fuzz.sh builds it with clang and runs it briefly, seeded with
 * tests/fuzz/corpus-librarian/. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "proto.h"
#include "topology.h"

static struct engine *e;
static char dir[] = "/tmp/fame-fuzz-librarian-XXXXXX";

static void cleanup(void) {
        static const char *const files[] = { "db", "db-wal", "db-shm" };
        char path[128];
        engine_free(e);
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                snprintf(path, sizeof path, "%s/%s", dir, files[i]);
                unlink(path);
        }
        rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        static const char ini[] = "[global]\nnode_count = 2\nbook_size_bytes = 8M\nnvm_size_per_node = 8B\n";
        char db[128];
        struct topology *t = NULL;
        char *err = NULL;
        (void) argc; (void) argv;

        if (!mkdtemp(dir))
                abort();
        snprintf(db, sizeof db, "%s/db", dir);
        if (topology_parse(ini, strlen(ini), "fuzz", &t, &err) < 0 || librarian_db_create(db, t, false, &err) < 0 ||
            engine_open(db, &e, &err) < 0) {
                fprintf(stderr, "fuzz setup: %s\n", err ? err : "?");
                abort();
        }
        topology_free(t);
        atexit(cleanup);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct proto_stream s;

        proto_stream_init(&s);
        proto_feed(&s, data, size);
        for (struct json_object *o; (o = proto_next(&s)); ) {
                struct engine_request_info info = { .pinned_node = (size & 1) ? 2 : 0 };
                char *reply = NULL;
                size_t len = 0;
                if (engine_handle(e, o, &info, &reply, &len) < 0)
                        __builtin_trap();
                struct json_object *back = json_tokener_parse(reply), *v;
                if (!back || !json_object_is_type(back, json_type_object))
                        __builtin_trap();
                bool good = (json_object_object_get_ex(back, "value", &v) && json_object_object_get_ex(back, "context", &v)) ||
                            (json_object_object_get_ex(back, "errmsg", &v) && json_object_object_get_ex(back, "errno", &v));
                if (!good || strlen(reply) != len)
                        __builtin_trap();
                json_object_put(back);
                json_object_put(info.oob);
                json_object_put(info.notice);
                free(reply);
                /* freed books: zero them (nothing to zero here) so that the database keeps moving */
                uint64_t *ids = NULL;
                size_t n = 0;
                if (engine_take_zombies(e, &ids, &n) == 0 && n)
                        engine_books_zeroed(e, ids, n);
                free(ids);
                json_object_put(o);
        }
        proto_stream_done(&s);
        return 0;
}
