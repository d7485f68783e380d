/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "dircache.h"
#include "fame.h"
#include "lfs.h"
#include "librarian-client.h"
#include "relay.h"
#include "log.h"
#include "macro.h"
#include "proto.h"
#include "util.h"

#include "lfs-internal.h"

/* Before a Librarian request of the current FUSE operation: the shared connection, acting as
 * the operation's caller (uid, gid, pid on this node). */
struct fame_librarian *lcall_begin(struct lfs *l) {
        struct fuse_context *ctx = fuse_get_context();

        pthread_mutex_lock(&l->lock);
        librarian_set_caller(l->lib, ctx ? ctx->uid : getuid(), ctx ? ctx->gid : getgid(), ctx && ctx->pid ? ctx->pid : getpid());
        return l->lib;
}

/* After it: a lost Librarian is EIO (the connection resent reads once and retried idempotent
 * changes for up to LFS_RESTART_WAIT_SECONDS). */
int lcall_end(struct lfs *l, int r) {
        if (r < 0) {
                if (librarian_transport_error(r)) {
                        log_error("fame-lfs: %s: %s", librarian_last_command(l->lib), fame_librarian_error(l->lib));
                        r = -EIO;
                } else
                        log_debug("fame-lfs: %s: %s", librarian_last_command(l->lib), fame_librarian_error(l->lib));
        }
        pthread_mutex_unlock(&l->lock);
        return r;
}

/* What the operation just made (create_shelf, mkdir, symlink) says of it: libfuse asks for its
 * attributes right after, in the same thread, and gets these without another request. */
static _Thread_local struct {
        char path[4096];
        struct stat st;
        bool valid;
} fresh;

struct lfs_file {
        int64_t id, handle;
        uint64_t size, generation;
        bool loaded;                    /* offsets hold the books (open leaves it for the first use) */
        uint64_t *offsets;              /* FAM offset of each book */
        size_t n;
        pthread_mutex_t lock;
};

static struct lfs *L(void) {
        return fuse_get_context()->private_data;
}


static int64_t member(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return json_object_get_int64(v);
}

static void fill_stat(struct lfs *l, struct json_object *s, struct stat *st) {
        memset(st, 0, sizeof *st);
        st->st_ino = (ino_t) member(s, "id");
        st->st_mode = (mode_t) member(s, "mode");
        st->st_nlink = (nlink_t) member(s, "link_count");
        if (st->st_nlink == 0)
                st->st_nlink = 1;
        st->st_uid = (uid_t) member(s, "uid");
        st->st_gid = (gid_t) member(s, "gid");
        st->st_size = (off_t) member(s, "size_bytes");
        st->st_blksize = 4096;
        st->st_blocks = (blkcnt_t) ((uint64_t) member(s, "book_count") * l->book_size / 512);
        st->st_mtim.tv_sec = st->st_atim.tv_sec = (time_t) member(s, "mtime");
        st->st_ctim.tv_sec = (time_t) member(s, "ctime");
}

/* What a shelf the current operation made looks like: its record, owned by the caller (the
 * Librarian makes it so), for the getattr that follows. */
static void remember_fresh(struct lfs *l, const char *path, struct json_object *s) {
        struct fuse_context *ctx = fuse_get_context();
        fresh.valid = false;
        if (!s || strlen(path) >= sizeof fresh.path)
                return;
        fill_stat(l, s, &fresh.st);
        fresh.st.st_uid = ctx->uid;
        fresh.st.st_gid = ctx->gid;
        snprintf(fresh.path, sizeof fresh.path, "%s", path);
        fresh.valid = true;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
        struct lfs *l = L();
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        (void) fi;
        if (fresh.valid) {
                fresh.valid = false;
                if (strcmp(fresh.path, path) == 0) {
                        *st = fresh.st;
                        return 0;
                }
        }
        /* a name a kept listing has; one it lacks is asked for (never remembered missing: a
         * shelf another node just made is there at once) */
        if (l->dirs && dircache_lookup(l->dirs, path, st) > 0)
                return 0;
        uint64_t epoch = l->dirs ? dircache_epoch(l->dirs) : 0;
        int r = LCALL(l, librarian_fame_stat_shelf, path, &s);
        if (r < 0)
                return r;
        fill_stat(l, s, st);
        if (l->dirs)
                dircache_put_attr(l->dirs, path, st, epoch);
        return 0;
}

