/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame bench fam and fame bench lfs: figures, not tests.  Every FAM figure comes with a
 * baseline measured in the same run (malloc'd memory for memcpy, anonymous shared memory for
 * fetch_add); every /lfs figure with the same one in a tmpfs (bench-lfs.c).
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-lfs.h"
#include "cli.h"
#include "cluster.h"
#include "fam_atomic.h"
#include "fame.h"
#include "util.h"
#include "verbs.h"

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n) {
        qsort(v, n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Shared between the parent and the workers of one fetch_add run. */
struct race {
        int64_t ready;
        int64_t go;
        double start[8], end[8];        /* CLOCK_MONOTONIC seconds, per worker */
};

/* Runs procs workers doing ops fetch_adds on one word: in FAM (slot 1) when fam_path is set,
 * else *anon_word.  Returns the aggregate ops/s, or a negative errno. */
static double fetch_add_run(const char *fam_path, int64_t *anon_word, struct race *race, unsigned procs, uint64_t ops, int64_t *ret_final) {
        struct fame *fam = NULL;
        pid_t pids[8];

        race->ready = race->go = 0;
        if (fam_path) {
                if (fame_open(fam_path, 0, &fam) < 0)
                        return -EIO;
                fam_atomic_64_write(fame_slot(fam, 1), 0);
        } else
                *anon_word = 0;
        for (unsigned i = 0; i < procs; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        return -errno;
                if (pids[i] == 0) {
                        struct fame *own = NULL;
                        int64_t *word = anon_word;
                        if (fam_path) {         /* each worker maps FAM itself, like a node */
                                if (fame_open(fam_path, 0, &own) < 0)
                                        _exit(1);
                                word = fame_slot(own, 1);
                        }
                        __atomic_fetch_add(&race->ready, 1, __ATOMIC_SEQ_CST);
                        while (!__atomic_load_n(&race->go, __ATOMIC_ACQUIRE))
                                cpu_relax();
                        race->start[i] = now_seconds();
                        if (own)
                                for (uint64_t k = 0; k < ops; k++)
                                        fam_atomic_64_fetch_add(word, 1);
                        else
                                for (uint64_t k = 0; k < ops; k++)
                                        __atomic_fetch_add(word, 1, __ATOMIC_SEQ_CST);
                        race->end[i] = now_seconds();
                        fame_close(own);
                        _exit(0);
                }
        }
        while (__atomic_load_n(&race->ready, __ATOMIC_ACQUIRE) < (int64_t) procs)
                cpu_relax();
        __atomic_store_n(&race->go, 1, __ATOMIC_RELEASE);
        bool ok = true;
        for (unsigned i = 0; i < procs; i++) {
                int status = 0;
                while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
                        ;
                ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        *ret_final = fam ? fam_atomic_64_read(fame_slot(fam, 1)) : *anon_word;
        fame_close(fam);
        if (!ok)
                return -EIO;
        /* From the first worker's start to the last one's end: the span all ops took. */
        double first = race->start[0], last = race->end[0];
        for (unsigned i = 1; i < procs; i++) {
                first = race->start[i] < first ? race->start[i] : first;
                last = race->end[i] > last ? race->end[i] : last;
        }
        return (double) procs * (double) ops / (last - first);
}

enum { O_SIZE = 0x100, O_DIR, O_ROUNDS, O_OPS };
const struct verb_options bench_fam_options = {
        .list = (const struct verb_option[]) {
                { "size", O_SIZE, "SIZE", "bytes copied per round (default 64M)" },
                { "dir", O_DIR, "DIR", "where the temporary FAM file lives (default $TMPDIR or /tmp)" },
                { "rounds", O_ROUNDS, "N", "copies per destination; the median is reported (default 15)" },
                { "ops", O_OPS, "N", "fetch_add operations per process (default 5000000)" },
                { "json", VERB_JSON, NULL, "machine-readable output" },
                {}
        },
};

int cmd_bench_fam(const struct verb *v, int argc, char **argv) {
        uint64_t size = UINT64_C(64) << 20, ops = 5000000;
        uint32_t rounds = 15, ops32;
        const char *dir = getenv("TMPDIR");
        bool first = true, json = false;
        int c, r;

        if (!dir || !*dir)
                dir = "/tmp";
        while ((c = verb_getopt_json(v, argc, argv, &first, &json)) != -1) {
                switch (c) {
                case O_SIZE:
                        if (parse_size(optarg, &size) < 0 || size < 4096 || size > (UINT64_C(4) << 30))
                                return cli_usage_error(v, "--size '%s' is not a size from 4K to 4G", optarg);
                        break;
                case O_DIR:
                        dir = optarg;
                        break;
                case O_ROUNDS:
                        if (parse_uint32(optarg, 1, 1000, &rounds) < 0)
                                return cli_usage_error(v, "--rounds '%s' is not a number from 1 to 1000", optarg);
                        break;
                case O_OPS:
                        if (parse_uint32(optarg, 1, UINT32_MAX, &ops32) < 0)
                                return cli_usage_error(v, "--ops '%s' is not a positive number", optarg);
                        ops = ops32;
                        break;
                default:
                        return -EINVAL;
                }
        }

        /* A one-node FAM big enough for the copy: next power of two above 2 x size. */
        uint64_t fam_size = UINT64_C(64) << 20;
        while (fam_size < 2 * size + (UINT64_C(16) << 20))
                fam_size <<= 1;
        /* a private directory (mkdtemp, 0700), not a name others can guess and plant first */
        char tmpdir[PATH_MAX], path[PATH_MAX];
        if (snprintf(tmpdir, sizeof tmpdir, "%s/fame-bench-XXXXXX", dir) >= (int) sizeof tmpdir)
                return cli_usage_error(v, "--dir '%s' is too long", dir);
        if (!mkdtemp(tmpdir))
                return cli_fail(negative_errno(), "Failed to create a temporary directory in '%s': %m; "
                                "give an existing, writable directory with --dir", dir);
        snprintf(path, sizeof path, "%s/fam", tmpdir);
        struct fame_create_params p = { .total_size = fam_size, .book_size = UINT64_C(2) << 20, .node_count = 1, .created = -1 };
        r = fame_file_create(path, &p, 0, NULL);
        if (r < 0) {
                (void) rmdir(tmpdir);
                return r;
        }

        struct fame *fam = NULL;
        void *src = NULL, *ram = NULL;
        struct race *race = MAP_FAILED;
        int64_t *anon = NULL;
        double *t_fam = calloc(rounds, sizeof(double)), *t_ram = calloc(rounds, sizeof(double));
        json_object *out = json_object_new_object();

        r = fame_open(path, FAME_OPEN_POPULATE, &fam);
        if (r < 0)
                goto out;
        src = aligned_alloc(4096, size);
        ram = aligned_alloc(4096, size);
        if (!src || !ram || !t_fam || !t_ram) {
                r = cli_fail(-ENOMEM, "Out of memory for %" PRIu64 "-byte buffers", size);
                goto out;
        }
        uint8_t *dst = fame_book(fam, 0, 0);
        for (uint64_t i = 0; i < size; i++)
                ((uint8_t *) src)[i] = (uint8_t) (i * 131 + 7);
        memset(ram, 0, size);   /* fault everything in before timing */
        memset(dst, 0, size);

        if (!json)
                fprintf(stderr, "memcpy of %" PRIu64 " MiB, %" PRIu32 " rounds each, interleaved...\n", size >> 20, rounds);
        for (uint32_t i = 0; i < rounds; i++) {
                double t0 = now_seconds();
                memcpy(ram, src, size);
                double t1 = now_seconds();
                memcpy(dst, src, size);
                double t2 = now_seconds();
                t_ram[i] = (double) size / (t1 - t0) / 1e6;
                t_fam[i] = (double) size / (t2 - t1) / 1e6;
        }
        if (memcmp(dst, src, size) != 0 || memcmp(ram, src, size) != 0) {
                r = cli_fail(-EIO, "memcpy verification failed");
                goto out;
        }
        double bw_ram = median(t_ram, rounds), bw_fam = median(t_fam, rounds);

        race = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (race == MAP_FAILED) {
                r = cli_fail(negative_errno(), "mmap: %m");
                goto out;
        }
        anon = (int64_t *) ((uint8_t *) race + 2048);

        json_object *mc = json_object_new_object();
        json_object_object_add(mc, "bytes", json_object_new_uint64(size));
        json_object_object_add(mc, "rounds", json_object_new_uint64(rounds));
        json_object_object_add(mc, "malloc_MBps", json_object_new_double(bw_ram));
        json_object_object_add(mc, "fam_MBps", json_object_new_double(bw_fam));
        json_object_object_add(mc, "ratio", json_object_new_double(bw_fam / bw_ram));
        json_object_object_add(out, "memcpy", mc);
        if (!json) {
                printf("memcpy %" PRIu64 " MiB (median of %" PRIu32 ")\n", size >> 20, rounds);
                printf("  malloc'd memory   %8.0f MB/s\n", bw_ram);
                printf("  FAM mapping       %8.0f MB/s   ratio %.2f\n", bw_fam, bw_fam / bw_ram);
                printf("fetch_add on one 64-bit word, %" PRIu64 " ops per process\n", ops);
                printf("  %-6s %14s %14s %7s\n", "procs", "FAM ops/s", "baseline ops/s", "ratio");
                fflush(stdout);
        }
        json_object *fa = json_object_new_array();
        static const unsigned procs[] = { 1, 2, 4 };
        for (size_t i = 0; i < ELEMENTSOF(procs); i++) {
                int64_t final_fam = 0, final_anon = 0;
                double base = fetch_add_run(NULL, anon, race, procs[i], ops, &final_anon);
                double famops = fetch_add_run(path, NULL, race, procs[i], ops, &final_fam);
                if (base < 0 || famops < 0) {
                        r = cli_fail(-EIO, "A benchmark worker failed");
                        goto out;
                }
                if (final_fam != (int64_t) (procs[i] * ops) || final_anon != (int64_t) (procs[i] * ops)) {
                        r = cli_fail(-EIO, "fetch_add lost updates: FAM %" PRId64 ", baseline %" PRId64 ", expected %" PRIu64,
                                 final_fam, final_anon, procs[i] * ops);
                        goto out;
                }
                json_object *row = json_object_new_object();
                json_object_object_add(row, "procs", json_object_new_uint64(procs[i]));
                json_object_object_add(row, "fam_ops_per_s", json_object_new_double(famops));
                json_object_object_add(row, "baseline_ops_per_s", json_object_new_double(base));
                json_object_object_add(row, "ratio", json_object_new_double(famops / base));
                json_object_array_add(fa, row);
                if (!json) {
                        printf("  %-6u %14.0f %14.0f %7.2f\n", procs[i], famops, base, famops / base);
                        fflush(stdout);
                }
        }
        json_object_object_add(out, "fetch_add", fa);
        json_object_object_add(out, "persist", json_object_new_string(fame_persist_method()));
        if (json) {
                print_json(out);
                out = NULL;
        }
        r = 0;
out:
        json_object_put(out);
        if (race != MAP_FAILED)
                munmap(race, 4096);
        free(src);
        free(ram);
        free(t_fam);
        free(t_ram);
        fame_close(fam);
        unlink(path);
        (void) rmdir(tmpdir);
        return r;
}

enum { O_AT = 0x100, O_BASELINE, O_NODE, O_QUICK };
const struct verb_options bench_lfs_options = {
        .list = (const struct verb_option[]) {
                { "at", O_AT, "DIR", "measure in DIR (a subdirectory made and removed again)" },
                { "baseline", O_BASELINE, "DIR", "the same in DIR, in the same run (with --at; a tmpfs)" },
                { "node", O_NODE, "NODE", "run the measurements in NODE of a running cluster:\n"
                                          "its /lfs against its tmpfs" },
                { "quick", O_QUICK, NULL, "fewer iterations and a 16 MiB file (under 10 s on the host)" },
                { "json", VERB_JSON, NULL, "machine-readable output" },
                { .group = &cluster_options },
                {}
        },
};

static void bench_lfs_stop(int sig) {
        (void) sig;
        lfs_bench_stop = 1;
}

/* A stop request (SIGINT, SIGTERM, SIGHUP) ends the measurements, which then clean up. */
static void bench_lfs_catch_signals(void) {
        struct sigaction sa = { .sa_handler = bench_lfs_stop, .sa_flags = SA_RESTART };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
}

/* Where a node has fame (src/image/image.c puts it in diskless nodes, image-debian.c in Debian
 * ones) and a tmpfs for the baseline (diskless nodes mount one on /tmp; Debian's /tmp is on
 * its disk). */
static const struct {
        const char *fame, *tmpfs;
} node_paths[] = {
        [FAME_KIND_DISKLESS] = { "/usr/bin/fame", "/tmp" },
        [FAME_KIND_DEBIAN] = { "/usr/local/bin/fame", "/dev/shm" },
};

/* fame bench lfs --at /lfs --baseline TMPFS --json in the node, through the guest agent (as
 * fame exec); its JSON as it printed it in *ret_json. */
static int bench_lfs_node(const struct cluster_opts *o, const char *node, bool quick, char **ret_json) {
        struct fame_config c;
        enum fame_kind kind;
        int r = load_config(o, NULL, &c);
        if (r < 0)
                return r;
        r = cluster_kind(&c, &kind);
        if (r < 0) {
                config_done(&c);
                return r;
        }
        char *argv[] = { (char *) node_paths[kind].fame, (char *) "bench", (char *) "lfs", (char *) "--at", (char *) "/lfs",
                         (char *) "--baseline", (char *) node_paths[kind].tmpfs, (char *) "--json",
                         quick ? (char *) "--quick" : NULL, NULL };
        /* its output in memory: the agent hands it over only once the command has ended */
        _cleanup_close_ int out = memfd_create("fame-bench-lfs", MFD_CLOEXEC);
        if (out < 0) {
                config_done(&c);
                return cli_fail(negative_errno(), "memfd_create: %m");
        }
        r = cluster_exec(&c, node, argv, quick ? 600 : 3600, out, STDERR_FILENO);
        config_done(&c);
        if (r < 0)
                return r;
        if (r > 0)      /* it said why on stderr, which is ours */
                return cli_fail(-EIO, "%s: '%s bench lfs' failed (exit status %d)", node, argv[0], r);
        off_t len = lseek(out, 0, SEEK_END);
        _cleanup_free_ char *text = len >= 0 ? malloc((size_t) len + 1) : NULL;
        if (!text || pread(out, text, (size_t) len, 0) != len)
                return cli_fail(-EIO, "Cannot read what '%s bench lfs' printed in %s", argv[0], node);
        text[len] = 0;
        *ret_json = TAKE_PTR(text);
        return 0;
}

/* fame bench lfs [--at DIR --baseline DIR | --node NODE] [--quick] [--json] */
int cmd_bench_lfs(const struct verb *v, int argc, char **argv) {
        struct cluster_opts o = { 0 };
        const char *at = NULL, *baseline = NULL, *node = NULL;
        bool first = true, json = false, quick = false;
        struct lfs_bench_result res;
        int c, r;

        while ((c = verb_getopt_json(v, argc, argv, &first, &json)) != -1) {
                r = cluster_opt(v, c, &o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                switch (c) {
                case O_AT:
                        at = optarg;
                        break;
                case O_BASELINE:
                        baseline = optarg;
                        break;
                case O_NODE:
                        node = optarg;
                        break;
                case O_QUICK:
                        quick = true;
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (!at != !baseline)
                return cli_usage_error(v, "--at and --baseline go together: the figures of DIR beside a baseline's");
        if (node && at)
                return cli_usage_error(v, "--node measures the node's /lfs itself; leave out --at and --baseline");
        if (!node && (o.cluster || o.config_file || o.n_sets))
                return cli_usage_error(v, "the cluster options go with --node NODE");

        if (node) {
                _cleanup_free_ char *text = NULL;
                r = bench_lfs_node(&o, node, quick, &text);
                if (r < 0)
                        return r;
                if (lfs_bench_from_json(text, &res) < 0)
                        return cli_fail(-EBADMSG, "%s printed no figures of fame bench lfs (is its fame older than this one?)", node);
                if (json) {
                        fputs(text, stdout);
                        return 0;
                }
        } else {
                bench_lfs_catch_signals();
                r = at ? lfs_bench_run(at, baseline, quick, &res) : lfs_bench_host(quick, &res);
                if (r < 0)
                        return r == -EINVAL ? -EIO : r;    /* not a usage error */
                if (json)
                        return print_json(lfs_bench_to_json(&res));
        }
        lfs_bench_print(&res);
        return 0;
}
