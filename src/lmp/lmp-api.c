/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What each route of the management view answers (docs/lmp.md): the one route table, FAM/E's
 * own API under /api/v1/ and tm-lmp's under /lmp/.  Every answer is built from the engine's
 * read-only views (engine-views.c) and, for nodes, the FAM's slots and the cluster's state
 * (lmp-nodes.c).  Strings from the database go out as JSON strings; the page inserts them as
 * text (src/lmp/assets/app.js), never as markup.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fame.h"
#include "lmp-internal.h"
#include "macro.h"
#include "util.h"

/* A view's failure as a reply: ENOENT is the caller's 404, the rest the server's 500. */
static int view_failed(const struct lmp_request *q, struct lmp_reply *ret, const char *what) {
        int err = errno ? errno : EIO;
        if (err == ENOMEM)
                return -ENOMEM;
        return lmp_reply_error(ret, 500, q->path, "Cannot read %s from the Librarian's database: %s", what, strerror(err));
}

static int api_summary(const struct lmp_request *q, struct lmp_reply *ret) {
        struct engine *e = q->src->engine;
        struct json_object *fam = q->src->views->summary(e);
        if (!fam)
                return view_failed(q, ret, "the FAM's books");
        struct json_object *o = json_object_new_object(), *lib = json_object_new_object(),
                           *check = json_object_new_object();
        if (!o || !lib || !check) {
                json_object_put(fam);
                json_object_put(o);
                json_object_put(lib);
                json_object_put(check);
                return -ENOMEM;
        }
        json_object_object_add(o, "cluster", json_object_new_string(q->src->cluster ? q->src->cluster : ""));
        json_object_object_add(o, "generation", json_object_new_int64((int64_t) q->src->views->generation(e)));
        json_object_object_add(o, "time", json_object_new_double(lmp_realtime()));
        json_object_object_add(o, "fam", fam);
        struct lmp_counters c = { 0 };
        if (q->src->counters)
                q->src->counters(q->src->userdata, &c);
        json_object_object_add(lib, "uptime_s", json_object_new_double(c.uptime_s));
        json_object_object_add(lib, "connections", json_object_new_int64((int64_t) c.connections));
        json_object_object_add(lib, "requests_total", json_object_new_int64((int64_t) c.requests_total));
        json_object_object_add(lib, "requests_per_second", json_object_new_double(c.requests_per_second));
        json_object_object_add(o, "librarian", lib);
        struct json_object *f = q->src->findings ? q->src->findings(q->src->userdata) : NULL, *list;
        json_object_object_add(check, "enabled", json_object_new_boolean(f != NULL));
        if (f && json_object_object_get_ex(f, "findings", &list))
                json_object_object_add(check, "findings", json_object_new_int64((int64_t) json_object_array_length(list)));
        json_object_put(f);
        json_object_object_add(o, "check", check);
        return lmp_reply_json(ret, 200, o);
}

static int api_nodes(const struct lmp_request *q, struct lmp_reply *ret) {
        struct json_object *o = lmp_nodes(q->src);
        return o ? lmp_reply_json(ret, 200, o) : view_failed(q, ret, "the nodes");
}

/* Where the FAM's book area starts, -1 when no FAM is attached. */
static int64_t fam_base(const struct lmp_request *q) {
        return q->src->fam ? (int64_t) fame_get_geometry(q->src->fam)->book_area_offset : -1;
}

static int api_shelves(const struct lmp_request *q, struct lmp_reply *ret) {
        struct json_object *o = q->src->views->shelves(q->src->engine);
        return o ? lmp_reply_json(ret, 200, o) : view_failed(q, ret, "the shelves");
}

static int api_shelf(const struct lmp_request *q, struct lmp_reply *ret) {
        /* /api/v1/shelves/a/b is the shelf /a/b */
        _cleanup_free_ char *path = strf("/%s", q->rest);
        if (!path)
                return -ENOMEM;
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
                path[--n] = 0;
        errno = 0;
        struct json_object *o = q->src->views->shelf(q->src->engine, path, fam_base(q));
        if (!o && errno == ENOENT)
                return lmp_reply_error(ret, 404, q->path, "No shelf %s (GET /api/v1/shelves lists them)", path);
        return o ? lmp_reply_json(ret, 200, o) : view_failed(q, ret, "the shelf");
}

static int api_fam_map(const struct lmp_request *q, struct lmp_reply *ret) {
        struct json_object *o = q->src->views->fam_map(q->src->engine, fam_base(q));
        return o ? lmp_reply_json(ret, 200, o) : view_failed(q, ret, "the FAM map");
}

