/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Debian arm64 node images, host side (design and status: docs/aarch64.md, "Debian arm64 nodes:
 * how the image is made").  The configured tree is stage 1 of arm64 Debian images (image-debian.c).
 */
#ifndef FAME_IMAGE_DEBIAN_ARM_H
#define FAME_IMAGE_DEBIAN_ARM_H

struct debian_arm_params {
        const char *cache_dir;          /* CACHE_DIR: the tree goes to CACHE_DIR/debian/ */
        const char *release;            /* "bookworm" */
        const char *mirror;             /* "" or NULL: the mirror the host's apt uses */
        const char *packages;           /* extra packages, separated by commas or spaces */
        const char *qemu;               /* qemu-system-aarch64, for the first boot */
};

/* The unconfigured arm64 root, made without running any arm64 program on the host:
 * `debootstrap --foreign --arch=arm64 --variant=minbase --include=<a Debian node's packages>`
 * into CACHE_DIR/debian/arm64-unpacked-KEY/root (KEY: release, mirror, packages, recipe).  The tree
 * holds the Essential set unpacked, /debootstrap/ (the second stage a node runs on its first
 * boot) and every package as a .deb in var/cache/apt/archives; dpkg's status is empty.
 * debootstrap is the host's, else Debian's package unpacked into CACHE_DIR/debian/debootstrap
 * (apt-get download + dpkg-deb -x; nothing installed).  Without root it runs in mmdebstrap's
 * user namespace (owners stay root's; no device nodes).  Progress lines while it runs; on failure one error line naming
 * debootstrap's message (the package it could not get) and the log.  Reused when present. */
int image_debian_arm_unpacked(const struct debian_arm_params *p, char **ret_tree);
/* Its KEY, without building anything. */
int image_debian_arm_unpacked_key(const struct debian_arm_params *p, char key[33]);

/* The configured arm64 root, CACHE_DIR/debian/rootfs-arm64-KEY/root (KEY: the unpacked tree's
 * and the first boot's recipe): the unpacked tree above, configured by one aarch64 node on its
 * first boot (image-debian-firstboot.c).  Progress from the node's console; a failure is one
 * line naming the package and the console log, with the node's disk kept beside it.  Reused
 * when present. */
int image_debian_arm_configured(const struct debian_arm_params *p, char **ret_tree);
/* Its KEY, without building anything. */
int image_debian_arm_key(const struct debian_arm_params *p, char key[33]);

#endif
