/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

void proto_stream_init(struct proto_stream *s) {
        *s = (struct proto_stream) { 0 };
}

void proto_stream_set_max(struct proto_stream *s, size_t max) {
        s->max = max;
}

static size_t stream_max(const struct proto_stream *s) {
        return s->max ? s->max : PROTO_MAX_BUFFER;
}

void proto_stream_done(struct proto_stream *s) {
        free(s->buf);
        if (s->tok)
                json_tokener_free(s->tok);
        *s = (struct proto_stream) { 0 };
}

/* Forgets the request being parsed piece by piece: the next proto_next() starts at off. */
static void reset_scan(struct proto_stream *s) {
        if (s->tok)
                json_tokener_reset(s->tok);
        s->scanned = s->off;
}

int proto_feed(struct proto_stream *s, const void *data, size_t len) {
        size_t held = s->len - s->off, max = stream_max(s);
        if (len > max || held > max - len) {
                s->dropped += held + len;
                s->len = s->off = 0;
                reset_scan(s);
                return -EMSGSIZE;
        }
        if (s->len + len + 1 > s->allocated && s->off > 0) {
                /* compact only when the buffer would have to grow: linear over the stream */
                memmove(s->buf, s->buf + s->off, held);
                s->scanned -= s->off;
                s->len = held;
                s->off = 0;
        }
        if (s->len + len + 1 > s->allocated) {
                size_t n = s->allocated ? s->allocated : 8192;
                while (n < s->len + len + 1)
                        n *= 2;
                char *b = realloc(s->buf, n);
                if (!b)
                        return -ENOMEM;
                s->buf = b;
                s->allocated = n;
        }
        memcpy(s->buf + s->len, data, len);
        s->len += len;
        s->buf[s->len] = 0;
        return 0;
}

static void consume(struct proto_stream *s, size_t n) {
        s->off += n;
        if (s->off == s->len) {
                s->off = s->len = 0;
                if (s->allocated > PROTO_KEEP_BUFFER) {
                        free(s->buf);
                        s->buf = NULL;
                        s->allocated = 0;
                }
        }
        if (s->buf)
                s->buf[s->len] = 0;
        reset_scan(s);
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Where "}{" is in the unconsumed buffer (the index of its '}' from off), or -1; it may hold NULs. */
static long find_boundary(const struct proto_stream *s) {
        for (size_t i = s->off; i + 1 < s->len; i++)
                if (s->buf[i] == '}' && s->buf[i + 1] == '{')
                        return (long) (i - s->off);
        return -1;
}

/* How many bytes at the end of buf[from, to) are an incomplete UTF-8 sequence: json-c checks
 * UTF-8 one call at a time, so a character split between two pieces waits for its rest. */
static size_t utf8_tail(const char *buf, size_t from, size_t to) {
        for (size_t k = 1; k <= 3 && to - from >= k; k++) {
                unsigned char c = (unsigned char) buf[to - k];
                if ((c & 0xc0) == 0x80)
                        continue;               /* a continuation byte: look further back */
                unsigned need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
                return need > k ? k : 0;
        }
        return 0;
}

struct json_object *proto_next(struct proto_stream *s) {
        for (;;) {
                size_t ws = 0;
                while (s->off + ws < s->len && is_space(s->buf[s->off + ws]))
                        ws++;
                if (ws)
                        consume(s, ws);
                if (s->len == s->off)
                        return NULL;

                /* Each byte is given to the tokener once: a request arriving in many pieces
                 * costs what it costs in one (the tokener keeps its state across pieces). */
                if (!s->tok) {
                        s->tok = json_tokener_new();
                        if (!s->tok)
                                return NULL;
                        json_tokener_set_flags(s->tok, JSON_TOKENER_VALIDATE_UTF8);
                        s->scanned = s->off;
                }
                if (s->scanned < s->off)
                        reset_scan(s);
                size_t upto = s->len - utf8_tail(s->buf, s->scanned, s->len);
                struct json_object *o = NULL;
                enum json_tokener_error e = json_tokener_continue;
                size_t end = 0;         /* from off */
                if (upto > s->scanned) {
                        size_t from = s->scanned;
                        o = json_tokener_parse_ex(s->tok, s->buf + from, (int) (upto - from));
                        e = json_tokener_get_error(s->tok);
                        end = from - s->off + json_tokener_get_parse_end(s->tok);
                        s->scanned = upto;
                }

                if (o || e == json_tokener_success) {
                        consume(s, end > s->len - s->off ? s->len - s->off : end);
                        if (o && json_object_is_type(o, json_type_object))
                                return o;
                        s->dropped++;           /* a value that is not an object */
                        json_object_put(o);
                        continue;
                }
                if (e == json_tokener_continue && s->buf[s->off] == '{')
                        return NULL;            /* a request still arriving */
                /* A parse error, or an incomplete value that cannot be a request. */
                reset_scan(s);
                long b = find_boundary(s);
                if (b >= 0) {
                        s->dropped++;
                        consume(s, (size_t) b + 1);
                        continue;
                }
                if (e == json_tokener_continue && s->buf[s->off] != '{') {
                        /* e.g. a bare number at the end of the buffer: wait as Python would not,
                         * but only while it can still become something else (parsed again
                         * from its start when more arrives) */
                        if (strspn(s->buf + s->off, "-+.0123456789eE") == s->len - s->off)
                                return NULL;
                }
                s->dropped++;
                s->len = s->off = 0;
                s->buf[0] = 0;
                reset_scan(s);
                return NULL;
        }
}

/* ---- encoding as Python's json.dumps ------------------------------------------------------- */

/* The text being written: a buffer that grows (stdio's memstream locks and checks per byte,
 * which showed in the Librarian's profile). */
struct out {
        char *p;
        size_t len, cap;
        bool oom;
};

static bool out_room(struct out *o, size_t n) {
        if (o->oom)
                return false;
        if (o->len + n + 1 <= o->cap)
                return true;
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
                cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
                o->oom = true;
                return false;
        }
        o->p = p;
        o->cap = cap;
        return true;
}

