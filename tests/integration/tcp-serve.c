/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A host service for the forward= test: listens on 127.0.0.1 (an ephemeral port, printed on
 * stdout as the first line), and answers every connection with "hello from torms\n". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        socklen_t len = sizeof a;
        static const char msg[] = "hello from torms\n";
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 16) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &len) < 0) {
                perror("tcp-serve");
                return 1;
        }
        printf("%u\n", ntohs(a.sin_port));
        fflush(stdout);
        for (;;) {
                int c = accept(fd, NULL, NULL);
                if (c < 0)
                        continue;
                if (write(c, msg, strlen(msg)) < 0)
                        perror("tcp-serve: write");
                close(c);
        }
}
