/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fabric atomics across processes, each with its own mapping of one FAM file (as separate
 * nodes would have).
 *
 *   1. Single-process semantics (wrap-around, returned old values, failed compare_store stores
 *      nothing, 128-bit halves order, the libfam-atomic example's spinlock steps, ticket wrap).
 *   2. Rejection: misaligned addresses die of SIGBUS, unregistered ones of SIGSEGV, each with
 *      one line on stderr, in a forked child; region registration and unregistration.
 *   3. Stress: P worker processes ($FAME_TEST_PROCS, default 4) each call fame_open() and run
 *      every operation $FAME_TEST_OPS times (default 1000000) on variables in book 0 of ig 0,
 *      one 128-byte line each.  Phases start together on a barrier made of FAM atomics.  The
 *      parent checks exact final values and conservation invariants computed from P and ops;
 *      the workers check every value an operation returns and count violations.
 *
 * Nothing here sleeps to synchronise: waiting is done with waitpid() and FAM atomics.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fam_atomic.h"
#include "fame.h"
#include "testlib.h"

#define DEFAULT_PROCS   4u
#define MAX_PROCS       32u             /* the bit-ownership phases give each worker >= 1 bit of 32 */
#define DEFAULT_OPS     UINT64_C(1000000)
#define LINE            128u            /* one variable per line: >= 64 bytes, 128 for 128-bit */
#define LINES_PER_PHASE 4u

/* Layout of book 0 of ig 0 (the book is 2 MiB). */
#define OFF_BARRIERS    0u                      /* one 32-bit counter per line */
#define OFF_VARS        (64u * LINE)            /* LINES_PER_PHASE lines per phase */
#define OFF_SCRATCH     (32u * 1024)            /* single-process checks */
#define OFF_RESULTS     (64u * 1024)            /* struct result[P], written by the workers */
#define BOOK_NEEDED     (128u * 1024)

#define MAX_REPORTS     5u                      /* violations printed per worker and phase */

/* ---- phases -------------------------------------------------------------------------- */

enum kind { K_FETCH_ADD, K_SWAP, K_CAS, K_CAS128, K_SWAP128, K_WRITE128, K_BITS, K_SPIN, K_TRYLOCK };

/* 32- and 64-bit operations behind one interface; values are zero-extended to 64 bits. */
struct width {
        unsigned bits;
        uint64_t mask;
        unsigned token_shift;           /* swap token = w << token_shift | (i & index mask) */
        uint64_t (*fetch_add)(void *a, uint64_t v);
        uint64_t (*swap)(void *a, uint64_t v);
        uint64_t (*compare_store)(void *a, uint64_t compare, uint64_t store);
        uint64_t (*read)(void *a);
        void (*write)(void *a, uint64_t v);
        uint64_t (*fetch_and)(void *a, uint64_t v);
        uint64_t (*fetch_or)(void *a, uint64_t v);
        uint64_t (*fetch_xor)(void *a, uint64_t v);
};

static uint64_t fa32(void *a, uint64_t v) { return (uint32_t) fam_atomic_32_fetch_add(a, (int32_t) v); }
static uint64_t sw32(void *a, uint64_t v) { return (uint32_t) fam_atomic_32_swap(a, (int32_t) v); }
static uint64_t cs32(void *a, uint64_t c, uint64_t s) { return (uint32_t) fam_atomic_32_compare_store(a, (int32_t) c, (int32_t) s); }
static uint64_t rd32(void *a) { return (uint32_t) fam_atomic_32_read(a); }
static void wr32(void *a, uint64_t v) { fam_atomic_32_write(a, (int32_t) v); }
static uint64_t and32(void *a, uint64_t v) { return (uint32_t) fam_atomic_32_fetch_and(a, (int32_t) v); }
static uint64_t or32(void *a, uint64_t v) { return (uint32_t) fam_atomic_32_fetch_or(a, (int32_t) v); }
static uint64_t xor32(void *a, uint64_t v) { return (uint32_t) fam_atomic_32_fetch_xor(a, (int32_t) v); }

static uint64_t fa64(void *a, uint64_t v) { return (uint64_t) fam_atomic_64_fetch_add(a, (int64_t) v); }
static uint64_t sw64(void *a, uint64_t v) { return (uint64_t) fam_atomic_64_swap(a, (int64_t) v); }
static uint64_t cs64(void *a, uint64_t c, uint64_t s) { return (uint64_t) fam_atomic_64_compare_store(a, (int64_t) c, (int64_t) s); }
static uint64_t rd64(void *a) { return (uint64_t) fam_atomic_64_read(a); }
static void wr64(void *a, uint64_t v) { fam_atomic_64_write(a, (int64_t) v); }
static uint64_t and64(void *a, uint64_t v) { return (uint64_t) fam_atomic_64_fetch_and(a, (int64_t) v); }
static uint64_t or64(void *a, uint64_t v) { return (uint64_t) fam_atomic_64_fetch_or(a, (int64_t) v); }
static uint64_t xor64(void *a, uint64_t v) { return (uint64_t) fam_atomic_64_fetch_xor(a, (int64_t) v); }

static const struct width W32 = { 32, UINT32_MAX, 24, fa32, sw32, cs32, rd32, wr32, and32, or32, xor32 };
static const struct width W64 = { 64, UINT64_MAX, 32, fa64, sw64, cs64, rd64, wr64, and64, or64, xor64 };

struct phase {
        const char *name;
        enum kind kind;
        const struct width *wd;         /* NULL for 128-bit and lock phases */
};

static const struct phase phases[] = {
        { "fetch_add32",  K_FETCH_ADD, &W32 },
        { "fetch_add64",  K_FETCH_ADD, &W64 },
        { "swap32",       K_SWAP,      &W32 },
        { "swap64",       K_SWAP,      &W64 },
        { "cas32",        K_CAS,       &W32 },
        { "cas64",        K_CAS,       &W64 },
        { "cas128",       K_CAS128,    NULL },
        { "swap128+read", K_SWAP128,   NULL },
        { "write128+read", K_WRITE128, NULL },
        { "and/or/xor32", K_BITS,      &W32 },
        { "and/or/xor64", K_BITS,      &W64 },
        { "spin_lock",    K_SPIN,      NULL },
        { "spin_trylock", K_TRYLOCK,   NULL },
};
#define N_PHASES (sizeof phases / sizeof phases[0])

/* What each worker reports, in FAM (plain stores; the parent reads them after waitpid()). */
struct result {
        uint64_t sum[N_PHASES];         /* of returned old values (mod 2^64) */
        uint64_t xor_[N_PHASES];
        uint64_t fails[N_PHASES];       /* failed compare_stores / trylocks (informational) */
        uint64_t special[N_PHASES];     /* swaps: how often the initial value came back */
        uint64_t violations[N_PHASES];
        uint64_t t_ns[N_PHASES + 1];    /* when barrier b released this worker */
        uint64_t arrived;               /* b + 1 once this worker added itself to barrier b */
        uint64_t finished;
};

struct ctx {
        uint8_t *book;
        unsigned w, P;
        uint64_t ops, N;                /* N = P * ops */
        struct result *res;
        unsigned reported[N_PHASES];
};

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void *var(uint8_t *book, unsigned ph, unsigned k) {
        return book + OFF_VARS + (ph * LINES_PER_PHASE + k) * LINE;
}

static struct result *result_of(uint8_t *book, unsigned w) {
        return (struct result *) (book + OFF_RESULTS) + w;
}

/* Counters start just below the signed maximum so that every run wraps through it. */
static uint64_t counter_start(const struct width *wd, uint64_t N) {
        return (wd->mask >> 1) - N / 2;
}
static uint64_t counter128_start(uint64_t N) {
        return (UINT64_MAX >> 1) - N / 2;
}
/* Initial values of the swap variables: not a token (the worker field is >= P). */
#define SWAP128_INIT    UINT64_MAX
#define WRITE128_INIT   (UINT64_MAX - 1)

static uint64_t token(unsigned shift, unsigned w, uint64_t i) {
        return (uint64_t) w << shift | (i & ((UINT64_C(1) << shift) - 1));
}

static bool valid_token(uint64_t v, unsigned shift, unsigned P, uint64_t ops) {
        uint64_t imask = (UINT64_C(1) << shift) - 1;
        return (v >> shift) < P && (ops > imask || (v & imask) < ops);
}

/* The last token worker w inserted: the final value of a swapped/written variable must be
 * one of these, since the globally last insertion is some worker's last. */
static bool last_token(uint64_t v, unsigned shift, unsigned P, uint64_t ops) {
        uint64_t imask = (UINT64_C(1) << shift) - 1;
        return (v >> shift) < P && (v & imask) == ((ops - 1) & imask);
}

/* Bit ownership: in every group of `stride` bits worker w owns bit stride-1-w (so worker 0
 * owns the sign bit); bits nobody owns are sentinels that stay set throughout. */
static unsigned bit_stride(unsigned P) {
        return P <= 8 ? 8 : P <= 16 ? 16 : 32;
}
static uint64_t owned_bits(unsigned bits, unsigned P, unsigned w) {
        unsigned stride = bit_stride(P);
        uint64_t m = 0;
        for (unsigned b = stride - 1 - w; b < bits; b += stride)
                m |= UINT64_C(1) << b;
        return m;
}
static uint64_t sentinel_bits(const struct width *wd, unsigned P) {
        uint64_t m = wd->mask;
        for (unsigned w = 0; w < P; w++)
                m &= ~owned_bits(wd->bits, P, w);
        return m;
}

static bool related(const int64_t v[2]) {
        return v[1] == ~v[0];
}

/* ---- workers --------------------------------------------------------------------------- */

static void __attribute__((format(printf, 4, 5)))
violation(struct ctx *c, unsigned ph, uint64_t i, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        c->res->violations[ph]++;
        if (c->reported[ph]++ >= MAX_REPORTS)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        /* One call, so that lines from different workers do not interleave. */
        fprintf(stderr, "worker %u: %s, op %" PRIu64 ": %s\n", c->w, phases[ph].name, i, msg);
}

static bool all_arrived(struct ctx *c, unsigned b) {
        for (unsigned j = 0; j < c->P; j++)
                if (__atomic_load_n(&result_of(c->book, j)->arrived, __ATOMIC_SEQ_CST) < b + 1)
                        return false;
        return true;
}

/* Everyone adds 1 to barrier b's counter and waits, polling with FAM atomics, until all P
 * have.  With more workers than cores, yield now and then so that the late ones get to run.
 * Each worker also raises its own flag after its fetch_add returned: all flags up while the
 * counter is short means an increment was lost (instead of a silent hang). */
static bool barrier(struct ctx *c, unsigned b) {
        int32_t *cnt = (int32_t *) (c->book + OFF_BARRIERS + b * LINE);
        int32_t seen;

        fam_atomic_32_fetch_add(cnt, 1);
        __atomic_store_n(&c->res->arrived, b + 1, __ATOMIC_SEQ_CST);
        for (unsigned spins = 1; (seen = fam_atomic_32_read(cnt)) < (int32_t) c->P; spins++) {
                if (spins % 64 != 0)
                        continue;
                sched_yield();
                if (all_arrived(c, b) && (seen = fam_atomic_32_read(cnt)) < (int32_t) c->P) {
                        fprintf(stderr, "worker %u: barrier %u: all %u workers added 1 but the counter is %" PRId32
                                ": fam_atomic_32_fetch_add lost an increment\n", c->w, b, c->P, seen);
                        return false;
                }
        }
        c->res->t_ns[b] = now_ns();
        return true;
}

static void run_fetch_add(struct ctx *c, unsigned ph, const struct width *wd) {
        void *a = var(c->book, ph, 0);
        uint64_t start = counter_start(wd, c->N), prev = 0, sum = 0, x = 0;

        for (uint64_t i = 0; i < c->ops; i++) {
                uint64_t old = wd->fetch_add(a, 1);
                uint64_t rel = (old - start) & wd->mask;        /* how many increments before ours */
                if (rel >= c->N || (i > 0 && rel <= prev))
                        violation(c, ph, i, "fetch_add returned %#" PRIx64 " (increment #%" PRIu64 ", previous #%" PRIu64 ")",
                                  old, rel, prev);
                prev = rel;
                sum += old;
                x ^= old;
        }
        c->res->sum[ph] = sum;
        c->res->xor_[ph] = x;
}

static void run_swap(struct ctx *c, unsigned ph, const struct width *wd) {
        void *a = var(c->book, ph, 0);
        uint64_t init = wd->mask, sum = 0, x = 0;

        for (uint64_t i = 0; i < c->ops; i++) {
                uint64_t old = wd->swap(a, token(wd->token_shift, c->w, i) & wd->mask);
                if (old == init)
                        c->res->special[ph]++;
                else if (!valid_token(old, wd->token_shift, c->P, c->ops))
                        violation(c, ph, i, "swap returned %#" PRIx64 ", which nobody stored", old);
                sum += old;
                x ^= old;
        }
        c->res->sum[ph] = sum;
        c->res->xor_[ph] = x;
}

static void run_cas(struct ctx *c, unsigned ph, const struct width *wd) {
        void *a = var(c->book, ph, 0);
        uint64_t start = counter_start(wd, c->N), prev = 0, sum = 0, x = 0, fails = 0;

        for (uint64_t i = 0; i < c->ops; i++) {
                uint64_t old = wd->read(a), ret;
                while ((ret = wd->compare_store(a, old, (old + 1) & wd->mask)) != old) {
                        fails++;
                        /* The counter only grows, so a failed compare_store saw a later value. */
                        if (((ret - start) & wd->mask) <= ((old - start) & wd->mask) || ((ret - start) & wd->mask) >= c->N)
                                violation(c, ph, i, "compare_store(%#" PRIx64 ") failed returning %#" PRIx64, old, ret);
                        old = ret;
                }
                uint64_t rel = (old - start) & wd->mask;
                if (rel >= c->N || (i > 0 && rel <= prev))
                        violation(c, ph, i, "compare_store succeeded on %#" PRIx64 " (increment #%" PRIu64 ", previous #%" PRIu64 ")",
                                  old, rel, prev);
                prev = rel;
                sum += old;
                x ^= old;
        }
        c->res->sum[ph] = sum;
        c->res->xor_[ph] = x;
        c->res->fails[ph] = fails;
}

static void run_cas128(struct ctx *c, unsigned ph) {
        int64_t *a = var(c->book, ph, 0);
        uint64_t start = counter128_start(c->N), prev = 0, sum = 0, x = 0, fails = 0;

        for (uint64_t i = 0; i < c->ops; i++) {
                int64_t cur[2], store[2], res[2];

                fam_atomic_128_read(a, cur);
                if (!related(cur))
                        violation(c, ph, i, "128-bit read tore: {%#" PRIx64 ", %#" PRIx64 "}", (uint64_t) cur[0], (uint64_t) cur[1]);
                for (;;) {
                        uint64_t next = (uint64_t) cur[0] + 1;
                        store[0] = (int64_t) next;
                        store[1] = (int64_t) ~next;
                        fam_atomic_128_compare_store(a, cur, store, res);
                        if (res[0] == cur[0] && res[1] == cur[1])
                                break;
                        fails++;
                        if (!related(res) || (uint64_t) res[0] - start <= (uint64_t) cur[0] - start ||
                            (uint64_t) res[0] - start >= c->N)
                                violation(c, ph, i, "compare_store({%#" PRIx64 ", %#" PRIx64 "}) failed returning {%#" PRIx64 ", %#" PRIx64 "}",
                                          (uint64_t) cur[0], (uint64_t) cur[1], (uint64_t) res[0], (uint64_t) res[1]);
                        cur[0] = res[0];
                        cur[1] = res[1];
                }
                uint64_t rel = (uint64_t) cur[0] - start;
                if (rel >= c->N || (i > 0 && rel <= prev))
                        violation(c, ph, i, "compare_store succeeded on %#" PRIx64 " (increment #%" PRIu64 ", previous #%" PRIu64 ")",
                                  (uint64_t) cur[0], rel, prev);
                prev = rel;
                sum += (uint64_t) cur[0];
                x ^= (uint64_t) cur[0];
        }
        c->res->sum[ph] = sum;
        c->res->xor_[ph] = x;
        c->res->fails[ph] = fails;
}

/* A 128-bit value seen in the swap/write phases: {t, ~t} for t a token or the initial value. */
static void check_seen128(struct ctx *c, unsigned ph, uint64_t i, const char *what, const int64_t v[2], uint64_t init) {
        if (!related(v) || ((uint64_t) v[0] != init && !valid_token((uint64_t) v[0], 32, c->P, c->ops)))
                violation(c, ph, i, "%s gave {%#" PRIx64 ", %#" PRIx64 "}, which nobody stored",
                          what, (uint64_t) v[0], (uint64_t) v[1]);
}

static void run_swap128(struct ctx *c, unsigned ph) {
        int64_t *a = var(c->book, ph, 0);
        uint64_t sum = 0, x = 0;

        for (uint64_t i = 0; i < c->ops; i++) {
                uint64_t t = token(32, c->w, i);
                int64_t val[2] = { (int64_t) t, (int64_t) ~t }, old[2], now[2];

                fam_atomic_128_swap(a, val, old);
                check_seen128(c, ph, i, "swap", old, SWAP128_INIT);
                if ((uint64_t) old[0] == SWAP128_INIT)
                        c->res->special[ph]++;
                sum += (uint64_t) old[0];
                x ^= (uint64_t) old[0];
                fam_atomic_128_read(a, now);
                check_seen128(c, ph, i, "read", now, SWAP128_INIT);
        }
        c->res->sum[ph] = sum;
        c->res->xor_[ph] = x;
}

static void run_write128(struct ctx *c, unsigned ph) {
        int64_t *a = var(c->book, ph, 0);

        for (uint64_t i = 0; i < c->ops; i++) {
                uint64_t t = token(32, c->w, i);
                int64_t val[2] = { (int64_t) t, (int64_t) ~t }, now[2];

                fam_atomic_128_write(a, val);
                fam_atomic_128_read(a, now);
                check_seen128(c, ph, i, "read", now, WRITE128_INIT);
        }
}

static void run_bits(struct ctx *c, unsigned ph, const struct width *wd) {
        void *a = var(c->book, ph, 0);
        uint64_t m = owned_bits(wd->bits, c->P, c->w), s = sentinel_bits(wd, c->P), old;

#define EXPECT(op, want) do {                                                              \
                if ((old & m) != (want) || (old & s) != s)                                  \
                        violation(c, ph, i, "%s(%#" PRIx64 ") returned %#" PRIx64 ": own bits %#" PRIx64 \
                                  " (expected %#" PRIx64 "), sentinels %#" PRIx64 " (expected %#" PRIx64 ")", \
                                  op, m, old, old & m, (uint64_t) (want), old & s, s);      \
        } while (0)

        for (uint64_t i = 0; i < c->ops; i++) {
                old = wd->fetch_or(a, m);
                EXPECT("fetch_or", 0);
                old = wd->fetch_and(a, ~m & wd->mask);
                EXPECT("fetch_and", m);
                old = wd->fetch_xor(a, m);
                EXPECT("fetch_xor", 0);
                old = wd->fetch_xor(a, m);
                EXPECT("fetch_xor", m);
        }
#undef EXPECT
}

