/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Debian node images (kind=debian, docs/debian.md), built without loop mounts or chroot:
 *
 *   stage 1  mmdebstrap → CACHE/debian/rootfs-KEY1/           key: release, mirror, packages
 *   stage 2  a hard-linked copy of that tree (cp -al; every file FAM/E changes is unlinked
 *            first, so the cached tree is never written), FAM/E's files added (node tools, libfame with headers and
 *            pkg-config files, setup units), the kernel and initrd taken out for direct boot,
 *            `mke2fs -d` → ext4, `qemu-img convert` → CACHE/images/debian-KEY2/base.qcow2
 *                                                              key: KEY1, FAM/E files, disk size
 *
 * Stage 1 is the slow one (downloads, dpkg) and changes only with its inputs; stage 2 takes a
 * few seconds and follows every rebuild of FAM/E.  Downloaded packages are kept in
 * CACHE/debian/debs and handed back to mmdebstrap, so a rebuild does not download again.
 * Every output is written under a temporary name and renamed into place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fame-config.h"
#include "image.h"
#include "image-debian.h"
#include "image-debian-arm.h"
#include "image-internal.h"
#include "log.h"
#include "macro.h"
#include "spawn.h"
#include "util.h"

/* Bump when the recipe changes in a way the inputs below do not show. */
#define DEBIAN_STAGE1_VERSION 2
#define DEBIAN_STAGE2_VERSION 1

/* What every node gets; `packages=` adds to it. */
static const char *const base_packages[] = {
        "systemd", "systemd-sysv", "udev", "dbus", "kmod", "iproute2", "iputils-ping", "procps", "less",
        "netbase", "openssh-server", "openssh-client", "qemu-guest-agent", "sudo", "linux-image-amd64",
        "gcc", "libc6-dev", "make", "pkg-config", "libjson-c5", NULL,
};

/* ---- small file helpers ----------------------------------------------------------------- */

static int mkdir_parents_of(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
                return 0;
        *slash = 0;
        return mkdir_p(p, 0755);
}

/* A new inode (rename over the old name): files of the hard-linked copy of the cached tree are
 * replaced, never written. */
static int write_file(const char *path, mode_t mode, const void *data, size_t len) {
        int r = mkdir_parents_of(path);
        return r < 0 ? r : write_file_atomic(path, mode, data, len);
}

static int copy_file(const char *src, const char *dst, mode_t mode) {
        char buf[65536];
        ssize_t k;
        int r = mkdir_parents_of(dst);
        if (r < 0)
                return r;
        (void) unlink(dst);
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return -errno;
        _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (out < 0)
                return -errno;
        while ((k = read(in, buf, sizeof buf)) > 0) {
                r = write_all(out, buf, (size_t) k);
                if (r < 0)
                        return r;
        }
        if (k < 0)
                return -errno;
        return fchmod(out, mode) < 0 ? -errno : 0;
}

static int make_symlink(const char *path, const char *target) {
        int r = mkdir_parents_of(path);
        if (r < 0)
                return r;
        (void) unlink(path);
        return symlink(target, path) < 0 ? -errno : 0;
}

static int hash_file(struct hash128 *h, const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        hash128_str(h, path);
        return hash128_fd(h, fd, NULL);
}

/* ---- the Debian mirror apt uses ------------------------------------------------------------ */

/* The first "deb" URI of the host's apt sources (deb822 .sources files and sources.list) that
 * serves `release`, else the first one ending in /debian, else deb.debian.org. */
