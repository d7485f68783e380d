/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * `fame check report` (docs/check.md): the checker's findings, each with where its FAM offset
 * lies for a FAM programmer — the shelf and the offset in it, from the cluster's Librarian
 * database (read-only; docs/librarian-model.md "Where a book is in FAM", backwards):
 *
 *   book index = (offset − book_area_offset) / book_size, in IG g where igstart[g] <= index <
 *   igstart[g] + books of g, book_num = index − igstart[g]; then books (intlv_group, book_num)
 *   → books_on_shelves (shelf_id, seq_num) → shelves (name, parent_id … up to the root);
 *   shelf offset = (seq_num − 1) × book_size + (offset − book_area_offset) mod book_size.
 *
 * While the cluster is up its Librarian holds the database exclusively: the same is then asked of
 * it through the protocol (list_shelves, list_shelf_books, get_fs_stats).
 * A database that cannot be read is no error: the findings come without shelves.  SQLite is
 * for the host's fame only; elsewhere (fame-static in nodes) check-report-none.c says so.
 */
#ifndef FAME_CHECK_REPORT_H
#define FAME_CHECK_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "check-format.h"
#include "config.h"

struct fame_geometry;

/* Where a finding's FAM offset is. */
enum check_place {
        CHECK_PLACE_UNKNOWN,            /* the Librarian's database or the FAM could not be read */
        CHECK_PLACE_SHELF,              /* in shelf `shelf`, at shelf_offset */
        CHECK_PLACE_NO_SHELF,           /* in a book that is on no shelf (free, or being zeroed) */
        CHECK_PLACE_METADATA,           /* before the book area: the FAM's header, slots, metadata */
};

struct check_report_item {
        struct check_finding f;         /* as the checker recorded it */
        enum check_place place;
        char *shelf;                    /* CHECK_PLACE_SHELF: its full path ("/a/b") */
        uint64_t shelf_offset;          /* CHECK_PLACE_SHELF: the byte of the shelf */
};

struct cluster_check_report {
        struct check_report_item *item; /* in the checker's order (kind, then first occurrence) */
        size_t n;
        uint64_t occurrences;           /* the items' counts, summed */
        uint64_t overflow;              /* occurrences that found no slot in the findings table */
        uint32_t node;                  /* the node asked for (1..), 0: all */
};

/* The items of the n findings f that involve node (node_a or node_b; 0: all), each placed with
 * the Librarian database db (NULL, or unreadable: CHECK_PLACE_UNKNOWN) of a FAM of geometry geo
 * (NULL: CHECK_PLACE_UNKNOWN).  While a Librarian serves db it holds it exclusively (SQLITE_BUSY):
 * then, or without db, the same is asked of the Librarian at address librarian ("HOST:PORT",
 * NULL: none; its secret from $FAME_LIBRARIAN_SECRET_FILE) with get_fs_stats, list_shelves and
 * list_shelf_books; both give the same report.  ret->overflow is left 0.  -ENOMEM (logged) only. */
int check_report_map(const struct check_finding *f, size_t n, uint32_t node, const char *db, const char *librarian,
                     const struct fame_geometry *geo, struct cluster_check_report *ret);

/* The findings of cluster c (its STATE/check; an error when the cluster never ran with the
 * checker), placed in its Librarian's shelves; node: NULL, or the node whose findings are kept
 * ("node02", "2"). */
int cluster_check_report(const struct fame_config *c, const char *node, struct cluster_check_report *ret);
void cluster_check_report_done(struct cluster_check_report *r);

#endif