/* Mutual exclusion: a plain (volatile, non-atomic) counter in FAM, and an "inside" marker
 * that nobody else may see or change while we hold the lock. */
static void run_lock(struct ctx *c, unsigned ph, bool try) {
        struct fam_spinlock *l = var(c->book, ph, 0);
        volatile int64_t *counter = var(c->book, ph, 1);
        volatile int64_t *inside = var(c->book, ph, 2);
        uint64_t fails = 0;

        for (uint64_t i = 0; i < c->ops; i++) {
                if (try) {
                        /* Spin on trylock; yield now and then, since the holder may be
                         * waiting for a CPU (more workers than cores). */
                        for (unsigned n = 1; !fam_spin_trylock(l); n++) {
                                fails++;
                                if (n % 16 != 0)
                                        continue;
                                /* Only trylock takes this lock, so tail - head is 0 or 1;
                                 * anything else will never become free again. */
                                uint64_t word = (uint64_t) fam_atomic_64_read(&l->head_tail);
                                uint32_t held = (uint32_t) (word >> 32) - (uint32_t) word;
                                if (held > 1) {
                                        violation(c, ph, i, "lock word %#" PRIx64 " (tail - head = %" PRIu32
                                                  "): corrupt, giving up on this phase", word, held);
                                        c->res->fails[ph] = fails;
                                        return;
                                }
                                sched_yield();
                        }
                } else
                        fam_spin_lock(l);
                int64_t other = *inside;
                if (other != 0)
                        violation(c, ph, i, "got the lock while worker %" PRId64 " was inside", other - 1);
                *inside = c->w + 1;
                *counter = *counter + 1;
                other = *inside;
                if (other != c->w + 1)
                        violation(c, ph, i, "worker %" PRId64 " entered while we held the lock", other - 1);
                *inside = 0;
                fam_spin_unlock(l);
        }
        c->res->fails[ph] = fails;
}

