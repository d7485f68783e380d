/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The coherence checker's shared state (docs/check.md): files in STATE/check/, beside the FAM,
 * mapped MAP_SHARED by every node's QEMU (the plugin) and by the host tools.  Every update is a
 * lock-free atomic on one word, so a node killed at any instruction leaves nothing locked.
 *
 *   STATE/check/lines       one struct check_line per 64-byte FAM line (sparse: untouched lines
 *                           are holes)
 *   STATE/check/persisted   the FAM as it is in memory: what was written back, by fabric atomics
 *                           and by the host; a crashed node's unwritten lines return to it
 *   STATE/check/findings    struct check_header, then an open-addressing table of findings
 *   STATE/check.log         one line per new finding, as it happens
 */
#ifndef FAME_CHECK_FORMAT_H
#define FAME_CHECK_FORMAT_H

#include <stdint.h>

#define CHECK_LINE 64u
#define CHECK_MAX_NODES 64u             /* node masks are 64 bits */
#define CHECK_MAGIC "FAMECHK1"
#define CHECK_FINDINGS_CAPACITY 16384u  /* distinct findings kept; more are counted in overflow */

#define CHECK_DIR "check"
#define CHECK_LINES_FILE "lines"
#define CHECK_PERSISTED_FILE "persisted"
#define CHECK_FINDINGS_FILE "findings"
#define CHECK_LOG_FILE "check.log"      /* in STATE, beside check/ */

/* Per 64-byte line.  Masks: bit (node - 1). */
struct check_line {
        uint64_t cached;                /* nodes holding a copy (clean or dirty) */
        uint64_t dirty;                 /* nodes holding stores not written back */
        uint64_t stale;                 /* nodes whose copy is older than memory */
        uint64_t store_pc;              /* last plain store: site */
        uint64_t wb_pc;                 /* last change of memory (writeback, atomic): site */
        uint64_t atomic_pc;             /* last fabric atomic on the line: site */
        uint16_t store_node, wb_node, atomic_node;      /* 1.., 0: none */
        uint8_t atomic_words;           /* 8-byte words of the line that fabric atomics use */
        uint8_t wb_atomic;              /* the last change of memory was a fabric atomic */
        uint8_t pad[8];
};
_Static_assert(sizeof(struct check_line) == 64, "one line record per cache line");

enum check_kind {
        CHECK_UNFLUSHED_READ = 1,       /* a: the storing node, b: the loading node */
        CHECK_STALE_READ,               /* a: the node that changed memory, b: the loading node */
        CHECK_CONFLICTING_WRITES,       /* a: the first dirty node, b: the second */
        CHECK_PLAIN_ATOMIC,             /* a: the fabric atomic's node, b: the plain access */
        CHECK_UNSEEN_FLUSH,             /* a: a flush instruction whose address the checker cannot see */
        CHECK_KIND_MAX
};

struct check_finding {
        uint64_t key;                   /* hash of (kind, nodes, pcs) | 1; 0: empty slot */
        uint32_t ready;                 /* the fields below are written (release) */
        uint32_t kind;
        uint16_t node_a, node_b;
        uint8_t b_store;                /* the access at b was a store */
        uint8_t pad[3];
        uint64_t pc_a, pc_b;
        uint64_t fam_offset;            /* of the first occurrence */
        uint64_t count;
        uint64_t first_ns;              /* CLOCK_REALTIME of the first occurrence */
};

struct check_header {
        char magic[8];
        uint32_t version;               /* 1 */
        uint32_t nodes;
        uint64_t fam_size;
        uint64_t capacity;              /* findings slots */
        uint64_t overflow;              /* occurrences of findings that found no slot */
        uint64_t node_findings[CHECK_MAX_NODES];        /* distinct findings that involve the node */
        uint64_t node_events[CHECK_MAX_NODES];          /* FAM accesses seen per node */
        uint64_t started_ns;
        uint8_t reserved[4096 - 48 - 16 * CHECK_MAX_NODES];
};
_Static_assert(sizeof(struct check_header) == 4096, "the header is one page");

#endif
