/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * QMP / guest agent client against a fake server that replays transcripts from
 * tests/data/qmp/ (see the README there; two of them are recorded from real QEMU 7.2), and,
 * when it is installed, against the real qemu-ga run as a host process.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fame-config.h"
#include "macro.h"
#include "qmp.h"
#include "spawn.h"
#include "testlib.h"

#define FAKE_IO_TIMEOUT_MS 15000        /* the fake server never waits longer than this */
#define SLACK_MS 500                    /* allowed lateness of a timeout */

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static char *read_text_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *text = NULL;
        size_t size = 0;

        if (!f)
                return NULL;
        FILE *m = open_memstream(&text, &size);
        if (m) {
                char buf[4096];
                size_t n;
                while ((n = fread(buf, 1, sizeof buf, f)) > 0)
                        fwrite(buf, 1, n, m);
                fclose(m);
        }
        fclose(f);
        return text;
}

static char *load_transcript(const char *name) {
        const char *root = getenv("FAME_SOURCE_ROOT");
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/tests/data/qmp/%s", root && *root ? root : FAME_SOURCE_ROOT, name);
        char *text = read_text_file(path);
        if (!text) {
                fprintf(stderr, "cannot read %s: %m\n", path);
                exit(1);
        }
        return text;
}

/* ---- the fake server ---- */

struct fake {
        const char *name;
        char *script;
        char path[108];
        int listen_fd, fd;
        pthread_t thread;
        bool trickle;                   /* send byte by byte, to split everything */

        /* client side of the stream */
        json_tokener *tok;
        unsigned char buf[65536];
        size_t pos, len;

        json_object *last_id;           /* "id" of the client's last request, or NULL */
        long long sync;                 /* id of the client's last guest-sync-delimited */
        const char *eol;

        /* results, read after fake_finish() */
        char failure[1024];
        bool completed;                 /* played to the end */
        int repeats;
};

static void fake_fail(struct fake *f, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fake_fail(struct fake *f, int line, const char *fmt, ...) {
        if (f->failure[0])
                return;
        int n = snprintf(f->failure, sizeof f->failure, "%s:%d: ", f->name, line);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->failure + n, sizeof f->failure - (size_t) n, fmt, ap);
        va_end(ap);
}

static int fake_wait(int fd, short events) {
        struct pollfd p = { .fd = fd, .events = events };
        int r;
        while ((r = poll(&p, 1, FAKE_IO_TIMEOUT_MS)) < 0 && errno == EINTR)
                ;
        return r > 0 ? 0 : -ETIMEDOUT;
}

static int fake_fill(struct fake *f) {
        if (fake_wait(f->fd, POLLIN) < 0)
                return -ETIMEDOUT;
        ssize_t n = read(f->fd, f->buf, sizeof f->buf);
        if (n < 0)
                return -errno;
        if (n == 0)
                return -ECONNRESET;
        f->pos = 0;
        f->len = (size_t) n;
        return 0;
}

/* The next thing the client sent: a 0xff byte (*ret_ff) or a JSON object. */
static int fake_read(struct fake *f, bool *ret_ff, json_object **ret) {
        bool started = false;
        *ret_ff = false;
        *ret = NULL;
        for (;;) {
                while (f->pos < f->len) {
                        unsigned char c = f->buf[f->pos];
                        if (!started && (c == ' ' || c == '\r' || c == '\n' || c == '\t')) {
                                f->pos++;
                                continue;
                        }
                        if (!started && c == 0xff) {
                                f->pos++;
                                *ret_ff = true;
                                return 0;
                        }
                        started = true;
                        size_t avail = f->len - f->pos;
                        json_object *o = json_tokener_parse_ex(f->tok, (char *) f->buf + f->pos, (int) avail);
                        if (o) {
                                f->pos += json_tokener_get_parse_end(f->tok);
                                json_tokener_reset(f->tok);
                                *ret = o;
                                return 0;
                        }
                        if (json_tokener_get_error(f->tok) != json_tokener_continue)
                                return -EBADMSG;
                        f->pos = f->len;
                }
                int r = fake_fill(f);
                if (r < 0)
                        return r;
        }
}

static void fake_send(struct fake *f, const char *data, size_t len) {
        for (size_t i = 0; i < len;) {
                size_t n = f->trickle ? 1 : len - i;
                ssize_t k = send(f->fd, data + i, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return;         /* the client went away: its result tells */
                }
                i += (size_t) k;
                if (f->trickle)
                        sleep_ms(1);
        }
}

/* Replaces every @SYNC@ in text by the client's sync id. */
static char *substitute(struct fake *f, const char *text) {
        char *out = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&out, &size);
        if (!m)
                abort();
        for (const char *p = text; *p;) {
                if (strncmp(p, "@SYNC@", 6) == 0) {
                        fprintf(m, "%lld", f->sync);
                        p += 6;
                } else
                        fputc(*p++, m);
        }
        fclose(m);
        return out;
}

