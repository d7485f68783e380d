/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The agent keeper (agent-keeper.h) in a child process, against a fake QEMU: this test listens on
 * NODE/qga.sock itself, as QEMU's agent chardev does, and plays the guest agent on the one
 * connection it accepts. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "agent-keeper.h"
#include "testlib.h"

static void path_in(char *buf, size_t len, const char *dir, const char *file) {
        snprintf(buf, len, "%s/%s", dir, file);
}

static int listen_unix(const char *path) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        unlink(path);
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 4) < 0)
                return -1;
        return fd;
}

static int connect_unix(const char *path) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof a) < 0)
                return -1;
        return fd;
}

static long ms_since(const struct timespec *t0) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Whether path exists within ms (polled every 10 ms). */
static bool wait_file(const char *path, int ms) {
        struct timespec t0, nap = { 0, 10 * 1000 * 1000 };
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (access(path, F_OK) < 0) {
                if (ms_since(&t0) > ms)
                        return false;
                nanosleep(&nap, NULL);
        }
        return true;
}

/* A connection accepted on lfd within ms, or -1. */
static int accept_within(int lfd, int ms) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        if (poll(&p, 1, ms) <= 0)
                return -1;
        return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Reads until want bytes arrived, EOF, or ms passed; the bytes read (NUL-terminated in buf). */
static size_t read_within(int fd, char *buf, size_t want, int ms, bool *eof) {
        struct timespec t0;
        size_t got = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (eof)
                *eof = false;
        while (got < want) {
                long left = ms - ms_since(&t0);
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (left < 0 || poll(&p, 1, (int) left) <= 0)
                        break;
                ssize_t k = read(fd, buf + got, want - got);
                if (k <= 0) {
                        if (k == 0 && eof)
                                *eof = true;
                        break;
                }
                got += (size_t) k;
        }
        buf[got] = 0;
        return got;
}

static bool send_str(int fd, const char *s) {
        return write(fd, s, strlen(s)) == (ssize_t) strlen(s);
}

/* Whether the peer of fd read everything fd sent, within ms. */
static bool wait_drained(int fd, int ms) {
        struct timespec t0, nap = { 0, 5 * 1000 * 1000 };
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                int queued = -1;
                if (ioctl(fd, SIOCOUTQ, &queued) < 0)
                        return false;
                if (queued == 0)
                        return true;
                if (ms_since(&t0) > ms)
                        return false;
                nanosleep(&nap, NULL);
        }
}

/* One request through the keeper: client c sends req, the agent (up) must get exactly it, its
 * reply must reach c exactly. */
static void round_trip(int c, int up, const char *req, const char *rep, const char *what) {
        char buf[256];
        CHECK(send_str(c, req), "%s: client cannot send", what);
        read_within(up, buf, strlen(req), 5000, NULL);
        CHECK(strcmp(buf, req) == 0, "%s: the agent got '%s', not '%s'", what, buf, req);
        CHECK(send_str(up, rep), "%s: the agent cannot reply", what);
        read_within(c, buf, strlen(rep), 5000, NULL);
        CHECK(strcmp(buf, rep) == 0, "%s: the client got '%s', not '%s'", what, buf, rep);
}

