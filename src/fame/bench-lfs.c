/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame bench lfs: the measurements (bench-lfs.h).  Each figure is measured in the directory
 * asked for and in the baseline, in the same run, in a subdirectory of each made for it and
 * removed after.  Figures, not a test: the goals print PASS or MISS and change nothing else.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-lfs.h"
#include "log.h"
#include "macro.h"
#include "util.h"

volatile sig_atomic_t lfs_bench_stop;

/* ---- the figures and the goals: one table each ---------------------------------------------- */

enum {
        F_STAT, F_LISTDIR, F_CREATE, F_WORKLOAD, F_WORKLOAD_RATE, F_WRITE, F_READ, F_RAM, F_WRITE_RAM, F_READ_RAM,
        F_MAX,
        F_MEASURED = F_RAM,             /* the figures before it are measured in each directory */
};

static const struct {
        const char *name, *unit;
} figure_defs[F_MAX] = {
        [F_STAT]          = { "stat",                "us" },
        [F_LISTDIR]       = { "listdir (10 entries)", "us" },
        [F_CREATE]        = { "create+close+unlink", "us" },
        [F_WORKLOAD]      = { "workload (8 procs)",  "s" },
        [F_WORKLOAD_RATE] = { "workload rate",       "ops/s" },
        [F_WRITE]         = { "write(2)",            "MB/s" },
        [F_READ]          = { "read(2)",             "MB/s" },
        [F_RAM]           = { "memcpy (RAM)",        "MB/s" },
        [F_WRITE_RAM]     = { "write / RAM",         "x RAM" },
        [F_READ_RAM]      = { "read / RAM",          "x RAM" },
};

/* The goals (docs/lfs.md): a figure's value, or its ratio to the baseline, against a limit. */
static const struct {
        const char *name;
        unsigned figure;
        bool of_ratio;                  /* the figure's ratio to the baseline, not its value */
        bool at_most;                   /* value <= limit passes; else value >= limit */
        double limit;
} goal_defs[] = {
        { "stat <= 20 us (host)",                  F_STAT,      false, true,  20 },
        { "create+close+unlink <= 250 us (host)",  F_CREATE,    false, true,  250 },
        { "workload <= 5x baseline",               F_WORKLOAD,  true,  true,  5 },
        { "write >= 0.5 of RAM (node)",            F_WRITE_RAM, false, false, 0.5 },
        { "read >= 0.5 of RAM (node)",             F_READ_RAM,  false, false, 0.5 },
};

_Static_assert((int) F_MAX <= (int) LFS_BENCH_FIGURES_MAX, "struct lfs_bench_result holds every figure");
_Static_assert(ELEMENTSOF(goal_defs) <= LFS_BENCH_GOALS_MAX, "struct lfs_bench_result holds every goal");

/* How much of each: the full run, and --quick (the whole host run under 10 s). */
struct counts {
        unsigned stat, listdir, create;         /* timed operations; the median is reported */
        unsigned workload_ops, workload_runs;   /* per process; the median run is reported */
        size_t file_size;                       /* bytes, in CHUNK writes and reads */
        unsigned bw_rounds;                     /* the best is reported */
};
static const struct counts counts_full = { 5000, 2000, 2000, 2000, 3, 64 << 20, 3 };
static const struct counts counts_quick = { 1000, 300, 300, 250, 3, 16 << 20, 3 };

enum { CHUNK = 1 << 20, WORKERS = 8, TREE_DIRS = 4, TREE_FILES = 25, LIST_FILES = 10, WARMUP = 10 };

/* ---- the tree each measurement works in ---------------------------------------------------- */

struct tree {
        char base[PATH_MAX];            /* DIR/.fame-bench-XXXXXX */
        char file[PATH_MAX + 8];        /* base/f: a 4 KiB file, stat()ed */
        char list[PATH_MAX + 8];        /* base/list: LIST_FILES files, listed */
        char create[PATH_MAX + 8];      /* base/c: created and unlinked */
        char data[PATH_MAX + 8];        /* base/data: the bandwidth file */
        char work[PATH_MAX + 8];        /* base/w: TREE_DIRS x TREE_FILES for the workload */
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
                log_warning("Failed to remove '%s': %m", path);
        return 0;
}

