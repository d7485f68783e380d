/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Node images, the FAM file and Debian nodes' disks (node-images.h), and `fame image build`. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "config-internal.h"
#include "fame.h"
#include "log.h"
#include "macro.h"
#include "node-images.h"
#include "programs.h"
#include "seed.h"
#include "util.h"

int fam_ensure(const struct fame_config *c) {
        struct fame_geometry g;
        struct stat st;
        int r;

        if (stat(c->fam_path, &st) < 0) {
                if (errno != ENOENT)
                        return log_error_errno(-errno, "Failed to look at FAM file '%s': %m", c->fam_path);
                struct fame_create_params p = {
                        .total_size = c->fam_size,
                        .book_size = c->book_size,
                        .node_count = c->nodes,
                        .nodes_per_enclosure = c->nodes_per_enclosure,
                        .enclosures_per_rack = c->enclosures_per_rack,
                        .created = -1,
                };
                r = fame_file_create(c->fam_path, &p, 0, &g);
                if (r < 0)
                        return r;
                log_progress("created FAM %s", c->fam_path);
                return 0;
        }
        r = fame_file_inspect(c->fam_path, &g);
        if (r < 0)
                return r;
        /* A FAM does not grow in place: its geometry places every book, and a larger one would
         * move them.  Say how to start afresh. */
        char have[32], want[32];
        if (g.node_count < c->nodes)
                return log_error_errno(-EINVAL, "FAM '%s' was made for %" PRIu32 " node%s, but nodes = %" PRIu32 "; a FAM does not grow in place: "
                                       "'fame down', remove it (its content is lost) and 'fame up' again, or use another cluster (-c NAME)",
                                       c->fam_path, g.node_count, g.node_count == 1 ? "" : "s", c->nodes);
        if (c->origin[K_FAM_SIZE] && c->fam_size > g.total_size) {
                /* as --fam-size takes it: a power of two in M or G */
                if (c->fam_size % (UINT64_C(1) << 30) == 0)
                        snprintf(want, sizeof want, "%" PRIu64 "G", c->fam_size >> 30);
                else
                        snprintf(want, sizeof want, "%" PRIu64 "M", c->fam_size >> 20);
                return log_error_errno(-EINVAL, "FAM '%s' holds %s, and fam_size = %s asks for more; a FAM does not grow in place: "
                                       "'fame down', remove it (its content is lost) and 'fame up --fam-size %s' again, or use another cluster (-c NAME)",
                                       c->fam_path, format_bytes(g.total_size, have, sizeof have), want, want);
        }
        return 0;
}

/* The node-side fame of arch's nodes (program_node_binary(), program_node_binary_aarch64()),
 * or NULL after one error line. */
static char *require_node_binary(enum fame_arch arch) {
        char *bin = arch == FAME_ARCH_AARCH64 ? program_node_binary_aarch64() : program_node_binary();
        if (!bin && arch == FAME_ARCH_AARCH64)
                log_error("Cannot find the aarch64 node binary (build-aarch64/fame-static beside this fame's build directory); build it with 'make' or set FAME_NODE_BINARY_AARCH64");
        else if (!bin)
                log_error("Cannot find the node-side fame binary (fame-static next to fame); rebuild with 'make' or set FAME_NODE_BINARY");
        return bin;
}

static int ensure_image(const struct fame_config *c, const char *const *adds, struct image *img) {
        _cleanup_free_ char *bin = require_node_binary(FAME_ARCH_X86_64);
        if (!bin)
                return -ENOENT;
        struct image_params p = {
                .kernel = c->kernel && *c->kernel ? c->kernel : NULL,
                .cache_dir = c->cache_dir,
                .fame_static = bin,
                .overlay = c->overlay && *c->overlay ? c->overlay : NULL,
                .adds = adds,
        };
        return image_diskless_ensure(&p, img);
}

/* The diskless image of aarch64 nodes: Debian's arm64 packages and FAM/E's cross-built node
 * programs (docs/aarch64.md). */
static int ensure_image_aarch64(const struct fame_config *c, const char *const *adds, struct image *img) {
        _cleanup_free_ char *bin = require_node_binary(FAME_ARCH_AARCH64), *root = NULL;
        if (!bin)
                return -ENOENT;
        int r = image_arch_root(c->cache_dir, "aarch64", &root);
        if (r < 0)
                return r;
        struct image_params p = {
                .cache_dir = c->cache_dir,
                .fame_static = bin,
                .overlay = c->overlay && *c->overlay ? c->overlay : NULL,
                .adds = adds,
                .root = root,
                .arch = "aarch64",
        };
        return image_diskless_ensure(&p, img);
}

