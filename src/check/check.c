/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checker's host side: see check.h.  (Being written: every call fails with ENOSYS.) */
#include <errno.h>
#include <stdlib.h>

#include "check.h"

int check_create(const char *state_dir, const char *fam_path, uint64_t fam_size, uint32_t nodes) {
        (void) state_dir; (void) fam_path; (void) fam_size; (void) nodes;
        return -ENOSYS;
}
int check_remove(const char *state_dir) { (void) state_dir; return 0; }
bool check_exists(const char *state_dir) { (void) state_dir; return false; }
int check_open(const char *state_dir, const char *fam_path, struct check **ret) {
        (void) state_dir; (void) fam_path; *ret = NULL;
        return -ENOSYS;
}
void check_close(struct check *c) { (void) c; }
int check_host_wrote(struct check *c, uint64_t offset, uint64_t len) { (void) c; (void) offset; (void) len; return -ENOSYS; }
int check_node_stopped(struct check *c, uint32_t node, bool crash, uint64_t *ret_restored) {
        (void) c; (void) node; (void) crash;
        if (ret_restored)
                *ret_restored = 0;
        return -ENOSYS;
}
int check_read_findings(struct check *c, struct check_report *ret) { (void) c; *ret = (struct check_report) {0}; return -ENOSYS; }
void check_report_done(struct check_report *r) { free(r->f); }
const char *check_kind_words(uint32_t kind) { (void) kind; return "?"; }
const char *check_kind_name(uint32_t kind) { (void) kind; return "?"; }
uint64_t check_bar2_base(bool is_aarch64) { return is_aarch64 ? UINT64_C(0x8000000000) : UINT64_C(0x80000000); }
