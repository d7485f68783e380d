/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame bench lfs (docs/lfs.md, "Measuring /lfs"): metadata and bandwidth figures of a directory
 * (/lfs) beside a baseline directory (a tmpfs), measured in the same run.
 *   bench-lfs.c       the measurements, the goals, the result as a table or JSON and back
 *   bench-lfs-host.c  a private Librarian and fame-lfs mount on the host, torn down after
 * cmd-bench.c parses the options and picks the mode (--at, the host, --node).
 */
#ifndef FAME_BENCH_LFS_H
#define FAME_BENCH_LFS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct json_object;

enum { LFS_BENCH_FIGURES_MAX = 16, LFS_BENCH_GOALS_MAX = 8 };

/* One figure: its value in the measured directory and in the baseline; ratio = value / baseline. */
struct lfs_bench_figure {
        char name[48];
        char unit[16];                  /* "us", "s", "ops/s", "MB/s", "x RAM" */
        double value, baseline, ratio;
};

/* One goal, checked against the figures (the table of goals is in bench-lfs.c). */
struct lfs_bench_goal {
        char name[64];
        double limit, value;
        bool pass;
};

struct lfs_bench_result {
        char at[256], baseline[256];
        struct lfs_bench_figure figures[LFS_BENCH_FIGURES_MAX];
        size_t n_figures;
        struct lfs_bench_goal goals[LFS_BENCH_GOALS_MAX];
        size_t n_goals;
};

/* Set by a signal handler: the measurements stop early and return -EINTR, so that whoever set
 * things up can tear them down. */
extern volatile sig_atomic_t lfs_bench_stop;

/* Every measurement in a new subdirectory of at and of baseline (both removed again), then the
 * goals.  quick: fewer iterations and a 16 MiB file.  0 or -errno (logged). */
int lfs_bench_run(const char *at, const char *baseline, bool quick, struct lfs_bench_result *ret);

/* The result as a table with its goals, or as one JSON object (docs/lfs.md). */
void lfs_bench_print(const struct lfs_bench_result *r);
struct json_object *lfs_bench_to_json(const struct lfs_bench_result *r);
/* Back from that JSON (what a node printed); -EBADMSG when it is not of that shape (not logged). */
int lfs_bench_from_json(const char *text, struct lfs_bench_result *ret);

/* The host: a FAM file, a Librarian and fame-lfs mounted in a private temporary directory, a
 * tmpfs for the baseline; lfs_bench_run() there; everything torn down again (also on SIGINT,
 * SIGTERM, SIGHUP).  Needs root and /dev/fuse.  0 or -errno (logged). */
int lfs_bench_host(bool quick, struct lfs_bench_result *ret);

/* rm -rf of path (not crossing into other mounts); failures are warnings. */
void lfs_bench_rm_rf(const char *path);

#endif
