/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs's relay (docs/librarian.md, "Who may say what"): a unix socket through which a
 * node's unprivileged processes reach the Librarian as themselves.  Only the node's root may
 * read the node's secret, so only root can assert a uid on the node's Librarian port; everyone
 * else (libfame finds the socket when the secret is not readable) connects here, and the relay
 * writes the caller's uid, gid and pid, as the kernel reports them (SO_PEERCRED), into every
 * request's context before passing it on.  Each local connection gets its own Librarian
 * connection, so the shelves it opens are its own and close when it goes.
 */
#ifndef FAME_LFS_RELAY_H
#define FAME_LFS_RELAY_H

struct relay;

/* Listens on path (mode 0666; its directory is made) for relaying to the Librarian at address
 * ("HOST:PORT"), authenticating each connection with secret ("" for none).  Callers may connect
 * from now on (they wait in the backlog); relay_run() starts serving them — after a daemon's
 * fork, since threads do not survive it. */
int relay_listen(const char *path, const char *address, const char *secret, struct relay **ret);
int relay_run(struct relay *r);
/* Stops accepting, closes every relayed connection, removes the socket; NULL is fine. */
void relay_stop(struct relay *r);

#endif
