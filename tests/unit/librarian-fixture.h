/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef FAME_TEST_LIBRARIAN_FIXTURE_H
#define FAME_TEST_LIBRARIAN_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

struct fame_geometry;

/* A FAM file of `size` bytes for `nodes` nodes and a Librarian database for it, made as
 * `fame up` makes them (generated INI topology), in test_tmpdir().  0 or a failed CHECK. */
int librarian_fixture(uint64_t size, uint32_t nodes, char *fam, size_t fam_len, char *db, size_t db_len,
                      struct fame_geometry *ret_geo);

#endif
