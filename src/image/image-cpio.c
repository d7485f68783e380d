/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The initramfs writer: an in-memory list of entries, sorted and deduplicated, written as an
 * uncompressed cpio "newc" archive (the format the kernel unpacks, see
 * Documentation/driver-api/early-userspace/buffer-format.rst): per entry a 110-byte ASCII
 * header "070701" + 13 fields of 8 hex digits, the NUL-terminated name padded to 4 bytes, the
 * data padded to 4 bytes; "TRAILER!!!" last.  Owner 0:0, mtime 0 and sequential inode
 * numbers make the output a pure function of the entry list.
 *
 * Also the 128-bit FNV-1a hash used for cache keys.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "image-internal.h"
#include "log.h"
#include "util.h"
#include "macro.h"

/* ---- FNV-1a 128 ------------------------------------------------------------------------- */

#define FNV128_OFFSET ((((fnv128_t) 0x6c62272e07bb0142ULL) << 64) | 0x62b821756295c58dULL)
/* The prime is 2^88 + 0x13b, so h * prime = (h << 88) + h * 0x13b. */

void hash128_init(struct hash128 *h) {
        h->h = FNV128_OFFSET;
}

void hash128_update(struct hash128 *h, const void *data, size_t len) {
        const unsigned char *p = data;
        fnv128_t v = h->h;
        for (size_t i = 0; i < len; i++) {
                v ^= p[i];
                v = (v << 88) + v * 0x13b;
        }
        h->h = v;
}

void hash128_u64(struct hash128 *h, uint64_t v) {
        unsigned char b[8];
        for (int i = 0; i < 8; i++)
                b[i] = (unsigned char) (v >> (8 * i));
        hash128_update(h, b, sizeof b);
}

void hash128_str(struct hash128 *h, const char *s) {
        size_t n = s ? strlen(s) : 0;
        hash128_u64(h, n);
        hash128_update(h, s, n);
}

int hash128_fd(struct hash128 *h, int fd, uint64_t *ret_size) {
        struct hash128 c;
        uint64_t total = 0;
        _cleanup_free_ unsigned char *buf = malloc(1 << 20);
        if (!buf)
                return -ENOMEM;
        hash128_init(&c);
        for (;;) {
                ssize_t k = pread(fd, buf, 1 << 20, (off_t) total);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                hash128_update(&c, buf, (size_t) k);
                total += (uint64_t) k;
        }
        /* Size first, then the contents' own hash: a file's contribution is self-delimiting. */
        hash128_u64(h, total);
        hash128_update(h, &c.h, sizeof c.h);
        if (ret_size)
                *ret_size = total;
        return 0;
}

void hash128_hex(const struct hash128 *h, char out[33]) {
        uint64_t hi = (uint64_t) (h->h >> 64), lo = (uint64_t) h->h;
        snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, hi, lo);
}

/* ---- the entry list --------------------------------------------------------------------- */

static char *normalize_path(const char *path) {
        while (*path == '/')
                path++;
        char *s = strdup(path);
        if (!s)
                return NULL;
        /* collapse "//" and drop a trailing '/' */
        char *w = s;
        for (const char *r = s; *r; r++) {
                if (*r == '/' && (w == s || w[-1] == '/'))
                        continue;
                *w++ = *r;
        }
        while (w > s && w[-1] == '/')
                w--;
        *w = 0;
        return s;
}

static bool path_ok(const char *p) {
        if (!*p)
                return false;
        for (const char *c = p; *c;) {
                const char *e = strchrnul(c, '/');
                size_t n = (size_t) (e - c);
                if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c = *e ? e + 1 : e;
        }
        return true;
}

static struct cpio_entry *push(struct cpio_list *l) {
        if (l->n == l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 256;
                struct cpio_entry *e = realloc(l->entries, na * sizeof *e);
                if (!e)
                        return NULL;
                l->entries = e;
                l->allocated = na;
        }
        struct cpio_entry *e = &l->entries[l->n++];
        *e = (struct cpio_entry) { 0 };
        return e;
}

static void entry_free(struct cpio_entry *e) {
        free(e->path);
        free(e->src);
        free(e->data);
}