static void fake_server_line(struct fake *f, const char *text, bool ff, bool raw) {
        _cleanup_free_ char *t = substitute(f, text);
        _cleanup_free_ char *out = NULL;

        /* Echo the client's id into the reply, as QEMU does. */
        json_object *o = raw ? NULL : json_tokener_parse(t);
        if (o && f->last_id && !json_object_object_get_ex(o, "id", NULL) &&
            (json_object_object_get_ex(o, "return", NULL) || json_object_object_get_ex(o, "error", NULL))) {
                size_t n = strlen(t);
                while (n > 0 && t[n - 1] != '}')
                        n--;
                if (n > 0 && asprintf(&out, "%.*s, \"id\": %s}", (int) (n - 1), t,
                                      json_object_to_json_string(f->last_id)) < 0)
                        abort();
        }
        json_object_put(o);

        if (ff)
                fake_send(f, "\xff", 1);
        const char *s = out ? out : t;
        fake_send(f, s, strlen(s));
        if (!raw)
                fake_send(f, f->eol, strlen(f->eol));
        else
                sleep_ms(20);   /* let the client see the partial object alone */
}

/* Reads a request and compares it to expected (a JSON text with @SYNC@). */
static bool fake_expect(struct fake *f, int line, const char *expected, bool want_ff, bool eof_ok) {
        json_object *got = NULL;
        bool ff;
        int r = fake_read(f, &ff, &got);

        if (r == -ECONNRESET && eof_ok)
                return false;
        if (r < 0) {
                fake_fail(f, line, "expected %s, but reading the client failed: %s",
                          want_ff ? "0xff" : expected, strerror(-r));
                return false;
        }
        if (want_ff || ff) {
                if (!(want_ff && ff))
                        fake_fail(f, line, "expected %s, got %s", want_ff ? "0xff" : expected,
                                  ff ? "0xff" : json_object_to_json_string(got));
                json_object_put(got);
                return want_ff && ff;
        }

        /* Remember what the server's substitutions need. */
        json_object *v, *a, *id;
        if (json_object_object_get_ex(got, "execute", &v) &&
            strcmp(json_object_get_string(v), "guest-sync-delimited") == 0 &&
            json_object_object_get_ex(got, "arguments", &a) && json_object_object_get_ex(a, "id", &id))
                f->sync = (long long) json_object_get_int64(id);
        json_object_put(f->last_id);
        f->last_id = NULL;
        if (json_object_object_get_ex(got, "id", &id)) {
                f->last_id = json_object_get(id);
                json_object_object_del(got, "id");
        }

        _cleanup_free_ char *t = substitute(f, expected);
        json_object *want = json_tokener_parse(t);
        bool ok = want && json_object_equal(want, got);
        if (!want)
                fake_fail(f, line, "invalid JSON in transcript: %s", t);
        else if (!ok)
                fake_fail(f, line, "expected %s, got %s", t,
                          json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(want);
        json_object_put(got);
        return ok;
}

static void fake_play(struct fake *f) {
        const char *last_request = NULL, *last_reply = NULL;
        int line_no = 0;

        if (fake_wait(f->listen_fd, POLLIN) < 0) {
                fake_fail(f, 0, "no client connected");
                return;
        }
        f->fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (f->fd < 0) {
                fake_fail(f, 0, "accept: %m");
                return;
        }

        for (char *line = f->script, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                line_no++;

                if (line[0] == 0 || line[0] == '#')
                        continue;
                if (strncmp(line, "!eol ", 5) == 0)
                        f->eol = strcmp(line + 5, "crlf") == 0 ? "\r\n" : "\n";
                else if (strncmp(line, "<ff ", 4) == 0)
                        fake_server_line(f, last_reply = line + 4, true, false);
                else if (strncmp(line, "<raw ", 5) == 0)
                        fake_server_line(f, line + 5, false, true);
                else if (strncmp(line, "< ", 2) == 0)
                        fake_server_line(f, last_reply = line + 2, false, false);
                else if (strcmp(line, ">ff") == 0) {
                        if (!fake_expect(f, line_no, NULL, true, false))
                                return;
                } else if (strncmp(line, "> ", 2) == 0) {
                        if (!fake_expect(f, line_no, last_request = line + 2, false, false))
                                return;
                } else if (strcmp(line, "!close") == 0) {
                        break;
                } else if (strcmp(line, "!hang") == 0) {
                        /* Drain until the client goes away. */
                        while (fake_fill(f) == 0)
                                ;
                        break;
                } else if (strcmp(line, "!repeat") == 0) {
                        if (!last_request || !last_reply) {
                                fake_fail(f, line_no, "!repeat without a request and a reply before it");
                                return;
                        }
                        while (fake_expect(f, line_no, last_request, false, true)) {
                                f->repeats++;
                                fake_server_line(f, last_reply, false, false);
                        }
                        if (f->failure[0])
                                return;
                } else {
                        fake_fail(f, line_no, "unknown directive: %s", line);
                        return;
                }
        }
        f->completed = true;
}

static void *fake_thread(void *userdata) {
        struct fake *f = userdata;
        fake_play(f);
        /* The end of a transcript closes the connection; so does a mismatch, so that the
         * client fails at once instead of timing out. */
        if (f->fd >= 0)
                close(TAKE_FD(f->fd));
        return NULL;
}

static void fake_start(struct fake *f, const char *name, bool trickle) {
        static unsigned counter;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        *f = (struct fake) { .name = name, .listen_fd = -1, .fd = -1, .trickle = trickle, .eol = "\n" };
        f->script = load_transcript(name);
        f->tok = json_tokener_new();
        snprintf(f->path, sizeof f->path, "%s/fake%u.sock", test_tmpdir(), counter++);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
        f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            listen(f->listen_fd, 4) < 0 || pthread_create(&f->thread, NULL, fake_thread, f) != 0) {
                fprintf(stderr, "cannot start the fake server on %s: %m\n", f->path);
                exit(1);
        }
}