char *image_debian_host_mirror(const char *release, const char *apt_dir) {
        char *first_debian = NULL;
        _cleanup_free_ char *list = NULL, *dir = NULL;
        glob_t g = { 0 };

        if (!apt_dir)
                apt_dir = "/etc/apt";
        if (asprintf(&dir, "%s/sources.list.d/*.sources", apt_dir) < 0 || asprintf(&list, "%s/sources.list", apt_dir) < 0)
                return NULL;
        (void) glob(dir, 0, NULL, &g);
        /* deb822 stanzas: Types/URIs/Suites; a blank line ends a stanza. */
        for (size_t i = 0; i < g.gl_pathc; i++) {
                FILE *f = fopen(g.gl_pathv[i], "re");
                char line[1024], types[256] = "", uris[512] = "", suites[256] = "";
                bool more = true;
                if (!f)
                        continue;
                while (more) {
                        more = fgets(line, sizeof line, f) != NULL;
                        line[strcspn(line, "\r\n")] = 0;
                        if (more && *line && *line != '#') {
                                char *colon = strchr(line, ':');
                                if (!colon)
                                        continue;
                                *colon = 0;
                                char *v = colon + 1;
                                while (*v == ' ' || *v == '\t')
                                        v++;
                                if (strcasecmp(line, "Types") == 0)
                                        snprintf(types, sizeof types, " %s ", v);
                                else if (strcasecmp(line, "URIs") == 0)
                                        snprintf(uris, sizeof uris, "%s", v);
                                else if (strcasecmp(line, "Suites") == 0)
                                        snprintf(suites, sizeof suites, " %s ", v);
                                continue;
                        }
                        if (more && *line == '#')
                                continue;
                        /* end of a stanza */
                        if (strstr(types, " deb ") && *uris) {
                                char uri[512], want[128];
                                sscanf(uris, "%511s", uri);
                                snprintf(want, sizeof want, " %s ", release);
                                if (strstr(suites, want)) {
                                        fclose(f);
                                        globfree(&g);
                                        free(first_debian);
                                        return strdup(uri);
                                }
                                size_t n = strlen(uri);
                                if (!first_debian && n >= 7 && (strcmp(uri + n - 7, "/debian") == 0 || strcmp(uri + n - 8, "/debian/") == 0))
                                        first_debian = strdup(uri);
                        }
                        *types = *uris = *suites = 0;
                }
                fclose(f);
        }
        globfree(&g);

        FILE *f = fopen(list, "re");
        if (f) {
                char line[1024];
                while (fgets(line, sizeof line, f)) {
                        char type[16], uri[512], suite[128];
                        char *l = line;
                        if (sscanf(l, "%15s", type) != 1 || strcmp(type, "deb") != 0)
                                continue;
                        l += strspn(l, " \t") + 3;
                        l += strspn(l, " \t");
                        if (*l == '[') {        /* options */
                                char *end = strchr(l, ']');
                                if (!end)
                                        continue;
                                l = end + 1;
                        }
                        if (sscanf(l, "%511s %127s", uri, suite) != 2)
                                continue;
                        if (strcmp(suite, release) == 0) {
                                fclose(f);
                                free(first_debian);
                                return strdup(uri);
                        }
                        size_t n = strlen(uri);
                        if (!first_debian && n >= 7 && strcmp(uri + n - 7, "/debian") == 0)
                                first_debian = strdup(uri);
                }
                fclose(f);
        }
        return first_debian ? first_debian : strdup("http://deb.debian.org/debian");
}

/* ---- stage 1: mmdebstrap ------------------------------------------------------------------- */

/* The base list with `kernel` for linux-image-amd64, then `extra`: "a,b,c". */
char *image_debian_package_list(const char *kernel, const char *extra) {
        size_t len = 1 + strlen(kernel);
        for (size_t i = 0; base_packages[i]; i++)
                len += strlen(base_packages[i]) + 1;
        len += extra ? strlen(extra) + 1 : 0;
        char *s = malloc(len), *o = s;
        if (!s)
                return NULL;
        *o = 0;
        for (size_t i = 0; base_packages[i]; i++)
                o += sprintf(o, "%s%s", i ? "," : "",
                             strcmp(base_packages[i], "linux-image-amd64") == 0 ? kernel : base_packages[i]);
        for (const char *q = extra ? extra : ""; *q;) {
                size_t n = strcspn(q, ", ");
                if (n) {
                        o += sprintf(o, ",%.*s", (int) n, q);
                        q += n;
                }
                q += strspn(q, ", ");
        }
        return s;
}

/* The files of a table into root; "@TRIPLET@" in a file's content becomes triplet
 * ("x86_64-linux-gnu", "aarch64-linux-gnu"). */
static int write_tree(const char *root, const struct debian_file *files, const char *triplet) {
        for (const struct debian_file *f = files; f->path; f++) {
                char path[PATH_MAX];
                int r;
                snprintf(path, sizeof path, "%s/%s", root, f->path);
                if (f->target) {
                        r = make_symlink(path, f->target);
                        if (r < 0)
                                return log_error_errno(r, "Cannot write '%s': %m", path);
                        continue;
                }
                _cleanup_free_ char *text = strdup(f->content);
                for (char *at; text && (at = strstr(text, "@TRIPLET@"));) {
                        char *t = strf("%.*s%s%s", (int) (at - text), text, triplet, at + strlen("@TRIPLET@"));
                        free(text);
                        text = t;
                }
                r = text ? write_file(path, f->mode, text, strlen(text)) : -ENOMEM;
                if (r < 0)
                        return log_error_errno(r, "Cannot write '%s': %m", path);
        }
        return 0;
}

/* KEY1 of x86_64 images: release, mirror, packages and the recipe (mmdebstrap's options). */
static void stage1_key(const char *release, const char *mirror, const char *packages, char key1[33]) {
        struct hash128 h;
        hash128_init(&h);
        hash128_u64(&h, DEBIAN_STAGE1_VERSION);
        hash128_str(&h, release);
        hash128_str(&h, mirror);
        hash128_str(&h, packages);
        for (size_t i = 0; debian_dpkg_excludes[i]; i++)
                hash128_str(&h, debian_dpkg_excludes[i]);
        for (const struct debian_file *f = debian_setup_files; f->path; f++) {
                hash128_str(&h, f->path);
                hash128_str(&h, f->content);
        }
        hash128_hex(&h, key1);
}

