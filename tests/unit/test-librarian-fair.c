/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian is fair and bounded under abuse (issue 16, items 8-13; docs/librarian.md,
 * "Limits and fairness"), in-process over real TCP sockets.  The test steps the server itself
 * (server_step) between its clients' moves, so what each poll round did is observed exactly:
 * no sleeps, only conditions polled for with a deadline, and the server's own counters
 * (server_limits_stats).
 *
 *   half-close      a client that sends requests and shuts down its sending side gets every
 *                   reply, then EOF (the replies were lost)
 *   round-robin     one client's pipeline of 200 requests does not go before another's one
 *   backpressure    a client that does not read: the server holds at most about max_output
 *                   of replies for it and stops reading its requests; when it reads, every
 *                   reply arrives (none dropped)
 *   OOB             OOB messages to clients that do not read are dropped and counted, the
 *                   memory held stays bounded
 *   idle            a partial request idle for idle_timeout is closed, an idle connection
 *                   without one is not
 *   per-peer        the connection over max_per_peer reads "Librarian full (N connections
 *                   ...)", and so does the client library
 *   EMFILE          at the descriptor limit the poll loop backs off instead of spinning
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fame.h"
#include "librarian-client.h"
#include "librarian-fixture.h"
#include "macro.h"
#include "server.h"
#include "testlib.h"
#include "util.h"

#define VERSION_REQ "{\"command\": \"version\", \"context\": {\"node_id\": 1, \"uid\": 0, \"gid\": 0, \"pid\": 1, \"seq\": 1}}"
#define DEADLINE 10.0

static struct server *srv;

static int connect_to(uint16_t port, int rcvbuf) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (rcvbuf)
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static struct server_limits limits(void) {
        struct server_limits l;
        server_limits_stats(srv, &l);
        return l;
}

/* Counts top-level objects in what a client reads; remembers the text (up to a point). */
struct reader {
        int fd;
        int objects, depth;
        bool in_str, esc, eof;
        char text[4096];
        size_t len;
};

/* Reads what is there without waiting. */
static void reader_drain(struct reader *r) {
        char buf[65536];
        for (;;) {
                ssize_t n = recv(r->fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0)
                        r->eof = true;
                if (n <= 0)
                        return;
                for (ssize_t i = 0; i < n; i++) {
                        char c = buf[i];
                        if (r->in_str) {
                                if (r->esc)
                                        r->esc = false;
                                else if (c == '\\')
                                        r->esc = true;
                                else if (c == '"')
                                        r->in_str = false;
                        } else if (c == '"')
                                r->in_str = true;
                        else if (c == '{')
                                r->depth++;
                        else if (c == '}' && --r->depth == 0)
                                r->objects++;
                        if (r->len + 1 < sizeof r->text)
                                r->text[r->len++] = c;
                }
                r->text[r->len] = 0;
        }
}

/* Steps the server until cond holds (or the deadline). */
#define STEP_UNTIL(cond) ({                                                     \
        double _end = now_seconds() + DEADLINE;                                 \
        bool _ok;                                                               \
        while (!(_ok = (cond)) && now_seconds() < _end)                         \
                server_step(srv, 20);                                           \
        _ok;                                                                    \
})

static size_t clients_now(void) {
        return limits().clients;
}

static void send_n(int fd, const char *req, int n) {
        size_t len = strlen(req);
        for (int i = 0; i < n; i++)
                CHECK(write_all(fd, req, len) == 0, "send request %d", i);
}

/* Item 13: replies to what a half-closed client sent are written before the close. */
static void test_half_close(uint16_t port) {
        size_t before = clients_now();
        struct reader r = { .fd = connect_to(port, 0) };
        send_n(r.fd, VERSION_REQ, 3);
        shutdown(r.fd, SHUT_WR);
        CHECK(STEP_UNTIL((reader_drain(&r), r.eof)), "half-closed client: no EOF");
        CHECK(r.objects == 3, "half-closed client: %d of 3 replies: %s", r.objects, r.text);
        CHECK(STEP_UNTIL(clients_now() == before), "the half-closed connection stays");
        close(r.fd);
}