/* An idle thread.  Under QEMU's emulation (FAME_TEST_EMULATED_SMP=1: the aarch64 cross build's
 * unit tests), a single-threaded process is translated without real host atomics — like a
 * one-vCPU TCG node — so its atomics are not atomic against the other workers; a second thread
 * makes QEMU translate with real atomics, as maxcpus=2 does for nodes. */
static void *idle_thread(void *arg) {
        (void) arg;
        for (;;)
                pause();
        return NULL;
}

static void emulated_smp(void) {
        const char *e = getenv("FAME_TEST_EMULATED_SMP");
        pthread_t t;
        if (e && strcmp(e, "1") == 0 && pthread_create(&t, NULL, idle_thread, NULL) == 0)
                pthread_detach(t);
}

static int worker(const char *path, unsigned w, unsigned P, uint64_t ops, struct fame *inherited) {
        struct fame *fam = NULL;
        struct ctx c = { .w = w, .P = P, .ops = ops, .N = (uint64_t) P * ops };
        uint64_t violations = 0;
        int r;

        emulated_smp();

        r = fame_open(path, 0, &fam);
        if (r < 0) {
                fprintf(stderr, "worker %u: fame_open(%s): %s\n", w, path, strerror(-r));
                return 2;
        }
        /* Drop the parent's mapping (and its registration), which fork() copied: from here on
         * this process works only through the mapping it made itself. */
        fame_close(inherited);
        c.book = fame_book(fam, 0, 0);
        if (!c.book) {
                fprintf(stderr, "worker %u: no book 0 of ig 0\n", w);
                fame_close(fam);
                return 2;
        }
        c.res = result_of(c.book, w);

        for (unsigned ph = 0; ph < N_PHASES; ph++) {
                const struct phase *p = &phases[ph];

                if (!barrier(&c, ph)) {
                        fame_close(fam);
                        return 3;
                }
                switch (p->kind) {
                case K_FETCH_ADD: run_fetch_add(&c, ph, p->wd); break;
                case K_SWAP:      run_swap(&c, ph, p->wd); break;
                case K_CAS:       run_cas(&c, ph, p->wd); break;
                case K_CAS128:    run_cas128(&c, ph); break;
                case K_SWAP128:   run_swap128(&c, ph); break;
                case K_WRITE128:  run_write128(&c, ph); break;
                case K_BITS:      run_bits(&c, ph, p->wd); break;
                case K_SPIN:      run_lock(&c, ph, false); break;
                case K_TRYLOCK:   run_lock(&c, ph, true); break;
                }
        }
        if (!barrier(&c, N_PHASES)) {
                fame_close(fam);
                return 3;
        }

        for (unsigned ph = 0; ph < N_PHASES; ph++)
                violations += c.res->violations[ph];
        c.res->finished = 1;
        fame_close(fam);
        return violations ? 1 : 0;
}

