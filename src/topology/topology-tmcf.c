/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The TMCF JSON form of a topology (topology.h, docs/topology.md): /etc/tmconfig as
 * tmconfig.py reads it (racks, enclosures, nodes and their media controllers, interleave
 * groups, the librarian service's bookSize), with what json-c accepts but Python's json does
 * not refused; each error one line naming the member ("racks[0].enclosures[1].coordinate").
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fame.h"
#include "macro.h"
#include "topology-internal.h"
#include "util.h"

/* ---- TMCF JSON ------------------------------------------------------------------------------ */

struct jctx {
        const char *name;
        char **ret_error;
        struct topology *t;
        size_t nodes_allocated;
        uint64_t book_size;
        const char *rack_full;          /* the rack being read */
};

#define JPATH_MAX 256

/* "parent.member[idx]" ("member" at the top; no index when idx < 0). */
static char *jpath(char buf[static JPATH_MAX], const char *parent, const char *member, long idx) {
        if (idx >= 0)
                snprintf(buf, JPATH_MAX, "%s%s%s[%ld]", parent, *parent ? "." : "", member, idx);
        else
                snprintf(buf, JPATH_MAX, "%s%s%s", parent, *parent ? "." : "", member);
        return buf;
}

/* "NAME: PATH: message" */
_printf_(3, 4)
static int jfail(struct jctx *c, const char *path, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;

        va_start(ap, fmt);
        m = vstrf(fmt, ap);
        va_end(ap);
        if (!m)
                return -ENOMEM;
        int r = topo_fail(c->ret_error, -EINVAL, "%s: %s: %s", c->name, path, m);
        free(m);
        return r;
}

/* The member, or NULL when it is absent or null. */
static struct json_object *jget(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

static int jstring(struct jctx *c, struct json_object *o, const char *parent, const char *key, bool required,
                   const char **ret) {
        struct json_object *v = jget(o, key);
        char path[JPATH_MAX];

        *ret = NULL;
        if (!v) {
                if (required)
                        return jfail(c, jpath(path, parent, key, -1), "is missing; add \"%s\": \"...\"", key);
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return jfail(c, jpath(path, parent, key, -1), "must be a string");
        const char *s = json_object_get_string(v);
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return jfail(c, jpath(path, parent, key, -1), "contains a NUL character");
        *ret = s;
        return 0;
}

/* A number, or a string that tmconfig.py turns into one ("1T"). */
static int jnumber(struct jctx *c, struct json_object *o, const char *parent, const char *key, bool required,
                   uint64_t *ret) {
        struct json_object *v = jget(o, key);
        char path[JPATH_MAX];

        if (!v) {
                if (required)
                        return jfail(c, jpath(path, parent, key, -1), "is missing; add e.g. \"%s\": \"8G\"", key);
                return 0;
        }
        if (json_object_is_type(v, json_type_int)) {
                int64_t i = json_object_get_int64(v);
                if (i < 0)
                        return jfail(c, jpath(path, parent, key, -1), "%" PRId64 " is negative", i);
                *ret = i == INT64_MAX ? json_object_get_uint64(v) : (uint64_t) i;
                return 0;
        }
        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                int64_t i;
                int r = topo_py_multiplier(s, (size_t) json_object_get_string_len(v), 0, &i);
                if (r == -ERANGE)
                        return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" is too large", s);
                if (r < 0)
                        return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" is not a number; write a whole number with an optional suffix K, M, G or T, e.g. \"8G\"",
                                     s);
                if (i < 0)
                        return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" is negative", s);
                *ret = (uint64_t) i;
                return 0;
        }
        return jfail(c, jpath(path, parent, key, -1), "must be a whole number or a string like \"8G\"");
}

/* A text member as it reaches the database: tmconfig.py turns every string that multiplier()
 * reads as a number into that number ("0042" becomes 42).  NULL when absent and optional. */