/* Item 10: one poll round answers a few of a pipeline and the other client's request. */
static void test_round_robin(uint16_t port) {
        size_t before = clients_now();
        struct reader a = { .fd = connect_to(port, 0) }, b = { .fd = connect_to(port, 0) };
        CHECK(STEP_UNTIL(clients_now() == before + 2), "two clients accepted");
        send_n(a.fd, VERSION_REQ, 200);
        send_n(b.fd, VERSION_REQ, 1);
        server_step(srv, 1000);         /* both are readable: one round */
        reader_drain(&a);
        reader_drain(&b);
        CHECK(b.objects == 1 && a.objects <= 2 * SERVER_REQUESTS_PER_ROUND,
              "one round answered %d of the pipeline and %d of the other client's one request", a.objects, b.objects);
        CHECK(STEP_UNTIL((reader_drain(&a), a.objects == 200)), "the whole pipeline: %d of 200", a.objects);
        close(a.fd);
        close(b.fd);
        CHECK(STEP_UNTIL(clients_now() == before), "closed");
}

/* Item 9: a client that does not read its replies (32 KB each: more than the kernel's socket
 * buffers take). */
static void test_backpressure(uint16_t port, size_t max_output) {
        size_t before = clients_now();
        struct reader a = { .fd = connect_to(port, 0) };
        const size_t value_len = 32768;
        char *set = malloc(value_len + 256);
        CHECK(set, "malloc");
        if (!set)
                return;
        int k = snprintf(set, 256, "{\"command\": \"set_xattr\", \"context\": {\"node_id\": 1, \"uid\": 0, \"gid\": 0, "
                                   "\"pid\": 1, \"seq\": 1}, \"path\": \"/lost+found\", \"xattr\": \"user.big\", \"value\": \"");
        memset(set + k, 'v', value_len);
        strcpy(set + k + value_len, "\"}");
        send_n(a.fd, set, 1);
        CHECK(STEP_UNTIL((reader_drain(&a), a.objects == 1)), "set_xattr answered");
        free(set);

        const char *get = "{\"command\": \"get_xattr\", \"context\": {\"node_id\": 1, \"uid\": 0, \"gid\": 0, \"pid\": 1, "
                          "\"seq\": 2}, \"path\": \"/lost+found\", \"xattr\": \"user.big\"}";
        const int n = 1000;     /* 32 MB of replies */
        size_t len = strlen(get), total = len * (size_t) n, sent = 0;
        char *all = malloc(total);
        CHECK(all, "malloc");
        if (!all)
                return;
        for (int i = 0; i < n; i++)
                memcpy(all + (size_t) i * len, get, len);

        /* send without reading until the server holds max_output for it, then some rounds more */
        double end = now_seconds() + DEADLINE;
        int extra = 50;
        while ((limits().output_held < max_output || extra-- > 0) && now_seconds() < end) {
                ssize_t w = send(a.fd, all + sent, total - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w > 0)
                        sent += (size_t) w;
                server_step(srv, 5);
        }
        struct server_limits l = limits();
        CHECK(l.output_held >= max_output, "the server never held %zu bytes of replies (%zu)", max_output, l.output_held);
        CHECK(l.output_peak < max_output + value_len + 256, "held %zu bytes of replies for one client (cap %zu)",
              l.output_peak, max_output);

        /* now it reads: every reply arrives */
        end = now_seconds() + 3 * DEADLINE;
        a.objects = 0;
        while (a.objects < n && now_seconds() < end) {
                if (sent < total) {
                        ssize_t w = send(a.fd, all + sent, total - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (w > 0)
                                sent += (size_t) w;
                }
                server_step(srv, 5);
                reader_drain(&a);
        }
        CHECK(a.objects == n, "backpressure dropped replies: %d of %d", a.objects, n);
        CHECK(limits().output_peak < max_output + value_len + 256, "peak %zu", limits().output_peak);
        free(all);
        close(a.fd);
        CHECK(STEP_UNTIL(clients_now() == before), "closed");
}

/* Item 9: OOB messages to clients that do not read. */
static void test_oob(uint16_t port, size_t max_output) {
        size_t before = clients_now();
        int idle[5];
        for (size_t i = 0; i < ELEMENTSOF(idle); i++)
                idle[i] = connect_to(port, 4096);
        struct reader w = { .fd = connect_to(port, 0) };
        CHECK(STEP_UNTIL(clients_now() == before + ELEMENTSOF(idle) + 1), "clients accepted");

        size_t msg_len = 8192;
        char *req = malloc(msg_len + 256);
        CHECK(req, "malloc");
        if (!req)
                return;
        int k = snprintf(req, 256, "{\"command\": \"send_OOB\", \"context\": {\"node_id\": 1, \"uid\": 0, \"gid\": 0, "
                                   "\"pid\": 1, \"seq\": 1}, \"msg\": \"");
        memset(req + k, 'm', msg_len);
        strcpy(req + k + msg_len, "\"}");
        const int n = 200;      /* 1.6 MB to each of 5 clients that read nothing */
        for (int i = 0; i < n; i++) {
                CHECK(write_all(w.fd, req, strlen(req)) == 0, "send OOB");
                CHECK(STEP_UNTIL((reader_drain(&w), w.objects == i + 1)), "OOB %d answered", i);
        }
        struct server_limits l = limits();
        CHECK(l.oob_dropped > 0, "no OOB message was dropped");
        CHECK(l.output_held <= ELEMENTSOF(idle) * max_output, "held %zu bytes for %zu clients that do not read",
              l.output_held, ELEMENTSOF(idle));
        free(req);
        for (size_t i = 0; i < ELEMENTSOF(idle); i++)
                close(idle[i]);
        close(w.fd);
        CHECK(STEP_UNTIL(clients_now() == before), "closed");
}

/* Item 8: the idle timeout of a partial request. */
static void test_idle(uint16_t port) {
        size_t before = clients_now();
        uint64_t closed = limits().idle_closed;
        struct reader p = { .fd = connect_to(port, 0) }, q = { .fd = connect_to(port, 0) };
        CHECK(STEP_UNTIL(clients_now() == before + 2), "clients accepted");
        CHECK(write_all(p.fd, "{\"command\": \"vers", 17) == 0, "send partial");
        CHECK(STEP_UNTIL((reader_drain(&p), p.eof)), "a partial request idle past the timeout was not closed");
        CHECK(limits().idle_closed == closed + 1, "idle_closed %llu", (unsigned long long) (limits().idle_closed - closed));
        /* q, idle without a partial request, still works */
        send_n(q.fd, VERSION_REQ, 1);
        CHECK(STEP_UNTIL((reader_drain(&q), q.objects == 1)), "the idle connection without a partial request");
        close(p.fd);
        close(q.fd);
        CHECK(STEP_UNTIL(clients_now() == before), "closed");
}

static volatile int stop;
static void *serve(void *userdata) {
        (void) userdata;
        while (!stop)
                server_step(srv, 20);
        return NULL;
}

/* Item 8: the per-peer limit and the reply that says so. */
static void test_per_peer(uint16_t port, unsigned max_per_peer) {
        size_t before = clients_now();
        int fds[8];
        CHECK(max_per_peer <= ELEMENTSOF(fds), "test set-up");
        for (unsigned i = 0; i < max_per_peer; i++)
                fds[i] = connect_to(port, 0);
        CHECK(STEP_UNTIL(clients_now() == before + max_per_peer), "clients accepted");
        struct reader x = { .fd = connect_to(port, 0) };
        CHECK(STEP_UNTIL((reader_drain(&x), x.eof)), "the connection over the limit stays");
        char want[128];
        snprintf(want, sizeof want, "{\"errmsg\": \"Librarian full (%u connections from 127.0.0.1 to port %u): ",
                 max_per_peer, port);
        CHECK(x.objects == 1 && strncmp(x.text, want, strlen(want)) == 0, "refused: %s", x.text);
        close(x.fd);

        /* the client library says it too */
        pthread_t th;
        stop = 0;
        pthread_create(&th, NULL, serve, NULL);
        char address[64];
        snprintf(address, sizeof address, "127.0.0.1:%u", port);
        struct fame_librarian *lib = NULL;
        int r = fame_librarian_connect(address, &lib);
        if (r >= 0) {
                r = librarian_call(lib, LIBRARIAN_CMD_version, NULL, NULL);
                CHECK(r == -EUSERS && strncmp(fame_librarian_error(lib), "Librarian full (", 16) == 0,
                      "client library: %s (%s)", fame_librarian_error(lib), strerror(-r));
                fame_librarian_disconnect(lib);
        } else
                CHECK(0, "connect: %s", strerror(-r));
        stop = 1;
        pthread_join(th, NULL);
        for (unsigned i = 0; i < max_per_peer; i++)
                close(fds[i]);
        CHECK(STEP_UNTIL(clients_now() == before), "closed");
}

/* Item 11: at the descriptor limit the loop backs off. */
static void test_emfile(uint16_t port) {
        struct rlimit saved, rl;
        int fds[3], n = 0, maxfd = 0;

        getrlimit(RLIMIT_NOFILE, &saved);
        for (int fd = 0; fd < 4096; fd++)
                if (fcntl(fd, F_GETFD) >= 0)
                        maxfd = fd;
        rl = saved;
        rl.rlim_cur = (rlim_t) maxfd + 1 + 4;
        CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %m");
        /* fill the table (its holes too), then three clients take the last descriptors: their
         * connections wait in the backlog, the server has none left to accept them */
        int filler[512], nf = 0;
        while (nf < (int) ELEMENTSOF(filler)) {
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        break;
                filler[nf++] = fd;
        }
        CHECK(nf >= 3 && nf < (int) ELEMENTSOF(filler), "%d descriptors free at the limit", nf);
        for (int i = 0; i < 3 && nf > 0; i++)
                close(filler[--nf]);
        while (n < 3) {
                int fd = connect_to(port, 0);
                if (fd < 0)
                        break;
                fds[n++] = fd;
        }
        for (int i = 0; i < 4; i++)
                server_step(srv, 20);
        uint64_t rounds = limits().rounds;
        double end = now_seconds() + 0.5;
        while (now_seconds() < end)
                server_step(srv, 1000);
        struct server_limits l = limits();
        CHECK(n == 3 && l.accept_backoffs > 0, "accept never failed (%d clients)", n);
        CHECK(l.rounds - rounds < 50, "%llu poll rounds in 0.5 s at EMFILE: spinning",
              (unsigned long long) (l.rounds - rounds));
        for (int i = 0; i < nf; i++)
                close(filler[i]);
        setrlimit(RLIMIT_NOFILE, &saved);
        /* then they are served */
        struct reader r = { .fd = n > 0 ? fds[n - 1] : -1 };
        send_n(r.fd, VERSION_REQ, 1);
        CHECK(STEP_UNTIL((reader_drain(&r), r.objects == 1)), "a client of the backlog was not served");
        for (int i = 0; i < n; i++)
                close(fds[i]);
}

int main(void) {
        char fam[512], db[512], *err = NULL;
        struct fame_geometry geo;

        if (librarian_fixture(UINT64_C(1) << 28, 2, fam, sizeof fam, db, sizeof db, &geo) < 0)
                return test_exit();
        struct server_options o = { .db_path = db, .port = 0, .trust_clients = true, .idle_timeout = 0.3, .max_output = 16384,
                                    .max_per_peer = 8 };
        CHECK(server_new(&o, &srv, &err) == 0 && server_start(srv, &err) == 0, "server: %s", err ? err : "");
        free(err);
        if (test_failures)
                return test_exit();
        uint16_t port = server_port(srv);
        test_half_close(port);
        test_round_robin(port);
        test_backpressure(port, o.max_output);
        test_oob(port, o.max_output);
        test_idle(port);
        test_per_peer(port, o.max_per_peer);
        test_emfile(port);
        server_free(srv);
        return test_exit();
}
