/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Instruction classes for the checker: see decode.h. */
#include <stdbool.h>

#include "decode.h"

unsigned decode_x86_64(const uint8_t *b, size_t n) {
        bool lock = false, p66 = false;
        size_t i = 0;
        uint8_t op, modrm;

        for (; i < n && i < 14; i++) {          /* legacy prefixes */
                uint8_t c = b[i];
                if (c == 0xf0)
                        lock = true;
                else if (c == 0x66)
                        p66 = true;
                else if (c == 0xf2 || c == 0xf3 || c == 0x2e || c == 0x36 || c == 0x3e || c == 0x26 || c == 0x64 ||
                         c == 0x65 || c == 0x67)
                        continue;
                else
                        break;
        }
        if (i < n && (b[i] & 0xf0) == 0x40)     /* REX */
                i++;
        if (i >= n)
                return 0;
        op = b[i];
        if (op == 0xc5 || op == 0xc4) {         /* VEX: vmovntps/pd (2b), vmovntdq (e7) in map 0f */
                size_t o = op == 0xc5 ? i + 2 : i + 3;
                if (o + 1 >= n || (op == 0xc4 && (b[i + 1] & 0x1f) != 1))
                        return 0;
                if ((b[o] == 0x2b || b[o] == 0xe7) && (b[o + 1] >> 6) != 3)
                        return DECODE_NT_STORE;
                return 0;
        }
        if (op == 0x86 || op == 0x87)           /* xchg with memory: always locked */
                return i + 1 < n && (b[i + 1] >> 6) != 3 ? DECODE_ATOMIC : 0;
        if (op != 0x0f || i + 2 >= n)
                return lock ? DECODE_ATOMIC : 0;
        op = b[i + 1];
        modrm = b[i + 2];
        if ((modrm >> 6) == 3)
                return lock ? DECODE_ATOMIC : 0;
        switch (op) {
        case 0xae:
                if (((modrm >> 3) & 7) == 7)
                        return DECODE_WB_INVALIDATE;            /* clflush; 66: clflushopt */
                if (((modrm >> 3) & 7) == 6 && p66)
                        return DECODE_WRITEBACK;                /* clwb */
                return 0;
        case 0xc3:                                              /* movnti */
        case 0x2b:                                              /* movntps, 66: movntpd */
        case 0xe7:                                              /* movntq, 66: movntdq */
                return DECODE_NT_STORE;
        default:
                return lock ? DECODE_ATOMIC : 0;
        }
}

unsigned decode_aarch64(const uint8_t *b, size_t n) {
        uint32_t insn;

        if (n < 4)
                return 0;
        insn = (uint32_t) b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16 | (uint32_t) b[3] << 24;
        switch (insn & 0xffffffe0u) {
        case 0xd50b7a20u:       /* dc cvac */
        case 0xd50b7c20u:       /* dc cvap */
        case 0xd50b7d20u:       /* dc cvadp */
                return DECODE_WRITEBACK;
        case 0xd50b7e20u:       /* dc civac */
        case 0xd5087620u:       /* dc ivac (EL1): a writeback too in FAM/E's model */
                return DECODE_WB_INVALIDATE;
        }
        /* load/store exclusive group: exclusives (o2 = 0) and CAS/CASP (o2 = 1, o1 = 1) are atomic;
         * LDAR/STLR (o2 = 1, o1 = 0) are ordered plain accesses */
        if ((insn & 0x3f000000u) == 0x08000000u) {
                bool o2 = insn & (1u << 23), o1 = insn & (1u << 21);
                return !o2 || o1 ? DECODE_ATOMIC : 0;
        }
        /* LSE atomic memory operations (LDADD, LDCLR, LDEOR, LDSET, LD[SU]MAX/MIN, SWP), not LDAPR */
        if ((insn & 0x3f200c00u) == 0x38200000u) {
                bool o3 = insn & (1u << 15);
                unsigned opc = (insn >> 12) & 7;
                return o3 && opc == 4 ? 0 : DECODE_ATOMIC;
        }
        return 0;
}
