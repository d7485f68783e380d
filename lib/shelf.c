/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shelves through the Librarian (fame_shelf_*, docs/librarian.md): opened or created by the
 * client's typed calls, sized, and mapped from FAM book by book at the offsets the Librarian's
 * books have there (librarian_book_offsets).  Without a FAM (fam NULL) a shelf is only sized.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fam_atomic.h"
#include "fame-internal.h"
#include "librarian-client.h"
#include "proto.h"

/* Says why a shelf call failed through libfame's log, unless the connection's owner says it
 * itself (librarian_set_quiet); returns r. */
#define shelf_log_err(lib, r, ...) (librarian_quiet(lib) ? (r) : log_err((r), __VA_ARGS__))

struct fame_shelf {
        struct fame *fam;
        struct fame_librarian *lib;
        bool own_lib;
        char *path;
        int64_t id, open_handle;
        uint64_t size;
        uint64_t book_size;
        uint64_t *offsets;      /* FAM offset of each book */
        uint64_t n_books;
        void *map;
        size_t map_len;
};

static int64_t member_int(struct json_object *o, const char *name) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, name, &v);
        return json_object_get_int64(v);
}

void librarian_igstart(struct json_object *stats, uint64_t igbooks[128], uint64_t igstart[128]) {
        struct json_object *per_ig = NULL;

        memset(igbooks, 0, 128 * sizeof *igbooks);
        json_object_object_get_ex(stats, "books_per_IG", &per_ig);
        if (per_ig) {
                json_object_object_foreach(per_ig, key, val) {
                        unsigned long ig = strtoul(key, NULL, 10);
                        if (ig < 128 && json_object_is_type(val, json_type_array))
                                igbooks[ig] = (uint64_t) json_object_get_int64(json_object_array_get_idx(val, 0));
                }
        }
        for (uint64_t ig = 0, start = 0; ig < 128; ig++) {
                igstart[ig] = start;
                start += igbooks[ig];
        }
}

int librarian_book_offsets(struct json_object *stats, struct json_object *books, uint64_t book_area, uint64_t fam_size,
                           uint64_t **ret, size_t *ret_n, size_t *ret_bad) {
        uint64_t igbooks[128], igstart[128], book = (uint64_t) member_int(stats, "book_size_bytes");
        size_t n = json_object_array_length(books);

        librarian_igstart(stats, igbooks, igstart);
        uint64_t *offsets = calloc(n ? n : 1, sizeof *offsets);
        if (!offsets)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *b = json_object_array_get_idx(books, i);
                uint64_t ig = (uint64_t) member_int(b, "intlv_group") & 0xFFFF, num = (uint64_t) member_int(b, "book_num");
                uint64_t off = ig < 128 ? book_area + (igstart[ig] + num) * book : 0;
                if (ig >= 128 || num >= igbooks[ig] || off + book > fam_size) {
                        free(offsets);
                        if (ret_bad)
                                *ret_bad = i;
                        return -ERANGE;
                }
                offsets[i] = off;
        }
        *ret = offsets;
        *ret_n = n;
        return 0;
}

/* Size and book count from a shelf record (without a FAM: the books are not needed). */
static void shelf_set_record(struct fame_shelf *s, struct json_object *shelf) {
        s->size = (uint64_t) member_int(shelf, "size_bytes");
        s->n_books = (uint64_t) member_int(shelf, "book_count");
}

/* Reloads size and book offsets. */
static int shelf_refresh(struct fame_shelf *s) {
        _cleanup_(json_object_putp) struct json_object *stats = NULL, *shelf = NULL, *books = NULL;
        int r;

        if (!s->fam) {
                r = librarian_get_shelf(s->lib, s->path, &shelf);
                if (r < 0)
                        return shelf_log_err(s->lib, r, "Librarian: %s: %s", s->path, fame_librarian_error(s->lib));
                shelf_set_record(s, shelf);
                return 0;
        }
        const struct fame_geometry *geo = fame_get_geometry(s->fam);
        r = librarian_get_fs_stats(s->lib, &stats);
        if (r >= 0)
                r = librarian_get_shelf(s->lib, s->path, &shelf);
        if (r >= 0)
                r = librarian_list_shelf_books(s->lib, s->path, &books);
        if (r < 0)
                return shelf_log_err(s->lib, r, "Librarian: %s: %s", s->path, fame_librarian_error(s->lib));
        s->book_size = (uint64_t) member_int(stats, "book_size_bytes");
        if (member_int(stats, "BIImode") != 0)
                return log_err(-EINVAL, "Librarian at %s has a PHYSADDR topology; shelves cannot be mapped from FAM",
                               librarian_address(s->lib));
        if (s->book_size != geo->book_size)
                return log_err(-EINVAL, "Librarian at %s has %llu-byte books but this FAM has %llu-byte books: "
                               "it serves another FAM", librarian_address(s->lib),
                               (unsigned long long) s->book_size, (unsigned long long) geo->book_size);
        s->size = (uint64_t) member_int(shelf, "size_bytes");

        uint64_t *offsets = NULL;
        size_t n = 0, bad = 0;
        r = librarian_book_offsets(stats, books, geo->book_area_offset, fame_size(s->fam), &offsets, &n, &bad);
        if (r == -ERANGE)
                return log_err(r, "Book %zu of shelf %s lies outside this FAM", bad, s->path);
        if (r < 0)
                return r;
        free(s->offsets);
        s->offsets = offsets;
        s->n_books = n;
        return 0;
}

static void shelf_unmap(struct fame_shelf *s) {
        if (!s->map)
                return;
        for (uint64_t i = 0; i < s->map_len / s->book_size; i++)
                fam_atomic_unregister_region((char *) s->map + i * s->book_size, s->book_size);
        munmap(s->map, s->map_len);
        s->map = NULL;
        s->map_len = 0;
}

