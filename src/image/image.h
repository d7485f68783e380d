/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Diskless node image: the host's Debian kernel (booted as an uncompressed ELF vmlinux through
 * PVH, which is ~2x faster to boot under TCG than the xz-compressed vmlinuz) and an initramfs
 * (uncompressed cpio "newc") with busybox-static, the kernel modules the node needs (resolved
 * with their dependencies from modules.dep of that exact kernel), qemu-ga with its shared
 * libraries, FAM/E's static node-side `fame`, and the user's files.
 *
 * Built on demand, cached under CACHE_DIR/images/KEY/ where KEY is a hash of every input
 * (kernel file, modules, busybox, qemu-ga and its libraries, the fame binary, the init script,
 * the overlay directory's and added files' paths, sizes, modes and contents): an unchanged
 * input set reuses the cached files; any change builds a new image.  Writes go to a temporary
 * directory renamed into place, so a cache entry is never half-written.
 */
#ifndef FAME_IMAGE_H
#define FAME_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

struct image_params {
        const char *kernel;             /* a vmlinuz (bzImage) path, or NULL: the newest /boot/vmlinuz-* */
        const char *cache_dir;          /* images are kept in CACHE_DIR/images/ */
        const char *fame_static;        /* the static node-side fame binary, copied to /usr/bin/fame */
        const char *overlay;            /* NULL or a directory copied over the initramfs root */
        const char *const *adds;        /* NULL or NULL-terminated "HOSTPATH:NODEPATH" entries (split at
                                         * the last ':'; NODEPATH absolute; files or directories) */
};

struct image {
        char *kernel;                   /* uncompressed ELF vmlinux to pass to -kernel */
        char *initrd;                   /* the initramfs to pass to -initrd */
        char *kernel_release;           /* e.g. "6.1.0-56-amd64" */
        char *key;                      /* the cache key (hex) */
        bool built;                     /* false when the cache was used */
};

/* Returns 0 with *ret filled, or a negative errno after logging one line that says what is
 * missing and how to fix it (e.g. "no kernel in /boot: run scripts/install-deps (package
 * linux-image-amd64)"). Shows progress with log_progress(). */
int image_diskless_ensure(const struct image_params *p, struct image *ret);

void image_done(struct image *img);

/* Exposed for tests. */
/* Finds the xz stream inside a bzImage and writes the ELF it holds to out_path. */
int image_extract_vmlinux(const char *vmlinuz, const char *out_path);
/* The modules (absolute paths, in load order: dependencies first) that the named modules need,
 * from MODDIR/modules.dep.  Names are as in modinfo (virtio_pci, qemu_fw_cfg, ...). Builtins
 * (listed in modules.builtin) are skipped.  Caller frees with image_strv_free(). */
int image_resolve_modules(const char *moddir, const char *const *names, char ***ret_paths);
/* Frees a NULL-terminated string array; accepts NULL. */
void image_strv_free(char **l);

#endif
