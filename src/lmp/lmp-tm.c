/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tm-lmp's API under /lmp/ (docs/lmp.md), for the clients of HPE's original: the same paths,
 * field names and statuses.  JSON goes to a client whose Accept header names application/json
 * (with version=1.0; another or none is 418, as the original answers), a page of key -> value
 * lists to any other.  The data is engine-lmp.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmp-internal.h"
#include "macro.h"
#include "util.h"

#define TM_VERSION "1.0"
#define TM_JSON "application/json;charset=utf-8;version=" TM_VERSION
#define TM_HTML "text/html;charset=utf-8;version=" TM_VERSION

static bool wants_json(const struct lmp_request *q) {
        return strstr(q->accept, "application/json") != NULL;
}

static int tm_error(const struct lmp_request *q, struct lmp_reply *ret, unsigned status, const char *msg) {
        (void) q;
        struct json_object *o = json_object_new_object();
        if (o)
                json_object_object_add(o, "error", json_object_new_string(msg));
        int r = lmp_reply_json(ret, status, o);
        ret->content_type = TM_JSON;    /* the original's errors are JSON whatever was asked */
        return r;
}

/* The version a JSON client asks for: 0 when it says none the original could read. */
static int check_version(const struct lmp_request *q, struct lmp_reply *ret) {
        _cleanup_free_ char *a = strdup(q->accept);
        if (!a)
                return -ENOMEM;
        const char *v = NULL;
        for (char *save = NULL, *part = strtok_r(a, ";", &save); part; part = strtok_r(NULL, ";", &save))
                if (strstr(part, "version")) {
                        v = part;
                        break;
                }
        const char *eq = v ? strrchr(v, '=') : NULL;
        char *end = NULL;
        double d = eq ? strtod(eq + 1, &end) : 0;
        while (end && *end == ' ')
                end++;
        if (!eq || end == eq + 1 || (end && *end))
                return tm_error(q, ret, 418, "No version sent"), 1;
        if (d != 1.0) {
                _cleanup_free_ char *m = strf("Bad version: %s != " TM_VERSION, eq + 1);
                return m ? (tm_error(q, ret, 418, m), 1) : -ENOMEM;
        }
        return 0;
}

/* ---- the page for a client that did not ask for JSON --------------------------------------- */

static void html_escape(FILE *f, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '&': fputs("&amp;", f); break;
                case '"': fputs("&quot;", f); break;
                case '\'': fputs("&#39;", f); break;
                default: fputc(*s, f);
                }
}

static void html_value(FILE *f, struct json_object *v);

static void html_object(FILE *f, struct json_object *o) {
        fputs("<ul>\n", f);
        json_object_object_foreach(o, k, v) {
                fputs("<li>", f);
                html_escape(f, k);
                if (json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array)) {
                        fputs(":", f);
                        html_value(f, v);
                } else {
                        fputs(" -&gt; ", f);
                        html_value(f, v);
                }
                fputs("</li>\n", f);
        }
        fputs("</ul>\n", f);
}

static void html_value(FILE *f, struct json_object *v) {
        if (json_object_is_type(v, json_type_object))
                html_object(f, v);
        else if (json_object_is_type(v, json_type_array)) {
                fputs("<ol>\n", f);
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        fputs("<li>", f);
                        html_value(f, json_object_array_get_idx(v, i));
                        fputs("</li>\n", f);
                }
                fputs("</ol>\n", f);
        } else
                html_escape(f, v ? json_object_get_string(v) : "null");
}

static int reply_html(struct lmp_reply *ret, const char *title, struct json_object *o) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) {
                json_object_put(o);
                return -ENOMEM;
        }
        fputs("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>", f);
        html_escape(f, title);
        fputs("</title></head>\n<body><h3>", f);
        html_escape(f, title);
        fputs(" (version " TM_VERSION ")</h3>\n", f);
        if (o)
                html_object(f, o);
        else
                fputs("<ul>\n<li><a href=\"global/\">global/</a></li>\n<li><a href=\"nodes/\">nodes/</a></li>\n"
                      "<li><a href=\"interleaveGroups/\">interleaveGroups/</a></li>\n<li><a href=\"shelf/\">shelf/</a></li>\n"
                      "<li><a href=\"books/\">books/</a></li>\n<li>allocated/{coordinate}</li>\n<li>active/{coordinate}</li>\n"
                      "</ul>\n<p>FAM/E's own API and the page: <a href=\"/\">/</a></p>\n", f);
        fputs("</body></html>\n", f);
        json_object_put(o);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = (struct lmp_reply) { .status = 200, .content_type = TM_HTML, .body = buf, .len = len };
        return 0;
}

