/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: the raw Librarian client under the public fame_librarian_* / fame_shelf_* API,
 * used by the fame CLI, the benchmark and the tests (they link libfame statically). */
#ifndef FAME_LIBRARIAN_CLIENT_H
#define FAME_LIBRARIAN_CLIENT_H

#include <stdint.h>

#include "fame.h"
#include "fame-constants.h"

struct json_object;


/*
 * Sends {"command": command, "context": {...}, params...} and waits for the reply, skipping
 * out-of-band messages.  params (borrowed, may be NULL) is an object whose members become the
 * request's parameters.  On success *ret_value (optional) gets a reference to "value" (NULL
 * for null).  An error reply returns -errno (EREMOTEIO when its errno is 0) and keeps its
 * errmsg for fame_librarian_error().  A broken connection is reconnected once, and the
 * request resent only if it cannot change anything (a read).
 */
int librarian_call(struct fame_librarian *l, const char *command, struct json_object *params,
                   struct json_object **ret_value);

/* Convenience: params from a format of alternating key/json-c values, NULL-terminated. */
struct json_object *librarian_params(const char *key, ...);

/* The address the connection uses ("HOST:PORT"). */
const char *librarian_address(const struct fame_librarian *l);
uint32_t librarian_node(const struct fame_librarian *l);
/* Overrides uid/gid sent in the context (tests; -1 keeps the process's). */
void librarian_set_credentials(struct fame_librarian *l, int64_t uid, int64_t gid);
/* The caller a daemon acts for (fame-lfs: the FUSE request's uid, gid, pid); pid 0: getpid(). */
void librarian_set_caller(struct fame_librarian *l, int64_t uid, int64_t gid, int64_t pid);

/* Books per interleave group and where each group starts (in books), from get_fs_stats'
 * books_per_IG: IGs in ascending order, each after the previous one (docs/librarian.md). */
void librarian_igstart(struct json_object *stats, uint64_t igbooks[128], uint64_t igstart[128]);
/* The FAM offset of each book of a list_shelf_books reply: book_area + (igstart[IG] + book_num) ×
 * book size.  -ERANGE (book index in *ret_bad) for a book outside the FAM of fam_size bytes. */
int librarian_book_offsets(struct json_object *stats, struct json_object *books, uint64_t book_area, uint64_t fam_size,
                           uint64_t **ret, size_t *ret_n, size_t *ret_bad);

#endif