/* This mount changed path: what is cached of it goes (the kernel's is dropped by the kernel). */
static void changed(struct lfs *l, const char *path) {
        if (l->dirs)
                dircache_drop(l->dirs, path);
}

/* This mount made or removed the file or link path: its directory's listing goes, not the
 * directory's attributes (docs/lfs.md, "Caching": its times lag behind for up to the cache
 * timeout), which the kernel asks for again after every such change. */
static void changed_entry(struct lfs *l, const char *path) {
        if (l->dirs)
                dircache_drop_entry(l->dirs, path);
}

struct fill {
        void *buf;
        fuse_fill_dir_t filler;
        bool plus;
};

static void fill_entry(const struct dircache_entry *e, void *userdata) {
        struct fill *f = userdata;
        if (f->plus)
                f->filler(f->buf, e->name, &e->st, 0, FUSE_FILL_DIR_PLUS);
        else
                f->filler(f->buf, e->name, NULL, 0, 0);
}

static void dircache_fill(struct json_object *record, struct stat *st, void *userdata) {
        fill_stat(userdata, record, st);
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
        struct lfs *l = L();
        _cleanup_(json_object_putp) struct json_object *list = NULL;
        struct fill f = { buf, filler, flags & FUSE_READDIR_PLUS };
        (void) off; (void) fi;
        filler(buf, ".", NULL, 0, 0);
        filler(buf, "..", NULL, 0, 0);
        /* a kept listing, its attributes converted once */
        if (l->dirs && dircache_each(l->dirs, path, fill_entry, &f) > 0)
                return 0;
        /* one request gives names and attributes: `ls -l` asks for nothing more */
        uint64_t epoch = l->dirs ? dircache_epoch(l->dirs) : 0;
        int r = LCALL(l, librarian_fame_list_dir, path, &list);
        if (r < 0)
                return r;
        if (l->dirs)
                dircache_put(l->dirs, path, list, epoch);
        for (size_t i = 2; i < json_object_array_length(list); i++) {
                struct json_object *s = json_object_array_get_idx(list, i), *name = NULL;
                if (!json_object_object_get_ex(s, "name", &name))
                        continue;
                if (flags & FUSE_READDIR_PLUS) {
                        struct stat st;
                        fill_stat(l, s, &st);
                        filler(buf, json_object_get_string(name), &st, 0, FUSE_FILL_DIR_PLUS);
                } else
                        filler(buf, json_object_get_string(name), NULL, 0, 0);
        }
        return 0;
}

/* The shelf's books and size, into f. */
static int load_books(struct lfs *l, const char *path, struct lfs_file *f) {
        _cleanup_(json_object_putp) struct json_object *s = NULL, *books = NULL;
        uint64_t gen = __atomic_load_n(&l->generation, __ATOMIC_ACQUIRE);
        int r = LCALL(l, librarian_get_shelf, path, &s);
        if (r >= 0)
                r = LCALL(l, librarian_list_shelf_books, path, &books);
        if (r < 0)
                return r;
        uint64_t *o = NULL;
        size_t n = 0;
        r = librarian_book_offsets(l->stats, books, l->book_area, fame_size(l->fam), &o, &n, NULL);
        if (r < 0)
                return r;
        free(f->offsets);
        f->offsets = o;
        f->n = n;
        f->size = (uint64_t) member(s, "size_bytes");
        f->generation = gen;
        f->loaded = true;
        return 0;
}

