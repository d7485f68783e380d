/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian's secrets (docs/librarian.md, "Who may say what"): 64 hex digits in a file only
 * its owner may read.  A connection that sends its port's secret (the FAM/E command
 * "authenticate") may then assert a node and a caller's uid, gid and pid; one that has not may
 * only ask "version".  The host's port has one secret (STATE/librarian/secrets/host.secret),
 * every node's port its own (node-ID.secret, ID the Librarian node id), which the node's root
 * reads from fw_cfg (opt/org.fame/secret).  Shared by the Librarian (which makes them) and
 * libfame's client (which sends them).
 */
#ifndef FAME_LIBRARIAN_SECRET_H
#define FAME_LIBRARIAN_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fame-constants.h"

#define LIBRARIAN_SECRET_LEN 64                 /* hex digits: 256 random bits */
#define LIBRARIAN_SECRET_ENV FAME_LIBRARIAN_SECRET_ENV
/* in a node: the node's secret, readable by root only (the kernel's qemu_fw_cfg) */
#define LIBRARIAN_SECRET_FW_CFG "/sys/firmware/qemu_fw_cfg/by_name/opt/org.fame/secret/raw"
/* in a node: fame-lfs's relay for everyone else (it asserts the caller's SO_PEERCRED) */
#define LIBRARIAN_RELAY_SOCKET "/run/fame/librarian.sock"

/* Reads a secret from path: -errno when it cannot be read, -EBADMSG when it is not 64 hex
 * digits (a trailing newline is allowed). */
int librarian_secret_read(const char *path, char out[LIBRARIAN_SECRET_LEN + 1]);
/* Reads path's secret, or makes a new one there (mode 0600, written to a temporary file and
 * linked into place, so a reader never sees half a secret and two makers agree). */
int librarian_secret_ensure(const char *path, char out[LIBRARIAN_SECRET_LEN + 1]);
/* The file names in a secrets directory: host.secret, node-ID.secret. */
int librarian_secret_path(const char *dir, uint32_t node_id, char *buf, size_t len);
/* a == b without leaking through timing where they differ (both NUL-terminated). */
bool librarian_secret_equal(const char *a, const char *b);

#endif
