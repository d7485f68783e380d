/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Debian arm64 node images, the node side: the first boot that configures the unpacked root
 * (image-debian-arm.h; design and measurements in docs/aarch64.md).
 *
 *   CACHE/debian/arm64-unpacked-KEY0/         debootstrap --foreign (image-debian-arm.c)
 *     mke2fs -d          → vda, a raw ext4 disk holding it; vdb, an empty raw disk
 *     one aarch64 node   the diskless nodes' arm64 kernel and a small initramfs (busybox, the
 *                        virtio-blk and ext4 modules) whose /init mounts vda, adds FAM/E's
 *                        first-boot files and switch_roots into /fame-firstboot: debootstrap
 *                        --second-stage, dpkg --configure -a, apt-get clean, then the whole
 *                        root as a tar stream onto vdb, and poweroff
 *     tar -x             → CACHE/debian/rootfs-arm64-KEY1/, the kind of tree mmdebstrap makes
 *                        for x86_64 images: stage 2 (image-debian.c) takes it from there
 *
 * No arm64 program runs on the host and nothing is asked of it but QEMU: no binfmt_misc, no
 * qemu-user.  The console is the only channel while the node has no systemd: its "I: " lines
 * are the progress, and one sentinel line "FAME-FIRSTBOOT: ok" or "FAME-FIRSTBOOT: failed
 * WHAT" the result.  Without root, mke2fs and tar run in mmdebstrap's user namespace, so that
 * owners stay root's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image-debian-arm.h"
#include "image-debian.h"
#include "image-internal.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "spawn.h"
#include "util.h"

/* Bump when the recipe changes in a way the texts below do not show. */
#define FIRSTBOOT_VERSION 1

#define ROOT_DISK_SIZE "6G"     /* sparse: the unpacked root and every package unpacked */
#define TAR_DISK_SIZE (UINT64_C(4) << 30)
/* No console line for this long: the node is stuck (the longest silent step, one
 * update-initramfs of the small initrd, takes about a minute). */
#define SILENCE_LIMIT_S (20 * 60)

#define SENTINEL "FAME-FIRSTBOOT: "

/* /init of the first boot's initramfs (busybox sh, PID 1): the root disk, FAM/E's files in it,
 * then the Debian root's own /fame-firstboot. */
static const char first_init[] =
"#!/bin/busybox sh\n"
"# FAM/E: the first boot of an arm64 Debian root (docs/aarch64.md): mounts it, hands over.\n"
"/bin/busybox --install -s /bin\n"
"export PATH=/bin\n"
"fail() {\n"
"        echo \"" SENTINEL "failed $*\"\n"
"        echo o > /proc/sysrq-trigger\n"
"        exec sleep 600\n"
"}\n"
"mount -t proc proc /proc\n"
"mount -t sysfs sysfs /sys\n"
"mount -t devtmpfs devtmpfs /dev\n"
"for m in $(cat /modules); do\n"
"        insmod \"/lib/modules/$m\" || fail \"(cannot load the module $m)\"\n"
"done\n"
"i=0\n"
"while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do i=$((i + 1)); usleep 100000; done\n"
"mkdir -p /root\n"
"mount -t ext4 -o rw /dev/vda /root || fail \"(cannot mount the root disk /dev/vda)\"\n"
"cp -a /firstboot/. /root/ || fail \"(cannot write FAM/E's first-boot files)\"\n"
"# debootstrap --foreign leaves /proc a link to the host's: a directory to mount on\n"
"[ -L /root/proc ] && rm /root/proc && mkdir /root/proc\n"
"mount --move /dev /root/dev\n"
"umount /proc /sys\n"
"exec switch_root /root /fame-firstboot\n";