static struct lfs_file *file_new(struct json_object *shelf) {
        struct lfs_file *f = calloc(1, sizeof *f);
        if (!f)
                return NULL;
        f->id = member(shelf, "id");
        f->handle = member(shelf, "open_handle");
        f->size = (uint64_t) member(shelf, "size_bytes");
        pthread_mutex_init(&f->lock, NULL);
        return f;
}

static void file_free(struct lfs_file *f) {
        if (!f)
                return;
        pthread_mutex_destroy(&f->lock);
        free(f->offsets);
        free(f);
}

static int open_common(const char *path, struct fuse_file_info *fi, struct json_object *shelf) {
        struct lfs *l = L();
        struct lfs_file *f = file_new(shelf);
        if (!f)
                return -ENOMEM;
        /* no books yet: nothing to ask; else they are asked for at the first read or write */
        if (member(shelf, "book_count") == 0) {
                f->generation = __atomic_load_n(&l->generation, __ATOMIC_ACQUIRE);
                f->loaded = true;
        }
        (void) path;
        fi->fh = (uint64_t) (uintptr_t) f;
        fi->direct_io = 1;      /* every read and write goes to FAM: other nodes' stores are seen */
        fi->keep_cache = 0;
        return 0;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
        struct lfs *l = L();
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        int r = LCALL(l, librarian_create_shelf, path, S_IFREG | (mode & 07777), &s);
        changed_entry(l, path);
        if (r < 0)
                return r;
        remember_fresh(l, path, s);
        return open_common(path, fi, s);
}

static int op_open(const char *path, struct fuse_file_info *fi) {
        struct lfs *l = L();
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        int acc = fi->flags & O_ACCMODE, want = acc == O_RDONLY ? 4 : acc == O_WRONLY ? 2 : 6, r = 0;
        /* caching, the kernel checks permissions (default_permissions) */
        if (l->cache_timeout <= 0)
                r = LCALL(l, librarian_fame_access, path, want, NULL);
        if (r >= 0)
                r = LCALL(l, librarian_open_shelf, path, &s);
        if (r < 0)
                return r;
        return open_common(path, fi, s);
}

static int op_release(const char *path, struct fuse_file_info *fi) {
        struct lfs_file *f = (struct lfs_file *) (uintptr_t) fi->fh;
        (void) path;
        if (!f)
                return 0;
        /* the reply is not waited for: the next request on the connection comes after it */
        (void) LCALL(L(), librarian_close_shelf_nowait, f->id, f->handle);
        file_free(f);
        return 0;
}

/* The cached books are good for [0, size) while nobody shrank any shelf since. */
static int ensure_books(struct lfs *l, const char *path, struct lfs_file *f, uint64_t end) {
        if (f->loaded && f->generation == __atomic_load_n(&l->generation, __ATOMIC_ACQUIRE) && end <= f->size)
                return 0;
        return load_books(l, path, f);
}

static int resize(struct lfs *l, const char *path, int64_t id, uint64_t size) {
        int r = LCALL(l, librarian_resize_shelf, path, id, (int64_t) size, false, NULL);
        changed(l, path);
        __atomic_add_fetch(&l->generation, 1, __ATOMIC_ACQ_REL);
        return r;
}

