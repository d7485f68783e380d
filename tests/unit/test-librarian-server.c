/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian server over real TCP sockets, in-process (server_step() in a thread): the
 * unframed JSON stream (several requests in one segment, one request split across reads,
 * malformed input and resynchronisation, non-object values), the exact bytes of replies and
 * OOB broadcasts, node-pinned ports, and open handles dropped with their connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "fame.h"
#include "server.h"
#include "librarian-fixture.h"
#include "testlib.h"
#include "topology.h"
#include "util.h"

#define streq(a, b) (strcmp((a), (b)) == 0)

static struct server *srv;
static volatile int stop;

static void *serve(void *userdata) {
        (void) userdata;
        while (!stop)
                server_step(srv, 50);
        return NULL;
}

static int connect_to(uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                CHECK(0, "connect to %u: %m", port);
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

static void send_str(int fd, const char *s) {
        CHECK(write_all(fd, s, strlen(s)) == 0, "send");
}

/* Reads until `want` complete top-level objects arrived (or 10 s); returns the bytes. */
static char *read_objects(int fd, int want) {
        static char buf[1 << 16];
        size_t len = 0;
        int depth = 0, done = 0;
        bool in_str = false, esc = false;
        double deadline = now_seconds() + 10;

        while (done < want && now_seconds() < deadline) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
                if (n <= 0)
                        break;
                for (ssize_t i = 0; i < n; i++) {
                        char c = buf[len + (size_t) i];
                        if (in_str) {
                                if (esc)
                                        esc = false;
                                else if (c == '\\')
                                        esc = true;
                                else if (c == '"')
                                        in_str = false;
                        } else if (c == '"')
                                in_str = true;
                        else if (c == '{')
                                depth++;
                        else if (c == '}' && --depth == 0)
                                done++;
                }
                len += (size_t) n;
        }
        buf[len] = 0;
        CHECK(done == want, "wanted %d objects, got %d: %s", want, done, buf);
        return buf;
}

#define CTX(node, seq) "{\"node_id\": " #node ", \"uid\": 0, \"gid\": 0, \"pid\": 1, \"seq\": " #seq "}"

static void test_stream(uint16_t port) {
        int fd = connect_to(port), other = connect_to(port);
        char *r;

        /* three requests in one segment: three replies, in order, nothing between them */
        send_str(fd, "{\"command\": \"version\", \"context\": " CTX(1, 1) "}"
                     "{\"command\": \"version\", \"context\": " CTX(1, 2) "}"
                     "{\"command\": \"frob\", \"context\": " CTX(1, 3) "}");
        r = read_objects(fd, 3);
        CHECK(streq(r, "{\"value\": \"LIBRARIAN 0.997\", \"context\": {\"node_id\": 1, \"uid\": 0, \"gid\": 0, \"pid\": 1, \"seq\": 1}}"
                       "{\"value\": \"LIBRARIAN 0.997\", \"context\": {\"node_id\": 1, \"uid\": 0, \"gid\": 0, \"pid\": 1, \"seq\": 2}}"
                       "{\"errmsg\": \"engine failed lookup on \\\"'frob'\\\"\", \"errno\": 38}"),
              "concatenated replies, exact bytes: %s", r);

        /* one request split across reads: the first half is consumed in a round that answers
         * the other connection, then the rest follows */
        send_str(fd, "{\"command\": \"get_shelf\", \"conte");
        send_str(other, "{\"command\": \"version\", \"context\": " CTX(2, 9) "}");
        read_objects(other, 1);
        send_str(fd, "xt\": " CTX(1, 4) ", \"path\": \"/lost+found\"}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"name\": \"lost+found\"") && strstr(r, "\"seq\": 4"), "split request: %s", r);

        /* malformed, then resynchronisation at "}{"; values that are not objects are dropped */
        send_str(fd, "{\"command\": nonsense}{\"command\": \"version\", \"context\": " CTX(1, 5) "}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"seq\": 5}}"), "resync after malformed input: %s", r);
        send_str(fd, "[1, 2]\"x\"{\"command\": \"version\", \"context\": " CTX(1, 6) "}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"seq\": 6}}"), "non-objects skipped: %s", r);
        send_str(fd, "  \n{\"command\": \"version\", \"context\": " CTX(1, 7) "}\n");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"seq\": 7}}") && !strchr(r, '\n'), "white space skipped, no newline sent: %s", r);

        /* an unknown node: an error without context */
        send_str(fd, "{\"command\": \"version\", \"context\": {\"node_id\": 77, \"seq\": 8}}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "\"errno\": 13}") && !strstr(r, "context"), "unknown node: %s", r);

        /* non-ASCII is sent as \u escapes */
        send_str(fd, "{\"command\": \"set_xattr\", \"context\": " CTX(1, 10) ", \"path\": \"/lost+found\", \"xattr\": \"user.x\","
                     " \"value\": \"h\\u00e9\\ud83d\\ude00\"}{\"command\": \"get_xattr\", \"context\": " CTX(1, 11) ","
                     " \"path\": \"/lost+found\", \"xattr\": \"user.x\"}");
        r = read_objects(fd, 2);
        CHECK(strstr(r, "{\"value\": {\"value\": \"h\\u00e9\\ud83d\\ude00\"}"), "ASCII-only encoding: %s", r);
        for (const char *p = r; *p; p++)
                CHECK((unsigned char) *p < 0x80, "non-ASCII byte in a reply");

        /* out-of-band: the sender gets its node id, every other client the message */
        send_str(fd, "{\"command\": \"send_OOB\", \"context\": " CTX(1, 12) ", \"msg\": {\"text\": \"hi\"}}");
        r = read_objects(fd, 1);
        CHECK(strstr(r, "{\"value\": {\"value\": 1}"), "send_OOB reply: %s", r);
        r = read_objects(other, 1);
        CHECK(streq(r, "{\"OOBmsg\": {\"text\": \"hi\"}}"), "OOB broadcast: %s", r);
        close(fd);
        close(other);
}