/* Takes ownership of path (normalized), src and data, also on failure. */
static int add(struct cpio_list *l, char *path, enum cpio_kind kind, mode_t mode, char *src,
               char *data, size_t data_len, unsigned major, unsigned minor) {
        l->finished = false;
        size_t seq = ++l->seq;

        /* implicit parents, with this entry's sequence number: a later file inside a directory
         * wins over an earlier non-directory at the directory's path */
        for (char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
                char *parent = strndup(path, (size_t) (slash - path));
                struct cpio_entry *e = parent ? push(l) : NULL;
                if (!e) {
                        free(parent);
                        free(path);
                        free(src);
                        free(data);
                        return -ENOMEM;
                }
                e->path = parent;
                e->kind = CPIO_DIR;
                e->mode = S_IFDIR | 0755;
                e->seq = seq;
                e->implicit = true;
        }

        struct cpio_entry *e = push(l);
        if (!e) {
                free(path);
                free(src);
                free(data);
                return -ENOMEM;
        }
        e->path = path;
        e->kind = kind;
        e->mode = mode;
        e->src = src;
        e->data = data;
        e->data_len = data_len;
        e->rdev_major = major;
        e->rdev_minor = minor;
        e->seq = seq;
        return 0;
}

static int norm_or_fail(const char *path, char **ret) {
        char *p = normalize_path(path);
        if (!p)
                return -ENOMEM;
        if (!path_ok(p)) {
                free(p);
                return log_error_errno(-EINVAL, "Invalid path '%s' for the node image", path);
        }
        *ret = p;
        return 0;
}

int cpio_add_dir(struct cpio_list *l, const char *path, mode_t perm) {
        char *p;
        int r = norm_or_fail(path, &p);
        if (r < 0)
                return r;
        return add(l, p, CPIO_DIR, S_IFDIR | (perm & 07777), NULL, NULL, 0, 0, 0);
}

int cpio_add_file(struct cpio_list *l, const char *path, mode_t perm, const char *src) {
        char *p, *s;
        int r = norm_or_fail(path, &p);
        if (r < 0)
                return r;
        s = strdup(src);
        if (!s) {
                free(p);
                return -ENOMEM;
        }
        return add(l, p, CPIO_FILE, S_IFREG | (perm & 07777), s, NULL, 0, 0, 0);
}

int cpio_add_data(struct cpio_list *l, const char *path, mode_t perm, const void *data, size_t len) {
        char *p, *d;
        int r = norm_or_fail(path, &p);
        if (r < 0)
                return r;
        d = malloc(len + 1);
        if (!d) {
                free(p);
                return -ENOMEM;
        }
        memcpy(d, data, len);
        d[len] = 0;
        return add(l, p, CPIO_DATA, S_IFREG | (perm & 07777), NULL, d, len, 0, 0);
}

int cpio_add_symlink(struct cpio_list *l, const char *path, const char *target) {
        char *p, *t;
        int r = norm_or_fail(path, &p);
        if (r < 0)
                return r;
        t = strdup(target);
        if (!t) {
                free(p);
                return -ENOMEM;
        }
        return add(l, p, CPIO_SYMLINK, S_IFLNK | 0777, NULL, t, strlen(t), 0, 0);
}

int cpio_add_node(struct cpio_list *l, const char *path, mode_t mode, unsigned major, unsigned minor) {
        char *p;
        if (!S_ISCHR(mode) && !S_ISBLK(mode))
                return -EINVAL;
        int r = norm_or_fail(path, &p);
        if (r < 0)
                return r;
        return add(l, p, CPIO_NODE, mode, NULL, NULL, 0, major, minor);
}