/* Copies between buf and the shelf's bytes [off, off+len) (within its books). */
static int copy(struct lfs *l, struct lfs_file *f, char *buf, size_t len, uint64_t off, bool to_fam) {
        while (len) {
                uint64_t i = off / l->book_size, within = off % l->book_size;
                size_t n = (size_t) (l->book_size - within) < len ? (size_t) (l->book_size - within) : len;
                /* FAM is mapped lazily (prepare()): a book at its first use */
                char *p;
                int r = fame_map_range(l->fam, f->offsets[i] + within, n, (void **) &p);
                if (r < 0)
                        return r;
                /* FAM is not coherent across nodes: write(2) returns with the data written
                 * back, read(2) reads FAM rather than lines this node cached before */
                if (to_fam) {
                        memcpy(p, buf, n);
                        fame_persist(p, n);
                } else {
                        fame_invalidate(p, n);
                        memcpy(buf, p, n);
                }
                buf += n;
                off += n;
                len -= n;
        }
        return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        struct lfs *l = L();
        struct lfs_file *f = (struct lfs_file *) (uintptr_t) fi->fh;
        int r;

        if (off < 0)
                return -EINVAL;
        pthread_mutex_lock(&f->lock);
        r = ensure_books(l, path, f, (uint64_t) off + size);
        if (r >= 0) {
                if ((uint64_t) off >= f->size)
                        r = 0;
                else {
                        size_t n = (uint64_t) off + size > f->size ? (size_t) (f->size - (uint64_t) off) : size;
                        r = copy(l, f, buf, n, (uint64_t) off, false);
                        r = r < 0 ? r : (int) n;
                }
        }
        pthread_mutex_unlock(&f->lock);
        return r;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        struct lfs *l = L();
        struct lfs_file *f = (struct lfs_file *) (uintptr_t) fi->fh;
        int r;

        if (off < 0)
                return -EINVAL;
        if (fi->flags & O_APPEND)
                off = -1;
        pthread_mutex_lock(&f->lock);
        r = ensure_books(l, path, f, off < 0 ? UINT64_MAX : (uint64_t) off + size);
        if (r >= 0 && off < 0)
                off = (off_t) f->size;
        uint64_t end = (uint64_t) off + size;
        if (r >= 0 && end > f->size) {
                /* a write past the end grows the shelf first, as lfs_fuse does */
                r = resize(l, path, f->id, end);
                if (r >= 0)
                        r = load_books(l, path, f);
        }
        if (r >= 0) {
                r = copy(l, f, (char *) buf, size, (uint64_t) off, true);
                r = r < 0 ? r : (int) size;
        }
        pthread_mutex_unlock(&f->lock);
        return r;
}

static int shelf_id(struct lfs *l, const char *path, int64_t *ret) {
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        int r = LCALL(l, librarian_get_shelf, path, &s);
        if (r >= 0)
                *ret = member(s, "id");
        return r;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
        struct lfs *l = L();
        struct lfs_file *f = fi ? (struct lfs_file *) (uintptr_t) fi->fh : NULL;
        int64_t id;
        int r;

        if (size < 0)
                return -EINVAL;
        if (f)
                id = f->id;
        else if ((r = shelf_id(l, path, &id)) < 0)
                return r;
        r = resize(l, path, id, (uint64_t) size);
        if (r >= 0 && f) {
                pthread_mutex_lock(&f->lock);
                r = load_books(l, path, f);
                pthread_mutex_unlock(&f->lock);
        }
        return r;
}

static int op_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
        struct lfs *l = L();
        struct lfs_file *f = fi ? (struct lfs_file *) (uintptr_t) fi->fh : NULL;
        struct stat st;
        int r;

        if (mode != 0)
                return -EOPNOTSUPP;
        if (off < 0 || len <= 0)
                return -EINVAL;
        r = op_getattr(path, &st, NULL);
        if (r < 0 || (uint64_t) off + (uint64_t) len <= (uint64_t) st.st_size)
                return r;
        r = resize(l, path, (int64_t) st.st_ino, (uint64_t) off + (uint64_t) len);
        if (r >= 0 && f) {
                pthread_mutex_lock(&f->lock);
                r = load_books(l, path, f);
                pthread_mutex_unlock(&f->lock);
        }
        return r;
}

static int op_unlink(const char *path) {
        struct lfs *l = L();
        int r = LCALL(l, librarian_destroy_shelf, path, NULL);
        changed_entry(l, path);
        return r;
}

static int op_mkdir(const char *path, mode_t mode) {
        struct stat st;
        if (op_getattr(path, &st, NULL) == 0)
                return -EEXIST;         /* the Librarian's mkdir returns an existing path */
        struct lfs *l = L();
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        int r = LCALL(l, librarian_mkdir, path, S_IFDIR | (mode & 07777), &s);
        changed(l, path);
        if (r >= 0)
                remember_fresh(l, path, s);
        return r;
}