static int jtext(struct jctx *c, struct json_object *o, const char *parent, const char *key, bool required,
                 char **ret) {
        struct json_object *v = NULL;
        char path[JPATH_MAX];
        int64_t i;
        int r;

        *ret = NULL;
        if (json_object_object_get_ex(o, key, &v) && !v)
                return jfail(c, jpath(path, parent, key, -1), "is null; write a string");
        if (!v) {
                if (required)
                        return jfail(c, jpath(path, parent, key, -1), "is missing; add \"%s\": \"...\"", key);
                return 0;
        }
        if (json_object_is_type(v, json_type_int)) {
                i = json_object_get_int64(v);
                if (i == INT64_MAX)
                        *ret = strf("%" PRIu64, json_object_get_uint64(v));
                else
                        *ret = strf("%" PRId64, i);
                return *ret ? 0 : -ENOMEM;
        }
        if (!json_object_is_type(v, json_type_string))
                return jfail(c, jpath(path, parent, key, -1), "must be a string");
        const char *s = json_object_get_string(v);
        size_t len = (size_t) json_object_get_string_len(v);
        if (strlen(s) != len)
                return jfail(c, jpath(path, parent, key, -1), "contains a NUL character");
        if (!is_ascii(s))
                return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" is not ASCII", s);
        r = topo_py_multiplier(s, len, 0, &i);
        if (r == -ERANGE)
                return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" reads as a number too large for the database", s);
        *ret = r == 0 ? strf("%" PRId64, i) : strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* The non-empty array member, or NULL with *ret set. */
static struct json_object *jarray(struct jctx *c, struct json_object *o, const char *parent, const char *key, int *ret) {
        struct json_object *v = jget(o, key);
        char path[JPATH_MAX];

        *ret = 0;
        if (!v || !json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0) {
                *ret = jfail(c, jpath(path, parent, key, -1), "%s; add at least one entry",
                             !v ? "is missing" : !json_object_is_type(v, json_type_array) ? "must be an array" : "is empty");
                return NULL;
        }
        return v;
}

static struct json_object *jobject_at(struct jctx *c, struct json_object *a, size_t i, const char *path, int *ret) {
        struct json_object *v = json_object_array_get_idx(a, i);
        *ret = 0;
        if (!v || !json_object_is_type(v, json_type_object)) {
                *ret = jfail(c, path, "must be an object");
                return NULL;
        }
        return v;
}

static const char *const studly_keys[] = {
        "MachineVersion", "Datacenter", "Frame", "Rack", "Enclosure", "EncNum", "Node", "MemoryBoard", "SocBoard", NULL
};

/* tmconfig.py finish_child(): no white space, no '/' at either end, known words capitalised. */
static int jcoordinate(struct jctx *c, const char *path, const char *coord, bool top) {
        if (!top && !*coord)
                return jfail(c, path, "is empty; write e.g. \"Node/1\"");
        if (has_space(coord))
                return jfail(c, path, "\"%.80s\" has superfluous white space; remove it", coord);
        if (!top && (coord[0] == '/' || coord[strlen(coord) - 1] == '/'))
                return jfail(c, path, "\"%.80s\" has a leading or trailing '/'; coordinates below the top are relative", coord);
        for (const char *e = coord; *e; ) {
                size_t n = strcspn(e, "/");
                for (const char *const *k = studly_keys; *k; k++)
                        if (strlen(*k) == n && strncasecmp(*k, e, n) == 0 && strncmp(*k, e, n) != 0)
                                return jfail(c, path, "\"%.80s\": case should be \"%s\", not \"%.*s\"", coord, *k, (int) n, e);
                e += n;
                if (*e)
                        e++;
        }
        return 0;
}

