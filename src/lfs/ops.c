/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fame-lfs's FUSE operations (docs/lfs.md): each a Librarian request as its caller, or an
 * answer from what is kept (the kernel's caches, dircache.h), on the paths of the kernel's
 * inodes (inodes.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fame.h"
#include "lfs.h"
#include "lfs-internal.h"
#include "librarian-client.h"
#include "macro.h"
#include "proto.h"

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

struct lfs *lfs_begin(fuse_req_t req) {
        caller = fuse_req_ctx(req);
        return fuse_req_userdata(req);
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
        /* a name a kept listing has; one it lacks is asked for (a shelf another node just made
         * is there at once), unless this mount removed it itself (dircache_removed()) */
        int known = l->dirs ? dircache_lookup(l->dirs, path, st) : -ENODATA;
        if (known > 0)
                return 0;
        if (known == -ENOENT)
                return -ENOENT;
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

/* This mount tried to remove path with a request begun at epoch (dircache_epoch()) that
 * returned r: as changed_entry(), and once it is gone the next create of the name (its lookup
 * first) needs no request to learn it is not there. */
static void removed(struct lfs *l, const char *path, int r, uint64_t epoch) {
        if (l->dirs && r >= 0)
                dircache_removed(l->dirs, path, epoch);
        else
                changed_entry(l, path);
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

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r >= 0)
                r = get_attr(l, path, &st);
        if (r == -ENOENT)
                /* not there (now): never remembered missing, and no inode goes by it */
                inodes_remove(l->inodes, parent, name);
        if (r < 0)
                REPLY_ERR(req, r);
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
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL;
        struct stat st;
        (void) fi;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = get_attr(l, path, &st);
        if (r < 0)
                REPLY_ERR(req, r);
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
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r < 0)
                REPLY_ERR(req, r);
        struct lfs_dir *d = calloc(1, sizeof *d);
        if (!d)
                REPLY_ERR(req, -ENOMEM);
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
        struct lfs *l = lfs_begin(req);
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
                        REPLY_ERR(req, r);
                d->loaded = true;
        }
        _cleanup_free_ char *buf = malloc(size);
        if (!buf)
                REPLY_ERR(req, -ENOMEM);
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
        struct lfs *l = lfs_begin(req);
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r < 0)
                REPLY_ERR(req, r);
        r = LCALL(l, librarian_create_shelf, path, S_IFREG | (mode & 07777), &s);
        changed_entry(l, path);
        if (r < 0)
                REPLY_ERR(req, r);
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
                REPLY_ERR(req, r);
        }
        if (fuse_reply_create(req, &e, fi) < 0) {
                /* the caller was interrupted: nobody will close it */
                close_common(l, e.ino, (struct lfs_file *) (uintptr_t) fi->fh);
                inodes_forget(l->inodes, e.ino, 1);
        }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct lfs *l = lfs_begin(req);
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
                REPLY_ERR(req, r);
        if (fuse_reply_open(req, fi) < 0)
                close_common(l, ino, (struct lfs_file *) (uintptr_t) fi->fh);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct lfs *l = lfs_begin(req);
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
        struct lfs *l = lfs_begin(req);
        struct lfs_file *f = (struct lfs_file *) (uintptr_t) fi->fh;
        size_t max = size / l->book_size + 2;
        _cleanup_free_ struct fuse_bufvec *v = malloc(sizeof *v + max * sizeof v->buf[0]);
        int r;

        if (off < 0)
                REPLY_ERR(req, -EINVAL);
        if (!v)
                REPLY_ERR(req, -ENOMEM);
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
                REPLY_ERR(req, r);
        /* FAM is not coherent across nodes: read(2) reads FAM rather than lines this node
         * cached before; the kernel copies from FAM itself (no buffer of fame-lfs's between),
         * except from a node's BAR2 (l->bounce) */
        size_t total = 0;
        for (size_t i = 0; i < v->count; i++) {
                fame_invalidate(v->buf[i].mem, v->buf[i].size);
                total += v->buf[i].size;
        }
        if (l->bounce && total > 0) {
                _cleanup_free_ char *b = malloc(total);
                if (!b)
                        REPLY_ERR(req, -ENOMEM);
                for (size_t i = 0, at = 0; i < v->count; at += v->buf[i].size, i++)
                        memcpy(b + at, v->buf[i].mem, v->buf[i].size);
                fuse_reply_buf(req, b, total);
                return;
        }
        fuse_reply_data(req, v, FUSE_BUF_NO_SPLICE);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        struct lfs *l = lfs_begin(req);
        struct lfs_file *f = (struct lfs_file *) (uintptr_t) fi->fh;
        struct fuse_buf pieces[8];
        int r;

        if (off < 0)
                REPLY_ERR(req, -EINVAL);
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
                REPLY_ERR(req, r);
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
        struct lfs *l = lfs_begin(req);
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
                REPLY_ERR(req, r);
        fuse_reply_attr(req, &st, l->cache_timeout);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
        struct lfs *l = lfs_begin(req);
        struct lfs_file *f = fi ? (struct lfs_file *) (uintptr_t) fi->fh : NULL;
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r;

        if (mode != 0)
                REPLY_ERR(req, -EOPNOTSUPP);
        if (off < 0 || len <= 0)
                REPLY_ERR(req, -EINVAL);
        r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = get_attr(l, path, &st);
        if (r < 0 || (uint64_t) off + (uint64_t) len <= (uint64_t) st.st_size)
                REPLY_ERR(req, r);
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
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL;
        uint64_t ino;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r < 0)
                REPLY_ERR(req, r);
        if (inodes_open_count(l->inodes, parent, name, &ino) > 0)
                REPLY_ERR(req, hide(l, parent, name, path));
        uint64_t epoch = l->dirs ? dircache_epoch(l->dirs) : 0;
        r = LCALL(l, librarian_destroy_shelf, path, NULL);
        removed(l, path, r, epoch);
        if (r >= 0)
                inodes_remove(l->inodes, parent, name);
        reply(req, r);
}

