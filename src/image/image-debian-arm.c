/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Debian arm64 node images, host side: the unconfigured root (image-debian-arm.h).
 *
 * mmdebstrap configures a foreign tree by running its maintainer scripts through binfmt_misc and
 * qemu-user, which FAM/E does not require of the host.  `debootstrap --foreign` stops before
 * running anything of the target: it downloads every package, unpacks the Essential set and
 * leaves /debootstrap/debootstrap --second-stage for the target itself, here an aarch64 node on
 * its first boot (docs/aarch64.md).  Every tool gets an argv, never a shell.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image-debian-arm.h"
#include "image-debian.h"
#include "image-internal.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "spawn.h"
#include "util.h"

/* Bump when the recipe changes in a way the inputs do not show. */
#define ARM_UNPACKED_VERSION 2

/* linux-image-arm64 names initramfs-tools only as one alternative: named, so that the node's
 * first boot makes an initrd as the x86_64 image's has. */
#define ARM_KERNEL_PACKAGES "linux-image-arm64,initramfs-tools"

/* debootstrap says this for each of ~200 packages: logged, not shown. */
static const char *const chatty[] = { "Retrieving ", "Validating ", "Extracting ", NULL };

/* The host's debootstrap, else Debian's package unpacked once into CACHE_DIR/debian/debootstrap.
 * *ret_dir: its DEBOOTSTRAP_DIR (NULL for the host's). */
static int find_debootstrap(const char *debian_dir, char **ret_prog, char **ret_dir) {
        static const char *const host[] = { "/usr/sbin/debootstrap", "/sbin/debootstrap", NULL };
        for (size_t i = 0; host[i]; i++)
                if (access(host[i], X_OK) == 0) {
                        *ret_prog = strdup(host[i]);
                        *ret_dir = NULL;
                        return *ret_prog ? 0 : log_error_errno(-ENOMEM, "Out of memory");
                }

        _cleanup_free_ char *base = strf("%s/debootstrap", debian_dir), *prog = strf("%s/usr/sbin/debootstrap", base ? base : ""),
                            *dir = strf("%s/usr/share/debootstrap", base ? base : ""), *tmp = NULL, *logp = NULL;
        int r;
        if (!base || !prog || !dir)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(prog, X_OK) == 0 && access(dir, R_OK) == 0) {
                *ret_prog = TAKE_PTR(prog);
                *ret_dir = TAKE_PTR(dir);
                return 0;
        }
        log_progress("debian arm64 image: fetching debootstrap (apt-get download, unpacked into %s; nothing installed)", base);
        tmp = strf("%s/.debootstrap-XXXXXX", debian_dir);
        logp = strf("%s/debootstrap-fetch.log", debian_dir);
        if (!tmp || !logp)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (!mkdtemp(tmp))
                return log_error_errno(-errno, "Cannot create a directory in '%s': %m", debian_dir);
        {
                _cleanup_cmd_ struct cmd *c = cmd_new("apt-get");
                cmd_args(c, (const char *const[]) { "-q", "-o", "APT::Sandbox::User=root", "download", "debootstrap", NULL });
                cmd_chdir(c, tmp);
                r = image_run_quiet(c, "apt-get download debootstrap", logp, "check that apt reaches a Debian mirror (apt-get update)");
        }
        _cleanup_free_ char *deb = NULL, *root = strf("%s/root", tmp);
        if (r >= 0) {
                DIR *d = opendir(tmp);
                struct dirent *de;
                while (d && (de = readdir(d)))
                        if (strncmp(de->d_name, "debootstrap_", 12) == 0) {
                                free(deb);
                                deb = strf("%s/%s", tmp, de->d_name);
                        }
                if (d)
                        closedir(d);
                if (!deb || !root)
                        r = log_error_errno(-ENOENT, "apt-get download left no debootstrap package in %s (log: %s)", tmp, logp);
        }
        if (r >= 0) {
                _cleanup_cmd_ struct cmd *c = cmd_new("dpkg-deb");
                cmd_args(c, (const char *const[]) { "-x", deb, root, NULL });
                r = image_run_quiet(c, "dpkg-deb -x debootstrap", logp, NULL);
        }
        if (r >= 0) {
                image_rm_rf(base);
                if (rename(root, base) < 0)
                        r = log_error_errno(-errno, "Cannot rename '%s' to '%s': %m", root, base);
        }
        image_rm_rf(tmp);
        if (r < 0)
                return r;
        (void) unlink(logp);
        *ret_prog = TAKE_PTR(prog);
        *ret_dir = TAKE_PTR(dir);
        return 0;
}

int image_debian_arm_unpacked_key(const struct debian_arm_params *p, char key[33]) {
        _cleanup_free_ char *mirror = p->mirror && *p->mirror ? strdup(p->mirror) : image_debian_host_mirror(p->release, NULL),
                            *packages = image_debian_package_list(ARM_KERNEL_PACKAGES, p->packages);
        if (!mirror || !packages)
                return log_error_errno(-ENOMEM, "Out of memory");
        struct hash128 h;
        hash128_init(&h);
        hash128_u64(&h, ARM_UNPACKED_VERSION);
        hash128_str(&h, p->release);
        hash128_str(&h, mirror);
        hash128_str(&h, packages);
        hash128_hex(&h, key);
        return 0;
}