/* ---- parent: set up, run, verify -------------------------------------------------------- */

static void init_vars(uint8_t *book, unsigned P, uint64_t N) {
        memset(book + OFF_RESULTS, 0, P * sizeof(struct result));
        for (unsigned b = 0; b <= N_PHASES; b++)
                fam_atomic_32_write((int32_t *) (book + OFF_BARRIERS + b * LINE), 0);
        for (unsigned ph = 0; ph < N_PHASES; ph++) {
                const struct phase *p = &phases[ph];
                void *a = var(book, ph, 0);
                uint64_t v = 0;
                int64_t v128[2];

                switch (p->kind) {
                case K_FETCH_ADD:
                case K_CAS:      p->wd->write(a, counter_start(p->wd, N)); break;
                case K_SWAP:     p->wd->write(a, p->wd->mask); break;
                case K_BITS:     p->wd->write(a, sentinel_bits(p->wd, P)); break;
                case K_CAS128:   v = counter128_start(N); break;
                case K_SWAP128:  v = SWAP128_INIT; break;
                case K_WRITE128: v = WRITE128_INIT; break;
                case K_SPIN:
                case K_TRYLOCK:
                        fam_atomic_64_write((int64_t *) a, -1);         /* init must reset it */
                        fam_spin_lock_init(a);
                        fam_atomic_64_write(var(book, ph, 1), 0);
                        fam_atomic_64_write(var(book, ph, 2), 0);
                        break;
                }
                if (p->kind == K_CAS128 || p->kind == K_SWAP128 || p->kind == K_WRITE128) {
                        v128[0] = (int64_t) v;
                        v128[1] = (int64_t) ~v;
                        fam_atomic_128_write(a, v128);
                }
        }
}

static double secs(uint64_t ns) {
        return (double) ns / 1e9;
}

/* Checks one phase's final value and the workers' reports; prints a line either way. */
static void verify_phase(uint8_t *book, unsigned ph, unsigned P, uint64_t ops) {
        const struct phase *p = &phases[ph];
        const struct width *wd = p->wd;
        uint64_t N = (uint64_t) P * ops;
        uint64_t sum = 0, x = 0, fails = 0, special = 0, viol = 0;
        uint64_t exp_sum = 0, exp_x = 0, final = 0, expected = 0;
        int64_t v128[2] = { 0, 0 };
        void *a = var(book, ph, 0);
        struct result *r0 = result_of(book, 0);
        char extra[160] = "";

        for (unsigned w = 0; w < P; w++) {
                struct result *r = result_of(book, w);
                sum += r->sum[ph];
                x ^= r->xor_[ph];
                fails += r->fails[ph];
                special += r->special[ph];
                viol += r->violations[ph];
        }
        CHECK(viol == 0, "%s: workers counted %" PRIu64 " violations", p->name, viol);

        switch (p->kind) {
        case K_FETCH_ADD:
        case K_CAS: {
                /* Every value start .. start+N-1 is returned exactly once. */
                uint64_t start = counter_start(wd, N);
                for (uint64_t k = 0; k < N; k++) {
                        exp_sum += (start + k) & wd->mask;
                        exp_x ^= (start + k) & wd->mask;
                }
                final = wd->read(a);
                expected = (start + N) & wd->mask;
                CHECK(final == expected, "%s: final %#" PRIx64 ", expected %#" PRIx64 " (start %#" PRIx64 " + %" PRIu64 ")",
                      p->name, final, expected, start, N);
                CHECK(sum == exp_sum && x == exp_x, "%s: returned values sum %#" PRIx64 " xor %#" PRIx64 ", expected %#" PRIx64 " and %#" PRIx64,
                      p->name, sum, x, exp_sum, exp_x);
                if (p->kind == K_CAS)
                        snprintf(extra, sizeof extra, "  (%" PRIu64 " failed compare_stores)", fails);
                break;
        }
        case K_SWAP:
        case K_SWAP128: {
                /* Conservation: what came back plus what is left = what went in plus the start. */
                unsigned shift = wd ? wd->token_shift : 32;
                uint64_t mask = wd ? wd->mask : UINT64_MAX;
                uint64_t init = wd ? wd->mask : SWAP128_INIT;
                for (unsigned w = 0; w < P; w++)
                        for (uint64_t i = 0; i < ops; i++) {
                                exp_sum += token(shift, w, i) & mask;
                                exp_x ^= token(shift, w, i) & mask;
                        }
                exp_sum += init;
                exp_x ^= init;
                if (wd)
                        final = wd->read(a);
                else {
                        fam_atomic_128_read(a, v128);
                        final = (uint64_t) v128[0];
                        CHECK(related(v128), "%s: final {%#" PRIx64 ", %#" PRIx64 "} is torn", p->name, (uint64_t) v128[0], (uint64_t) v128[1]);
                }
                expected = final;
                CHECK(last_token(final, shift, P, ops), "%s: final %#" PRIx64 " is not a worker's last token", p->name, final);
                CHECK(sum + final == exp_sum, "%s: sum(returned) + final = %#" PRIx64 ", sum(inserted) + initial = %#" PRIx64,
                      p->name, sum + final, exp_sum);
                CHECK((x ^ final) == exp_x, "%s: xor(returned) ^ final = %#" PRIx64 ", xor(inserted) ^ initial = %#" PRIx64,
                      p->name, x ^ final, exp_x);
                CHECK(special == 1, "%s: the initial value came back %" PRIu64 " times, expected once", p->name, special);
                snprintf(extra, sizeof extra, "  (sum %#" PRIx64 " xor %#" PRIx64 " conserved)", exp_sum, exp_x);
                break;
        }
        case K_CAS128: {
                uint64_t start = counter128_start(N);
                for (uint64_t k = 0; k < N; k++) {
                        exp_sum += start + k;
                        exp_x ^= start + k;
                }
                fam_atomic_128_read(a, v128);
                final = (uint64_t) v128[0];
                expected = start + N;
                CHECK(final == expected && (uint64_t) v128[1] == ~expected,
                      "%s: final {%#" PRIx64 ", %#" PRIx64 "}, expected {%#" PRIx64 ", %#" PRIx64 "}",
                      p->name, (uint64_t) v128[0], (uint64_t) v128[1], expected, ~expected);
                CHECK(sum == exp_sum && x == exp_x, "%s: returned values sum %#" PRIx64 " xor %#" PRIx64 ", expected %#" PRIx64 " and %#" PRIx64,
                      p->name, sum, x, exp_sum, exp_x);
                snprintf(extra, sizeof extra, "  (%" PRIu64 " failed compare_stores)", fails);
                break;
        }
        case K_WRITE128:
                fam_atomic_128_read(a, v128);
                final = expected = (uint64_t) v128[0];
                CHECK(related(v128) && last_token(final, 32, P, ops), "%s: final {%#" PRIx64 ", %#" PRIx64 "} is not a worker's last token",
                      p->name, (uint64_t) v128[0], (uint64_t) v128[1]);
                break;
        case K_BITS:
                final = wd->read(a);
                expected = sentinel_bits(wd, P);
                CHECK(final == expected, "%s: final %#" PRIx64 ", expected %#" PRIx64 " (sentinel bits only)", p->name, final, expected);
                break;
        case K_SPIN:
        case K_TRYLOCK: {
                struct fam_spinlock *l = a;
                uint64_t word = (uint64_t) fam_atomic_64_read(&l->head_tail);
                final = (uint64_t) fam_atomic_64_read(var(book, ph, 1));
                expected = N;
                CHECK(final == expected, "%s: counter %" PRIu64 ", expected %" PRIu64, p->name, final, expected);
                CHECK((uint32_t) word == (uint32_t) N && (uint32_t) (word >> 32) == (uint32_t) N,
                      "%s: lock word %#" PRIx64 ", expected head = tail = %#" PRIx32, p->name, word, (uint32_t) N);
                if (p->kind == K_TRYLOCK)
                        snprintf(extra, sizeof extra, "  (%" PRIu64 " failed trylocks)", fails);
                break;
        }
        }
        printf("  %-14s %8.3f s  final %#18" PRIx64 "  expected %#18" PRIx64 "%s%s\n",
               p->name, secs(r0->t_ns[ph + 1] - r0->t_ns[ph]), final, expected, extra,
               viol ? "  VIOLATIONS" : "");
}

