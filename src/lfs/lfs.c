/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
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
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "dircache.h"
#include "fame.h"
#include "inodes.h"
#include "lfs.h"
#include "librarian-client.h"
#include "relay.h"
#include "log.h"
#include "macro.h"
#include "proto.h"
#include "util.h"

struct lfs {
        struct fame *fam;
        struct fame_librarian *lib;
        pthread_mutex_t lock;
        uint32_t node;
        uint64_t book_size, book_area;
        struct json_object *stats;      /* get_fs_stats at mount: book size and interleave groups */
        const char *source;             /* what the mmap shim maps */
        char *source_buf;
        uint64_t generation;            /* bumped by every shrink: cached book lists are refreshed */
        pthread_t heartbeat;
        bool heartbeat_started;
        pthread_mutex_t hb_lock;
        pthread_cond_t hb_cond;
        bool stopping;
        /* the kernel's inode numbers: each one's parent and name (inodes.h) */
        struct inodes *inodes;
        uint64_t hidden;                /* names made for unlinked open files */
        /* caching (docs/lfs.md, "Caching"): the kernel keeps entries and attributes for
         * cache_timeout seconds; the watcher drops them when the Librarian says another
         * connection changed them */
        double cache_timeout;
        struct dircache *dirs;          /* NULL: not caching */
        struct fuse_session *se;
        const char *address;            /* the Librarian's, for the watcher's own connection */
        pthread_t watcher;
        bool watcher_started;
        struct fame_librarian *watch;   /* the watcher's connection, under hb_lock */
        uint64_t notices;               /* handled, for --debug */
        char origin[33];                /* this mount's: the Librarian does not tell the watcher
                                         * of the changes the mount itself made */
};

struct lfs_file {
        int64_t id, handle;
        uint64_t size, generation;
        bool loaded;                    /* offsets hold the books (open leaves it for the first use) */
        uint64_t *offsets;              /* FAM offset of each book */
        size_t n;
        pthread_mutex_t lock;
};

/* An open directory: the listing readdir hands out, taken at the first readdir (the kernel
 * asks for none when it keeps its own, see op_opendir()). */
struct lfs_dir {
        struct dircache_entry *entries;
        size_t n, cap;
        bool loaded;
};

/* The caller of the FUSE request this thread serves (NULL in the daemon's own threads). */
static _Thread_local const struct fuse_ctx *caller;

/* The mount, for a request; its Librarian requests are then made as its caller. */
static struct lfs *begin(fuse_req_t req) {
        caller = fuse_req_ctx(req);
        return fuse_req_userdata(req);
}

/* Before a Librarian request of the current FUSE operation: the shared connection, acting as
 * the operation's caller (uid, gid, pid on this node). */
static struct fame_librarian *lcall_begin(struct lfs *l) {
        const struct fuse_ctx *ctx = caller;

        pthread_mutex_lock(&l->lock);
        librarian_set_caller(l->lib, ctx ? ctx->uid : getuid(), ctx ? ctx->gid : getgid(), ctx && ctx->pid ? ctx->pid : getpid());
        return l->lib;
}

/* After it: a lost Librarian is EIO (the connection resent reads once and retried idempotent
 * changes for up to LFS_RESTART_WAIT_SECONDS). */
static int lcall_end(struct lfs *l, int r) {
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

/* One Librarian request as the caller of the current FUSE operation: LCALL(l, librarian_get_shelf,
 * path, &s) is librarian_get_shelf(l->lib, path, &s) between lcall_begin() and lcall_end(). */
#define LCALL(l, call, ...) lcall_end((l), call(lcall_begin(l), __VA_ARGS__))

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
 * Librarian makes it so). */
static void fill_fresh(struct lfs *l, struct json_object *s, struct stat *st) {
        fill_stat(l, s, st);
        if (caller) {
                st->st_uid = caller->uid;
                st->st_gid = caller->gid;
        }
}

