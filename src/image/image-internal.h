/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internals of the node image builder: a 128-bit FNV-1a hash for cache keys, and an in-memory
 * list of initramfs entries written out as an uncompressed cpio "newc" archive.
 */
#ifndef FAME_IMAGE_INTERNAL_H
#define FAME_IMAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- FNV-1a, 128 bits ------------------------------------------------------------------- */

__extension__ typedef unsigned __int128 fnv128_t;

struct hash128 {
        fnv128_t h;
};

void hash128_init(struct hash128 *h);
void hash128_update(struct hash128 *h, const void *data, size_t len);
/* Length-prefixed, so that ("ab", "c") and ("a", "bc") differ. */
void hash128_str(struct hash128 *h, const char *s);
void hash128_u64(struct hash128 *h, uint64_t v);
/* Feeds size and contents of an open file (read from offset 0); -errno on read errors. */
int hash128_fd(struct hash128 *h, int fd, uint64_t *ret_size);
/* 32 lowercase hex digits + NUL. */
void hash128_hex(const struct hash128 *h, char out[33]);

/* ---- kernel ----------------------------------------------------------------------------- */

/* The release ("6.1.0-56-amd64") from a bzImage's setup header; -ENOEXEC if not a bzImage. */
int image_kernel_release(const char *vmlinuz, char **ret);

/* ---- tools (image-common.c) ------------------------------------------------------------- */

struct cmd;
/* A program from $PATH, else /usr/sbin or /sbin (mke2fs lives there; users' PATH may lack it):
 * malloc'ed path, NULL when not found. */
char *image_find_program(const char *name);
/* Removes a directory tree (or a file); errors ignored. */
void image_rm_rf(const char *path);
/* Removes a tree that may hold files of mmdebstrap's user namespace (built without root, when
 * mmdebstrap is its path): their contents from inside it, then what is left from outside. */
void image_rm_rf_unshared(const char *path, const char *mmdebstrap);
/* dir (removed first, then made) with an empty dir/root for a tree that root fills: as root,
 * ours; without root, made by the root of mmdebstrap's user namespace (mmdebstrap: its path;
 * its output into log_path).  *ret_root: dir/root.  Logs its errors. */
int image_tree_dir(const char *dir, const char *mmdebstrap, const char *log_path, char **ret_root);
/* How many NAME.deb files dir holds. */
size_t image_count_debs(const char *dir);

/* s as one word of an mmdebstrap special hook ('sync-in SRC DST'), which mmdebstrap splits
 * with Perl's shellwords: in single quotes, a ' as '\''.  A path with a space (cache_dir) then
 * stays one word.  malloc'ed; NULL when out of memory. */
char *image_hook_word(const char *s);
/* "VERB A B" with A and B quoted so (a special hook's text); NULL when out of memory */
char *image_hook(const char *verb, const char *a, const char *b);

/* What image_run_logged() saw of a tool's output. */
struct image_tool_run {
        const char *what;               /* "mmdebstrap" */
        const char *const *mute;        /* "I: " lines starting so are logged, not shown (NULL-terminated) */
        char last_error[512];           /* the last "E: ..." line (or the last line) */
        char mirror_error[512];         /* why apt could not fetch, from its first "Failed to fetch" */
        bool mirror_failed;
};
/* Runs c with its stdout and stderr on a pipe: every byte into logfd (after a "$ COMMAND" line),
 * each line (without its newline) to fn, and the rest of the output without a newline with last
 * true.  silence_s > 0: the program is killed after that long without output (*ret_silent).
 * The exit status (128 + signal), or -errno when it did not run.  Logs nothing. */
int image_run_lines(struct cmd *c, int logfd, int silence_s, void (*fn)(char *line, bool last, void *userdata), void *userdata,
                    bool *ret_silent);
/* Runs c with stdout and stderr into log_path (NULL: our stderr); lines starting "I: " are
 * shown as progress.  The tool's exit status (128 + signal), or -errno when it did not run. */
int image_run_logged(struct cmd *c, const char *log_path, struct image_tool_run *t);
/* Runs a tool whose output only matters when it fails: stdout and stderr into log_path (NULL:
 * our stderr); on failure one line with the tool's last error line, the log and fix (or NULL). */
int image_run_quiet(struct cmd *c, const char *what, const char *log_path, const char *fix);

/* ---- cpio newc -------------------------------------------------------------------------- */

enum cpio_kind {
        CPIO_DIR,
        CPIO_FILE,              /* contents from a host file (src) */
        CPIO_DATA,              /* contents in memory (data, data_len) */
        CPIO_SYMLINK,           /* target in data */
        CPIO_NODE,              /* character or block device (mode says which) */
};

struct cpio_entry {
        char *path;             /* inside the archive, without a leading '/': "usr/bin/fame" */
        enum cpio_kind kind;
        mode_t mode;            /* type bits + permissions */
        char *src;              /* CPIO_FILE: host path */
        char *data;             /* CPIO_DATA: contents; CPIO_SYMLINK: target */
        size_t data_len;
        unsigned rdev_major, rdev_minor;
        size_t seq;             /* order of addition: the last addition of a path wins */
        bool implicit;          /* a parent directory nobody asked for */
};

struct cpio_list {
        struct cpio_entry *entries;
        size_t n, allocated;
        size_t seq;
        bool finished;
};

/* Node paths may be given with or without a leading '/'; "." and ".." components are refused.
 * Parent directories are added implicitly (0755) unless given.  All return 0 or -errno and
 * log nothing except on -EINVAL for a bad path. */
int cpio_add_dir(struct cpio_list *l, const char *path, mode_t perm);
int cpio_add_file(struct cpio_list *l, const char *path, mode_t perm, const char *src);
int cpio_add_data(struct cpio_list *l, const char *path, mode_t perm, const void *data, size_t len);
int cpio_add_symlink(struct cpio_list *l, const char *path, const char *target);
int cpio_add_node(struct cpio_list *l, const char *path, mode_t mode, unsigned major, unsigned minor);
/* Host file or directory tree (recursively; modes kept, symlinks stay symlinks, sockets and
 * fifos skipped with a warning) at node path `path` ("" or "/" = the root). Logs its errors. */
int cpio_add_tree(struct cpio_list *l, const char *host, const char *path);

/* Sorts by path (parents before children), keeps the last addition of each path, and drops
 * entries whose parent ended up not being a directory. */
int cpio_finish(struct cpio_list *l);
/* Hashes the finished list: paths, kinds, modes and contents (host files are read). Logs. */
int cpio_hash(const struct cpio_list *l, struct hash128 *h);
/* Writes the finished list as cpio newc (uid/gid 0, mtime 0) to fd. Logs its errors. */
int cpio_write(const struct cpio_list *l, int fd, uint64_t *ret_size);
void cpio_list_done(struct cpio_list *l);

#endif
