/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs's directory cache (docs/lfs.md, "Caching"): the last listings fame_list_dir gave
 * (names with each entry's attributes) and the last attributes fame_stat_shelf gave, each kept
 * for the mount's cache timeout at most.  A
 * readdir is answered from it, and so is the attribute lookup of a name in a listed directory
 * (a name it lacks is asked for: what another node just made is found at once, unless this
 * mount removed that name itself).  Whatever changes a shelf drops what is
 * cached of it: the mount's own operations, and the Librarian's notices of others' changes.
 * Thread-safe.
 */
#ifndef FAME_LFS_DIRCACHE_H
#define FAME_LFS_DIRCACHE_H

#include <json-c/json.h>
#include <stdint.h>
#include <sys/stat.h>

struct dircache;

/* What a listing's entry is kept as: its name and attributes, converted once. */
struct dircache_entry {
        const char *name;
        struct stat st;
};
/* Converts a fame_list_dir record into st (fame-lfs's fill_stat()). */
typedef void (*dircache_stat_fn)(struct json_object *record, struct stat *st, void *userdata);

/* timeout: seconds a listing is kept (> 0); fill converts the records. */
struct dircache *dircache_new(double timeout, dircache_stat_fn fill, void *userdata);
void dircache_free(struct dircache *d);

/* Read before asking the Librarian for a listing, passed to dircache_put(): a listing asked
 * for before something was dropped is not kept (it may predate the change). */
uint64_t dircache_epoch(struct dircache *d);
/* Keeps list (a fame_list_dir reply: ".", "..", then the entries) as dir's listing, unless
 * anything was dropped since epoch. */
void dircache_put(struct dircache *d, const char *dir, struct json_object *list, uint64_t epoch);
/* Whether a listing of dir is kept and not expired (the kernel may then keep its own). */
int dircache_has(struct dircache *d, const char *dir);
/* Calls fn for each entry of dir's listing (not "." and ".."), if one is kept and not expired:
 * 1; 0 when none is.  fn runs under the cache's lock: it must not call the cache. */
int dircache_each(struct dircache *d, const char *dir, void (*fn)(const struct dircache_entry *e, void *userdata),
                  void *userdata);
/* Keeps the attributes of path (asked for alone: fame_stat_shelf), unless anything was dropped
 * since epoch.  The kernel asks for a directory's again after every readdir (it drops their
 * atime, noatime or not), and a listing of its parent may not be kept. */
void dircache_put_attr(struct dircache *d, const char *path, const struct stat *st, uint64_t epoch);
/* The attributes of path: kept for itself, or from its directory's kept listing: 1 when they
 * are known, 0 when the listing says there is no such entry, -ENOENT when this mount removed
 * path itself (dircache_removed()), -ENODATA when nothing is kept. */
int dircache_lookup(struct dircache *d, const char *path, struct stat *ret);

/* path changed (its attributes, or it appeared or went): its directory's listing goes, and
 * its own listing and those below it if it is a directory. */
void dircache_drop(struct dircache *d, const char *path);
/* The mount itself made or removed path, a file or a link: as dircache_drop(), but the
 * directory's own attributes stay (their times then lag up to the timeout behind; its link
 * count is not touched by files). */
void dircache_drop_entry(struct dircache *d, const char *path);
/* The mount itself removed path (a file, a link or an empty directory) with a request begun
 * at epoch (dircache_epoch() before it): as dircache_drop_entry(), and then, unless anything
 * else was dropped since epoch (another node may have made it again), path is remembered
 * missing until it expires or is dropped like any attributes: a lookup of it needs no request. */
void dircache_removed(struct dircache *d, const char *path, uint64_t epoch);
/* Everything goes (a rename moves whole trees; a notice may have been missed). */
void dircache_drop_all(struct dircache *d);

#endif