static int get_attr(struct lfs *l, const char *path, struct stat *st) {
        _cleanup_(json_object_putp) struct json_object *s = NULL;
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

static void dircache_fill(struct json_object *record, struct stat *st, void *userdata) {
        fill_stat(userdata, record, st);
}

/* Replies with the entry name in parent, whose attributes are st: the kernel holds it for the
 * cache timeout (one lookup more of its inode). */
static void reply_entry(struct lfs *l, fuse_req_t req, fuse_ino_t parent, const char *name, const struct stat *st) {
        struct fuse_entry_param e = { .attr = *st, .attr_timeout = l->cache_timeout, .entry_timeout = l->cache_timeout };
        int r = inodes_add(l->inodes, parent, name, (int64_t) st->st_ino, &e.ino);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        if (fuse_reply_entry(req, &e) < 0)
                inodes_forget(l->inodes, e.ino, 1);
}

static void reply(fuse_req_t req, int r) {
        fuse_reply_err(req, r < 0 ? -r : 0);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r >= 0)
                r = get_attr(l, path, &st);
        if (r == -ENOENT)
                /* not there (now): never remembered missing, and no inode goes by it */
                inodes_remove(l->inodes, parent, name);
        if (r < 0)
                return reply(req, r);
        reply_entry(l, req, parent, name, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
        struct lfs *l = fuse_req_userdata(req);
        inodes_forget(l->inodes, ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
        struct lfs *l = fuse_req_userdata(req);
        for (size_t i = 0; i < count; i++)
                inodes_forget(l->inodes, forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL;
        struct stat st;
        (void) fi;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = get_attr(l, path, &st);
        if (r < 0)
                return reply(req, r);
        fuse_reply_attr(req, &st, l->cache_timeout);
}

struct fill {
        struct lfs_dir *d;
        int r;
};

static void dir_add(const struct dircache_entry *e, void *userdata) {
        struct fill *f = userdata;
        struct lfs_dir *d = f->d;
        if (f->r < 0)
                return;
        if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 16;
                struct dircache_entry *n = reallocarray(d->entries, cap, sizeof *n);
                if (!n) {
                        f->r = -ENOMEM;
                        return;
                }
                d->entries = n;
                d->cap = cap;
        }
        d->entries[d->n] = *e;
        if (!(d->entries[d->n].name = strdup(e->name))) {
                f->r = -ENOMEM;
                return;
        }
        d->n++;
}

static void dir_free(struct lfs_dir *d) {
        if (!d)
                return;
        for (size_t i = 0; i < d->n; i++)
                free((char *) d->entries[i].name);
        free(d->entries);
        free(d);
}

/* The listing of path into d: a kept one (its attributes converted once), else one request
 * that gives names and attributes (`ls -l` asks for nothing more). */
static int dir_load(struct lfs *l, const char *path, struct lfs_dir *d) {
        _cleanup_(json_object_putp) struct json_object *list = NULL;
        struct fill f = { d, 0 };
        if (l->dirs && dircache_each(l->dirs, path, dir_add, &f) > 0)
                return f.r;
        uint64_t epoch = l->dirs ? dircache_epoch(l->dirs) : 0;
        int r = LCALL(l, librarian_fame_list_dir, path, &list);
        if (r < 0)
                return r;
        if (l->dirs)
                dircache_put(l->dirs, path, list, epoch);
        for (size_t i = 2; i < json_object_array_length(list) && f.r >= 0; i++) {
                struct json_object *s = json_object_array_get_idx(list, i), *name = NULL;
                if (!json_object_object_get_ex(s, "name", &name))
                        continue;
                struct dircache_entry e = { .name = json_object_get_string(name) };
                fill_stat(l, s, &e.st);
                dir_add(&e, &f);
        }
        return f.r;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r < 0)
                return reply(req, r);
        struct lfs_dir *d = calloc(1, sizeof *d);
        if (!d)
                return reply(req, -ENOMEM);
        fi->fh = (uint64_t) (uintptr_t) d;
        /* the kernel keeps the listing it was given (its readdir cache: an unchanged directory
         * is listed without asking) as long as fame-lfs keeps its own: the mount's changes in
         * the directory and the notices of others' drop both, and so does the cache timeout
         * (an opendir after it makes the kernel drop its own) */
        if (l->dirs) {
                fi->cache_readdir = 1;
                fi->keep_cache = dircache_has(l->dirs, path);
        }
        if (fuse_reply_open(req, fi) < 0)
                dir_free(d);
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, bool plus) {
        struct lfs *l = begin(req);
        struct lfs_dir *d = (struct lfs_dir *) (uintptr_t) fi->fh;
        int r;

        if (!d->loaded || off == 0) {
                _cleanup_free_ char *path = NULL;
                for (size_t i = 0; i < d->n; i++)
                        free((char *) d->entries[i].name);
                d->n = 0;
                d->loaded = false;
                r = inodes_path(l->inodes, ino, NULL, &path);
                if (r >= 0)
                        r = dir_load(l, path, d);
                if (r < 0)
                        return reply(req, r);
                d->loaded = true;
        }
        _cleanup_free_ char *buf = malloc(size);
        if (!buf)
                return reply(req, -ENOMEM);
        size_t used = 0;
        /* offsets: 0 the start, 1 after ".", 2 after "..", 2 + i after entry i */
        for (size_t i = (size_t) (off < 0 ? 0 : off); i < d->n + 2; i++) {
                const char *name = i == 0 ? "." : i == 1 ? ".." : d->entries[i - 2].name;
                /* "." and "..": only a name and a number (readdir(3) skips entries numbered 0) */
                struct fuse_entry_param e = { .attr.st_mode = S_IFDIR, .attr.st_ino = ino };
                size_t n;
                if (i >= 2)
                        e.attr = d->entries[i - 2].st;
                if (!plus) {
                        n = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, (off_t) i + 1);
                        if (n > size - used)
                                break;
                        used += n;
                        continue;
                }
                /* readdirplus: each entry but "." and ".." is a lookup the kernel will forget */
                n = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
                if (n > size - used)
                        break;
                if (i >= 2) {
                        e.attr_timeout = e.entry_timeout = l->cache_timeout;
                        if (inodes_add(l->inodes, ino, name, (int64_t) e.attr.st_ino, &e.ino) < 0)
                                e.ino = 0;      /* then only the name */
                }
                used += fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t) i + 1);
        }
        fuse_reply_buf(req, buf, used);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        readdir_common(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        readdir_common(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        (void) ino;
        dir_free((struct lfs_dir *) (uintptr_t) fi->fh);
        fuse_reply_err(req, 0);
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

/* The same for the open file ino. */
static int load_books_ino(struct lfs *l, fuse_ino_t ino, struct lfs_file *f) {
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        return r < 0 ? r : load_books(l, path, f);
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

/* The file handle of shelf (its open_shelf or create_shelf reply) in fi, ino opened once more. */
static int open_common(struct lfs *l, fuse_ino_t ino, struct fuse_file_info *fi, struct json_object *shelf) {
        struct lfs_file *f = file_new(shelf);
        if (!f)
                return -ENOMEM;
        /* no books yet: nothing to ask; else they are asked for at the first read or write */
        if (member(shelf, "book_count") == 0) {
                f->generation = __atomic_load_n(&l->generation, __ATOMIC_ACQUIRE);
                f->loaded = true;
        }
        fi->fh = (uint64_t) (uintptr_t) f;
        fi->direct_io = 1;      /* every read and write goes to FAM: other nodes' stores are seen */
        fi->keep_cache = 0;
        inodes_open(l->inodes, ino, 1, NULL);
        return 0;
}

/* The last handle of ino was closed: an unlinked file hidden while open goes now. */
static void close_common(struct lfs *l, fuse_ino_t ino, struct lfs_file *f) {
        bool hidden;
        if (f) {
                /* the reply is not waited for: the next request on the connection comes after it */
                (void) LCALL(l, librarian_close_shelf_nowait, f->id, f->handle);
                file_free(f);
        }
        if (inodes_open(l->inodes, ino, -1, &hidden) > 0 || !hidden)
                return;
        _cleanup_free_ char *path = NULL;
        if (inodes_path(l->inodes, ino, NULL, &path) < 0)
                return;
        (void) LCALL(l, librarian_destroy_shelf, path, NULL);
        changed_entry(l, path);
        inodes_remove_ino(l->inodes, ino);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
        struct lfs *l = begin(req);
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r < 0)
                return reply(req, r);
        r = LCALL(l, librarian_create_shelf, path, S_IFREG | (mode & 07777), &s);
        changed_entry(l, path);
        if (r < 0)
                return reply(req, r);
        /* what create_shelf said of it is its attributes: no request more */
        struct fuse_entry_param e = { .attr_timeout = l->cache_timeout, .entry_timeout = l->cache_timeout };
        fill_fresh(l, s, &e.attr);
        r = inodes_add(l->inodes, parent, name, (int64_t) e.attr.st_ino, &e.ino);
        if (r >= 0) {
                r = open_common(l, e.ino, fi, s);
                if (r < 0)
                        inodes_forget(l->inodes, e.ino, 1);
        }
        if (r < 0) {
                (void) LCALL(l, librarian_close_shelf_nowait, member(s, "id"), member(s, "open_handle"));
                return reply(req, r);
        }
        if (fuse_reply_create(req, &e, fi) < 0) {
                /* the caller was interrupted: nobody will close it */
                close_common(l, e.ino, (struct lfs_file *) (uintptr_t) fi->fh);
                inodes_forget(l->inodes, e.ino, 1);
        }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct lfs *l = begin(req);
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        _cleanup_free_ char *path = NULL;
        int acc = fi->flags & O_ACCMODE, want = acc == O_RDONLY ? 4 : acc == O_WRONLY ? 2 : 6;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        /* caching, the kernel checks permissions (default_permissions) */
        if (r >= 0 && l->cache_timeout <= 0)
                r = LCALL(l, librarian_fame_access, path, want, NULL);
        if (r >= 0)
                r = LCALL(l, librarian_open_shelf, path, &s);
        if (r >= 0)
                r = open_common(l, ino, fi, s);
        if (r < 0)
                return reply(req, r);
        if (fuse_reply_open(req, fi) < 0)
                close_common(l, ino, (struct lfs_file *) (uintptr_t) fi->fh);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct lfs *l = begin(req);
        close_common(l, ino, (struct lfs_file *) (uintptr_t) fi->fh);
        fuse_reply_err(req, 0);
}

/* The cached books are good for [0, size) while nobody shrank any shelf since. */
static int ensure_books(struct lfs *l, fuse_ino_t ino, struct lfs_file *f, uint64_t end) {
        if (f->loaded && f->generation == __atomic_load_n(&l->generation, __ATOMIC_ACQUIRE) && end <= f->size)
                return 0;
        return load_books_ino(l, ino, f);
}

static int resize(struct lfs *l, const char *path, int64_t id, uint64_t size) {
        int r = LCALL(l, librarian_resize_shelf, path, id, (int64_t) size, false, NULL);
        changed(l, path);
        __atomic_add_fetch(&l->generation, 1, __ATOMIC_ACQ_REL);
        return r;
}

/* The shelf's bytes [off, off+len) (within its books) in FAM, as up to max pieces (one for
 * each book): the number of pieces. */
static int fam_pieces(struct lfs *l, struct lfs_file *f, uint64_t off, size_t len, struct fuse_buf *pieces, size_t max) {
        size_t k = 0;
        while (len) {
                uint64_t i = off / l->book_size, within = off % l->book_size;
                size_t n = (size_t) (l->book_size - within) < len ? (size_t) (l->book_size - within) : len;
                /* FAM is mapped lazily (prepare()): a book at its first use */
                void *p;
                if (k == max)
                        return -EINVAL;
                int r = fame_map_range(l->fam, f->offsets[i] + within, n, &p);
                if (r < 0)
                        return r;
                pieces[k++] = (struct fuse_buf) { .size = n, .mem = p };
                off += n;
                len -= n;
        }
        return (int) k;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        struct lfs *l = begin(req);
        struct lfs_file *f = (struct lfs_file *) (uintptr_t) fi->fh;
        size_t max = size / l->book_size + 2;
        _cleanup_free_ struct fuse_bufvec *v = malloc(sizeof *v + max * sizeof v->buf[0]);
        int r;

        if (off < 0)
                return reply(req, -EINVAL);
        if (!v)
                return reply(req, -ENOMEM);
        *v = (struct fuse_bufvec) {};
        pthread_mutex_lock(&f->lock);
        r = ensure_books(l, ino, f, (uint64_t) off + size);
        if (r >= 0 && (uint64_t) off < f->size) {
                size_t n = (uint64_t) off + size > f->size ? (size_t) (f->size - (uint64_t) off) : size;
                r = fam_pieces(l, f, (uint64_t) off, n, v->buf, max);
                if (r >= 0)
                        v->count = (size_t) r;
        }
        pthread_mutex_unlock(&f->lock);
        if (r < 0)
                return reply(req, r);
        /* FAM is not coherent across nodes: read(2) reads FAM rather than lines this node
         * cached before; the kernel copies from FAM itself (no buffer of fame-lfs's between) */
        for (size_t i = 0; i < v->count; i++)
                fame_invalidate(v->buf[i].mem, v->buf[i].size);
        fuse_reply_data(req, v, FUSE_BUF_SPLICE_MOVE);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        struct lfs *l = begin(req);
        struct lfs_file *f = (struct lfs_file *) (uintptr_t) fi->fh;
        struct fuse_buf pieces[8];
        int r;

        if (off < 0)
                return reply(req, -EINVAL);
        if (fi->flags & O_APPEND)
                off = -1;
        pthread_mutex_lock(&f->lock);
        r = ensure_books(l, ino, f, off < 0 ? UINT64_MAX : (uint64_t) off + size);
        if (r >= 0 && off < 0)
                off = (off_t) f->size;
        uint64_t end = (uint64_t) off + size;
        if (r >= 0 && end > f->size) {
                /* a write past the end grows the shelf first, as lfs_fuse does */
                _cleanup_free_ char *path = NULL;
                r = inodes_path(l->inodes, ino, NULL, &path);
                if (r >= 0)
                        r = resize(l, path, f->id, end);
                if (r >= 0)
                        r = load_books(l, path, f);
        }
        /* FAM is not coherent across nodes: write(2) returns with the data written back */
        for (size_t done = 0; r >= 0 && done < size; ) {
                r = fam_pieces(l, f, (uint64_t) off + done, size - done < l->book_size ? size - done : (size_t) l->book_size, pieces, ELEMENTSOF(pieces));
                for (int i = 0; i < r; i++) {
                        memcpy(pieces[i].mem, buf + done, pieces[i].size);
                        fame_persist(pieces[i].mem, pieces[i].size);
                        done += pieces[i].size;
                }
        }
        pthread_mutex_unlock(&f->lock);
        if (r < 0)
                return reply(req, r);
        fuse_reply_write(req, size);
}

static int shelf_id(struct lfs *l, const char *path, int64_t *ret) {
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        int r = LCALL(l, librarian_get_shelf, path, &s);
        if (r >= 0)
                *ret = member(s, "id");
        return r;
}

static int do_truncate(struct lfs *l, const char *path, off_t size, struct lfs_file *f) {
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

static int do_utimens(struct lfs *l, const char *path, const struct timespec tv[2]) {
        if (tv && tv[1].tv_nsec == UTIME_OMIT)
                return 0;
        int64_t mtime = !tv || tv[1].tv_nsec == UTIME_NOW ? 0 : (int64_t) tv[1].tv_sec;
        int r = LCALL(l, librarian_set_am_time, path, 0, mtime, NULL);
        changed(l, path);
        return r;
}

/* chmod, chown, truncate and utimens, in that order (as libfuse's path interface), then the
 * attributes they left. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
        struct lfs *l = begin(req);
        struct lfs_file *f = fi ? (struct lfs_file *) (uintptr_t) fi->fh : NULL;
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r = inodes_path(l->inodes, ino, NULL, &path);

        if (r >= 0 && (to_set & FUSE_SET_ATTR_MODE)) {
                r = LCALL(l, librarian_fame_chmod, path, attr->st_mode & 07777, NULL);
                changed(l, path);
        }
        if (r >= 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
                int64_t uid = to_set & FUSE_SET_ATTR_UID ? (int64_t) attr->st_uid : -1;
                int64_t gid = to_set & FUSE_SET_ATTR_GID ? (int64_t) attr->st_gid : -1;
                r = LCALL(l, librarian_fame_chown, path, uid, gid, NULL);
                changed(l, path);
        }
        if (r >= 0 && (to_set & FUSE_SET_ATTR_SIZE))
                r = do_truncate(l, path, attr->st_size, f);
        if (r >= 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))) {
                struct timespec tv[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
                if (to_set & FUSE_SET_ATTR_ATIME_NOW)
                        tv[0].tv_nsec = UTIME_NOW;
                else if (to_set & FUSE_SET_ATTR_ATIME)
                        tv[0] = attr->st_atim;
                if (to_set & FUSE_SET_ATTR_MTIME_NOW)
                        tv[1].tv_nsec = UTIME_NOW;
                else if (to_set & FUSE_SET_ATTR_MTIME)
                        tv[1] = attr->st_mtim;
                r = do_utimens(l, path, tv);
        }
        if (r >= 0)
                r = get_attr(l, path, &st);
        if (r < 0)
                return reply(req, r);
        fuse_reply_attr(req, &st, l->cache_timeout);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
        struct lfs *l = begin(req);
        struct lfs_file *f = fi ? (struct lfs_file *) (uintptr_t) fi->fh : NULL;
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r;

        if (mode != 0)
                return reply(req, -EOPNOTSUPP);
        if (off < 0 || len <= 0)
                return reply(req, -EINVAL);
        r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = get_attr(l, path, &st);
        if (r < 0 || (uint64_t) off + (uint64_t) len <= (uint64_t) st.st_size)
                return reply(req, r);
        r = resize(l, path, (int64_t) st.st_ino, (uint64_t) off + (uint64_t) len);
        if (r >= 0 && f) {
                pthread_mutex_lock(&f->lock);
                r = load_books(l, path, f);
                pthread_mutex_unlock(&f->lock);
        }
        reply(req, r);
}

/* An open file that is unlinked (or renamed over) is renamed .fuse_hidden… in its directory
 * and removed at its last close (inodes_move(), close_common()), as libfuse's path interface
 * did (hard_remove off). */
static int hide(struct lfs *l, fuse_ino_t parent, const char *name, const char *path) {
        char hidden[64];
        _cleanup_free_ char *to = NULL;
        struct stat st;
        int r = -EBUSY;

        for (int tries = 0; tries < 10; tries++) {
                snprintf(hidden, sizeof hidden, ".fuse_hidden%08x%08x", (unsigned) parent,
                         (unsigned) __atomic_add_fetch(&l->hidden, 1, __ATOMIC_RELAXED));
                free(to);
                to = NULL;
                r = inodes_path(l->inodes, parent, hidden, &to);
                if (r < 0)
                        return r;
                r = get_attr(l, to, &st);
                if (r == -ENOENT)
                        break;
                r = r < 0 ? r : -EBUSY;
        }
        if (r != -ENOENT)
                return r;
        r = LCALL(l, librarian_rename_shelf, path, 0, to, NULL);
        if (l->dirs)
                dircache_drop_all(l->dirs);
        if (r >= 0)
                inodes_move(l->inodes, parent, name, parent, hidden, true);
        return r;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL;
        uint64_t ino;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r < 0)
                return reply(req, r);
        if (inodes_open_count(l->inodes, parent, name, &ino) > 0)
                return reply(req, hide(l, parent, name, path));
        r = LCALL(l, librarian_destroy_shelf, path, NULL);
        changed_entry(l, path);
        if (r >= 0)
                inodes_remove(l->inodes, parent, name);
        reply(req, r);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
        struct lfs *l = begin(req);
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r < 0)
                return reply(req, r);
        if (get_attr(l, path, &st) == 0)
                return reply(req, -EEXIST);     /* the Librarian's mkdir returns an existing path */
        r = LCALL(l, librarian_mkdir, path, S_IFDIR | (mode & 07777), &s);
        changed(l, path);
        if (r < 0)
                return reply(req, r);
        fill_fresh(l, s, &st);
        reply_entry(l, req, parent, name, &st);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r < 0)
                return reply(req, r);
        r = LCALL(l, librarian_rmdir, path, NULL);
        changed(l, path);
        if (r >= 0)
                inodes_remove(l->inodes, parent, name);
        reply(req, r);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
        struct lfs *l = begin(req);
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r < 0)
                return reply(req, r);
        if (get_attr(l, path, &st) == 0)
                return reply(req, -EEXIST);
        r = LCALL(l, librarian_symlink, path, target, &s);
        changed_entry(l, path);
        if (r < 0)
                return reply(req, r);
        fill_fresh(l, s, &st);
        reply_entry(l, req, parent, name, &st);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
        struct lfs *l = begin(req);
        _cleanup_(json_object_putp) struct json_object *v = NULL;
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = LCALL(l, librarian_readlink, path, &v);
        if (r < 0)
                return reply(req, r);
        fuse_reply_readlink(req, json_object_get_string(v));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *from = NULL, *to = NULL;
        struct stat st;
        uint64_t ino;
        int r;

        if (flags & RENAME_EXCHANGE)
                return reply(req, -EINVAL);
        r = inodes_path(l->inodes, parent, name, &from);
        if (r >= 0)
                r = inodes_path(l->inodes, newparent, newname, &to);
        if (r < 0)
                return reply(req, r);
        if (get_attr(l, to, &st) == 0) {
                if (flags & RENAME_NOREPLACE)
                        return reply(req, -EEXIST);
                /* POSIX rename replaces the target: the Librarian wants it gone first (hidden
                 * if it is open) */
                if (!S_ISDIR(st.st_mode) && inodes_open_count(l->inodes, newparent, newname, &ino) > 0)
                        r = hide(l, newparent, newname, to);
                else {
                        r = S_ISDIR(st.st_mode) ? LCALL(l, librarian_rmdir, to, NULL) : LCALL(l, librarian_destroy_shelf, to, NULL);
                        changed(l, to);
                }
                if (r < 0)
                        return reply(req, r);
        }
        r = LCALL(l, librarian_rename_shelf, from, 0, to, NULL);
        if (l->dirs)
                dircache_drop_all(l->dirs);     /* whole trees move */
        if (r >= 0)
                inodes_move(l->inodes, parent, name, newparent, newname, false);
        reply(req, r);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = LCALL(l, librarian_fame_access, path, mask & 7, NULL);
        reply(req, r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
        struct lfs *l = begin(req);
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        struct statvfs st = {};
        (void) ino;
        int r = LCALL(l, librarian_get_fs_stats, &s);
        if (r < 0)
                return reply(req, r);
        uint64_t per = l->book_size / 4096, total = (uint64_t) member(s, "books_total"), used = (uint64_t) member(s, "books_used");
        st.f_bsize = st.f_frsize = 4096;
        st.f_blocks = total * per;
        st.f_bfree = st.f_bavail = (total > used ? total - used : 0) * per;
        st.f_files = st.f_blocks;
        st.f_ffree = st.f_bfree;
        st.f_namemax = 255;
        fuse_reply_statfs(req, &st);
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

static int get_xattr(struct lfs *l, const char *path, const char *name, char *value, size_t size) {
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

static int list_xattrs(struct lfs *l, const char *path, char *list, size_t size) {
        _cleanup_(json_object_putp) struct json_object *v = NULL;
        int r = LCALL(l, librarian_list_xattrs, path, &v);
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

/* getxattr and listxattr: size 0 asks for the length only. */
static void reply_xattr(fuse_req_t req, int r, const char *value, size_t size) {
        if (r < 0)
                return reply(req, r);
        if (size == 0)
                fuse_reply_xattr(req, (size_t) r);
        else
                fuse_reply_buf(req, value, (size_t) r);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL, *value = size ? malloc(size) : NULL;
        int r = size && !value ? -ENOMEM : inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = get_xattr(l, path, name, value, size);
        reply_xattr(req, r, value, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL, *list = size ? malloc(size) : NULL;
        int r = size && !list ? -ENOMEM : inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = list_xattrs(l, path, list, size);
        reply_xattr(req, r, list, size);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL;
        (void) flags;
        if (strcmp(name, LFS_BOOKS_XATTR) == 0)
                return reply(req, -EPERM);
        if (strncmp(name, "user.", 5) != 0)
                return reply(req, -ENOTSUP);
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = LCALL(l, librarian_set_xattr, path, name, value, size, NULL);
        reply(req, r);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
        struct lfs *l = begin(req);
        _cleanup_free_ char *path = NULL;
        if (strncmp(name, "user.", 5) != 0)
                return reply(req, -ENOTSUP);
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = LCALL(l, librarian_remove_xattr, path, name, NULL);
        reply(req, r);
}

static void soc_status(struct lfs *l, int status) {
        struct sysinfo si;
        int mem = 0;
        if (status && sysinfo(&si) == 0 && si.totalram)
                mem = (int) (100 - (uint64_t) si.freeram * 100 / si.totalram);
        (void) LCALL(l, librarian_update_node_soc_status, status, 0, 0, 0, 0, mem, NULL);
        (void) LCALL(l, librarian_update_node_mc_status, status, NULL);
}

static void *heartbeat(void *userdata) {
        struct lfs *l = userdata;
        pthread_mutex_lock(&l->hb_lock);
        while (!l->stopping) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += LFS_HEARTBEAT_SECONDS;
                pthread_cond_timedwait(&l->hb_cond, &l->hb_lock, &ts);
                if (l->stopping)
                        break;
                pthread_mutex_unlock(&l->hb_lock);
                soc_status(l, 1);
                pthread_mutex_lock(&l->hb_lock);
        }
        pthread_mutex_unlock(&l->hb_lock);
        return NULL;
}

/* What the kernel holds of path (another connection changed it) goes: its attributes, its
 * entry in its directory, and the directory's attributes and listing (its readdir cache). */
static void invalidate(struct lfs *l, const char *path) {
        uint64_t parent, ino;
        inodes_find(l->inodes, path, &parent, &ino);
        if (ino)
                (void) fuse_lowlevel_notify_inval_inode(l->se, ino, 0, 0);
        if (parent) {
                const char *name = strrchr(path, '/') + 1;
                (void) fuse_lowlevel_notify_inval_entry(l->se, parent, name, strlen(name));
                (void) fuse_lowlevel_notify_inval_inode(l->se, parent, 0, 0);
        }
}

/* A notice: another connection changed these shelves.  What the kernel and the directory
 * cache hold of them and of their directories (attributes, entries, a directory's listing)
 * goes.  Called in the watcher's thread only: never while a FUSE operation waits for it. */
static int on_notice(struct json_object *paths, const char *command, void *userdata) {
        struct lfs *l = userdata;

        if (!paths) {
                /* (re)connected: notices may have been missed; what the kernel cached expires
                 * within cache_timeout (its listings too: op_opendir()), and the books of open
                 * files are asked for again */
                __atomic_add_fetch(&l->generation, 1, __ATOMIC_ACQ_REL);
                dircache_drop_all(l->dirs);
                (void) fuse_lowlevel_notify_inval_inode(l->se, FUSE_ROOT_ID, 0, 0);
                return 0;
        }
        if (command && strcmp(command, "resize_shelf") == 0)
                __atomic_add_fetch(&l->generation, 1, __ATOMIC_ACQ_REL);
        if (command && strcmp(command, "rename_shelf") == 0)
                dircache_drop_all(l->dirs);
        for (size_t i = 0; i < json_object_array_length(paths); i++) {
                const char *p = json_object_get_string(json_object_array_get_idx(paths, i));
                if (!p || p[0] != '/')
                        continue;
                dircache_drop(l->dirs, p);
                invalidate(l, p);
        }
        l->notices++;
        return 0;
}

static bool wait_stopping(struct lfs *l, int seconds) {
        struct timespec ts;
        pthread_mutex_lock(&l->hb_lock);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += seconds;
        while (!l->stopping && pthread_cond_timedwait(&l->hb_cond, &l->hb_lock, &ts) == 0)
                ;
        bool stopping = l->stopping;
        pthread_mutex_unlock(&l->hb_lock);
        return stopping;
}

/* The watcher: its own connection to the Librarian, which sends it notices (fame_watch);
 * reconnected a second after it breaks. */
static void *watcher(void *userdata) {
        struct lfs *l = userdata;
        bool logged = false;

        for (;;) {
                struct fame_librarian *w = NULL;
                pthread_mutex_lock(&l->hb_lock);
                bool stopping = l->stopping;
                pthread_mutex_unlock(&l->hb_lock);
                if (stopping)
                        break;
                int r = fame_librarian_connect(l->address, &w);
                if (r >= 0) {
                        if (l->node)
                                fame_librarian_set_node(w, l->node);
                        pthread_mutex_lock(&l->hb_lock);
                        l->watch = l->stopping ? NULL : w;
                        pthread_mutex_unlock(&l->hb_lock);
                        if (l->watch) {
                                r = librarian_watch(w, l->origin, on_notice, l);
                                if (r < 0 && !logged)
                                        log_warning("fame-lfs: %s; what the kernel caches is kept at most %g s until "
                                                    "it is back", fame_librarian_error(w), l->cache_timeout);
                                logged = r < 0;
                        }
                        pthread_mutex_lock(&l->hb_lock);
                        l->watch = NULL;
                        pthread_mutex_unlock(&l->hb_lock);
                        fame_librarian_disconnect(w);
                }
                if (wait_stopping(l, 1))
                        break;
        }
        return NULL;
}

static void op_init(void *userdata, struct fuse_conn_info *conn) {
        struct lfs *l = userdata;
        (void) conn;
        soc_status(l, 1);
        if (pthread_create(&l->heartbeat, NULL, heartbeat, l) == 0)
                l->heartbeat_started = true;
        if (l->cache_timeout > 0 && pthread_create(&l->watcher, NULL, watcher, l) == 0)
                l->watcher_started = true;
}

static void op_destroy(void *userdata) {
        struct lfs *l = userdata;
        pthread_mutex_lock(&l->hb_lock);
        l->stopping = true;
        pthread_cond_broadcast(&l->hb_cond);
        librarian_shutdown(l->watch);
        pthread_mutex_unlock(&l->hb_lock);
        if (l->heartbeat_started)
                pthread_join(l->heartbeat, NULL);
        if (l->watcher_started)
                pthread_join(l->watcher, NULL);
        soc_status(l, 0);
}

/* Entries and attributes are kept cache_timeout seconds (0: not at all: every reply says so)
 * and dropped as soon as the Librarian says another connection changed them (the watcher); a
 * name that is not there is never remembered (a lookup's ENOENT carries no timeout). */
static const struct fuse_lowlevel_ops ops = {
        .init = op_init,
        .destroy = op_destroy,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .setattr = op_setattr,
        .readlink = op_readlink,
        .mkdir = op_mkdir,
        .unlink = op_unlink,
        .rmdir = op_rmdir,
        .symlink = op_symlink,
        .rename = op_rename,
        .open = op_open,
        .read = op_read,
        .write = op_write,
        .release = op_release,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .readdirplus = op_readdirplus,
        .releasedir = op_releasedir,
        .statfs = op_statfs,
        .setxattr = op_setxattr,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .removexattr = op_removexattr,
        .access = op_access,
        .create = op_create,
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
        struct fuse_session *se = NULL;
        struct relay *relay = NULL;
        int r;

        l.cache_timeout = o->cache_timeout;
        l.address = o->librarian;
        l.inodes = inodes_new();
        if (!l.inodes || (l.cache_timeout > 0 && !(l.dirs = dircache_new(l.cache_timeout, dircache_fill, &l)))) {
                r = log_error_errno(-ENOMEM, "fame-lfs: out of memory");
                goto out;
        }
        /* write(2) goes through buffers of up to 1 MiB that libfuse allocates for each request:
         * from the heap, kept, rather than mapped and faulted in every time (read(2) is
         * answered from FAM itself) */
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
        se = fuse_session_new(&args, &ops, sizeof ops, &l);
        if (!se) {
                r = log_error_errno(-EINVAL, "fame-lfs: fuse_session_new failed");
                goto out;
        }
        l.se = se;
        if (fuse_session_mount(se, o->mountpoint) != 0) {
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
        if (fuse_set_signal_handlers(se) != 0) {
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
        r = fuse_session_loop_mt(se, cfg) == 0 ? 0 : -EIO;
        fuse_loop_cfg_destroy(cfg);
out_signals:
        fuse_remove_signal_handlers(se);
out_unmount:
        relay_stop(relay);
        fuse_session_unmount(se);
out_destroy:
        fuse_session_destroy(se);
out:
        fuse_opt_free_args(&args);
        fame_librarian_disconnect(l.lib);
        fame_close(l.fam);
        json_object_put(l.stats);
        free(l.source_buf);
        dircache_free(l.dirs);
        inodes_free(l.inodes);
        return r;
}