static int op_rmdir(const char *path) {
        struct lfs *l = L();
        int r = LCALL(l, librarian_rmdir, path, NULL);
        changed(l, path);
        return r;
}

static int op_symlink(const char *target, const char *path) {
        struct stat st;
        if (op_getattr(path, &st, NULL) == 0)
                return -EEXIST;
        struct lfs *l = L();
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        int r = LCALL(l, librarian_symlink, path, target, &s);
        changed_entry(l, path);
        if (r >= 0)
                remember_fresh(l, path, s);
        return r;
}

static int op_readlink(const char *path, char *buf, size_t size) {
        _cleanup_(json_object_putp) struct json_object *v = NULL;
        int r = LCALL(L(), librarian_readlink, path, &v);
        if (r < 0)
                return r;
        if (size == 0)
                return -EINVAL;
        snprintf(buf, size, "%s", json_object_get_string(v));
        return 0;
}

static int op_rename(const char *from, const char *to, unsigned int flags) {
        struct lfs *l = L();
        struct stat st;

        if (flags & RENAME_EXCHANGE)
                return -EINVAL;
        if (op_getattr(to, &st, NULL) == 0) {
                if (flags & RENAME_NOREPLACE)
                        return -EEXIST;
                /* POSIX rename replaces the target: the Librarian wants it gone first */
                int r = S_ISDIR(st.st_mode) ? LCALL(l, librarian_rmdir, to, NULL) : LCALL(l, librarian_destroy_shelf, to, NULL);
                changed(l, to);
                if (r < 0)
                        return r;
        }
        int r = LCALL(l, librarian_rename_shelf, from, 0, to, NULL);
        if (l->dirs)
                dircache_drop_all(l->dirs);     /* whole trees move */
        return r;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
        struct lfs *l = L();
        (void) fi;
        int r = LCALL(l, librarian_fame_chmod, path, mode & 07777, NULL);
        changed(l, path);
        return r;
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
        struct lfs *l = L();
        (void) fi;
        int r = LCALL(l, librarian_fame_chown, path, uid == (uid_t) -1 ? -1 : (int64_t) uid,
                      gid == (gid_t) -1 ? -1 : (int64_t) gid, NULL);
        changed(l, path);
        return r;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
        (void) fi;
        if (tv && tv[1].tv_nsec == UTIME_OMIT)
                return 0;
        int64_t mtime = !tv || tv[1].tv_nsec == UTIME_NOW ? 0 : (int64_t) tv[1].tv_sec;
        struct lfs *l = L();
        int r = LCALL(l, librarian_set_am_time, path, 0, mtime, NULL);
        changed(l, path);
        return r;
}

static int op_access(const char *path, int mask) {
        return LCALL(L(), librarian_fame_access, path, mask & 7, NULL);
}

static int op_statfs(const char *path, struct statvfs *st) {
        struct lfs *l = L();
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        (void) path;
        int r = LCALL(l, librarian_get_fs_stats, &s);
        if (r < 0)
                return r;
        uint64_t per = l->book_size / 4096, total = (uint64_t) member(s, "books_total"), used = (uint64_t) member(s, "books_used");
        memset(st, 0, sizeof *st);
        st->f_bsize = st->f_frsize = 4096;
        st->f_blocks = total * per;
        st->f_bfree = st->f_bavail = (total > used ? total - used : 0) * per;
        st->f_files = st->f_blocks;
        st->f_ffree = st->f_bfree;
        st->f_namemax = 255;
        return 0;
}