/* Waits for the fake server (the client must have closed its side or the transcript ended)
 * and checks that it played the whole transcript without mismatch. */
static void fake_finish(struct fake *f) {
        pthread_join(f->thread, NULL);
        CHECK(f->failure[0] == 0, "%s", f->failure);
        CHECK(f->completed, "%s: transcript not played to the end", f->name);
        if (f->fd >= 0)
                close(f->fd);
        close(f->listen_fd);
        unlink(f->path);
        json_tokener_free(f->tok);
        json_object_put(f->last_id);
        free(f->script);
}

static const char *str_member(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

#define STREQ(a, b) ((a) && (b) && strcmp((a), (b)) == 0)

/* ---- QMP ---- */

static void test_qmp_session(bool trickle) {
        struct fake f;
        struct qmp *q = NULL;
        json_object *ret = NULL;
        char *error = NULL;
        int r;

        fake_start(&f, "qmp-session.txt", trickle);
        r = qmp_connect(f.path, 5000, &q);
        CHECK(r == 0, "qmp_connect: %s", strerror(-r));
        if (r < 0) {
                fake_finish(&f);
                return;
        }

        r = qmp_execute(q, "query-status", NULL, 5000, &ret, &error);
        CHECK(r == 0, "query-status: %s", strerror(-r));
        CHECK(STREQ(str_member(ret, "status"), "running"), "status: %s", str_member(ret, "status"));
        CHECK(error == NULL, "error set on success");
        json_object_put(ret);
        ret = NULL;

        json_object *args = json_object_new_object();
        json_object_object_add(args, "path", json_object_new_string("/machine/nonexistent"));
        json_object_object_add(args, "property", json_object_new_string("type"));
        r = qmp_execute(q, "qom-get", args, 5000, &ret, &error);
        CHECK(r == -EREMOTEIO, "qom-get of a nonexistent path: %d", r);
        CHECK(ret == NULL, "return set on error");
        CHECK(STREQ(error, "Device '/machine/nonexistent' not found"), "desc: %s", error);
        free(error);
        error = NULL;

        /* QEMU sends SHUTDOWN before the reply to quit, then closes. */
        CHECK(qmp_last_event(q, 0) == NULL, "no event yet");
        r = qmp_execute(q, "quit", NULL, 5000, NULL, NULL);
        CHECK(r == 0, "quit: %s", strerror(-r));
        CHECK(STREQ(qmp_last_event(q, 0), "SHUTDOWN"), "last event: %s", qmp_last_event(q, 0));
        CHECK(qmp_last_event(q, 1) == NULL, "one event only");
        CHECK(qmp_saw_event(q, "SHUTDOWN"), "SHUTDOWN seen");
        CHECK(qmp_wait_event(q, "SHUTDOWN", 0) == 0, "SHUTDOWN already seen");

        r = qmp_execute(q, "query-status", NULL, 5000, NULL, NULL);
        CHECK(r == -ECONNRESET || r == -EPIPE, "after quit: %d", r);
        qmp_forget_events(q);
        CHECK(qmp_last_event(q, 0) == NULL && !qmp_saw_event(q, "SHUTDOWN"), "events forgotten");
        qmp_close(q);
        fake_finish(&f);
}

/* A transcript where connecting must fail with `expected` and take at most max_ms. */
static void test_connect_fails(const char *name, int timeout_ms, int expected, int min_ms, int max_ms) {
        struct fake f;
        struct qmp *q = NULL;
        bool qga = strncmp(name, "qga", 3) == 0;

        fake_start(&f, name, false);
        int64_t t = now_ms();
        int r = qga ? qga_connect(f.path, timeout_ms, &q) : qmp_connect(f.path, timeout_ms, &q);
        int64_t took = now_ms() - t;
        CHECK(r == expected, "%s: connect returned %d (%s), expected %d", name, r, strerror(-r), expected);
        CHECK(q == NULL, "%s: no object on failure", name);
        CHECK(took >= min_ms && took <= max_ms, "%s: took %lld ms, expected %d..%d", name,
              (long long) took, min_ms, max_ms);
        qmp_close(q);
        fake_finish(&f);
}

/* Connects to a transcript's fake and runs one query-status that must fail with expected. */
static void test_query_fails(const char *name, int timeout_ms, int expected, int min_ms, int max_ms) {
        struct fake f;
        struct qmp *q = NULL;
        json_object *ret = NULL;

        fake_start(&f, name, false);
        int r = qmp_connect(f.path, 5000, &q);
        CHECK(r == 0, "%s: qmp_connect: %s", name, strerror(-r));
        if (r == 0) {
                int64_t t = now_ms();
                r = qmp_execute(q, "query-status", NULL, timeout_ms, &ret, NULL);
                int64_t took = now_ms() - t;
                CHECK(r == expected, "%s: query-status returned %d (%s), expected %d", name, r,
                      strerror(-r), expected);
                CHECK(ret == NULL, "%s: no return on failure", name);
                CHECK(took >= min_ms && took <= max_ms, "%s: took %lld ms, expected %d..%d", name,
                      (long long) took, min_ms, max_ms);
        }
        qmp_close(q);
        fake_finish(&f);
}

static void test_qmp_events(void) {
        struct fake f;
        struct qmp *q = NULL;
        json_object *ret = NULL;
        int r;

        fake_start(&f, "qmp-events.txt", false);
        r = qmp_connect(f.path, 5000, &q);
        CHECK(r == 0, "qmp_connect: %s", strerror(-r));
        if (r < 0) {
                fake_finish(&f);
                return;
        }
        CHECK(STREQ(qmp_last_event(q, 0), "EV1"), "event before the capabilities reply: %s",
              qmp_last_event(q, 0));

        r = qmp_execute(q, "stop", NULL, 5000, &ret, NULL);
        CHECK(r == 0, "stop: %s", strerror(-r));
        CHECK(ret && json_object_is_type(ret, json_type_object) && json_object_object_length(ret) == 0,
              "the late reply with another id was not skipped: %s", json_object_to_json_string(ret));
        json_object_put(ret);

        /* 9 events so far: the 8 newest are kept. */
        static const char *const newest_first[] = { "STOP", "EV8", "EV7", "EV6", "EV5", "EV4", "EV3", "EV2" };
        for (unsigned i = 0; i < ELEMENTSOF(newest_first); i++)
                CHECK(STREQ(qmp_last_event(q, i), newest_first[i]), "event %u: %s, expected %s", i,
                      qmp_last_event(q, i), newest_first[i]);
        CHECK(qmp_last_event(q, 8) == NULL, "only 8 kept");
        CHECK(!qmp_saw_event(q, "EV1"), "EV1 dropped from the ring");

        r = qmp_wait_event(q, "SHUTDOWN", 5000);
        CHECK(r == 0, "wait for SHUTDOWN: %s", strerror(-r));
        CHECK(STREQ(qmp_last_event(q, 0), "SHUTDOWN"), "last: %s", qmp_last_event(q, 0));

        int64_t t = now_ms();
        r = qmp_wait_event(q, "NEVER", 200);
        int64_t took = now_ms() - t;
        CHECK(r == -ETIMEDOUT, "wait for an event that does not come: %d", r);
        CHECK(took >= 195 && took <= 200 + SLACK_MS, "took %lld ms", (long long) took);

        qmp_close(q);
        fake_finish(&f);
}

static void test_connect_errors(void) {
        struct qmp *q = NULL;
        char path[PATH_MAX];
        int r;

        snprintf(path, sizeof path, "%s/nobody.sock", test_tmpdir());
        r = qmp_connect(path, 1000, &q);
        CHECK(r == -ENOENT, "no socket: %d", r);
        r = qga_connect(path, 1000, &q);
        CHECK(r == -ENOENT, "no socket (qga): %d", r);

        /* A socket nobody listens on. */
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/dead.sock", test_tmpdir());
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0, "bind: %m");
        close(fd);
        r = qmp_connect(sa.sun_path, 1000, &q);
        CHECK(r == -ECONNREFUSED, "not listening: %d", r);

        char long_path[200];
        memset(long_path, 'x', sizeof long_path - 1);
        long_path[sizeof long_path - 1] = 0;
        r = qmp_connect(long_path, 1000, &q);
        CHECK(r == -ENAMETOOLONG, "path too long: %d", r);
        r = qmp_connect(path, -1, &q);
        CHECK(r == -EINVAL, "negative timeout: %d", r);

        /* NULL is accepted by the destructors; execute puts args even when refusing. */
        qmp_close(NULL);
        r = qmp_execute(NULL, "x", json_object_new_object(), 10, NULL, NULL);
        CHECK(r == -EINVAL, "execute on NULL: %d", r);
}

