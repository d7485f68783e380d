/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The management view's HTTP side (lmp.h): libmicrohttpd in "external epoll" mode driven by its
 * owner's poll loop, the one route table, and the replies' headers.  What each route answers is
 * in lmp-api.c (JSON) and lmp-assets (the page, embedded at build time).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lmp-internal.h"
#include "log.h"
#include "macro.h"
#include "util.h"

struct lmp {
        struct MHD_Daemon *d;
        struct lmp_source src;
        uint16_t port;
        char host_ip[64], host_name[64];        /* the Host headers a browser on loopback sends */
};

double lmp_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- replies -------------------------------------------------------------------------------- */

void lmp_reply_done(struct lmp_reply *r) {
        free(r->body);
        free(r->location);
        r->body = r->location = NULL;
}

int lmp_reply_json(struct lmp_reply *r, unsigned status, struct json_object *o) {
        if (!o)
                return -ENOMEM;
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        r->status = status;
        r->content_type = "application/json; charset=utf-8";
        r->body = s ? strf("%s\n", s) : NULL;
        r->len = r->body ? strlen(r->body) : 0;
        json_object_put(o);
        return r->body ? 0 : -ENOMEM;
}

int lmp_reply_error(struct lmp_reply *r, unsigned status, const char *path, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = vstrf(fmt, ap);
        va_end(ap);
        struct json_object *o = json_object_new_object();
        if (!o || !msg) {
                json_object_put(o);
                return -ENOMEM;
        }
        json_object_object_add(o, "error", json_object_new_string(msg));
        json_object_object_add(o, "path", json_object_new_string(path));
        return lmp_reply_json(r, status, o);
}

/* ---- the routes ------------------------------------------------------------------------------ */

static const struct lmp_route *find_route(const char *path, const char **ret_rest) {
        for (size_t i = 0; i < lmp_n_routes; i++) {
                const struct lmp_route *rt = &lmp_routes[i];
                size_t n = strlen(rt->path);
                if (rt->prefix ? strncmp(path, rt->path, n) == 0 && path[n] : strcmp(path, rt->path) == 0) {
                        *ret_rest = path + n;
                        return rt;
                }
        }
        return NULL;
}

int lmp_handle(struct lmp *l, const char *method, const char *path, const char *accept, struct lmp_reply *ret) {
        *ret = (struct lmp_reply) { 0 };
        const char *rest = NULL;
        const struct lmp_asset *a = lmp_asset_find(path);
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return lmp_reply_error(ret, 405, path, "%s is not allowed: the management API only answers GET and HEAD", method);
        if (a) {
                ret->status = 200;
                ret->content_type = a->content_type;
                ret->body = malloc(a->len ? a->len : 1);
                if (!ret->body)
                        return -ENOMEM;
                memcpy(ret->body, a->data, a->len);
                ret->len = a->len;
                return 0;
        }
        const struct lmp_route *rt = find_route(path, &rest);
        if (!rt)
                return lmp_reply_error(ret, 404, path, "No such page: %s; the API is under /api/v1/ and /lmp/ (docs/lmp.md)", path);
        struct lmp_request q = { .src = &l->src, .path = path, .rest = rest, .accept = accept ? accept : "" };
        return rt->fn(&q, ret);
}

/* ---- libmicrohttpd --------------------------------------------------------------------------- */

static bool host_allowed(const struct lmp *l, struct MHD_Connection *c) {
        /* A page elsewhere must not reach this server through a name that resolves to
         * 127.0.0.1 (DNS rebinding): only the Host headers of loopback itself are answered. */
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        return !h || strcmp(h, l->host_ip) == 0 || strcmp(h, l->host_name) == 0 || l->host_ip[0] == '*';
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
        struct lmp *l = cls;
        (void) version;
        (void) upload_data;
        if (!*con_cls) {                /* the headers: answer once the whole request is in */
                *con_cls = l;
                return MHD_YES;
        }
        if (*upload_size) {             /* a body: nothing here takes one; read it to the end */
                *upload_size = 0;
                return MHD_YES;
        }
        struct lmp_reply r = { 0 };
        int k;
        if (!host_allowed(l, c))
                k = lmp_reply_error(&r, 403, url, "Host '%s' is not this server's (use http://%s/)",
                                    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST), l->host_ip);
        else
                k = lmp_handle(l, method, url, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT), &r);
        if (k < 0) {
                lmp_reply_done(&r);
                k = lmp_reply_error(&r, 500, url, "The management API failed: %s", strerror(-k));
                if (k < 0)
                        return MHD_NO;
        }
        struct MHD_Response *resp = MHD_create_response_from_buffer(r.len, r.body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                lmp_reply_done(&r);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type);
        MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (r.status == 405)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        if (r.location)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r.location);
        free(r.location);
        enum MHD_Result q = MHD_queue_response(c, r.status, resp);
        MHD_destroy_response(resp);
        return q;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
        (void) cls;
        _cleanup_free_ char *m = vstrf(fmt, ap);
        if (m) {
                size_t n = strlen(m);
                while (n && m[n - 1] == '\n')
                        m[--n] = 0;
                log_debug("lmp: %s", m);
        }
}

int lmp_new(const struct lmp_options *o, const struct lmp_source *src, struct lmp **ret, char **ret_error) {
        const char *bind = o->bind && *o->bind ? o->bind : "127.0.0.1";
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(o->port) };
        if (inet_pton(AF_INET, bind, &sa.sin_addr) != 1) {
                *ret_error = strf("Bad address '%s' for the management view: give an IPv4 address such as 127.0.0.1", bind);
                return -EINVAL;
        }
        struct lmp *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->src = *src;
        l->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, o->port, NULL, NULL, answer, l,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64,
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) 32,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 64 * 1024,
                                MHD_OPTION_END);
        if (!l->d) {
                int r = errno ? -errno : -EADDRINUSE;
                *ret_error = strf("Cannot serve the management view on %s:%u: %s", bind, o->port,
                                  errno ? strerror(errno) : "libmicrohttpd refused");
                free(l);
                return r;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_BIND_PORT);
        l->port = info ? info->port : o->port;
        snprintf(l->host_ip, sizeof l->host_ip, "%s:%u", bind, l->port);
        snprintf(l->host_name, sizeof l->host_name, "localhost:%u", l->port);
        if (strcmp(bind, "0.0.0.0") == 0)
                l->host_ip[0] = '*';    /* asked for every address: any Host */
        *ret = l;
        return 0;
}

uint16_t lmp_port(const struct lmp *l) {
        return l->port;
}

int lmp_poll_fd(const struct lmp *l) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
        return info ? info->epoll_fd : -1;
}

int lmp_timeout_ms(const struct lmp *l) {
        MHD_UNSIGNED_LONG_LONG t;
        if (MHD_get_timeout(l->d, &t) != MHD_YES)
                return -1;
        return t > 60000 ? 60000 : (int) t;
}

void lmp_run(struct lmp *l) {
        (void) MHD_run(l->d);
}

void lmp_free(struct lmp *l) {
        if (!l)
                return;
        if (l->d)
                MHD_stop_daemon(l->d);
        free(l);
}