_public_ int fame_shelf_open(struct fame *fam, struct fame_librarian *lib, const char *path, unsigned flags,
                             uint32_t mode, struct fame_shelf **ret) {
        struct fame_shelf *s;
        _cleanup_(json_object_putp) struct json_object *shelf = NULL;
        int r;

        if ((!fam && !lib) || !path || !ret)
                return -EINVAL;
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->fam = fam;
        s->open_handle = -1;
        s->path = strdup(path);
        if (!s->path) {
                free(s);
                return -ENOMEM;
        }
        if (!lib) {
                r = fame_librarian_connect(NULL, &lib);
                if (r < 0) {
                        free(s->path);
                        free(s);
                        return r;
                }
                s->own_lib = true;
                /* this node's Librarian identity */
                uint32_t node = fame_librarian_node_id(fame_get_geometry(fam), fame_node_id(fam));
                if (node)
                        fame_librarian_set_node(lib, node);
        }
        s->lib = lib;
        if (flags & FAME_SHELF_EXCL) {
                r = librarian_get_shelf(lib, path, NULL);
                if (r >= 0) {
                        librarian_set_error(lib, "Shelf %s already exists", path);
                        r = shelf_log_err(lib, -EEXIST, "Shelf %s already exists", path);
                        goto fail;
                }
                if (r != -ENOENT)
                        goto fail_lib;
        }
        if (flags & FAME_SHELF_CREATE) {
                if (!(flags & FAME_SHELF_MODE_EXACT))
                        mode = (mode ? mode : 0666) & ~librarian_umask(lib);
                r = librarian_create_shelf(lib, path, S_IFREG | (mode & 07777), &shelf);
        } else
                r = librarian_open_shelf(lib, path, &shelf);
        if (r < 0)
                goto fail_lib;
        s->id = member_int(shelf, "id");
        s->open_handle = member_int(shelf, "open_handle");
        if (fam) {
                r = shelf_refresh(s);
                if (r < 0)
                        goto fail;
        } else
                shelf_set_record(s, shelf);
        *ret = s;
        return 0;
fail_lib:
        shelf_log_err(lib, r, "Librarian: %s: %s", path, fame_librarian_error(lib));
fail:
        fame_shelf_close(s);
        return r;
}

_public_ int fame_shelf_resize(struct fame_shelf *s, uint64_t size) {
        bool mapped = s && s->map;
        int r;

        if (!s)
                return -EINVAL;
        if (size > INT64_MAX) {
                librarian_set_error(s->lib, "Bad size");        /* what the Librarian would say */
                return -EINVAL;
        }
        /* books about to be freed must not stay mapped while the Librarian zeroes and reuses them */
        if (size < s->size)
                shelf_unmap(s);
        r = librarian_resize_shelf(s->lib, s->path, s->id, (int64_t) size, false, NULL);
        if (r < 0)
                return shelf_log_err(s->lib, r, "Librarian: resizing %s to %llu bytes: %s", s->path,
                                     (unsigned long long) size, fame_librarian_error(s->lib));
        shelf_unmap(s);
        r = shelf_refresh(s);
        if (r < 0)
                return r;
        if (mapped && s->n_books && !fame_shelf_map(s, NULL))
                return negative_errno();
        return 0;
}

_public_ uint64_t fame_shelf_size(const struct fame_shelf *s) {
        return s ? s->size : 0;
}

_public_ uint64_t fame_shelf_book_count(const struct fame_shelf *s) {
        return s ? s->n_books : 0;
}

_public_ int64_t fame_shelf_book_offset(const struct fame_shelf *s, uint64_t i) {
        if (!s || !s->offsets || i >= s->n_books)
                return -EINVAL;
        return (int64_t) s->offsets[i];
}

_public_ void *fame_shelf_map(struct fame_shelf *s, size_t *ret_len) {
        if (!s || !s->fam) {
                errno = EINVAL;
                return NULL;
        }
        if (s->map) {
                if (ret_len)
                        *ret_len = s->map_len;
                return s->map;
        }
        if (s->n_books == 0) {
                errno = ENODATA;
                return NULL;
        }
        size_t len = s->n_books * s->book_size;
        /* reserve, then put each book in place */
        char *base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED)
                return NULL;
        int fd = fame_fd(s->fam);
        for (uint64_t i = 0; i < s->n_books; i++) {
                void *p = mmap(base + i * s->book_size, s->book_size, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_FIXED, fd, (off_t) s->offsets[i]);
                if (p == MAP_FAILED) {
                        int e = errno;
                        for (uint64_t k = 0; k < i; k++)
                                fam_atomic_unregister_region(base + k * s->book_size, s->book_size);
                        munmap(base, len);
                        log_err(-e, "Failed to map book %llu of shelf %s: %s", (unsigned long long) i, s->path,
                                strerror(e));
                        errno = e;
                        return NULL;
                }
                fam_atomic_register_region(p, s->book_size, fd, (off_t) s->offsets[i]);
        }
        s->map = base;
        s->map_len = len;
        if (ret_len)
                *ret_len = len;
        return base;
}

_public_ int fame_shelf_close(struct fame_shelf *s) {
        int r = 0;

        if (!s)
                return 0;
        shelf_unmap(s);
        if (s->open_handle >= 0 && s->lib) {
                r = librarian_close_shelf(s->lib, s->id, s->open_handle, NULL);
                if (r < 0)
                        shelf_log_err(s->lib, r, "Librarian: closing %s: %s", s->path, fame_librarian_error(s->lib));
        }
        if (s->own_lib)
                fame_librarian_disconnect(s->lib);
        free(s->offsets);
        free(s->path);
        free(s);
        return r;
}