static void out_write(struct out *o, const char *s, size_t n) {
        if (out_room(o, n)) {
                memcpy(o->p + o->len, s, n);
                o->len += n;
                o->p[o->len] = 0;
        }
}

static void out_puts(struct out *o, const char *s) {
        out_write(o, s, strlen(s));
}

static void out_putc(struct out *o, char c) {
        out_write(o, &c, 1);
}

static void put_u16(struct out *f, unsigned v) {
        char buf[8];
        snprintf(buf, sizeof buf, "\\u%04x", v);
        out_write(f, buf, 6);
}

/* A string by length: UTF-8 in, ASCII out.  Invalid UTF-8 (which json-c's strict parser does
 * not produce, but values built in C might) is written byte by byte as U+00XX. */
static void dump_string(struct out *f, const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s, *end = p + len;
        out_putc(f, '"');
        while (p < end) {
                unsigned c = *p;
                const unsigned char *run = p;
                while (run < end && *run >= 0x20 && *run < 0x7f && *run != '"' && *run != '\\')
                        run++;
                if (run > p) {          /* printable ASCII, as it is */
                        out_write(f, (const char *) p, (size_t) (run - p));
                        p = run;
                        continue;
                }
                if (c < 0x80) {
                        switch (c) {
                        case '"': out_puts(f, "\\\""); break;
                        case '\\': out_puts(f, "\\\\"); break;
                        case '\n': out_puts(f, "\\n"); break;
                        case '\r': out_puts(f, "\\r"); break;
                        case '\t': out_puts(f, "\\t"); break;
                        case '\b': out_puts(f, "\\b"); break;
                        case '\f': out_puts(f, "\\f"); break;
                        default:
                                if (c < 0x20 || c == 0x7f)
                                        put_u16(f, c);
                                else
                                        out_putc(f, (char) c);
                        }
                        p++;
                        continue;
                }
                unsigned need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
                uint32_t cp = need == 3 ? c & 0x07 : need == 2 ? c & 0x0f : c & 0x1f;
                bool ok = need > 0 && (size_t) (end - p) > need;
                for (unsigned i = 1; ok && i <= need; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                ok = false;
                        else
                                cp = (cp << 6) | (p[i] & 0x3f);
                }
                if (!ok || cp > 0x10ffff) {
                        put_u16(f, c);
                        p++;
                        continue;
                }
                if (cp >= 0x10000) {
                        cp -= 0x10000;
                        put_u16(f, 0xd800 + (cp >> 10));
                        put_u16(f, 0xdc00 + (cp & 0x3ff));
                } else
                        put_u16(f, cp);
                p += need + 1;
        }
        out_putc(f, '"');
}

