/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fabric atomics with the libfam-atomic 2.x API (docs/fam-atomics.md).
 *
 * In FAM/E every node maps the same host pages (IVSHMEM BAR2 or the backing file), so a
 * locked CPU instruction on the mapping is atomic across nodes — provided each QEMU runs
 * guest atomics as host atomics (multi-threaded TCG or KVM; see docs/fam-atomics.md).
 *
 * Regions: a sorted array published through an atomic pointer.  Lookups take no lock;
 * register/unregister copy the array under a mutex.  Replaced arrays are kept on a list
 * (never freed) because a concurrent lookup may still read them; registrations are rare, so
 * this costs a few bytes per call.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "fam_atomic.h"
#include "fame-internal.h"

struct region {
        uintptr_t start, end;   /* [start, end) */
        int fd;
        int64_t offset;
};

struct region_table {
        struct region_table *retired_next;
        size_t n;
        struct region r[];
};

static struct region_table *table;             /* current, read with acquire */
static struct region_table *retired;           /* old tables, kept reachable */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static void publish(struct region_table *t) {
        struct region_table *old = __atomic_exchange_n(&table, t, __ATOMIC_ACQ_REL);
        if (old) {
                old->retired_next = retired;
                retired = old;
        }
}

_public_ int fam_atomic_register_region(void *region_start, size_t region_length, int fd, off_t offset) {
        uintptr_t start = (uintptr_t) region_start;
        struct region_table *cur, *t;
        size_t i;

        if (!region_start || region_length == 0 || start + region_length < start) {
                errno = EINVAL;
                return -1;
        }
        pthread_mutex_lock(&table_lock);
        cur = table;
        t = malloc(sizeof *t + ((cur ? cur->n : 0) + 1) * sizeof(struct region));
        if (!t) {
                pthread_mutex_unlock(&table_lock);
                errno = ENOMEM;
                return -1;
        }
        t->retired_next = NULL;
        t->n = 0;
        for (i = 0; cur && i < cur->n; i++)
                t->r[t->n++] = cur->r[i];
        t->r[t->n++] = (struct region) { start, start + region_length, fd, (int64_t) offset };
        /* keep sorted by start (insertion sort of the one new element) */
        for (i = t->n - 1; i > 0 && t->r[i - 1].start > t->r[i].start; i--) {
                struct region tmp = t->r[i];
                t->r[i] = t->r[i - 1];
                t->r[i - 1] = tmp;
        }
        publish(t);
        pthread_mutex_unlock(&table_lock);
        return 0;
}

/* The region containing [p, p+len), or NULL. Overlapping registrations: the latest start wins. */
static const struct region *lookup(uintptr_t p, size_t len) {
        const struct region_table *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
        size_t lo = 0, hi;

        if (!t)
                return NULL;
        hi = t->n;
        while (lo < hi) {                       /* first region with start > p */
                size_t mid = (lo + hi) / 2;
                if (t->r[mid].start <= p)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = lo; i > 0; i--) {
                const struct region *r = &t->r[i - 1];
                if (p < r->end)
                        return p + len <= r->end ? r : NULL;
        }
        return NULL;
}

_public_ void fam_atomic_unregister_region(void *region_start, size_t region_length) {
        uintptr_t p = (uintptr_t) region_start;
        struct region_table *cur, *t;

        (void) region_length;
        pthread_mutex_lock(&table_lock);
        cur = table;
        const struct region *hit = lookup(p, 1);
        if (!cur || !hit) {
                pthread_mutex_unlock(&table_lock);
                return;
        }
        t = malloc(sizeof *t + cur->n * sizeof(struct region));
        if (!t) {
                /* Cannot copy: leave the region registered rather than corrupt the table. */
                pthread_mutex_unlock(&table_lock);
                return;
        }
        t->retired_next = NULL;
        t->n = 0;
        for (size_t i = 0; i < cur->n; i++)
                if (&cur->r[i] != hit)
                        t->r[t->n++] = cur->r[i];
        publish(t);
        pthread_mutex_unlock(&table_lock);
}

/* ---- checks ------------------------------------------------------------------------- */