static void describe_status(int st, char *buf, size_t len) {
        if (WIFEXITED(st))
                snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
        else if (WIFSIGNALED(st))
                snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
        else
                snprintf(buf, len, "status %#x", (unsigned) st);
}

/* Reaps all workers; at the first one that failed, kills the others (they would wait on a
 * barrier forever).  Returns true when all exited with 0. */
static bool wait_workers(pid_t *pids, unsigned P) {
        unsigned left = P;
        bool ok = true, killed = false;

        while (left > 0) {
                int st;
                char how[96];
                pid_t pid = waitpid(-1, &st, 0);
                unsigned w;

                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        CHECK(false, "waitpid: %s", strerror(errno));
                        return false;
                }
                for (w = 0; w < P && pids[w] != pid; w++)
                        ;
                if (w == P)
                        continue;
                pids[w] = 0;
                left--;
                if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                        continue;
                describe_status(st, how, sizeof how);
                if (killed && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
                        fprintf(stderr, "worker %u (pid %d) killed after another failed\n", w, (int) pid);
                        continue;
                }
                ok = false;
                CHECK(false, "worker %u (pid %d) %s", w, (int) pid, how);
                if (!killed) {
                        for (unsigned j = 0; j < P; j++)
                                if (pids[j] > 0)
                                        kill(pids[j], SIGKILL);
                        killed = true;
                }
        }
        return ok;
}

static void run_stress(const char *path, struct fame *fam, uint8_t *book, unsigned P, uint64_t ops) {
        pid_t pids[MAX_PROCS] = { 0 };
        uint64_t t0 = now_ns();
        bool all_finished = true;

        printf("stress: %u processes x %" PRIu64 " ops per operation, %ld CPUs online\n",
               P, ops, sysconf(_SC_NPROCESSORS_ONLN));
        init_vars(book, P, (uint64_t) P * ops);
        fflush(stdout);
        fflush(stderr);
        for (unsigned w = 0; w < P; w++) {
                pid_t pid = fork();
                if (pid < 0) {
                        CHECK(false, "fork: %s", strerror(errno));
                        for (unsigned j = 0; j < w; j++)
                                kill(pids[j], SIGKILL);
                        wait_workers(pids, w);
                        return;
                }
                if (pid == 0)
                        _exit(worker(path, w, P, ops, fam));
                pids[w] = pid;
        }
        wait_workers(pids, P);

        for (unsigned w = 0; w < P; w++)
                all_finished = all_finished && result_of(book, w)->finished == 1;
        if (!all_finished) {
                CHECK(false, "not every worker finished; final values not checked");
                return;
        }
        for (unsigned ph = 0; ph < N_PHASES; ph++)
                verify_phase(book, ph, P, ops);
        printf("stress: %.3f s in all\n", secs(now_ns() - t0));
}

/* ---- single-process semantics --------------------------------------------------------- */

