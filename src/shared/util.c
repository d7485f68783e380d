/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int parse_size(const char *s, uint64_t *ret) {
        static const char suffixes[] = "KMGTP";
        char *end;
        uint64_t v;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno)
                return -ERANGE;
        if (*end) {
                const char *p = strchr(suffixes, toupper((unsigned char) *end));
                if (!p || !*p)
                        return -EINVAL;
                unsigned shift = 10 * (unsigned) (p - suffixes + 1);
                end++;
                if (strcasecmp(end, "") != 0 && strcasecmp(end, "B") != 0 && strcasecmp(end, "iB") != 0)
                        return -EINVAL;
                if (v > (UINT64_MAX >> shift))
                        return -ERANGE;
                v <<= shift;
        }
        *ret = v;
        return 0;
}

int parse_uint32(const char *s, uint32_t min, uint32_t max, uint32_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

const char *format_bytes(uint64_t v, char *buf, size_t len) {
        static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        unsigned u = 0;
        double d = (double) v;

        while (u + 1 < sizeof units / sizeof units[0] && d >= 1024) {
                d /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, len, "%" PRIu64 " B", v);
        else if (d == (double) (uint64_t) d)
                snprintf(buf, len, "%" PRIu64 " %s", (uint64_t) d, units[u]);
        else
                snprintf(buf, len, "%.1f %s", d, units[u]);
        return buf;
}

const char *format_size_compact(uint64_t v, char *buf, size_t len) {
        static const char *units[] = { "", "K", "M", "G", "T", "P", "E" };
        unsigned u = 0;

        while (u + 1 < sizeof units / sizeof units[0] && v >= 1024 && v % 1024 == 0) {
                v /= 1024;
                u++;
        }
        snprintf(buf, len, "%" PRIu64 "%s", v, units[u]);
        return buf;
}

int write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;
        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += (size_t) k;
                len -= (size_t) k;
        }
        return 0;
}

double now_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int mkdir_p(const char *path, mode_t mode) {
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof buf, "%s", path) >= (int) sizeof buf)
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

char *read_file(const char *path, size_t max, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap + 1);
        while (buf) {
                if (len == cap) {
                        if (cap >= max) {
                                free(buf);
                                buf = NULL;
                                errno = EFBIG;
                                break;
                        }
                        cap = cap * 2 > max ? max : cap * 2;
                        char *nb = realloc(buf, cap + 1);
                        if (!nb) {
                                free(buf);
                                buf = NULL;
                                break;
                        }
                        buf = nb;
                }
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        free(buf);
                        buf = NULL;
                        break;
                }
                if (k == 0) {
                        buf[len] = 0;
                        if (ret_len)
                                *ret_len = len;
                        break;
                }
                len += (size_t) k;
        }
        int e = errno;
        close(fd);
        errno = e;
        return buf;
}

int write_file_atomic(const char *path, mode_t mode, const void *data, size_t len) {
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp)
                return -ENAMETOOLONG;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, data, len);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

static int unlink_suffixed(const char *path, const char *suffix) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s%s", path, suffix) >= (int) sizeof p)
                return -ENAMETOOLONG;
        if (unlink(p) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int sqlite_files_unlink_journal(const char *path) {
        int r = unlink_suffixed(path, "-wal");
        int k = unlink_suffixed(path, "-shm");
        return r < 0 ? r : k;
}

int sqlite_files_rename(const char *from, const char *to) {
        char fw[PATH_MAX], tw[PATH_MAX];
        int r;

        if (snprintf(fw, sizeof fw, "%s-wal", from) >= (int) sizeof fw ||
            snprintf(tw, sizeof tw, "%s-wal", to) >= (int) sizeof tw)
                return -ENAMETOOLONG;
        r = sqlite_files_unlink_journal(to);
        if (r < 0)
                return r;
        if (rename(fw, tw) < 0 && errno != ENOENT)
                return -errno;
        if (rename(from, to) < 0) {
                r = -errno;
                (void) rename(tw, fw);
                return r;
        }
        return unlink_suffixed(from, "-shm");
}

char *vstrf(const char *fmt, va_list ap) {
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                return NULL;
        return s;
}

char *strf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = vstrf(fmt, ap);
        va_end(ap);
        return s;
}

int set_message(char **ret, const char *fmt, ...) {
        va_list ap;
        if (!ret)
                return 0;
        va_start(ap, fmt);
        char *s = vstrf(fmt, ap);
        va_end(ap);
        free(*ret);
        *ret = s;
        return 0;
}

uint64_t fnv1a64(const void *p, uint64_t n) {
        const uint8_t *b = p;
        uint64_t h = 0xcbf29ce484222325ull;
        for (uint64_t i = 0; i < n; i++)
                h = (h ^ b[i]) * 0x100000001b3ull;
        return h;
}

uint64_t xorshift64(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

char *path_dirname(const char *path) {
        const char *slash = strrchr(path, '/');
        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

bool process_cmdline_has(pid_t pid, const char *needle) {
        char path[64], cmdline[16384];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int) pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t k = read(fd, cmdline, sizeof cmdline - 1);
        close(fd);
        if (k <= 0)
                return false;
        for (ssize_t i = 0; i < k; i++)
                if (!cmdline[i])
                        cmdline[i] = ' ';
        cmdline[k] = 0;
        return strstr(cmdline, needle) != NULL;
}

static volatile sig_atomic_t *stop_target;

static void on_stop_signal(int sig) {
        (void) sig;
        if (stop_target)
                *stop_target = 1;
}

void stop_signals_setup(volatile sig_atomic_t *flag, sigset_t *ret_orig) {
        sigset_t block;
        stop_target = flag;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigprocmask(SIG_BLOCK, &block, ret_orig);
        struct sigaction sa = { .sa_handler = on_stop_signal };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

char *qemu_opt_escaped(const char *s) {
        size_t n = strlen(s) + 1;
        for (const char *q = s; *q; q++)
                n += *q == ',';
        char *out = malloc(n), *o = out;
        if (!out)
                return NULL;
        for (; *s; s++) {
                *o++ = *s;
                if (*s == ',')
                        *o++ = ',';
        }
        *o = 0;
        return out;
}