static void __attribute__((noinline, cold)) die_unregistered(const char *op, const void *p, size_t len) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "fam atomic variable used without being registered: %s(%p) (%zu bytes) is not inside a region passed to fam_atomic_register_region()",
                 op, p, len);
        fame_log_fatal(msg);
        raise(SIGSEGV);
}

static void __attribute__((noinline, cold)) die_misaligned(const char *op, const void *p, size_t len) {
        char msg[256];
        snprintf(msg, sizeof msg, "fam atomic variable misaligned: %s(%p) needs %zu-byte alignment", op, p, len);
        fame_log_fatal(msg);
        raise(SIGBUS);
}

/* Per-thread cache of the last region hit.  Valid while the table it came from is current:
 * tables are never freed, so a table address is never reused for another table. */
static __thread const struct region_table *cache_table;
static __thread uintptr_t cache_start, cache_end;

static void __attribute__((noinline)) check_slow(const char *op, const void *p, size_t len) {
        const struct region_table *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
        const struct region *r = lookup((uintptr_t) p, len);

        if (!r)
                die_unregistered(op, p, len);
        /* Only cache when the table did not change under the lookup. */
        if (t == __atomic_load_n(&table, __ATOMIC_ACQUIRE)) {
                cache_table = t;
                cache_start = r->start;
                cache_end = r->end;
        }
}

static inline void check(const char *op, const void *p, size_t len) {
        uintptr_t a = (uintptr_t) p;

        if (_unlikely_(a & (len - 1)))
                die_misaligned(op, p, len);
        if (_likely_(cache_table == __atomic_load_n(&table, __ATOMIC_ACQUIRE) && cache_table &&
                     a >= cache_start && a + len <= cache_end))
                return;
        check_slow(op, p, len);
}

#define CHECK(p, len) check(__func__, (p), (len))

/* ---- 32 and 64 bits ----------------------------------------------------------------- */

#define SEQ __ATOMIC_SEQ_CST

_public_ int32_t fam_atomic_32_fetch_add(int32_t *a, int32_t v) { CHECK(a, 4); return (int32_t) __atomic_fetch_add((uint32_t *) a, (uint32_t) v, SEQ); }
_public_ int64_t fam_atomic_64_fetch_add(int64_t *a, int64_t v) { CHECK(a, 8); return (int64_t) __atomic_fetch_add((uint64_t *) a, (uint64_t) v, SEQ); }
_public_ int32_t fam_atomic_32_swap(int32_t *a, int32_t v) { CHECK(a, 4); return __atomic_exchange_n(a, v, SEQ); }
_public_ int64_t fam_atomic_64_swap(int64_t *a, int64_t v) { CHECK(a, 8); return __atomic_exchange_n(a, v, SEQ); }

_public_ int32_t fam_atomic_32_compare_store(int32_t *a, int32_t compare, int32_t store) {
        CHECK(a, 4);
        __atomic_compare_exchange_n(a, &compare, store, false, SEQ, SEQ);
        return compare;         /* the old value, whether or not the store happened */
}

_public_ int64_t fam_atomic_64_compare_store(int64_t *a, int64_t compare, int64_t store) {
        CHECK(a, 8);
        __atomic_compare_exchange_n(a, &compare, store, false, SEQ, SEQ);
        return compare;
}

/* A read is a locked read-modify-write, as in libfam-atomic (a fetch_add of 0). */
_public_ int32_t fam_atomic_32_read(int32_t *a) { CHECK(a, 4); return __atomic_fetch_add(a, 0, SEQ); }
_public_ int64_t fam_atomic_64_read(int64_t *a) { CHECK(a, 8); return __atomic_fetch_add(a, 0, SEQ); }
_public_ void fam_atomic_32_write(int32_t *a, int32_t v) { CHECK(a, 4); (void) __atomic_exchange_n(a, v, SEQ); }
_public_ void fam_atomic_64_write(int64_t *a, int64_t v) { CHECK(a, 8); (void) __atomic_exchange_n(a, v, SEQ); }

/* and/or/xor that return the old value: a compare-and-swap loop whose first value comes from
 * an atomic read, not the plain load compilers start such loops with on x86 (a plain access to
 * an atomic word, which the coherence checker reports). */