static int stage1(const struct debian_params *p, const char *mirror, const char *packages, const char *key,
                  const char *mmdebstrap, char **ret_tree) {
        _cleanup_free_ char *dir = NULL, *tree = NULL, *tmp = NULL, *setup = NULL, *debs = NULL, *logp = NULL,
                            *hook_setup = NULL, *hook_debs_in = NULL, *hook_debs_out = NULL;
        int r;

        if (asprintf(&dir, "%s/debian", p->cache_dir) < 0 || asprintf(&tree, "%s/rootfs-%s", dir, key) < 0 ||
            asprintf(&tmp, "%s/.rootfs-%s.%d", dir, key, (int) getpid()) < 0 ||
            asprintf(&setup, "%s/.setup-%s.%d", dir, key, (int) getpid()) < 0 ||
            asprintf(&debs, "%s/debs", dir) < 0 || asprintf(&logp, "%s/rootfs-%s.log", dir, key) < 0 ||
            !(hook_setup = image_hook("sync-in", setup, "/")) ||
            !(hook_debs_in = image_hook("sync-in", debs, "/var/cache/apt/archives/")) ||
            !(hook_debs_out = image_hook("sync-out", "/var/cache/apt/archives", debs)))
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(tree, R_OK) == 0) {
                *ret_tree = TAKE_PTR(tree);
                return 0;
        }
        r = mkdir_p(debs, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create '%s': %m", debs);
        image_rm_rf(setup);
        r = write_tree(setup, debian_setup_files, "x86_64-linux-gnu");
        if (r < 0)
                goto out;
        {
                /* sync-in of the package cache needs its directory before mmdebstrap makes it */
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/var/cache/apt/archives", setup);
                r = mkdir_p(path, 0755);
                if (r < 0) {
                        log_error_errno(r, "Cannot create '%s': %m", path);
                        goto out;
                }
        }

        log_progress("debian image, step 1 of 2: mmdebstrap %s from %s (log: %s)", p->release, mirror, logp);
        _cleanup_cmd_ struct cmd *c = cmd_new(mmdebstrap);
        cmd_arg(c, geteuid() == 0 ? "--mode=root" : "--mode=unshare");
        cmd_arg(c, "--variant=apt");
        cmd_arg(c, "--format=directory");
        cmd_arg(c, "--aptopt=APT::Install-Recommends \"false\"");
        for (size_t i = 0; debian_dpkg_excludes[i]; i++)
                cmd_argf(c, "--dpkgopt=path-exclude=%s", debian_dpkg_excludes[i]);
        cmd_arg(c, "--dpkgopt=path-include=/usr/share/doc/*/copyright");
        cmd_argf(c, "--include=%s", packages);
        /* mmdebstrap splits a hook's text into words (Perl's shellwords), so the paths are
         * quoted (image_hook()): a cache_dir with a space broke them.  The package cache is
         * handed in, and taken back out before apt cleans it. */
        cmd_argf(c, "--setup-hook=%s", hook_setup);
        cmd_argf(c, "--setup-hook=%s", hook_debs_in);
        cmd_argf(c, "--customize-hook=%s", hook_debs_out);
        cmd_arg(c, "--skip=download/empty");
        cmd_arg(c, p->release);
        cmd_arg(c, tmp);
        cmd_arg(c, mirror);
        struct image_tool_run t = { .what = "mmdebstrap" };
        r = image_run_logged(c, logp, &t);
        if (r != 0) {
                if (r > 0) {
                        t.last_error[strcspn(t.last_error, "\n")] = 0;
                        if (t.mirror_failed)
                                r = log_error_errno(-EIO, "Debian mirror %s did not serve %s (%s); set mirror= to a reachable Debian archive (full log: %s)",
                                                    mirror, p->release,
                                                    *t.mirror_error ? t.mirror_error : *t.last_error ? t.last_error : "apt-get update failed", logp);
                        else
                                r = log_error_errno(-EIO, "mmdebstrap failed (exit status %d): %s (full log: %s)", r,
                                                    *t.last_error ? t.last_error : "no message", logp);
                } else
                        r = log_error_errno(r, "Cannot run %s: %m", mmdebstrap);
                image_rm_rf_unshared(tmp, mmdebstrap);
                goto out;
        }
        if (rename(tmp, tree) < 0) {
                r = log_error_errno(-errno, "Cannot rename '%s' to '%s': %m", tmp, tree);
                image_rm_rf_unshared(tmp, mmdebstrap);
                goto out;
        }
        *ret_tree = TAKE_PTR(tree);
        r = 0;
out:
        image_rm_rf(setup);
        return r;
}

/* ---- stage 2: FAM/E's files, kernel, ext4, qcow2 --------------------------------------------- */