/* ---- guest agent ---- */

static void test_qga_session(void) {
        struct fake f;
        struct qmp *q = NULL;
        struct qga_exec_result res;
        int r;

        fake_start(&f, "qga-session.txt", false);
        r = qga_connect(f.path, 5000, &q);
        CHECK(r == 0, "qga_connect: %s", strerror(-r));
        if (r < 0) {
                fake_finish(&f);
                return;
        }
        r = qga_ping(q, 5000);
        CHECK(r == 0, "guest-ping: %s", strerror(-r));

        /* Polled twice: first running, then exited. */
        const char *const sh[] = { "/bin/sh", "-c", "sleep 0.5; echo hello; exit 3", NULL };
        r = qga_exec(q, sh, NULL, 0, 5000, &res);
        CHECK(r == 0, "guest-exec: %s", strerror(-r));
        CHECK(res.exit_code == 3 && res.signal == 0, "exit %d signal %d", res.exit_code, res.signal);
        CHECK(res.out_len == 6 && STREQ(res.out, "hello\n"), "out: '%s'", res.out);
        CHECK(res.err_len == 0 && STREQ(res.err, ""), "err: '%s'", res.err);
        CHECK(!res.out_truncated && !res.err_truncated && !res.error, "flags");
        qga_exec_result_done(&res);

        const char *const cat[] = { "/bin/cat", NULL };
        r = qga_exec(q, cat, "input data", 10, 5000, &res);
        CHECK(r == 0, "guest-exec with input: %s", strerror(-r));
        CHECK(res.exit_code == 0 && res.out_len == 10 && STREQ(res.out, "input data"), "out: '%s'", res.out);
        qga_exec_result_done(&res);

        const char *const killed[] = { "/bin/sh", "-c", "echo oops >&2; kill -KILL $$", NULL };
        r = qga_exec(q, killed, NULL, 0, 5000, &res);
        CHECK(r == 0, "guest-exec killed: %s", strerror(-r));
        CHECK(res.exit_code == -1 && res.signal == 9, "exit %d signal %d", res.exit_code, res.signal);
        CHECK(STREQ(res.err, "oops\n") && res.err_len == 5 && STREQ(res.out, ""), "err: '%s'", res.err);
        qga_exec_result_done(&res);

        const char *const missing[] = { "/nonexistent/x", NULL };
        r = qga_exec(q, missing, NULL, 0, 5000, &res);
        CHECK(r == -EREMOTEIO, "guest-exec of a missing program: %d", r);
        CHECK(res.error && strstr(res.error, "No such file or directory"), "error: %s", res.error);
        CHECK(!res.out && !res.err, "no output on failure");
        _cleanup_free_ char *reason = qga_error_reason(res.error);
        CHECK(STREQ(reason, "No such file or directory"), "reason: %s", reason);
        qga_exec_result_done(&res);
        CHECK(res.error == NULL, "result done clears error");

        r = qga_write_file(q, "/tmp/fame-qga-record.txt", "hello, file\n", 12, 0640, 5000);
        CHECK(r == 0, "qga_write_file: %s", strerror(-r));

        qmp_close(q);
        fake_finish(&f);
}

