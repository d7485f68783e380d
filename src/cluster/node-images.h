/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What nodes boot from, made before any node starts: the node images (diskless x86_64 and
 * aarch64, Debian; built by src/image, cached), the FAM file, and a Debian node's keys, disk
 * overlay, seed and SSH port.  Also `fame image build`.
 */
#ifndef FAME_NODE_IMAGES_H
#define FAME_NODE_IMAGES_H

#include <stdbool.h>

#include "config.h"
#include "image.h"
#include "plan.h"

/* Creates the FAM file if it does not exist; an existing one must be made for enough nodes. */
int fam_ensure(const struct fame_config *c);
/* The images `fame up` boots: img for x86_64 nodes (debian: the image the nodes' disks were made
 * from while they exist, unless reset), img_arm when a node is aarch64.  adds: diskless nodes'
 * extra files ("HOSTPATH:NODEPATH", NULL-terminated) or NULL. */
int node_images_for_up(const struct fame_config *c, const char *const *adds, bool reset, struct image *img, struct image *img_arm);
/* Keys, overlays (reset: anew), seeds and SSH ports of Debian nodes. */
int debian_nodes_prepare(struct cluster_plan *p, bool reset);

#endif
