/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libfame-pmem.so: makes libpmem's persistence calls visible to FAM/E's coherence checker.
 *
 * libpmem (PMDK) flushes with bare clflush/clflushopt/clwb (dc cvac on aarch64), whose
 * addresses QEMU's plugins cannot see; the checker would call each of them "a flush the checker
 * cannot see".  Preloaded into every process of a node (/etc/ld.so.preload, after
 * libfame-mmap.so), this library defines libpmem's public persistence entry points with
 * libpmem.h's signatures, so a program's calls to them land here.  Each flushes its range with
 * the flush idiom (flush-idiom.h: each flush followed by a load of the same line, as
 * fame_persist does) and leaves the rest of the work to the real libpmem (dlsym RTLD_NEXT):
 * the copies, the drain, the deep drain.  libpmem is never asked to flush itself: its own
 * flushes would still be unseen ones, so copies go to it with PMEM_F_MEM_NOFLUSH and the flush
 * is ours.  A call with PMEM_F_MEM_NOFLUSH flushes nothing, so a missing flush is still found.
 * pmem_msync, pmem_drain and pmem_deep_drain are not cache flushes: libpmem's own.
 *
 * Like libfame-mmap.so it depends on the C library alone (no libfame, no libpmem: it is in
 * every process, most of which never load libpmem) and does nothing until a pmem_* call.
 * FAME_PMEM_SHIM_TRACE=FD: one line per call to FD ("NAME 0xADDR LEN", plus " noflush" when
 * PMEM_F_MEM_NOFLUSH kept it from flushing), for tests/unit/test-pmem-shim.c.
 * docs/check.md says what it cannot see.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flush-idiom.h"

#define EXPORT __attribute__((visibility("default")))

/* libpmem.h 1.12's flags and entry points, declared here: the library is built where libpmem
 * is not installed.  Where it is, its header comes too, and the compiler checks that these
 * declarations and the definitions below match libpmem's own. */
#define F_NODRAIN (1U << 0)
#define F_NOFLUSH (1U << 5)
#if __has_include(<libpmem.h>)
#include <libpmem.h>
_Static_assert(F_NODRAIN == PMEM_F_MEM_NODRAIN && F_NOFLUSH == PMEM_F_MEM_NOFLUSH, "libpmem.h's flags");
#endif
EXPORT void pmem_persist(const void *addr, size_t len);
EXPORT void pmem_flush(const void *addr, size_t len);
EXPORT void pmem_deep_flush(const void *addr, size_t len);
EXPORT int pmem_deep_persist(const void *addr, size_t len);
EXPORT void *pmem_memmove_persist(void *pmemdest, const void *src, size_t len);
EXPORT void *pmem_memcpy_persist(void *pmemdest, const void *src, size_t len);
EXPORT void *pmem_memset_persist(void *pmemdest, int c, size_t len);
EXPORT void *pmem_memmove_nodrain(void *pmemdest, const void *src, size_t len);
EXPORT void *pmem_memcpy_nodrain(void *pmemdest, const void *src, size_t len);
EXPORT void *pmem_memset_nodrain(void *pmemdest, int c, size_t len);
EXPORT void *pmem_memmove(void *pmemdest, const void *src, size_t len, unsigned flags);
EXPORT void *pmem_memcpy(void *pmemdest, const void *src, size_t len, unsigned flags);
EXPORT void *pmem_memset(void *pmemdest, int c, size_t len, unsigned flags);

/* ---- the real libpmem, found once -------------------------------------------------------- */

typedef void *copy_fn(void *, const void *, size_t, unsigned);
static struct {
        void (*drain)(void);
        int (*deep_drain)(const void *, size_t);
        copy_fn *memmove, *memcpy;
        void *(*memset)(void *, int, size_t, unsigned);
        int trace_fd;
} real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void find_real(void) {
        /* the libraries after this one in the search order: the program's libpmem */
        real.drain = (void (*)(void)) dlsym(RTLD_NEXT, "pmem_drain");
        real.deep_drain = (int (*)(const void *, size_t)) dlsym(RTLD_NEXT, "pmem_deep_drain");
        real.memmove = (copy_fn *) dlsym(RTLD_NEXT, "pmem_memmove");
        real.memcpy = (copy_fn *) dlsym(RTLD_NEXT, "pmem_memcpy");
        real.memset = (void *(*)(void *, int, size_t, unsigned)) dlsym(RTLD_NEXT, "pmem_memset");

        const char *t = getenv("FAME_PMEM_SHIM_TRACE");
        char *end;
        long fd = t && *t ? strtol(t, &end, 10) : -1;
        real.trace_fd = fd >= 0 && fd <= 65535 && !*end ? (int) fd : -1;
}