/* The number a relative coordinate ends with ("Enclosure/U3/EncNum/2" → 2). */
static int coordinate_number(const char *coord, uint32_t min, uint32_t max, uint32_t *ret) {
        const char *p = strrchr(coord, '/');
        uint64_t v;
        if (topo_int_range(p ? p + 1 : coord, min, max, &v) < 0)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* The coordinate member of the object at path, checked, and joined to its parent's. */
static int jchild_coordinate(struct jctx *c, struct json_object *o, const char *path, const char *parent_coord,
                             const char **ret_rel, char **ret_full) {
        char cpath[JPATH_MAX];
        const char *rel;

        int r = jstring(c, o, path, "coordinate", true, &rel);
        if (r < 0)
                return r;
        r = jcoordinate(c, jpath(cpath, path, "coordinate", -1), rel, false);
        if (r < 0)
                return r;
        if (!(*ret_full = strf("%s/%s", parent_coord, rel)))
                return -ENOMEM;
        *ret_rel = rel;
        return 0;
}

/* The librarian service's bookSize: new style servers[].services[], or old style
 * managementServer.librarian. */
static int json_book_size(struct jctx *c, struct json_object *root) {
        struct json_object *found = NULL, *v;
        char path[JPATH_MAX], where[JPATH_MAX] = "";
        int r;

        v = jget(root, "managementServer");
        if (v && json_object_is_type(v, json_type_object)) {
                struct json_object *l = jget(v, "librarian");
                if (l && json_object_is_type(l, json_type_object)) {
                        found = l;
                        snprintf(where, sizeof where, "managementServer.librarian");
                }
        }
        v = jget(root, "servers");
        for (size_t i = 0; v && json_object_is_type(v, json_type_array) && i < json_object_array_length(v); i++) {
                struct json_object *srv = json_object_array_get_idx(v, i), *svcs;
                if (!srv || !json_object_is_type(srv, json_type_object))
                        continue;
                svcs = jget(srv, "services");
                for (size_t j = 0; svcs && json_object_is_type(svcs, json_type_array) && j < json_object_array_length(svcs); j++) {
                        struct json_object *svc = json_object_array_get_idx(svcs, j), *name;
                        if (!svc || !json_object_is_type(svc, json_type_object))
                                continue;
                        name = jget(svc, "service");
                        if (!name || !json_object_is_type(name, json_type_string) ||
                            strcmp(json_object_get_string(name), "librarian") != 0)
                                continue;
                        snprintf(path, sizeof path, "servers[%zu].services[%zu]", i, j);
                        if (found)
                                return jfail(c, path, "a second librarian service (the first is %s); keep one", where);
                        found = svc;
                        snprintf(where, sizeof where, "%s", path);
                }
        }
        if (!found)
                return topo_fail(c->ret_error, -EINVAL, "%s: servers: no librarian service; add {\"service\": \"librarian\", \"bookSize\": \"8M\"} to servers[].services[] (or managementServer.librarian)",
                                 c->name);
        r = jnumber(c, found, where, "bookSize", true, &c->book_size);
        if (r < 0)
                return r;
        if (!is_power_of_two_u64(c->book_size) || c->book_size < JSON_MIN_BOOK || c->book_size > JSON_MAX_BOOK)
                return jfail(c, jpath(path, where, "bookSize", -1), "%" PRIu64 " is not a power of two from 2K to 16G; use e.g. \"8M\"",
                             c->book_size);
        return 0;
}

static struct topology_mc *json_find_mc(struct jctx *c, const char *coordinate) {
        for (size_t i = 0; i < c->t->n_nodes; i++)
                for (size_t j = 0; j < c->t->nodes[i].n_mcs; j++)
                        if (strcmp(c->t->nodes[i].mcs[j].coordinate, coordinate) == 0)
                                return &c->t->nodes[i].mcs[j];
        return NULL;
}

static int json_mcs(struct jctx *c, struct json_object *jn, const char *npath, struct topology_node *n) {
        struct json_object *a;
        char path[JPATH_MAX], mpath[JPATH_MAX];
        int r;

        a = jarray(c, jn, npath, "mediaControllers", &r);
        if (!a)
                return r;
        size_t count = json_object_array_length(a);
        n->mcs = calloc(count, sizeof *n->mcs);
        if (!n->mcs)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                struct topology_mc *mc = &n->mcs[i];
                const char *rel;
                uint32_t num;

                jpath(path, npath, "mediaControllers", (long) i);
                struct json_object *jm = jobject_at(c, a, i, path, &r);
                if (!jm)
                        return r;
                mc->ig = UINT32_MAX;    /* in no interleave group yet */
                n->n_mcs++;
                r = jchild_coordinate(c, jm, path, n->coordinate, &rel, &mc->coordinate);
                if (r < 0)
                        return r;
                if (coordinate_number(rel, 1, 8, &num) < 0)
                        return jfail(c, jpath(mpath, path, "coordinate", -1), "\"%.80s\" must end with the MC number 1 to 8, e.g. MemoryBoard/1/MediaController/1",
                                     rel);
                if (json_find_mc(c, mc->coordinate) != mc)
                        return jfail(c, path, "duplicate MC coordinate %s", mc->coordinate);
                r = jnumber(c, jm, path, "memorySize", true, &mc->memory_size);
                if (r < 0)
                        return r;
                if (mc->memory_size % c->book_size)
                        return jfail(c, jpath(mpath, path, "memorySize", -1), "%" PRIu64 " is not a whole number of books of %" PRIu64 " bytes; use a multiple of bookSize",
                                     mc->memory_size, c->book_size);
                mc->module_size_books = mc->memory_size / c->book_size;
                if (mc->module_size_books > TOPOLOGY_MAX_BOOKS_PER_IG)
                        return jfail(c, jpath(mpath, path, "memorySize", -1), "%" PRIu64 " books, more than the %u an MC may hold (MC has too much NVM); use a larger bookSize",
                                     mc->module_size_books, TOPOLOGY_MAX_BOOKS_PER_IG);
                mc->raw_cid = (uint64_t) (n->enc - 1) << 9 | (uint64_t) (n->node - 1) << 4 | (uint64_t) (num - 1 + 8);
                n->books += mc->module_size_books;
        }
        return 0;
}

