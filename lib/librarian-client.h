/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: the raw Librarian client under the public fame_librarian_* / fame_shelf_* API,
 * used by the fame CLI, fame-lfs, the benchmark and the tests (they link libfame statically).
 * Commands are librarian-protocol.h's; every one this code sends has a typed call below. */
#ifndef FAME_LIBRARIAN_CLIENT_H
#define FAME_LIBRARIAN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fame.h"
#include "fame-constants.h"
#include "librarian-protocol.h"
#include "macro.h"

struct json_object;

/*
 * Sends {"command": name, "context": {...}, params...} and waits for the reply, skipping
 * out-of-band messages.  params (borrowed, may be NULL) is an object whose members become the
 * request's parameters.  On success *ret_value (optional) gets a reference to "value" (NULL
 * for null).  An error reply returns -errno (EREMOTEIO when its errno is 0) and keeps its
 * errmsg for fame_librarian_error().  A broken connection is reconnected once, and the
 * request resent if its table entry says it may be (resend ONCE); with a restart wait
 * (librarian_set_restart_wait) an idempotent change (resend RETRY) is sent again until then.
 */
int librarian_call(struct fame_librarian *l, enum librarian_command c, struct json_object *params,
                   struct json_object **ret_value);

/* Convenience for requests built by hand (tests): params from alternating keys and json-c
 * values (consumed), NULL-terminated. */
struct json_object *librarian_params(const char *key, ...);

/*
 * Typed calls: one per command, the parameters in the table's order.  *ret (optional) gets the
 * reply's value as librarian_call() does.  Paths are the Librarian's ("/dir/name").
 */
int librarian_get_fs_stats(struct fame_librarian *l, struct json_object **ret);
int librarian_get_shelf(struct fame_librarian *l, const char *path, struct json_object **ret);
int librarian_create_shelf(struct fame_librarian *l, const char *path, int64_t mode, struct json_object **ret);
int librarian_open_shelf(struct fame_librarian *l, const char *path, struct json_object **ret);
int librarian_close_shelf(struct fame_librarian *l, int64_t id, int64_t open_handle, struct json_object **ret);
int librarian_list_shelves(struct fame_librarian *l, const char *path, struct json_object **ret);
int librarian_list_shelf_books(struct fame_librarian *l, const char *path, struct json_object **ret);
int librarian_resize_shelf(struct fame_librarian *l, const char *path, int64_t id, int64_t size_bytes,
                           bool zero_enabled, struct json_object **ret);
int librarian_rename_shelf(struct fame_librarian *l, const char *path, int64_t id, const char *newpath,
                           struct json_object **ret);
int librarian_destroy_shelf(struct fame_librarian *l, const char *path, struct json_object **ret);
int librarian_get_xattr(struct fame_librarian *l, const char *path, const char *xattr, struct json_object **ret);
int librarian_list_xattrs(struct fame_librarian *l, const char *path, struct json_object **ret);
int librarian_set_xattr(struct fame_librarian *l, const char *path, const char *xattr, const char *value,
                        size_t len, struct json_object **ret);
int librarian_remove_xattr(struct fame_librarian *l, const char *path, const char *xattr, struct json_object **ret);
int librarian_set_am_time(struct fame_librarian *l, const char *path, int64_t atime, int64_t mtime,
                          struct json_object **ret);
int librarian_mkdir(struct fame_librarian *l, const char *path, int64_t mode, struct json_object **ret);
int librarian_rmdir(struct fame_librarian *l, const char *path, struct json_object **ret);
int librarian_symlink(struct fame_librarian *l, const char *path, const char *target, struct json_object **ret);
int librarian_readlink(struct fame_librarian *l, const char *path, struct json_object **ret);
int librarian_update_node_soc_status(struct fame_librarian *l, int64_t status, int64_t cpu_percent,
                                     int64_t rootfs_percent, int64_t network_in, int64_t network_out,
                                     int64_t mem_percent, struct json_object **ret);
int librarian_update_node_mc_status(struct fame_librarian *l, int64_t status, struct json_object **ret);
/* FAM/E's: the shelf record with uid and gid; access(2) (mode R_OK|W_OK|X_OK, 0: exists);
 * chmod (owner or root); chown (root; -1 keeps a value) */
int librarian_fame_stat_shelf(struct fame_librarian *l, const char *path, struct json_object **ret);
int librarian_fame_access(struct fame_librarian *l, const char *path, int64_t mode, struct json_object **ret);
int librarian_fame_chmod(struct fame_librarian *l, const char *path, int64_t mode, struct json_object **ret);
int librarian_fame_chown(struct fame_librarian *l, const char *path, int64_t uid, int64_t gid,
                         struct json_object **ret);

/* close_shelf without waiting for the reply (fame-lfs's release): the request is sent, its reply
 * read and dropped before the next call's.  The connection's requests are answered in order,
 * so anything after it sees the handle closed; if the connection breaks first, the Librarian
 * drops the handle with it.  <0 only if it could not be sent. */
int librarian_close_shelf_nowait(struct fame_librarian *l, int64_t id, int64_t open_handle);
int librarian_call_nowait(struct fame_librarian *l, enum librarian_command c, struct json_object *params);