/* host: an absolute path; top: follow a symlink at host itself (the root of the tree). */
static int add_tree_at(struct cpio_list *l, const char *host, const char *path, bool top) {
        struct stat st;
        int r;

        if ((top ? stat(host, &st) : lstat(host, &st)) < 0)
                return log_error_errno(-errno, "Cannot read '%s': %m", host);
        if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t k = readlink(host, target, sizeof target - 1);
                if (k < 0)
                        return log_error_errno(-errno, "Cannot read symlink '%s': %m", host);
                target[k] = 0;
                return cpio_add_symlink(l, path, target);
        }
        if (S_ISREG(st.st_mode)) {
                if (access(host, R_OK) < 0)
                        return log_error_errno(-errno, "Cannot read '%s': %m", host);
                return cpio_add_file(l, path, st.st_mode, host);
        }
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
                return cpio_add_node(l, path, st.st_mode, major(st.st_rdev), minor(st.st_rdev));
        if (!S_ISDIR(st.st_mode)) {
                log_warning("Skipping '%s': not a file, directory, device or symlink", host);
                return 0;
        }

        /* a directory; the root of the archive ("" path) is not an entry of its own */
        _cleanup_free_ char *node = normalize_path(path);
        if (!node)
                return -ENOMEM;
        if (*node) {
                r = cpio_add_dir(l, node, st.st_mode);
                if (r < 0)
                        return r;
        }

        DIR *d = opendir(host);
        if (!d)
                return log_error_errno(-errno, "Cannot open directory '%s': %m", host);
        r = 0;
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno)
                                r = log_error_errno(-errno, "Cannot read directory '%s': %m", host);
                        break;
                }
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *child = NULL, *child_host = NULL;
                if (asprintf(&child, "%s/%s", node, de->d_name) < 0 ||
                    asprintf(&child_host, "%s/%s", host, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = add_tree_at(l, child_host, child, false);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

int cpio_add_tree(struct cpio_list *l, const char *host, const char *path) {
        _cleanup_free_ char *abs = realpath(host, NULL);
        if (!abs)
                return log_error_errno(-errno, "Cannot find '%s': %m", host);
        return add_tree_at(l, abs, path, true);
}

static int cmp_entry(const void *a, const void *b) {
        const struct cpio_entry *x = a, *y = b;
        int c = strcmp(x->path, y->path);
        if (c)
                return c;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_path_key(const void *key, const void *elem) {
        return strcmp(key, ((const struct cpio_entry *) elem)->path);
}

int cpio_finish(struct cpio_list *l) {
        if (l->finished)
                return 0;
        qsort(l->entries, l->n, sizeof *l->entries, cmp_entry);

        /* Keep one entry per path: the last addition, except that an implicit directory gives
         * way to the last explicit directory (which has the intended mode). */
        size_t w = 0;
        for (size_t i = 0; i < l->n;) {
                size_t j = i;
                while (j < l->n && !strcmp(l->entries[j].path, l->entries[i].path))
                        j++;
                size_t keep = j - 1;
                if (l->entries[keep].implicit)
                        for (size_t k = j; k-- > i;)
                                if (!l->entries[k].implicit) {
                                        if (l->entries[k].kind == CPIO_DIR)
                                                keep = k;
                                        break;
                                }
                for (size_t k = i; k < j; k++)
                        if (k != keep)
                                entry_free(&l->entries[k]);
                l->entries[w++] = l->entries[keep];
                i = j;
        }
        l->n = w;

        /* Drop entries under a path that is not a directory (a later file replaced it).  The
         * list is sorted, so a parent's fate is decided before its children's. */
        bool *dropped = calloc(l->n ? l->n : 1, sizeof *dropped);
        if (!dropped)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                const char *slash = strrchr(l->entries[i].path, '/');
                if (!slash)
                        continue;
                char *parent = strndup(l->entries[i].path, (size_t) (slash - l->entries[i].path));
                if (!parent) {
                        free(dropped);
                        return -ENOMEM;
                }
                struct cpio_entry *p = bsearch(parent, l->entries, l->n, sizeof *l->entries, cmp_path_key);
                free(parent);
                if (!p || p->kind != CPIO_DIR || dropped[p - l->entries])
                        dropped[i] = true;
        }
        w = 0;
        for (size_t i = 0; i < l->n; i++) {
                if (dropped[i])
                        entry_free(&l->entries[i]);
                else
                        l->entries[w++] = l->entries[i];
        }
        l->n = w;
        free(dropped);
        l->finished = true;
        return 0;
}

int cpio_hash(const struct cpio_list *l, struct hash128 *h) {
        for (size_t i = 0; i < l->n; i++) {
                const struct cpio_entry *e = &l->entries[i];
                hash128_str(h, e->path);
                hash128_u64(h, e->kind);
                hash128_u64(h, e->mode);
                switch (e->kind) {
                case CPIO_DIR:
                        break;
                case CPIO_FILE: {
                        hash128_str(h, e->src);
                        _cleanup_close_ int fd = open(e->src, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                return log_error_errno(-errno, "Cannot open '%s': %m", e->src);
                        int r = hash128_fd(h, fd, NULL);
                        if (r < 0)
                                return log_error_errno(r, "Cannot read '%s': %m", e->src);
                        break;
                }
                case CPIO_DATA:
                case CPIO_SYMLINK:
                        hash128_u64(h, e->data_len);
                        hash128_update(h, e->data, e->data_len);
                        break;
                case CPIO_NODE:
                        hash128_u64(h, e->rdev_major);
                        hash128_u64(h, e->rdev_minor);
                        break;
                }
        }
        return 0;
}

static int write_header(int fd, uint64_t *off, uint32_t ino, uint32_t mode, uint32_t nlink, uint64_t size,
                        uint32_t rmajor, uint32_t rminor, const char *name) {
        char buf[110 + PATH_MAX + 8];
        size_t namesize = strlen(name) + 1;
        if (size > UINT32_MAX)
                return -EFBIG;
        if (namesize > PATH_MAX)
                return -ENAMETOOLONG;
        int n = snprintf(buf, sizeof buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
                         ino, mode, 0u, 0u, nlink, 0u, (uint32_t) size, 0u, 0u, rmajor, rminor,
                         (uint32_t) namesize, 0u);
        memcpy(buf + n, name, namesize);
        size_t len = (size_t) n + namesize;
        while (len % 4)
                buf[len++] = 0;
        *off += len;
        return write_all(fd, buf, len);
}

static int write_pad(int fd, uint64_t *off) {
        static const char zero[4];
        size_t pad = (size_t) ((4 - *off % 4) % 4);
        *off += pad;
        return pad ? write_all(fd, zero, pad) : 0;
}

static int copy_file(int fd, uint64_t *off, int in, uint64_t size, const char *src) {
        _cleanup_free_ char *buf = malloc(1 << 20);
        uint64_t left = size;
        if (!buf)
                return -ENOMEM;
        while (left > 0) {
                size_t want = left < (1 << 20) ? (size_t) left : (1 << 20);
                ssize_t k = read(in, buf, want);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(-errno, "Cannot read '%s': %m", src);
                }
                if (k == 0)
                        return log_error_errno(-EIO, "'%s' shrank while the image was built", src);
                int r = write_all(fd, buf, (size_t) k);
                if (r < 0)
                        return log_error_errno(r, "Cannot write the initramfs: %m");
                left -= (uint64_t) k;
        }
        *off += size;
        return 0;
}

int cpio_write(const struct cpio_list *l, int fd, uint64_t *ret_size) {
        uint64_t off = 0;
        uint32_t ino = 0;
        int r;

        if (!l->finished)
                return -EINVAL;
        for (size_t i = 0; i < l->n; i++) {
                const struct cpio_entry *e = &l->entries[i];
                ino++;
                switch (e->kind) {
                case CPIO_DIR:
                        r = write_header(fd, &off, ino, (uint32_t) e->mode, 2, 0, 0, 0, e->path);
                        break;
                case CPIO_NODE:
                        r = write_header(fd, &off, ino, (uint32_t) e->mode, 1, 0, e->rdev_major, e->rdev_minor, e->path);
                        break;
                case CPIO_DATA:
                case CPIO_SYMLINK:
                        r = write_header(fd, &off, ino, (uint32_t) e->mode, 1, e->data_len, 0, 0, e->path);
                        if (r >= 0)
                                r = write_all(fd, e->data, e->data_len);
                        off += e->data_len;
                        if (r >= 0)
                                r = write_pad(fd, &off);
                        break;
                case CPIO_FILE: {
                        struct stat st;
                        _cleanup_close_ int in = open(e->src, O_RDONLY | O_CLOEXEC);
                        if (in < 0 || fstat(in, &st) < 0)
                                return log_error_errno(-errno, "Cannot open '%s': %m", e->src);
                        r = write_header(fd, &off, ino, (uint32_t) e->mode, 1, (uint64_t) st.st_size, 0, 0, e->path);
                        if (r == -EFBIG)
                                return log_error_errno(r, "'%s' is too large for a cpio newc archive (4 GiB limit)", e->src);
                        if (r < 0)
                                break;
                        r = copy_file(fd, &off, in, (uint64_t) st.st_size, e->src);
                        if (r < 0)
                                return r;
                        r = write_pad(fd, &off);
                        break;
                }
                default:
                        r = -EINVAL;
                }
                if (r < 0)
                        return log_error_errno(r, "Cannot write the initramfs entry '%s': %m", e->path);
        }
        r = write_header(fd, &off, 0, 0, 1, 0, 0, 0, "TRAILER!!!");
        if (r < 0)
                return log_error_errno(r, "Cannot write the initramfs: %m");
        if (ret_size)
                *ret_size = off;
        return 0;
}

void cpio_list_done(struct cpio_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                entry_free(&l->entries[i]);
        free(l->entries);
        *l = (struct cpio_list) { 0 };
}
