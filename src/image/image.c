/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * image_diskless_ensure(): gathers the inputs of a diskless node image (kernel, modules,
 * busybox, qemu-ga and its libraries, the node-side fame, the scripts, the user's overlay and
 * added files) into an initramfs entry list, hashes all of it into the cache key, and builds
 * CACHE_DIR/images/KEY/{vmlinux,initramfs.cpio} unless it is already there.
 *
 * The vmlinux depends on the kernel alone, so it is also kept as CACHE_DIR/images/
 * vmlinux-KERNELHASH and hard-linked into each image: a changed overlay does not decompress
 * the kernel again.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "image-internal.h"
#include "image-scripts.h"
#include "log.h"
#include "macro.h"
#include "spawn.h"
#include "util.h"

/* Bump when the image layout or the way inputs are turned into it changes (the scripts and
 * every file's contents are hashed anyway). */
#define IMAGE_FORMAT_VERSION 1

static const char *const node_modules[] = {
        "virtio_pci",           /* the PCI transport of every virtio device */
        "virtio_console",       /* virtio-serial: qemu-ga's channel */
        "virtio_net",           /* user-mode networking */
        "qemu_fw_cfg",          /* node identity: /sys/firmware/qemu_fw_cfg */
        "fuse",                 /* /lfs (fame-lfs) */
        /* /share (key share): 9p over virtio; 9p.ko needs 9pnet, netfs and fscache, modules.dep
         * says so.  Optional ('?'): a kernel= without 9p boots, with no /share. */
        "?9pnet_virtio",
        "?9p",
        NULL,
};

static const char *const busybox_paths[] = { "/bin/busybox", "/usr/bin/busybox", NULL };
static const char *const qemu_ga_paths[] = { "/usr/bin/qemu-ga", "/usr/sbin/qemu-ga", NULL };

static size_t strv_length(char **l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

static const char *first_existing(const char *const *paths) {
        for (const char *const *p = paths; *p; p++)
                if (access(*p, X_OK) == 0)
                        return *p;
        return NULL;
}

/* The newest /boot/vmlinuz-* by version order. */
static int find_boot_kernel(char **ret) {
        _cleanup_free_ char *best = NULL;
        DIR *d = opendir("/boot");
        if (!d)
                return -ENOENT;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, "vmlinuz-", 8) != 0 || !de->d_name[8])
                        continue;
                if (!best || strverscmp(de->d_name, best) > 0) {
                        free(best);
                        best = strdup(de->d_name);
                        if (!best) {
                                closedir(d);
                                return -ENOMEM;
                        }
                }
        }
        closedir(d);
        if (!best)
                return -ENOENT;
        if (asprintf(ret, "/boot/%s", best) < 0)
                return -ENOMEM;
        return 0;
}

/* 1 if the ELF file has a PT_INTERP (is dynamically linked), 0 if not, -errno. */
static int elf_is_dynamic(const char *path) {
        Elf64_Ehdr eh;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (pread(fd, &eh, sizeof eh, 0) != (ssize_t) sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
            eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
                return -ENOEXEC;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                Elf64_Phdr ph;
                if (pread(fd, &ph, sizeof ph, (off_t) (eh.e_phoff + i * sizeof ph)) != (ssize_t) sizeof ph)
                        return -ENOEXEC;
                if (ph.p_type == PT_INTERP)
                        return 1;
        }
        return 0;
}

/* The shared libraries and the loader `ldd BINARY` lists, at the paths it shows them. */
static int ldd_libraries(const char *binary, char ***ret) {
        _cleanup_cmd_ struct cmd *c = cmd_new("ldd");
        _cleanup_free_ char *out = NULL, *cmdline = NULL;
        char **libs = NULL;
        size_t n = 0;
        int r;

        if (!c)
                return log_error_errno(-ENOMEM, "Out of memory");
        cmd_arg(c, binary);
        r = cmd_run(c, &out);
        if (r < 0)
                return log_error_errno(r, "Cannot run ldd (package libc-bin): %m");
        if (r == 127)
                return log_error_errno(-ENOENT, "Cannot run ldd: install libc-bin");
        if (r != 0) {
                cmdline = cmd_to_string(c);
                return log_error_errno(-EIO, "'%s' failed (exit status %d)", cmdline ? cmdline : "ldd", r);
        }

        /* "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "\t/lib64/ld-linux-x86-64.so.2 (0x...)",
         * "\tlinux-vdso.so.1 (0x...)" (in the kernel: skipped), "\tlibfoo.so => not found" */
        for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *arrow = strstr(line, "=> ");
                char *path = arrow ? arrow + 3 : line + strspn(line, " \t");
                if (!strncmp(path, "not found", 9)) {
                        *strstr(line, "=>") = 0;
                        r = log_error_errno(-ENOENT, "'%s' needs%s, which is not installed", binary, line);
                        goto fail;
                }
                if (path[0] != '/')
                        continue;
                path[strcspn(path, " \t")] = 0;
                char **nl = realloc(libs, (n + 2) * sizeof *nl);
                if (!nl) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        goto fail;
                }
                libs = nl;
                if (!(libs[n] = strdup(path))) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        goto fail;
                }
                libs[++n] = NULL;
        }
        if (!libs && !(libs = calloc(1, sizeof *libs)))
                return log_error_errno(-ENOMEM, "Out of memory");
        *ret = libs;
        return 0;