/* "FAMEBOOKS 1 SOURCE BOOK_SIZE SIZE N OFFSET..." for the mmap shim. */
static int books_xattr(struct lfs *l, const char *path, char *value, size_t size) {
        struct lfs_file f = {};
        int r = load_books(l, path, &f);
        if (r < 0)
                return r;
        size_t cap = 128 + strlen(l->source) + f.n * 24, len = 0;
        char *s = malloc(cap);
        if (!s) {
                free(f.offsets);
                return -ENOMEM;
        }
        len += (size_t) snprintf(s + len, cap - len, "FAMEBOOKS 1 %s %" PRIu64 " %" PRIu64 " %zu", l->source, l->book_size,
                                 f.size, f.n);
        for (size_t i = 0; i < f.n; i++)
                len += (size_t) snprintf(s + len, cap - len, " %" PRIu64, f.offsets[i]);
        free(f.offsets);
        if (size == 0) {
                free(s);
                return (int) len;
        }
        if (len > size) {
                free(s);
                return -ERANGE;
        }
        memcpy(value, s, len);
        free(s);
        return (int) len;
}

static int op_getxattr(const char *path, const char *name, char *value, size_t size) {
        struct lfs *l = L();
        if (strcmp(name, LFS_BOOKS_XATTR) == 0)
                return books_xattr(l, path, value, size);
        if (strncmp(name, "user.", 5) != 0)
                return -ENODATA;
        _cleanup_(json_object_putp) struct json_object *v = NULL;
        int r = LCALL(l, librarian_get_xattr, path, name, &v);
        if (r < 0)
                return r == -EINVAL ? -ENODATA : r;
        struct json_object *val = NULL;
        if (!json_object_object_get_ex(v, "value", &val) || !val)
                return -ENODATA;
        size_t len = (size_t) json_object_get_string_len(val);
        if (size == 0)
                return (int) len;
        if (len > size)
                return -ERANGE;
        memcpy(value, json_object_get_string(val), len);
        return (int) len;
}

static int op_setxattr(const char *path, const char *name, const char *value, size_t size, int flags) {
        (void) flags;
        if (strcmp(name, LFS_BOOKS_XATTR) == 0)
                return -EPERM;
        if (strncmp(name, "user.", 5) != 0)
                return -ENOTSUP;
        return LCALL(L(), librarian_set_xattr, path, name, value, size, NULL);
}

static int op_listxattr(const char *path, char *list, size_t size) {
        _cleanup_(json_object_putp) struct json_object *v = NULL;
        int r = LCALL(L(), librarian_list_xattrs, path, &v);
        if (r < 0)
                return r;
        struct json_object *names = NULL;
        json_object_object_get_ex(v, "value", &names);
        size_t len = 0;
        for (size_t i = 0; i < json_object_array_length(names); i++)
                len += strlen(json_object_get_string(json_object_array_get_idx(names, i))) + 1;
        if (size == 0)
                return (int) len;
        if (len > size)
                return -ERANGE;
        char *p = list;
        for (size_t i = 0; i < json_object_array_length(names); i++) {
                const char *n = json_object_get_string(json_object_array_get_idx(names, i));
                memcpy(p, n, strlen(n) + 1);
                p += strlen(n) + 1;
        }
        return (int) len;
}

static int op_removexattr(const char *path, const char *name) {
        if (strncmp(name, "user.", 5) != 0)
                return -ENOTSUP;
        return LCALL(L(), librarian_remove_xattr, path, name, NULL);
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
        struct lfs *l = fuse_get_context()->private_data;
        (void) conn;
        /* entries and attributes are kept cache_timeout seconds (0: not at all) and dropped
         * as soon as the Librarian says another connection changed them (the watcher);
         * a name that is not there is never remembered */
        cfg->entry_timeout = l->cache_timeout;
        cfg->attr_timeout = l->cache_timeout;
        cfg->negative_timeout = 0;
        cfg->use_ino = 1;
        cfg->hard_remove = 0;   /* an open file that is unlinked is hidden, removed at its last close */
        cfg->direct_io = 1;
        l->fuse = fuse_get_context()->fuse;
        lfs_threads_start(l);
        return l;
}