/* /fame-firstboot (dash, PID 1 in the Debian root). */
static const char first_script[] =
"#!/bin/sh\n"
"# FAM/E: configures an unpacked arm64 Debian root on its first boot (docs/aarch64.md).\n"
"export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive HOME=/root\n"
"end() {\n"
"        sync\n"
"        mountpoint -q /proc || mount -t proc proc /proc\n"
"        echo \"" SENTINEL "$*\"\n"
"        echo o > /proc/sysrq-trigger\n"
"        exec sleep 600\n"
"}\n"
"mount -t proc proc /proc\n"
"mount -t sysfs sysfs /sys\n"
"mkdir -p /dev/pts\n"
"mount -t devpts devpts /dev/pts\n"
"log=/debootstrap/debootstrap.log\n"
"if ! /debootstrap/debootstrap --second-stage; then\n"
"        echo \"I: the end of $log:\"\n"
"        tail -n 40 $log\n"
"        pkg=$(sed -n 's/^dpkg: error processing package \\([^ ]*\\).*/\\1/p' $log | head -n 1)\n"
"        end \"failed ${pkg:-(no package named: see the end of $log above)}\"\n"
"fi\n"
"mountpoint -q /proc || mount -t proc proc /proc\n"
"echo 'I: dpkg --configure -a (a check: nothing is left to configure)'\n"
"dpkg --configure -a || end 'failed (dpkg --configure -a)'\n"
"apt-get clean\n"
"rm -rf /debootstrap /fame-firstboot\n"
"echo 'I: writing the configured root to the second disk'\n"
"tar --create --file=/dev/vdb --directory=/ --one-file-system --numeric-owner --xattrs --xattrs-include='*' \\\n"
"        --exclude=./lost+found --exclude='./dev/*' --exclude='./tmp/*' . || end 'failed (tar of the root onto /dev/vdb)'\n"
"end ok\n";

/* dpkg reads these in the node: no documentation, no drivers for hardware QEMU lacks. */
static char *dpkg_excludes_conf(void) {
        size_t len = 256;
        for (size_t i = 0; debian_dpkg_excludes[i]; i++)
                len += strlen(debian_dpkg_excludes[i]) + 16;
        char *s = malloc(len), *o = s;
        if (!s)
                return NULL;
        o += sprintf(o, "# FAM/E: what a VM node does not need (docs/debian.md)\n");
        for (size_t i = 0; debian_dpkg_excludes[i]; i++)
                o += sprintf(o, "path-exclude=%s\n", debian_dpkg_excludes[i]);
        sprintf(o, "path-include=/usr/share/doc/*/copyright\n");
        return s;
}

/* The modules that mount the root disk (the x86_64 image's initrd holds the same). */
static const char *const disk_modules[] = { "virtio_pci", "virtio_blk", "crc32c_generic", "ext4", NULL };

