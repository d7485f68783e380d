/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef FAME_LIBRARIAN_DB_H
#define FAME_LIBRARIAN_DB_H

#include <sqlite3.h>
#include <stdbool.h>

/* The CREATE statements of a Librarian database. */
extern const char librarian_db_schema[];

/* The name of the SQLite VFS for the server's connection (synchronous=FULL only): the default
 * one with the writes of a WAL gathered into one until its next sync; NULL (the default VFS) if
 * it cannot be set up. */
const char *librarian_db_vfs(void);

/* Group sync on a connection opened with that VFS: a commit's sync of the WAL is deferred until
 * librarian_db_sync(), which the server calls before it sends any reply, so that one fdatasync
 * makes every commit of a round durable (each request still its own transaction).  Off again:
 * a pending sync is made first.  -EOPNOTSUPP on another VFS. */
int librarian_db_group_sync(sqlite3 *db, bool on);
bool librarian_db_sync_pending(sqlite3 *db);
/* Makes the deferred syncs: 0, or -EIO (then what was committed since the last sync may not
 * survive a power loss). */
int librarian_db_sync(sqlite3 *db);
/* The commit just made need not reach the disk before its reply (it records open handles or a
 * node's status, which a power loss makes stale anyway): its deferred sync is left to the next
 * commit that must be durable, whose fdatasync covers it (the WAL is written in order).  Only
 * when no earlier commit's sync is pending (the caller checks librarian_db_sync_pending()
 * before the transaction). */
void librarian_db_sync_later(sqlite3 *db);
/* Whether commits were made since the last sync; librarian_db_sync_now() makes it whatever
 * was deferred (0 or -EIO). */
bool librarian_db_unsynced(sqlite3 *db);
int librarian_db_sync_now(sqlite3 *db);

#endif