int main(void) {
        char d1[512], d2[512], ready[512], qga[600], sock1[600], sock2[600], buf[256];
        const char *tmp = test_tmpdir();
        bool eof;

        signal(SIGPIPE, SIG_IGN);
        path_in(d1, sizeof d1, tmp, "node01");
        path_in(d2, sizeof d2, tmp, "nodes/node02");   /* the keeper makes it */
        path_in(ready, sizeof ready, tmp, "agents.ready");
        path_in(qga, sizeof qga, d1, "qga.sock");
        path_in(sock1, sizeof sock1, d1, "agent.sock");
        path_in(sock2, sizeof sock2, d2, "agent.sock");
        if (strlen(sock2) >= sizeof ((struct sockaddr_un *) 0)->sun_path)
                SKIP("TMPDIR '%s' is too long for UNIX socket paths", tmp);
        CHECK(mkdir(d1, 0755) == 0, "mkdir %s: %m", d1);
        /* a stale socket file of a keeper that was killed: replaced */
        int stale = listen_unix(sock1);
        CHECK(stale >= 0, "cannot make a stale %s", sock1);
        close(stale);

        int agent = listen_unix(qga);   /* QEMU's agent chardev: server=on */
        CHECK(agent >= 0, "cannot listen on %s", qga);

        pid_t pid = fork();
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                char *dirs[] = { d1, d2, NULL };
                _exit(agent_keeper_run(ready, dirs) < 0 ? 1 : 0);
        }
        CHECK(pid > 0, "fork: %m");
        CHECK(wait_file(ready, 5000), "the keeper did not create %s", ready);
        struct stat st;
        CHECK(stat(sock1, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600,
              "%s: not a socket of mode 0600", sock1);
        CHECK(stat(sock2, &st) == 0 && S_ISSOCK(st.st_mode), "%s: not a socket", sock2);

        /* the keeper connects to the agent on its own, before any client */
        int up = accept_within(agent, 5000);
        CHECK(up >= 0, "the keeper did not connect to %s", qga);

        /* (a) a request reaches the agent, the reply comes back */
        int c1 = connect_unix(sock1);
        CHECK(c1 >= 0, "cannot connect to %s", sock1);
        round_trip(c1, up, "{\"req\":1}", "{\"rep\":1}", "first client");

        /* (c) a second client waits while the first is attached... */
        int c2 = connect_unix(sock1);
        CHECK(c2 >= 0, "a second client cannot connect to %s", sock1);
        CHECK(send_str(c2, "{\"req\":2}"), "second client cannot send");
        CHECK(read_within(up, buf, 1, 300, NULL) == 0, "the agent got '%s' from a client that should wait", buf);
        /* ...and is served once the first leaves, (b) over the same connection to the agent */
        close(c1);
        read_within(up, buf, strlen("{\"req\":2}"), 5000, NULL);
        CHECK(strcmp(buf, "{\"req\":2}") == 0, "after the first client left, the agent got '%s'", buf);
        CHECK(send_str(up, "{\"rep\":2}"), "the agent cannot reply");
        read_within(c2, buf, strlen("{\"rep\":2}"), 5000, NULL);
        CHECK(strcmp(buf, "{\"rep\":2}") == 0, "the second client got '%s'", buf);
        close(c2);
        CHECK(accept_within(agent, 0) < 0, "the keeper connected to the agent a second time");

        /* (d) what the agent says with no client attached is not the next client's */
        CHECK(send_str(up, "{\"late\":\"reply\"}"), "the agent cannot send");
        CHECK(wait_drained(up, 5000), "the keeper did not read the agent's late reply");
        int c3 = connect_unix(sock1);
        CHECK(c3 >= 0, "a third client cannot connect");
        round_trip(c3, up, "{\"req\":3}", "{\"rep\":3}", "client after a late reply");

        /* (e) QEMU restarts: the attached client is closed, the keeper connects again */
        close(up);
        close(agent);
        read_within(c3, buf, 1, 5000, &eof);
        CHECK(eof, "a client attached when the agent went away did not see EOF (got '%s')", buf);
        close(c3);
        agent = listen_unix(qga);
        CHECK(agent >= 0, "cannot listen on %s again", qga);
        up = accept_within(agent, 5000);
        CHECK(up >= 0, "the keeper did not connect to the restarted agent");
        int c4 = connect_unix(sock1);
        CHECK(c4 >= 0, "a client cannot connect after the restart");
        round_trip(c4, up, "{\"req\":4}", "{\"rep\":4}", "client after the restart");
        close(c4);

        /* (f) no agent at all: a client sees EOF at once rather than waiting */
        int c5 = connect_unix(sock2);
        CHECK(c5 >= 0, "cannot connect to %s", sock2);
        CHECK(read_within(c5, buf, 1, 5000, &eof) == 0 && eof, "a client of a node without an agent did not see EOF");
        close(c5);
        /* ...nor when the agent of a node went away for good */
        close(up);
        close(agent);
        unlink(qga);
        int c6 = connect_unix(sock1);
        CHECK(c6 >= 0, "cannot connect to %s", sock1);
        CHECK(read_within(c6, buf, 1, 5000, &eof) == 0 && eof, "a client of a node whose agent is gone did not see EOF");
        close(c6);

        /* SIGTERM: exit 0, the sockets and the ready file removed */
        int status = -1;
        CHECK(kill(pid, SIGTERM) == 0, "kill: %m");
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the keeper did not exit 0 on SIGTERM (status 0x%x)", status);
        CHECK(access(sock1, F_OK) < 0 && access(sock2, F_OK) < 0, "the keeper left its sockets behind");
        CHECK(access(ready, F_OK) < 0, "the keeper left %s behind", ready);
        return test_exit();
}