static void test_qga_stale(void) {
        struct fake f;
        struct qmp *q = NULL;

        fake_start(&f, "qga-stale.txt", false);
        int r = qga_connect(f.path, 5000, &q);
        CHECK(r == 0, "qga_connect with stale input: %s", strerror(-r));
        if (r == 0) {
                r = qga_ping(q, 5000);
                CHECK(r == 0, "guest-ping after stale input: %s", strerror(-r));
        }
        qmp_close(q);
        fake_finish(&f);

        /* The same, split into single bytes. */
        fake_start(&f, "qga-stale.txt", true);
        r = qga_connect(f.path, 5000, &q);
        CHECK(r == 0, "qga_connect with stale input, trickled: %s", strerror(-r));
        if (r == 0)
                CHECK(qga_ping(q, 5000) == 0, "guest-ping, trickled");
        qmp_close(q);
        fake_finish(&f);
}

static void test_qga_exec_timeout(void) {
        struct fake f;
        struct qmp *q = NULL;
        struct qga_exec_result res;

        fake_start(&f, "qga-exec-timeout.txt", false);
        int r = qga_connect(f.path, 5000, &q);
        CHECK(r == 0, "qga_connect: %s", strerror(-r));
        if (r == 0) {
                const char *const argv[] = { "/bin/sleep", "1000", NULL };
                int64_t t = now_ms();
                r = qga_exec(q, argv, NULL, 0, 400, &res);
                int64_t took = now_ms() - t;
                CHECK(r == -ETIMEDOUT, "exec that never ends: %d", r);
                CHECK(took >= 395 && took <= 400 + SLACK_MS, "took %lld ms", (long long) took);
                CHECK(!res.out && !res.err && !res.error, "nothing on timeout");
                qga_exec_result_done(&res);
        }
        qmp_close(q);
        fake_finish(&f);
        /* Every 5 ms for the first 20 polls (100 ms), then 10, 20, 40, 80, 100, 100...: about
         * 26 polls in 400 ms, not hundreds. */
        CHECK(f.repeats >= 20 && f.repeats <= 35, "guest-exec-status polled %d times", f.repeats + 1);
}