static void op_destroy(void *userdata) {
        lfs_threads_stop(userdata);
}

static const struct fuse_operations ops = {
        .getattr = op_getattr,
        .readlink = op_readlink,
        .mkdir = op_mkdir,
        .unlink = op_unlink,
        .rmdir = op_rmdir,
        .symlink = op_symlink,
        .rename = op_rename,
        .chmod = op_chmod,
        .chown = op_chown,
        .truncate = op_truncate,
        .open = op_open,
        .read = op_read,
        .write = op_write,
        .statfs = op_statfs,
        .release = op_release,
        .setxattr = op_setxattr,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .removexattr = op_removexattr,
        .readdir = op_readdir,
        .init = op_init,
        .destroy = op_destroy,
        .access = op_access,
        .create = op_create,
        .utimens = op_utimens,
        .fallocate = op_fallocate,
};

static int prepare(struct lfs *l, const struct lfs_options *o) {
        struct json_object *stats = NULL;
        int r;

        r = fame_open(o->fam, FAME_OPEN_NOREGISTER | FAME_OPEN_LAZY, &l->fam);
        if (r < 0)
                return log_error_errno(r, "fame-lfs: cannot map FAM%s%s: %m", o->fam ? " " : "", o->fam ? o->fam : "");
        r = fame_librarian_connect(o->librarian, &l->lib);
        if (r < 0)
                return log_error_errno(r, "fame-lfs: cannot reach the Librarian%s%s: %m", o->librarian ? " at " : "",
                                       o->librarian ? o->librarian : "");
        l->node = o->node ? o->node : fame_librarian_node_id(fame_get_geometry(l->fam), fame_node_id(l->fam));
        if (l->node)
                fame_librarian_set_node(l->lib, l->node);
        /* A restarted Librarian is waited for, and the open files' handles survive it: the
         * connection reclaims every handle it holds (fame_reclaim_shelf) as soon as it reconnects,
         * before the request that reconnected, and the heartbeat reconnects an idle mount within
         * the Librarian's grace period (docs/librarian-protocol.md, "Open handles"). */
        librarian_set_restart_wait(l->lib, LFS_RESTART_WAIT_SECONDS);
        uint64_t tag[2];
        if (getrandom(tag, sizeof tag, 0) != sizeof tag)
                return log_error_errno(-EIO, "fame-lfs: no random numbers for this mount's tag: %m");
        snprintf(l->origin, sizeof l->origin, "%016" PRIx64 "%016" PRIx64, tag[0], tag[1]);
        if (o->cache_timeout > 0)
                librarian_set_origin(l->lib, l->origin);
        r = librarian_get_fs_stats(l->lib, &stats);
        l->stats = stats;
        if (r < 0)
                return log_error_errno(r, "fame-lfs: the Librarian at %s: %s", librarian_address(l->lib),
                                       fame_librarian_error(l->lib));
        l->book_size = (uint64_t) member(stats, "book_size_bytes");
        const struct fame_geometry *geo = fame_get_geometry(l->fam);
        if (member(stats, "BIImode") != 0 || l->book_size != geo->book_size)
                return log_error_errno(-EINVAL, "fame-lfs: the Librarian at %s serves another FAM (book size %" PRIu64 ", this FAM's %" PRIu64 ")",
                                       librarian_address(l->lib), l->book_size, geo->book_size);
        l->book_area = geo->book_area_offset;
        /* what the mmap shim opens: BAR2's resource2 in a node, the FAM file on the host */
        const char *src = fame_source_path(l->fam);
        if (strcmp(fame_source_kind(l->fam), "pci") == 0 && !strstr(src, "resource2")) {
                l->source_buf = strf("%s/resource2", src);
                if (!l->source_buf)
                        return -ENOMEM;
                src = l->source_buf;
        }
        l->source = src;
        return 0;
}