/* The path for a new entry name in parent, which must not exist yet: the Librarian's mkdir
 * and symlink return an existing path instead of failing.  0, or a negative errno. */
static int new_path(struct lfs *l, fuse_ino_t parent, const char *name, char **ret) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r < 0)
                return r;
        if (get_attr(l, path, &st) == 0)
                return -EEXIST;
        *ret = TAKE_PTR(path);
        return 0;
}

/* The reply to mkdir or symlink: the new entry with the attributes its record gave. */
static void reply_made(struct lfs *l, fuse_req_t req, fuse_ino_t parent, const char *name, int r, struct json_object *s) {
        struct stat st;
        if (r < 0)
                REPLY_ERR(req, r);
        fill_fresh(l, s, &st);
        reply_entry(l, req, parent, name, &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
        struct lfs *l = lfs_begin(req);
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        _cleanup_free_ char *path = NULL;
        int r = new_path(l, parent, name, &path);
        if (r < 0)
                REPLY_ERR(req, r);
        r = LCALL(l, librarian_mkdir, path, S_IFDIR | (mode & 07777), &s);
        changed(l, path);
        reply_made(l, req, parent, name, r, s);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, parent, name, &path);
        if (r < 0)
                REPLY_ERR(req, r);
        r = LCALL(l, librarian_rmdir, path, NULL);
        changed(l, path);
        if (r >= 0)
                inodes_remove(l->inodes, parent, name);
        reply(req, r);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
        struct lfs *l = lfs_begin(req);
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        _cleanup_free_ char *path = NULL;
        int r = new_path(l, parent, name, &path);
        if (r < 0)
                REPLY_ERR(req, r);
        r = LCALL(l, librarian_symlink, path, target, &s);
        changed_entry(l, path);
        reply_made(l, req, parent, name, r, s);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
        struct lfs *l = lfs_begin(req);
        _cleanup_(json_object_putp) struct json_object *v = NULL;
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = LCALL(l, librarian_readlink, path, &v);
        if (r < 0)
                REPLY_ERR(req, r);
        fuse_reply_readlink(req, json_object_get_string(v));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *from = NULL, *to = NULL;
        struct stat st;
        uint64_t ino;
        int r;

        if (flags & RENAME_EXCHANGE)
                REPLY_ERR(req, -EINVAL);
        r = inodes_path(l->inodes, parent, name, &from);
        if (r >= 0)
                r = inodes_path(l->inodes, newparent, newname, &to);
        if (r < 0)
                REPLY_ERR(req, r);
        if (get_attr(l, to, &st) == 0) {
                if (flags & RENAME_NOREPLACE)
                        REPLY_ERR(req, -EEXIST);
                /* POSIX rename replaces the target: the Librarian wants it gone first (hidden
                 * if it is open) */
                if (!S_ISDIR(st.st_mode) && inodes_open_count(l->inodes, newparent, newname, &ino) > 0)
                        r = hide(l, newparent, newname, to);
                else {
                        r = S_ISDIR(st.st_mode) ? LCALL(l, librarian_rmdir, to, NULL) : LCALL(l, librarian_destroy_shelf, to, NULL);
                        changed(l, to);
                }
                if (r < 0)
                        REPLY_ERR(req, r);
        }
        r = LCALL(l, librarian_rename_shelf, from, 0, to, NULL);
        if (l->dirs)
                dircache_drop_all(l->dirs);     /* whole trees move */
        if (r >= 0)
                inodes_move(l->inodes, parent, name, newparent, newname, false);
        reply(req, r);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL;
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = LCALL(l, librarian_fame_access, path, mask & 7, NULL);
        reply(req, r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
        struct lfs *l = lfs_begin(req);
        _cleanup_(json_object_putp) struct json_object *s = NULL;
        struct statvfs st = {};
        (void) ino;
        int r = LCALL(l, librarian_get_fs_stats, &s);
        if (r < 0)
                REPLY_ERR(req, r);
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
int lfs_books_xattr(struct lfs *l, const char *path, char *value, size_t size) {
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

/* Entries and attributes are kept cache_timeout seconds (0: not at all: every reply says so)
 * and dropped as soon as the Librarian says another connection changed them (the watcher); a
 * name that is not there is never remembered (a lookup's ENOENT carries no timeout). */
const struct fuse_lowlevel_ops lfs_ops = {
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
        .setxattr = lfs_op_setxattr,
        .getxattr = lfs_op_getxattr,
        .listxattr = lfs_op_listxattr,
        .removexattr = lfs_op_removexattr,
        .access = op_access,
        .create = op_create,
        .fallocate = op_fallocate,
};