struct payload {
        const char *triplet;            /* "x86_64-linux-gnu", "aarch64-linux-gnu": the node's */
        char *fame_static, *libfame, *include_dir;
        struct image_lfs_files lfs;     /* fame-lfs and the preloaded libraries */
};

static void payload_done(struct payload *pl) {
        free(pl->fame_static);
        free(pl->libfame);
        free(pl->include_dir);
        image_lfs_files_done(&pl->lfs);
}

/* The libraries /etc/ld.so.preload names (debian-files.c), by file name. */
static const char *const preloaded[] = { "libfame-mmap.so", "libfame-pmem.so" };

static const char *preloaded_path(const struct payload *pl, size_t i) {
        return i == 0 ? pl->lfs.mmap_shim : pl->lfs.pmem_shim;
}

/* libfame.so and the headers next to the node binary: a build tree (BUILD/fame-static,
 * BUILD/lib/, the source's include/) or an installation (PREFIX/LIBEXECDIR/fame/fame-static). */
static int find_payload(const char *fame_static, bool arm, struct payload *ret) {
        _cleanup_free_ char *dir = path_dirname(fame_static);
        struct payload pl = { .triplet = arm ? "aarch64-linux-gnu" : "x86_64-linux-gnu" };
        if (!dir)
                return log_error_errno(-ENOMEM, "Out of memory");
        pl.fame_static = strdup(fame_static);
        if (asprintf(&pl.libfame, "%s/lib/%s", dir, FAME_LIBFAME_FILE) >= 0 && access(pl.libfame, R_OK) == 0) {
                if (asprintf(&pl.include_dir, "%s/include/fame", FAME_SOURCE_ROOT) < 0)
                        pl.include_dir = NULL;
        } else {
                free(pl.libfame);
                if (asprintf(&pl.libfame, "%s/../../%s/%s", dir, FAME_LIBDIR, FAME_LIBFAME_FILE) < 0)
                        pl.libfame = NULL;
                if (asprintf(&pl.include_dir, "%s/../../%s/fame", dir, FAME_INCLUDEDIR) < 0)
                        pl.include_dir = NULL;
        }
        if (!pl.fame_static || !pl.libfame || !pl.include_dir) {
                payload_done(&pl);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        if (access(pl.libfame, R_OK) < 0) {
                int r = log_error_errno(-ENOENT, "libfame (%s) not found next to the node binary %s: rebuild with 'make'", FAME_LIBFAME_FILE, fame_static);
                payload_done(&pl);
                return r;
        }
        int r = image_lfs_files(fame_static, !arm, &pl.lfs);
        if (r < 0) {
                payload_done(&pl);
                return r;
        }
        *ret = pl;
        return 0;
}

static const char *const headers[] = { "fame.h", "fam_atomic.h", NULL };

static int hash_payload(struct hash128 *h, const struct payload *pl) {
        int r = hash_file(h, pl->fame_static);
        if (r >= 0)
                r = hash_file(h, pl->libfame);
        if (r >= 0)
                r = hash_file(h, pl->lfs.lfs);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(preloaded); i++)
                r = hash_file(h, preloaded_path(pl, i));
        for (size_t i = 0; r >= 0 && headers[i]; i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s", pl->include_dir, headers[i]);
                r = hash_file(h, path);
                if (r < 0)
                        return log_error_errno(r, "Cannot read '%s': %m", path);
        }
        if (r < 0)
                return log_error_errno(r, "Cannot read FAM/E's node files: %m");
        for (const struct debian_file *f = debian_files; f->path; f++) {
                hash128_str(h, f->path);
                hash128_u64(h, f->mode);
                hash128_str(h, f->content ? f->content : "");
                hash128_str(h, f->target ? f->target : "");
        }
        return 0;
}