enum { OP_AND, OP_OR, OP_XOR };
#define DEFINE_FETCH_OP(bits)                                                                   \
        static inline int##bits##_t fetch_op##bits(int##bits##_t *a, int##bits##_t v, int op) {  \
                int##bits##_t old = __atomic_fetch_add(a, 0, SEQ), want;                        \
                do                                                                              \
                        want = op == OP_AND ? (old & v) : op == OP_OR ? (old | v) : (old ^ v);   \
                while (!__atomic_compare_exchange_n(a, &old, want, false, SEQ, SEQ));           \
                return old;                                                                     \
        }
DEFINE_FETCH_OP(32)
DEFINE_FETCH_OP(64)

_public_ int32_t fam_atomic_32_fetch_and(int32_t *a, int32_t v) { CHECK(a, 4); return fetch_op32(a, v, OP_AND); }
_public_ int64_t fam_atomic_64_fetch_and(int64_t *a, int64_t v) { CHECK(a, 8); return fetch_op64(a, v, OP_AND); }
_public_ int32_t fam_atomic_32_fetch_or(int32_t *a, int32_t v) { CHECK(a, 4); return fetch_op32(a, v, OP_OR); }
_public_ int64_t fam_atomic_64_fetch_or(int64_t *a, int64_t v) { CHECK(a, 8); return fetch_op64(a, v, OP_OR); }
_public_ int32_t fam_atomic_32_fetch_xor(int32_t *a, int32_t v) { CHECK(a, 4); return fetch_op32(a, v, OP_XOR); }
_public_ int64_t fam_atomic_64_fetch_xor(int64_t *a, int64_t v) { CHECK(a, 8); return fetch_op64(a, v, OP_XOR); }

/* ---- 128 bits: [0] is the 8 bytes at address, [1] the 8 bytes at address + 8 ------------- */

typedef unsigned __int128 u128;

static inline u128 pack(const int64_t v[2]) {
        return (u128) (uint64_t) v[0] | (u128) (uint64_t) v[1] << 64;
}

static inline void unpack(u128 x, int64_t v[2]) {
        v[0] = (int64_t) (uint64_t) x;
        v[1] = (int64_t) (uint64_t) (x >> 64);
}

/* One 16-byte compare-and-swap; returns the value that was in memory — untorn, also when the
 * comparison fails, since load128() relies on it. */
#if defined(__aarch64__)
/* aarch64: CASPAL where the CPU has LSE (ARMv8.1), else an LDAXP/STLXP loop.  A failed
 * comparison stores the pair it read back: LDXP alone is single-copy atomic only when a store
 * exclusive of the pair succeeds (GCC 12's outline __aarch64_cas16 skips that, and then
 * returns torn values under contention — seen under QEMU with a Cortex-A57). */
static bool have_lse(void) {
        static int lse = -1;
        if (lse < 0)
                lse = (getauxval(AT_HWCAP) & HWCAP_ATOMICS) != 0;
        return lse;
}

static inline u128 cas128(u128 *p, u128 expected, u128 desired) {
        uint64_t elo = (uint64_t) expected, ehi = (uint64_t) (expected >> 64);
        uint64_t dlo = (uint64_t) desired, dhi = (uint64_t) (desired >> 64);
        if (have_lse()) {
                register uint64_t x0 __asm__("x0") = elo, x1 __asm__("x1") = ehi;
                register uint64_t x2 __asm__("x2") = dlo, x3 __asm__("x3") = dhi;
                __asm__ volatile(".arch_extension lse\n\tcaspal x0, x1, x2, x3, [%[p]]"
                                 : "+r"(x0), "+r"(x1)
                                 : "r"(x2), "r"(x3), [p] "r"(p)
                                 : "memory");
                return (u128) x0 | (u128) x1 << 64;
        }
        uint64_t lo, hi;
        uint32_t failed;
        __asm__ volatile("1:     ldaxp   %[lo], %[hi], [%[p]]\n"
                         "       cmp     %[lo], %[elo]\n"
                         "       ccmp    %[hi], %[ehi], #0, eq\n"
                         "       b.ne    2f\n"
                         "       stlxp   %w[failed], %[dlo], %[dhi], [%[p]]\n"
                         "       cbnz    %w[failed], 1b\n"
                         "       b       3f\n"
                         "2:     stlxp   %w[failed], %[lo], %[hi], [%[p]]\n"
                         "       cbnz    %w[failed], 1b\n"
                         "3:\n"
                         : [lo] "=&r"(lo), [hi] "=&r"(hi), [failed] "=&r"(failed)
                         : [p] "r"(p), [elo] "r"(elo), [ehi] "r"(ehi), [dlo] "r"(dlo), [dhi] "r"(dhi)
                         : "cc", "memory");
        return (u128) lo | (u128) hi << 64;
}
#else
/* x86_64: lock cmpxchg16b (-mcx16), atomic also when the comparison fails. */
static inline u128 cas128(u128 *p, u128 expected, u128 desired) {
        return __sync_val_compare_and_swap(p, expected, desired);
}
#endif

