/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The checker's memory model (docs/check.md), on the shared files of check-format.h: what a
 * node's load, store, writeback, invalidate, fabric atomic and non-temporal store do to a FAM
 * line's state, and the findings they make.  Used by the QEMU plugin (one call per FAM access)
 * and by the host side (check.c).  No locks: every field is changed with one atomic operation,
 * so a process killed anywhere leaves consistent-enough state and nothing held.
 */
#ifndef FAME_CHECK_MODEL_H
#define FAME_CHECK_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check-format.h"

struct check_map {
        struct check_header *hdr;
        struct check_finding *findings;
        struct check_line *lines;
        uint8_t *fam, *persisted;
        uint64_t fam_size, n_lines;
        size_t findings_len, lines_len, persisted_len, fam_len;
        int lines_fd, log_fd;           /* log_fd -1: findings are not logged */
};

/* Maps the files of STATE/check/ and the FAM file; with_log: open STATE/check.log to append findings.
 * Returns 0 or a negative errno; ret_what (may be NULL) names the file that failed. */
int check_map_open(struct check_map *m, const char *state_dir, const char *fam_path, bool with_log,
                   const char **ret_what);
void check_map_close(struct check_map *m);

/* One access by node (1..) at the guest pc, to FAM [offset, offset+size).  Accesses that
 * cross a line are split.  Offsets beyond the FAM are ignored. */
void check_load(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc);
void check_store(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc);
/* A fabric atomic's read (write false) or write half: memory-side, on the word(s). */
void check_atomic(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc, bool write);
/* A non-temporal store: goes to memory, the node's copy of the line is dropped. */
void check_nt_store(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc);
/* The line holding offset: written back (the node's stores become memory's), and with
 * invalidate also dropped from the node's cache. */
void check_writeback(struct check_map *m, uint32_t node, uint64_t offset, uint64_t pc, bool invalidate);
/* A flush instruction whose address could not be seen. */
void check_unseen_flush(struct check_map *m, uint32_t node, uint64_t pc);

/* Records one occurrence of a finding (deduplicated by kind, nodes and pcs); logs it the first
 * time.  Exposed for the host side's tests. */
void check_report(struct check_map *m, uint32_t kind, uint32_t node_a, uint64_t pc_a, uint32_t node_b, uint64_t pc_b,
                  bool b_store, uint64_t offset);

/* Words of a finding kind, for the log and `fame check report`. */
const char *check_model_kind_words(uint32_t kind);
const char *check_model_kind_name(uint32_t kind);

#endif
