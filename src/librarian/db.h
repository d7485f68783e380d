/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef FAME_LIBRARIAN_DB_H
#define FAME_LIBRARIAN_DB_H

/* The CREATE statements of a Librarian database. */
extern const char librarian_db_schema[];

#endif
