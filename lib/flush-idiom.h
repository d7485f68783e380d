/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The flush idiom, in one place: each cache-line flush FAM/E issues is followed at once by a
 * one-byte load of the same address.  QEMU's plugins cannot see the address of a flush
 * (clflush, clflushopt, clwb and dc are no-ops under TCG, with no memory callback), so the
 * coherence checker (src/check/plugin.c, docs/check.md) takes the load that follows a flush as
 * the line it flushed; a flush without that load is "a flush the checker cannot see".
 *
 * Header-only (static inline) because two libraries use it that must not link each other:
 * libfame (persist.c: fame_persist, fame_invalidate) and the preloaded libfame-pmem.so
 * (pmem-shim.c), which depends on nothing but the C library.
 */
#ifndef FAME_FLUSH_IDIOM_H
#define FAME_FLUSH_IDIOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <cpuid.h>

enum { FLUSH_IDIOM_CLWB = 1, FLUSH_IDIOM_CLFLUSHOPT, FLUSH_IDIOM_CLFLUSH };

/* The CPU's best flush (FLUSH_IDIOM_*, bits 0-3), whether it has clflushopt (bit 4) and its
 * flush line size (bits 8-): one word, so that threads racing to find it out publish it whole.
 * Found once per library that includes this header. */
static inline unsigned flush_idiom_cpu(void) {
        static unsigned cached;
        unsigned v = __atomic_load_n(&cached, __ATOMIC_RELAXED), a, b, c, d, line = 64, method;
        bool clflushopt = false;

        if (v)
                return v;
        method = FLUSH_IDIOM_CLFLUSH;   /* every x86_64 CPU has clflush */
        if (__get_cpuid(1, &a, &b, &c, &d) && ((b >> 8) & 0xff))
                line = ((b >> 8) & 0xff) * 8;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
                clflushopt = b & (1u << 23);
                if (b & (1u << 24))
                        method = FLUSH_IDIOM_CLWB;
                else if (clflushopt)
                        method = FLUSH_IDIOM_CLFLUSHOPT;
        }
        v = method | (clflushopt ? 1u << 4 : 0) | line << 8;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
        return v;
}

static inline int flush_idiom_method(void) {
        return (int) (flush_idiom_cpu() & 0xf);
}

/* Writes back (keep: the line may stay cached, as clwb leaves it) or writes back and
 * invalidates (keep false: clwb is not an invalidation) every line of [addr, addr+len), each
 * flush followed by the load of its first byte.  No fence: the callers order it. */
static inline void flush_idiom_range(const void *addr, size_t len, bool keep) {
        unsigned cpu = flush_idiom_cpu(), line = cpu >> 8;
        int m = (int) (cpu & 0xf);
        uintptr_t p = (uintptr_t) addr & ~(uintptr_t) (line - 1);
        uintptr_t end = (uintptr_t) addr + len;

        if (m == FLUSH_IDIOM_CLWB && !keep)
                m = cpu & (1u << 4) ? FLUSH_IDIOM_CLFLUSHOPT : FLUSH_IDIOM_CLFLUSH;
        for (; p < end; p += line) {
                switch (m) {
                case FLUSH_IDIOM_CLWB:
                        __asm__ __volatile__("clwb %0\n\tmovb %0, %%al" : "+m"(*(volatile char *) p) : : "rax");
                        break;
                case FLUSH_IDIOM_CLFLUSHOPT:
                        __asm__ __volatile__("clflushopt %0\n\tmovb %0, %%al" : "+m"(*(volatile char *) p) : : "rax");
                        break;
                default:
                        __asm__ __volatile__("clflush %0\n\tmovb %0, %%al" : "+m"(*(volatile char *) p) : : "rax");
                        break;
                }
        }
}

#elif defined(__aarch64__)

/* The smallest data cache line (CTR_EL0.DminLine). */
static inline size_t flush_idiom_line(void) {
        uint64_t ctr;
        __asm__ __volatile__("mrs %0, ctr_el0" : "=r"(ctr));
        return (size_t) 4 << ((ctr >> 16) & 0xf);
}

/* dc cvac (keep) or dc civac on every line of [addr, addr+len), each followed by an ldrb of
 * the same address.  No barrier: the callers order it (dsb). */
static inline void flush_idiom_range(const void *addr, size_t len, bool keep) {
        size_t line = flush_idiom_line();
        uintptr_t p = (uintptr_t) addr & ~(uintptr_t) (line - 1);
        uintptr_t end = (uintptr_t) addr + len;

        for (; p < end; p += line) {
                uint32_t tmp;
                if (keep)
                        __asm__ __volatile__("dc cvac, %1\n\tldrb %w0, [%1]" : "=r"(tmp) : "r"(p) : "memory");
                else
                        __asm__ __volatile__("dc civac, %1\n\tldrb %w0, [%1]" : "=r"(tmp) : "r"(p) : "memory");
        }
}

#else
#error "FAM/E supports x86_64 and aarch64"
#endif

#endif
