/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QMP and guest agent clients.  The socket is non-blocking; every read, write and connect waits
 * with poll() until a deadline computed once per call.  The byte stream is fed to one
 * json_tokener incrementally, so objects may be split across reads or share one; whitespace and
 * 0xff bytes between objects are skipped.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "qmp.h"

#define READ_BUF_SIZE (64 * 1024)
/* guest-exec-status carries up to 16 MiB of output per stream (base64: 4/3 of it). */
#define MAX_OBJECT_SIZE (64 * 1024 * 1024)

struct qmp {
        int fd;
        bool qga;
        qmp_call_fn call;       /* a transport that is not a socket (libvirt), or NULL */
        void *call_data;
        void (*call_free)(void *data);
        char *path;
        json_tokener *tok;
        bool in_object;         /* the tokener holds the beginning of an object */
        size_t object_size;
        uint64_t next_id;
        unsigned n_events;      /* events received since qmp_forget_events(), also > KEPT */
        char *events[QMP_EVENTS_KEPT];
        size_t pos, len;        /* unconsumed bytes: buf[pos..len) */
        unsigned char buf[READ_BUF_SIZE];
};

static const char *kind(const struct qmp *q) {
        return q->qga ? "guest agent" : "QMP";
}

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define TRAFFIC_LOG_MAX 1024

/* FAME_DEBUG: one line per message, long ones (file data, output) cut. */
static void log_traffic(const struct qmp *q, const char *dir, json_object *o) {
        if (!getenv("FAME_DEBUG"))
                return;
        const char *t = json_object_to_json_string_ext(o, JSON_FLAGS);
        size_t n = t ? strlen(t) : 0;
        log_debug("%s %s %s %.*s%s", q->qga ? "guest agent" : "QMP", q->path, dir,
                  (int) (n > TRAFFIC_LOG_MAX ? TRAFFIC_LOG_MAX : n), t ? t : "",
                  n > TRAFFIC_LOG_MAX ? "..." : "");
}

static void json_object_putp(json_object **o) {
        json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/* ---- time ---- */

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_after(int timeout_ms) {
        return now_ms() + timeout_ms;
}

static int remaining_ms(int64_t deadline) {
        int64_t left = deadline - now_ms();
        return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int) left;
}

static void sleep_ms(int ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Waits until fd is ready for events or the deadline passes (then -ETIMEDOUT).  Errors and
 * hang-ups count as ready: the following read/write reports them. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int r = poll(&p, 1, remaining_ms(deadline));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;
                if (p.revents & POLLNVAL)
                        return -EBADF;
                return 0;
        }
}

/* ---- socket ---- */