static void check_basic(uint8_t *scratch) {
        int32_t *a32 = (int32_t *) scratch, *n32 = (int32_t *) (scratch + 4);
        int64_t *a64 = (int64_t *) (scratch + 64);

        /* 32 bits; a neighbour word must never change. */
        fam_atomic_32_write(n32, 0x5a5a5a5a);
        fam_atomic_32_write(a32, 0);
        CHECK(fam_atomic_32_fetch_add(a32, 12) == 0, "fetch_add returns the old value");
        CHECK(fam_atomic_32_read(a32) == 12, "read after fetch_add 12");
        fam_atomic_32_write(a32, INT32_MAX);
        int32_t old32 = fam_atomic_32_fetch_add(a32, 1);
        CHECK(old32 == INT32_MAX, "fetch_add(INT32_MAX, 1) returned %" PRId32, old32);
        CHECK(fam_atomic_32_read(a32) == INT32_MIN, "INT32_MAX + 1 wraps to INT32_MIN, got %" PRId32, fam_atomic_32_read(a32));
        old32 = fam_atomic_32_fetch_add(a32, -1);
        CHECK(old32 == INT32_MIN && fam_atomic_32_read(a32) == INT32_MAX, "INT32_MIN - 1 wraps back (old %" PRId32 ")", old32);
        fam_atomic_32_write(a32, -1);
        CHECK(fam_atomic_32_fetch_add(a32, 1) == -1 && fam_atomic_32_read(a32) == 0, "-1 + 1 = 0");
        CHECK(fam_atomic_32_swap(a32, 7) == 0 && fam_atomic_32_read(a32) == 7, "swap32 returns old, stores new");
        CHECK(fam_atomic_32_compare_store(a32, 8, 9) == 7 && fam_atomic_32_read(a32) == 7, "failed cas32 returns old, stores nothing");
        CHECK(fam_atomic_32_compare_store(a32, 7, -9) == 7 && fam_atomic_32_read(a32) == -9, "cas32 succeeds when old == compare");
        CHECK(fam_atomic_32_read(n32) == 0x5a5a5a5a, "32-bit operations left the next word alone");

        /* 64 bits: carries cross bit 31, signed wrap. */
        fam_atomic_64_write(a64, INT64_C(0xffffffff));
        CHECK(fam_atomic_64_fetch_add(a64, 1) == INT64_C(0xffffffff) && fam_atomic_64_read(a64) == INT64_C(0x100000000),
              "64-bit fetch_add carries into the high half");
        fam_atomic_64_write(a64, INT64_MAX);
        CHECK(fam_atomic_64_fetch_add(a64, 1) == INT64_MAX && fam_atomic_64_read(a64) == INT64_MIN, "INT64_MAX + 1 wraps to INT64_MIN");
        fam_atomic_64_write(a64, INT64_C(0x100000005));
        CHECK(fam_atomic_64_compare_store(a64, 5, 6) == INT64_C(0x100000005) && fam_atomic_64_read(a64) == INT64_C(0x100000005),
              "cas64 compares the high half too");
        CHECK(fam_atomic_64_compare_store(a64, INT64_C(0x100000005), -6) == INT64_C(0x100000005) && fam_atomic_64_read(a64) == -6,
              "cas64 succeeds when old == compare");
        CHECK(fam_atomic_64_swap(a64, INT64_MIN) == -6 && fam_atomic_64_read(a64) == INT64_MIN, "swap64");

        /* and/or/xor: the table of libfam-atomic's single-node test, for both widths. */
        for (int wide = 0; wide < 2; wide++) {
                const struct width *wd = wide ? &W64 : &W32;
                void *a = wide ? (void *) a64 : (void *) a32;
                static const struct { char op; uint64_t arg, old; } steps[] = {
                        { 'w', 0, 0 }, { '&', 0, 0 }, { '&', 1, 0 }, { 'w', 1, 0 }, { '&', 1, 1 }, { '&', 0, 1 },
                        { 's', 0, 0 }, { '|', 0, 0 }, { '|', 1, 0 }, { '|', 0, 1 }, { 's', 0, 1 },
                        { '^', 0, 0 }, { '^', 1, 0 }, { '^', 0, 1 }, { '^', 1, 1 }, { 's', 0, 0 },
                };
                for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
                        uint64_t got = 0;
                        switch (steps[k].op) {
                        case 'w': wd->write(a, steps[k].arg); continue;
                        case '&': got = wd->fetch_and(a, steps[k].arg); break;
                        case '|': got = wd->fetch_or(a, steps[k].arg); break;
                        case '^': got = wd->fetch_xor(a, steps[k].arg); break;
                        case 's': got = wd->swap(a, steps[k].arg); break;
                        }
                        CHECK(got == steps[k].old, "%u-bit step %zu: %c %" PRIu64 " returned %" PRIu64 ", expected %" PRIu64,
                              wd->bits, k, steps[k].op, steps[k].arg, got, steps[k].old);
                }
                /* The sign bit and all bits. */
                uint64_t top = UINT64_C(1) << (wd->bits - 1);
                wd->write(a, 0);
                CHECK(wd->fetch_or(a, top) == 0 && wd->fetch_xor(a, wd->mask) == top && wd->fetch_and(a, top - 1) == (wd->mask ^ top) &&
                      wd->read(a) == top - 1, "%u-bit and/or/xor on the sign bit", wd->bits);
        }
        CHECK(fam_atomic_32_read(n32) == 0x5a5a5a5a, "32-bit operations left the next word alone");
}

static bool same128(const int64_t a[2], int64_t x0, int64_t x1) {
        return a[0] == x0 && a[1] == x1;
}

static void check_128(uint8_t *scratch) {
        int64_t *a = (int64_t *) (scratch + 256);
        volatile int64_t *raw = a;
        int64_t v[2] = { INT64_C(0x1111111111111111), INT64_C(0x2222222222222222) }, r[2] = { 0, 0 };
        int64_t nv[2] = { 3, -4 }, cmp[2], st[2] = { 6, 7 };

        fam_atomic_128_write(a, v);
        CHECK(raw[0] == v[0] && raw[1] == v[1], "128-bit write: [0] at address, [1] at address + 8 (got %#" PRIx64 ", %#" PRIx64 ")",
              (uint64_t) raw[0], (uint64_t) raw[1]);
        fam_atomic_128_read(a, r);
        CHECK(same128(r, v[0], v[1]), "128-bit read");
        CHECK(raw[0] == v[0] && raw[1] == v[1], "128-bit read leaves the value alone");
        fam_atomic_128_swap(a, nv, r);
        CHECK(same128(r, v[0], v[1]) && raw[0] == 3 && raw[1] == -4, "128-bit swap returns old, stores new");
        CHECK(same128(nv, 3, -4), "128-bit swap leaves its value argument alone");

        cmp[0] = 3, cmp[1] = 5;         /* high half differs */
        fam_atomic_128_compare_store(a, cmp, st, r);
        CHECK(same128(r, 3, -4) && raw[0] == 3 && raw[1] == -4, "128-bit compare_store compares the high half");
        cmp[0] = 9, cmp[1] = -4;        /* low half differs */
        fam_atomic_128_compare_store(a, cmp, st, r);
        CHECK(same128(r, 3, -4) && raw[0] == 3 && raw[1] == -4, "128-bit compare_store compares the low half");
        cmp[0] = 3, cmp[1] = -4;
        fam_atomic_128_compare_store(a, cmp, st, r);
        CHECK(same128(r, 3, -4) && raw[0] == 6 && raw[1] == 7, "128-bit compare_store succeeds and returns compare");
        CHECK(same128(cmp, 3, -4) && same128(st, 6, 7), "128-bit compare_store leaves its arguments alone");
}

static uint64_t lock_word(struct fam_spinlock *l) {
        return (uint64_t) fam_atomic_64_read(&l->head_tail);
}

/* fam_spin_lock() on a lock that is not free would wait forever: check first. */
static bool lock_if_free(struct fam_spinlock *l, const char *when) {
        uint64_t word = lock_word(l);

        if ((uint32_t) word != (uint32_t) (word >> 32)) {
                CHECK(false, "%s: lock word %#" PRIx64 " is not free; not calling fam_spin_lock()", when, word);
                return false;
        }
        fam_spin_lock(l);
        return true;
}