/* Every access to a fabric atomic's bytes is itself atomic, never a plain load: on The Machine
 * a plain load reads the node's cache, which fabric atomics bypass (docs/check.md). */
static inline u128 load128(u128 *p) {
        return cas128(p, 0, 0);         /* stores 0 over 0 only: the value never changes */
}

static inline u128 swap128(u128 *p, u128 v) {
        u128 old = load128(p), seen;

        while ((seen = cas128(p, old, v)) != old)
                old = seen;
        return old;
}

_public_ void fam_atomic_128_swap(int64_t *a, int64_t value[2], int64_t result[2]) {
        CHECK(a, 16);
        unpack(swap128((u128 *) a, pack(value)), result);
}

_public_ void fam_atomic_128_compare_store(int64_t *a, int64_t compare[2], int64_t store[2], int64_t result[2]) {
        CHECK(a, 16);
        unpack(cas128((u128 *) a, pack(compare), pack(store)), result);
}

_public_ void fam_atomic_128_read(int64_t *a, int64_t result[2]) {
        CHECK(a, 16);
        unpack(load128((u128 *) a), result);
}

_public_ void fam_atomic_128_write(int64_t *a, int64_t value[2]) {
        CHECK(a, 16);
        (void) swap128((u128 *) a, pack(value));
}

/* ---- ticket spinlock: head = low 32 bits (offset 0), tail = high 32 bits ---------------- */

_public_ void fam_spin_lock_init(struct fam_spinlock *lock) {
        CHECK((const void *) lock, 8);
        (void) __atomic_exchange_n(&lock->head_tail, 0, SEQ);
}

_public_ void fam_spin_lock(struct fam_spinlock *lock) {
        CHECK((const void *) lock, 8);
        uint64_t old = __atomic_fetch_add((uint64_t *) &lock->head_tail, UINT64_C(1) << 32, SEQ);
        int32_t ticket = (int32_t) (old >> 32);
        int32_t head = (int32_t) old;

        /* Waiters poll with locked reads (as on the fabric, where plain loads are not coherent
         * with atomics), pause, and yield the CPU after a while: with more nodes than host
         * cores, the holder of the next ticket may not be running. */
        for (unsigned spins = 0; head != ticket; spins++) {
                if (spins < 128)
                        cpu_relax();
                else
                        sched_yield();
                head = __atomic_fetch_add(&lock->tickets.head, 0, SEQ);
        }
        __atomic_thread_fence(SEQ);
}

_public_ bool fam_spin_trylock(struct fam_spinlock *lock) {
        CHECK((const void *) lock, 8);
        uint64_t old = __atomic_fetch_add((uint64_t *) &lock->head_tail, 0, SEQ);
        if ((uint32_t) old != (uint32_t) (old >> 32))
                return false;
        uint64_t want = old + (UINT64_C(1) << 32);
        bool ok = __atomic_compare_exchange_n((uint64_t *) &lock->head_tail, &old, want, false, SEQ, SEQ);
        __atomic_thread_fence(SEQ);
        return ok;
}

_public_ void fam_spin_unlock(struct fam_spinlock *lock) {
        CHECK((const void *) lock, 8);
        (void) __atomic_fetch_add(&lock->tickets.head, 1, SEQ);
        __atomic_thread_fence(SEQ);
}
