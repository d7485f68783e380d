/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The numbers and names every part of FAM/E agrees on: nodes, the Librarian, LFS.  One place,
 * so that the cluster, the Librarian, its clients and the node programs cannot drift apart.
 * (The FAM format's own limits, such as FAME_MAX_NODES, are public: include/fame/fame.h.)
 */
#ifndef FAME_CONSTANTS_H
#define FAME_CONSTANTS_H

/* The host as nodes see it on their user-mode network; /etc/hosts calls it torms. */
#define FAME_TORMS_ADDR "10.0.2.100"
/* Key share: the 9p mount tag of the host directory, which every node mounts read-only at
 * /share (the diskless init, the Debian image's fame-share.service). */
#define FAME_SHARE_TAG "fame-share"

/* The Librarian's TCP port: nodes reach the cluster's Librarian as torms:9093, and a
 * fame-librarian started without --port listens there. */
#define FAME_LIBRARIAN_PORT 9093
/* The management view served by hand (fame lmp serve): tm-lmp's port */
#define FAME_LMP_PORT 31179
#define FAME_LIBRARIAN_DEFAULT_ADDRESS "torms:9093"
/* A node's virtio-serial port to its Librarian (QEMU's chardev to the Librarian's
 * --node-socket for the node): fame-lfs's own requests take it when it is there (docs/lfs.md). */
#define FAME_LIBRARIAN_VPORT_NAME "org.fame.librarian"
/* names the file of the secret a host program sends the Librarian (lib/librarian-secret.h) */
#define FAME_LIBRARIAN_SECRET_ENV "FAME_LIBRARIAN_SECRET_FILE"
/* The nodes' private segment: node N is FAME_PRIVATE_NET.N. */
#define FAME_PRIVATE_NET "10.11.0"
/* Node ids the Librarian's topology can hold (The Machine: 80 nodes, in tm-librarian too). */
#define FAME_LIBRARIAN_MAX_NODE 80
/* The name prefix tm-librarian's LFS renames a file to when it is unlinked while open: the
 * Librarian makes the books of a shelf renamed so ZOMBIE, to be zeroed (rename_shelf,
 * docs/librarian-protocol.md); `fame librarian bench --lfs-unlink` replays that sequence.
 * FAM/E's own fame-lfs hides such files the FUSE way instead (docs/lfs.md). */
#define FAME_LFS_PENDING_ZERO_PREFIX ".lfs_pending_zero_"

#endif