/* FAM/E's: list_shelves with each entry's uid and gid. */
int librarian_fame_list_dir(struct fame_librarian *l, const char *path, struct json_object **ret);

/* FAM/E's: this connection watches (fame_watch) for changes not made by origin ("": by
 * anyone); from then on it only reads, and hands every
 * notice (librarian-protocol.h: a change by another connection) to fn: the paths (a JSON array
 * of strings) and the command that changed them, valid during the call.  Once the Librarian
 * has said it watches, fn is called with paths NULL: anything before may have been missed.
 * Returns when the connection breaks or is shut down (librarian_shutdown()), with a negative
 * errno; fn returning <0 stops it too. */
typedef int (*librarian_notice_fn)(struct json_object *paths, const char *command, void *userdata);
int librarian_watch(struct fame_librarian *l, const char *origin, librarian_notice_fn fn, void *userdata);
/* Every change this connection makes names origin in its context: the watcher that watches
 * with the same origin (fame-lfs's own) is not told of it. */
void librarian_set_origin(struct fame_librarian *l, const char *origin);
/* Shuts the connection down (another thread's librarian_watch() returns). */
void librarian_shutdown(struct fame_librarian *l);

/* FAM/E's: takes back, on this connection, a handle held before the Librarian restarted.  The
 * client does it by itself on every reconnection for the handles it opened and has not closed. */
int librarian_fame_reclaim_shelf(struct fame_librarian *l, int64_t id, int64_t open_handle, struct json_object **ret);
/* How many open handles the connection holds (and reclaims when it reconnects). */
size_t librarian_held_handles(const struct fame_librarian *l);

/* Connects to "HOST:PORT", "unix:PATH" or "vport:PATH" (a node's virtio-serial port to its
 * Librarian, FAME_LIBRARIAN_VPORT_NAME); on failure err says why.  fame-lfs's relay uses it for its own
 * connections. */
int librarian_dial(const char *address, int *ret_fd, char *err, size_t err_len);
/* All of p on fd: a socket (no SIGPIPE), or a virtio-serial port (non-blocking: a lost host end
 * is -ECONNRESET); 0 or -errno. */
int librarian_send_all(int fd, const char *p, size_t len);
/* Sends "authenticate" with secret and context ctx (consumed) on fd and reads until its reply
 * from the connection's stream in (what follows the reply stays there).  0; the Librarian's
 * -errno with its errmsg in err; or a transport's -errno with err "". */
struct proto_stream;
int librarian_authenticate_fd(int fd, struct proto_stream *in, const char *secret, struct json_object *ctx,
                              char *err, size_t err_len);
/* The address the connection uses ("HOST:PORT", or "unix:PATH" through fame-lfs's relay). */
const char *librarian_address(const struct fame_librarian *l);
uint32_t librarian_node(const struct fame_librarian *l);
/* The secret this connection authenticates with ("" for none): fame-lfs's relay uses it. */
const char *librarian_secret(const struct fame_librarian *l);
/* The command of the last call (for messages). */
const char *librarian_last_command(const struct fame_librarian *l);
/* Overrides uid/gid sent in the context (tests; -1 keeps the process's). */
void librarian_set_credentials(struct fame_librarian *l, int64_t uid, int64_t gid);
/* The caller a daemon acts for (fame-lfs: the FUSE request's uid, gid, pid); pid 0: getpid(). */
void librarian_set_caller(struct fame_librarian *l, int64_t uid, int64_t gid, int64_t pid);
/* A daemon's connection (fame-lfs): for up to seconds after the connection broke, idempotent
 * changes (resend RETRY) are sent again every 200 ms, so that a restarting Librarian is not an
 * error.  0 (the default): not at all. */
void librarian_set_restart_wait(struct fame_librarian *l, double seconds);
/* Whether r (a call's result) means the Librarian was lost rather than that it said no. */
bool librarian_transport_error(int r);
/* The shelf functions (fame_shelf_*) on this connection do not log why they fail: the caller
 * says it, with fame_librarian_error() (fame shelf create). */
void librarian_set_quiet(struct fame_librarian *l, bool quiet);
bool librarian_quiet(const struct fame_librarian *l);
/* Sets what fame_librarian_error() says (a failure found before asking the Librarian). */
void librarian_set_error(struct fame_librarian *l, const char *fmt, ...) _printf_(2, 3);
/* This process's umask, sent in every request's context and applied to created shelves. */
mode_t librarian_umask(const struct fame_librarian *l);

/* Books per interleave group and where each group starts (in books), from get_fs_stats'
 * books_per_IG: IGs in ascending order, each after the previous one (docs/librarian.md). */
void librarian_igstart(struct json_object *stats, uint64_t igbooks[128], uint64_t igstart[128]);
/* The FAM offset of each book of a list_shelf_books reply: book_area + (igstart[IG] + book_num) ×
 * book size.  -ERANGE (book index in *ret_bad) for a book outside the FAM of fam_size bytes. */
int librarian_book_offsets(struct json_object *stats, struct json_object *books, uint64_t book_area, uint64_t fam_size,
                           uint64_t **ret, size_t *ret_n, size_t *ret_bad);

#endif
