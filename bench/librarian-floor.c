/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The floor under any Librarian on this machine (bench/bench-librarian.sh): what the system
 * calls of a request/reply server cost, with nothing else done.  A server process answers
 * 200-byte requests from CLIENTS threads over loopback TCP (one poll loop, as the Librarian's);
 * with --durable it also writes 4 KiB per request to a file and syncs that file once per round
 * of its loop before replying (the Librarian's gathered WAL write and group sync).  Prints the
 * server's CPU time per request (user + system, /proc/PID/stat), as `fame librarian bench`
 * does.
 *   librarian-floor [--durable] [CLIENTS] [SECONDS] [DIR]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG 200
#define MAX_CLIENTS 64

static uint16_t port;
static double seconds = 3;
static long total;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static int serve(int l, int out) {
        struct pollfd p[MAX_CLIENTS + 1] = { { .fd = l, .events = POLLIN } };
        char buf[4096], page[4096];
        int n = 1, ready[MAX_CLIENTS], one = 1;
        off_t off = 0;

        memset(page, 'w', sizeof page);
        for (;;) {
                if (poll(p, (nfds_t) n, -1) < 0)
                        return 1;
                if (p[0].revents && n <= MAX_CLIENTS) {
                        int c = accept(l, NULL, NULL);
                        if (c >= 0) {
                                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                                p[n++] = (struct pollfd) { .fd = c, .events = POLLIN };
                        }
                }
                int nr = 0;
                for (int i = 1; i < n; i++) {
                        if (!p[i].revents)
                                continue;
                        ssize_t k = recv(p[i].fd, buf, sizeof buf, 0);
                        if (k <= 0) {
                                close(p[i].fd);
                                p[i--] = p[--n];
                                continue;
                        }
                        ready[nr++] = p[i].fd;
                }
                if (out >= 0 && nr) {
                        for (int i = 0; i < nr; i++) {
                                if (pwrite(out, page, sizeof page, off) != (ssize_t) sizeof page)
                                        return 1;
                                off = off + (off_t) sizeof page < (64 << 20) ? off + (off_t) sizeof page : 0;
                        }
                        if (fdatasync(out) < 0)
                                return 1;
                }
                for (int i = 0; i < nr; i++)
                        if (send(ready[i], buf, MSG, MSG_NOSIGNAL) < 0)
                                return 1;
        }
}

static void *client(void *arg) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        char req[MSG], buf[4096];
        int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);
        long k = 0;

        (void) arg;
        memset(req, 'r', sizeof req);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (s < 0 || connect(s, (struct sockaddr *) &sa, sizeof sa) < 0)
                return NULL;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        for (double end = now() + seconds; now() < end; k++) {
                if (send(s, req, sizeof req, MSG_NOSIGNAL) != (ssize_t) sizeof req)
                        break;
                for (size_t got = 0; got < MSG; ) {
                        ssize_t r = recv(s, buf, sizeof buf, 0);
                        if (r <= 0)
                                goto out;
                        got += (size_t) r;
                }
        }
out:
        close(s);
        pthread_mutex_lock(&lock);
        total += k;
        pthread_mutex_unlock(&lock);
        return NULL;
}

static double cpu(pid_t pid) {
        char path[64], b[1024];
        unsigned long u, s;
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        size_t n = fread(b, 1, sizeof b - 1, f);
        fclose(f);
        b[n] = 0;
        const char *p = strrchr(b, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &u, &s) != 2)
                return -1;
        return (double) (u + s) / (double) sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv) {
        bool durable = argc > 1 && strcmp(argv[1], "--durable") == 0;
        int a = durable ? 2 : 1;
        int clients = argc > a ? atoi(argv[a]) : 8;
        seconds = argc > a + 1 ? atof(argv[a + 1]) : 3;
        const char *dir = argc > a + 2 ? argv[a + 2] : "/tmp";
        char path[4096];
        int out = -1;

        if (clients < 1 || clients > MAX_CLIENTS || !(seconds > 0)) {
                fprintf(stderr, "usage: librarian-floor [--durable] [CLIENTS 1-%d] [SECONDS] [DIR]\n", MAX_CLIENTS);
                return 2;
        }
        if (durable) {
                snprintf(path, sizeof path, "%s/librarian-floor.XXXXXX", dir);
                out = mkstemp(path);
                if (out < 0) {
                        fprintf(stderr, "librarian-floor: %s: %s\n", path, strerror(errno));
                        return 1;
                }
                unlink(path);
        }
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t len = sizeof sa;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l < 0 || bind(l, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(l, 64) < 0 ||
            getsockname(l, (struct sockaddr *) &sa, &len) < 0) {
                fprintf(stderr, "librarian-floor: cannot listen on 127.0.0.1: %s\n", strerror(errno));
                return 1;
        }
        port = ntohs(sa.sin_port);
        pid_t pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0)
                _exit(serve(l, out));
        close(l);
        pthread_t t[MAX_CLIENTS];
        double c0 = cpu(pid);
        for (int i = 0; i < clients; i++)
                pthread_create(&t[i], NULL, client, NULL);
        for (int i = 0; i < clients; i++)
                pthread_join(t[i], NULL);
        double c1 = cpu(pid);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        if (total == 0 || c0 < 0 || c1 < 0) {
                fprintf(stderr, "librarian-floor: no request was answered\n");
                return 1;
        }
        printf("%s %d clients: %ld requests/s, server CPU %.1f us/request\n", durable ? "durable" : "plain",
               clients, (long) ((double) total / seconds), (c1 - c0) / (double) total * 1e6);
        return 0;
}