static int add_payload(const char *root, const struct payload *pl) {
        char a[PATH_MAX], b[PATH_MAX], libdir[64];
        int r;

        snprintf(libdir, sizeof libdir, "usr/local/lib/%s", pl->triplet);

        snprintf(a, sizeof a, "%s/usr/local/bin/fame", root);
        r = copy_file(pl->fame_static, a, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot copy '%s' to '%s': %m", pl->fame_static, a);
        snprintf(a, sizeof a, "%s/%s/%s", root, libdir, FAME_LIBFAME_FILE);
        r = copy_file(pl->libfame, a, 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot copy '%s' to '%s': %m", pl->libfame, a);
        snprintf(a, sizeof a, "%s/usr/local/sbin/fame-lfs", root);
        r = copy_file(pl->lfs.lfs, a, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot copy '%s' to '%s': %m", pl->lfs.lfs, a);
        for (size_t i = 0; i < ELEMENTSOF(preloaded); i++) {
                snprintf(a, sizeof a, "%s/%s/%s", root, libdir, preloaded[i]);
                r = copy_file(preloaded_path(pl, i), a, 0644);
                if (r < 0)
                        return log_error_errno(r, "Cannot copy '%s' to '%s': %m", preloaded_path(pl, i), a);
        }
        static const char *const links[] = { "libfame.so.0", "libfame.so", "libfam_atomic.so", NULL };
        for (size_t i = 0; links[i]; i++) {
                snprintf(a, sizeof a, "%s/%s/%s", root, libdir, links[i]);
                r = make_symlink(a, i == 0 ? FAME_LIBFAME_FILE : "libfame.so.0");
                if (r < 0)
                        return log_error_errno(r, "Cannot make '%s': %m", a);
        }
        for (size_t i = 0; headers[i]; i++) {
                snprintf(a, sizeof a, "%s/%s", pl->include_dir, headers[i]);
                snprintf(b, sizeof b, "%s/usr/local/include/fame/%s", root, headers[i]);
                r = copy_file(a, b, 0644);
                if (r < 0)
                        return log_error_errno(r, "Cannot copy '%s' to '%s': %m", a, b);
        }
        static const char *const pcs[][2] = {
                { "fame", "FAM/E: fabric-attached memory and fabric atomics" },
                { "fam_atomic", "libfam-atomic compatible fabric atomics (provided by FAM/E libfame)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(pcs); i++) {
                _cleanup_free_ char *pc = NULL;
                int n = asprintf(&pc,
                                 "prefix=/usr/local\n"
                                 "includedir=${prefix}/include\n"
                                 "libdir=${prefix}/lib/%s\n"
                                 "\n"
                                 "Name: %s\n"
                                 "Description: %s\n"
                                 "Version: %s\n"
                                 "Libs: -L${libdir} -lfame\n"
                                 "Libs.private: -pthread\n"
                                 "Cflags: -I${includedir}/fame\n",
                                 pl->triplet, pcs[i][0], pcs[i][1], FAME_VERSION);
                if (n < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
                snprintf(a, sizeof a, "%s/%s/pkgconfig/%s.pc", root, libdir, pcs[i][0]);
                r = write_file(a, 0644, pc, (size_t) n);
                if (r < 0)
                        return log_error_errno(r, "Cannot write '%s': %m", a);
        }
        return write_tree(root, debian_files, pl->triplet);
}

/* Identity files of the base: empty, so that no two nodes share them (fame-setup fills them). */
static int neutralise(const char *root) {
        char path[PATH_MAX];
        glob_t g = { 0 };
        snprintf(path, sizeof path, "%s/etc/ssh/ssh_host_*", root);
        if (glob(path, 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                        (void) unlink(g.gl_pathv[i]);
        globfree(&g);
        static const struct debian_file id[] = {
                { "etc/machine-id", 0444, "", NULL },
                { "etc/hostname", 0644, "debian\n", NULL },
                { "etc/hosts", 0644,
                  "127.0.0.1\tlocalhost\n"
                  "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
                  "ff02::1\t\tip6-allnodes\n"
                  "ff02::2\t\tip6-allrouters\n", NULL },
                { "etc/resolv.conf", 0644, "# FAM/E nodes have no DNS: node names and torms are in /etc/hosts\n", NULL },
                { NULL, 0, NULL, NULL }
        };
        return write_tree(root, id, "");
}

/* /boot/vmlinuz-RELEASE and /boot/initrd.img-RELEASE of the root: exactly one kernel.  An x86_64
 * bzImage becomes the ELF inside it (faster to boot under TCG); an arm64 vmlinuz is already the
 * uncompressed Image QEMU boots. */
static int take_kernel(const char *root, const char *outdir, bool arm, char **ret_release) {
        char pattern[PATH_MAX], vmlinux[PATH_MAX], initrd_src[PATH_MAX], initrd[PATH_MAX];
        glob_t g = { 0 };
        int r;

        snprintf(pattern, sizeof pattern, "%s/boot/vmlinuz-*", root);
        if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc != 1) {
                size_t n = g.gl_pathc;
                globfree(&g);
                return log_error_errno(-ENOENT, "The Debian root has %zu kernels in /boot (expected 1: package linux-image-%s)", n,
                                       arm ? "arm64" : "amd64");
        }
        const char *rel = strrchr(g.gl_pathv[0], '/') + strlen("/vmlinuz-");
        *ret_release = strdup(rel);
        snprintf(vmlinux, sizeof vmlinux, "%s/vmlinux", outdir);
        snprintf(initrd_src, sizeof initrd_src, "%s/boot/initrd.img-%s", root, rel);
        snprintf(initrd, sizeof initrd, "%s/initrd.img", outdir);
        r = arm ? copy_file(g.gl_pathv[0], vmlinux, 0644) : image_extract_vmlinux(g.gl_pathv[0], vmlinux);
        if (r < 0 && arm)
                log_error_errno(r, "Cannot copy the kernel '%s': %m", g.gl_pathv[0]);
        globfree(&g);
        if (r < 0)
                return r;
        r = copy_file(initrd_src, initrd, 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot copy the initrd '%s': %m (is initramfs-tools in the image?)", initrd_src);
        return *ret_release ? 0 : log_error_errno(-ENOMEM, "Out of memory");
}

/* As root (or the root of mmdebstrap's user namespace): the work of stage 2 in tmp, whose
 * payload/ holds FAM/E's files (fame, libfame, include/).  Makes tmp/{vmlinux, initrd.img,
 * base.qcow2, release}.  Tool output goes to log_path. */
int image_debian_populate(const char *tree, const char *tmp, uint64_t disk_size, const char *arch, const char *log_path) {
        _cleanup_free_ char *root = NULL, *raw = NULL, *qcow = NULL, *release = NULL, *cp = image_find_program("cp"),
                            *mke2fs = image_find_program("mke2fs"), *qemu_img = image_find_program("qemu-img");
        bool arm = arch && strcmp(arch, "aarch64") == 0;
        struct payload pl = { .triplet = arm ? "aarch64-linux-gnu" : "x86_64-linux-gnu" };
        int r;

        if (!cp || !mke2fs || !qemu_img)
                return log_error_errno(-ENOENT, "cp, mke2fs or qemu-img not found: install coreutils, e2fsprogs and qemu-utils");
        if (asprintf(&root, "%s/root", tmp) < 0 || asprintf(&raw, "%s/base.raw", tmp) < 0 ||
            asprintf(&qcow, "%s/base.qcow2", tmp) < 0 || asprintf(&pl.fame_static, "%s/payload/fame", tmp) < 0 ||
            asprintf(&pl.libfame, "%s/payload/%s", tmp, FAME_LIBFAME_FILE) < 0 ||
            asprintf(&pl.include_dir, "%s/payload/include", tmp) < 0 ||
            asprintf(&pl.lfs.lfs, "%s/payload/fame-lfs", tmp) < 0 ||
            asprintf(&pl.lfs.mmap_shim, "%s/payload/%s", tmp, preloaded[0]) < 0 ||
            asprintf(&pl.lfs.pmem_shim, "%s/payload/%s", tmp, preloaded[1]) < 0) {
                payload_done(&pl);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        {
                /* hard links: fast, and no file of the cached tree is written (see above) */
                _cleanup_cmd_ struct cmd *c = cmd_new(cp);
                cmd_args(c, (const char *const[]) { "--archive", "--link", tree, root, NULL });
                r = image_run_quiet(c, "cp", log_path, NULL);
        }
        if (r >= 0)
                r = neutralise(root);
        if (r >= 0)
                r = add_payload(root, &pl);
        if (r >= 0)
                r = take_kernel(root, tmp, arm, &release);
        payload_done(&pl);
        if (r < 0)
                return r;

        char size[32];
        snprintf(size, sizeof size, "%" PRIu64 "M", disk_size >> 20);
        log_progress("debian image: ext4 file system of %s (mke2fs -d), kernel %s", size, release);
        {
                _cleanup_cmd_ struct cmd *c = cmd_new(mke2fs);
                cmd_args(c, (const char *const[]) { "-q", "-F", "-t", "ext4", "-L", "fame-root", "-E", "root_owner=0:0",
                                                     "-d", root, raw, size, NULL });
                r = image_run_quiet(c, "mke2fs", log_path, NULL);
                if (r < 0)
                        return r;
        }
        image_rm_rf(root);
        log_progress("debian image: qcow2 base image");
        {
                _cleanup_cmd_ struct cmd *c = cmd_new(qemu_img);
                cmd_args(c, (const char *const[]) { "convert", "-f", "raw", "-O", "qcow2", raw, qcow, NULL });
                r = image_run_quiet(c, "qemu-img convert", log_path, NULL);
                if (r < 0)
                        return r;
        }
        (void) unlink(raw);
        (void) chmod(qcow, 0444);       /* never written: nodes write to their overlays */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/release", tmp);
        r = write_file(path, 0644, release, strlen(release));
        return r < 0 ? log_error_errno(r, "Cannot write '%s': %m", path) : 0;
}

static int copy_payload(const struct payload *pl, const char *tmp) {
        char dst[PATH_MAX], src[PATH_MAX];
        int r;
        snprintf(dst, sizeof dst, "%s/payload/fame", tmp);
        r = copy_file(pl->fame_static, dst, 0755);
        if (r >= 0) {
                snprintf(dst, sizeof dst, "%s/payload/%s", tmp, FAME_LIBFAME_FILE);
                r = copy_file(pl->libfame, dst, 0644);
        }
        if (r >= 0) {
                snprintf(dst, sizeof dst, "%s/payload/fame-lfs", tmp);
                r = copy_file(pl->lfs.lfs, dst, 0755);
        }
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(preloaded); i++) {
                snprintf(dst, sizeof dst, "%s/payload/%s", tmp, preloaded[i]);
                r = copy_file(preloaded_path(pl, i), dst, 0644);
        }
        for (size_t i = 0; r >= 0 && headers[i]; i++) {
                snprintf(src, sizeof src, "%s/%s", pl->include_dir, headers[i]);
                snprintf(dst, sizeof dst, "%s/payload/include/%s", tmp, headers[i]);
                r = copy_file(src, dst, 0644);
        }
        return r < 0 ? log_error_errno(r, "Cannot copy FAM/E's node files to '%s': %m", tmp) : 0;
}

static int stage2(const struct debian_params *p, const char *tree, const struct payload *pl, const char *images,
                  const char *key, const char *final, const char *mmdebstrap) {
        _cleanup_free_ char *tmp = NULL, *logp = NULL, *payload = NULL;
        bool unshared = geteuid() != 0;
        int r;

        if (asprintf(&tmp, "%s/.debian-%s.%d", images, key, (int) getpid()) < 0 || asprintf(&payload, "%s/payload", tmp) < 0 ||
            asprintf(&logp, "%s/debian-%s.log", images, key) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        image_rm_rf_unshared(tmp, mmdebstrap);
        r = mkdir_p(tmp, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create '%s': %m", tmp);
        /* without root, the namespace's root is "others" to our files: it gets a writable
         * directory and its own copy of FAM/E's files */
        if (unshared && chmod(tmp, 0777) < 0) {
                r = log_error_errno(-errno, "Cannot chmod '%s': %m", tmp);
                goto out;
        }
        r = copy_payload(pl, tmp);
        if (r < 0)
                goto out;
        if (unshared && (chmod(payload, 0755) < 0 || chmod(tmp, 0777) < 0)) {
                r = log_error_errno(-errno, "Cannot chmod '%s': %m", payload);
                goto out;
        }

        log_progress("debian image, step 2 of 2: root file system with FAM/E's node files%s",
                     unshared ? " (in mmdebstrap's user namespace)" : "");
        if (!unshared)
                r = image_debian_populate(tree, tmp, p->disk_size, p->arch, logp);
        else {
                char size[32], fame[PATH_MAX];
                snprintf(size, sizeof size, "%" PRIu64, p->disk_size);
                /* the node binary when it is the host's architecture, else this very program */
                if (p->arch && strcmp(p->arch, "aarch64") == 0) {
                        ssize_t k = readlink("/proc/self/exe", fame, sizeof fame - 1);
                        fame[k > 0 ? k : 0] = 0;
                } else
                        snprintf(fame, sizeof fame, "%s/fame", payload);
                _cleanup_cmd_ struct cmd *c = cmd_new(mmdebstrap);
                cmd_args(c, (const char *const[]) { "--unshare-helper", fame, "debug", "populate", tree, tmp, size,
                                                     p->arch ? p->arch : "x86_64", NULL });
                struct image_tool_run t = { .what = "populate" };
                r = image_run_logged(c, logp, &t);
                if (r != 0) {
                        t.last_error[strcspn(t.last_error, "\n")] = 0;
                        r = log_error_errno(r < 0 ? r : -EIO, "Building the image in mmdebstrap's user namespace failed: %s (full output: %s; is %s in /etc/subuid?)",
                                            *t.last_error ? t.last_error : "no message", logp, getenv("USER") ? getenv("USER") : "the user");
                }
        }
        if (r < 0)
                goto out;
        image_rm_rf(payload);
        (void) chmod(tmp, 0755);
        image_rm_rf_unshared(final, mmdebstrap);
        if (rename(tmp, final) < 0) {
                r = log_error_errno(-errno, "Cannot rename '%s' to '%s': %m", tmp, final);
                goto out;
        }
        (void) unlink(logp);
        return 0;
out:
        image_rm_rf_unshared(tmp, mmdebstrap);
        return r;
}

/* ---- entry points ----------------------------------------------------------------------------- */

int image_debian_load(const char *dir, struct image *ret) {
        struct image img = { 0 };
        _cleanup_free_ char *relp = NULL, *release = NULL;

        if (asprintf(&relp, "%s/release", dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        release = read_file(relp, 128, NULL);
        if (!release)
                return -ENOENT;
        release[strcspn(release, "\n")] = 0;
        const char *slash = strrchr(dir, '/');
        const char *key = slash ? slash + 1 : dir;
        if (strncmp(key, "debian-", 7) == 0)
                key += 7;
        img.dir = strdup(dir);
        if (asprintf(&img.kernel, "%s/vmlinux", dir) < 0)
                img.kernel = NULL;
        if (asprintf(&img.initrd, "%s/initrd.img", dir) < 0)
                img.initrd = NULL;
        if (asprintf(&img.base, "%s/base.qcow2", dir) < 0)
                img.base = NULL;
        img.kernel_release = strdup(release);
        img.key = strdup(key);
        if (!img.dir || !img.kernel || !img.initrd || !img.base || !img.kernel_release || !img.key) {
                image_done(&img);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        if (access(img.base, R_OK) < 0 || access(img.kernel, R_OK) < 0 || access(img.initrd, R_OK) < 0) {
                image_done(&img);
                return -ENOENT;
        }
        *ret = img;
        return 0;
}

int image_debian_ensure(const struct debian_params *p, struct image *ret) {
        _cleanup_free_ char *mirror = NULL, *packages = NULL, *tree = NULL, *images = NULL, *final = NULL;
        _cleanup_free_ char *mmdebstrap = NULL, *cp_prog = NULL, *mke2fs = NULL, *qemu_img = NULL;
        struct payload pl = { 0 };
        struct hash128 h;
        char key1[33], key2[33];
        int r;

        if (!p || !p->cache_dir || !*p->cache_dir || !p->release)
                return log_error_errno(-EINVAL, "No cache directory for node images");
        if (!p->fame_static || access(p->fame_static, R_OK) < 0)
                return log_error_errno(-ENOENT, "The node-side fame binary '%s' is missing: build it (make)",
                                       p->fame_static ? p->fame_static : "(none given)");
        bool arm = p->arch && strcmp(p->arch, "aarch64") == 0;
        struct debian_arm_params ap = { .cache_dir = p->cache_dir, .release = p->release, .mirror = p->mirror,
                                        .packages = p->packages, .qemu = p->qemu_aarch64 };
        mirror = p->mirror && *p->mirror ? strdup(p->mirror) : image_debian_host_mirror(p->release, NULL);
        packages = image_debian_package_list("linux-image-amd64", p->packages);
        if (!mirror || !packages)
                return log_error_errno(-ENOMEM, "Out of memory");

        /* stage 1: for arm64 the tree an aarch64 node configured (image-debian-firstboot.c) */
        if (arm) {
                r = image_debian_arm_key(&ap, key1);
                if (r < 0)
                        return r;
        } else
                stage1_key(p->release, mirror, packages, key1);

        r = find_payload(p->fame_static, arm, &pl);
        if (r < 0)
                return r;
        hash128_init(&h);
        hash128_u64(&h, DEBIAN_STAGE2_VERSION);
        hash128_str(&h, key1);
        hash128_str(&h, pl.triplet);
        hash128_u64(&h, p->disk_size);
        r = hash_payload(&h, &pl);
        if (r < 0)
                goto out;
        hash128_hex(&h, key2);

        if (asprintf(&images, "%s/images", p->cache_dir) < 0 || asprintf(&final, "%s/debian-%s", images, key2) < 0) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto out;
        }
        r = image_debian_load(final, ret);
        if (r == 0) {
                (void) utimensat(AT_FDCWD, final, NULL, 0);     /* last use, for cleaning up */
                goto out;
        }
        if (r != -ENOENT)
                goto out;

        /* Building: every tool first, so that nothing starts that cannot finish. */
        cp_prog = image_find_program("cp");
        mke2fs = image_find_program("mke2fs");
        qemu_img = image_find_program("qemu-img");
        if (!cp_prog || !mke2fs || !qemu_img) {
                r = log_error_errno(-ENOENT, "%s not found: install %s (scripts/install-deps)",
                                    !cp_prog ? "cp" : !mke2fs ? "mke2fs" : "qemu-img",
                                    !cp_prog ? "coreutils" : !mke2fs ? "e2fsprogs" : "qemu-utils");
                goto out;
        }
        char a_tree[PATH_MAX];
        snprintf(a_tree, sizeof a_tree, "%s/debian/rootfs-%s", p->cache_dir, key1);
        /* mmdebstrap: stage 1, and without root the user namespace of stage 2 too */
        if ((!arm && access(a_tree, R_OK) < 0) || geteuid() != 0) {
                mmdebstrap = image_find_program("mmdebstrap");
                if (!mmdebstrap) {
                        r = log_error_errno(-ENOENT, "mmdebstrap not found: install it (apt-get install mmdebstrap, or scripts/install-deps)");
                        goto out;
                }
        }
        r = mkdir_p(images, 0755);
        if (r < 0) {
                log_error_errno(r, "Cannot create the image cache '%s': %m", images);
                goto out;
        }
        r = arm ? image_debian_arm_configured(&ap, &tree) : stage1(p, mirror, packages, key1, mmdebstrap, &tree);
        if (r < 0)
                goto out;
        r = stage2(p, tree, &pl, images, key2, final, mmdebstrap);
        if (r < 0)
                goto out;
        r = image_debian_load(final, ret);
        if (r < 0) {
                r = log_error_errno(-EIO, "The new image '%s' is incomplete", final);
                goto out;
        }
        ret->built = true;
out:
        payload_done(&pl);
        return r;
}
