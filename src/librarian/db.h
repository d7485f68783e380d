/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef FAME_LIBRARIAN_DB_H
#define FAME_LIBRARIAN_DB_H

/* The CREATE statements of a Librarian database. */
extern const char librarian_db_schema[];

/* The name of the SQLite VFS for the server's connection (synchronous=FULL only): the default
 * one with the writes of a WAL gathered into one until its next sync; NULL (the default VFS) if
 * it cannot be set up. */
const char *librarian_db_vfs(void);

#endif
