/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ordering and persistence: write back / invalidate cache lines covering FAM, and fences. */
#include <stdint.h>

#include "fame-internal.h"
#include "flush-idiom.h"

#if defined(__x86_64__)

/* Each flush carries the load that names its line for FAM/E's coherence checker (flush-idiom.h). */
_public_ void fame_persist(const void *addr, size_t len) {
        __asm__ __volatile__("sfence" ::: "memory");
        flush_idiom_range(addr, len, true);
        __asm__ __volatile__("sfence" ::: "memory");
}

_public_ void fame_invalidate(const void *addr, size_t len) {
        __asm__ __volatile__("mfence" ::: "memory");
        flush_idiom_range(addr, len, false);
        __asm__ __volatile__("mfence" ::: "memory");
}

_public_ const char *fame_persist_method(void) {
        switch (flush_idiom_method()) {
        case FLUSH_IDIOM_CLWB: return "clwb";
        case FLUSH_IDIOM_CLFLUSHOPT: return "clflushopt";
        default: return "clflush";
        }
}

#else   /* aarch64 (flush-idiom.h refuses anything else) */

static void dc_range(const void *addr, size_t len, bool invalidate) {
        __asm__ __volatile__("dsb ish" ::: "memory");
        flush_idiom_range(addr, len, !invalidate);
        __asm__ __volatile__("dsb ish" ::: "memory");
}

_public_ void fame_persist(const void *addr, size_t len) { dc_range(addr, len, false); }
_public_ void fame_invalidate(const void *addr, size_t len) { dc_range(addr, len, true); }
_public_ const char *fame_persist_method(void) { return "dc cvac"; }

#endif

_public_ void fame_fence(void) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
