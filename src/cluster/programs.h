/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where FAM/E's other programs are: this fame (QEMU's guestfwd relays and the switch run it),
 * the node binaries that go into node images, fame-librarian and the checker's QEMU plugin —
 * beside this fame in the build tree, or installed in PREFIX/libexec/fame; an environment
 * variable wins.
 */
#ifndef FAME_PROGRAMS_H
#define FAME_PROGRAMS_H

/* This fame (or "fame" when /proc/self/exe cannot be read); NULL when out of memory. */
char *program_self(void);
/* The node-side fame-static for x86_64 nodes: $FAME_NODE_BINARY, or beside this fame; NULL when
 * not found (nothing logged). */
char *program_node_binary(void);
/* The aarch64 node binary: $FAME_NODE_BINARY_AARCH64, else the cross build beside this fame's
 * build directory (build/fame → build-aarch64/fame-static, which `make` builds), else
 * PREFIX/libexec/fame/aarch64/fame-static; NULL when not found (nothing logged). */
char *program_node_binary_aarch64(void);

/* fame-librarian: next to this fame, or PREFIX/libexec/fame, or $FAME_LIBRARIAN_BINARY; NULL if
 * not found. */
char *cluster_librarian_binary(void);
/* fame-lfs for the host (`fame bench lfs`): next to this fame (build tree), or PREFIX/sbin, or
 * $FAME_LFS_BINARY; NULL if not found. */
char *program_lfs_binary(void);

/* The checker's QEMU plugin (fame up --check): $FAME_CHECK_PLUGIN, else src/check/fame-check.so
 * in the build tree of this fame, else PREFIX/libexec/fame/fame-check.so.  0 and its path in
 * *ret; -ENOENT (nothing logged) and in *ret where it should have been ($FAME_CHECK_PLUGIN or
 * the build tree's path), or -ENOMEM.  The caller frees *ret either way. */
int program_check_plugin(char **ret);

#endif
