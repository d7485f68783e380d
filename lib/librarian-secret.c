/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Librarian's secrets (librarian-secret.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "librarian-secret.h"

static bool is_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int librarian_secret_read(const char *path, char out[LIBRARIAN_SECRET_LEN + 1]) {
        char buf[LIBRARIAN_SECRET_LEN + 2];
        size_t len = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);      /* a FIFO here would hang the reader (fw_cfg's raw files are regular) */
                return -EBADMSG;
        }
        while (len < sizeof buf) {
                ssize_t n = read(fd, buf + len, sizeof buf - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = errno;
                        close(fd);
                        return -e;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        close(fd);
        if (len == LIBRARIAN_SECRET_LEN + 1 && buf[LIBRARIAN_SECRET_LEN] == '\n')
                len--;
        if (len != LIBRARIAN_SECRET_LEN)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++)
                if (!is_hex(buf[i]))
                        return -EBADMSG;
        memcpy(out, buf, LIBRARIAN_SECRET_LEN);
        out[LIBRARIAN_SECRET_LEN] = 0;
        return 0;
}

int librarian_secret_ensure(const char *path, char out[LIBRARIAN_SECRET_LEN + 1]) {
        int r = librarian_secret_read(path, out);
        if (r != -ENOENT)
                return r;

        unsigned char raw[LIBRARIAN_SECRET_LEN / 2];
        for (size_t got = 0; got < sizeof raw; ) {
                ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                got += (size_t) n;
        }
        char text[LIBRARIAN_SECRET_LEN + 2];
        for (size_t i = 0; i < sizeof raw; i++)
                snprintf(text + 2 * i, 3, "%02x", raw[i]);
        text[LIBRARIAN_SECRET_LEN] = '\n';
        text[LIBRARIAN_SECRET_LEN + 1] = 0;

        char tmp[4096];
        if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int) getpid()) >= (int) sizeof tmp)
                return -ENAMETOOLONG;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        size_t len = LIBRARIAN_SECRET_LEN + 1;
        ssize_t n = write(fd, text, len);
        r = n == (ssize_t) len && fsync(fd) == 0 ? 0 : (n < 0 || errno ? -errno : -EIO);
        if (close(fd) < 0 && r == 0)
                r = -errno;
        /* link(2) does not replace: when two makers race, both read the winner's */
        if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
                r = -errno;
        unlink(tmp);
        if (r < 0)
                return r;
        return librarian_secret_read(path, out);
}

int librarian_secret_path(const char *dir, uint32_t node_id, char *buf, size_t len) {
        int k = node_id ? snprintf(buf, len, "%s/node-%u.secret", dir, node_id)
                        : snprintf(buf, len, "%s/host.secret", dir);
        return k < 0 || (size_t) k >= len ? -ENAMETOOLONG : 0;
}

bool librarian_secret_equal(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        unsigned char d = la != lb;
        for (size_t i = 0; i < la; i++)
                d |= (unsigned char) (a[i] ^ b[i < lb ? i : 0]);
        return d == 0;
}
