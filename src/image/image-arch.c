/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What a node of another architecture boots that the host cannot lend it: Debian's kernel,
 * busybox-static and qemu-guest-agent (with the libraries qemu-ga needs) of that architecture,
 * fetched with `apt-get download` and unpacked with `dpkg-deb -x` into the cache — never
 * installed into the host.  apt must know the architecture (dpkg --add-architecture arm64 and
 * apt-get update: scripts/install-deps does both).  modules.dep is made with depmod -b, as the
 * kernel package's postinst would.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image-internal.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "spawn.h"
#include "util.h"

/* qemu-ga's libraries, by package (what `ldd qemu-ga` lists on Debian 12, through dpkg -S). */
static const char *const arm64_packages[] = {
        "busybox-static", "qemu-guest-agent", "libc6", "libglib2.0-0", "libnuma1", "libpcre2-8-0", "libudev1",
        "liburing2", "libjson-c5", NULL,
};

/* The newest DIR/boot/vmlinuz-RELEASE's release. */
static int newest_release(const char *root, char **ret) {
        _cleanup_free_ char *boot = strf("%s/boot", root);
        DIR *d = boot ? opendir(boot) : NULL;
        struct dirent *de;
        char *best = NULL;
        if (!d)
                return -ENOENT;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, "vmlinuz-", 8) == 0 && (!best || strverscmp(de->d_name + 8, best) > 0)) {
                        free(best);
                        best = strdup(de->d_name + 8);
                }
        closedir(d);
        if (!best)
                return -ENOENT;
        *ret = best;
        return 0;
}

int image_arch_release(const char *root, char **ret) {
        return newest_release(root, ret);
}