int image_debian_arm_unpacked(const struct debian_arm_params *p, char **ret_tree) {
        _cleanup_free_ char *mirror = NULL, *packages = NULL, *debian = NULL, *dir = NULL, *tree = NULL, *tmp = NULL,
                            *logp = NULL, *dslog = NULL, *prog = NULL, *dsdir = NULL, *mmdebstrap = NULL;
        char key[33];
        int r;

        if (!p || !p->cache_dir || !*p->cache_dir || !p->release)
                return log_error_errno(-EINVAL, "No cache directory for node images");
        mirror = p->mirror && *p->mirror ? strdup(p->mirror) : image_debian_host_mirror(p->release, NULL);
        packages = image_debian_package_list(ARM_KERNEL_PACKAGES, p->packages);
        if (!mirror || !packages)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = image_debian_arm_unpacked_key(p, key);
        if (r < 0)
                return r;

        debian = strf("%s/debian", p->cache_dir);
        dir = strf("%s/arm64-unpacked-%s", debian ? debian : "", key);
        tree = strf("%s/root", dir ? dir : "");
        tmp = strf("%s/.arm64-unpacked-%s.%d", debian ? debian : "", key, (int) getpid());
        logp = strf("%s/arm64-unpacked-%s.log", debian ? debian : "", key);
        dslog = strf("%s/arm64-unpacked-%s.debootstrap.log", debian ? debian : "", key);
        if (!debian || !dir || !tree || !tmp || !logp || !dslog)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(tree, R_OK) == 0) {
                *ret_tree = TAKE_PTR(tree);
                return 0;
        }
        /* without root: debootstrap as the root of mmdebstrap's user namespace, which makes no
         * device nodes (container=lxc: debootstrap then binds them, and the node's /dev is a
         * devtmpfs anyway) */
        if (geteuid() != 0 && !(mmdebstrap = image_find_program("mmdebstrap")))
                return log_error_errno(-ENOENT, "mmdebstrap not found: install it (scripts/install-deps); without root, debootstrap runs in its user namespace");
        r = mkdir_p(debian, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create '%s': %m", debian);
        _cleanup_free_ char *debs = strf("%s/debs-arm64", debian);
        r = debs ? mkdir_p(debs, 0755) : -ENOMEM;
        if (r < 0)
                return log_error_errno(r, "Cannot create '%s/debs-arm64': %m", debian);
        if (*debs != '/')
                return log_error_errno(-EINVAL, "The cache directory '%s' must be an absolute path (debootstrap's --cache-dir)", p->cache_dir);
        if (mmdebstrap)
                (void) chmod(debs, 0777);       /* the namespace's root is "others" here */
        r = find_debootstrap(debian, &prog, &dsdir);
        if (r < 0)
                return r;

        log_progress("debian arm64 image, host side: debootstrap --foreign %s from %s%s (log: %s)", p->release, mirror,
                     mmdebstrap ? " in mmdebstrap's user namespace" : "", logp);
        _cleanup_free_ char *target = NULL;
        r = image_tree_dir(tmp, mmdebstrap, logp, &target);
        if (r < 0)
                return r;
        _cleanup_cmd_ struct cmd *c = cmd_new(mmdebstrap ? mmdebstrap : prog);
        if (mmdebstrap) {
                cmd_args(c, (const char *const[]) { "--unshare-helper", "env", "container=lxc", NULL });
                if (dsdir)
                        cmd_argf(c, "DEBOOTSTRAP_DIR=%s", dsdir);
                cmd_arg(c, prog);
        } else if (dsdir)
                cmd_setenv(c, "DEBOOTSTRAP_DIR", dsdir);
        cmd_args(c, (const char *const[]) { "--foreign", "--arch=arm64", "--variant=minbase", NULL });
        cmd_argf(c, "--include=%s", packages);
        /* downloads kept across recipes and package lists (absolute path: debootstrap's rule) */
        cmd_argf(c, "--cache-dir=%s", debs);
        cmd_args(c, (const char *const[]) { p->release, target, mirror, NULL });
        struct image_tool_run t = { .what = "debootstrap", .mute = chatty };
        r = image_run_logged(c, logp, &t);
        if (r != 0) {
                /* debootstrap's own log (wget's messages) is inside the target: kept beside ours */
                _cleanup_free_ char *inner = strf("%s/debootstrap/debootstrap.log", target);
                _cleanup_free_ char *copy = inner ? read_file(inner, 1 << 20, NULL) : NULL;
                bool kept = copy && write_file_atomic(dslog, 0644, copy, strlen(copy)) == 0;
                t.last_error[strcspn(t.last_error, "\n")] = 0;
                if (r > 0)
                        r = log_error_errno(-EIO, "debootstrap --foreign (arm64) failed: %s (log: %s%s%s)",
                                            *t.last_error ? t.last_error : "no message", logp, kept ? " and " : "", kept ? dslog : "");
                else
                        r = log_error_errno(r, "Cannot run %s: %m", prog);
                image_rm_rf_unshared(tmp, mmdebstrap);
                return r;
        }

        /* what the node's first boot needs: the second stage and every package */
        _cleanup_free_ char *second = strf("%s/debootstrap/debootstrap", target), *archives = strf("%s/var/cache/apt/archives", target);
        if (!second || !archives) {
                image_rm_rf_unshared(tmp, mmdebstrap);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        size_t n = image_count_debs(archives);
        if (access(second, X_OK) < 0 || n == 0) {
                image_rm_rf_unshared(tmp, mmdebstrap);
                return log_error_errno(-EIO, "debootstrap --foreign left no second stage or no packages in '%s' (log: %s)", target, logp);
        }
        image_rm_rf_unshared(dir, mmdebstrap);
        if (rename(tmp, dir) < 0) {
                r = log_error_errno(-errno, "Cannot rename '%s' to '%s': %m", tmp, dir);
                image_rm_rf_unshared(tmp, mmdebstrap);
                return r;
        }
        (void) chmod(dir, 0755);        /* was open to the namespace's root */
        (void) unlink(dslog);
        log_progress("debian arm64 image, host side: %zu packages downloaded, the Essential set unpacked in %s", n, tree);
        *ret_tree = TAKE_PTR(tree);
        return 0;
}
