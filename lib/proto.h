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

/* What a receive buffer may hold without a complete object; a peer that sends more is broken
 * or hostile.  A server reading requests keeps the default, PROTO_MAX_BUFFER (a request is
 * small); a client reading the replies it asked for raises it to PROTO_MAX_REPLY with
 * proto_stream_set_max(): a directory of 24,000 shelves is a reply of about 5 MiB, a shelf's
 * list of books about 90 bytes a book. */
#define PROTO_MAX_BUFFER (4u << 20)
#define PROTO_MAX_REPLY ((size_t) 1 << 30)
/* A buffer larger than this is given back once everything in it is consumed (after a large
 * reply, a connection does not hold its size for the rest of its life). */
#define PROTO_KEEP_BUFFER (256u << 10)

struct proto_stream {
        char *buf;
        size_t len, allocated;
        size_t off;                     /* buf[off, len) is unconsumed (compacted rarely) */
        size_t scanned;                 /* the tokener has seen buf[off, scanned) */
        struct json_tokener *tok;       /* a request being parsed piece by piece, or NULL */
        unsigned long dropped;          /* values and bytes thrown away by the rules above */
        size_t max;                     /* the bound above (0: PROTO_MAX_BUFFER) */
};

void proto_stream_init(struct proto_stream *s);
void proto_stream_done(struct proto_stream *s);
/* Sets the bound on unconsumed bytes (PROTO_MAX_REPLY for a client); proto_stream_init()
 * and proto_stream_done() put back the default. */
void proto_stream_set_max(struct proto_stream *s, size_t max);

/* Appends received bytes; linear: bytes are copied once (the buffer doubles as it grows and is
 * compacted only then) and proto_next() gives each byte to the tokener once, so a reply of
 * N bytes arriving in pieces costs O(N).  -EMSGSIZE when the unconsumed bytes would exceed the
 * stream's bound (it is then emptied), -ENOMEM. */
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
