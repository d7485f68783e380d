/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libfame-pmem.so (lib/pmem-shim.c) on the host, preloaded into an ordinary libpmem program
 * (pmem-calls) as nodes preload it: every persistence entry point of libpmem lands in the
 * library (its trace, FAME_PMEM_SHIM_TRACE, names each call with its range, and PMEM_F_MEM_NOFLUSH
 * calls as not flushed), and the real libpmem still does the copies (the file's bytes).  The
 * same program without the preload writes the same bytes and no trace, so a missing preload or
 * a function the library does not define fails here.  A process without libpmem that calls
 * pmem_persist dies with a line naming the function.  The flushes themselves (the idiom's
 * loads) are for the checker inside QEMU to see: tests/integration runs them there.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spawn.h"
#include "testlib.h"

/* pmem-calls' calls, in its order: the trace line each must leave */
static const struct {
        const char *name;
        unsigned offset, len;
        bool noflush;
} calls[] = {
        { "pmem_persist", 0, 7, false },
        { "pmem_flush", 64, 100, false },
        { "pmem_deep_flush", 256, 64, false },
        { "pmem_deep_persist", 512, 64, false },
        { "pmem_memcpy_persist", 1024, 14, false },
        { "pmem_memmove_persist", 2048, 14, false },
        { "pmem_memset_persist", 3072, 300, false },
        { "pmem_memcpy_nodrain", 4096, 14, false },
        { "pmem_memmove_nodrain", 5120, 14, false },
        { "pmem_memset_nodrain", 6144, 5000, false },
        { "pmem_memcpy", 12288, 6, false },
        { "pmem_memmove", 13312, 7, false },
        { "pmem_memset", 14336, 64, true },
        { "pmem_memcpy", 15360, 7, true },
};

static char *read_all(const char *path) {
        FILE *f = fopen(path, "r");
        char *s = NULL;
        size_t n = 0;
        if (!f)
                return strdup("");
        if (getdelim(&s, &n, 0, f) < 0) {
                free(s);
                s = strdup("");
        }
        fclose(f);
        return s;
}

/* Runs argv[0] with the library preloaded (shim NULL: not), its trace to trace_path and its
 * stderr to err_path; returns its exit status and its stdout in *ret_out. */
static int run(const char *const *argv, const char *shim, const char *trace_path, const char *err_path, char **ret_out) {
        int tfd = open(trace_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int efd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        _cleanup_cmd_ struct cmd *c = cmd_new(argv[0]);
        cmd_args(c, argv + 1);
        if (shim) {
                cmd_setenv(c, "LD_PRELOAD", shim);
                /* under ASan its runtime wants to come first: let it be second; the child's leaks
                 * are libpmem's business, not this test's */
                cmd_setenv(c, "ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0");
        }
        cmd_setenv(c, "FAME_PMEM_SHIM_TRACE", "3");
        cmd_map_fd(c, 3, tfd);
        cmd_map_fd(c, 2, efd);
        int r = cmd_run(c, ret_out);
        close(tfd);
        close(efd);
        return r;
}

static void check_bytes(const char *file) {
        static const struct {
                unsigned offset;
                const char *bytes;
                unsigned len;
        } want[] = {
                { 0, "persist", 7 }, { 1024, "memcpy_persist", 14 }, { 2048, "memcpy_persist", 14 },
                { 4096, "memcpy_nodrain", 14 }, { 5120, "memcpy_nodrain", 14 }, { 12288, "memcpy", 6 },
                { 13312, "memmove", 7 }, { 15360, "noflush", 7 },
        };
        static const struct {
                unsigned offset, len;
                char c;
        } fills[] = { { 3072, 300, 'a' }, { 6144, 5000, 'b' }, { 14336, 64, 'c' } };
        char buf[5002];
        int fd = open(file, O_RDONLY);

        CHECK(fd >= 0, "open %s: %m", file);
        for (size_t i = 0; fd >= 0 && i < sizeof want / sizeof *want; i++)
                CHECK(pread(fd, buf, want[i].len, want[i].offset) == (ssize_t) want[i].len && !memcmp(buf, want[i].bytes, want[i].len),
                      "%s at %u: not libpmem's copy", want[i].bytes, want[i].offset);
        for (size_t i = 0; fd >= 0 && i < sizeof fills / sizeof *fills; i++) {
                bool ok = pread(fd, buf, fills[i].len + 2, fills[i].offset - 1) == (ssize_t) fills[i].len + 2 &&
                          buf[0] == 0 && buf[fills[i].len + 1] == 0;
                for (unsigned k = 1; ok && k <= fills[i].len; k++)
                        ok = buf[k] == fills[i].c;
                CHECK(ok, "%u bytes of '%c' at %u: not libpmem's fill", fills[i].len, fills[i].c, fills[i].offset);
        }
        if (fd >= 0)
                close(fd);
}

static void test_calls(const char *calls_bin, const char *shim, const char *dir) {
        char file[600], trace[600], err[600], want[256];
        snprintf(file, sizeof file, "%s/pmem-file", dir);
        snprintf(trace, sizeof trace, "%s/trace", dir);
        snprintf(err, sizeof err, "%s/stderr", dir);
        const char *argv[] = { calls_bin, file, NULL };
        char *out = NULL, *got, *line, *save = NULL;
        uintptr_t base = 0;
        size_t i = 0;

        /* preloaded: one trace line per call, in order, with its range */
        int r = run(argv, shim, trace, err, &out);
        got = read_all(err);
        CHECK(r == 0, "pmem-calls with the library preloaded: exit %d; stderr: %s", r, got);
        free(got);
        CHECK(out && sscanf(out, "base 0x%" SCNxPTR, &base) == 1, "pmem-calls printed no base: %s", out ? out : "");
        free(out);
        got = read_all(trace);
        for (line = strtok_r(got, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
                if (i >= sizeof calls / sizeof *calls) {
                        CHECK(0, "an extra trace line: %s", line);
                        continue;
                }
                snprintf(want, sizeof want, "%s 0x%" PRIxPTR " %u%s", calls[i].name, base + calls[i].offset, calls[i].len,
                         calls[i].noflush ? " noflush" : "");
                CHECK(!strcmp(line, want), "call %zu: the library traced '%s', not '%s'", i + 1, line, want);
        }
        CHECK(i >= sizeof calls / sizeof *calls, "%zu trace lines for %zu calls: is %s preloaded, and does it define each one?",
              i, sizeof calls / sizeof *calls, shim);
        free(got);
        check_bytes(file);

        /* without it: libpmem alone writes the same bytes, and nothing traces */
        r = run(argv, NULL, trace, err, &out);
        free(out);
        CHECK(r == 0, "pmem-calls without the library: exit %d", r);
        got = read_all(trace);
        CHECK(!*got, "a trace without the library: %s", got);
        free(got);
        check_bytes(file);
}

/* This program has no libpmem: pmem_persist, found in the global scope, is the library's. */
static int call_without_libpmem(void) {
        void (*persist)(const void *, size_t) = (void (*)(const void *, size_t)) dlsym(RTLD_DEFAULT, "pmem_persist");
        static char line[64];
        if (!persist)
                return 3;
        persist(line, sizeof line);
        return 0;
}

static void test_no_libpmem(const char *shim, const char *dir) {
        char trace[600], err[600];
        snprintf(trace, sizeof trace, "%s/trace-nolib", dir);
        snprintf(err, sizeof err, "%s/stderr-nolib", dir);
        const char *argv[] = { "/proc/self/exe", "no-libpmem", NULL };
        char *out = NULL;

        int r = run(argv, shim, trace, err, &out);
        free(out);
        char *got = read_all(err);
        CHECK(r == 128 + 6, "pmem_persist without libpmem: exit %d (want SIGABRT)", r);
        CHECK(strstr(got, "libfame-pmem.so: pmem_persist: libpmem's pmem_drain is not loaded in this process\n"),
              "no line naming the function: %s", got);
        free(got);
}

int main(int argc, char **argv) {
        if (argc == 2 && !strcmp(argv[1], "no-libpmem"))
                return call_without_libpmem();

        const char *calls_bin = getenv("FAME_PMEM_CALLS"), *shim = getenv("FAME_PMEM_SHIM");
        if (!shim || !*shim)
                SKIP("FAME_PMEM_SHIM is not set (run through meson test)");
        if (!calls_bin || !*calls_bin)
                SKIP("libpmem-dev was not found when this build was set up: run scripts/install-deps, then meson setup --reconfigure");
        const char *dir = test_tmpdir();
        test_calls(calls_bin, shim, dir);
        test_no_libpmem(shim, dir);
        return test_exit();
}