/* Python's float repr: the shortest text that reads back as the same double; "1.0", not "1". */
static void dump_double(struct out *f, double d) {
        char buf[64];
        if (isnan(d)) {
                out_puts(f, "NaN");
                return;
        }
        if (isinf(d)) {
                out_puts(f, d > 0 ? "Infinity" : "-Infinity");
                return;
        }
        for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, sizeof buf, "%.*g", prec, d);
                if (strtod(buf, NULL) == d)
                        break;
        }
        /* Python switches to exponent notation from 1e16 up and below 1e-4, as %g does from
         * its precision: use a plain form where Python would */
        if (strchr(buf, 'e') && fabs(d) < 1e16 && fabs(d) >= 1e-4) {
                snprintf(buf, sizeof buf, "%.17f", d);
                char *dot = strchr(buf, '.');
                for (int prec = 0; dot && prec <= 17; prec++) {
                        char t[64];
                        snprintf(t, sizeof t, "%.*f", prec, d);
                        if (strtod(t, NULL) == d) {
                                snprintf(buf, sizeof buf, "%s", t);
                                break;
                        }
                }
        }
        out_puts(f, buf);
        if (!strpbrk(buf, ".e"))
                out_puts(f, ".0");
}

static int dump(struct out *f, struct json_object *o, int depth) {
        if (depth > 64)
                return -EINVAL;
        switch (json_object_get_type(o)) {
        case json_type_null:
                out_puts(f, "null");
                return 0;
        case json_type_boolean:
                out_puts(f, json_object_get_boolean(o) ? "true" : "false");
                return 0;
        case json_type_int: {
                int64_t v = json_object_get_int64(o);
                char buf[32];
                if (v == INT64_MAX)
                        snprintf(buf, sizeof buf, "%" PRIu64, json_object_get_uint64(o));
                else
                        snprintf(buf, sizeof buf, "%" PRId64, v);
                out_puts(f, buf);
                return 0;
        }
        case json_type_double:
                dump_double(f, json_object_get_double(o));
                return 0;
        case json_type_string:
                dump_string(f, json_object_get_string(o), (size_t) json_object_get_string_len(o));
                return 0;
        case json_type_array: {
                size_t n = json_object_array_length(o);
                out_putc(f, '[');
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                out_puts(f, ", ");
                        int r = dump(f, json_object_array_get_idx(o, i), depth + 1);
                        if (r < 0)
                                return r;
                }
                out_putc(f, ']');
                return 0;
        }
        case json_type_object: {
                bool first = true;
                out_putc(f, '{');
                json_object_object_foreach(o, k, v) {
                        if (!first)
                                out_puts(f, ", ");
                        first = false;
                        dump_string(f, k, strlen(k));
                        out_puts(f, ": ");
                        int r = dump(f, v, depth + 1);
                        if (r < 0)
                                return r;
                }
                out_putc(f, '}');
                return 0;
        }
        }
        return -EINVAL;
}

int proto_dumps(struct json_object *v, char **ret, size_t *ret_len) {
        struct out o = {};
        int r = dump(&o, v, 0);
        if (r >= 0 && (o.oom || !out_room(&o, 0)))
                r = -ENOMEM;
        if (r < 0) {
                free(o.p);
                return r;
        }
        *ret = o.p;
        if (ret_len)
                *ret_len = o.len;
        return 0;
}

int proto_reply(struct json_object *value, struct json_object *context, char **ret, size_t *ret_len) {
        struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "value", json_object_get(value));
        json_object_object_add(o, "context", context ? json_object_get(context) : json_object_new_object());
        int r = proto_dumps(o, ret, ret_len);
        json_object_put(o);
        return r;
}

int proto_error(const char *msg, int err, char **ret, size_t *ret_len) {
        struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "errmsg", json_object_new_string(msg));
        json_object_object_add(o, "errno", json_object_new_int(err));
        int r = proto_dumps(o, ret, ret_len);
        json_object_put(o);
        return r;
}