int image_arch_root(const char *cache_dir, const char *arch, char **ret_root) {
        if (strcmp(arch, "aarch64") != 0)
                return log_error_errno(-EINVAL, "No node packages for architecture %s", arch);
        const char *deb_arch = "arm64";
        _cleanup_free_ char *dir = strf("%s/arch/%s", cache_dir, arch), *root = strf("%s/root", dir ? dir : ""),
                            *stamp = strf("%s/.complete", root ? root : ""), *tmp = NULL, *debs = NULL, *troot = NULL,
                            *meta = NULL, *depends = NULL, *release = NULL, *tstamp = NULL, *stamp_text = NULL;
        const char *fix = "run scripts/install-deps (it adds the arm64 architecture to dpkg and apt)";
        int r;

        if (!dir || !root || !stamp)
                return log_error_errno(-ENOMEM, "Out of memory");
        /* the stamp: the kernel release, then the package list it was made from; another list
         * (a FAM/E that needs more in its nodes) fetches them again */
        char pkgs[512] = "";
        for (const char *const *p = arm64_packages; *p; p++)
                snprintf(pkgs + strlen(pkgs), sizeof pkgs - strlen(pkgs), "%s%s", *pkgs ? " " : "", *p);
        _cleanup_free_ char *have = read_file(stamp, 4096, NULL);
        const char *have_pkgs = have ? strchr(have, '\n') : NULL;
        if (have_pkgs && strcmp(have_pkgs + 1, pkgs) == 0) {
                *ret_root = TAKE_PTR(root);
                return 0;
        }
        if (have)
                log_progress("aarch64 nodes: the node packages changed (%s); fetching them again", pkgs);
        r = mkdir_p(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create '%s': %m", dir);
        /* the log of the tools run here (each run overwrites it; a failed one is kept) */
        _cleanup_free_ char *logp = strf("%s/fetch.log", dir);
        if (!logp)
                return log_error_errno(-ENOMEM, "Out of memory");
        tmp = strf("%s/.tmp-XXXXXX", dir);
        if (!tmp || !mkdtemp(tmp))
                return log_error_errno(tmp ? -errno : -ENOMEM, "Cannot create a directory in '%s': %m", dir);
        debs = strf("%s/debs", tmp);
        troot = strf("%s/root", tmp);
        if (!debs || !troot || mkdir(debs, 0755) < 0 || mkdir(troot, 0755) < 0) {
                r = log_error_errno(-errno, "Cannot create '%s': %m", tmp);
                goto fail;
        }

        /* the kernel: the metapackage names the current version */
        log_progress("aarch64 nodes: downloading Debian's %s kernel, busybox and qemu-guest-agent", deb_arch);
        {
                _cleanup_cmd_ struct cmd *c = cmd_new("apt-get");
                cmd_args(c, (const char *const[]) { "-q", "-o", "APT::Sandbox::User=root", "download", NULL });
                cmd_argf(c, "linux-image-%s:%s", deb_arch, deb_arch);
                cmd_chdir(c, debs);
                r = image_run_quiet(c, "apt-get download of the arm64 kernel", logp, fix);
                if (r < 0)
                        goto fail;
        }
        {
                DIR *d = opendir(debs);
                struct dirent *de;
                while (d && (de = readdir(d)))
                        if (strncmp(de->d_name, "linux-image-arm64_", 18) == 0) {
                                free(meta);
                                meta = strf("%s/%s", debs, de->d_name);
                        }
                if (d)
                        closedir(d);
                if (!meta) {
                        r = log_error_errno(-ENOENT, "apt-get download left no linux-image-arm64 package in %s; %s", debs, fix);
                        goto fail;
                }
                _cleanup_cmd_ struct cmd *c = cmd_new("dpkg-deb");
                cmd_args(c, (const char *const[]) { "-f", meta, "Depends", NULL });
                r = cmd_run(c, &depends);
                if (r != 0 || !depends || strncmp(depends, "linux-image-", 12) != 0) {
                        r = log_error_errno(-EIO, "Cannot read the kernel version from %s (Depends: %s)", meta, depends ? depends : "?");
                        goto fail;
                }
                depends[strcspn(depends, " (,\n")] = 0;
                (void) unlink(meta);
        }
        {
                _cleanup_cmd_ struct cmd *c = cmd_new("apt-get");
                cmd_args(c, (const char *const[]) { "-q", "-o", "APT::Sandbox::User=root", "download", NULL });
                cmd_argf(c, "%s:%s", depends, deb_arch);
                for (const char *const *p = arm64_packages; *p; p++)
                        cmd_argf(c, "%s:%s", *p, deb_arch);
                cmd_chdir(c, debs);
                r = image_run_quiet(c, "apt-get download of the arm64 node packages", logp, fix);
                if (r < 0)
                        goto fail;
        }

        /* unpacked, not installed */
        log_progress("aarch64 nodes: unpacking the packages into %s", root);
        {
                DIR *d = opendir(debs);
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        size_t len = strlen(de->d_name);
                        if (len < 5 || strcmp(de->d_name + len - 4, ".deb") != 0)
                                continue;
                        _cleanup_free_ char *deb = strf("%s/%s", debs, de->d_name);
                        _cleanup_cmd_ struct cmd *c = cmd_new("dpkg-deb");
                        cmd_args(c, (const char *const[]) { "-x", deb ? deb : "", troot, NULL });
                        r = image_run_quiet(c, "dpkg-deb -x", logp, NULL);
                        if (r < 0) {
                                closedir(d);
                                goto fail;
                        }
                }
                if (d)
                        closedir(d);
        }
        r = newest_release(troot, &release);
        if (r < 0) {
                r = log_error_errno(-ENOENT, "The arm64 kernel package holds no boot/vmlinuz-*");
                goto fail;
        }
        {
                /* the kernel package's postinst would run depmod */
                _cleanup_cmd_ struct cmd *c = cmd_new("depmod");
                cmd_args(c, (const char *const[]) { "-b", troot, release, NULL });
                r = image_run_quiet(c, "depmod", logp, "install kmod (scripts/install-deps)");
                if (r < 0)
                        goto fail;
        }
        tstamp = strf("%s/.complete", troot);
        stamp_text = strf("%s\n%s", release, pkgs);
        r = tstamp && stamp_text ? write_file_atomic(tstamp, 0644, stamp_text, strlen(stamp_text)) : -ENOMEM;
        if (r < 0) {
                log_error_errno(r, "Cannot write '%s': %m", tstamp ? tstamp : "?");
                goto fail;
        }
        image_rm_rf(root);            /* an incomplete one */
        if (rename(troot, root) < 0) {
                r = log_error_errno(-errno, "Cannot rename '%s' to '%s': %m", troot, root);
                goto fail;
        }
        image_rm_rf(tmp);
        *ret_root = TAKE_PTR(root);
        return 0;
fail:
        image_rm_rf(tmp);
        return r;
}
