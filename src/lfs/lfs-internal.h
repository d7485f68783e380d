/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs's parts: lfs.c (the FUSE operations, the mount) and threads.c (the heartbeat and the
 * watcher of the Librarian's notices, which run beside them).
 */
#ifndef FAME_LFS_INTERNAL_H
#define FAME_LFS_INTERNAL_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif

#include <fuse.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dircache.h"
#include "fame.h"
#include "librarian-client.h"

struct lfs {
        struct fame *fam;
        struct fame_librarian *lib;
        pthread_mutex_t lock;
        uint32_t node;
        uint64_t book_size, book_area;
        struct json_object *stats;      /* get_fs_stats at mount: book size and interleave groups */
        const char *source;             /* what the mmap shim maps */
        char *source_buf;
        uint64_t generation;            /* bumped by every shrink: cached book lists are refreshed */
        pthread_t heartbeat;
        bool heartbeat_started;
        pthread_mutex_t hb_lock;
        pthread_cond_t hb_cond;
        bool stopping;
        /* caching (docs/lfs.md, "Caching"): the kernel keeps entries and attributes for
         * cache_timeout seconds; the watcher drops them when the Librarian says another
         * connection changed them */
        double cache_timeout;
        struct dircache *dirs;          /* NULL: not caching */
        struct fuse *fuse;
        const char *address;            /* the Librarian's, for the watcher's own connection */
        pthread_t watcher;
        bool watcher_started;
        struct fame_librarian *watch;   /* the watcher's connection, under hb_lock */
        char origin[33];                /* this mount's: the Librarian does not tell the watcher
                                         * of the changes the mount itself made */
};

/* Before a Librarian request of the current FUSE operation: the shared connection, acting as
 * the operation's caller (uid, gid, pid on this node); after it, the result (a lost Librarian
 * is EIO).  Between the two the connection is the caller's alone. */
struct fame_librarian *lcall_begin(struct lfs *l);
int lcall_end(struct lfs *l, int r);
/* One Librarian request as the caller of the current FUSE operation: LCALL(l, librarian_get_shelf,
 * path, &s) is librarian_get_shelf(l->lib, path, &s) between lcall_begin() and lcall_end(). */
#define LCALL(l, call, ...) lcall_end((l), call(lcall_begin(l), __VA_ARGS__))

/* The node's status to the Librarian (1 at the mount, 0 at the end). */
void lfs_soc_status(struct lfs *l, int status);
/* Starts the heartbeat, and the watcher when caching (l->fuse set); stops and joins them. */
void lfs_threads_start(struct lfs *l);
void lfs_threads_stop(struct lfs *l);

#endif