void lfs_bench_rm_rf(const char *path) {
        (void) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void tree_remove(struct tree *t) {
        if (!t->base[0])
                return;
        lfs_bench_rm_rf(t->base);
        t->base[0] = 0;
}

static int make_file(const char *path, size_t size) {
        static const char block[4096];
        _cleanup_close_ int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create '%s': %m", path);
        for (size_t done = 0; done < size; done += sizeof block)
                if (write_all(fd, block, sizeof block) < 0)
                        return log_error_errno(-errno, "Failed to write '%s': %m", path);
        return 0;
}

static int check_dir(const char *dir) {
        struct stat st;
        if (stat(dir, &st) < 0)
                return log_error_errno(-errno, "Cannot measure in '%s': %m", dir);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "Cannot measure in '%s': not a directory", dir);
        if (access(dir, W_OK) < 0)
                return log_error_errno(-errno, "Cannot measure in '%s': %m", dir);
        return 0;
}

static int tree_make(const char *dir, struct tree *t) {
        char path[PATH_MAX + 64];
        int r;

        if (snprintf(t->base, sizeof t->base, "%s/.fame-bench-XXXXXX", dir) >= (int) sizeof t->base)
                return log_error_errno(-ENAMETOOLONG, "'%s' is too long a path", dir);
        if (!mkdtemp(t->base)) {
                r = log_error_errno(-errno, "Failed to create a directory in '%s': %m", dir);
                t->base[0] = 0;
                return r;
        }
        snprintf(t->file, sizeof t->file, "%s/f", t->base);
        snprintf(t->list, sizeof t->list, "%s/list", t->base);
        snprintf(t->create, sizeof t->create, "%s/c", t->base);
        snprintf(t->data, sizeof t->data, "%s/data", t->base);
        snprintf(t->work, sizeof t->work, "%s/w", t->base);
        if ((r = make_file(t->file, 4096)) < 0)
                return r;
        if (mkdir(t->list, 0755) < 0 || mkdir(t->work, 0755) < 0)
                return log_error_errno(-errno, "Failed to create a directory in '%s': %m", t->base);
        for (unsigned i = 0; i < LIST_FILES; i++) {
                snprintf(path, sizeof path, "%s/entry-%u", t->list, i);
                if ((r = make_file(path, 0)) < 0)
                        return r;
        }
        for (unsigned d = 0; d < TREE_DIRS; d++) {
                snprintf(path, sizeof path, "%s/d%u", t->work, d);
                if (mkdir(path, 0755) < 0)
                        return log_error_errno(-errno, "Failed to create '%s': %m", path);
                for (unsigned i = 0; i < TREE_FILES; i++) {
                        snprintf(path, sizeof path, "%s/d%u/file-%02u", t->work, d, i);
                        if ((r = make_file(path, 0)) < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- metadata: one operation timed at a time, the median -------------------------------- */

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
        qsort(v, n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Counts the entries of path but . and ..; -errno on failure. */
static int list_dir(const char *path) {
        DIR *d = opendir(path);
        int n = 0;
        if (!d)
                return -errno;
        for (struct dirent *e; (e = readdir(d)); )
                n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        closedir(d);
        return n;
}

static int op_stat(const struct tree *t) {
        struct stat st;
        return stat(t->file, &st) < 0 ? log_error_errno(-errno, "stat '%s': %m", t->file) : 0;
}

static int op_listdir(const struct tree *t) {
        int n = list_dir(t->list);
        if (n < 0)
                return log_error_errno(n, "Failed to list '%s': %m", t->list);
        if (n != LIST_FILES)
                return log_error_errno(-EIO, "'%s' lists %d entries, not %d", t->list, n, LIST_FILES);
        return 0;
}

static int op_create(const struct tree *t) {
        int fd = open(t->create, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create '%s': %m", t->create);
        if (close(fd) < 0)
                return log_error_errno(-errno, "Failed to close '%s': %m", t->create);
        if (unlink(t->create) < 0)
                return log_error_errno(-errno, "Failed to unlink '%s': %m", t->create);
        return 0;
}

/* The median of n timed calls of op (after a few untimed ones), in µs. */
static int time_op(int (*op)(const struct tree *t), const struct tree *t, unsigned n, double *ret_us) {
        _cleanup_free_ double *us = calloc(n, sizeof(double));
        int r;
        if (!us)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (unsigned i = 0; i < WARMUP; i++)
                if ((r = op(t)) < 0)
                        return r;
        for (unsigned i = 0; i < n; i++) {
                if (lfs_bench_stop)
                        return -EINTR;
                double t0 = now_seconds();
                if ((r = op(t)) < 0)
                        return r;
                us[i] = (now_seconds() - t0) * 1e6;
        }
        *ret_us = median(us, n);
        return 0;
}

/* ---- the multi-process workload ------------------------------------------------------------ */

/* Shared between the parent and the workers of one run. */
struct race {
        int ready, go;
        double start[WORKERS], end[WORKERS];    /* now_seconds(), per worker */
};

/* One worker's fixed mix over the tree: 6 in 10 a stat of a file, 2 an open+close O_RDONLY of a
 * file, 2 a readdir of a directory.  0 when every operation worked. */
static int worker(const struct tree *t, unsigned w, unsigned ops) {
        char path[PATH_MAX + 64];
        struct stat st;
        for (unsigned k = 0; k < ops; k++) {
                unsigned i = (k * 37 + w * 11) % (TREE_DIRS * TREE_FILES), kind = k % 10;
                if (kind < 8)
                        snprintf(path, sizeof path, "%s/d%u/file-%02u", t->work, i / TREE_FILES, i % TREE_FILES);
                else
                        snprintf(path, sizeof path, "%s/d%u", t->work, i % TREE_DIRS);
                if (kind < 6) {
                        if (stat(path, &st) < 0)
                                return -errno;
                } else if (kind < 8) {
                        int fd = open(path, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                return -errno;
                        close(fd);
                } else if (list_dir(path) != TREE_FILES)
                        return -EIO;
        }
        return 0;
}

/* WORKERS processes at once over the tree: the wall time from the first one's start to the
 * last one's end, in seconds. */
static int workload_run(const struct tree *t, struct race *race, unsigned ops, double *ret_s) {
        pid_t pids[WORKERS];
        unsigned started = 0;
        bool ok = true;

        *race = (struct race) { 0 };
        fflush(stdout);
        fflush(stderr);
        for (; started < WORKERS; started++) {
                pids[started] = fork();
                if (pids[started] < 0)
                        break;
                if (pids[started] == 0) {
                        /* a stop request ends the workers; the parent then tears down */
                        signal(SIGINT, SIG_DFL);
                        signal(SIGTERM, SIG_DFL);
                        signal(SIGHUP, SIG_DFL);
                        __atomic_fetch_add(&race->ready, 1, __ATOMIC_SEQ_CST);
                        while (!__atomic_load_n(&race->go, __ATOMIC_ACQUIRE))
                                cpu_relax();
                        race->start[started] = now_seconds();
                        int r = worker(t, started, ops);
                        race->end[started] = now_seconds();
                        _exit(r < 0 ? 1 : 0);
                }
        }
        int r = started < WORKERS ? log_error_errno(-errno, "fork: %m") : 0;
        while (r >= 0 && __atomic_load_n(&race->ready, __ATOMIC_ACQUIRE) < WORKERS)
                cpu_relax();
        __atomic_store_n(&race->go, 1, __ATOMIC_RELEASE);
        for (unsigned i = 0; i < started; i++) {
                int status = 0;
                if (r < 0)
                        kill(pids[i], SIGKILL);
                while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
                        ;
                ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        if (r < 0)
                return r;
        if (lfs_bench_stop)
                return -EINTR;
        if (!ok)
                return log_error_errno(-EIO, "A workload process failed in '%s'", t->work);
        double first = race->start[0], last = race->end[0];
        for (unsigned i = 1; i < WORKERS; i++) {
                first = race->start[i] < first ? race->start[i] : first;
                last = race->end[i] > last ? race->end[i] : last;
        }
        *ret_s = last - first;
        return 0;
}

static int workload(const struct tree *t, const struct counts *n, double *ret_s) {
        double s[8];
        int r;
        struct race *race = mmap(NULL, sizeof *race, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (race == MAP_FAILED)
                return log_error_errno(-errno, "mmap: %m");
        for (unsigned i = 0; i < n->workload_runs && i < ELEMENTSOF(s); i++) {
                r = workload_run(t, race, n->workload_ops, &s[i]);
                if (r < 0) {
                        munmap(race, sizeof *race);
                        return r;
                }
        }
        munmap(race, sizeof *race);
        *ret_s = median(s, n->workload_runs < ELEMENTSOF(s) ? n->workload_runs : ELEMENTSOF(s));
        return 0;
}

/* ---- bandwidth --------------------------------------------------------------------------- */

/* pwrite() of src to base/data in CHUNK blocks, then pread() of it into dst: the best of the
 * rounds, MB/s each.  The file stays between rounds: the first round allocates it. */
static int bandwidth(const struct tree *t, const struct counts *n, const uint8_t *src, uint8_t *dst,
                     double *ret_write, double *ret_read) {
        _cleanup_close_ int fd = open(t->data, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0644);
        double best_w = 0, best_r = 0;
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create '%s': %m", t->data);
        for (unsigned round = 0; round < n->bw_rounds; round++) {
                if (lfs_bench_stop)
                        return -EINTR;
                double t0 = now_seconds();
                for (size_t off = 0; off < n->file_size; off += CHUNK)
                        if (pwrite(fd, src + off, CHUNK, (off_t) off) != CHUNK)
                                return log_error_errno(negative_errno(), "Failed to write '%s': %m", t->data);
                double t1 = now_seconds();
                for (size_t off = 0; off < n->file_size; off += CHUNK)
                        if (pread(fd, dst + off, CHUNK, (off_t) off) != CHUNK)
                                return log_error_errno(negative_errno(), "Failed to read '%s': %m", t->data);
                double t2 = now_seconds();
                if (memcmp(src, dst, n->file_size) != 0)
                        return log_error_errno(-EIO, "'%s' read back other bytes than were written", t->data);
                double w = (double) n->file_size / (t1 - t0) / 1e6, r = (double) n->file_size / (t2 - t1) / 1e6;
                best_w = w > best_w ? w : best_w;
                best_r = r > best_r ? r : best_r;
                memset(dst, 0, n->file_size);
        }
        *ret_write = best_w;
        *ret_read = best_r;
        return 0;
}

/* memcpy of the same size between two malloc'd buffers: the best of the rounds, MB/s. */
static double ram_bandwidth(const struct counts *n, const uint8_t *src, uint8_t *dst) {
        double best = 0;
        for (unsigned round = 0; round < n->bw_rounds; round++) {
                double t0 = now_seconds();
                memcpy(dst, src, n->file_size);
                double t1 = now_seconds();
                double bw = (double) n->file_size / (t1 - t0) / 1e6;
                best = bw > best ? bw : best;
        }
        return best;
}

/* ---- one directory, then both ------------------------------------------------------------ */

static int measure(const char *dir, const struct counts *n, const uint8_t *src, uint8_t *dst, double v[F_MAX]) {
        struct tree t = { 0 };
        int r = tree_make(dir, &t);
        if (r >= 0)
                r = time_op(op_stat, &t, n->stat, &v[F_STAT]);
        if (r >= 0)
                r = time_op(op_listdir, &t, n->listdir, &v[F_LISTDIR]);
        if (r >= 0)
                r = time_op(op_create, &t, n->create, &v[F_CREATE]);
        if (r >= 0)
                r = workload(&t, n, &v[F_WORKLOAD]);
        if (r >= 0)
                v[F_WORKLOAD_RATE] = (double) WORKERS * n->workload_ops / v[F_WORKLOAD];
        if (r >= 0)
                r = bandwidth(&t, n, src, dst, &v[F_WRITE], &v[F_READ]);
        tree_remove(&t);
        return r;
}

int lfs_bench_run(const char *at, const char *baseline, bool quick, struct lfs_bench_result *ret) {
        const struct counts *n = quick ? &counts_quick : &counts_full;
        double v[F_MAX] = { 0 }, b[F_MAX] = { 0 };
        int r;

        *ret = (struct lfs_bench_result) { 0 };
        if ((r = check_dir(at)) < 0 || (r = check_dir(baseline)) < 0)
                return r;
        _cleanup_free_ uint8_t *src = aligned_alloc(4096, n->file_size), *dst = aligned_alloc(4096, n->file_size);
        if (!src || !dst)
                return log_error_errno(-ENOMEM, "Out of memory for two %zu-byte buffers", n->file_size);
        uint64_t s = 0x9e3779b97f4a7c15u;
        for (size_t i = 0; i < n->file_size; i += 8) {
                uint64_t x = xorshift64(&s);
                memcpy(src + i, &x, 8);
        }
        memset(dst, 0, n->file_size);   /* fault it in before anything is timed */

        log_progress("measuring %s", at);
        r = measure(at, n, src, dst, v);
        log_progress("measuring the baseline %s", baseline);
        if (r >= 0)
                r = measure(baseline, n, src, dst, b);
        if (r < 0)
                return r == -EINTR ? log_error_errno(r, "Stopped by a signal") : r;
        v[F_RAM] = b[F_RAM] = ram_bandwidth(n, src, dst);
        v[F_WRITE_RAM] = v[F_WRITE] / v[F_RAM];
        v[F_READ_RAM] = v[F_READ] / v[F_RAM];
        b[F_WRITE_RAM] = b[F_WRITE] / b[F_RAM];
        b[F_READ_RAM] = b[F_READ] / b[F_RAM];

        snprintf(ret->at, sizeof ret->at, "%s", at);
        snprintf(ret->baseline, sizeof ret->baseline, "%s", baseline);
        for (unsigned i = 0; i < F_MAX; i++) {
                struct lfs_bench_figure *f = &ret->figures[ret->n_figures++];
                snprintf(f->name, sizeof f->name, "%s", figure_defs[i].name);
                snprintf(f->unit, sizeof f->unit, "%s", figure_defs[i].unit);
                f->value = v[i];
                f->baseline = b[i];
                f->ratio = b[i] > 0 ? v[i] / b[i] : 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(goal_defs); i++) {
                const struct lfs_bench_figure *f = &ret->figures[goal_defs[i].figure];
                struct lfs_bench_goal *g = &ret->goals[ret->n_goals++];
                snprintf(g->name, sizeof g->name, "%s", goal_defs[i].name);
                g->limit = goal_defs[i].limit;
                g->value = goal_defs[i].of_ratio ? f->ratio : f->value;
                g->pass = goal_defs[i].at_most ? g->value <= g->limit : g->value >= g->limit;
        }
        return 0;
}

/* ---- the result as a table, as JSON, and back -------------------------------------------- */

static const char *value_format(const char *unit) {
        if (!strcmp(unit, "MB/s") || !strcmp(unit, "ops/s"))
                return "%12.0f";
        if (!strcmp(unit, "s"))
                return "%12.3f";
        return "%12.2f";
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
void lfs_bench_print(const struct lfs_bench_result *r) {
        printf("/lfs figures: %s against the baseline %s\n", r->at, r->baseline);
        printf("%-22s %-6s %12s %12s %8s\n", "figure", "unit", "measured", "baseline", "ratio");
        for (size_t i = 0; i < r->n_figures; i++) {
                const struct lfs_bench_figure *f = &r->figures[i];
                printf("%-22s %-6s ", f->name, f->unit);
                printf(value_format(f->unit), f->value);
                printf(" ");
                printf(value_format(f->unit), f->baseline);
                printf(" %8.3g\n", f->ratio);
        }
        printf("goals (a benchmark, not a test)\n");
        for (size_t i = 0; i < r->n_goals; i++)
                printf("  %-4s  %-38s %10.2f  (limit %g)\n", r->goals[i].pass ? "PASS" : "MISS", r->goals[i].name,
                       r->goals[i].value, r->goals[i].limit);
}
#pragma GCC diagnostic pop

struct json_object *lfs_bench_to_json(const struct lfs_bench_result *r) {
        json_object *out = json_object_new_object(), *figures = json_object_new_array(), *goals = json_object_new_array();
        json_object_object_add(out, "at", json_object_new_string(r->at));
        json_object_object_add(out, "baseline", json_object_new_string(r->baseline));
        for (size_t i = 0; i < r->n_figures; i++) {
                const struct lfs_bench_figure *f = &r->figures[i];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(f->name));
                json_object_object_add(o, "unit", json_object_new_string(f->unit));
                json_object_object_add(o, "value", json_object_new_double(f->value));
                json_object_object_add(o, "baseline", json_object_new_double(f->baseline));
                json_object_object_add(o, "ratio", json_object_new_double(f->ratio));
                json_object_array_add(figures, o);
        }
        for (size_t i = 0; i < r->n_goals; i++) {
                const struct lfs_bench_goal *g = &r->goals[i];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(g->name));
                json_object_object_add(o, "limit", json_object_new_double(g->limit));
                json_object_object_add(o, "value", json_object_new_double(g->value));
                json_object_object_add(o, "pass", json_object_new_boolean(g->pass));
                json_object_array_add(goals, o);
        }
        json_object_object_add(out, "figures", figures);
        json_object_object_add(out, "goals", goals);
        return out;
}

static bool get_string(json_object *o, const char *key, char *buf, size_t len) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return false;
        snprintf(buf, len, "%s", json_object_get_string(v));
        return true;
}

static bool get_number(json_object *o, const char *key, double *ret) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) ||
            !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                return false;
        *ret = json_object_get_double(v);
        return true;
}

static int from_json(json_object *o, struct lfs_bench_result *ret) {
        json_object *figures, *goals, *pass;
        if (!json_object_is_type(o, json_type_object) || !get_string(o, "at", ret->at, sizeof ret->at) ||
            !get_string(o, "baseline", ret->baseline, sizeof ret->baseline) ||
            !json_object_object_get_ex(o, "figures", &figures) || !json_object_is_type(figures, json_type_array) ||
            !json_object_object_get_ex(o, "goals", &goals) || !json_object_is_type(goals, json_type_array) ||
            json_object_array_length(figures) > LFS_BENCH_FIGURES_MAX || json_object_array_length(goals) > LFS_BENCH_GOALS_MAX)
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(figures); i++) {
                json_object *f = json_object_array_get_idx(figures, i);
                struct lfs_bench_figure *x = &ret->figures[ret->n_figures++];
                if (!get_string(f, "name", x->name, sizeof x->name) || !get_string(f, "unit", x->unit, sizeof x->unit) ||
                    !get_number(f, "value", &x->value) || !get_number(f, "baseline", &x->baseline) ||
                    !get_number(f, "ratio", &x->ratio))
                        return -EBADMSG;
        }
        for (size_t i = 0; i < json_object_array_length(goals); i++) {
                json_object *g = json_object_array_get_idx(goals, i);
                struct lfs_bench_goal *x = &ret->goals[ret->n_goals++];
                if (!get_string(g, "name", x->name, sizeof x->name) || !get_number(g, "limit", &x->limit) ||
                    !get_number(g, "value", &x->value) || !json_object_object_get_ex(g, "pass", &pass) ||
                    !json_object_is_type(pass, json_type_boolean))
                        return -EBADMSG;
                x->pass = json_object_get_boolean(pass);
        }
        return 0;
}

int lfs_bench_from_json(const char *text, struct lfs_bench_result *ret) {
        *ret = (struct lfs_bench_result) { 0 };
        json_object *o = json_tokener_parse(text);
        if (!o)
                return -EBADMSG;
        int r = from_json(o, ret);
        json_object_put(o);
        return r;
}
