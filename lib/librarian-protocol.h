/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian protocol's commands, declared once: tm-librarian's and FAM/E's
 * (docs/librarian-protocol.md).  The Librarian's dispatch and its
 * exact-parameters check, the client's resending after a reconnect, fame-lfs's retries, and the
 * command names every caller sends come from this list.  The framing and encoding are proto.h's.
 *
 * X(name, access, resend, notice, params)
 *   name    the command as sent ({"command": "name", ...}): LIBRARIAN_CMD_name, and the
 *           Librarian's handler cmd_name()
 *   access  READ: the Librarian runs it in a deferred transaction; WRITE: in BEGIN IMMEDIATE
 *   resend  what a client may do when the connection broke after the request was sent (it may
 *           or may not have been carried out):
 *             NEVER  nothing: a second one could change something again (destroy, rename, close)
 *             ONCE   send it again at once on a new connection: it changes nothing but status
 *             RETRY  an idempotent change (twice gives what once gives): a daemon's connection
 *                    sends it again while the Librarian restarts (librarian_set_restart_wait())
 *   notice  NOTICE: when it succeeds, every watching connection but its own (fame_watch) is sent
 *           {"OOBmsg": {"fame_changed": [PATH, ...], "command": NAME}}: the request's "path"
 *           (and "newpath"), normalised; not a watcher whose "origin" (fame_watch) is the
 *           request's context's "fame_origin" (fame-lfs's own changes: the kernel knows them); fame-lfs drops what the kernel cached of them (docs/lfs.md, "Caching");
 *           QUIET: it changes no shelf's name, attributes or extended attributes
 *   params  exactly the request's parameters besides "command" and "context", in the order in
 *           which the Librarian reports a missing one and the client's typed calls take them
 */
#ifndef FAME_LIBRARIAN_PROTOCOL_H
#define FAME_LIBRARIAN_PROTOCOL_H

#define LIBRARIAN_COMMANDS(X)                                                                       \
        X(version,                READ,  ONCE,  QUIET,  ())                                         \
        X(get_fs_stats,           READ,  ONCE,  QUIET,  ())                                         \
        X(create_shelf,           WRITE, RETRY, NOTICE, ("path", "mode"))                           \
        X(get_shelf,              READ,  ONCE,  QUIET,  ("path"))                                   \
        X(open_shelf,             WRITE, RETRY, QUIET,  ("path"))                                   \
        X(close_shelf,            WRITE, NEVER, QUIET,  ("id", "open_handle"))                      \
        X(list_shelves,           READ,  ONCE,  QUIET,  ("path"))                                   \
        X(list_shelf_books,       READ,  ONCE,  QUIET,  ("path"))                                   \
        X(list_open_shelves,      READ,  ONCE,  QUIET,  ())                                         \
        X(resize_shelf,           WRITE, RETRY, NOTICE, ("path", "id", "size_bytes", "zero_enabled"))\
        X(rename_shelf,           WRITE, NEVER, NOTICE, ("path", "id", "newpath"))                  \
        X(destroy_shelf,          WRITE, NEVER, NOTICE, ("path"))                                   \
        X(get_book,               READ,  ONCE,  QUIET,  ("id"))                                     \
        X(get_book_all,           READ,  ONCE,  QUIET,  ())                                         \
        X(get_book_ig,            READ,  ONCE,  QUIET,  ("intlv_group"))                            \
        X(get_book_info_all,      READ,  ONCE,  QUIET,  ("intlv_group"))                            \
        X(get_xattr,              READ,  ONCE,  QUIET,  ("path", "xattr"))                          \
        X(list_xattrs,            READ,  ONCE,  QUIET,  ("path"))                                   \
        X(set_xattr,              WRITE, RETRY, NOTICE, ("path", "xattr", "value"))                 \
        X(remove_xattr,           WRITE, RETRY, NOTICE, ("path", "xattr"))                          \
        X(set_am_time,            WRITE, RETRY, NOTICE, ("path", "atime", "mtime"))                 \
        X(mkdir,                  WRITE, RETRY, NOTICE, ("path", "mode"))                           \
        X(rmdir,                  WRITE, NEVER, NOTICE, ("path"))                                   \
        X(symlink,                WRITE, RETRY, NOTICE, ("path", "target"))                         \
        X(readlink,               READ,  ONCE,  QUIET,  ("path"))                                   \
        X(get_shelf_path,         READ,  ONCE,  QUIET,  ("name", "parent_id"))                      \
        X(send_OOB,               READ,  NEVER, QUIET,  ("msg"))                                    \
        X(update_node_soc_status, WRITE, ONCE,  QUIET,  ("status", "cpu_percent", "rootfs_percent", \
                                                         "network_in", "network_out", "mem_percent"))\
        X(update_node_mc_status,  WRITE, ONCE,  QUIET,  ("status"))                                 \
        X(kill_zombie_books,      READ,  NEVER, QUIET,  ())                                         \
        /* FAM/E's (the original answers ENOSYS) */                                                 \
        X(fame_stat_shelf,        READ,  ONCE,  QUIET,  ("path"))                                   \
        X(fame_access,            READ,  ONCE,  QUIET,  ("path", "mode"))                           \
        X(fame_chmod,             WRITE, RETRY, NOTICE, ("path", "mode"))                           \
        X(fame_chown,             WRITE, RETRY, NOTICE, ("path", "uid", "gid"))                     \
        X(fame_reclaim_shelf,     WRITE, ONCE,  QUIET,  ("id", "open_handle"))                      \
        X(fame_list_dir,          READ,  ONCE,  QUIET,  ("path"))                                   \
        /* from now on this connection hears of every change by others (notices, below) */         \
        X(fame_watch,             READ,  ONCE,  QUIET,  ("origin"))                                 \
        /* the connection proves it may assert a node and a caller (librarian-secret.h) */         \
        X(authenticate,           READ,  ONCE,  QUIET,  ("secret"))

enum librarian_command {
#define LIBRARIAN_CMD_ENUM_(name, access, resend, notice, params) LIBRARIAN_CMD_##name,
        LIBRARIAN_COMMANDS(LIBRARIAN_CMD_ENUM_)
#undef LIBRARIAN_CMD_ENUM_
        LIBRARIAN_N_COMMANDS
};

enum librarian_access { LIBRARIAN_READ, LIBRARIAN_WRITE };
enum librarian_resend { LIBRARIAN_RESEND_NEVER, LIBRARIAN_RESEND_ONCE, LIBRARIAN_RESEND_RETRY };
enum librarian_notice { LIBRARIAN_QUIET, LIBRARIAN_NOTICE };

/* The member of an out-of-band message that carries a notice's paths. */
#define LIBRARIAN_NOTICE_KEY "fame_changed"
/* The member of a request's context naming the watcher that need not hear of its change. */
#define LIBRARIAN_ORIGIN_KEY "fame_origin"
#define LIBRARIAN_ORIGIN_MAX 64

#define LIBRARIAN_MAX_PARAMS 6

struct librarian_command_info {
        const char *name;
        enum librarian_access access;
        enum librarian_resend resend;
        enum librarian_notice notice;
        const char *params[LIBRARIAN_MAX_PARAMS + 1];   /* NULL-terminated */
};

/* Indexed by enum librarian_command. */
extern const struct librarian_command_info librarian_commands[LIBRARIAN_N_COMMANDS];

/* The command spelt name (compared as a C string), or -ENOSYS. */
int librarian_command_from_name(const char *name);

static inline const char *librarian_command_name(enum librarian_command c) {
        return librarian_commands[c].name;
}

#endif