static void check_spinlock(uint8_t *scratch) {
        struct fam_spinlock *l = (struct fam_spinlock *) (scratch + 512);

        /* The libfam-atomic example. */
        fam_atomic_64_write(&l->head_tail, INT64_C(0x0000000300000007));
        fam_spin_lock_init(l);
        CHECK(lock_word(l) == 0, "init clears the lock word");
        if (!lock_if_free(l, "after init"))
                return;
        CHECK(lock_word(l) == UINT64_C(1) << 32, "lock takes ticket 0, tail = 1 (word %#" PRIx64 ")", lock_word(l));
        CHECK(!fam_spin_trylock(l), "trylock on a held lock returns false");
        CHECK(lock_word(l) == UINT64_C(1) << 32, "a failed trylock changes nothing");
        fam_spin_unlock(l);
        CHECK(lock_word(l) == (UINT64_C(1) << 32 | 1), "unlock bumps head (word %#" PRIx64 ")", lock_word(l));
        CHECK(fam_atomic_32_read(&l->tickets.head) == 1 && fam_atomic_32_read(&l->tickets.tail) == 1, "head at offset 0, tail at 4");
        CHECK(fam_spin_trylock(l), "trylock on a free lock returns true");
        CHECK(!fam_spin_trylock(l), "second trylock returns false");
        fam_spin_unlock(l);
        CHECK(lock_word(l) == (UINT64_C(2) << 32 | 2), "unlocked: head == tail == 2 (word %#" PRIx64 ")", lock_word(l));

        /* Tickets wrap: head = tail = 0xffffffff; the carry out of the tail is lost. */
        fam_atomic_64_write(&l->head_tail, -1);
        CHECK(fam_spin_trylock(l), "trylock at the ticket wrap");
        CHECK(lock_word(l) == UINT32_MAX, "tail wrapped to 0, head unchanged (word %#" PRIx64 ")", lock_word(l));
        CHECK(!fam_spin_trylock(l), "held across the wrap");
        fam_spin_unlock(l);
        CHECK(lock_word(l) == 0, "unlock across the wrap (word %#" PRIx64 ")", lock_word(l));
        fam_atomic_64_write(&l->head_tail, -1);
        if (!lock_if_free(l, "at the ticket wrap"))     /* ticket 0xffffffff == head */
                return;
        CHECK(lock_word(l) == UINT32_MAX, "lock at the ticket wrap (word %#" PRIx64 ")", lock_word(l));
        fam_spin_unlock(l);
        CHECK(lock_word(l) == 0, "unlocked after the wrap");
}

/* ---- deaths ---------------------------------------------------------------------------- */

enum death_op { D_32_FETCH_ADD, D_64_FETCH_ADD, D_64_READ, D_128_READ, D_128_SWAP, D_128_COMPARE_STORE, D_128_WRITE, D_SPIN_LOCK };

static const char *const death_op_name[] = {
        [D_32_FETCH_ADD] = "fam_atomic_32_fetch_add",
        [D_64_FETCH_ADD] = "fam_atomic_64_fetch_add",
        [D_64_READ] = "fam_atomic_64_read",
        [D_128_READ] = "fam_atomic_128_read",
        [D_128_SWAP] = "fam_atomic_128_swap",
        [D_128_COMPARE_STORE] = "fam_atomic_128_compare_store",
        [D_128_WRITE] = "fam_atomic_128_write",
        [D_SPIN_LOCK] = "fam_spin_lock",
};

static void do_op(enum death_op op, void *addr) {
        int64_t v[2] = { 1, 2 }, c[2] = { 0, 0 }, r[2];

        switch (op) {
        case D_32_FETCH_ADD:      fam_atomic_32_fetch_add(addr, 1); break;
        case D_64_FETCH_ADD:      fam_atomic_64_fetch_add(addr, 1); break;
        case D_64_READ:           fam_atomic_64_read(addr); break;
        case D_128_READ:          fam_atomic_128_read(addr, r); break;
        case D_128_SWAP:          fam_atomic_128_swap(addr, v, r); break;
        case D_128_COMPARE_STORE: fam_atomic_128_compare_store(addr, c, v, r); break;
        case D_128_WRITE:         fam_atomic_128_write(addr, v); break;
        case D_SPIN_LOCK:         fam_spin_lock(addr); break;
        }
}

/* Runs op(addr) in a child with stderr on a pipe; it must die of `sig` after writing one line
 * that mentions `why`.  If the address is in FAM (shared), the bytes around it must not change. */
static void expect_death(const char *what, enum death_op op, void *addr, int sig, const char *why, bool shared) {
        uint8_t before[48], after[48];
        uint8_t *around = (uint8_t *) ((uintptr_t) addr & ~(uintptr_t) 15) - 16;
        char out[1024];
        size_t len = 0;
        int fds[2], st;
        pid_t pid;

        if (shared)
                memcpy(before, around, sizeof before);
        if (pipe(fds) < 0) {
                CHECK(false, "pipe: %s", strerror(errno));
                return;
        }
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                CHECK(false, "fork: %s", strerror(errno));
                close(fds[0]);
                close(fds[1]);
                return;
        }
        if (pid == 0) {
                close(fds[0]);
                dup2(fds[1], STDERR_FILENO);
                fame_set_log(NULL, NULL);               /* so that the fatal line goes to stderr */
                signal(SIGBUS, SIG_DFL);                /* sanitizers catch these otherwise */
                signal(SIGSEGV, SIG_DFL);
                signal(SIGALRM, SIG_DFL);
                alarm(20);                              /* e.g. fam_spin_lock() on garbage */
                do_op(op, addr);
                _exit(0);                               /* survived: the parent reports it */
        }
        close(fds[1]);
        for (;;) {
                ssize_t n = read(fds[0], out + len, sizeof out - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
                if (len == sizeof out - 1)
                        break;
        }
        out[len] = 0;
        close(fds[0]);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        /* Under QEMU's user-mode emulation (the aarch64 cross build's unit tests) the emulator
         * adds its own line about the signal: not ours to count. */
        char *emu = strstr(out, "qemu: uncaught target signal");
        if (emu && (emu == out || emu[-1] == '\n')) {
                *emu = 0;
                len = (size_t) (emu - out);
        }

        char how[96];
        describe_status(st, how, sizeof how);
        char *nl = strchr(out, '\n');
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == sig, "%s: %s(%p) %s, expected %s", what, death_op_name[op], addr, how, strsignal(sig));
        CHECK(len > 1 && nl == out + len - 1, "%s: expected one line on stderr, got \"%s\"", what, out);
        CHECK(strstr(out, why) != NULL, "%s: stderr \"%s\" does not mention \"%s\"", what, out, why);
        if (shared) {
                memcpy(after, around, sizeof after);
                CHECK(memcmp(before, after, sizeof before) == 0, "%s: the rejected operation changed memory", what);
        }
        if (nl)
                *nl = 0;
        printf("  %-44s %s: %s\n", what, how, out);
}