static int write_initramfs(const char *arch_root, const char *release, const char *path) {
        _cleanup_free_ char *moddir = strf("%s/lib/modules/%s", arch_root, release), *busybox = strf("%s/bin/busybox", arch_root),
                            *conf = dpkg_excludes_conf(), *list = NULL;
        char **modules = NULL;
        struct cpio_list l = { 0 };
        size_t len = 1;
        int r;
        if (!moddir || !busybox || !conf)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = image_resolve_modules(moddir, disk_modules, &modules);
        if (r < 0)
                return r;
        for (char **m = modules; *m; m++)
                len += strlen(*m) + 1;
        list = malloc(len);
        if (!list) {
                image_strv_free(modules);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        *list = 0;
        r = 0;
        for (char **m = modules; *m && r >= 0; m++) {
                const char *base = strrchr(*m, '/') ? strrchr(*m, '/') + 1 : *m;
                char node[PATH_MAX];
                strcat(strcat(list, base), "\n");
                snprintf(node, sizeof node, "lib/modules/%s", base);
                r = cpio_add_file(&l, node, 0644, *m);
        }
        image_strv_free(modules);
        for (const struct debian_file *f = debian_setup_files; r >= 0 && f->path; f++) {
                char node[PATH_MAX];
                snprintf(node, sizeof node, "firstboot/%s", f->path);
                r = cpio_add_data(&l, node, f->mode, f->content, strlen(f->content));
        }
        if (r >= 0 &&
            ((r = cpio_add_file(&l, "bin/busybox", 0755, busybox)) < 0 ||
             (r = cpio_add_data(&l, "init", 0755, first_init, strlen(first_init))) < 0 ||
             (r = cpio_add_data(&l, "modules", 0644, list, strlen(list))) < 0 ||
             (r = cpio_add_data(&l, "firstboot/fame-firstboot", 0755, first_script, strlen(first_script))) < 0 ||
             (r = cpio_add_data(&l, "firstboot/etc/dpkg/dpkg.cfg.d/fame", 0644, conf, strlen(conf))) < 0 ||
             (r = cpio_add_dir(&l, "proc", 0755)) < 0 || (r = cpio_add_dir(&l, "sys", 0755)) < 0 ||
             (r = cpio_add_dir(&l, "dev", 0755)) < 0))
                log_error_errno(r, "Cannot make the first boot's initramfs: %m");
        if (r >= 0)
                r = cpio_finish(&l);
        if (r >= 0) {
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                r = fd < 0 ? log_error_errno(-errno, "Cannot write '%s': %m", path) : cpio_write(&l, fd, NULL);
        }
        cpio_list_done(&l);
        return r;
}

/* prog as root: itself, or (without root) in mmdebstrap's user namespace */
static struct cmd *as_root(const char *mmdebstrap, const char *prog) {
        if (geteuid() == 0)
                return cmd_new(prog);
        struct cmd *c = cmd_new(mmdebstrap);
        cmd_args(c, (const char *const[]) { "--unshare-helper", prog, NULL });
        return c;
}

static int make_disks(const char *tree, const char *work, const char *mmdebstrap, const char *logp) {
        _cleanup_free_ char *mke2fs = image_find_program("mke2fs"), *vda = strf("%s/root.raw", work),
                            *vdb = strf("%s/tar.raw", work);
        if (!mke2fs)
                return log_error_errno(-ENOENT, "mke2fs not found: install e2fsprogs (scripts/install-deps)");
        if (!vda || !vdb)
                return log_error_errno(-ENOMEM, "Out of memory");
        /* ours, and writable by the namespace's root ("others" to us) without root: QEMU runs as us */
        _cleanup_close_ int vfd = open(vda, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (vfd < 0 || (mmdebstrap && fchmod(vfd, 0666) < 0))
                return log_error_errno(-errno, "Cannot make '%s': %m", vda);
        _cleanup_cmd_ struct cmd *c = as_root(mmdebstrap, mke2fs);
        cmd_args(c, (const char *const[]) { "-q", "-F", "-t", "ext4", "-L", "fame-firstboot", "-E", "root_owner=0:0",
                                             "-d", tree, vda, ROOT_DISK_SIZE, NULL });
        int r = image_run_quiet(c, "mke2fs", logp, NULL);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(vdb, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t) TAR_DISK_SIZE) < 0)
                return log_error_errno(-errno, "Cannot make '%s': %m", vdb);
        return 0;
}

/* What the first boot said on its console. */
struct boot_watch {
        char why[1024];                 /* what went wrong, for the one error line */
        char result[512];               /* after SENTINEL: "ok" or "failed ..." */
        char last_error[512];           /* the last "E: " or "W: " line */
        size_t configured, total;       /* "I: Configuring" lines, packages */
};

/* "Unpacking PKG...", said of each of ~200 packages (not "Unpacking the base system...") */
static bool one_package(const char *msg, const char *verb) {
        size_t n = strlen(verb);
        return strncmp(msg, verb, n) == 0 && !strchr(msg + n, ' ');
}

static void watch_line(char *line, bool last, void *userdata) {
        struct boot_watch *w = userdata;
        (void) last;
        line[strcspn(line, "\r")] = 0;
        if (strncmp(line, SENTINEL, strlen(SENTINEL)) == 0)
                snprintf(w->result, sizeof w->result, "%s", line + strlen(SENTINEL));
        else if (strncmp(line, "I: ", 3) == 0) {
                if (strncmp(line + 3, "Configuring ", 12) == 0) {
                        w->configured++;
                        log_progress("debian arm64 image, first boot: %s (%zu of about %zu)", line + 3, w->configured, w->total);
                } else if (!one_package(line + 3, "Unpacking ") && !one_package(line + 3, "Extracting ") &&
                           !one_package(line + 3, "Validating "))
                        log_progress("debian arm64 image, first boot: %s", line + 3);
        } else if (strncmp(line, "E: ", 3) == 0 || strncmp(line, "W: ", 3) == 0)
                snprintf(w->last_error, sizeof w->last_error, "%s", line + 3);
}

/* Runs the node with its console on a pipe: every line into the log, progress shown.  A
 * failure: -errno and w->why (not logged: the caller names where the console is kept). */
