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
#include <stdint.h>

struct image_params {
        const char *kernel;             /* a vmlinuz (bzImage) path, or NULL: the newest /boot/vmlinuz-* */
        const char *cache_dir;          /* images are kept in CACHE_DIR/images/ */
        const char *fame_static;        /* the static node-side fame binary, copied to /usr/bin/fame */
        const char *overlay;            /* NULL or a directory copied over the initramfs root */
        const char *const *adds;        /* NULL or NULL-terminated "HOSTPATH:NODEPATH" entries (split at
                                         * the last ':'; NODEPATH absolute; files or directories) */
        const char *root;               /* NULL: the host's own kernel, modules, busybox, qemu-ga and
                                         * libraries; else the unpacked packages of another
                                         * architecture (image_arch_root()), whose kernel is an
                                         * uncompressed Image booted as it is (kernel is then unused) */
        const char *arch;               /* "x86_64" or "aarch64": messages and the cache key */
};

/* Another architecture's node packages (Debian's kernel, busybox-static, qemu-guest-agent and its
 * libraries; arch "aarch64" only so far), downloaded with apt-get download and unpacked into
 * CACHE_DIR/arch/ARCH/root once (image-arch.c).  One error line with the fix on failure. */
int image_arch_root(const char *cache_dir, const char *arch, char **ret_root);
/* The newest ROOT/boot/vmlinuz-RELEASE's release; -ENOENT when none. */
int image_arch_release(const char *root, char **ret);

/* The files of /lfs that go with the node binary fame_static: fame-lfs-static and the two
 * libraries every node process preloads (/etc/ld.so.preload, in this order): libfame-mmap.so
 * (mmap of /lfs is FAM) and libfame-pmem.so (libpmem's flushes seen by the checker); and
 * libfame.so.0, for programs built with pkg-config --libs fame. */
struct image_lfs_files {
        char *lfs, *mmap_shim, *pmem_shim, *libfame;    /* paths, malloc'ed */
};
/* The architecture this fame runs on: the one whose node files $FAME_NODE_LFS and the
 * $FAME_*_SHIM overrides name. */
#if defined(__x86_64__)
#define IMAGE_HOST_ARCH "x86_64"
#elif defined(__aarch64__)
#define IMAGE_HOST_ARCH "aarch64"
#else
#define IMAGE_HOST_ARCH "unknown"
#endif
int image_lfs_files(const char *fame_static, bool env_ok, struct image_lfs_files *ret);
void image_lfs_files_done(struct image_lfs_files *f);

/* fame image prune (image-prune.c): removes from cache_dir the images no path in used (the
 * kernels, initrds, image directories and bases the clusters' plans name; NULL-terminated) lies
 * in, the shared kernels only they linked, and every Debian stage-1 tree but the newest.  each()
 * is told of every one (path, what it is, bytes on disk); dry_run removes nothing.  *ret_freed:
 * the bytes. */
typedef void (*image_prune_fn)(const char *path, const char *what, uint64_t bytes, void *userdata);
int image_prune(const char *cache_dir, char *const *used, bool dry_run, image_prune_fn each, void *userdata, uint64_t *ret_freed);

struct image {
        char *kernel;                   /* uncompressed ELF vmlinux to pass to -kernel */
        char *initrd;                   /* the initramfs to pass to -initrd */
        char *dir;                      /* debian: the image's cache directory */
        char *base;                     /* debian: the qcow2 base image (read-only) */
        char *kernel_release;           /* e.g. "6.1.0-56-amd64" */
        char *key;                      /* the cache key (hex) */
        bool built;                     /* false when the cache was used */
};

/* Returns 0 with *ret filled, or a negative errno after logging one line that says what is
 * missing and how to fix it (e.g. "no kernel in /boot: run scripts/install-deps (package
 * linux-image-amd64)"). Shows progress with log_progress(). */
int image_diskless_ensure(const struct image_params *p, struct image *ret);

void image_done(struct image *img);

/* Debian node images (kind=debian; image-debian.c, docs/debian.md). */
struct debian_params {
        const char *cache_dir;          /* CACHE_DIR/debian (stage 1), CACHE_DIR/images (stage 2) */
        const char *release;            /* "bookworm" */
        const char *mirror;             /* "" or NULL: the mirror the host's apt uses */
        const char *packages;           /* extra packages, separated by commas or spaces */
        uint64_t disk_size;             /* ext4 root size */
        const char *fame_static;        /* the node binary; libfame and headers are found next to it */
        const char *arch;               /* the nodes': NULL or "x86_64", "aarch64" (docs/aarch64.md) */
        const char *qemu_aarch64;       /* aarch64: qemu-system-aarch64, for the image's first boot */
};

/* Builds (with progress) or reuses the image; fills kernel, initrd, dir, base, kernel_release,
 * key.  Errors are one logged line (missing tool, unreachable mirror, ...). */
int image_debian_ensure(const struct debian_params *p, struct image *ret);
/* An image already in the cache, by directory: -ENOENT (nothing logged) when incomplete. */
int image_debian_load(const char *dir, struct image *ret);
/* Stage 2's work in a prepared directory (`fame debug populate`, run in mmdebstrap's user
 * namespace when not root); tool output to log_path. */
int image_debian_populate(const char *tree, const char *tmp, uint64_t disk_size, const char *arch, const char *log_path);
/* The mirror apt uses for `release` (apt_dir NULL: /etc/apt). Caller frees; NULL: no memory. */
char *image_debian_host_mirror(const char *release, const char *apt_dir);

/* Exposed for tests. */
/* Finds the xz stream inside a bzImage and writes the ELF it holds to out_path. */
int image_extract_vmlinux(const char *vmlinuz, const char *out_path);
/* The modules (absolute paths, in load order: dependencies first) that the named modules need,
 * from MODDIR/modules.dep.  Names are as in modinfo (virtio_pci, qemu_fw_cfg, ...). Builtins
 * (listed in modules.builtin) are skipped; "?NAME" is optional: left out when the kernel lacks
 * it.  Caller frees with image_strv_free(). */
int image_resolve_modules(const char *moddir, const char *const *names, char ***ret_paths);
/* Frees a NULL-terminated string array; accepts NULL. */
void image_strv_free(char **l);

#endif