static void check_deaths(const char *path, uint8_t *book) {
        uint8_t *s = book + OFF_SCRATCH + 1024;         /* 16-byte aligned */
        static const enum death_op ops128[] = { D_128_READ, D_128_SWAP, D_128_COMPARE_STORE, D_128_WRITE };
        char what[96];

        printf("rejected addresses:\n");
        for (unsigned k = 0; k < 32; k++)
                s[k] = (uint8_t) (0xa0 + k);
        for (size_t k = 0; k < sizeof ops128 / sizeof ops128[0]; k++) {
                snprintf(what, sizeof what, "%s(FAM + 8)", death_op_name[ops128[k]]);
                expect_death(what, ops128[k], s + 8, SIGBUS, "align", true);
        }
        expect_death("fam_atomic_64_fetch_add(FAM + 4)", D_64_FETCH_ADD, s + 4, SIGBUS, "align", true);
        expect_death("fam_atomic_64_read(FAM + 4)", D_64_READ, s + 4, SIGBUS, "align", true);
        expect_death("fam_atomic_32_fetch_add(FAM + 2)", D_32_FETCH_ADD, s + 2, SIGBUS, "align", true);
        expect_death("fam_spin_lock(FAM + 4)", D_SPIN_LOCK, s + 4, SIGBUS, "align", true);

        /* Unregistered memory; then registered; then unregistered again. */
        uint8_t *buf = aligned_alloc(4096, 4096), *buf2 = aligned_alloc(4096, 4096);
        if (!buf || !buf2) {
                CHECK(false, "aligned_alloc failed");
                free(buf);
                free(buf2);
                return;
        }
        memset(buf, 0, 4096);
        memset(buf2, 0, 4096);
        expect_death("fam_atomic_32_fetch_add(malloc)", D_32_FETCH_ADD, buf, SIGSEGV, "regist", false);
        expect_death("fam_atomic_64_fetch_add(malloc)", D_64_FETCH_ADD, buf, SIGSEGV, "regist", false);
        expect_death("fam_atomic_128_read(malloc)", D_128_READ, buf, SIGSEGV, "regist", false);
        expect_death("fam_spin_lock(malloc)", D_SPIN_LOCK, buf, SIGSEGV, "regist", false);

        errno = 0;
        CHECK(fam_atomic_register_region(buf, 0, -1, 0) == -1 && errno == EINVAL, "registering an empty range: -1/EINVAL (errno %d)", errno);
        errno = 0;
        CHECK(fam_atomic_register_region((void *) (UINTPTR_MAX & ~(uintptr_t) 4095), 8192, -1, 0) == -1 && errno == EINVAL,
              "registering a wrapping range: -1/EINVAL (errno %d)", errno);
        expect_death("fam_atomic_64_read(malloc) after failed registration", D_64_READ, buf, SIGSEGV, "regist", false);

        CHECK(fam_atomic_register_region(buf, 4096, -1, 0) == 0, "registering a malloc'd buffer");
        int64_t *b64 = (int64_t *) (buf + 64), *b128 = (int64_t *) (buf + 4096 - 16);
        int64_t v[2] = { 5, 6 }, r[2] = { 0, 0 };
        fam_atomic_64_write(b64, 41);
        CHECK(fam_atomic_64_fetch_add(b64, 1) == 41 && fam_atomic_64_read(b64) == 42, "64-bit ops on a registered malloc'd buffer");
        fam_atomic_128_write(b128, v);
        fam_atomic_128_read(b128, r);
        CHECK(same128(r, 5, 6), "128-bit ops on the last 16 bytes of a registered buffer");
        fam_spin_lock((struct fam_spinlock *) (buf + 128));
        fam_spin_unlock((struct fam_spinlock *) (buf + 128));
        CHECK(lock_word((struct fam_spinlock *) (buf + 128)) == (UINT64_C(1) << 32 | 1), "spinlock on a registered buffer");

        /* The operand must fit in the region. */
        CHECK(fam_atomic_register_region(buf2, 4088, -1, 0) == 0, "registering 4088 bytes");
        fam_atomic_64_write((int64_t *) (buf2 + 4080), 7);
        CHECK(fam_atomic_64_read((int64_t *) (buf2 + 4080)) == 7, "64-bit op on the region's last 8 bytes");
        expect_death("fam_atomic_128_read(region end - 8)", D_128_READ, buf2 + 4080, SIGSEGV, "regist", false);
        expect_death("fam_atomic_64_read(region end)", D_64_READ, buf2 + 4088, SIGSEGV, "regist", false);

        fam_atomic_unregister_region(buf, 4096);
        expect_death("fam_atomic_64_read(malloc) after unregister", D_64_READ, b64, SIGSEGV, "regist", false);
        expect_death("fam_atomic_128_read(malloc) after unregister", D_128_READ, b128, SIGSEGV, "regist", false);
        CHECK(fam_atomic_64_read((int64_t *) (buf2 + 8)) == 0, "the other buffer stays registered");
        fam_atomic_unregister_region(buf2 + 256, 0);    /* any address inside; length ignored */
        expect_death("fam_atomic_64_read(buf2) after unregister(inside)", D_64_READ, buf2, SIGSEGV, "regist", false);
        free(buf);
        free(buf2);

        /* The FAM mapping is still registered; a FAME_OPEN_NOREGISTER mapping is not. */
        CHECK(fam_atomic_64_fetch_add((int64_t *) s, 0) == fam_atomic_64_read((int64_t *) s), "FAM still registered");
        struct fame *unreg = NULL;
        int rr = fame_open(path, FAME_OPEN_NOREGISTER, &unreg);
        CHECK(rr >= 0, "fame_open(NOREGISTER): %s", strerror(-rr));
        if (rr >= 0) {
                uint8_t *ub = fame_book(unreg, 0, 0);
                expect_death("fam_atomic_64_read(NOREGISTER mapping)", D_64_READ, ub + OFF_SCRATCH, SIGSEGV, "regist", false);
                fame_close(unreg);
        }
}

/* ---- main ------------------------------------------------------------------------------ */

static void watchdog(int sig) {
        static const char msg[] = "watchdog: the single-process checks took more than 60 s (a lock that never became free?)\n";
        ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void) n;
        (void) sig;
        _exit(1);
}

static uint64_t env_number(const char *name, uint64_t def, uint64_t min, uint64_t max) {
        const char *s = getenv(name);
        char *end = NULL;
        unsigned long long v;

        if (!s || !*s)
                return def;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || v < min || v > max) {
                fprintf(stderr, "%s='%s' is not a number from %" PRIu64 " to %" PRIu64 "\n", name, s, min, max);
                exit(1);
        }
        return v;
}

int main(void) {
        struct fame_create_params params = {
                .total_size = UINT64_C(64) << 20,
                .book_size = UINT64_C(2) << 20,
                .node_count = 1,
                .created = -1,
        };
        struct fame_geometry geo;
        struct fame *fam = NULL;
        char path[4096];
        unsigned P;
        uint64_t ops;
        int r;

        test_capture_log();
        P = (unsigned) env_number("FAME_TEST_PROCS", DEFAULT_PROCS, 1, MAX_PROCS);
        /* P * ops < 2^31 keeps the 32-bit counters' relative positions unambiguous. */
        ops = env_number("FAME_TEST_OPS", DEFAULT_OPS, 1, (UINT64_C(1) << 31) / P - 1);
        setvbuf(stdout, NULL, _IOLBF, 0);

        snprintf(path, sizeof path, "%s/fam", test_tmpdir());
        r = fame_file_create(path, &params, 0, &geo);
        CHECK(r >= 0, "fame_file_create(%s): %s (%s)", path, strerror(-r), test_last_log());
        if (r < 0)
                return test_exit();
        r = fame_open(path, 0, &fam);
        CHECK(r >= 0, "fame_open(%s): %s (%s)", path, strerror(-r), test_last_log());
        if (r < 0)
                return test_exit();
        uint8_t *book = fame_book(fam, 0, 0);
        CHECK(book && ((uintptr_t) book & 4095) == 0, "book 0 of ig 0 at %p", (void *) book);
        CHECK(fame_get_geometry(fam)->book_size >= BOOK_NEEDED, "book size %" PRIu64, fame_get_geometry(fam)->book_size);
        if (test_failures) {
                fame_close(fam);
                return test_exit();
        }
        printf("FAM %s: %" PRIu64 " MiB, book 0 of ig 0 at offset %#" PRIx64 "\n", path, fame_size(fam) >> 20,
               (uint64_t) (book - (uint8_t *) fame_base(fam)));

        /* A broken lock could still hang here; the watchdog turns that into a failure. */
        signal(SIGALRM, watchdog);
        alarm(60);
        check_basic(book + OFF_SCRATCH);
        check_128(book + OFF_SCRATCH);
        check_spinlock(book + OFF_SCRATCH);
        alarm(0);
        printf("single-process semantics: %s\n", test_failures ? "FAILED" : "ok");

        check_deaths(path, book);

        run_stress(path, fam, book, P, ops);

        fame_close(fam);
        return test_exit();
}
