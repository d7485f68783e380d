/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The private segment's switch (real UNIX datagram sockets, the switch in a child process), the
 * guestfwd relay (real TCP on loopback), the seed's tar writer (read back by GNU tar) and the
 * host mirror lookup (apt source files in both formats). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "net.h"
#include "seed.h"
#include "spawn.h"
#include "testlib.h"

static int bind_dgram(const char *path) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        unlink(path);
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) < 0)
                return -1;
        return fd;
}

static void send_frame(int fd, const char *sw, const unsigned char dst[6], const unsigned char src[6], const char *payload) {
        unsigned char f[64] = { 0 };
        struct sockaddr_un to = { .sun_family = AF_UNIX };
        snprintf(to.sun_path, sizeof to.sun_path, "%s", sw);
        memcpy(f, dst, 6);
        memcpy(f + 6, src, 6);
        f[12] = 0x88;
        f[13] = 0xb5;   /* local experimental ethertype */
        snprintf((char *) f + 14, sizeof f - 14, "%s", payload);
        (void) sendto(fd, f, sizeof f, 0, (struct sockaddr *) &to, sizeof to);
}

/* The payload of the next frame on fd within ms, or "" when none arrived. */
static const char *recv_frame(int fd, int ms, char *buf, size_t len) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        unsigned char f[128];
        *buf = 0;
        if (poll(&p, 1, ms) <= 0)
                return buf;
        ssize_t k = recv(fd, f, sizeof f, 0);
        if (k >= 14)
                snprintf(buf, len, "%.*s", (int) (k - 14), (char *) f + 14);
        return buf;
}

static void test_switch(void) {
        const char *dir = test_tmpdir();
        char sw[256], port[3][256], buf[64];
        int fd[3];
        snprintf(sw, sizeof sw, "%s/switch.sock", dir);
        for (int i = 0; i < 3; i++) {
                snprintf(port[i], sizeof port[i], "%s/node%d.sock", dir, i + 1);
                fd[i] = bind_dgram(port[i]);
                CHECK(fd[i] >= 0, "bind %s: %m", port[i]);
        }
        char *ports[] = { port[0], port[1], port[2], NULL };
        int sfd = netswitch_bind(sw);
        CHECK(sfd >= 0, "netswitch_bind");
        pid_t pid = fork();
        if (pid == 0) {
                static volatile sig_atomic_t never;
                _exit(netswitch_serve(sfd, ports, &never, NULL) < 0);
        }
        close(sfd);
        int stranger = bind_dgram(strcat(strcpy(buf, dir), "/x.sock"));

        static const unsigned char bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        unsigned char mac[3][6] = { { 0x52, 0x54, 0, 0xfb, 0, 1 }, { 0x52, 0x54, 0, 0xfb, 0, 2 }, { 0x52, 0x54, 0, 0xfb, 0, 3 } };

        /* broadcast from node1 reaches node2 and node3, not node1 */
        send_frame(fd[0], sw, bcast, mac[0], "arp1");
        CHECK(strcmp(recv_frame(fd[1], 2000, buf, sizeof buf), "arp1") == 0, "node2 got '%s'", buf);
        CHECK(strcmp(recv_frame(fd[2], 2000, buf, sizeof buf), "arp1") == 0, "node3 got '%s'", buf);
        CHECK(strcmp(recv_frame(fd[0], 100, buf, sizeof buf), "") == 0, "node1 got its own frame back: '%s'", buf);
        /* unknown unicast is flooded; once node2 has spoken, unicast goes to it only */
        send_frame(fd[0], sw, mac[1], mac[0], "flood");
        CHECK(strcmp(recv_frame(fd[1], 2000, buf, sizeof buf), "flood") == 0, "node2 flood '%s'", buf);
        CHECK(strcmp(recv_frame(fd[2], 2000, buf, sizeof buf), "flood") == 0, "node3 flood '%s'", buf);
        send_frame(fd[1], sw, mac[0], mac[1], "reply");
        CHECK(strcmp(recv_frame(fd[0], 2000, buf, sizeof buf), "reply") == 0, "node1 reply '%s'", buf);
        CHECK(strcmp(recv_frame(fd[2], 100, buf, sizeof buf), "") == 0, "node3 saw a unicast reply for node1: '%s'", buf);
        send_frame(fd[0], sw, mac[1], mac[0], "direct");
        CHECK(strcmp(recv_frame(fd[1], 2000, buf, sizeof buf), "direct") == 0, "node2 direct '%s'", buf);
        CHECK(strcmp(recv_frame(fd[2], 100, buf, sizeof buf), "") == 0, "node3 saw a learned unicast: '%s'", buf);
        /* a socket that is not a port is ignored; a stopped node does not stop the switch */
        send_frame(stranger, sw, bcast, mac[2], "intruder");
        CHECK(strcmp(recv_frame(fd[0], 200, buf, sizeof buf), "") == 0, "a stranger's frame was forwarded: '%s'", buf);
        close(fd[2]);
        unlink(port[2]);
        send_frame(fd[0], sw, bcast, mac[0], "after");
        CHECK(strcmp(recv_frame(fd[1], 2000, buf, sizeof buf), "after") == 0, "node2 after node3 went away: '%s'", buf);

        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(fd[0]);
        close(fd[1]);
        close(stranger);
}

