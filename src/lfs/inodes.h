/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs's inode table.  The kernel names files by inode numbers (libfuse's low-level
 * interface), the Librarian by paths: each inode the kernel was told of is kept as its parent's
 * inode and its name, and its path is found by walking up to the root (FUSE_ROOT_ID, "/").  An
 * inode lives while the kernel holds it (lookups not yet forgotten), a file handle holds it, or
 * a child names it as its parent.  Numbers are this table's own and never used twice.
 * Thread-safe; no call blocks on anything but the table's lock.
 */
#ifndef FAME_LFS_INODES_H
#define FAME_LFS_INODES_H

#include <stdbool.h>
#include <stdint.h>

struct inodes;

struct inodes *inodes_new(void);
void inodes_free(struct inodes *t);

/* The path of ino, or of the entry name in the directory ino (name NULL: ino itself), in a
 * malloc'd string: -ENOENT if ino is unknown or no longer has a name. */
int inodes_path(struct inodes *t, uint64_t ino, const char *name, char **ret);
/* The kernel was told that name in parent is the shelf id (0: unknown): its inode, made if the
 * name has none yet or named another shelf (that one loses its name), looked up once more. */
int inodes_add(struct inodes *t, uint64_t parent, const char *name, int64_t id, uint64_t *ret);
/* The kernel forgot n lookups of ino. */
void inodes_forget(struct inodes *t, uint64_t ino, uint64_t n);
/* name in parent is no more: its inode (if any) keeps its number, not its name. */
void inodes_remove(struct inodes *t, uint64_t parent, const char *name);
void inodes_remove_ino(struct inodes *t, uint64_t ino);
/* name in parent is now newname in newparent (what newname named loses its name); hide marks
 * it an unlinked file that is still open, to be removed at its last close. */
void inodes_move(struct inodes *t, uint64_t parent, const char *name, uint64_t newparent, const char *newname, bool hide);
/* The inode of name in parent and its number of open handles: 0 (and *ret_ino 0) if unknown. */
unsigned inodes_open_count(struct inodes *t, uint64_t parent, const char *name, uint64_t *ret_ino);
/* A handle of ino was opened (delta 1) or released (-1): the handles left, and whether it is
 * hidden (inodes_move()). */
unsigned inodes_open(struct inodes *t, uint64_t ino, int delta, bool *ret_hidden);
/* The inodes of path's directory and of path itself, 0 for what the table does not know. */
void inodes_find(struct inodes *t, const char *path, uint64_t *ret_parent, uint64_t *ret_ino);

#endif