static void add_region(struct json_object *regions, const char *name, uint64_t offset, uint64_t size, const char *what) {
        struct json_object *r = json_object_new_object();
        if (!r)
                return;
        json_object_object_add(r, "name", json_object_new_string(name));
        json_object_object_add(r, "offset", json_object_new_int64((int64_t) offset));
        json_object_object_add(r, "size", json_object_new_int64((int64_t) size));
        json_object_object_add(r, "what", json_object_new_string(what));
        json_object_array_add(regions, r);
}

/* The FAM's layout (docs/fam-format.md): its geometry and regions, from its header. */
static int api_fam(const struct lmp_request *q, struct lmp_reply *ret) {
        if (!q->src->fam)
                return lmp_reply_error(ret, 404, q->path, "No FAM is attached to this view (fame lmp serve --fam FILE)");
        const struct fame_geometry *g = fame_get_geometry(q->src->fam);
        struct json_object *o = json_object_new_object(), *regions = json_object_new_array();
        if (!o || !regions) {
                json_object_put(o);
                json_object_put(regions);
                return -ENOMEM;
        }
        char uuid[37];
        fame_uuid_format(g->uuid, uuid);
        json_object_object_add(o, "uuid", json_object_new_string(uuid));
        json_object_object_add(o, "created", json_object_new_int64((int64_t) g->created));
        json_object_object_add(o, "size_bytes", json_object_new_int64((int64_t) g->total_size));
        json_object_object_add(o, "book_size", json_object_new_int64((int64_t) g->book_size));
        json_object_object_add(o, "books_total", json_object_new_int64((int64_t) g->books_total));
        json_object_object_add(o, "books_per_node", json_object_new_int64(g->books_per_node));
        json_object_object_add(o, "nodes", json_object_new_int64(g->node_count));
        json_object_object_add(o, "nodes_per_enclosure", json_object_new_int64(g->nodes_per_enclosure));
        json_object_object_add(o, "enclosures_per_rack", json_object_new_int64(g->enclosures_per_rack));
        add_region(regions, "header", 0, g->meta_offset, "the FAM's header");
        add_region(regions, "slots", g->slots_offset, (uint64_t) g->slot_count * g->slot_size, "one slot per node: join, heartbeat, boot");
        add_region(regions, "doorbells", g->doorbell_offset, g->doorbell_size, "reserved");
        add_region(regions, "librarian", g->librarian_offset, g->librarian_size, "reserved");
        add_region(regions, "books", g->book_area_offset, g->books_total * g->book_size, "the books the Librarian hands out");
        json_object_object_add(o, "regions", regions);
        char v[16];
        snprintf(v, sizeof v, "%u.%u", g->version_major, g->version_minor);
        json_object_object_add(o, "version", json_object_new_string(v));
        return lmp_reply_json(ret, 200, o);
}

static int api_check(const struct lmp_request *q, struct lmp_reply *ret) {
        errno = 0;
        struct json_object *o = q->src->findings ? q->src->findings(q->src->userdata) : NULL;
        if (!o && errno)
                return view_failed(q, ret, "the checker's findings");
        if (!o && !(o = json_object_new_object()))
                return -ENOMEM;
        json_object_object_add(o, "enabled", json_object_new_boolean(json_object_object_get_ex(o, "findings", NULL)));
        return lmp_reply_json(ret, 200, o);
}

/* The one route table: exact paths before the prefixes that would also match them. */
const struct lmp_route lmp_routes[] = {
        /* tm-lmp (lmp-tm.c) */
        { "/lmp", false, lmp_tm_redirect },
        { "/lmp/", false, lmp_tm_root },
        { "/lmp/global", false, lmp_tm_redirect },
        { "/lmp/global/", false, lmp_tm_global },
        { "/lmp/nodes", false, lmp_tm_redirect },
        { "/lmp/nodes/", false, lmp_tm_nodes },
        { "/lmp/interleaveGroups", false, lmp_tm_redirect },
        { "/lmp/interleaveGroups/", false, lmp_tm_interleave_groups },
        { "/lmp/allocated/", true, lmp_tm_allocated },
        { "/lmp/active/", true, lmp_tm_active },
        { "/lmp/shelf", false, lmp_tm_redirect },
        { "/lmp/shelf/", false, lmp_tm_directory },
        { "/lmp/shelf/", true, lmp_tm_shelf },
        { "/lmp/books", false, lmp_tm_redirect },
        { "/lmp/books/", false, lmp_tm_books },
        { "/lmp/books/", true, lmp_tm_books },
        /* FAM/E's own */
        { "/api/v1/summary", false, api_summary },
        { "/api/v1/nodes", false, api_nodes },
        { "/api/v1/shelves", false, api_shelves },
        { "/api/v1/shelves/", true, api_shelf },
        { "/api/v1/fam", false, api_fam },
        { "/api/v1/fam/map", false, api_fam_map },
        { "/api/v1/check", false, api_check },
};
const size_t lmp_n_routes = sizeof lmp_routes / sizeof lmp_routes[0];