fail:
        image_strv_free(libs);
        return r;
}

static void rm_tmpdir(const char *dir) {
        char p[PATH_MAX];
        DIR *d = opendir(dir);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d)))
                        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                                (void) unlink(p);
                        }
                closedir(d);
        }
        (void) rmdir(dir);
}

static bool file_exists(const char *dir, const char *name) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, name);
        return access(p, R_OK) == 0;
}

/* Everything that goes into the initramfs, in order of precedence (later wins). */
/* Every shared library (and the loader) of another architecture's unpacked packages, at the
 * same paths inside the node; symbolic links stay links. */
static int add_arch_libraries(struct cpio_list *l, const char *root) {
        static const char *const dirs[] = { "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", NULL };
        int r;
        for (const char *const *d = dirs; *d; d++) {
                _cleanup_free_ char *dir = NULL;
                if (asprintf(&dir, "%s/%s", root, *d) < 0)
                        return -ENOMEM;
                DIR *dd = opendir(dir);
                struct dirent *de;
                if (!dd)
                        continue;
                while ((de = readdir(dd))) {
                        if (!strstr(de->d_name, ".so") || (strcmp(*d, "lib") == 0 && strncmp(de->d_name, "ld-linux", 8) != 0))
                                continue;
                        _cleanup_free_ char *host = NULL, *node = NULL;
                        struct stat st;
                        if (asprintf(&host, "%s/%s", dir, de->d_name) < 0 || asprintf(&node, "%s/%s", *d, de->d_name) < 0) {
                                closedir(dd);
                                return -ENOMEM;
                        }
                        if (lstat(host, &st) < 0)
                                continue;
                        if (S_ISLNK(st.st_mode)) {
                                char target[PATH_MAX];
                                ssize_t k = readlink(host, target, sizeof target - 1);
                                if (k <= 0)
                                        continue;
                                target[k] = 0;
                                r = cpio_add_symlink(l, node, target);
                        } else if (S_ISREG(st.st_mode))
                                r = cpio_add_file(l, node, st.st_mode & 0777, host);
                        else
                                continue;
                        if (r < 0) {
                                closedir(dd);
                                return r;
                        }
                }
                closedir(dd);
        }
        return 0;
}