static void test_pinned(uint16_t pin_port) {
        int fd = connect_to(pin_port);
        send_str(fd, "{\"command\": \"version\", \"context\": " CTX(3, 1) "}{\"command\": \"version\", \"context\": " CTX(2, 2) "}");
        char *r = read_objects(fd, 2);
        CHECK(strstr(r, "\"errno\": 13}") && strstr(r, "belongs to node 2") && strstr(r, "\"seq\": 2}}"),
              "node port of node 2: %s", r);
        close(fd);
}

static void test_handles(uint16_t port) {
        int a = connect_to(port), b = connect_to(port);
        send_str(a, "{\"command\": \"create_shelf\", \"context\": " CTX(1, 1) ", \"path\": \"/held\", \"mode\": 0}");
        char *r = read_objects(a, 1);
        CHECK(strstr(r, "\"open_handle\": "), "open: %s", r);
        send_str(b, "{\"command\": \"destroy_shelf\", \"context\": " CTX(1, 1) ", \"path\": \"/held\"}");
        r = read_objects(b, 1);
        CHECK(strstr(r, "\"errno\": 16}"), "open elsewhere: EBUSY: %s", r);
        close(a);
        /* the server notices the closed connection and drops its handle */
        bool gone = false;
        for (double deadline = now_seconds() + 10; !gone && now_seconds() < deadline; ) {
                send_str(b, "{\"command\": \"destroy_shelf\", \"context\": " CTX(1, 2) ", \"path\": \"/held\"}");
                r = read_objects(b, 1);
                gone = strstr(r, "\"value\": ") != NULL;
        }
        CHECK(gone, "the handle went with its connection");
        close(b);
}

int main(void) {
        char fam[512], db[512], *err = NULL;
        struct fame_geometry geo;
        pthread_t th;

        if (librarian_fixture(UINT64_C(1) << 30, 4, fam, sizeof fam, db, sizeof db, &geo) < 0)
                return test_exit();
        struct server_options o = { .db_path = db, .fam_path = fam, .port = 0, .n_pins = 1 };
        o.pins[0].node_id = 2;
        o.pins[0].port = 0;
        CHECK(server_new(&o, &srv, &err) == 0 && server_start(srv, &err) == 0, "server: %s", err ? err : "");
        free(err);
        if (test_failures)
                return test_exit();
        pthread_create(&th, NULL, serve, NULL);
        test_stream(server_port(srv));
        test_pinned(server_pin_port(srv, 0));
        test_handles(server_port(srv));
        stop = 1;
        pthread_join(th, NULL);
        server_free(srv);
        return test_exit();
}
