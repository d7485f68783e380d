/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tm-librarian wire protocol's framing and encoding (docs/librarian-protocol.md), shared
 * by the Librarian server and its clients:
 *
 * - the stream is JSON objects one after another, without framing: `{...}{...}`; a receiver
 *   takes one value at a time from the start of its buffer, drops values that are not objects,
 *   and on a parse error drops through the next "}{", waits when the buffer starts with "{",
 *   or discards it.  Unlike the Python original, white space between objects is skipped (the
 *   original would discard a request that follows a newline).
 * - replies are encoded exactly as Python's json.dumps() does by default: ", " and ": "
 *   separators, ASCII only (everything else as \uXXXX, surrogate pairs above U+FFFF), strings
 *   handled by length (they may hold \u0000), floats as Python's repr().
 */
#ifndef FAME_LIBRARIAN_PROTO_H
#define FAME_LIBRARIAN_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

static inline void json_object_putp(struct json_object **o) {
        json_object_put(*o);
}

/* A receive buffer that is never allowed to grow beyond this: a peer that sends more without
 * completing an object is broken or hostile. */
#define PROTO_MAX_BUFFER (4u << 20)

struct proto_stream {
        char *buf;
        size_t len, allocated;
        size_t off;                     /* buf[off, len) is unconsumed (compacted rarely) */
        size_t scanned;                 /* the tokener has seen buf[off, scanned) */
        struct json_tokener *tok;       /* a request being parsed piece by piece, or NULL */
        unsigned long dropped;          /* values and bytes thrown away by the rules above */
};

void proto_stream_init(struct proto_stream *s);
void proto_stream_done(struct proto_stream *s);

/* Appends received bytes.  -EMSGSIZE when the buffer would exceed PROTO_MAX_BUFFER (it is
 * then emptied), -ENOMEM. */
int proto_feed(struct proto_stream *s, const void *data, size_t len);

/* The next complete JSON object (caller puts it), or NULL when more data is needed. */
struct json_object *proto_next(struct proto_stream *s);

/* Encodes v as Python's json.dumps() would; the caller frees *ret. 0 or -ENOMEM / -EINVAL
 * (a value json.dumps cannot encode). */
int proto_dumps(struct json_object *v, char **ret, size_t *ret_len);

/* {"value": value, "context": context} (value may be NULL for null) and
 * {"errmsg": msg, "errno": err}, encoded as above. */
int proto_reply(struct json_object *value, struct json_object *context, char **ret, size_t *ret_len);
int proto_error(const char *msg, int err, char **ret, size_t *ret_len);

#endif
