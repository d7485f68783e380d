/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsck of a Librarian database (docs/librarian.md "fsck"): checks the database against itself
 * and, optionally, against its FAM file, and with `repair` fixes what it can in one transaction.
 * Returns data (a list of problems); printing is the caller's (fame-librarian's main.c).
 */
#ifndef FAME_LIBRARIAN_FSCK_H
#define FAME_LIBRARIAN_FSCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fsck_options {
        const char *db_path;
        const char *fam_path;           /* NULL: no FAM checks */
        bool repair;
};

struct fsck_problem {
        const char *check;              /* short name of the check, e.g. "book-orphan" (static) */
        char *object;                   /* "shelf 7 \"x\"", "book 0x1400000000", "globals", ... */
        char *message;                  /* what is wrong, one line */
        char *repair;                   /* what --repair did; NULL: nothing (or no --repair) */
        bool repairable;                /* --repair would fix it */
        bool note;                      /* not an inconsistency (ZOMBIE books waiting to be zeroed):
                                         * reported, does not make the check fail */
};

struct fsck_result {
        struct fsck_problem *p;
        size_t n;
        size_t n_problems;              /* entries that are not notes */
        size_t n_repaired;
        pid_t server_pid;               /* a Librarian serving the database, 0 if none */
};

/* 0: checked (and repaired with o->repair); ret lists what was found.  Negative: could not check
 * (*ret_error says why), e.g. -EBUSY for --repair while a Librarian serves the database. */
int librarian_fsck(const struct fsck_options *o, struct fsck_result *ret, char **ret_error);
void fsck_result_done(struct fsck_result *r);

/* The pid of a program that has the database open (a Librarian), 0 if none: the cluster's
 * librarian.pid beside the database, else SQLite's lock on the database's -shm file. */
pid_t fsck_server_pid(const char *db_path);

#endif
