/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs's directory cache (docs/lfs.md, "Caching"): the last listings fame_list_dir gave
 * (names with each entry's attributes), each kept for the mount's cache timeout at most.  A
 * readdir is answered from it, and so is the attribute lookup of a name in a listed directory
 * (a name it lacks is asked for: what another node just made is found at once).  Whatever changes a shelf drops what is
 * cached of it: the mount's own operations, and the Librarian's notices of others' changes.
 * Thread-safe.
 */
#ifndef FAME_LFS_DIRCACHE_H
#define FAME_LFS_DIRCACHE_H

#include <json-c/json.h>
#include <stdint.h>

struct dircache;

/* timeout: seconds a listing is kept (> 0). */
struct dircache *dircache_new(double timeout);
void dircache_free(struct dircache *d);

/* Read before asking the Librarian for a listing, passed to dircache_put(): a listing asked
 * for before something was dropped is not kept (it may predate the change). */
uint64_t dircache_epoch(struct dircache *d);
/* Keeps list (a fame_list_dir reply: ".", "..", then the entries; a reference is taken) as
 * dir's listing, unless anything was dropped since epoch. */
void dircache_put(struct dircache *d, const char *dir, struct json_object *list, uint64_t epoch);
/* dir's listing, if kept and not expired: a new reference; NULL otherwise. */
struct json_object *dircache_listing(struct dircache *d, const char *dir);
/* The entry path names in its directory's kept listing: 1 and *ret (a new reference) when it
 * is there, 0 when the listing says it is not, -ENODATA when no listing is kept. */
int dircache_lookup(struct dircache *d, const char *path, struct json_object **ret);

/* path changed (its attributes, or it appeared or went): its directory's listing goes, and
 * its own listing and those below it if it is a directory. */
void dircache_drop(struct dircache *d, const char *path);
/* Everything goes (a rename moves whole trees; a notice may have been missed). */
void dircache_drop_all(struct dircache *d);

#endif