/* The Debian image of arch's nodes; aarch64 ones are configured by an aarch64 node on their
 * first build (docs/aarch64.md). */
static int ensure_debian_image(const struct fame_config *c, enum fame_arch arch, struct image *img) {
        _cleanup_free_ char *bin = require_node_binary(arch);
        if (!bin)
                return -ENOENT;
        struct debian_params p = {
                .cache_dir = c->cache_dir,
                .release = c->release,
                .mirror = c->mirror,
                .packages = c->packages,
                .disk_size = c->disk_size,
                .fame_static = bin,
                .arch = arch_to_string(arch),
                .qemu_aarch64 = c->qemu_aarch64,
        };
        return image_debian_ensure(&p, img);
}

/* Hands the image to the caller, then lets it go. */
static void hand_out(const char *kind, struct image *img, void (*each)(const char *kind, const struct image *img, void *userdata),
                     void *userdata) {
        each(kind, img, userdata);
        image_done(img);
}

int cluster_image_build(const struct fame_config *c, bool diskless, bool debian,
                        void (*each)(const char *kind, const struct image *img, void *userdata), void *userdata) {
        struct image img = { 0 };
        int r;
        if (diskless && config_has_arch(c, FAME_ARCH_X86_64)) {
                r = ensure_image(c, NULL, &img);
                if (r < 0)
                        return r;
                hand_out("diskless", &img, each, userdata);
        }
        if (diskless && config_has_arch(c, FAME_ARCH_AARCH64)) {
                r = ensure_image_aarch64(c, NULL, &img);
                if (r < 0)
                        return r;
                hand_out("diskless", &img, each, userdata);
        }
        for (int a = 0; debian && a < 2; a++) {
                enum fame_arch arch = a ? FAME_ARCH_AARCH64 : FAME_ARCH_X86_64;
                if (!config_has_arch(c, arch))
                        continue;
                r = ensure_debian_image(c, arch, &img);
                if (r < 0)
                        return r;
                hand_out("debian", &img, each, userdata);
        }
        return 0;
}

/* The Debian image for `fame up`: the one the nodes' disks were made from while they exist
 * (so that what users changed in them is kept), else the current one, built if needed. */
static int debian_image_for(const struct fame_config *c, enum fame_arch arch, bool reset, struct image *img) {
        struct cluster_plan probe = { .state_dir = c->state_dir };
        _cleanup_free_ char *recorded = reset ? NULL : seed_recorded_image(&probe, arch);
        bool disks = false;
        for (uint32_t i = 0; i < c->nodes && !disks; i++) {
                if (c->node[i].arch != arch)
                        continue;
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/nodes/node%02" PRIu32 "/disk.qcow2", c->state_dir, i + 1);
                disks = access(path, F_OK) == 0;
        }
        if (recorded && disks) {
                int r = image_debian_load(recorded, img);
                if (r == 0)
                        return 0;
                return log_error_errno(-ENOENT, "The nodes' disks were made from image %s, which is no longer in the cache; 'fame up --reset' gives them new disks from the current image (what was changed in them is lost)",
                                       recorded);
        }
        return ensure_debian_image(c, arch, img);
}

/* Keys, overlays, seeds and ports of Debian nodes. */
int debian_nodes_prepare(struct cluster_plan *p, bool reset) {
        int r = seed_ensure_keys(p);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < p->nodes; i++) {
                struct node_plan *n = &p->node[i];
                r = seed_ensure_overlay(p, n, reset);
                if (r < 0)
                        return r;
                n->ssh_port = (uint16_t) seed_free_port();
                if (!n->ssh_port)
                        return log_error_errno(-EADDRNOTAVAIL, "No free TCP port on 127.0.0.1 for %s's SSH", n->name);
                r = seed_write(p, n);
                if (r < 0)
                        return r;
        }
        return seed_record_image(p);
}


int node_images_for_up(const struct fame_config *c, const char *const *adds, bool reset, struct image *img, struct image *img_arm) {
        int r;

        bool x86 = config_has_arch(c, FAME_ARCH_X86_64), arm = config_has_arch(c, FAME_ARCH_AARCH64);
        if (c->kind == FAME_KIND_DEBIAN) {
                r = x86 ? debian_image_for(c, FAME_ARCH_X86_64, reset, img) : 0;
                return r < 0 || !arm ? r : debian_image_for(c, FAME_ARCH_AARCH64, reset, img_arm);
        }
        r = x86 ? ensure_image(c, adds, img) : 0;
        if (r < 0)
                return r;
        return arm ? ensure_image_aarch64(c, adds, img_arm) : 0;
}
