/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian's extended attributes of shelves (engine-internal.h): any "namespace.name"
 * attribute is stored as given; the user.LFS.* ones are LFS's allocation settings
 * (AllocationPolicy, AllocationPolicyDefault, InterleaveRequest) or computed on reading
 * (AllocationPolicyList, Interleave), and checked when set.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-internal.h"

int xattr_get(struct engine *e, int64_t shelf, const char *name, char **ret, size_t *ret_len) {
        static const char sql[] = "SELECT value FROM shelf_xattrs WHERE shelf_id = ? AND xattr = ?";
        sqlite3_stmt *st;
        int k;

        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, shelf);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        *ret = NULL;
        if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
                int len = sqlite3_column_bytes(st, 0);
                const void *blob = sqlite3_column_blob(st, 0);
                *ret = malloc((size_t) len + 1);
                if (*ret) {
                        if (len)
                                memcpy(*ret, blob, (size_t) len);
                        (*ret)[len] = 0;
                        if (ret_len)
                                *ret_len = (size_t) len;
                }
        }
        sqlite3_reset(st);
        if (r != SQLITE_ROW && r != SQLITE_DONE)
                return engine_dbfail(e, "xattr lookup");
        if (r == SQLITE_ROW && !*ret && sqlite3_column_type(st, 0) != SQLITE_NULL)
                return engine_fail(e, ENOMEM, "Out of memory");
        return 0;
}

int xattr_set(struct engine *e, int64_t shelf, const char *name, const char *value, size_t len) {
        static const char sql[] = "INSERT OR REPLACE INTO shelf_xattrs VALUES (?, ?, ?)";
        sqlite3_stmt *st;
        int k;

        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, shelf);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, value, (int) len, SQLITE_STATIC);
        int r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
                return engine_dbfail(e, "xattr update");
        return 0;
}

/* Checks an xattr name: "a.b[.c...]"; returns the LFS attribute (after "user.LFS.") or NULL. */
/* Linux's limits (<linux/limits.h>): names up to XATTR_NAME_MAX bytes (ERANGE beyond), values
 * up to XATTR_SIZE_MAX (E2BIG beyond). */
#define XATTR_NAME_MAX_LEN 255
#define XATTR_SIZE_MAX_LEN 65536

static int xattr_name(struct engine *e, const char *name, const char **ret_lfs) {
        const char *dot = strchr(name, '.');

        *ret_lfs = NULL;
        if (strlen(name) > XATTR_NAME_MAX_LEN)
                return engine_fail(e, ERANGE, "Extended attribute name too long (%zu bytes; at most %d)", strlen(name),
                                   XATTR_NAME_MAX_LEN);
        if (!dot)
                return engine_fail(e, EINVAL, "Extended attribute name \"%s\" has no namespace (e.g. user.%s)", name, name);
        const char *second = dot + 1, *dot2 = strchr(second, '.');
        size_t len = dot2 ? (size_t) (dot2 - second) : strlen(second);
        if (len == 3 && strncmp(second, "LFS", 3) == 0) {
                if (!dot2 || strchr(dot2 + 1, '.') || !dot2[1])
                        return engine_fail(e, EINVAL, "LFS xattrs are of form \"user.LFS.xxx\"");
                *ret_lfs = dot2 + 1;
        }
        return 0;
}

int cmd_get_xattr(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path, *name, *lfs;
        _cleanup_free_ char *value = NULL;
        size_t len = 0;
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_str(e, r, "xattr", &name)) < 0 ||
            (k = path_resolve_existing(e, path, &res)) < 0 || (k = xattr_name(e, name, &lfs)) < 0 ||
            (k = shelf_check_access(e, r, &res.shelf, MAY_READ, "read attributes of")) < 0)
                return k;
        struct json_object *v = NULL;
        if (lfs && streq_(lfs, "AllocationPolicyList")) {
                char buf[256] = "";
                for (size_t i = 0; i < n_policy_names; i++) {
                        if (i)
                                strcat(buf, ",");
                        strcat(buf, policy_names[i]);
                }
                v = json_object_new_string(buf);
        } else if (lfs && streq_(lfs, "AllocationPolicyDefault")) {
                v = json_object_new_string(e->policy_default);
        } else if (lfs && streq_(lfs, "Interleave")) {
                _cleanup_free_ struct book *books = NULL;
                size_t n;
                k = shelf_books(e, &res.shelf, &books, &n, false);
                if (k < 0)
                        return k;
                _cleanup_free_ char *s = malloc(n + 1);
                if (!s)
                        return engine_fail(e, ENOMEM, "Out of memory");
                for (size_t i = 0; i < n; i++)
                        s[i] = (char) (books[i].intlv_group & 0x7F);
                v = json_object_new_string_len(s, (int) n);
        } else {
                k = xattr_get(e, res.shelf.id, name, &value, &len);
                if (k < 0)
                        return k;
                if (value)
                        v = json_object_new_string_len(value, (int) len);
        }
        *ret = json_object_new_object();
        json_object_object_add(*ret, "value", v);
        return 0;
}

