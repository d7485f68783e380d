/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What makes a Debian node that node (docs/debian.md): SSH keys, the qcow2 overlay, and the
 * seed — a small tar archive the node reads through fw_cfg at every boot (its setup service is
 * in src/image/debian-files.c).
 *
 *   STATE/ssh/id_ed25519[.pub]        the cluster's login key (`fame ssh` uses it)
 *   STATE/ssh/node_key[.pub]          the key nodes use to SSH to each other
 *   STATE/ssh/known_hosts             every node's host key, as nodeNN (HostKeyAlias)
 *   STATE/nodes/nodeNN/ssh_host_ed25519_key[.pub], machine-id, disk.qcow2, seed.tar
 *
 * Keys and machine-ids are made once and kept: a node keeps its identity across `fame up`,
 * `fame down` and `fame up --reset`.
 */
#ifndef FAME_SEED_H
#define FAME_SEED_H

#include <stdbool.h>

#include "plan.h"

/* Makes the cluster keys and every node's host key and machine-id (kept when present), and
 * fills n->machine_id.  Needs ssh-keygen (package openssh-client). */
int seed_ensure_keys(struct cluster_plan *p);

/* Makes the node's overlay of p->base (aarch64 nodes: p->base_aarch64) unless it exists (reset: always anew).  Returns 1 when it
 * was made, 0 when kept, or -errno (logged). */
int seed_ensure_overlay(const struct cluster_plan *p, const struct node_plan *n, bool reset);

/* Writes n->seed (atomically) from the keys and the plan. */
int seed_write(const struct cluster_plan *p, const struct node_plan *n);

/* The image an existing cluster's overlays of arch were made from (STATE/image, for aarch64
 * nodes STATE/image-aarch64), or NULL; recording writes those of the plan's images. */
char *seed_recorded_image(const struct cluster_plan *p, enum fame_arch arch);
int seed_record_image(const struct cluster_plan *p);

/* A free TCP port on 127.0.0.1 (bound and released); 0 when none. */
unsigned seed_free_port(void);

/* Paths `fame ssh` needs: the login key and the known_hosts file. Caller frees. */
char *seed_login_key(const char *state_dir);
char *seed_known_hosts(const char *state_dir);

/* Minimal ustar writer (exposed for tests): regular files and directories, owner 0:0. */
int tar_add(int fd, const char *name, unsigned mode, const void *data, size_t len);
int tar_end(int fd);

#endif