static int unix_connect(const char *path, int64_t deadline, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0 || errno == EISCONN)
                        break;
                if (errno == EINTR)
                        continue;       /* connect again: EISCONN, EALREADY or the outcome */
                if (errno == EAGAIN) {  /* the listen backlog is full: try again shortly */
                        int left = remaining_ms(deadline);
                        if (left == 0)
                                return -ETIMEDOUT;
                        sleep_ms(left < 10 ? left : 10);
                        continue;
                }
                if (errno != EINPROGRESS && errno != EALREADY)
                        return -errno;

                int r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                int err = 0;
                socklen_t len = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
                break;
        }

        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int write_all(struct qmp *q, const void *data, size_t len, int64_t deadline) {
        const char *p = data;

        while (len > 0) {
                ssize_t n = send(q->fd, p, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                return errno == EPIPE ? -ECONNRESET : -errno;
                        int r = wait_fd(q->fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Reads more bytes into the (empty) buffer. -ECONNRESET at end of stream. */
static int fill(struct qmp *q, int64_t deadline) {
        q->pos = q->len = 0;
        for (;;) {
                ssize_t n = read(q->fd, q->buf, sizeof q->buf);
                if (n > 0) {
                        q->len = (size_t) n;
                        return 0;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                int r = wait_fd(q->fd, POLLIN, deadline);
                if (r < 0)
                        return r;
        }
}

/* ---- framing ---- */

static void reset_parser(struct qmp *q) {
        json_tokener_reset(q->tok);
        q->in_object = false;
        q->object_size = 0;
}

/* The next JSON object of the stream.  -EBADMSG: not JSON, or not an object (the offending
 * bytes are consumed, the parser is reset). */
static int read_object(struct qmp *q, int64_t deadline, json_object **ret) {
        for (;;) {
                while (q->pos < q->len) {
                        if (!q->in_object) {
                                unsigned char c = q->buf[q->pos];
                                if (c == 0xff || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                                        q->pos++;
                                        continue;
                                }
                                if (c != '{') {
                                        q->pos++;
                                        log_debug("%s %s: unexpected byte 0x%02x between objects",
                                                  kind(q), q->path, c);
                                        return -EBADMSG;
                                }
                        }

                        size_t avail = q->len - q->pos;
                        json_object *o = json_tokener_parse_ex(q->tok, (const char *) q->buf + q->pos,
                                                               (int) avail);
                        enum json_tokener_error e = json_tokener_get_error(q->tok);
                        if (o) {
                                size_t used = json_tokener_get_parse_end(q->tok);
                                q->pos += used <= avail ? used : avail;
                                reset_parser(q);
                                if (!json_object_is_type(o, json_type_object)) {
                                        json_object_put(o);
                                        return -EBADMSG;
                                }
                                *ret = o;
                                return 0;
                        }
                        if (e == json_tokener_continue) {
                                q->pos = q->len;
                                q->in_object = true;
                                q->object_size += avail;
                                if (q->object_size > MAX_OBJECT_SIZE) {
                                        reset_parser(q);
                                        return -EMSGSIZE;
                                }
                                break;
                        }
                        log_debug("%s %s: invalid JSON: %s", kind(q), q->path, json_tokener_error_desc(e));
                        size_t used = json_tokener_get_parse_end(q->tok);
                        q->pos += used > 0 && used <= avail ? used : 1;
                        reset_parser(q);
                        return -EBADMSG;
                }

                int r = fill(q, deadline);
                if (r < 0)
                        return r;
        }
}

static void record_event(struct qmp *q, const char *name) {
        unsigned slot = q->n_events % QMP_EVENTS_KEPT;
        char *copy = strdup(name);
        if (!copy)
                return;         /* losing an event name under ENOMEM is harmless */
        free(q->events[slot]);
        q->events[slot] = copy;
        q->n_events++;
}

/* If o is an event, records it and returns true. */
static bool handle_event(struct qmp *q, json_object *o) {
        json_object *ev;
        if (!json_object_object_get_ex(o, "event", &ev))
                return false;
        if (json_object_object_get_ex(o, "return", NULL) || json_object_object_get_ex(o, "error", NULL))
                return false;
        if (json_object_is_type(ev, json_type_string))
                record_event(q, json_object_get_string(ev));
        return true;
}

static int send_object(struct qmp *q, json_object *req, const char *prefix, int64_t deadline) {
        const char *text = json_object_to_json_string_ext(req, JSON_FLAGS);
        _cleanup_free_ char *line = NULL;

        if (!text || asprintf(&line, "%s%s\n", prefix, text) < 0)
                return -ENOMEM;
        log_traffic(q, "->", req);
        return write_all(q, line, strlen(line), deadline);
}

static struct qmp *qmp_new(const char *path, int fd, bool qga) {
        struct qmp *q = calloc(1, sizeof *q);
        if (!q)
                return NULL;
        q->fd = fd;
        q->qga = qga;
        q->path = strdup(path);
        q->tok = json_tokener_new();
        if (!q->path || !q->tok) {
                q->fd = -1;
                qmp_close(q);
                return NULL;
        }
        return q;
}

void qmp_close(struct qmp *q) {
        if (!q)
                return;
        if (q->call_free)
                q->call_free(q->call_data);
        if (q->fd >= 0)
                close(q->fd);
        if (q->tok)
                json_tokener_free(q->tok);
        for (unsigned i = 0; i < QMP_EVENTS_KEPT; i++)
                free(q->events[i]);
        free(q->path);
        free(q);
}

void qmp_closep(struct qmp **q) {
        qmp_close(*q);
}

/* ---- requests ---- */

/* A reply, {"return": V} or {"error": {"desc": ...}}: 0 with V in *ret_return, or -EREMOTEIO
 * with the error's text in *ret_error. */
static int take_reply(struct qmp *q, const char *command, json_object *o, json_object **ret_return, char **ret_error) {
        json_object *v;
        if (json_object_object_get_ex(o, "error", &v)) {
                json_object *desc;
                const char *text = json_object_object_get_ex(v, "desc", &desc) ? json_object_get_string(desc) : json_object_to_json_string(v);
                log_debug("%s %s: '%s' failed: %s", kind(q), q->path, command, text);
                if (ret_error && !(*ret_error = strdup(text ? text : "")))
                        return -ENOMEM;
                return -EREMOTEIO;
        }
        if (!json_object_object_get_ex(o, "return", &v))
                return log_error_errno(-EPROTO, "%s %s: no \"return\" in reply to '%s'", kind(q), q->path, command);
        if (ret_return)
                *ret_return = json_object_get(v);
        return 0;
}

/* The reply of a call transport: {"return": ...} or {"error": ...}; its error text (already the
 * agent's "desc") comes back as the reply's error. */
static int execute_call(struct qmp *q, const char *command, json_object *req, int64_t deadline,
                        json_object **ret_return, char **ret_error) {
        const char *text = json_object_to_json_string_ext(req, JSON_FLAGS);
        _cleanup_free_ char *reply = NULL, *error = NULL;
        _cleanup_json_ json_object *o = NULL;
        int r;

        if (!text)
                return -ENOMEM;
        log_traffic(q, "->", req);
        r = q->call(q->call_data, text, remaining_ms(deadline), &reply, &error);
        if (r == -EREMOTEIO) {
                log_debug("%s %s: '%s' failed: %s", kind(q), q->path, command, error ? error : "?");
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return r;
        }
        if (r < 0)
                return r;
        o = reply ? json_tokener_parse(reply) : NULL;
        if (!o || !json_object_is_type(o, json_type_object))
                return log_error_errno(-EBADMSG, "%s %s: invalid JSON in reply to '%s'", kind(q), q->path, command);
        log_traffic(q, "<-", o);
        return take_reply(q, command, o, ret_return, ret_error);
}

static int execute_until(struct qmp *q, const char *command, json_object *args, int64_t deadline,
                         json_object **ret_return, char **ret_error) {
        _cleanup_json_ json_object *req = json_object_new_object();
        uint64_t id = ++q->next_id;
        int r;

        if (!req) {
                json_object_put(args);
                return -ENOMEM;
        }
        json_object_object_add(req, "execute", json_object_new_string(command));
        if (args)
                json_object_object_add(req, "arguments", args);
        /* libvirt numbers requests itself, and refuses ours */
        if (q->call)
                return execute_call(q, command, req, deadline, ret_return, ret_error);
        json_object_object_add(req, "id", json_object_new_int64((int64_t) id));
        r = send_object(q, req, "", deadline);
        if (r < 0)
                return r;

        for (;;) {
                _cleanup_json_ json_object *o = NULL;
                r = read_object(q, deadline, &o);
                if (r == -EBADMSG)
                        return log_error_errno(r, "%s %s: invalid JSON in reply to '%s'",
                                               kind(q), q->path, command);
                if (r < 0) {
                        log_debug("%s %s: no reply to '%s': %s", kind(q), q->path, command, strerror(-r));
                        return r;
                }
                log_traffic(q, "<-", o);

                if (handle_event(q, o))
                        continue;
                if (!json_object_object_get_ex(o, "return", NULL) && !json_object_object_get_ex(o, "error", NULL))
                        continue;       /* neither event nor reply: not ours */
                json_object *rid;
                if (json_object_object_get_ex(o, "id", &rid) &&
                    (!json_object_is_type(rid, json_type_int) || (uint64_t) json_object_get_int64(rid) != id))
                        continue;       /* a late reply to an earlier request */

                return take_reply(q, command, o, ret_return, ret_error);
        }
}

int qmp_execute(struct qmp *q, const char *command, json_object *args, int timeout_ms,
                json_object **ret_return, char **ret_error) {
        if (ret_return)
                *ret_return = NULL;
        if (ret_error)
                *ret_error = NULL;
        if (!q || !command || timeout_ms < 0) {
                json_object_put(args);
                return -EINVAL;
        }
        return execute_until(q, command, args, deadline_after(timeout_ms), ret_return, ret_error);
}

/* ---- connecting ---- */

int qmp_connect(const char *socket_path, int timeout_ms, struct qmp **ret) {
        int64_t deadline = deadline_after(timeout_ms);
        _cleanup_qmp_ struct qmp *q = NULL;
        _cleanup_json_ json_object *greeting = NULL, *caps = NULL;
        _cleanup_free_ char *error = NULL;
        int fd = -1, r;

        if (!socket_path || !ret || timeout_ms < 0)
                return -EINVAL;
        *ret = NULL;
        r = unix_connect(socket_path, deadline, &fd);
        if (r < 0)
                return r;
        q = qmp_new(socket_path, fd, false);
        if (!q) {
                close(fd);
                return -ENOMEM;
        }

        r = read_object(q, deadline, &greeting);
        if (r == -EBADMSG)
                return log_error_errno(-EPROTO, "QMP %s: the greeting is not a JSON object", socket_path);
        if (r < 0)
                return r;
        log_traffic(q, "<-", greeting);
        json_object *qmp;
        if (!json_object_object_get_ex(greeting, "QMP", &qmp) || !json_object_is_type(qmp, json_type_object))
                return log_error_errno(-EPROTO, "QMP %s: no greeting (expected {\"QMP\": ...}, got %.200s)",
                                       socket_path, json_object_to_json_string_ext(greeting, JSON_FLAGS));

        r = execute_until(q, "qmp_capabilities", NULL, deadline, &caps, &error);
        if (r == -EREMOTEIO)
                return log_error_errno(-EPROTO, "QMP %s: qmp_capabilities refused: %s", socket_path, error);
        if (r < 0)
                return r;
        if (!json_object_is_type(caps, json_type_object))
                return log_error_errno(-EPROTO, "QMP %s: unexpected reply to qmp_capabilities", socket_path);

        *ret = TAKE_PTR(q);
        return 0;
}

int qmp_new_call(const char *name, bool qga, qmp_call_fn call, void *data, void (*free_data)(void *data), struct qmp **ret) {
        struct qmp *q = qmp_new(name, -1, qga);
        if (!q) {
                if (free_data)
                        free_data(data);
                return -ENOMEM;
        }
        q->call = call;
        q->call_data = data;
        q->call_free = free_data;
        *ret = q;
        return 0;
}

static int64_t random_sync_id(void) {
        uint32_t v = 0;
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v)
                v = (uint32_t) now_ms() ^ ((uint32_t) getpid() << 16);
        v &= 0x7fffffff;        /* positive and well inside any JSON number range */
        return v ? v : 1;
}

int qga_connect(const char *socket_path, int timeout_ms, struct qmp **ret) {
        int64_t deadline = deadline_after(timeout_ms);
        _cleanup_qmp_ struct qmp *q = NULL;
        _cleanup_json_ json_object *req = NULL;
        int64_t id = random_sync_id();
        int fd = -1, r;

        if (!socket_path || !ret || timeout_ms < 0)
                return -EINVAL;
        *ret = NULL;
        r = unix_connect(socket_path, deadline, &fd);
        if (r < 0)
                return r;
        q = qmp_new(socket_path, fd, true);
        if (!q) {
                close(fd);
                return -ENOMEM;
        }

        req = json_object_new_object();
        json_object *args = json_object_new_object();
        if (!req || !args) {
                json_object_put(args);
                return -ENOMEM;
        }
        json_object_object_add(args, "id", json_object_new_int64(id));
        json_object_object_add(req, "execute", json_object_new_string("guest-sync-delimited"));
        json_object_object_add(req, "arguments", args);
        /* The leading 0xff resets the agent's parser after a partial request of an earlier client. */
        r = send_object(q, req, "\xff", deadline);
        if (r < 0)
                return r;

        for (;;) {
                _cleanup_json_ json_object *o = NULL;
                json_object *v;

                /* Everything before the sentinel is stale: discard it unparsed. */
                for (;;) {
                        unsigned char *ff = q->pos < q->len ? memchr(q->buf + q->pos, 0xff, q->len - q->pos) : NULL;
                        if (ff) {
                                q->pos = (size_t) (ff - q->buf) + 1;
                                break;
                        }
                        r = fill(q, deadline);
                        if (r < 0) {
                                log_debug("guest agent %s: no sync reply: %s", socket_path, strerror(-r));
                                return r;
                        }
                }
                reset_parser(q);

                r = read_object(q, deadline, &o);
                if (r == -EBADMSG)
                        continue;
                if (r < 0) {
                        log_debug("guest agent %s: no sync reply: %s", socket_path, strerror(-r));
                        return r;
                }
                log_traffic(q, "<-", o);
                if (json_object_object_get_ex(o, "return", &v) && json_object_is_type(v, json_type_int) &&
                    json_object_get_int64(v) == id)
                        break;
                /* A sync reply of an earlier client: keep looking. */
        }

        *ret = TAKE_PTR(q);
        return 0;
}

/* ---- events ---- */

const char *qmp_last_event(const struct qmp *q, unsigned n) {
        if (!q || n >= QMP_EVENTS_KEPT || n >= q->n_events)
                return NULL;
        return q->events[(q->n_events - 1 - n) % QMP_EVENTS_KEPT];
}

bool qmp_saw_event(const struct qmp *q, const char *name) {
        for (unsigned n = 0; n < QMP_EVENTS_KEPT; n++) {
                const char *e = qmp_last_event(q, n);
                if (!e)
                        break;
                if (strcmp(e, name) == 0)
                        return true;
        }
        return false;
}

void qmp_forget_events(struct qmp *q) {
        if (!q)
                return;
        for (unsigned i = 0; i < QMP_EVENTS_KEPT; i++) {
                free(q->events[i]);
                q->events[i] = NULL;
        }
        q->n_events = 0;
}

int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms) {
        int64_t deadline = deadline_after(timeout_ms);

        if (!q || !name || timeout_ms < 0)
                return -EINVAL;
        while (!qmp_saw_event(q, name)) {
                _cleanup_json_ json_object *o = NULL;
                int r = read_object(q, deadline, &o);
                if (r == -EBADMSG)
                        return log_error_errno(r, "%s %s: invalid JSON while waiting for event %s",
                                               kind(q), q->path, name);
                if (r < 0)
                        return r;
                log_traffic(q, "<-", o);
                handle_event(q, o);
        }
        return 0;
}

/* ---- guest agent ---- */

int qga_ping(struct qmp *q, int timeout_ms) {
        return qmp_execute(q, "guest-ping", NULL, timeout_ms, NULL, NULL);
}

void qga_exec_result_done(struct qga_exec_result *r) {
        if (!r)
                return;
        free(r->out);
        free(r->err);
        free(r->error);
        *r = (struct qga_exec_result) { .exit_code = -1 };
}

static int get_int(json_object *o, const char *key, int64_t *ret) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return -ENOENT;
        *ret = json_object_get_int64(v);
        return 0;
}

static bool get_bool(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* Decodes o[key] (base64) into a NUL-terminated buffer; "" when absent. */
static int get_data(struct qmp *q, json_object *o, const char *key, char **ret, size_t *ret_len) {
        json_object *v;
        void *data = NULL;
        size_t len = 0;

        if (json_object_object_get_ex(o, key, &v)) {
                if (!json_object_is_type(v, json_type_string) ||
                    base64_decode(json_object_get_string(v), &data, &len) < 0)
                        return log_error_errno(-EBADMSG, "guest agent %s: invalid base64 in \"%s\"", q->path, key);
        } else if (!(data = strdup("")))
                return -ENOMEM;
        *ret = data;
        *ret_len = len;
        return 0;
}

static int exec_until(struct qmp *q, const char *const *argv, const void *input, size_t input_len,
                      int64_t deadline, struct qga_exec_result *ret) {
        _cleanup_json_ json_object *started = NULL;
        json_object *args = json_object_new_object(), *arg = NULL;
        int64_t pid;
        int r;

        if (!args)
                return -ENOMEM;
        json_object_object_add(args, "path", json_object_new_string(argv[0]));
        if (argv[1]) {
                arg = json_object_new_array();
                if (!arg) {
                        json_object_put(args);
                        return -ENOMEM;
                }
                json_object_object_add(args, "arg", arg);
                for (size_t i = 1; argv[i]; i++)
                        json_object_array_add(arg, json_object_new_string(argv[i]));
        }
        json_object_object_add(args, "capture-output", json_object_new_boolean(true));
        if (input) {
                _cleanup_free_ char *b64 = base64_encode(input, input_len);
                if (!b64) {
                        json_object_put(args);
                        return -ENOMEM;
                }
                json_object_object_add(args, "input-data", json_object_new_string(b64));
        }

        r = execute_until(q, "guest-exec", args, deadline, &started, &ret->error);
        if (r < 0)
                return r;
        if (get_int(started, "pid", &pid) < 0)
                return log_error_errno(-EPROTO, "guest agent %s: guest-exec returned no pid", q->path);

        /* A short command ends within tens of milliseconds under TCG: ask every 5 ms for the
         * first 100 ms, then less and less often (up to every 100 ms). */
        for (int polls = 0, backoff = 5;; polls++, backoff = polls < 20 ? 5 : backoff * 2 > 100 ? 100 : backoff * 2) {
                _cleanup_json_ json_object *st = NULL;
                json_object *a = json_object_new_object();
                int64_t v;

                if (!a)
                        return -ENOMEM;
                json_object_object_add(a, "pid", json_object_new_int64(pid));
                r = execute_until(q, "guest-exec-status", a, deadline, &st, &ret->error);
                if (r < 0)
                        return r;
                if (!get_bool(st, "exited")) {
                        int left = remaining_ms(deadline);
                        if (left == 0) {
                                log_debug("guest agent %s: '%s' still runs (pid %" PRId64 ")", q->path, argv[0], pid);
                                return -ETIMEDOUT;
                        }
                        /* Polling state on the other side: nothing to wait on locally. */
                        sleep_ms(backoff < left ? backoff : left);
                        continue;
                }

                if (get_int(st, "signal", &v) >= 0) {
                        ret->signal = (int) v;
                        ret->exit_code = -1;
                } else if (get_int(st, "exitcode", &v) >= 0)
                        ret->exit_code = (int) v;
                else
                        ret->exit_code = -1;
                ret->out_truncated = get_bool(st, "out-truncated");
                ret->err_truncated = get_bool(st, "err-truncated");
                r = get_data(q, st, "out-data", &ret->out, &ret->out_len);
                if (r < 0)
                        return r;
                return get_data(q, st, "err-data", &ret->err, &ret->err_len);
        }
}

int qga_exec(struct qmp *q, const char *const *argv, const void *input, size_t input_len,
             int timeout_ms, struct qga_exec_result *ret) {
        int r;

        if (!ret)
                return -EINVAL;
        *ret = (struct qga_exec_result) { .exit_code = -1 };
        if (!q || !argv || !argv[0] || timeout_ms < 0)
                return -EINVAL;
        r = exec_until(q, argv, input, input_len, deadline_after(timeout_ms), ret);
        if (r < 0) {
                /* Nothing half-filled: only the agent's error text with -EREMOTEIO. */
                char *error = r == -EREMOTEIO ? TAKE_PTR(ret->error) : NULL;
                qga_exec_result_done(ret);
                ret->error = error;
        }
        return r;
}

char *qga_error_reason(const char *desc) {
        static const char wrapper[] = "Guest agent command failed, error was '";
        static const char child[] = "Failed to execute child process";
        _cleanup_free_ char *s = NULL;

        if (!desc)
                return NULL;
        if (strncmp(desc, wrapper, strlen(wrapper)) == 0) {
                size_t n = strlen(desc + strlen(wrapper));
                s = strndup(desc + strlen(wrapper), n);
                if (s && n > 0 && s[n - 1] == '\'')
                        s[n - 1] = 0;
        } else
                s = strdup(desc);
        if (!s)
                return NULL;

        /* glib: "Failed to execute child process “path” (strerror)" */
        size_t n = strlen(s);
        char *open = strrchr(s, '(');
        if (strncmp(s, child, strlen(child)) == 0 && open && open > s && open[-1] == ' ' &&
            n > 0 && s[n - 1] == ')')
                return strndup(open + 1, (size_t) (s + n - 1 - (open + 1)));
        return TAKE_PTR(s);
}

static int file_call(struct qmp *q, const char *command, json_object *args, int64_t deadline,
                     json_object **ret) {
        _cleanup_free_ char *error = NULL;
        int r = execute_until(q, command, args, deadline, ret, &error);
        if (r == -EREMOTEIO)
                log_error("guest agent %s: %s failed: %s", q->path, command, error);
        return r;
}

int qga_write_file(struct qmp *q, const char *guest_path, const void *data, size_t len,
                   unsigned mode, int timeout_ms) {
        int64_t deadline = deadline_after(timeout_ms);
        _cleanup_json_ json_object *opened = NULL;
        json_object *a;
        int64_t handle;
        int r = 0;

        if (!q || !guest_path || (!data && len > 0) || timeout_ms < 0)
                return -EINVAL;

        if (!(a = json_object_new_object()))
                return -ENOMEM;
        json_object_object_add(a, "path", json_object_new_string(guest_path));
        json_object_object_add(a, "mode", json_object_new_string("w"));
        r = file_call(q, "guest-file-open", a, deadline, &opened);
        if (r < 0)
                return r;
        if (!json_object_is_type(opened, json_type_int))
                return log_error_errno(-EPROTO, "guest agent %s: guest-file-open returned no handle", q->path);
        handle = json_object_get_int64(opened);

        for (size_t off = 0; off < len;) {
                size_t n = len - off < QGA_WRITE_CHUNK ? len - off : QGA_WRITE_CHUNK;
                _cleanup_json_ json_object *written = NULL;
                _cleanup_free_ char *b64 = base64_encode((const char *) data + off, n);
                int64_t count;

                if (!b64 || !(a = json_object_new_object())) {
                        r = -ENOMEM;
                        break;
                }
                json_object_object_add(a, "handle", json_object_new_int64(handle));
                json_object_object_add(a, "buf-b64", json_object_new_string(b64));
                r = file_call(q, "guest-file-write", a, deadline, &written);
                if (r < 0)
                        break;
                if (get_int(written, "count", &count) < 0 || count != (int64_t) n) {
                        r = log_error_errno(-EIO, "guest agent %s: short write to '%s'", q->path, guest_path);
                        break;
                }
                off += n;
        }

        /* Close also after a failed write while the agent still answers; its handles are few. */
        if (r >= 0 || r == -EREMOTEIO || r == -EIO || r == -ENOMEM) {
                int64_t close_deadline = r >= 0 ? deadline : now_ms() + 1000;
                int k;
                if (!(a = json_object_new_object()))
                        return r < 0 ? r : -ENOMEM;
                json_object_object_add(a, "handle", json_object_new_int64(handle));
                k = file_call(q, "guest-file-close", a, close_deadline, NULL);
                if (r >= 0)
                        r = k;
        }
        if (r < 0 || mode == 0)
                return r;

        char octal[16];
        snprintf(octal, sizeof octal, "%o", mode);
        const char *argv[] = { "/bin/chmod", octal, guest_path, NULL };
        struct qga_exec_result res = { .exit_code = -1 };
        r = exec_until(q, argv, NULL, 0, deadline, &res);
        if (r == -EREMOTEIO) {
                _cleanup_free_ char *reason = qga_error_reason(res.error);
                log_error("guest agent %s: cannot run /bin/chmod: %s", q->path, reason ? reason : res.error);
                r = -EIO;
        } else if (r >= 0 && res.exit_code != 0) {
                size_t n = res.err_len;
                while (n > 0 && res.err[n - 1] == '\n')
                        n--;
                log_error("guest agent %s: chmod %s '%s' failed: %.*s", q->path, octal, guest_path,
                          (int) n, res.err);
                r = -EIO;
        }
        qga_exec_result_done(&res);
        return r;
}

/* ---- base64 ---- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t len) {
        const unsigned char *in = data;
        char *out, *p;

        if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
                return NULL;
        out = p = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t) in[i + 1] << 8;
                if (i + 2 < len)
                        v |= in[i + 2];
                *p++ = b64_alphabet[(v >> 18) & 63];
                *p++ = b64_alphabet[(v >> 12) & 63];
                *p++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
                *p++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
        }
        *p = 0;
        return out;
}

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode(const char *text, void **ret_data, size_t *ret_len) {
        size_t n, len = 0;
        unsigned char *out;

        if (!text || !ret_data)
                return -EINVAL;
        n = strlen(text);
        if (n % 4 != 0)
                return -EINVAL;
        out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < n; i += 4) {
                bool last = i + 4 == n;
                int v[4];
                int pad = 0;

                for (int j = 0; j < 4; j++) {
                        char c = text[i + j];
                        if (c == '=' && last && j >= 2) {
                                v[j] = 0;
                                pad++;
                                continue;
                        }
                        if (pad > 0 || (v[j] = b64_value(c)) < 0)  /* data after '=' or not base64 */
                                goto invalid;
                }
                uint32_t w = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 | (uint32_t) v[3];
                /* The pad bits of the last character must be zero (canonical encoding). */
                if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
                        goto invalid;
                out[len++] = (unsigned char) (w >> 16);
                if (pad < 2)
                        out[len++] = (unsigned char) (w >> 8);
                if (pad < 1)
                        out[len++] = (unsigned char) w;
        }
        out[len] = 0;
        *ret_data = out;
        if (ret_len)
                *ret_len = len;
        return 0;

invalid:
        free(out);
        return -EINVAL;
}
