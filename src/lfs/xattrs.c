/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fame-lfs's extended attributes (docs/lfs.md): user.* are the Librarian's; user.fame.books,
 * read-only and not listed, gives the mmap shim the books of a file (lfs_books_xattr()). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lfs.h"
#include "lfs-internal.h"
#include "librarian-client.h"
#include "macro.h"
#include "proto.h"

static int get_xattr(struct lfs *l, const char *path, const char *name, char *value, size_t size) {
        if (strcmp(name, LFS_BOOKS_XATTR) == 0)
                return lfs_books_xattr(l, path, value, size);
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
                REPLY_ERR(req, r);
        if (size == 0)
                fuse_reply_xattr(req, (size_t) r);
        else
                fuse_reply_buf(req, value, (size_t) r);
}

void lfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL, *value = size ? malloc(size) : NULL;
        int r = size && !value ? -ENOMEM : inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = get_xattr(l, path, name, value, size);
        reply_xattr(req, r, value, size);
}

void lfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL, *list = size ? malloc(size) : NULL;
        int r = size && !list ? -ENOMEM : inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = list_xattrs(l, path, list, size);
        reply_xattr(req, r, list, size);
}

void lfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL;
        (void) flags;
        if (strcmp(name, LFS_BOOKS_XATTR) == 0)
                REPLY_ERR(req, -EPERM);
        if (strncmp(name, "user.", 5) != 0)
                REPLY_ERR(req, -ENOTSUP);
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = LCALL(l, librarian_set_xattr, path, name, value, size, NULL);
        reply(req, r);
}

void lfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
        struct lfs *l = lfs_begin(req);
        _cleanup_free_ char *path = NULL;
        if (strncmp(name, "user.", 5) != 0)
                REPLY_ERR(req, -ENOTSUP);
        int r = inodes_path(l->inodes, ino, NULL, &path);
        if (r >= 0)
                r = LCALL(l, librarian_remove_xattr, path, name, NULL);
        reply(req, r);
}