static void test_error_reason(void) {
        static const struct { const char *in, *out; } cases[] = {
                { "Guest agent command failed, error was 'Failed to execute child process \xe2\x80\x9cx\xe2\x80\x9d (No such file or directory)'",
                  "No such file or directory" },
                { "Failed to execute child process \xe2\x80\x9c/bin/x\xe2\x80\x9d (Permission denied)", "Permission denied" },
                { "Guest agent command failed, error was 'something else'", "something else" },
                { "Invalid parameter 'pid'", "Invalid parameter 'pid'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = qga_error_reason(cases[i].in);
                CHECK(STREQ(s, cases[i].out), "reason of '%s': '%s'", cases[i].in, s);
        }
        CHECK(qga_error_reason(NULL) == NULL, "NULL");
}

/* ---- base64 ---- */

static void test_base64(void) {
        static const struct { const char *plain, *b64; } rfc4648[] = {
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rfc4648); i++) {
                _cleanup_free_ char *e = base64_encode(rfc4648[i].plain, strlen(rfc4648[i].plain));
                CHECK(STREQ(e, rfc4648[i].b64), "encode '%s': '%s'", rfc4648[i].plain, e);
                _cleanup_free_ void *d = NULL;
                size_t len = 99;
                int r = base64_decode(rfc4648[i].b64, &d, &len);
                CHECK(r == 0 && len == strlen(rfc4648[i].plain) && memcmp(d, rfc4648[i].plain, len) == 0 &&
                      ((char *) d)[len] == 0, "decode '%s'", rfc4648[i].b64);
        }

        /* All byte values and lengths around the 3-byte groups. */
        unsigned char data[1000];
        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (unsigned char) (i * 131 + (i >> 3));
        for (size_t len = 0; len <= sizeof data; len += len < 20 ? 1 : 97) {
                _cleanup_free_ char *e = base64_encode(data, len);
                _cleanup_free_ void *d = NULL;
                size_t dlen = 0;
                CHECK(e && strlen(e) == (len + 2) / 3 * 4, "encoded length of %zu", len);
                int r = base64_decode(e, &d, &dlen);
                CHECK(r == 0 && dlen == len && memcmp(d, data, len) == 0, "round trip of %zu bytes", len);
        }
        _cleanup_free_ char *all = base64_encode("\x00\xff\xfe\x80", 4);
        CHECK(STREQ(all, "AP/+gA=="), "binary: %s", all);

        static const char *const garbage[] = {
                "Zg", "Zg=", "Zm9vY", "Z===", "====", "=Zg=", "Zm9v!", "Zm 9v", "Zm9\n",
                "Zh==", "Zm9=", "Zm8=Zm8=", "Zg==Zg==", "Zm=v", "Zm9v\xc3\xa9", "Zm9v-_==",
        };
        for (size_t i = 0; i < ELEMENTSOF(garbage); i++) {
                void *d = NULL;
                size_t len = 0;
                int r = base64_decode(garbage[i], &d, &len);
                CHECK(r == -EINVAL && d == NULL, "'%s' accepted (%d)", garbage[i], r);
                free(d);
        }
}

/* ---- the real guest agent, as a host process ---- */

static const char *find_qemu_ga(void) {
        static const char *const candidates[] = { "/usr/sbin/qemu-ga", "/usr/bin/qemu-ga",
                                                  "/usr/local/bin/qemu-ga", "/usr/local/sbin/qemu-ga" };
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (access(candidates[i], X_OK) == 0)
                        return candidates[i];
        return NULL;
}

/* Connects the way callers do: retry until the agent listens and answers. */
static int qga_connect_retry(const char *path, int total_ms, struct qmp **ret) {
        int64_t deadline = now_ms() + total_ms;
        int r;
        for (;;) {
                r = qga_connect(path, 1000, ret);
                if (r == 0 || now_ms() >= deadline)
                        return r;
                sleep_ms(20);
        }
}