/* The real function, or abort: only a program that calls pmem_* without libpmem gets here. */
static void *need(const char *caller, void *fn, const char *name) {
        if (!fn) {
                char msg[200];
                int n = snprintf(msg, sizeof msg, "libfame-pmem.so: %s: libpmem's %s is not loaded in this process\n",
                                 caller, name);
                (void) !write(STDERR_FILENO, msg, n > 0 && (size_t) n < sizeof msg ? (size_t) n : sizeof msg - 1);
                abort();
        }
        return fn;
}
#define NEED(caller, field) ((__typeof__(real.field)) need(caller, (void *) real.field, "pmem_" #field))

static void trace(const char *name, const void *addr, size_t len, bool flushed) {
        if (real.trace_fd < 0)
                return;
        char line[128];
        int saved = errno;
        int n = snprintf(line, sizeof line, "%s 0x%" PRIxPTR " %zu%s\n", name, (uintptr_t) addr, len,
                         flushed ? "" : " noflush");
        if (n > 0 && (size_t) n < sizeof line)
                (void) !write(real.trace_fd, line, (size_t) n);
        errno = saved;
}

/* ---- the entry points --------------------------------------------------------------------- */

/* Our flush: write back (the line may stay cached), as libpmem's clwb/clflushopt/clflush and
 * dc cvac do. */
static void flush(const char *name, const void *addr, size_t len) {
        pthread_once(&real_once, find_real);
        flush_idiom_range(addr, len, true);
        trace(name, addr, len, true);
}

EXPORT void pmem_flush(const void *addr, size_t len) {
        flush("pmem_flush", addr, len);
}

EXPORT void pmem_deep_flush(const void *addr, size_t len) {
        flush("pmem_deep_flush", addr, len);
}

EXPORT void pmem_persist(const void *addr, size_t len) {
        flush("pmem_persist", addr, len);
        NEED("pmem_persist", drain)();
}

EXPORT int pmem_deep_persist(const void *addr, size_t len) {
        flush("pmem_deep_persist", addr, len);
        return NEED("pmem_deep_persist", deep_drain)(addr, len);
}

enum op { MEMMOVE, MEMCPY, MEMSET };

/* A copy (or fill) by libpmem without its flush, then ours and the drain the flags ask for. */
static void *copy(const char *name, enum op op, void *dest, const void *src, int c, size_t len, unsigned flags) {
        bool flush_it = !(flags & F_NOFLUSH);
        void *ret;

        pthread_once(&real_once, find_real);
        switch (op) {
        case MEMMOVE:
                ret = NEED(name, memmove)(dest, src, len, flags | F_NOFLUSH);
                break;
        case MEMCPY:
                ret = NEED(name, memcpy)(dest, src, len, flags | F_NOFLUSH);
                break;
        default:
                ret = NEED(name, memset)(dest, c, len, flags | F_NOFLUSH);
                break;
        }
        if (flush_it) {
                flush_idiom_range(dest, len, true);
                if (!(flags & F_NODRAIN))
                        NEED(name, drain)();
        }
        trace(name, dest, len, flush_it);
        return ret;
}

EXPORT void *pmem_memmove(void *pmemdest, const void *src, size_t len, unsigned flags) {
        return copy("pmem_memmove", MEMMOVE, pmemdest, src, 0, len, flags);
}

EXPORT void *pmem_memcpy(void *pmemdest, const void *src, size_t len, unsigned flags) {
        return copy("pmem_memcpy", MEMCPY, pmemdest, src, 0, len, flags);
}

EXPORT void *pmem_memset(void *pmemdest, int c, size_t len, unsigned flags) {
        return copy("pmem_memset", MEMSET, pmemdest, NULL, c, len, flags);
}

EXPORT void *pmem_memmove_persist(void *pmemdest, const void *src, size_t len) {
        return copy("pmem_memmove_persist", MEMMOVE, pmemdest, src, 0, len, 0);
}

EXPORT void *pmem_memcpy_persist(void *pmemdest, const void *src, size_t len) {
        return copy("pmem_memcpy_persist", MEMCPY, pmemdest, src, 0, len, 0);
}

EXPORT void *pmem_memset_persist(void *pmemdest, int c, size_t len) {
        return copy("pmem_memset_persist", MEMSET, pmemdest, NULL, c, len, 0);
}

EXPORT void *pmem_memmove_nodrain(void *pmemdest, const void *src, size_t len) {
        return copy("pmem_memmove_nodrain", MEMMOVE, pmemdest, src, 0, len, F_NODRAIN);
}

EXPORT void *pmem_memcpy_nodrain(void *pmemdest, const void *src, size_t len) {
        return copy("pmem_memcpy_nodrain", MEMCPY, pmemdest, src, 0, len, F_NODRAIN);
}

EXPORT void *pmem_memset_nodrain(void *pmemdest, int c, size_t len) {
        return copy("pmem_memset_nodrain", MEMSET, pmemdest, NULL, c, len, F_NODRAIN);
}
