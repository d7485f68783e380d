/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef FAME_UTIL_H
#define FAME_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>

/* For a daemon's poll loop: SIGTERM and SIGINT set *flag, and are blocked except inside a
 * ppoll() given *ret_orig, so no stop request falls between the check of *flag and the wait.
 * SIGPIPE is ignored (a peer that went away is an EPIPE). */
void stop_signals_setup(volatile sig_atomic_t *flag, sigset_t *ret_orig);

/* "1G", "512M", "8MiB", "4096", "0x1000": K/M/G/T/P are powers of 1024. */
int parse_size(const char *s, uint64_t *ret);
/* Decimal, 1..max. */
int parse_uint32(const char *s, uint32_t min, uint32_t max, uint32_t *ret);
/* "8 MiB", "1 GiB", "3.5 GiB", "4096 B" */
const char *format_bytes(uint64_t v, char *buf, size_t len);
/* The same in the compact form parse_size() reads back: "8M", "1G", "4097". */
const char *format_size_compact(uint64_t v, char *buf, size_t len);

/* write(2) until everything is written; retries EINTR.  0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* mkdir -p: path and its missing parents (mode for each new one); 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* A whole file (read until EOF: sysfs files report no size), NUL-terminated, its length in
 * *ret_len (may be NULL); NULL with errno set (EFBIG beyond max bytes). */
char *read_file(const char *path, size_t max, size_t *ret_len);
/* Writes PATH.tmp with mode and renames it over path: readers see the old or the new file,
 * and the old inode (perhaps hard-linked elsewhere) is never written.  0 or -errno. */
int write_file_atomic(const char *path, mode_t mode, const void *data, size_t len);

/* Monotonic clock in seconds. */
double now_seconds(void);

/* A formatted string (malloc'ed), or NULL when out of memory. */
char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* s with ',' doubled, as QEMU's options (KEY=VALUE,...) want it: a path with a comma in an
 * option string would otherwise end the value there (caller frees; NULL when out of memory). */
char *qemu_opt_escaped(const char *s);
char *vstrf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Replaces *ret (when ret is not NULL) by a formatted message, for ret_error outputs; returns 0. */
int set_message(char **ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The directory part of path ("." when it has none), malloc'ed; NULL when out of memory. */
char *path_dirname(const char *path);
/* Whether process pid runs with needle in its command line (arguments joined by spaces); a
 * zombie's is empty. */
bool process_cmdline_has(pid_t pid, const char *needle);

/*
 * A SQLite database in WAL mode is three files: PATH, PATH-wal (commits not yet copied into PATH)
 * and PATH-shm (an index of the -wal).  They are moved and removed together, or a stale -wal is
 * replayed into another database of that name and the moved copy loses its last commits.
 * sqlite_files_rename(): from's -wal to to's, then from to to; to's old -wal/-shm and from's
 * -shm removed (SQLite rebuilds it).  sqlite_files_unlink_journal(): PATH-wal and PATH-shm.
 * Neither may run while a program has the database open.  0 or -errno.
 */
int sqlite_files_rename(const char *from, const char *to);
int sqlite_files_unlink_journal(const char *path);

/* FNV-1a 64 of n bytes, and a xorshift64 step: test patterns and their checksums. */
uint64_t fnv1a64(const void *p, uint64_t n);
uint64_t xorshift64(uint64_t *state);

#endif
