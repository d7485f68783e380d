/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the management view's rooms: lmp.c (HTTP), lmp-api.c (what each route answers),
 * lmp-nodes.c (the nodes as the cluster sees them) and the generated lmp-assets.c (the page). */
#ifndef FAME_LMP_INTERNAL_H
#define FAME_LMP_INTERNAL_H

#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "lmp.h"

struct lmp_request {
        const struct lmp_source *src;
        const char *path;               /* decoded by libmicrohttpd */
        const char *rest;               /* for a prefix route: what follows the prefix */
        const char *accept;             /* the Accept header, "" if none */
};

/* The route table (lmp-api.c): an exact path, or a prefix that must be followed by something. */
struct lmp_route {
        const char *path;
        bool prefix;
        int (*fn)(const struct lmp_request *q, struct lmp_reply *ret);
};
extern const struct lmp_route lmp_routes[];
extern const size_t lmp_n_routes;

/* The page's files (generated from src/lmp/assets at build time). */
struct lmp_asset {
        const char *path;               /* "/", "/app.js", ... */
        const char *content_type;
        const unsigned char *data;
        size_t len;
};
const struct lmp_asset *lmp_asset_find(const char *path);

/* Replies: JSON (takes o's reference; NULL o is -ENOMEM) and errors {"error", "path"}. */
int lmp_reply_json(struct lmp_reply *r, unsigned status, struct json_object *o);
int lmp_reply_error(struct lmp_reply *r, unsigned status, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* tm-lmp's routes (lmp-tm.c) */
int lmp_tm_redirect(const struct lmp_request *q, struct lmp_reply *ret);
int lmp_tm_root(const struct lmp_request *q, struct lmp_reply *ret);
int lmp_tm_global(const struct lmp_request *q, struct lmp_reply *ret);
int lmp_tm_nodes(const struct lmp_request *q, struct lmp_reply *ret);
int lmp_tm_interleave_groups(const struct lmp_request *q, struct lmp_reply *ret);
int lmp_tm_allocated(const struct lmp_request *q, struct lmp_reply *ret);
int lmp_tm_active(const struct lmp_request *q, struct lmp_reply *ret);
int lmp_tm_directory(const struct lmp_request *q, struct lmp_reply *ret);
int lmp_tm_shelf(const struct lmp_request *q, struct lmp_reply *ret);
int lmp_tm_books(const struct lmp_request *q, struct lmp_reply *ret);

/* The wall clock, Unix seconds. */
double lmp_realtime(void);

/* The topology's nodes with what the FAM's slots and the cluster's state say of each
 * (lmp-nodes.c): {"nodes": [...]} as /api/v1/nodes answers. */
struct json_object *lmp_nodes(const struct lmp_source *src);

#endif