static int boot(struct cmd *c, const char *logp, struct boot_watch *w) {
        _cleanup_close_ int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (logfd < 0) {
                snprintf(w->why, sizeof w->why, "could not start: %s: %s", logp, strerror(errno));
                return -errno;
        }
        cmd_die_with_parent(c);
        bool silent;
        int r = image_run_lines(c, logfd, SILENCE_LIMIT_S, watch_line, w, &silent);
        if (r < 0) {
                snprintf(w->why, sizeof w->why, "could not run QEMU: %s", strerror(-r));
                return r;
        }
        if (silent) {
                snprintf(w->why, sizeof w->why, "printed nothing for %d minutes and was stopped", SILENCE_LIMIT_S / 60);
                return -ETIMEDOUT;
        }
        if (!*w->result) {
                snprintf(w->why, sizeof w->why, "ended without a result (QEMU exit status %d%s%s)", r,
                         *w->last_error ? "; last message: " : "", w->last_error);
                return -EIO;
        }
        if (strcmp(w->result, "ok") != 0) {
                snprintf(w->why, sizeof w->why, "%s", w->result);
                return -EIO;
        }
        return 0;
}

static struct cmd *qemu_command(const char *qemu, const char *kernel, const char *initrd, const char *work) {
        struct cmd *c = cmd_new(qemu);
        cmd_args(c, (const char *const[]) { "-machine", "virt", "-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max",
                                             "-global", "max-arm-cpu.pauth-impdef=on", "-smp", "2", "-m", "2048",
                                             "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                                             "-kernel", kernel, "-initrd", initrd,
                                             "-append", "console=ttyAMA0 panic=-1 loglevel=4 rdinit=/init", NULL });
        static const char *const disks[] = { "root.raw", "tar.raw" };
        for (size_t i = 0; i < ELEMENTSOF(disks); i++) {
                _cleanup_free_ char *path = strf("%s/%s", work, disks[i]), *esc = path ? qemu_opt_escaped(path) : NULL;
                cmd_arg(c, "-drive");
                cmd_argf(c, "file=%s,format=raw,if=none,id=d%zu,cache=unsafe", esc ? esc : "", i);
                cmd_arg(c, "-device");
                cmd_argf(c, "virtio-blk-pci,drive=d%zu", i);
        }
        cmd_args(c, (const char *const[]) { "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console", NULL });
        return c;
}

int image_debian_arm_key(const struct debian_arm_params *p, char key[33]) {
        _cleanup_free_ char *conf = dpkg_excludes_conf();
        char unpacked[33];
        struct hash128 h;
        if (!conf)
                return log_error_errno(-ENOMEM, "Out of memory");
        int r = image_debian_arm_unpacked_key(p, unpacked);
        if (r < 0)
                return r;
        hash128_init(&h);
        hash128_u64(&h, FIRSTBOOT_VERSION);
        hash128_str(&h, unpacked);
        hash128_str(&h, first_init);
        hash128_str(&h, first_script);
        hash128_str(&h, conf);
        for (const struct debian_file *f = debian_setup_files; f->path; f++) {
                hash128_str(&h, f->path);
                hash128_str(&h, f->content);
        }
        hash128_hex(&h, key);
        return 0;
}

