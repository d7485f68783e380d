/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libfame-mmap.so: makes mmap(MAP_SHARED) of a file under /lfs map FAM itself.
 *
 * FUSE cannot hand out the pages of BAR2, so this library, preloaded into every process of a
 * node (/etc/ld.so.preload), replaces such a mapping: it asks fame-lfs for the file's books
 * (extended attribute "user.fame.books": FAM source, book size, file size, the FAM offset of
 * each book), reserves the address range and maps each book's part of it from BAR2 (or from
 * the FAM file on the host) with MAP_FIXED | MAP_SHARED.  Any other mmap goes to the kernel
 * unchanged.  It depends on nothing but the C library and calls the mmap system call
 * directly, so it is safe this early in every process.  docs/lfs.md lists its limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC 0x65735546
#define BOOKS_XATTR "user.fame.books"
#define MAX_BOOKS 65536

#define EXPORT __attribute__((visibility("default")))

static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
        return (void *) syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

/* One open descriptor per FAM source (BAR2 resource2 or the FAM file), kept for the process. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char source_path[256];
static int source_fd = -1;

static int source(const char *path) {
        int fd;
        pthread_mutex_lock(&lock);
        if (source_fd < 0 || strcmp(path, source_path) != 0) {
                fd = open(path, O_RDWR | O_CLOEXEC);
                if (fd >= 0) {
                        if (source_fd >= 0)
                                close(source_fd);
                        source_fd = fd;
                        snprintf(source_path, sizeof source_path, "%s", path);
                }
        }
        fd = strcmp(path, source_path) == 0 ? source_fd : -1;
        pthread_mutex_unlock(&lock);
        return fd;
}

/* 1 and the book table when fd is a file of fame-lfs, 0 when not, -errno on failure. */
static int books_of(int fd, char **ret_text) {
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0 || sf.f_type != FUSE_SUPER_MAGIC)
                return 0;
        ssize_t n = fgetxattr(fd, BOOKS_XATTR, NULL, 0);
        if (n < 0)
                return errno == ENODATA || errno == ENOTSUP ? 0 : -errno;
        char *s = malloc((size_t) n + 1);
        if (!s)
                return -ENOMEM;
        n = fgetxattr(fd, BOOKS_XATTR, s, (size_t) n);
        if (n < 0) {
                int e = errno;
                free(s);
                return -e;
        }
        s[n] = 0;
        if (strncmp(s, "FAMEBOOKS 1 ", 12) != 0) {
                free(s);
                return 0;
        }
        *ret_text = s;
        return 1;
}

static void *fame_map(void *addr, size_t len, int prot, int flags, char *text, off_t off) {
        char src[256];
        uint64_t book, size;
        size_t n;
        int used = 0;

        if (sscanf(text + 12, "%255s %" SCNu64 " %" SCNu64 " %zu %n", src, &book, &size, &n, &used) < 4 || !book ||
            n > MAX_BOOKS || off < 0 || (off & 4095)) {
                errno = EINVAL;
                return MAP_FAILED;
        }
        (void) size;
        uint64_t *books = calloc(n ? n : 1, sizeof *books);
        if (!books) {
                errno = ENOMEM;
                return MAP_FAILED;
        }
        char *p = text + 12 + used;
        for (size_t i = 0; i < n; i++) {
                char *end;
                books[i] = strtoull(p, &end, 10);
                p = end;
        }
        int fd = source(src);
        if (fd < 0) {
                int e = errno;
                free(books);
                errno = e ? e : EACCES;
                return MAP_FAILED;
        }
        /* reserve the whole range; what lies beyond the shelf's books stays inaccessible */
        int rflags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (flags & MAP_FIXED);
        char *base = sys_mmap(addr, len, PROT_NONE, rflags, -1, 0);
        if (base == MAP_FAILED) {
                free(books);
                return MAP_FAILED;
        }
        for (uint64_t x = 0; x < len; ) {
                uint64_t pos = (uint64_t) off + x, i = pos / book, within = pos % book;
                uint64_t chunk = book - within < len - x ? book - within : len - x;
                if (i >= n)
                        break;
                void *m = sys_mmap(base + x, chunk, prot, MAP_SHARED | MAP_FIXED, fd, (off_t) (books[i] + within));
                if (m == MAP_FAILED) {
                        int e = errno;
                        munmap(base, len);
                        free(books);
                        errno = e;
                        return MAP_FAILED;
                }
                x += chunk;
        }
        free(books);
        return base;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
        if (fd >= 0 && (flags & MAP_TYPE) == MAP_SHARED && !(flags & MAP_ANONYMOUS)) {
                char *text = NULL;
                int saved = errno;
                int r = books_of(fd, &text);
                errno = saved;
                if (r < 0) {
                        errno = -r;
                        return MAP_FAILED;
                }
                if (r > 0) {
                        void *m = fame_map(addr, len, prot, flags, text, off);
                        free(text);
                        return m;
                }
        }
        return sys_mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off) {
        return mmap(addr, len, prot, flags, fd, (off_t) off);
}