/* A view's answer in the form the client asked for; NULL o: errno says why (ENOENT → 404 msg). */
static int answer(const struct lmp_request *q, struct lmp_reply *ret, const char *title, struct json_object *o,
                  const char *not_found) {
        if (!o) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                if (errno == ENOENT && not_found)
                        return tm_error(q, ret, 404, not_found);
                return tm_error(q, ret, 400, strerror(errno ? errno : EIO));
        }
        if (!wants_json(q))
                return reply_html(ret, title, o);
        int r = lmp_reply_json(ret, 200, o);
        ret->content_type = TM_JSON;
        return r;
}

/* Every /lmp/ route starts here: the version of a JSON client is checked first, as the
 * original does for every URL. */
static int tm_begin(const struct lmp_request *q, struct lmp_reply *ret) {
        return wants_json(q) ? check_version(q, ret) : 0;
}

#define BEGIN(q, ret)                                   \
        do {                                            \
                int k_ = tm_begin((q), (ret));          \
                if (k_ != 0)                            \
                        return k_ < 0 ? k_ : 0;         \
        } while (0)

int lmp_tm_redirect(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        /* a view's path without its slash: 308 to the one with it, as Flask's routes */
        _cleanup_free_ char *to = strf("%s/", q->path);
        if (!to)
                return -ENOMEM;
        int r = tm_error(q, ret, 308, "Permanent Redirect");
        ret->location = TAKE_PTR(to);
        return r;
}

int lmp_tm_root(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        if (wants_json(q))
                return tm_error(q, ret, 404, "Root view not implemented");
        return reply_html(ret, "LMP - Available Views", NULL);
}

int lmp_tm_global(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        return answer(q, ret, "LMP - Global Memory Information", q->src->views->tm_global(q->src->engine), NULL);
}

int lmp_tm_nodes(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        return answer(q, ret, "LMP - List Nodes", q->src->views->tm_nodes(q->src->engine), NULL);
}

int lmp_tm_interleave_groups(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        return answer(q, ret, "LMP - List Interleave Groups", q->src->views->tm_interleave_groups(q->src->engine), NULL);
}

int lmp_tm_allocated(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        return answer(q, ret, "LMP - List Allocated", q->src->views->tm_allocated(q->src->engine, q->rest), NULL);
}

int lmp_tm_active(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        /* the coordinate's type is its second-to-last element: a datacenter is the whole
         * machine, a SOC that one SOC (exactly); nothing else is answered */
        const char *last = strrchr(q->rest, '/');
        const char *type = NULL;
        size_t type_len = 0;
        if (last) {
                const char *p = last;
                while (p > q->rest && p[-1] != '/')
                        p--;
                type = p;
                type_len = (size_t) (last - p);
        }
        if (type && type_len == 10 && strncmp(type, "Datacenter", 10) == 0)
                return answer(q, ret, "LMP - List Active Memory", q->src->views->tm_active(q->src->engine, NULL), NULL);
        if (type && type_len == 3 && strncmp(type, "Soc", 3) == 0)
                return answer(q, ret, "LMP - List Active Memory", q->src->views->tm_active(q->src->engine, q->rest), NULL);
        return tm_error(q, ret, 404, "Bad coordinate");
}

int lmp_tm_directory(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        return answer(q, ret, "LMP - List Directory", q->src->views->tm_directory(q->src->engine), NULL);
}

int lmp_tm_shelf(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        if (strchr(q->rest, '/'))
                return tm_error(q, ret, 404, "Shelf does not exist");
        errno = 0;
        return answer(q, ret, "LMP - List Directory", q->src->views->tm_shelf(q->src->engine, q->rest), "Shelf does not exist");
}

int lmp_tm_books(const struct lmp_request *q, struct lmp_reply *ret) {
        BEGIN(q, ret);
        int64_t ig = -1;
        if (*q->rest && strcmp(q->rest, "all") != 0) {
                char *end = NULL;
                errno = 0;
                long v = strtol(q->rest, &end, 10);
                if (errno || !end || *end || end == q->rest || v < 0) {
                        _cleanup_free_ char *m = strf("invalid interleave group '%s': give a number or all", q->rest);
                        return m ? tm_error(q, ret, 400, m) : -ENOMEM;
                }
                ig = v;
        }
        errno = 0;
        return answer(q, ret, "LMP - List of Books", q->src->views->tm_books(q->src->engine, ig), "interleaveGroup does not exist");
}