/* What the real agent must do, on a connected client. */
static void real_agent_checks(struct qmp *q) {
        struct qga_exec_result res;
        char file[PATH_MAX];
        int r;

        CHECK(qga_ping(q, 5000) == 0, "real guest-ping");

        const char *const echo[] = { "/bin/echo", "hello", "world", NULL };
        r = qga_exec(q, echo, NULL, 0, 10000, &res);
        CHECK(r == 0, "real guest-exec of /bin/echo: %s (%s)", strerror(-r), res.error);
        CHECK(res.exit_code == 0 && STREQ(res.out, "hello world\n"), "echo: exit %d out '%s'", res.exit_code, res.out);
        qga_exec_result_done(&res);

        const char *const fail[] = { "/bin/sh", "-c", "printf 'to stderr' >&2; exit 7", NULL };
        r = qga_exec(q, fail, NULL, 0, 10000, &res);
        CHECK(r == 0 && res.exit_code == 7 && STREQ(res.err, "to stderr"), "exit 7: %d %d '%s'", r,
              res.exit_code, res.err);
        qga_exec_result_done(&res);

        /* stdin larger than a pipe buffer, echoed back through stdout */
        static char big_in[100000];
        for (size_t i = 0; i < sizeof big_in; i++)
                big_in[i] = (char) ('a' + i % 26);
        const char *const cat[] = { "/bin/cat", NULL };
        r = qga_exec(q, cat, big_in, sizeof big_in, 10000, &res);
        CHECK(r == 0 && res.out_len == sizeof big_in && memcmp(res.out, big_in, sizeof big_in) == 0,
              "real cat of %zu bytes: %d, %zu bytes back", sizeof big_in, r, res.out_len);
        qga_exec_result_done(&res);

        const char *const missing[] = { "/nonexistent/prog", NULL };
        r = qga_exec(q, missing, NULL, 0, 10000, &res);
        CHECK(r == -EREMOTEIO, "real guest-exec of a missing program: %d", r);
        _cleanup_free_ char *reason = qga_error_reason(res.error);
        CHECK(STREQ(reason, "No such file or directory"), "reason: '%s' of '%s'", reason, res.error);
        qga_exec_result_done(&res);

        /* A file of several chunks, with a mode. */
        size_t len = 3 * QGA_WRITE_CHUNK + 1234;
        unsigned char *data = malloc(len);
        CHECK(data != NULL, "malloc");
        for (size_t i = 0; data && i < len; i++)
                data[i] = (unsigned char) (i * 7 + (i >> 10));
        snprintf(file, sizeof file, "%s/written.bin", test_tmpdir());
        r = qga_write_file(q, file, data, len, 0640, 20000);
        CHECK(r == 0, "real qga_write_file: %s", strerror(-r));
        struct stat st;
        _cleanup_free_ char *back = NULL;
        FILE *fp = fopen(file, "re");
        if (fp) {
                back = malloc(len + 1);
                CHECK(back && fread(back, 1, len + 1, fp) == len, "read back");
                fclose(fp);
        }
        CHECK(back && data && memcmp(back, data, len) == 0, "file content differs");
        CHECK(stat(file, &st) == 0 && (st.st_mode & 07777) == 0640, "mode %o", (unsigned) st.st_mode & 07777);
        free(data);

        /* Empty, mode left alone. */
        snprintf(file, sizeof file, "%s/empty", test_tmpdir());
        r = qga_write_file(q, file, NULL, 0, 0, 5000);
        CHECK(r == 0 && stat(file, &st) == 0 && st.st_size == 0, "empty file: %d", r);

        /* guest-file-open fails: the agent's error */
        snprintf(file, sizeof file, "%s/no-such-dir/f", test_tmpdir());
        r = qga_write_file(q, file, "x", 1, 0600, 5000);
        CHECK(r == -EREMOTEIO, "write into a missing directory: %d", r);

}

static void test_real_qemu_ga(void) {
        const char *ga = find_qemu_ga();
        char sock[PATH_MAX], pidfile[PATH_MAX], statedir[PATH_MAX], logfile[PATH_MAX];
        struct qmp *q = NULL;
        int r;

        if (!ga) {
                /* scripts/run-tests reports this line, and fails the run unless it is allowed */
                printf("SKIP-STEP: test-qmp: the real agent: qemu-ga is not installed (scripts/install-deps)\n");
                return;
        }
        snprintf(sock, sizeof sock, "%s/qga.sock", test_tmpdir());
        snprintf(pidfile, sizeof pidfile, "%s/qga.pid", test_tmpdir());
        snprintf(statedir, sizeof statedir, "%s/qga-state", test_tmpdir());
        snprintf(logfile, sizeof logfile, "%s/qemu-ga.log", test_tmpdir());
        mkdir(statedir, 0700);

        int logfd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        _cleanup_cmd_ struct cmd *c = cmd_new(ga);
        const char *const args[] = { "-m", "unix-listen", "-p", sock, "-f", pidfile, "-t", statedir, NULL };
        cmd_args(c, args);
        if (logfd >= 0) {
                cmd_map_fd(c, 1, logfd);
                cmd_map_fd(c, 2, logfd);
        }
        cmd_die_with_parent(c);
        pid_t pid = cmd_run_async(c);
        if (logfd >= 0)
                close(logfd);
        if (pid < 0) {
                CHECK(false, "cannot start %s: %s", ga, strerror((int) -pid));
                return;
        }

        r = qga_connect_retry(sock, 10000, &q);
        if (r < 0) {
                char *log = read_text_file(logfile);
                CHECK(false, "%s as a host process does not answer (%s); its log:\n%s", ga, strerror(-r), log ? log : "");
                free(log);
                goto out;
        }

        real_agent_checks(q);

        /* A second client after the first went away synchronises again. */
        qmp_close(q);
        q = NULL;
        r = qga_connect_retry(sock, 10000, &q);
        CHECK(r == 0, "reconnect: %s", strerror(-r));
        if (r == 0)
                CHECK(qga_ping(q, 5000) == 0, "ping after reconnect");

out:
        qmp_close(q);
        kill(pid, SIGTERM);
        if (wait_pid_timeout(pid, 5000) == -ETIMEDOUT) {
                kill(pid, SIGKILL);
                wait_pid_timeout(pid, 5000);
        }
}