static int collect(const struct image_params *p, const char *release, const char *busybox, const char *qemu_ga,
                   char **modules, char **libs, struct cpio_list *l) {
        int r;

        static const struct { const char *path; mode_t mode; } dirs[] = {
                { "bin", 0755 }, { "sbin", 0755 }, { "usr/bin", 0755 }, { "usr/sbin", 0755 },
                { "etc", 0755 }, { "etc/fame", 0755 }, { "root", 0700 }, { "proc", 0555 },
                { "sys", 0555 }, { "dev", 0755 }, { "tmp", 01777 }, { "run", 0755 },
                { "var", 0755 }, { "var/lib", 0755 }, { "var/log", 0755 }, { "lib", 0755 },
                { "lib/modules", 0755 },
        };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                if ((r = cpio_add_dir(l, dirs[i].path, dirs[i].mode)) < 0)
                        return r;
        if ((r = cpio_add_node(l, "dev/console", S_IFCHR | 0600, 5, 1)) < 0 ||
            (r = cpio_add_symlink(l, "var/run", "../run")) < 0 ||
            (r = cpio_add_file(l, "bin/busybox", 0755, busybox)) < 0 ||
            (r = cpio_add_symlink(l, "bin/sh", "busybox")) < 0 ||
            (r = cpio_add_data(l, "init", 0755, image_init_script, strlen(image_init_script))) < 0 ||
            (r = cpio_add_data(l, "sbin/shutdown", 0755, image_shutdown_script, strlen(image_shutdown_script))) < 0 ||
            (r = cpio_add_data(l, "etc/passwd", 0644, image_passwd, strlen(image_passwd))) < 0 ||
            (r = cpio_add_data(l, "etc/group", 0644, image_group, strlen(image_group))) < 0 ||
            (r = cpio_add_data(l, "etc/nsswitch.conf", 0644, image_nsswitch, strlen(image_nsswitch))) < 0 ||
            (r = cpio_add_data(l, "etc/resolv.conf", 0644, image_resolv_conf, strlen(image_resolv_conf))) < 0 ||
            (r = cpio_add_file(l, "usr/bin/qemu-ga", 0755, qemu_ga)) < 0 ||
            (r = cpio_add_symlink(l, "usr/sbin/qemu-ga", "../bin/qemu-ga")) < 0 ||
            (r = cpio_add_file(l, "usr/bin/fame", 0755, p->fame_static)) < 0)
                return r;

        /* /lfs: fame-lfs, and the libraries every process preloads: mmap of /lfs files is FAM
         * (libfame-mmap.so), libpmem's flushes are seen by the checker (libfame-pmem.so) */
        _cleanup_(image_lfs_files_done) struct image_lfs_files files = { 0 };
        r = image_lfs_files(p->fame_static, !p->arch || strcmp(p->arch, IMAGE_HOST_ARCH) == 0, &files);
        if (r < 0)
                return r;
        static const char preload[] = "/usr/lib/fame/libfame-mmap.so\n/usr/lib/fame/libfame-pmem.so\n";
        if ((r = cpio_add_dir(l, "lfs", 0755)) < 0 ||
            (r = cpio_add_dir(l, "usr/lib", 0755)) < 0 ||
            (r = cpio_add_dir(l, "usr/lib/fame", 0755)) < 0 ||
            (r = cpio_add_file(l, "usr/sbin/fame-lfs", 0755, files.lfs)) < 0 ||
            (r = cpio_add_file(l, "usr/lib/fame/libfame-mmap.so", 0644, files.mmap_shim)) < 0 ||
            (r = cpio_add_file(l, "usr/lib/fame/libfame-pmem.so", 0644, files.pmem_shim)) < 0 ||
            (r = cpio_add_data(l, "etc/ld.so.preload", 0644, preload, strlen(preload))) < 0)
                return r;
        /* libfame for programs built with pkg-config --libs fame: they run after a plain fame cp
         * (its json-c: ldd's on the host, the arm64 package for aarch64 nodes) */
        if ((r = cpio_add_file(l, p->root ? "lib/aarch64-linux-gnu/libfame.so.0" : "lib/x86_64-linux-gnu/libfame.so.0", 0644,
                               files.libfame)) < 0)
                return r;
        if (!p->root) {
                char **fame_libs = NULL;
                if ((r = ldd_libraries(files.libfame, &fame_libs)) < 0)
                        return r;
                for (char **fl = fame_libs; *fl && r >= 0; fl++) {
                        bool have = false;
                        for (char **lib = libs; *lib && !have; lib++)
                                have = strcmp(*lib, *fl) == 0;
                        struct stat st;
                        if (!have && stat(*fl, &st) == 0)
                                r = cpio_add_file(l, *fl, st.st_mode & 0777, *fl);
                }
                image_strv_free(fame_libs);
                if (r < 0)
                        return r;
        }

        /* shared libraries at the paths ldd shows (the loader's own search path); another
         * architecture's: every library its packages hold, at their paths in the packages */
        for (char **lib = libs; *lib; lib++) {
                struct stat st;
                if (stat(*lib, &st) < 0)
                        return log_error_errno(-errno, "Cannot read '%s' (needed by %s): %m", *lib, qemu_ga);
                if ((r = cpio_add_file(l, *lib, st.st_mode & 0777, *lib)) < 0)
                        return r;
        }
        if (p->root && (r = add_arch_libraries(l, p->root)) < 0)
                return r;

        /* modules under /lib/modules/RELEASE/, and their load order */
        _cleanup_free_ char *list = NULL;
        size_t list_len = 0;
        FILE *f = open_memstream(&list, &list_len);
        if (!f)
                return log_error_errno(-ENOMEM, "Out of memory");
        size_t skip = p->root ? strlen(p->root) : 0;
        for (char **m = modules; *m; m++) {
                /* resolved from [ROOT]/lib/modules/RELEASE/modules.dep: /lib/modules/... inside the node */
                if ((r = cpio_add_file(l, *m + skip, 0644, *m)) < 0) {
                        fclose(f);
                        return r;
                }
                fprintf(f, "%s\n", *m + skip);
        }
        if (fclose(f) != 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        if ((r = cpio_add_data(l, "etc/fame/modules", 0644, list, list_len)) < 0 ||
            (r = cpio_add_data(l, "etc/fame/kernel-release", 0644, release, strlen(release))) < 0)
                return r;

        /* the user's files, last: they may replace anything above */
        if (p->overlay) {
                struct stat st;
                if (stat(p->overlay, &st) < 0)
                        return log_error_errno(-errno, "Overlay directory '%s' (overlay=): %m", p->overlay);
                if (!S_ISDIR(st.st_mode))
                        return log_error_errno(-ENOTDIR, "Overlay '%s' (overlay=) is not a directory", p->overlay);
                if ((r = cpio_add_tree(l, p->overlay, "")) < 0)
                        return r;
        }
        for (const char *const *a = p->adds; a && *a; a++) {
                const char *colon = strrchr(*a, ':');
                if (!colon || colon == *a || !colon[1])
                        return log_error_errno(-EINVAL, "Invalid file to add '%s': expected HOSTPATH:NODEPATH", *a);
                if (colon[1] != '/')
                        return log_error_errno(-EINVAL, "Invalid file to add '%s': the node path '%s' must be absolute", *a, colon + 1);
                _cleanup_free_ char *host = strndup(*a, (size_t) (colon - *a));
                if (!host)
                        return -ENOMEM;
                if (access(host, F_OK) < 0)
                        return log_error_errno(-errno, "File to add '%s' (from '%s'): %m", host, *a);
                const char *np = colon + 1;
                while (*np == '/')
                        np++;
                if (!*np)
                        return log_error_errno(-EINVAL, "Invalid file to add '%s': the node path is the root; use overlay= for that", *a);
                if ((r = cpio_add_tree(l, host, colon + 1)) < 0)
                        return r;
        }
        return cpio_finish(l);
}

/* A plain copy of src to dst (new). */
static int copy_file_to(const char *src, const char *dst) {
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        char buf[65536];
        ssize_t k;
        if (in < 0 || out < 0)
                return log_error_errno(-errno, "Cannot copy '%s' to '%s': %m", src, dst);
        while ((k = read(in, buf, sizeof buf)) > 0)
                if (write_all(out, buf, (size_t) k) < 0)
                        return log_error_errno(-errno, "Cannot write '%s': %m", dst);
        return k < 0 ? log_error_errno(-errno, "Cannot read '%s': %m", src) : 0;
}

/* CACHE_DIR/images/vmlinux-KHASH, extracted when missing. */
static int ensure_vmlinux(const char *images, const char *kernel, const char *khash, char **ret) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/vmlinux-%s", images, khash) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(path, R_OK) < 0) {
                log_progress("building node image: extracting vmlinux from %s", kernel);
                int r = image_extract_vmlinux(kernel, path);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(path);
        return 0;
}

