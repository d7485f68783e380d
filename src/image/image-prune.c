/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame image prune (image.h): the node images in the cache that no cluster boots from.  Every
 * rebuild (a new FAM/E, a new kernel, another overlay) makes a new CACHE/images/KEY (diskless,
 * ~15 MB plus a kernel shared by hard link) or CACHE/images/debian-KEY (~600 MB); the old ones
 * stay until this removes them.  Kept: the images a cluster's plan names (STATE/cluster.json),
 * the shared kernels (images/vmlinux-*) such an image links, and the newest Debian tree of stage 1
 * of each architecture (CACHE/debian/rootfs-*, rootfs-arm64-*: what the next Debian rebuild
 * starts from).  The package downloads
 * (CACHE/debian/debs, CACHE/arch) are kept: they make rebuilds fast and do not multiply.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image-internal.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "util.h"

static uint64_t tree_bytes_sum;

static int add_bytes(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) path;
        (void) flag;
        (void) ftw;
        if (S_ISREG(st->st_mode) && st->st_nlink == 1)      /* a hard-linked kernel is counted once, apart */
                tree_bytes_sum += (uint64_t) st->st_blocks * 512;
        return 0;
}

/* Bytes a tree holds on disk (not counting files it shares by hard link). */
static uint64_t tree_bytes(const char *path) {
        tree_bytes_sum = 0;
        (void) nftw(path, add_bytes, 32, FTW_PHYS);
        return tree_bytes_sum;
}

static bool is_used(const char *path, char *const *used) {
        size_t n = strlen(path);
        for (char *const *u = used; u && *u; u++)
                if (strncmp(*u, path, n) == 0 && ((*u)[n] == '/' || (*u)[n] == 0))
                        return true;
        return false;
}

/* Whether an image kept links the kernel file with inode ino. */
static bool kernel_linked(const char *images, ino_t ino, char *const *kept, size_t n_kept) {
        for (size_t i = 0; i < n_kept; i++) {
                _cleanup_free_ char *dir = strf("%s/%s", images, kept[i]);
                DIR *d = dir ? opendir(dir) : NULL;
                struct dirent *de;
                bool found = false;
                while (d && !found && (de = readdir(d))) {
                        struct stat st;
                        _cleanup_free_ char *p = strf("%s/%s", dir, de->d_name);
                        found = p && lstat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == ino;
                }
                if (d)
                        closedir(d);
                if (found)
                        return true;
        }
        return false;
}

static int prune_one(const char *path, const char *what, bool dry_run, image_prune_fn each, void *userdata, uint64_t *freed) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return 0;
        uint64_t bytes = S_ISDIR(st.st_mode) ? tree_bytes(path) : (uint64_t) st.st_blocks * 512;
        if (!dry_run) {
                if (S_ISDIR(st.st_mode))
                        image_rm_rf(path);
                else if (unlink(path) < 0)
                        return log_error_errno(-errno, "Cannot remove '%s': %m", path);
                if (access(path, F_OK) == 0)
                        return log_error_errno(-EIO, "Cannot remove all of '%s'; check its permissions", path);
        }
        *freed += bytes;
        each(path, what, bytes, userdata);
        return 0;
}

