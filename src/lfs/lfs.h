/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs: the Librarian's shelves as files under /lfs (docs/lfs.md).  A libfuse3 file
 * system (the low-level interface; inodes.h names its inodes) whose every metadata operation
 * is a Librarian request made as the calling process (uid, gid, pid) on this node, and whose
 * data is the shelf's books in FAM: read(2) is answered from BAR2 (or the FAM file on the
 * host) itself, write(2) copies straight to it.
 *
 * mmap: FUSE cannot hand out FAM pages.  The extended attribute "user.fame.books" of a file
 * gives the FAM source and the offset of each book; libfame-mmap.so (lib/mmap-shim.c,
 * preloaded in every node) uses it to map the books themselves.
 */
#ifndef FAME_LFS_H
#define FAME_LFS_H

#include <stdbool.h>
#include <stdint.h>

#define LFS_BOOKS_XATTR "user.fame.books"
#define LFS_HEARTBEAT_SECONDS 10
/* How long an idempotent change waits for a Librarian that restarts before it is EIO. */
#define LFS_RESTART_WAIT_SECONDS 10
/* How long the kernel keeps what it was told of a shelf when no notice says it changed (the
 * bound on staleness while the watcher's connection is down; docs/lfs.md, "Caching"). */
#define LFS_CACHE_TIMEOUT_SECONDS 1.0

struct lfs_options {
        const char *mountpoint;
        const char *librarian;          /* HOST:PORT, NULL: libfame's default */
        const char *fam;                /* FAM source for fame_open() (NULL: $FAME_PATH / PCI) */
        uint32_t node;                  /* Librarian node id, 0: this node's */
        bool foreground;
        bool debug;
        const char *ready_file;         /* written once mounted */
        const char *relay;              /* a unix socket for the node's other processes
                                         * (relay.h), NULL: none */
        double cache_timeout;           /* seconds; 0: nothing cached (every call asks) */
};

/* Mounts and serves until unmounted or signalled; returns 0 or a negative errno. */
int lfs_run(const struct lfs_options *o);

#endif
