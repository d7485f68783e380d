/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian's commands (librarian-protocol.md §5, librarian-model.md §5-9), with FAM/E's
 * corrections and additions:
 *   - correct errnos where the original sent 0, ESTALE or "INTERNAL CODING ERROR" (ENOENT for
 *     a missing path component, ENOTDIR, EBUSY for destroy-while-open, EINVAL for a bad
 *     parameter);
 *   - access control: a shelf records its creator node (creator_id) and owner uid/gid; open
 *     needs read permission, resize and xattr changes write permission, create/mkdir/symlink
 *     write permission on the directory, destroy/rmdir/rename write permission on the directory
 *     and ownership of the shelf or of the directory (directories behave as sticky, like
 *     /tmp); uid 0 may do everything.  A request's node_id must be a node of the topology, and
 *     a connection pinned to a node may use only that node_id;
 *   - books leaving a shelf are zeroed by the Librarian itself before they become FREE, so
 *     resize never hands a zeroing shelf to the client ("z_shelf_path" is always null);
 *   - LocalEnc is implemented (every node of the caller's enclosure, shuffled);
 *   - AllocationPolicyDefault is kept in the database and survives restarts.
 *
 * This file: dispatch (a handler for every command of librarian-protocol.h's table, a request's
 * context, the node check, the exact parameters, one transaction per request), SQL statements and
 * errors, the commands about the Librarian and its nodes, and opening the database.  The other commands are in engine-shelves.c, engine-books.c and
 * engine-xattrs.c (engine-internal.h).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "engine-internal.h"
#include "fame-constants.h"
#include "proto.h"
#include "librarian-secret.h"

/* ---------------------------------------------------------------------------------------- */
/* errors and statements */

int engine_fail(struct engine *e, int err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(e->errmsg, sizeof e->errmsg, fmt, ap);
        va_end(ap);
        e->err = err;
        return -err;
}

int engine_dbfail(struct engine *e, const char *what) {
        return engine_fail(e, EREMOTEIO, "Librarian database error (%s): %s", what, sqlite3_errmsg(e->db));
}

int engine_stmt(struct engine *e, const char *sql, sqlite3_stmt **ret) {
        for (size_t i = 0; i < e->n_stmts; i++)
                if (e->stmts[i].sql == sql) {
                        sqlite3_reset(e->stmts[i].st);
                        sqlite3_clear_bindings(e->stmts[i].st);
                        *ret = e->stmts[i].st;
                        return 0;
                }
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v3(e->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
                return engine_dbfail(e, "prepare");
        if (e->n_stmts < ELEMENTSOF(e->stmts))
                e->stmts[e->n_stmts++] = (struct cached_stmt) { sql, st };
        else
                abort();        /* more distinct statements than slots: a coding error */
        *ret = st;
        return 0;
}

/* Runs a statement that returns no rows; binds int64 arguments (count, values...). */
int engine_exec(struct engine *e, const char *sql, int n, ...) {
        sqlite3_stmt *st;
        va_list ap;
        int r;

        r = engine_stmt(e, sql, &st);
        if (r < 0)
                return r;
        va_start(ap, n);
        for (int i = 0; i < n; i++)
                sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        va_end(ap);
        r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE && r != SQLITE_ROW)
                return engine_dbfail(e, sql);
        return 0;
}

/* A query returning one integer (or def when there is no row). */
int engine_query_int(struct engine *e, const char *sql, int64_t def, int64_t *ret, int n, ...) {
        sqlite3_stmt *st;
        va_list ap;
        int r;

        r = engine_stmt(e, sql, &st);
        if (r < 0)
                return r;
        va_start(ap, n);
        for (int i = 0; i < n; i++)
                sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        va_end(ap);
        r = sqlite3_step(st);
        if (r == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        else if (r == SQLITE_DONE)
                *ret = def;
        sqlite3_reset(st);
        if (r != SQLITE_ROW && r != SQLITE_DONE)
                return engine_dbfail(e, sql);
        return 0;
}

int64_t engine_now(struct engine *e) {
        return e->clock ? (int64_t) e->clock() : (int64_t) time(NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* request parameters */

struct json_object *req_param(const struct req *r, const char *name) {
        struct json_object *v = NULL;
        json_object_object_get_ex(r->obj, name, &v);
        return v;
}

int req_int(struct engine *e, const struct req *r, const char *name, int64_t *ret) {
        struct json_object *v = req_param(r, name);

        if (!v || !json_object_is_type(v, json_type_int))
                return engine_fail(e, EINVAL, "%s: parameter \"%s\" must be an integer", r->command, name);
        *ret = json_object_get_int64(v);
        return 0;
}

int req_str(struct engine *e, const struct req *r, const char *name, const char **ret) {
        struct json_object *v = req_param(r, name);

        if (!v || !json_object_is_type(v, json_type_string))
                return engine_fail(e, EINVAL, "%s: parameter \"%s\" must be a string", r->command, name);
        if (strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
                return engine_fail(e, EINVAL, "%s: parameter \"%s\" must not contain NUL", r->command, name);
        *ret = json_object_get_string(v);
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* the topology */

const struct ig_info *engine_find_ig(const struct engine *e, uint32_t ig) {
        for (size_t i = 0; i < e->n_igs; i++)
                if (e->igs[i].ig == ig)
                        return &e->igs[i];
        return NULL;
}

const struct node_info *engine_find_node(const struct engine *e, int64_t node_id) {
        for (size_t i = 0; i < e->n_nodes; i++)
                if ((int64_t) e->nodes[i].node_id == node_id)
                        return &e->nodes[i];
        return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* commands about the Librarian and its nodes */

int cmd_version(struct engine *e, struct req *r, struct json_object **ret) {
        (void) e; (void) r;
        *ret = json_object_new_string(LIBRARIAN_SCHEMA);
        return 0;
}

/* The connection proves it may speak for its port (librarian-secret.h): the server keeps the
 * answer for the connection's life; one wrong secret closes it. */
int cmd_authenticate(struct engine *e, struct req *r, struct json_object **ret) {
        const char *secret;
        int k = req_str(e, r, "secret", &secret);
        if (k < 0)
                return k;
        if (r->secret && !librarian_secret_equal(secret, r->secret)) {
                r->auth_failed = true;
                return engine_fail(e, EACCES, "authenticate: wrong secret for this port (the host's port takes "
                                   "the cluster's secrets/host.secret, a node's port that node's secret); "
                                   "closing the connection");
        }
        r->authenticated = true;
        *ret = json_object_new_boolean(true);
        return 0;
}

int cmd_get_fs_stats(struct engine *e, struct req *r, struct json_object **ret) {
        int64_t used;
        int k;
        (void) r;

        k = engine_query_int(e, "SELECT COUNT(*) FROM books WHERE allocated > 0", 0, &used, 0);
        if (k < 0)
                return k;
        struct json_object *o = json_object_new_object(), *igs = json_object_new_object();
        json_object_object_add(o, "schema_version", json_object_new_string(LIBRARIAN_SCHEMA));
        json_object_object_add(o, "book_size_bytes", json_object_new_int64((int64_t) e->geo.book_size));
        json_object_object_add(o, "nvm_bytes_total", json_object_new_int64((int64_t) e->geo.nvm_bytes_total));
        json_object_object_add(o, "books_total", json_object_new_int64((int64_t) e->geo.books_total));
        json_object_object_add(o, "nodes_total", json_object_new_int64(e->geo.nodes_total));
        json_object_object_add(o, "books_used", json_object_new_int64(used));
        for (size_t i = 0; i < e->n_igs; i++) {
                char key[16];
                struct json_object *pair = json_object_new_array();
                json_object_array_add(pair, json_object_new_int64((int64_t) e->igs[i].books));
                json_object_array_add(pair, json_object_new_int64(e->igs[i].base));
                snprintf(key, sizeof key, "%u", e->igs[i].ig);
                json_object_object_add(igs, key, pair);
        }
        json_object_object_add(o, "books_per_IG", igs);
        json_object_object_add(o, "BIImode", json_object_new_int(e->geo.bii_mode));
        *ret = o;
        return 0;
}

int cmd_send_OOB(struct engine *e, struct req *r, struct json_object **ret) {
        (void) e;
        *ret = json_object_new_object();
        json_object_object_add(*ret, "value", json_object_new_int64(r->node_id));
        return 0;
}

/* FAM/E: the connection watches (the server sends it a notice of every change by others; see
 * librarian-protocol.h and engine_request_info.watch). */
int cmd_fame_watch(struct engine *e, struct req *r, struct json_object **ret) {
        const char *origin;
        int k = req_str(e, r, "origin", &origin);
        if (k < 0)
                return k;
        if (strlen(origin) > LIBRARIAN_ORIGIN_MAX)
                return engine_fail(e, EINVAL, "fame_watch: \"origin\" is longer than %d bytes", LIBRARIAN_ORIGIN_MAX);
        *ret = json_object_new_object();
        json_object_object_add(*ret, "watching", json_object_new_boolean(true));
        return 0;
}

int cmd_update_node_soc_status(struct engine *e, struct req *r, struct json_object **ret) {
        int64_t v[6];
        static const char *const names[] = { "status", "cpu_percent", "rootfs_percent", "network_in",
                                             "network_out", "mem_percent" };
        int k;

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if ((k = req_int(e, r, names[i], &v[i])) < 0)
                        return k;
        *ret = NULL;
        return engine_exec(e, "UPDATE SOCs SET status = ?, cpu_percent = ?, rootfs_percent = ?, network_in = ?,"
                           " network_out = ?, mem_percent = ?, heartbeat = ? WHERE node_id = ?", 8,
                           v[0], v[1], v[2], v[3], v[4], v[5], engine_now(e), r->node_id);
}

int cmd_update_node_mc_status(struct engine *e, struct req *r, struct json_object **ret) {
        int64_t status;
        int k;

        k = req_int(e, r, "status", &status);
        if (k < 0)
                return k;
        *ret = NULL;
        return engine_exec(e, "UPDATE FAModules SET status = ? WHERE node_id = ?", 2, status, r->node_id);
}

/* ---------------------------------------------------------------------------------------- */
/* dispatch */

/* The handlers, by command (librarian-protocol.h). */
static const command_fn handlers[LIBRARIAN_N_COMMANDS] = {
#define HANDLER_(name, access, resend, notice, params) [LIBRARIAN_CMD_##name] = cmd_##name,
        LIBRARIAN_COMMANDS(HANDLER_)
#undef HANDLER_
};

/* Exactly the command's parameters, plus "command" and "context". */
static int check_params(struct engine *e, const struct librarian_command_info *c, struct req *r) {
        size_t want = 0;

        for (; want < ELEMENTSOF(c->params) && c->params[want]; want++)
                if (!req_param(r, c->params[want]))
                        return engine_fail(e, EINVAL, "%s: missing parameter \"%s\"", c->name, c->params[want]);
        json_object_object_foreach(r->obj, key, val) {
                (void) val;
                if (streq_(key, "command") || streq_(key, "context"))
                        continue;
                bool known = false;
                for (size_t i = 0; i < want; i++)
                        known = known || streq_(key, c->params[i]);
                if (!known)
                        return engine_fail(e, EINVAL, "%s: unknown parameter \"%s\"", c->name, key);
        }
        return 0;
}

static int context_int(struct json_object *ctx, const char *name, int64_t def, int64_t *ret) {
        struct json_object *v;

        *ret = def;
        if (!json_object_object_get_ex(ctx, name, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (json_object_is_type(v, json_type_int)) {
                *ret = json_object_get_int64(v);
                return 0;
        }
        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                char *end = NULL;
                errno = 0;
                long long n = strtoll(s, &end, 10);
                if (errno == 0 && end != s && *end == 0) {
                        *ret = n;
                        return 0;
                }
        }
        return -EINVAL;
}

/* Node check and heartbeat (protocol §8). */
static int check_node(struct engine *e, struct req *r, uint32_t pinned) {
        int64_t node;
        int k;

        if (context_int(r->context, "node_id", -1, &node) < 0)
                return engine_fail(e, EINVAL, "Bad node enumeration value: context.node_id must be an integer");
        if (node < 1 || node > FAME_LIBRARIAN_MAX_NODE)
                return engine_fail(e, EINVAL, "Bad node enumeration value %lld (1-%d)", (long long) node, FAME_LIBRARIAN_MAX_NODE);
        struct node_info *n = (struct node_info *) engine_find_node(e, node);
        if (!n)
                return engine_fail(e, EACCES, "Node is not configured in Librarian topology (node_id %lld)", (long long) node);
        if (pinned && node != pinned)
                return engine_fail(e, EACCES, "This connection belongs to node %u; it may not act as node %lld",
                                   pinned, (long long) node);
        r->node_id = node;
        r->enc = n->enc;
        r->has_node = true;
        int64_t t = engine_now(e);
        if (n->heartbeat != t) {
                k = engine_exec(e, "UPDATE SOCs SET heartbeat = ? WHERE node_id = ?", 2, t, node);
                if (k < 0)
                        return k;
                n->heartbeat = t;
        }
        return 0;
}

static int run(struct engine *e, struct req *r, uint32_t pinned, struct json_object **ret, bool *ret_has_value) {
        bool trusted = !r->secret || r->authenticated;
        struct json_object *cmd;
        int k;

        if (!json_object_object_get_ex(r->obj, "command", &cmd))
                return engine_fail(e, ENOSYS, "engine failed lookup on \"'command'\"");
        if (!json_object_is_type(cmd, json_type_string))
                return engine_fail(e, EINVAL, "\"command\" must be a string");
        r->command = json_object_get_string(cmd);
        k = librarian_command_from_name(r->command);
        if (k < 0)
                return engine_fail(e, ENOSYS, "engine failed lookup on \"'%.64s'\"", r->command);
        r->cmd = (enum librarian_command) k;
        const struct librarian_command_info *c = &librarian_commands[r->cmd];
        if (!json_object_object_get_ex(r->obj, "context", &r->context))
                return engine_fail(e, ENOSYS, "engine failed lookup on \"'context'\"");
        if (!json_object_is_type(r->context, json_type_object))
                return engine_fail(e, EINVAL, "\"context\" must be an object");
        if (!trusted && r->cmd != LIBRARIAN_CMD_version && r->cmd != LIBRARIAN_CMD_authenticate)
                return engine_fail(e, EACCES, "%s: not authenticated: this port wants its secret first "
                                   "(libfame sends the file $%s names; see docs/librarian.md, "
                                   "\"Who may say what\")", r->command, LIBRARIAN_SECRET_ENV);
        /* an unauthenticated connection asserts no node (no heartbeat either) */
        k = trusted ? check_node(e, r, pinned) : 0;
        if (k < 0)
                return k;
        if (context_int(r->context, "uid", NOBODY, &r->uid) < 0 || context_int(r->context, "gid", NOBODY, &r->gid) < 0 ||
            context_int(r->context, "pid", 0, &r->pid) < 0)
                return engine_fail(e, EINVAL, "context: uid, gid and pid must be integers");
        k = check_params(e, c, r);
        if (k < 0)
                return k;

        if (sqlite3_exec(e->db, c->access == LIBRARIAN_WRITE ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
                return engine_dbfail(e, "begin");
        *ret = NULL;
        e->req = r;
        k = handlers[r->cmd](e, r, ret);
        e->req = NULL;
        if (k >= 0 && sqlite3_exec(e->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                k = engine_dbfail(e, "commit");
        if (k < 0) {
                json_object_put(*ret);
                *ret = NULL;
                sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
                return k;
        }
        *ret_has_value = true;
        return 0;
}

/* A path as a notice names it: "/a/b", whatever "//a/./c/../b/" a client sent (the Librarian
 * resolves ".." by the parent link and follows no symbolic links: the two agree). */
static struct json_object *notice_path(const char *path) {
        size_t n = strlen(path);
        _cleanup_free_ char *out = malloc(n + 2);
        size_t len = 0;

        if (!out)
                return NULL;
        for (const char *p = path; *p; ) {
                while (*p == '/')
                        p++;
                size_t k = strcspn(p, "/");
                if (k == 0)
                        break;
                if (k == 1 && p[0] == '.') {
                } else if (k == 2 && p[0] == '.' && p[1] == '.') {
                        while (len > 0 && out[len - 1] != '/')
                                len--;
                        if (len > 0)
                                len--;  /* the slash before it */
                } else {
                        out[len++] = '/';
                        memcpy(out + len, p, k);
                        len += k;
                }
                p += k;
        }
        if (len == 0)
                out[len++] = '/';
        return json_object_new_string_len(out, (int) len);
}

/* The paths a successful NOTICE command changed. */
static struct json_object *notice_paths(const struct req *r) {
        struct json_object *a = json_object_new_array();
        static const char *const keys[] = { "path", "newpath" };

        for (size_t i = 0; a && i < ELEMENTSOF(keys); i++) {
                struct json_object *v = req_param(r, keys[i]);
                if (v && json_object_is_type(v, json_type_string))
                        json_object_array_add(a, notice_path(json_object_get_string(v)));
        }
        return a;
}

int engine_handle(struct engine *e, struct json_object *request, struct engine_request_info *info,
                  char **ret_reply, size_t *ret_len) {
        struct req r = { .obj = request, .conn = info->conn, .secret = info->secret,
                         .authenticated = info->authenticated };
        struct json_object *value = NULL;
        bool has_value = false;
        int k;

        e->err = 0;
        e->errmsg[0] = 0;
        e->tail_book = e->tail_from = e->tail_len = e->tail_shelf = 0;
        info->tail_book = info->tail_from = info->tail_len = info->tail_shelf = 0;
        info->oob = NULL;
        info->notice = NULL;
        info->watch = false;
        info->origin = NULL;
        info->node_id = 0;
        info->command = NULL;
        info->auth_failed = false;
        bool was_pending = librarian_db_sync_pending(e->db);
        k = run(e, &r, info->pinned_node, &value, &has_value);
        /* what must survive a power loss before the reply goes out (engine_set_sync_each_change):
         * a change to shelves (a NOTICE command's); never open handles, a node's status or its
         * heartbeat */
        if (!was_pending && !(e->sync_each_change && k >= 0 && has_value &&
                              librarian_commands[r.cmd].notice == LIBRARIAN_NOTICE))
                librarian_db_sync_later(e->db);
        info->authenticated = r.authenticated;
        info->auth_failed = r.auth_failed;
        if (k < 0 || !has_value) {
                info->command = r.command;
                info->node_id = r.has_node ? (uint32_t) r.node_id : 0;
                return proto_error(e->errmsg, e->err, ret_reply, ret_len);
        }
        info->command = r.command;
        info->node_id = (uint32_t) r.node_id;
        info->tail_book = e->tail_book;
        info->tail_from = e->tail_from;
        info->tail_len = e->tail_len;
        info->tail_shelf = e->tail_shelf;
        if (r.cmd == LIBRARIAN_CMD_send_OOB)
                info->oob = json_object_get(req_param(&r, "msg"));
        if (librarian_commands[r.cmd].notice == LIBRARIAN_NOTICE) {
                struct json_object *o = NULL;
                info->notice = notice_paths(&r);
                if (json_object_object_get_ex(r.context, LIBRARIAN_ORIGIN_KEY, &o) && json_object_is_type(o, json_type_string))
                        info->origin = json_object_get_string(o);
        }
        if (r.cmd == LIBRARIAN_CMD_fame_watch) {
                info->watch = true;
                info->origin = json_object_get_string(req_param(&r, "origin"));
        }
        k = proto_reply(value, r.context, ret_reply, ret_len);
        json_object_put(value);
        if (k < 0 && k != -EINVAL) {
                json_object_put(info->notice);  /* no reply: nothing changed as far as anyone hears */
                info->notice = NULL;
        }
        if (k == -EINVAL)
                return proto_error("Librarian could not encode its reply", EPROTO, ret_reply, ret_len);
        return k;
}

int engine_handle_text(struct engine *e, const char *request, char **ret_reply) {
        struct json_object *o = json_tokener_parse(request);
        struct engine_request_info info = {};
        size_t len;
        int r;

        if (!o)
                return -EINVAL;
        r = engine_handle(e, o, &info, ret_reply, &len);
        json_object_put(info.oob);
        json_object_put(info.notice);
        json_object_put(o);
        return r;
}

/* ---------------------------------------------------------------------------------------- */
/* open */

static int load(struct engine *e, char **ret_error) {
        sqlite3_stmt *st = NULL;
        int r = -EIO;

#define ERR(...) do { if (ret_error) { free(*ret_error); if (asprintf(ret_error, __VA_ARGS__) < 0) *ret_error = NULL; } goto out; } while (0)
        if (sqlite3_prepare_v2(e->db, "SELECT schema_version, book_size_bytes, nvm_bytes_total, books_total,"
                               " nodes_total FROM globals", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
                ERR("'%s' is not a Librarian database (%s); create one with fame librarian init",
                    sqlite3_db_filename(e->db, "main"), sqlite3_errmsg(e->db));
        const char *version = (const char *) sqlite3_column_text(st, 0);
        if (!version || !streq_(version, LIBRARIAN_SCHEMA))
                ERR("'%s' has schema \"%s\", not \"%s\"; create a new one with fame librarian init",
                    sqlite3_db_filename(e->db, "main"), version ? version : "", LIBRARIAN_SCHEMA);
        e->geo.book_size = (uint64_t) sqlite3_column_int64(st, 1);
        e->geo.nvm_bytes_total = (uint64_t) sqlite3_column_int64(st, 2);
        e->geo.books_total = (uint64_t) sqlite3_column_int64(st, 3);
        e->geo.nodes_total = (uint32_t) sqlite3_column_int64(st, 4);
        sqlite3_finalize(st);
        st = NULL;
        if (!is_power_of_two_u64(e->geo.book_size))
                ERR("'%s': book size %llu is not a power of two", sqlite3_db_filename(e->db, "main"),
                    (unsigned long long) e->geo.book_size);

        if (sqlite3_prepare_v2(e->db, "SELECT f.node_id, f.enc, s.heartbeat FROM FRDnodes f"
                               " LEFT JOIN SOCs s ON s.node_id = f.node_id ORDER BY f.node_id", -1, &st, NULL) != SQLITE_OK)
                ERR("'%s': %s", sqlite3_db_filename(e->db, "main"), sqlite3_errmsg(e->db));
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct node_info *nn = realloc(e->nodes, (e->n_nodes + 1) * sizeof *nn);
                uint32_t *ni = realloc(e->node_ids, (e->n_nodes + 1) * sizeof *ni);
                if (nn)
                        e->nodes = nn;
                if (ni)
                        e->node_ids = ni;
                if (!nn || !ni) {
                        r = -ENOMEM;
                        goto out;
                }
                e->nodes[e->n_nodes] = (struct node_info) {
                        (uint32_t) sqlite3_column_int64(st, 0), (uint32_t) sqlite3_column_int64(st, 1),
                        sqlite3_column_int64(st, 2) };
                e->node_ids[e->n_nodes] = e->nodes[e->n_nodes].node_id;
                e->n_nodes++;
        }
        sqlite3_finalize(st);
        st = NULL;

        if (sqlite3_prepare_v2(e->db, "SELECT intlv_group & 65535, COUNT(*), MIN(id), MAX(intlv_group >> 16)"
                               " FROM books GROUP BY intlv_group & 65535 ORDER BY 1", -1, &st, NULL) != SQLITE_OK)
                ERR("'%s': %s", sqlite3_db_filename(e->db, "main"), sqlite3_errmsg(e->db));
        uint64_t start = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct ig_info *ni = realloc(e->igs, (e->n_igs + 1) * sizeof *ni);
                if (!ni) {
                        r = -ENOMEM;
                        goto out;
                }
                e->igs = ni;
                int mode = (int) sqlite3_column_int64(st, 3);
                e->geo.bii_mode = mode;
                e->igs[e->n_igs] = (struct ig_info) {
                        .ig = (uint32_t) sqlite3_column_int64(st, 0),
                        .books = (uint64_t) sqlite3_column_int64(st, 1),
                        .base = mode == 1 ? sqlite3_column_int64(st, 2) : -1,
                        .start = start,
                };
                start += e->igs[e->n_igs].books;
                e->n_igs++;
        }
        sqlite3_finalize(st);
        st = NULL;

        snprintf(e->policy_default, sizeof e->policy_default, "RandomBooks");
        if (sqlite3_prepare_v2(e->db, "SELECT value FROM fame_settings WHERE name = 'AllocationPolicyDefault'",
                               -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
                const char *p = (const char *) sqlite3_column_text(st, 0);
                if (p && policy_known(p))
                        snprintf(e->policy_default, sizeof e->policy_default, "%s", p);
        }
        r = 0;
out:
        sqlite3_finalize(st);
        return r;
#undef ERR
}

/*
 * A database made by tm-book-register (or an older FAM/E) gets FAM/E's owner columns and
 * indexes; its existing shelves are owned by root.  Idempotent.
 */
static int upgrade(struct engine *e, const char *path, char **ret_error) {
        sqlite3_stmt *st = NULL;
        bool has_uid = false, has_conn = false;
        char *msg = NULL;

        if (sqlite3_prepare_v2(e->db, "PRAGMA table_info(shelves)", -1, &st, NULL) == SQLITE_OK)
                while (sqlite3_step(st) == SQLITE_ROW)
                        has_uid = has_uid || streq_((const char *) sqlite3_column_text(st, 1), "uid");
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(e->db, "PRAGMA table_info(opened_shelves)", -1, &st, NULL) == SQLITE_OK)
                while (sqlite3_step(st) == SQLITE_ROW)
                        has_conn = has_conn || streq_((const char *) sqlite3_column_text(st, 1), "fame_conn");
        sqlite3_finalize(st);
        if (!has_conn &&
            sqlite3_exec(e->db, "ALTER TABLE opened_shelves ADD COLUMN fame_conn INT DEFAULT 0;", NULL, NULL, &msg) != SQLITE_OK)
                goto fail;
        if (sqlite3_exec(e->db,
                         "BEGIN IMMEDIATE;"
                         "CREATE INDEX IF NOT EXISTS IDX_books_allocated ON books (allocated, intlv_group);"
                         /* free books in id order: RandomBooks probes it at random ids */
                         "CREATE INDEX IF NOT EXISTS IDX_books_free ON books (allocated);"
                         "CREATE INDEX IF NOT EXISTS IDX_shelves_parent ON shelves (parent_id, name);"
                         "CREATE UNIQUE INDEX IF NOT EXISTS IDX_bos_book ON books_on_shelves (book_id);"
                         "CREATE UNIQUE INDEX IF NOT EXISTS IDX_bos_shelf ON books_on_shelves (shelf_id, seq_num);"
                         "CREATE INDEX IF NOT EXISTS IDX_opened_shelf ON opened_shelves (shelf_id);"
                         "COMMIT;", NULL, NULL, &msg) != SQLITE_OK)
                goto fail;
        if (!has_uid &&
            sqlite3_exec(e->db, "BEGIN IMMEDIATE;"
                         "ALTER TABLE shelves ADD COLUMN uid INT DEFAULT 0;"
                         "ALTER TABLE shelves ADD COLUMN gid INT DEFAULT 0;"
                         "COMMIT;", NULL, NULL, &msg) != SQLITE_OK)
                goto fail;
        return 0;
fail:
        sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
        if (ret_error && asprintf(ret_error, "Cannot use the Librarian database '%s': %s (a book on two shelves "
                                  "needs fsck_lfs first)", path, msg ? msg : sqlite3_errmsg(e->db)) < 0)
                *ret_error = NULL;
        sqlite3_free(msg);
        return -EIO;
}

int engine_open(const char *path, struct engine **ret, char **ret_error) {
        return engine_open_flags(path, 0, ret, ret_error);
}

int engine_open_flags(const char *path, unsigned flags, struct engine **ret, char **ret_error) {
        struct engine *e = calloc(1, sizeof *e);
        int r;

        if (!e)
                return -ENOMEM;
        if (access(path, F_OK) < 0) {
                r = negative_errno();
                if (ret_error && asprintf(ret_error, "No Librarian database '%s': %s; create it with "
                                          "fame librarian init --db %s --topology FILE", path, strerror(-r), path) < 0)
                        *ret_error = NULL;
                free(e);
                return r;
        }
        /* the gathering VFS relies on synchronous=FULL, set below */
        if (sqlite3_open_v2(path, &e->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, librarian_db_vfs()) != SQLITE_OK) {
                if (ret_error && asprintf(ret_error, "Failed to open the Librarian database '%s': %s", path,
                                          e->db ? sqlite3_errmsg(e->db) : "out of memory") < 0)
                        *ret_error = NULL;
                engine_free(e);
                return -EIO;
        }
        sqlite3_busy_timeout(e->db, 5000);
        char *msg = NULL;
        /* first, so that it is in effect when this connection first enters WAL mode (the WAL
         * index then lives in heap memory: https://sqlite.org/wal.html#noshm) */
        if ((flags & ENGINE_OPEN_EXCLUSIVE) &&
            sqlite3_exec(e->db, "PRAGMA locking_mode=EXCLUSIVE;", NULL, NULL, &msg) != SQLITE_OK) {
                if (ret_error && asprintf(ret_error, "Failed to open the Librarian database '%s' exclusively: %s", path,
                                          msg ? msg : sqlite3_errmsg(e->db)) < 0)
                        *ret_error = NULL;
                sqlite3_free(msg);
                engine_free(e);
                return -EIO;
        }
        if (sqlite3_exec(e->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
                         "CREATE TEMP TABLE temp_taken (value INTEGER PRIMARY KEY);"
                         "CREATE TABLE IF NOT EXISTS fame_settings (name TEXT PRIMARY KEY, value TEXT);"
                         FAME_PENDING_ZERO_TABLE ";",
                         NULL, NULL, &msg) != SQLITE_OK) {
                if (ret_error && asprintf(ret_error, "Failed to open the Librarian database '%s': %s", path,
                                          msg ? msg : sqlite3_errmsg(e->db)) < 0)
                        *ret_error = NULL;
                sqlite3_free(msg);
                engine_free(e);
                return -EIO;
        }
        e->zombies_dirty = true;       /* a previous run may have left some */
        r = upgrade(e, path, ret_error);
        if (r >= 0)
                r = load(e, ret_error);
        if (r >= 0) {
                /* the connections that held handles are gone with the previous run, but their
                 * clients may reconnect and reclaim them: kept, belonging to no connection (the
                 * server drops those not reclaimed after a grace period).  Numbers are never
                 * reused: past every handle kept and every one handed out before. */
                int64_t saved = 0;
                if (engine_query_int(e, "SELECT COALESCE(MAX(id), 0) + 1 FROM opened_shelves", 1, &e->next_handle, 0) < 0 ||
                    engine_query_int(e, "SELECT CAST(value AS INTEGER) FROM fame_settings WHERE name = 'NextOpenHandle'",
                                     0, &saved, 0) < 0 ||
                    engine_exec(e, "UPDATE opened_shelves SET fame_conn = ?", 1, (int64_t) ENGINE_UNCLAIMED_CONN) < 0) {
                        if (ret_error && asprintf(ret_error, "Failed to keep the open handles of '%s': %s", path,
                                                  e->errmsg) < 0)
                                *ret_error = NULL;
                        r = -EIO;
                }
                if (saved > e->next_handle)
                        e->next_handle = saved;
        }
        if (r < 0) {
                engine_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

void engine_free(struct engine *e) {
        if (!e)
                return;
        for (size_t i = 0; i < e->n_stmts; i++)
                sqlite3_finalize(e->stmts[i].st);
        if (e->db)
                sqlite3_close(e->db);
        free(e->nodes);
        free(e->node_ids);
        free(e->igs);
        free(e->inflight);
        free(e);
}

void engine_get_geometry(const struct engine *e, struct engine_geometry *ret) {
        *ret = e->geo;
}

size_t engine_node_ids(const struct engine *e, const uint32_t **ret) {
        *ret = e->node_ids;
        return e->n_nodes;
}

void engine_set_clock(struct engine *e, double (*clock)(void)) {
        e->clock = clock;
}

void engine_set_fail_zeroed(struct engine *e, bool on) {
        __atomic_store_n(&e->fail_zeroed, on, __ATOMIC_RELAXED);
}

void engine_set_sync_each_change(struct engine *e, bool on) {
        e->sync_each_change = on;
}

bool engine_unsynced(struct engine *e) {
        return librarian_db_unsynced(e->db);
}

int engine_sync_now(struct engine *e) {
        return librarian_db_sync_now(e->db);
}

int engine_set_group_sync(struct engine *e, bool on) {
        return librarian_db_group_sync(e->db, on);
}

bool engine_sync_pending(struct engine *e) {
        return librarian_db_sync_pending(e->db);
}

int engine_sync(struct engine *e) {
        return librarian_db_sync(e->db);
}