int lfs_run(const struct lfs_options *o) {
        struct lfs l = { .lock = PTHREAD_MUTEX_INITIALIZER, .hb_lock = PTHREAD_MUTEX_INITIALIZER,
                         .hb_cond = PTHREAD_COND_INITIALIZER };
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        struct fuse *fuse = NULL;
        struct relay *relay = NULL;
        int r;

        l.cache_timeout = o->cache_timeout;
        l.address = o->librarian;
        if (l.cache_timeout > 0 && !(l.dirs = dircache_new(l.cache_timeout, dircache_fill, &l))) {
                r = log_error_errno(-ENOMEM, "fame-lfs: out of memory");
                goto out;
        }
        /* read(2) and write(2) go through buffers of up to 1 MiB that libfuse allocates for each
         * request: from the heap, kept, rather than mapped and faulted in every time */
        mallopt(M_MMAP_THRESHOLD, 4 << 20);
        mallopt(M_TRIM_THRESHOLD, 64 << 20);
        r = prepare(&l, o);
        if (r < 0)
                goto out;
        fuse_opt_add_arg(&args, "fame-lfs");
        fuse_opt_add_arg(&args, "-o");
        /* caching, the kernel checks permissions against the attributes it holds (the
         * Librarian still checks every change) */
        fuse_opt_add_arg(&args, getuid() == 0 ? "fsname=lfs,subtype=fame,allow_other,noatime" : "fsname=lfs,subtype=fame,noatime");
        if (l.cache_timeout > 0) {
                fuse_opt_add_arg(&args, "-o");
                fuse_opt_add_arg(&args, "default_permissions");
        }
        if (o->debug)
                fuse_opt_add_arg(&args, "-d");
        fuse = fuse_new(&args, &ops, sizeof ops, &l);
        if (!fuse) {
                r = log_error_errno(-EINVAL, "fame-lfs: fuse_new failed");
                goto out;
        }
        if (fuse_mount(fuse, o->mountpoint) != 0) {
                r = log_error_errno(-EIO, "fame-lfs: cannot mount %s (is /dev/fuse there and the fuse module loaded?)", o->mountpoint);
                goto out_destroy;
        }
        /* the relay's socket exists before this process counts as started (a Debian node's
         * fame-lfs.service is Type=forking): a caller then never finds it missing */
        if (o->relay) {
                if (strncmp(librarian_address(l.lib), "unix:", 5) == 0) {
                        r = log_error_errno(-EINVAL, "fame-lfs: --relay: this fame-lfs reaches the Librarian through "
                                            "%s itself; run it as root", librarian_address(l.lib));
                        goto out_unmount;
                }
                r = relay_listen(o->relay, librarian_address(l.lib), librarian_secret(l.lib), &relay);
                if (r < 0)
                        goto out_unmount;
        }
        if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
                r = -EIO;
                goto out_unmount;
        }
        if (!o->foreground && fuse_daemonize(0) != 0) {
                r = -EIO;
                goto out_signals;
        }
        /* serving after daemonising: the relay's threads must live in the daemon */
        if (relay) {
                r = relay_run(relay);
                if (r < 0)
                        goto out_signals;
        }
        if (o->ready_file)
                (void) write_file_atomic(o->ready_file, 0644, "ready\n", 6);
        struct fuse_loop_config *cfg = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(cfg, 0);
        fuse_loop_cfg_set_max_threads(cfg, 16);
        r = fuse_loop_mt(fuse, cfg) == 0 ? 0 : -EIO;
        fuse_loop_cfg_destroy(cfg);
out_signals:
        fuse_remove_signal_handlers(fuse_get_session(fuse));
out_unmount:
        relay_stop(relay);
        fuse_unmount(fuse);
out_destroy:
        fuse_destroy(fuse);
out:
        fuse_opt_free_args(&args);
        fame_librarian_disconnect(l.lib);
        fame_close(l.fam);
        json_object_put(l.stats);
        free(l.source_buf);
        dircache_free(l.dirs);
        return r;
}
