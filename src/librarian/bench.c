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
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "engine.h"
#include "fame.h"
#include "librarian-client.h"
#include "librarian-secret.h"
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

/* The benchmark's own Librarian runs in a child process, so that its CPU time is its own
 * (/proc/PID/stat), as an external server's is with --server-pid. */
struct own_server {
        pid_t pid;
        char dir[256];
};

static int serve_child(const char *db, const char *fam, int report_fd) {
        struct server_options so = { .db_path = db, .fam_path = fam };
        struct server *server = NULL;
        _cleanup_free_ char *err = NULL;
        int r = server_new(&so, &server, &err);
        if (r >= 0)
                r = server_start(server, &err);
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                return 1;
        }
        uint16_t port = server_port(server);
        if (write(report_fd, &port, sizeof port) != (ssize_t) sizeof port)
                return 1;
        close(report_fd);
        for (;;)                /* until the parent's SIGTERM */
                server_step(server, 1000);
}

static int start_own(struct own_server *o, uint64_t fam_size, char *address, size_t len) {
        struct fame_create_params params = { .total_size = fam_size, .node_count = 4 };
        struct fame_geometry geo;
        struct topology *t = NULL;
        _cleanup_free_ char *fam = NULL, *db = NULL, *ini = NULL, *err = NULL;
        int r, p[2];
        uint16_t port = 0;

        snprintf(o->dir, sizeof o->dir, "%s/fame-librarian-bench-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(o->dir)) {
                o->dir[0] = 0;
                return log_error_errno(negative_errno(), "Failed to create a temporary directory: %m");
        }
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
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                return r;
        }
        if (pipe2(p, O_CLOEXEC) < 0)
                return log_error_errno(negative_errno(), "Failed to create a pipe: %m");
        o->pid = fork();
        if (o->pid < 0)
                return log_error_errno(negative_errno(), "Failed to fork the benchmark's Librarian: %m");
        if (o->pid == 0) {
                close(p[0]);
                _exit(serve_child(db, fam, p[1]));
        }
        close(p[1]);
        if (read(p[0], &port, sizeof port) != (ssize_t) sizeof port)
                r = log_error_errno(-EIO, "The benchmark's Librarian did not start");
        close(p[0]);
        snprintf(address, len, "127.0.0.1:%u", port);
        /* its workers authenticate as every client does (docs/librarian.md) */
        char secret[512];
        snprintf(secret, sizeof secret, "%s/librarian.db.secrets/host.secret", o->dir);
        setenv(LIBRARIAN_SECRET_ENV, secret, 1);
        return r;
}

static void stop_own(struct own_server *o) {
        if (o->pid > 0) {
                kill(o->pid, SIGTERM);
                waitpid(o->pid, NULL, 0);
                o->pid = 0;
        }
        if (!o->dir[0])
                return;
        char path[512];
        static const char *const files[] = { "fam", "librarian.db", "librarian.db-wal", "librarian.db-shm", "librarian.db.lock" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof path, "%s/%s", o->dir, files[i]);
                unlink(path);
        }
        snprintf(path, sizeof path, "%s/librarian.db.secrets/host.secret", o->dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/librarian.db.secrets", o->dir);
        rmdir(path);
        rmdir(o->dir);
}

/* CPU seconds (user + system) a process has used so far, -1 if unknown. */
static double process_cpu(pid_t pid) {
        char path[64], buf[1024];
        unsigned long utime, stime;
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *p = strrchr(buf, ')');      /* after the command name, which may hold spaces */
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
                return -1;
        return (double) (utime + stime) / (double) sysconf(_SC_CLK_TCK);
}

int librarian_bench_main(int argc, char **argv) {
        static const struct option opts[] = {
                { "address", required_argument, NULL, 'a' },
                { "clients", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 's' },
                { "node", required_argument, NULL, 'n' },
                { "lfs-unlink", no_argument, NULL, 'u' },
                { "fam-size", required_argument, NULL, 'f' },
                { "server-pid", required_argument, NULL, 'p' },
                {}
        };
        const char *address = NULL, *clients = "1,8";
        double seconds = 3;
        uint32_t node = 1, server_pid = 0;
        uint64_t fam_size = UINT64_C(1) << 30;
        struct own_server own = {};
        char own_address[64];
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'a': address = optarg; break;
                case 'u': lfs_unlink = true; break;
                case 'f':
                        if (parse_size(optarg, &fam_size) < 0 || fam_size < (UINT64_C(64) << 20)) {
                                log_error("librarian bench: --fam-size %s: use a size of at least 64M (e.g. 1G, 64G)", optarg);
                                return 2;
                        }
                        break;
                case 'p':
                        if (parse_uint32(optarg, 1, INT32_MAX, &server_pid) < 0 || process_cpu((pid_t) server_pid) < 0) {
                                log_error("librarian bench: --server-pid %s: not the pid of a running process", optarg);
                                return 2;
                        }
                        break;
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
        if (address && (fam_size != (UINT64_C(1) << 30)))
                log_warning("librarian bench: --fam-size applies to its own server only, not to %s", address);
        if (!address) {
                if (server_pid) {
                        log_error("librarian bench: --server-pid needs --address (its own server is measured anyway)");
                        return 2;
                }
                if (start_own(&own, fam_size, own_address, sizeof own_address) < 0) {
                        stop_own(&own);
                        return 1;
                }
                address = own_address;
                server_pid = (uint32_t) own.pid;
        }
        signal(SIGPIPE, SIG_IGN);

        int per_cycle = lfs_unlink ? 6 : 4;
        char fam_words[32];
        printf("Librarian benchmark against %s%s%s%s: cycles of create, resize to 2 books, close, %s "
               "(%d requests), %.1f s per row\n", address, own.pid ? " (its own server, 4-node FAM of " : "",
               own.pid ? format_bytes(fam_size, fam_words, sizeof fam_words) : "", own.pid ? ")" : "",
               lfs_unlink ? "rename to " FAME_LFS_PENDING_ZERO_PREFIX ", resize to 0, destroy" : "destroy", per_cycle, seconds);
        printf("%8s %12s %14s %10s %18s\n", "clients", "cycles/s", "requests/s", "vs 1", "server CPU/request");
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
                double t0 = now_seconds(), cpu0 = server_pid ? process_cpu((pid_t) server_pid) : -1;
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
                double cpu1 = server_pid ? process_cpu((pid_t) server_pid) : -1;
                if (base == 0)
                        base = rate;
                char cpu_words[32] = "-";
                if (cpu0 >= 0 && cpu1 >= 0 && total > 0)
                        snprintf(cpu_words, sizeof cpu_words, "%.1f us",
                                 (cpu1 - cpu0) * 1e6 / ((double) total * per_cycle));
                printf("%8u %12.0f %14.0f %9.2fx %18s\n", n, rate, rate * per_cycle, base > 0 ? rate / base : 0, cpu_words);
                fflush(stdout);
                free(w);
                if (r)
                        break;
        }
        stop_own(&own);
        return r;
}