/* The call transport (libvirt's virDomainQemuAgentCommand and virDomainQemuMonitorCommand take
 * one request text and give back one reply text): the same qga_exec over it, no "id" in the
 * requests (libvirt refuses them), the peer's error text handed through, data freed at close. */
struct call_log {
        int calls, freed;
        bool saw_id;
        char last[256];
};

static int fake_call(void *data, const char *request, int timeout_ms, char **ret_reply, char **ret_error) {
        struct call_log *l = data;
        l->calls++;
        snprintf(l->last, sizeof l->last, "%s", request);
        if (strstr(request, "\"id\""))
                l->saw_id = true;
        CHECK(timeout_ms > 0, "a timeout is passed on (%d)", timeout_ms);
        const char *reply = NULL;
        if (strstr(request, "\"guest-exec-status\""))
                reply = "{\"return\": {\"exited\": true, \"exitcode\": 3, \"out-data\": \"aGk=\"}}";
        else if (strstr(request, "\"guest-exec\""))
                reply = strstr(request, "/nonexistent") ? NULL : "{\"return\": {\"pid\": 7}}";
        else if (strstr(request, "\"guest-ping\""))
                reply = "{\"return\": {}}";
        else if (strstr(request, "\"qom-get\""))
                reply = "{\"return\": true, \"id\": \"libvirt-12\"}";
        else if (strstr(request, "\"broken\""))
                reply = "{\"return\": ";
        if (!reply && strstr(request, "/nonexistent")) {
                *ret_error = strdup("Guest agent command failed, error was 'Failed to execute child process “/nonexistent” (No such file or directory)'");
                return -EREMOTEIO;
        }
        if (!reply)
                return -ETIMEDOUT;
        *ret_reply = strdup(reply);
        return 0;
}

static void fake_free(void *data) {
        ((struct call_log *) data)->freed++;
}

static void test_call_transport(void) {
        struct call_log l = { 0 };
        struct qmp *q = NULL;
        struct qga_exec_result res = { 0 };
        json_object *ret = NULL;
        char *error = NULL;

        CHECK(qmp_new_call("fame-x-node01", true, fake_call, &l, fake_free, &q) == 0, "qmp_new_call");
        CHECK(qga_ping(q, 1000) == 0, "guest-ping over the call transport");
        CHECK(qga_exec(q, (const char *const[]) { "/bin/sh", "-c", "exit 3", NULL }, NULL, 0, 5000, &res) == 0, "qga_exec");
        CHECK(res.exit_code == 3 && res.out_len == 2 && memcmp(res.out, "hi", 2) == 0, "exit 3 and stdout 'hi' (got %d, %zu bytes)",
              res.exit_code, res.out_len);
        qga_exec_result_done(&res);
        CHECK(qga_exec(q, (const char *const[]) { "/nonexistent", NULL }, NULL, 0, 5000, &res) == -EREMOTEIO, "the agent's error");
        _cleanup_free_ char *why = qga_error_reason(res.error);
        CHECK(why && strcmp(why, "No such file or directory") == 0, "its reason: %s", why ? why : "(null)");
        qga_exec_result_done(&res);
        CHECK(qmp_execute(q, "qom-get", NULL, 1000, &ret, NULL) == 0 && ret && json_object_get_boolean(ret), "a reply with libvirt's own id");
        json_object_put(ret);
        CHECK(qmp_execute(q, "broken", NULL, 1000, NULL, &error) == -EBADMSG, "a reply that is not JSON");
        CHECK(qmp_execute(q, "silent", NULL, 1000, NULL, &error) == -ETIMEDOUT && !error, "the transport's -ETIMEDOUT");
        CHECK(!l.saw_id, "no request carried an id (last: %s)", l.last);
        CHECK(l.calls >= 6, "%d calls", l.calls);
        qmp_close(q);
        CHECK(l.freed == 1, "the transport's data is freed at close");
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);       /* the fake server must survive a client that left */

        test_base64();
        test_call_transport();
        test_error_reason();
        test_connect_errors();

        test_qmp_session(false);
        test_qmp_session(true);
        test_qmp_events();
        test_connect_fails("qmp-no-greeting.txt", 2000, -EPROTO, 0, 1000);
        test_connect_fails("qmp-garbage.txt", 2000, -EPROTO, 0, 1000);
        test_connect_fails("qmp-silent.txt", 300, -ETIMEDOUT, 295, 300 + SLACK_MS);
        test_query_fails("qmp-close-mid-reply.txt", 5000, -ECONNRESET, 0, 1000);
        test_query_fails("qmp-no-answer.txt", 300, -ETIMEDOUT, 295, 300 + SLACK_MS);
        test_query_fails("qmp-bad-json.txt", 5000, -EBADMSG, 0, 1000);

        test_qga_session();
        test_qga_stale();
        test_connect_fails("qga-no-agent.txt", 300, -ETIMEDOUT, 295, 300 + SLACK_MS);
        test_qga_exec_timeout();

        test_real_qemu_ga();

        return test_exit();
}
