/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the checker needs to know about a guest instruction from its bytes alone: whether it is
 * a fabric atomic (an atomic read-modify-write), a non-temporal store, or a cache-line flush
 * (docs/check.md lists the encodings).  Pure functions, unit-tested.
 */
#ifndef FAME_CHECK_DECODE_H
#define FAME_CHECK_DECODE_H

#include <stddef.h>
#include <stdint.h>

enum {
        DECODE_ATOMIC = 1 << 0,         /* locked RMW, xchg with memory; aarch64 exclusives, LSE atomics, CAS */
        DECODE_NT_STORE = 1 << 1,       /* movnti, movntdq, movntps/pd, movntq, vmovnt* */
        DECODE_WRITEBACK = 1 << 2,      /* clwb; dc cvac, dc cvap, dc cvadp */
        DECODE_WB_INVALIDATE = 1 << 3,  /* clflush, clflushopt; dc civac, dc ivac */
};

unsigned decode_x86_64(const uint8_t *insn, size_t len);
unsigned decode_aarch64(const uint8_t *insn, size_t len);

#endif
