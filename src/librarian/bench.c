/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Librarian benchmark: shelf cycles (create → resize to 2 books → close → destroy) per second
 * with 1 and more concurrent clients, each on its own connection.  Without --address it
 * starts a Librarian of its own (a 4-node FAM in a temporary directory) in this process;
 * with --address it measures any server speaking the protocol (e.g. the Python original),
 * so figures can be compared side by side.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "engine.h"
#include "fame.h"
#include "librarian-client.h"
#include "log.h"
#include "macro.h"
#include "proto.h"
#include "server.h"
#include "topology.h"
#include "util.h"
#include "fame-constants.h"

struct worker {
        pthread_t thread;
        const char *address;
        uint32_t node;
        unsigned index;
        double seconds;
        uint64_t cycles;
        int error;
        char errmsg[512];
};

static bool lfs_unlink;         /* --lfs-unlink: free books as lfs_fuse's unlink does */

static int cycle(struct fame_librarian *l, const char *path, uint64_t book_size) {
        _cleanup_(json_object_putp) struct json_object *shelf = NULL;
        struct json_object *v;
        int r;

        r = librarian_create_shelf(l, path, 0100600, &shelf);
        if (r < 0)
                return r;
        json_object_object_get_ex(shelf, "id", &v);
        int64_t id = json_object_get_int64(v);
        json_object_object_get_ex(shelf, "open_handle", &v);
        int64_t handle = json_object_get_int64(v);

        int grown = librarian_resize_shelf(l, path, id, (int64_t) (2 * book_size), false, NULL);
        r = librarian_close_shelf(l, id, handle, NULL);
        if (r < 0)
                return r;
        if (grown < 0) {
                (void) librarian_destroy_shelf(l, path, NULL);
                return grown;
        }
        char zpath[64];
        if (lfs_unlink) {
                /* the original frees books only through a zeroing shelf truncated to 0 */
                snprintf(zpath, sizeof zpath, "/" FAME_LFS_PENDING_ZERO_PREFIX "%lld", (long long) id);
                r = librarian_rename_shelf(l, path, id, zpath, NULL);
                if (r < 0)
                        return r;
                r = librarian_resize_shelf(l, zpath, id, 0, true, NULL);
                if (r < 0)
                        return r;
                path = zpath;
        }
        return librarian_destroy_shelf(l, path, NULL);
}

static void *work(void *userdata) {
        struct worker *w = userdata;
        struct fame_librarian *l = NULL;
        _cleanup_(json_object_putp) struct json_object *stats = NULL;
        char path[128];
        int r;

        r = fame_librarian_connect(w->address, &l);
        if (r < 0) {
                w->error = r;
                snprintf(w->errmsg, sizeof w->errmsg, "cannot connect to %s", w->address);
                return NULL;
        }
        fame_librarian_set_node(l, w->node);
        r = librarian_get_fs_stats(l, &stats);
        if (r < 0)
                goto fail;
        struct json_object *v;
        json_object_object_get_ex(stats, "book_size_bytes", &v);
        uint64_t book_size = (uint64_t) json_object_get_int64(v);
        double end = now_seconds() + w->seconds, nospace_since = 0;
        while (now_seconds() < end) {
                snprintf(path, sizeof path, "/bench-%d-%u-%llu", (int) getpid(), w->index,
                         (unsigned long long) w->cycles);
                r = cycle(l, path, book_size);
                if (r == -ENOSPC) {
                        /* freed books may still be being zeroed; a server that never frees them
                         * (tm-librarian without --lfs-unlink) stays out of space */
                        if (!nospace_since)
                                nospace_since = now_seconds();
                        else if (now_seconds() - nospace_since > 2) {
                                snprintf(w->errmsg, sizeof w->errmsg, "out of space for 2 s: the server does not free "
                                         "destroyed books (for tm-librarian use --lfs-unlink)");
                                w->error = -ENOSPC;
                                fame_librarian_disconnect(l);
                                return NULL;
                        }
                        continue;
                }
                nospace_since = 0;
                if (r < 0)
                        goto fail;
                w->cycles++;
        }
        fame_librarian_disconnect(l);
        return NULL;
fail:
        w->error = r;
        snprintf(w->errmsg, sizeof w->errmsg, "%s", fame_librarian_error(l));
        fame_librarian_disconnect(l);
        return NULL;
}

struct own_server {
        struct server *server;
        pthread_t thread;
        volatile int stop;
        char dir[256];
};

static void *serve(void *userdata) {
        struct own_server *o = userdata;
        while (!o->stop)
                server_step(o->server, 100);
        return NULL;
}

