/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The coherence and crash checker, host side (docs/check.md): makes the shared state for a
 * cluster started with --check, accounts for writes the host makes to the FAM file, emulates a
 * node's power loss, and reads the findings.  The QEMU plugin (plugin.c) updates the same
 * files from inside every node's QEMU.  Functions return 0 or a negative errno and log why.
 */
#ifndef FAME_CHECK_H
#define FAME_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check-format.h"

struct check;

/* `fame up --check`: STATE/check/ made anew (lines empty, persisted = a copy of the FAM file
 * as it is now, findings empty) and STATE/check.log emptied.  nodes <= CHECK_MAX_NODES. */
int check_create(const char *state_dir, const char *fam_path, uint64_t fam_size, uint32_t nodes);
/* Removes STATE/check/ and STATE/check.log (a cluster started without --check). */
int check_remove(const char *state_dir);
/* Whether STATE/check/ exists. */
bool check_exists(const char *state_dir);

/* Maps an existing STATE/check/ (fam_path: the FAM file it belongs to). */
int check_open(const char *state_dir, const char *fam_path, struct check **ret);
void check_close(struct check *c);

/* The host wrote [offset, offset+len) of the FAM file itself (the Librarian zeroing books, a
 * host-side `fame shelf fill`): memory now holds those bytes, no node has a copy. */
int check_host_wrote(struct check *c, uint64_t offset, uint64_t len);

/* Node `node` (1..) stopped.  crash: power loss — every line it had stored to and not written
 * back returns in the FAM file to its last written-back content.  Otherwise its stores count as
 * written back.  Either way it holds no cached copy afterwards.  Call only once its QEMU is gone.
 * ret_restored (may be NULL): lines put back. */
int check_node_stopped(struct check *c, uint32_t node, bool crash, uint64_t *ret_restored);

/* A snapshot of the findings (ready ones), sorted by kind, then first occurrence. */
struct check_report {
        struct check_finding *f;
        size_t n;
        uint64_t overflow;
        uint32_t nodes;
        uint64_t node_findings[CHECK_MAX_NODES];
        uint64_t node_events[CHECK_MAX_NODES];
};
int check_read_findings(struct check *c, struct check_report *ret);
void check_report_done(struct check_report *r);
/* Words for a kind: "read of unflushed data", …; and its JSON name ("unflushed-read", …). */
const char *check_kind_words(uint32_t kind);
const char *check_kind_name(uint32_t kind);

/* The guest-physical address of the FAM (ivshmem BAR2) in a node of that architecture with a
 * FAM of fam_size bytes (a power of two) and memory bytes of RAM, as the node's firmware or
 * kernel assigns it on FAM/E's machines (the rule and its sources: check.c). */
uint64_t check_bar2_base(bool is_aarch64, uint64_t fam_size, uint64_t memory);

#endif