/* The kernel file in an image: the ELF vmlinux extracted from an x86 bzImage, or another
 * architecture's uncompressed Image as it is. */
static const char *kernel_file(bool raw) {
        return raw ? "Image" : "vmlinux";
}

static int build(const char *images, const char *key, const char *kernel, const char *khash, bool raw,
                 const struct cpio_list *l, const char *final) {
        _cleanup_free_ char *tmp = NULL, *vmlinux = NULL, *dst = NULL, *initrd = NULL;
        _cleanup_close_ int fd = -1;
        double t0 = now_seconds();
        uint64_t size = 0;
        int r;

        if (raw)
                vmlinux = strdup(kernel);
        else {
                r = ensure_vmlinux(images, kernel, khash, &vmlinux);
                if (r < 0)
                        return r;
        }
        if (!vmlinux)
                return log_error_errno(-ENOMEM, "Out of memory");

        if (asprintf(&tmp, "%s/.tmp-%s-XXXXXX", images, key) < 0) {
                tmp = NULL;
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        if (!mkdtemp(tmp))
                return log_error_errno(-errno, "Cannot create a directory in '%s': %m", images);
        if (asprintf(&dst, "%s/%s", tmp, kernel_file(raw)) < 0 || asprintf(&initrd, "%s/initramfs.cpio", tmp) < 0) {
                dst = initrd = NULL;    /* may leak one on this path; out of memory anyway */
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto fail;
        }
        if (link(vmlinux, dst) < 0) {
                /* another file system or no hard links: extract (or copy) again */
                r = raw ? copy_file_to(vmlinux, dst) : image_extract_vmlinux(kernel, dst);
                if (r < 0)
                        goto fail;
        }

        log_progress("building node image: initramfs (%zu entries)", l->n);
        fd = open(initrd, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
                r = log_error_errno(-errno, "Cannot create '%s': %m", initrd);
                goto fail;
        }
        r = cpio_write(l, fd, &size);
        if (r < 0)
                goto fail;
        if (fsync(fd) < 0) {
                r = log_error_errno(-errno, "Cannot write '%s': %m", initrd);
                goto fail;
        }

        if (chmod(tmp, 0755) < 0) {
                r = log_error_errno(-errno, "Cannot change the mode of '%s': %m", tmp);
                goto fail;
        }
        if (rename(tmp, final) < 0) {
                r = -errno;
                if ((r == -EEXIST || r == -ENOTEMPTY) && file_exists(final, kernel_file(raw)) && file_exists(final, "initramfs.cpio")) {
                        /* someone else built the same image meanwhile */
                        rm_tmpdir(tmp);
                        return 0;
                }
                log_error_errno(r, "Cannot rename '%s' to '%s': %m", tmp, final);
                goto fail;
        }
        char sz[32];
        log_progress("building node image: done in %.1fs (initramfs %s), %s", now_seconds() - t0,
                     format_bytes(size, sz, sizeof sz), final);
        return 0;
fail:
        rm_tmpdir(tmp);
        return r;
}

int image_diskless_ensure(const struct image_params *p, struct image *ret) {
        _cleanup_free_ char *kernel = NULL, *release = NULL, *moddir = NULL, *images = NULL, *final = NULL;
        _cleanup_(cpio_list_done) struct cpio_list l = { 0 };
        char **modules = NULL, **libs = NULL;
        struct hash128 h, kh;
        char key[33], khash[33];
        const char *busybox, *qemu_ga;
        int r;

        if (!p || !ret || !p->cache_dir || !*p->cache_dir)
                return log_error_errno(-EINVAL, "No cache directory for node images");

        bool raw = p->root != NULL;
        const char *arch = p->arch ? p->arch : "x86_64";
        _cleanup_free_ char *busybox_root = NULL, *qemu_ga_root = NULL;
        /* the kernel and its modules */
        if (p->root) {
                r = image_arch_release(p->root, &release);
                if (r < 0)
                        return log_error_errno(r, "No kernel in the %s node packages (%s/boot); remove %s and try again", arch, p->root, p->root);
                if (asprintf(&kernel, "%s/boot/vmlinuz-%s", p->root, release) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
        } else if (p->kernel) {
                struct stat st;
                if (stat(p->kernel, &st) < 0)
                        return log_error_errno(-errno, "Kernel '%s' (kernel=): %m; set kernel= to a Debian vmlinuz or leave it unset for the newest in /boot", p->kernel);
                if (!S_ISREG(st.st_mode))
                        return log_error_errno(-EINVAL, "Kernel '%s' (kernel=) is not a file", p->kernel);
                kernel = realpath(p->kernel, NULL);
                if (!kernel)
                        return log_error_errno(-errno, "Kernel '%s': %m", p->kernel);
        } else {
                r = find_boot_kernel(&kernel);
                if (r == -ENOMEM)
                        return log_error_errno(r, "Out of memory");
                if (r < 0)
                        return log_error_errno(r, "no kernel found in /boot: install linux-image-amd64 (scripts/install-deps)");
        }
        r = raw ? 0 : image_kernel_release(kernel, &release);
        if (r < 0) {
                if (r == -ENOMEM)
                        return log_error_errno(r, "Out of memory");
                return log_error_errno(-ENOEXEC, "'%s' is not an xz-compressed bzImage; set kernel= to a Debian vmlinuz", kernel);
        }
        if (asprintf(&moddir, "%s/lib/modules/%s", p->root ? p->root : "", release) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(moddir, F_OK) < 0)
                return log_error_errno(-ENOENT, "No modules for kernel %s (%s) in %s: install linux-image-%s (scripts/install-deps)",
                                       release, kernel, moddir, release);

        /* the programs */
        if (p->root) {
                if (asprintf(&busybox_root, "%s/bin/busybox", p->root) < 0 || asprintf(&qemu_ga_root, "%s/usr/sbin/qemu-ga", p->root) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }
        busybox = p->root ? (access(busybox_root, R_OK) == 0 ? busybox_root : NULL) : first_existing(busybox_paths);
        if (!busybox)
                return log_error_errno(-ENOENT, "busybox not found in /bin or /usr/bin: install busybox-static (scripts/install-deps)");
        r = elf_is_dynamic(busybox);
        if (r != 0)
                return log_error_errno(r < 0 ? r : -ENOEXEC, "%s is not a static binary: install busybox-static (scripts/install-deps)", busybox);
        qemu_ga = p->root ? (access(qemu_ga_root, R_OK) == 0 ? qemu_ga_root : NULL) : first_existing(qemu_ga_paths);
        if (!qemu_ga)
                return log_error_errno(-ENOENT, "qemu-ga not found in /usr/bin or /usr/sbin: install qemu-guest-agent (scripts/install-deps)");
        if (!p->fame_static || access(p->fame_static, R_OK) < 0)
                return log_error_errno(-ENOENT, "The node-side fame binary '%s' is missing: build it (ninja -C build fame-static)",
                                       p->fame_static ? p->fame_static : "(none given)");
        r = elf_is_dynamic(p->fame_static);
        if (r != 0)
                return log_error_errno(r < 0 ? r : -ENOEXEC, "'%s' is not a static binary (nodes have no libraries for it)", p->fame_static);

        r = image_resolve_modules(moddir, node_modules, &modules);
        if (r < 0)
                goto out;
        r = elf_is_dynamic(qemu_ga);
        if (r < 0) {
                log_error_errno(r, "Cannot read '%s': %m", qemu_ga);
                goto out;
        }
        /* another architecture's qemu-ga: its packages' libraries (collect()), not ldd's */
        r = r > 0 && !p->root ? ldd_libraries(qemu_ga, &libs) : 0;
        if (r < 0)
                goto out;
        if (!libs && !(libs = calloc(1, sizeof *libs))) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto out;
        }
        r = collect(p, release, busybox, qemu_ga, modules, libs, &l);
        if (r < 0) {
                if (r == -ENOMEM)
                        log_error_errno(r, "Out of memory");
                goto out;
        }

        /* the key: format, kernel, and every entry with its contents */
        hash128_init(&kh);
        {
                _cleanup_close_ int fd = open(kernel, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || (r = hash128_fd(&kh, fd, NULL)) < 0) {
                        r = log_error_errno(fd < 0 ? -errno : r, "Cannot read kernel '%s': %m", kernel);
                        goto out;
                }
        }
        hash128_hex(&kh, khash);
        hash128_init(&h);
        hash128_u64(&h, IMAGE_FORMAT_VERSION);
        hash128_str(&h, kernel);
        hash128_str(&h, release);
        hash128_str(&h, arch);
        hash128_update(&h, &kh.h, sizeof kh.h);
        r = cpio_hash(&l, &h);
        if (r < 0)
                goto out;
        hash128_hex(&h, key);

        if (asprintf(&images, "%s/images", p->cache_dir) < 0 || asprintf(&final, "%s/%s", images, key) < 0) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto out;
        }
        bool cached = file_exists(final, kernel_file(raw)) && file_exists(final, "initramfs.cpio");
        if (!cached) {
                r = mkdir_p(images, 0755);
                if (r < 0) {
                        log_error_errno(r, "Cannot create the image cache '%s': %m", images);
                        goto out;
                }
                if (access(final, F_OK) == 0)
                        rm_tmpdir(final);       /* incomplete: should not happen, rebuild */
                log_progress("building node image: %s kernel %s, %zu modules, qemu-ga with %zu libraries, key %s",
                             arch, release, strv_length(modules), raw ? 0 : strv_length(libs), key);
                r = build(images, key, kernel, khash, raw, &l, final);
                if (r < 0)
                        goto out;
        } else
                (void) utimensat(AT_FDCWD, final, NULL, 0);     /* last use, for cleaning up */

        struct image img = { .built = !cached };
        if (asprintf(&img.kernel, "%s/%s", final, kernel_file(raw)) < 0)
                img.kernel = NULL;
        if (asprintf(&img.initrd, "%s/initramfs.cpio", final) < 0)
                img.initrd = NULL;
        img.kernel_release = strdup(release);
        img.key = strdup(key);
        if (!img.kernel || !img.initrd || !img.kernel_release || !img.key) {
                image_done(&img);
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto out;
        }
        *ret = img;
        r = 0;
out:
        image_strv_free(modules);
        image_strv_free(libs);
        return r;
}