int image_debian_arm_configured(const struct debian_arm_params *p, char **ret_tree) {
        _cleanup_free_ char *unpacked = NULL, *arch_root = NULL, *release = NULL;
        char key[33];
        int r;

        if (!p || !p->qemu || !*p->qemu)
                return log_error_errno(-EINVAL, "No qemu-system-aarch64 for the arm64 first boot: install qemu-system-arm (scripts/install-deps)");
        r = image_debian_arm_key(p, key);
        if (r < 0)
                return r;

        _cleanup_free_ char *debian = strf("%s/debian", p->cache_dir), *dir = strf("%s/rootfs-arm64-%s", debian ? debian : "", key),
                            *tree = strf("%s/root", dir ? dir : ""),
                            *work = strf("%s/.firstboot-%s.%d", debian ? debian : "", key, (int) getpid()),
                            *failed = strf("%s/firstboot-%s.failed", debian ? debian : "", key),
                            *logp = strf("%s/firstboot-%s.log", debian ? debian : "", key),
                            *console = NULL, *initrd = NULL, *kernel = NULL, *tmp_tree = NULL, *vdb = NULL, *target = NULL,
                            *mmdebstrap = geteuid() == 0 ? NULL : image_find_program("mmdebstrap");
        if (!debian || !dir || !tree || !work || !failed || !logp)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(tree, R_OK) == 0) {
                *ret_tree = TAKE_PTR(tree);
                return 0;
        }
        r = image_debian_arm_unpacked(p, &unpacked);
        if (r < 0)
                return r;
        if (geteuid() != 0 && !mmdebstrap)
                return log_error_errno(-ENOENT, "mmdebstrap not found: install it (scripts/install-deps); without root its user namespace keeps the image's owners");
        /* the diskless arm64 nodes' kernel and busybox boot it */
        r = image_arch_root(p->cache_dir, "aarch64", &arch_root);
        if (r < 0)
                return r;
        r = image_arch_release(arch_root, &release);
        if (r < 0)
                return log_error_errno(r, "No arm64 kernel in '%s/boot'", arch_root);
        console = strf("%s/console.log", work);
        initrd = strf("%s/initrd.cpio", work);
        kernel = strf("%s/boot/vmlinuz-%s", arch_root, release);
        tmp_tree = strf("%s/.rootfs-arm64-%s.%d", debian, key, (int) getpid());
        vdb = strf("%s/tar.raw", work);
        if (!console || !initrd || !kernel || !tmp_tree || !vdb)
                return log_error_errno(-ENOMEM, "Out of memory");

        image_rm_rf(work);
        r = mkdir_p(work, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create '%s': %m", work);
        log_progress("debian arm64 image, first boot: a disk of the unpacked root (mke2fs -d)");
        r = make_disks(unpacked, work, mmdebstrap, logp);
        if (r >= 0)
                r = write_initramfs(arch_root, release, initrd);
        if (r < 0)
                goto out;

        log_progress("debian arm64 image, first boot: one aarch64 node configures the packages (about 10 minutes under TCG; console: %s)", console);
        struct boot_watch w = { .total = 0 };
        {
                _cleanup_free_ char *archives = strf("%s/var/cache/apt/archives", unpacked);
                w.total = archives ? image_count_debs(archives) : 0;
        }
        time_t t0 = time(NULL);
        {
                _cleanup_cmd_ struct cmd *c = qemu_command(p->qemu, kernel, initrd, work);
                r = boot(c, console, &w);
        }
        if (r < 0) {
                /* kept to look at: the console, and the disk (debootstrap's log is inside) */
                image_rm_rf(failed);
                bool kept = rename(work, failed) == 0;
                image_rm_rf(work);
                return log_error_errno(r, "The arm64 Debian image's first boot %s (console: %s/console.log%s)", w.why,
                                       kept ? failed : work,
                                       kept ? "; its disk root.raw is kept beside it, debootstrap's log in /debootstrap" : "");
        }
        log_progress("debian arm64 image, first boot: %zu packages configured in %lld s; unpacking the root (tar)", w.configured,
                     (long long) (time(NULL) - t0));

        r = image_tree_dir(tmp_tree, mmdebstrap, logp, &target);
        if (r < 0)
                goto out;
        {
                _cleanup_free_ char *tar = image_find_program("tar");
                _cleanup_cmd_ struct cmd *c = as_root(mmdebstrap, tar ? tar : "tar");
                cmd_args(c, (const char *const[]) { "--extract", "--file", vdb, "--directory", target, "--numeric-owner",
                                                     "--same-owner", "--preserve-permissions", "--xattrs", "--xattrs-include=*", NULL });
                r = image_run_quiet(c, "tar --extract", logp, NULL);
        }
        if (r >= 0) {
                image_rm_rf_unshared(dir, mmdebstrap);
                if (rename(tmp_tree, dir) < 0)
                        r = log_error_errno(-errno, "Cannot rename '%s' to '%s': %m", tmp_tree, dir);
                else
                        (void) chmod(dir, 0755);        /* was open to the namespace's root */
        }
        if (r < 0) {
                image_rm_rf_unshared(tmp_tree, mmdebstrap);
                goto out;
        }
        (void) unlink(logp);
        image_rm_rf(failed);
        /* the unconfigured tree has served (its packages stay in debs-arm64) */
        char *unpacked_dir = path_dirname(unpacked);
        if (unpacked_dir)
                image_rm_rf_unshared(unpacked_dir, mmdebstrap);
        free(unpacked_dir);
        *ret_tree = TAKE_PTR(tree);
out:
        image_rm_rf(work);
        return r;
}
