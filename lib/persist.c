/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ordering and persistence: write back / invalidate cache lines covering FAM, and fences. */
#include <stdint.h>

#include "fame-internal.h"

#if defined(__x86_64__)
#include <cpuid.h>

enum { M_UNKNOWN, M_CLWB, M_CLFLUSHOPT, M_CLFLUSH };

static int method;              /* M_*, detected once; published after the fields below */
static bool have_clflushopt;
static unsigned line = 64;

static int detect(void) {
        int m = __atomic_load_n(&method, __ATOMIC_ACQUIRE);
        unsigned a, b, c, d;

        if (m != M_UNKNOWN)
                return m;
        m = M_CLFLUSH;          /* every x86_64 CPU has clflush */
        if (__get_cpuid(1, &a, &b, &c, &d) && ((b >> 8) & 0xff))
                line = ((b >> 8) & 0xff) * 8;       /* racing threads store the same values */
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
                have_clflushopt = b & (1u << 23);
                if (b & (1u << 24))
                        m = M_CLWB;
                else if (have_clflushopt)
                        m = M_CLFLUSHOPT;
        }
        __atomic_store_n(&method, m, __ATOMIC_RELEASE);
        return m;
}

static void flush_lines(const void *addr, size_t len, bool keep) {
        int m = detect();
        uintptr_t p = (uintptr_t) addr & ~(uintptr_t) (line - 1);
        uintptr_t end = (uintptr_t) addr + len;

        if (m == M_CLWB && !keep)       /* clwb may keep the line: not an invalidation */
                m = have_clflushopt ? M_CLFLUSHOPT : M_CLFLUSH;
        for (; p < end; p += line) {
                /* each flush is followed by a load of the same byte: FAM/E's coherence checker
                 * (docs/check.md) learns the flushed line from it, since QEMU's plugins cannot
                 * see a flush's address */
                switch (m) {
                case M_CLWB:
                        __asm__ __volatile__("clwb %0\n\tmovb %0, %%al" : "+m"(*(volatile char *) p) : : "rax");
                        break;
                case M_CLFLUSHOPT:
                        __asm__ __volatile__("clflushopt %0\n\tmovb %0, %%al" : "+m"(*(volatile char *) p) : : "rax");
                        break;
                default:
                        __asm__ __volatile__("clflush %0\n\tmovb %0, %%al" : "+m"(*(volatile char *) p) : : "rax");
                        break;
                }
        }
}

_public_ void fame_persist(const void *addr, size_t len) {
        __asm__ __volatile__("sfence" ::: "memory");
        flush_lines(addr, len, true);
        __asm__ __volatile__("sfence" ::: "memory");
}

_public_ void fame_invalidate(const void *addr, size_t len) {
        __asm__ __volatile__("mfence" ::: "memory");
        flush_lines(addr, len, false);
        __asm__ __volatile__("mfence" ::: "memory");
}

_public_ const char *fame_persist_method(void) {
        switch (detect()) {
        case M_CLWB: return "clwb";
        case M_CLFLUSHOPT: return "clflushopt";
        default: return "clflush";
        }
}

#elif defined(__aarch64__)

static size_t dline(void) {
        uint64_t ctr;
        __asm__ __volatile__("mrs %0, ctr_el0" : "=r"(ctr));
        return (size_t) 4 << ((ctr >> 16) & 0xf);
}

static void dc_range(const void *addr, size_t len, bool invalidate) {
        size_t line = dline();
        uintptr_t p = (uintptr_t) addr & ~(uintptr_t) (line - 1);
        uintptr_t end = (uintptr_t) addr + len;

        __asm__ __volatile__("dsb ish" ::: "memory");
        for (; p < end; p += line) {
                uint32_t tmp;   /* the load after each flush: see flush_lines() of x86_64 above */
                if (invalidate)
                        __asm__ __volatile__("dc civac, %1\n\tldrb %w0, [%1]" : "=r"(tmp) : "r"(p) : "memory");
                else
                        __asm__ __volatile__("dc cvac, %1\n\tldrb %w0, [%1]" : "=r"(tmp) : "r"(p) : "memory");
        }
        __asm__ __volatile__("dsb ish" ::: "memory");
}

_public_ void fame_persist(const void *addr, size_t len) { dc_range(addr, len, false); }
_public_ void fame_invalidate(const void *addr, size_t len) { dc_range(addr, len, true); }
_public_ const char *fame_persist_method(void) { return "dc cvac"; }

#else
#error "FAM/E supports x86_64 and aarch64"
#endif

_public_ void fame_fence(void) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