int cmd_list_xattrs(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT xattr FROM shelf_xattrs WHERE shelf_id = ?"
                " UNION SELECT 'user.LFS.AllocationPolicyList' UNION SELECT 'user.LFS.Interleave' ORDER BY 1";
        struct resolved res;
        int k;

        k = req_existing_path(e, r, &res);
        if (k >= 0)
                k = shelf_check_access(e, r, &res.shelf, MAY_READ, "list attributes of");
        if (k < 0)
                return k;
        sqlite3_stmt *st;
        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, res.shelf.id);
        struct json_object *a = json_object_new_array();
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW)
                json_object_array_add(a, json_object_new_string((const char *) sqlite3_column_text(st, 0)));
        sqlite3_reset(st);
        *ret = json_object_new_object();
        json_object_object_add(*ret, "value", a);
        return s == SQLITE_DONE ? 0 : engine_dbfail(e, "list xattrs");
}

static int save_policy_default(struct engine *e, const char *p) {
        static const char sql[] = "INSERT OR REPLACE INTO fame_settings VALUES ('AllocationPolicyDefault', ?)";
        sqlite3_stmt *st;
        int k;

        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_text(st, 1, p, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        return s == SQLITE_DONE ? 0 : engine_dbfail(e, "policy default");
}

int cmd_set_xattr(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path, *name, *lfs;
        struct json_object *vj = req_param(r, "value");
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_str(e, r, "xattr", &name)) < 0 ||
            (k = path_resolve_existing(e, path, &res)) < 0 || (k = xattr_name(e, name, &lfs)) < 0)
                return k;
        if (!vj || json_object_is_type(vj, json_type_null))
                return engine_fail(e, EINVAL, "Trying to set a null value");
        if (!json_object_is_type(vj, json_type_string))
                return engine_fail(e, EINVAL, "set_xattr: parameter \"value\" must be a string");
        const char *value = json_object_get_string(vj);
        size_t len = (size_t) json_object_get_string_len(vj);
        if (len > XATTR_SIZE_MAX_LEN)
                return engine_fail(e, E2BIG, "Extended attribute value too long (%zu bytes; at most %d)", len, XATTR_SIZE_MAX_LEN);
        k = shelf_check_access(e, r, &res.shelf, MAY_WRITE, "set attributes of");
        if (k < 0)
                return k;
        *ret = NULL;
        if (!lfs)
                return xattr_set(e, res.shelf.id, name, value, len);
        if (streq_(lfs, "AllocationPolicy")) {
                if (strlen(value) != len || !policy_known(value))
                        return engine_fail(e, ENOTSUP, "Bad AllocationPolicy \"%.64s\"; one of user.LFS.AllocationPolicyList",
                                           value);
                return xattr_set(e, res.shelf.id, name, value, len);
        }
        if (streq_(lfs, "AllocationPolicyDefault")) {
                if (strlen(value) != len || !policy_known(value) || streq_(value, "RequestIG"))
                        return engine_fail(e, ENOTSUP, "Bad AllocationPolicy \"%.64s\" for the default", value);
                if ((k = xattr_set(e, res.shelf.id, "user.LFS.AllocationPolicy", value, len)) < 0 ||
                    (k = save_policy_default(e, value)) < 0)
                        return k;
                snprintf(e->policy_default, sizeof e->policy_default, "%s", value);
                return 0;
        }
        if (streq_(lfs, "InterleaveRequest")) {
                for (size_t i = 0; i < len; i++)
                        if (!engine_find_ig(e, (unsigned char) value[i]))
                                return engine_fail(e, ENOTSUP, "Requested IGs not subset of known IGs (%u is unknown)",
                                                   (unsigned char) value[i]);
                _cleanup_free_ char *pos = NULL;
                k = xattr_get(e, res.shelf.id, "user.LFS.InterleaveRequestPos", &pos, NULL);
                if (k < 0)
                        return k;
                if (!pos)
                        return engine_fail(e, EINVAL, "\"%s\" has no interleave position (only files have)", res.name);
                k = xattr_set(e, res.shelf.id, name, value, len);
                if (k < 0)
                        return k;
                return xattr_set(e, res.shelf.id, "user.LFS.InterleaveRequestPos", "0", 1);
        }
        if (streq_(lfs, "AllocationPolicyList") || streq_(lfs, "Interleave") || streq_(lfs, "InterleaveRequestPos"))
                return engine_fail(e, ENOTSUP, "Setting %s is prohibited", name);
        return engine_fail(e, ENOTSUP, "Bad LFS attribute %s", name);
}

int cmd_remove_xattr(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path, *name, *lfs;
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_str(e, r, "xattr", &name)) < 0 ||
            (k = path_resolve_existing(e, path, &res)) < 0 || (k = xattr_name(e, name, &lfs)) < 0)
                return k;
        if (lfs)
                return engine_fail(e, EINVAL, "Removal of LFS xattrs is prohibited");
        k = shelf_check_access(e, r, &res.shelf, MAY_WRITE, "remove attributes of");
        if (k < 0)
                return k;
        static const char sql[] = "DELETE FROM shelf_xattrs WHERE shelf_id = ? AND xattr = ?";
        sqlite3_stmt *st;
        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, res.shelf.id);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        *ret = NULL;
        return s == SQLITE_DONE ? 0 : engine_dbfail(e, "remove xattr");
}
