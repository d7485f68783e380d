/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs inside: the mount (lfs.c: the Librarian connection, the heartbeat, the watcher of
 * notices, mounting and serving) and its FUSE operations (ops.c, libfuse's low-level
 * interface, inodes named by inodes.h).
 */
#ifndef FAME_LFS_INTERNAL_H
#define FAME_LFS_INTERNAL_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "dircache.h"
#include "inodes.h"

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
        /* in a node the FAM is BAR2 mapped from sysfs (a PFN map): the kernel cannot copy a
         * reply out of it (get_user_pages refuses), so read(2) goes through a buffer */
        bool bounce;
        /* the kernel's inode numbers: each one's parent and name (inodes.h) */
        struct inodes *inodes;
        uint64_t hidden;                /* names made for unlinked open files */
        /* caching (docs/lfs.md, "Caching"): the kernel keeps entries and attributes for
         * cache_timeout seconds; the watcher drops them when the Librarian says another
         * connection changed them */
        double cache_timeout;
        struct dircache *dirs;          /* NULL: not caching */
        struct fuse_session *se;
        const char *address;            /* the Librarian's, for the watcher's own connection */
        bool via_port;                  /* lib goes through the node's virtio-serial port, not TCP */
        pthread_t watcher;
        bool watcher_started;
        struct fame_librarian *watch;   /* the watcher's connection, under hb_lock */
        char origin[33];                /* this mount's: the Librarian does not tell the watcher
                                         * of the changes the mount itself made */
};

/* The caller of the FUSE request this thread serves (NULL in the daemon's own threads). */
extern _Thread_local const struct fuse_ctx *caller;

/* Before and after a Librarian request of the current FUSE operation (LCALL()). */
struct fame_librarian *lcall_begin(struct lfs *l);
int lcall_end(struct lfs *l, int r);
/* One Librarian request as the caller of the current FUSE operation: LCALL(l, librarian_get_shelf,
 * path, &s) is librarian_get_shelf(l->lib, path, &s) between lcall_begin() and lcall_end(). */
#define LCALL(l, call, ...) lcall_end((l), call(lcall_begin(l), __VA_ARGS__))

int64_t member(struct json_object *o, const char *key);
/* A shelf's record as attributes. */
void fill_stat(struct lfs *l, struct json_object *s, struct stat *st);

/* The operations (ops.c), but init and destroy (the mount's, lfs.c). */
extern const struct fuse_lowlevel_ops lfs_ops;
/* The mount, for a request; its Librarian requests are then made as its caller. */
struct lfs *lfs_begin(fuse_req_t req);
/* The reply of an operation that returns no data: r < 0 is its error. */
static inline void reply(fuse_req_t req, int r) {
        fuse_reply_err(req, r < 0 ? -r : 0);
}
/* reply(req, r), then the (void) operation returns. */
#define REPLY_ERR(req, r)                       \
        do {                                    \
                reply((req), (r));              \
                return;                         \
        } while (0)
/* "FAMEBOOKS 1 SOURCE BOOK_SIZE SIZE N OFFSET..." of path for the mmap shim (ops.c): its
 * length; size 0 asks for the length only. */
int lfs_books_xattr(struct lfs *l, const char *path, char *value, size_t size);
/* The extended attributes (xattrs.c). */
void lfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void lfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void lfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags);
void lfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