static void test_relay(void) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        socklen_t len = sizeof a;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(ls >= 0 && bind(ls, (struct sockaddr *) &a, sizeof a) == 0 && listen(ls, 1) == 0 &&
              getsockname(ls, (struct sockaddr *) &a, &len) == 0, "listen: %m");
        int in[2], out[2];
        CHECK(pipe(in) == 0 && pipe(out) == 0, "pipe");
        pid_t pid = fork();
        if (pid == 0) {
                close(in[1]);
                close(out[0]);
                _exit(tcp_relay(ntohs(a.sin_port), in[0], out[1]) < 0);
        }
        close(in[0]);
        close(out[1]);
        int c = accept(ls, NULL, NULL);
        CHECK(c >= 0, "accept: %m");
        CHECK(write(in[1], "ping", 4) == 4, "write");
        close(in[1]);   /* EOF on the node side: the relay half-closes */
        char buf[16] = "";
        ssize_t k = read(c, buf, sizeof buf - 1);
        CHECK(k == 4 && memcmp(buf, "ping", 4) == 0, "server got '%.*s'", (int) (k > 0 ? k : 0), buf);
        k = read(c, buf, sizeof buf);
        CHECK(k == 0, "server did not see EOF (k=%zd)", k);
        CHECK(write(c, "pong", 4) == 4, "write");
        close(c);
        k = read(out[0], buf, sizeof buf - 1);
        CHECK(k == 4 && memcmp(buf, "pong", 4) == 0, "node got '%.*s'", (int) (k > 0 ? k : 0), buf);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "relay exit status %d", status);
        close(out[0]);
        close(ls);
        /* nobody listening: an error, not a hang */
        pid = fork();
        if (pid == 0)
                _exit(tcp_relay(1, STDIN_FILENO, STDOUT_FILENO) < 0 ? 3 : 0);
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3, "relay to a closed port: status %d", status);
}

static void test_tar(void) {
        const char *dir = test_tmpdir();
        char path[512], outdir[512];
        snprintf(path, sizeof path, "%s/seed.tar", dir);
        snprintf(outdir, sizeof outdir, "%s/x", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char big[1500];
        memset(big, 'b', sizeof big);
        CHECK(tar_add(fd, "node.env", 0644, "A=1\n", 4) == 0, "add");
        CHECK(tar_add(fd, "network/", 0755, NULL, 0) == 0, "dir");
        CHECK(tar_add(fd, "network/big", 0600, big, sizeof big) == 0, "big");
        CHECK(tar_add(fd, "empty", 0644, "", 0) == 0, "empty");
        char longname[120];
        memset(longname, 'n', sizeof longname - 1);
        longname[sizeof longname - 1] = 0;
        CHECK(tar_add(fd, longname, 0644, "x", 1) == -ENAMETOOLONG, "long name refused");
        CHECK(tar_end(fd) == 0, "end");
        close(fd);
        mkdir(outdir, 0755);
        struct cmd *c = cmd_new("tar");
        cmd_args(c, (const char *const[]) { "-x", "-f", path, "-C", outdir, NULL });
        CHECK(cmd_run(c, NULL) == 0, "GNU tar cannot read our archive");
        cmd_free(c);
        struct stat st;
        snprintf(path, sizeof path, "%s/network/big", outdir);
        CHECK(stat(path, &st) == 0 && st.st_size == 1500 && (st.st_mode & 0777) == 0600, "big: size %lld mode %o",
              (long long) st.st_size, st.st_mode & 0777);
        snprintf(path, sizeof path, "%s/empty", outdir);
        CHECK(stat(path, &st) == 0 && st.st_size == 0, "empty");
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        fputs(text, f);
        fclose(f);
}

static void test_mirror(void) {
        const char *dir = test_tmpdir();
        char apt[512], p[600];
        snprintf(apt, sizeof apt, "%s/apt", dir);
        snprintf(p, sizeof p, "%s/sources.list.d", apt);
        mkdir(apt, 0755);
        mkdir(p, 0755);
        /* deb822: the stanza that serves the release wins over earlier ones */
        snprintf(p, sizeof p, "%s/sources.list.d/debian.sources", apt);
        write_text(p, "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n"
                      "# comment\nTypes: deb deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
                      "Components: main\n");
        char *m = image_debian_host_mirror("bookworm", apt);
        CHECK(m && strcmp(m, "http://mirror.example/debian") == 0, "deb822: %s", m);
        free(m);
        m = image_debian_host_mirror("trixie", apt);
        CHECK(m && strcmp(m, "http://mirror.example/debian") == 0, "another release: the /debian mirror: %s", m);
        free(m);
        unlink(p);
        /* one-line format with options */
        snprintf(p, sizeof p, "%s/sources.list", apt);
        write_text(p, "# x\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://old.example/debian bookworm main\n");
        m = image_debian_host_mirror("bookworm", apt);
        CHECK(m && strcmp(m, "http://old.example/debian") == 0, "sources.list: %s", m);
        free(m);
        unlink(p);
        m = image_debian_host_mirror("bookworm", apt);
        CHECK(m && strcmp(m, "http://deb.debian.org/debian") == 0, "no sources: %s", m);
        free(m);
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        test_switch();
        test_relay();
        test_tar();
        test_mirror();
        return test_exit();
}