static int json_node(struct jctx *c, struct json_object *jn, const char *path, const char *enc_full, uint32_t enc) {
        struct topology *t = c->t;
        struct topology_node *n;
        struct json_object *soc;
        const char *rel;
        char spath[JPATH_MAX], cpath[JPATH_MAX];
        uint32_t num;
        int r;

        n = grow(t->nodes, &c->nodes_allocated, t->n_nodes + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        t->nodes = n;
        n = &t->nodes[t->n_nodes++];
        *n = (struct topology_node) { 0 };

        r = jchild_coordinate(c, jn, path, enc_full, &rel, &n->coordinate);
        if (r < 0)
                return r;
        if (coordinate_number(rel, 1, TOPOLOGY_MAX_NODES_PER_ENCLOSURE, &num) < 0)
                return jfail(c, jpath(cpath, path, "coordinate", -1), "\"%.80s\" must end with the node number in its enclosure, 1 to 10, e.g. Node/1",
                             rel);
        topo_node_place(n, (enc - 1) * 10 + num);
        /* FRDnodes.rack: the last element of the rack's coordinate, a number when it is one */
        {
                const char *slash = c->rack_full ? strrchr(c->rack_full, '/') : NULL;
                const char *name = slash ? slash + 1 : c->rack_full;
                uint32_t rn;
                if (name && *name && parse_uint32(name, 0, UINT32_MAX, &rn) >= 0)
                        n->rack = rn;
                else if (name && *name && !(n->rack_name = strdup(name)))
                        return -ENOMEM;
        }
        for (size_t i = 0; i + 1 < t->n_nodes; i++) {
                if (strcmp(t->nodes[i].coordinate, n->coordinate) == 0)
                        return jfail(c, path, "duplicate node coordinate %s", n->coordinate);
                if (t->nodes[i].node_id == n->node_id)
                        return jfail(c, path, "node_id %" PRIu32 " again (node_id = (enclosure-1)*10 + node; first %s); give every node its own enclosure and node number",
                                     n->node_id, t->nodes[i].coordinate);
        }

        r = jtext(c, jn, path, "serialNumber", true, &n->serial);
        if (r < 0)
                return r;

        jpath(spath, path, "soc", -1);
        soc = jget(jn, "soc");
        if (!soc || !json_object_is_type(soc, json_type_object))
                return jfail(c, spath, "%s; add {\"coordinate\": \"SocBoard/1/Soc/1\", ...}", soc ? "must be an object" : "is missing");
        r = jchild_coordinate(c, soc, spath, n->coordinate, &rel, &n->soc_coordinate);
        if (r < 0)
                return r;
        r = jtext(c, soc, spath, "hostname", false, &n->hostname);
        if (r < 0)
                return r;
        if (!n->hostname && !(n->hostname = strf("node%02" PRIu32, n->node_id)))
                return -ENOMEM;
        r = jtext(c, soc, spath, "macAddress", false, &n->mac);
        if (r < 0)
                return r;
        if (!n->mac && !(n->mac = strdup("n/a")))
                return -ENOMEM;
        r = jtext(c, soc, spath, "tlsPublicCertificate", false, &n->tls_certificate);
        if (r < 0)
                return r;
        /* what tmconfig.py's _FTFY() fills in */
        if (!n->tls_certificate && !(n->tls_certificate = strdup("You forgot an attribute.  BAD GEEK! BAD!")))
                return -ENOMEM;

        return json_mcs(c, jn, path, n);
}

static int json_enclosure(struct jctx *c, struct json_object *je, const char *epath, const char *rack_full,
                          char ***enc_seen, size_t *n_enc_seen, size_t *enc_seen_allocated) {
        struct json_object *nodes;
        char path[JPATH_MAX];
        const char *rel;
        char *enc_full = NULL;
        uint32_t enc;
        int r;

        r = jchild_coordinate(c, je, epath, rack_full, &rel, &enc_full);
        if (r < 0)
                return r;
        char **es = grow(*enc_seen, enc_seen_allocated, *n_enc_seen + 1, sizeof *es);
        if (!es) {
                free(enc_full);
                return -ENOMEM;
        }
        *enc_seen = es;
        es[(*n_enc_seen)++] = enc_full;
        if (coordinate_number(rel, 1, TOPOLOGY_MAX_ENCLOSURES, &enc) < 0)
                return jfail(c, jpath(path, epath, "coordinate", -1), "\"%.80s\" must end with the enclosure number 1 to 8, e.g. Enclosure/1 or Enclosure/U3/EncNum/1",
                             rel);
        for (size_t k = 0; k + 1 < *n_enc_seen; k++)
                if (strcmp(es[k], enc_full) == 0)
                        return jfail(c, epath, "duplicate enclosure coordinate %s", enc_full);
        nodes = jarray(c, je, epath, "nodes", &r);
        if (!nodes)
                return r;
        for (size_t k = 0; k < json_object_array_length(nodes); k++) {
                jpath(path, epath, "nodes", (long) k);
                struct json_object *jn = jobject_at(c, nodes, k, path, &r);
                if (!jn)
                        return r;
                r = json_node(c, jn, path, enc_full, enc);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int json_racks(struct jctx *c, struct json_object *root, const char *top) {
        struct json_object *racks;
        char rpath[JPATH_MAX], epath[JPATH_MAX];
        char **enc_seen = NULL;
        size_t n_enc_seen = 0, enc_seen_allocated = 0;
        int r = 0;

        racks = jarray(c, root, "", "racks", &r);
        for (size_t i = 0; racks && i < json_object_array_length(racks) && r >= 0; i++) {
                _cleanup_free_ char *rack_full = NULL;
                struct json_object *rack, *encs;
                const char *rel;

                jpath(rpath, "", "racks", (long) i);
                rack = jobject_at(c, racks, i, rpath, &r);
                if (!rack)
                        break;
                r = jchild_coordinate(c, rack, rpath, top, &rel, &rack_full);
                if (r < 0)
                        break;
                c->rack_full = rack_full;
                encs = jarray(c, rack, rpath, "enclosures", &r);
                for (size_t j = 0; encs && j < json_object_array_length(encs) && r >= 0; j++) {
                        jpath(epath, rpath, "enclosures", (long) j);
                        struct json_object *je = jobject_at(c, encs, j, epath, &r);
                        if (je)
                                r = json_enclosure(c, je, epath, rack_full, &enc_seen, &n_enc_seen, &enc_seen_allocated);
                }
        }
        for (size_t i = 0; i < n_enc_seen; i++)
                free(enc_seen[i]);
        free(enc_seen);
        return r;
}

static int json_igs(struct jctx *c, struct json_object *root) {
        struct json_object *igs;
        bool seen[TOPOLOGY_MAX_IGS] = { false };
        char path[JPATH_MAX], mpath[JPATH_MAX], gpath[JPATH_MAX];
        int r;

        igs = jarray(c, root, "", "interleaveGroups", &r);
        if (!igs)
                return r;
        for (size_t i = 0; i < json_object_array_length(igs); i++) {
                struct json_object *ig, *mcs;
                uint64_t gid = 0, books = 0;

                jpath(path, "", "interleaveGroups", (long) i);
                ig = jobject_at(c, igs, i, path, &r);
                if (!ig)
                        return r;
                r = jnumber(c, ig, path, "groupId", true, &gid);
                if (r < 0)
                        return r;
                if (gid >= TOPOLOGY_MAX_IGS)
                        return jfail(c, jpath(gpath, path, "groupId", -1), "%" PRIu64 " is out of range (0 to %u)", gid, TOPOLOGY_MAX_IGS - 1);
                if (seen[gid])
                        return jfail(c, jpath(gpath, path, "groupId", -1), "duplicate interleave group ID %" PRIu64 "; number the groups apart", gid);
                seen[gid] = true;
                mcs = jarray(c, ig, path, "mediaControllers", &r);
                if (!mcs)
                        return r;
                for (size_t j = 0; j < json_object_array_length(mcs); j++) {
                        struct json_object *e = json_object_array_get_idx(mcs, j);
                        const char *coord = NULL;
                        jpath(mpath, path, "mediaControllers", (long) j);
                        if (e && json_object_is_type(e, json_type_string))
                                coord = json_object_get_string(e);
                        else if (e && json_object_is_type(e, json_type_object)) {
                                r = jstring(c, e, mpath, "coordinate", true, &coord);
                                if (r < 0)
                                        return r;
                                if (jget(e, "memorySize"))
                                        return jfail(c, mpath, "IG %" PRIu64 " MC %.200s sets memorySize; only the MC under its node may, so remove it here",
                                                     gid, coord);
                        } else
                                return jfail(c, mpath, "must be an absolute MC coordinate string or {\"coordinate\": \"...\"}");
                        struct topology_mc *mc = json_find_mc(c, coord);
                        if (!mc)
                                return jfail(c, mpath, "IG %" PRIu64 " MC %.200s not in any node; use the full coordinate of an MC listed under racks[]",
                                             gid, coord);
                        if (mc->ig != UINT32_MAX)
                                return jfail(c, mpath, "MC %s is already in interleave group %" PRIu32 "; every MC belongs to exactly one group",
                                             coord, mc->ig);
                        mc->ig = (uint32_t) gid;
                        books += mc->module_size_books;
                }
                if (books > TOPOLOGY_MAX_BOOKS_PER_IG)
                        return jfail(c, path, "interleave group %" PRIu64 " holds %" PRIu64 " books, more than %u (book count too large); use a larger bookSize or fewer MCs",
                                     gid, books, TOPOLOGY_MAX_BOOKS_PER_IG);
        }
        for (size_t i = 0; i < c->t->n_nodes; i++)
                for (size_t j = 0; j < c->t->nodes[i].n_mcs; j++)
                        if (c->t->nodes[i].mcs[j].ig == UINT32_MAX)
                                return topo_fail(c->ret_error, -EINVAL, "%s: interleaveGroups: MC %s is not assigned to an IG; add it to exactly one group",
                                                 c->name, c->t->nodes[i].mcs[j].coordinate);
        return 0;
}

static int hex4(const char *s, size_t len, size_t i, unsigned *ret) {
        unsigned v = 0;
        if (len - i < 4)
                return -EINVAL;
        for (size_t k = 0; k < 4; k++) {
                int c = tolower((unsigned char) s[i + k]);
                if (!isxdigit(c))
                        return -EINVAL;
                v = v << 4 | (unsigned) (c <= '9' ? c - '0' : c - 'a' + 10);
        }
        *ret = v;
        return 0;
}

/*
 * What json-c (strict) accepts but Python's json.loads() does not: control characters inside
 * strings, single-quoted strings, numbers ending in '.', lone UTF-16 surrogates.  Run on text
 * json-c has parsed.  0, or the offset of the problem and what it is.
 */
static int json_python_check(const char *text, size_t len, size_t *ret_at, const char **ret_what) {
        for (size_t i = 0; i < len; i++) {
                char ch = text[i];
                if (ch == '\'') {
                        *ret_at = i;
                        *ret_what = "a single-quoted string; use double quotes";
                        return -EINVAL;
                }
                if (ch == '.' && (i + 1 >= len || !isdigit((unsigned char) text[i + 1]))) {
                        *ret_at = i;
                        *ret_what = "a number ending in '.'; write e.g. 1.0 or 1";
                        return -EINVAL;
                }
                if (ch != '"')
                        continue;
                for (i++; i < len && text[i] != '"'; i++) {
                        unsigned u, lo;
                        if ((unsigned char) text[i] < 0x20) {
                                *ret_at = i;
                                *ret_what = "a control character inside a string; write it as \\n, \\t or \\u00XX";
                                return -EINVAL;
                        }
                        if (text[i] != '\\')
                                continue;
                        i++;
                        if (i < len && text[i] == 'u' && hex4(text, len, i + 1, &u) == 0 && u >= 0xd800 && u <= 0xdfff) {
                                if (u >= 0xdc00 || i + 10 >= len || text[i + 5] != '\\' || text[i + 6] != 'u' ||
                                    hex4(text, len, i + 7, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
                                        *ret_at = i - 1;
                                        *ret_what = "a lone UTF-16 surrogate escape";
                                        return -EINVAL;
                                }
                                i += 6;
                        }
                }
        }
        return 0;
}

int topo_parse_tmcf(const char *text, size_t len, const char *name, struct topology *t, char **ret_error) {
        struct jctx c = { .name = name, .ret_error = ret_error, .t = t };
        struct json_tokener *tok;
        struct json_object *root;
        const char *top;
        int r;

        if (len > INT32_MAX)
                return topo_fail(ret_error, -EFBIG, "%s: too large for a topology", name);
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, text, (int) len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!root || e != json_tokener_success) {
                unsigned line, col;
                topo_line_col(text, end < len ? end : len, &line, &col);
                json_object_put(root);
                return topo_fail(ret_error, -EINVAL, "%s:%u:%u: not valid JSON (%s); fix the syntax",
                                 name, line, col, e == json_tokener_continue ? "unexpected end of text" : json_tokener_error_desc(e));
        }
        size_t at;
        const char *what;
        if (json_python_check(text, len, &at, &what) < 0) {
                unsigned line, col;
                topo_line_col(text, at, &line, &col);
                json_object_put(root);
                return topo_fail(ret_error, -EINVAL, "%s:%u:%u: not valid JSON (%s)", name, line, col, what);
        }
        for (size_t i = end; i < len; i++)
                if (!isspace((unsigned char) text[i])) {
                        json_object_put(root);
                        return topo_fail(ret_error, -EINVAL, "%s: text after the JSON object at byte %zu; remove it", name, i);
                }
        if (!json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return topo_fail(ret_error, -EINVAL, "%s: the top level must be a JSON object", name);
        }

        r = jstring(&c, root, "", "coordinate", true, &top);
        if (r < 0)
                goto out;
        if (strncmp(top, "/MachineVersion/1/", 18) != 0) {
                r = jfail(&c, "coordinate", "\"%.80s\" does not start with /MachineVersion/1/ (illegal MachineVersion); write e.g. /MachineVersion/1/Datacenter/pa1",
                          top);
                goto out;
        }
        r = jcoordinate(&c, "coordinate", top, true);
        if (r < 0)
                goto out;
        r = json_book_size(&c, root);
        if (r < 0)
                goto out;
        t->book_size = c.book_size;
        t->mode = TOPOLOGY_LZA;
        r = json_racks(&c, root, top);
        if (r < 0)
                goto out;
        r = json_igs(&c, root);
        if (r < 0)
                goto out;

        for (size_t i = 0; i < t->n_nodes; i++) {
                struct topology_node *n = &t->nodes[i];
                n->ig = n->mcs[0].ig;
                t->books_total += n->books;
        }
        t->nvm_bytes_total = t->books_total * t->book_size;
        qsort(t->nodes, t->n_nodes, sizeof *t->nodes, topo_node_cmp);
        r = 0;
out:
        json_object_put(root);
        return r;
}