int image_prune(const char *cache_dir, char *const *used, bool dry_run, image_prune_fn each, void *userdata, uint64_t *ret_freed) {
        _cleanup_free_ char *images = strf("%s/images", cache_dir), *debian = strf("%s/debian", cache_dir);
        char **kept = NULL;
        size_t n_kept = 0;
        uint64_t freed = 0;
        int r = 0;

        if (!images || !debian)
                return log_error_errno(-ENOMEM, "Out of memory");
        /* the images: one directory each */
        DIR *d = opendir(images);
        if (!d && errno != ENOENT)
                return log_error_errno(-errno, "Cannot read '%s': %m", images);
        struct dirent *de;
        while (d && r >= 0 && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;       /* ".", "..", and images being built (".tmp-*") */
                _cleanup_free_ char *p = strf("%s/%s", images, de->d_name);
                struct stat st;
                if (!p || lstat(p, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (is_used(p, used)) {
                        char **nk = realloc(kept, (n_kept + 1) * sizeof *nk);
                        if (!nk || !(nk[n_kept] = strdup(de->d_name))) {
                                kept = nk ? nk : kept;
                                r = log_error_errno(-ENOMEM, "Out of memory");
                                break;
                        }
                        kept = nk;
                        n_kept++;
                        continue;
                }
                bool deb = strncmp(de->d_name, "debian-", 7) == 0;
                r = prune_one(p, deb ? "Debian image" : "diskless image", dry_run, each, userdata, &freed);
                _cleanup_free_ char *logp = deb ? strf("%s.log", p) : NULL;
                if (r >= 0 && logp && access(logp, F_OK) == 0)
                        r = prune_one(logp, "its build log", dry_run, each, userdata, &freed);
        }
        if (d)
                closedir(d);
        /* the kernels images share by hard link: kept while a kept image links them */
        d = r >= 0 ? opendir(images) : NULL;
        while (d && r >= 0 && (de = readdir(d))) {
                if (strncmp(de->d_name, "vmlinux-", 8) != 0)
                        continue;
                _cleanup_free_ char *p = strf("%s/%s", images, de->d_name);
                struct stat st;
                if (p && lstat(p, &st) == 0 && S_ISREG(st.st_mode) && !kernel_linked(images, st.st_ino, kept, n_kept))
                        r = prune_one(p, "shared kernel", dry_run, each, userdata, &freed);
        }
        if (d)
                closedir(d);
        /* Debian's stage-1 trees: the newest of each architecture (rootfs-KEY for x86_64,
         * rootfs-arm64-KEY) is what the next rebuild starts from.  What failed arm64 first
         * boots left to look at (firstboot-KEY.failed, with a 6 GiB sparse disk) and the
         * unconfigured trees they started from go too. */
        d = r >= 0 ? opendir(debian) : NULL;
        char *newest[2] = { NULL, NULL };
        time_t newest_t[2] = { 0, 0 };
        while (d && (de = readdir(d))) {
                struct stat st;
                int arm = strncmp(de->d_name, "rootfs-arm64-", 13) == 0;
                _cleanup_free_ char *p = strf("%s/%s", debian, de->d_name);
                if (strncmp(de->d_name, "rootfs-", 7) == 0 && !strchr(de->d_name, '.') && p && lstat(p, &st) == 0 &&
                    S_ISDIR(st.st_mode) && (!newest[arm] || st.st_mtime > newest_t[arm])) {
                        free(newest[arm]);
                        newest[arm] = strdup(de->d_name);
                        newest_t[arm] = st.st_mtime;
                }
        }
        if (d)
                rewinddir(d);
        while (d && r >= 0 && (de = readdir(d))) {
                const char *what;
                int arm = strncmp(de->d_name, "rootfs-arm64-", 13) == 0;
                if (strncmp(de->d_name, "rootfs-", 7) == 0) {
                        if (newest[arm] && strncmp(de->d_name, newest[arm], strlen(newest[arm])) == 0)
                                continue;
                        what = strstr(de->d_name, ".log") ? "its build log" : "Debian tree (stage 1)";
                } else if (strncmp(de->d_name, "firstboot-", 10) == 0)
                        what = strstr(de->d_name, ".log") ? "its build log" : "failed arm64 first boot";
                else if (strncmp(de->d_name, "arm64-unpacked-", 15) == 0)
                        what = strstr(de->d_name, ".log") ? "its build log" : "unconfigured arm64 tree";
                else
                        continue;
                _cleanup_free_ char *p = strf("%s/%s", debian, de->d_name);
                if (p)
                        r = prune_one(p, what, dry_run, each, userdata, &freed);
        }
        if (d)
                closedir(d);
        free(newest[0]);
        free(newest[1]);
        for (size_t i = 0; i < n_kept; i++)
                free(kept[i]);
        free(kept);
        if (ret_freed)
                *ret_freed = freed;
        return r;
}