static int start_own(struct own_server *o, char *address, size_t len) {
        struct fame_create_params params = { .total_size = UINT64_C(1) << 30, .node_count = 4 };
        struct fame_geometry geo;
        struct topology *t = NULL;
        _cleanup_free_ char *fam = NULL, *db = NULL, *ini = NULL, *err = NULL;
        int r;

        snprintf(o->dir, sizeof o->dir, "%s/fame-librarian-bench-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(o->dir))
                return log_error_errno(negative_errno(), "Failed to create a temporary directory: %m");
        if (asprintf(&fam, "%s/fam", o->dir) < 0 || asprintf(&db, "%s/librarian.db", o->dir) < 0)
                return -ENOMEM;
        r = fame_file_create(fam, &params, 0, &geo);
        if (r < 0)
                return log_error_errno(r, "Failed to create a FAM in %s: %m", o->dir);
        r = topology_ini_for_geometry(&geo, "bench", &ini, &err);
        if (r >= 0)
                r = topology_parse(ini, strlen(ini), "bench", &t, &err);
        if (r >= 0)
                r = librarian_db_create(db, t, false, &err);
        topology_free(t);
        if (r >= 0) {
                struct server_options so = { .db_path = db, .fam_path = fam };
                r = server_new(&so, &o->server, &err);
                if (r >= 0)
                        r = server_start(o->server, &err);
        }
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                return r;
        }
        snprintf(address, len, "127.0.0.1:%u", server_port(o->server));
        r = -pthread_create(&o->thread, NULL, serve, o);
        return r;
}

static void stop_own(struct own_server *o) {
        if (!o->server)
                return;
        o->stop = 1;
        pthread_join(o->thread, NULL);
        server_free(o->server);
        char path[512];
        static const char *const files[] = { "fam", "librarian.db", "librarian.db-wal", "librarian.db-shm", "librarian.db.lock" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof path, "%s/%s", o->dir, files[i]);
                unlink(path);
        }
        rmdir(o->dir);
}

int librarian_bench_main(int argc, char **argv) {
        static const struct option opts[] = {
                { "address", required_argument, NULL, 'a' },
                { "clients", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 's' },
                { "node", required_argument, NULL, 'n' },
                { "lfs-unlink", no_argument, NULL, 'u' },
                {}
        };
        const char *address = NULL, *clients = "1,8";
        double seconds = 3;
        uint32_t node = 1;
        struct own_server own = {};
        char own_address[64];
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'a': address = optarg; break;
                case 'u': lfs_unlink = true; break;
                case 'c': clients = optarg; break;
                case 's': {
                        char *end = NULL;
                        seconds = strtod(optarg, &end);
                        if (!end || *end || seconds <= 0 || seconds > 3600) {
                                log_error("librarian bench: --seconds %s: use a number of seconds (e.g. 3)", optarg);
                                return 2;
                        }
                        break;
                }
                case 'n':
                        if (parse_uint32(optarg, 1, 80, &node) < 0) {
                                log_error("librarian bench: --node %s: use a node id 1-%d of the server's topology", optarg, FAME_LIBRARIAN_MAX_NODE);
                                return 2;
                        }
                        break;
                default:
                        return 2;
                }
        if (optind < argc) {
                log_error("librarian bench: unexpected argument '%s'", argv[optind]);
                return 2;
        }
        if (!address) {
                if (start_own(&own, own_address, sizeof own_address) < 0) {
                        stop_own(&own);
                        return 1;
                }
                address = own_address;
        }
        signal(SIGPIPE, SIG_IGN);

        int per_cycle = lfs_unlink ? 6 : 4;
        printf("Librarian benchmark against %s%s: cycles of create, resize to 2 books, close, %s "
               "(%d requests), %.1f s per row\n", address, own.server ? " (its own server, 4-node FAM)" : "",
               lfs_unlink ? "rename to " FAME_LFS_PENDING_ZERO_PREFIX ", resize to 0, destroy" : "destroy", per_cycle, seconds);
        printf("%8s %12s %14s %10s\n", "clients", "cycles/s", "requests/s", "vs 1");
        double base = 0;
        _cleanup_free_ char *list = strdup(clients);
        char *save = NULL;
        for (char *tok = list ? strtok_r(list, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
                uint32_t n;
                if (parse_uint32(tok, 1, 256, &n) < 0) {
                        log_error("librarian bench: --clients %s: use numbers 1-256 separated by commas", clients);
                        r = 2;
                        break;
                }
                struct worker *w = calloc(n, sizeof *w);
                if (!w) {
                        r = 1;
                        break;
                }
                double t0 = now_seconds();
                for (uint32_t i = 0; i < n; i++) {
                        w[i] = (struct worker) { .address = address, .node = node, .index = i, .seconds = seconds };
                        pthread_create(&w[i].thread, NULL, work, &w[i]);
                }
                uint64_t total = 0;
                for (uint32_t i = 0; i < n; i++) {
                        pthread_join(w[i].thread, NULL);
                        total += w[i].cycles;
                        if (w[i].error && !r) {
                                log_error("librarian bench: client %u failed: %s (%s)", i, w[i].errmsg, strerror(-w[i].error));
                                r = 1;
                        }
                }
                double rate = (double) total / (now_seconds() - t0);
                if (base == 0)
                        base = rate;
                printf("%8u %12.0f %14.0f %9.2fx\n", n, rate, rate * per_cycle, base > 0 ? rate / base : 0);
                fflush(stdout);
                free(w);
                if (r)
                        break;
        }
        stop_own(&own);
        return r;
}
