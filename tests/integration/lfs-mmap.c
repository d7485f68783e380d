/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An ordinary program that uses mmap(MAP_SHARED) on a file (no FAM/E library): under /lfs in a
 * node, libfame-mmap.so (preloaded) must make the mapping FAM itself.
 *   lfs-mmap write FILE OFFSET TEXT   map the file (growing it to OFFSET+len if needed), store TEXT
 *   lfs-mmap read FILE OFFSET LEN     map the file, print LEN bytes at OFFSET
 *   lfs-mmap add FILE OFFSET COUNT    COUNT atomic fetch-adds of 1 on the 64-bit word at OFFSET,
 *                                     then print its value
 *   lfs-mmap fsx FILE SEED OPS        fsx-style: OPS random pwrite/pread/ftruncate/mmap reads
 *                                     checked against a model in memory; prints "fsx ok"
 *   lfs-mmap as UID PROGRAM ARGS...   runs PROGRAM as uid and gid UID (a diskless node's busybox
 *                                     has no su)
 */
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fsx(const char *file, unsigned seed, long ops) {
        enum { MAX = 20 << 20, MAXIO = 1 << 20 };
        unsigned char *model = calloc(1, MAX), *buf = malloc(MAXIO);
        size_t len = 0;
        int fd = open(file, O_CREAT | O_RDWR | O_TRUNC, 0644);
        if (fd < 0 || !model || !buf) {
                perror(file);
                return 1;
        }
        srand(seed);
        for (long op = 0; op < ops; op++) {
                int kind = rand() % 10;
                size_t off = (size_t) rand() % (MAX - MAXIO), n = (size_t) rand() % MAXIO + 1;
                if (kind < 4) {
                        for (size_t i = 0; i < n; i++)
                                buf[i] = (unsigned char) rand();
                        if (pwrite(fd, buf, n, (off_t) off) != (ssize_t) n) {
                                fprintf(stderr, "op %ld: pwrite %zu@%zu failed\n", op, n, off);
                                return 1;
                        }
                        memcpy(model + off, buf, n);
                        if (off + n > len)
                                len = off + n;
                } else if (kind < 7) {
                        ssize_t got = pread(fd, buf, n, (off_t) off);
                        size_t want = off >= len ? 0 : (off + n > len ? len - off : n);
                        if (got != (ssize_t) want || memcmp(buf, model + off, want) != 0) {
                                fprintf(stderr, "op %ld: pread %zu@%zu: %zd bytes, %zu wanted or different\n", op, n, off, got, want);
                                return 1;
                        }
                } else if (kind < 9) {
                        size_t nl = (size_t) rand() % MAX;
                        if (ftruncate(fd, (off_t) nl) < 0) {
                                fprintf(stderr, "op %ld: ftruncate %zu failed\n", op, nl);
                                return 1;
                        }
                        if (nl < len)
                                memset(model + nl, 0, len - nl);
                        len = nl;
                } else if (len) {
                        /* the whole file through a fresh mapping */
                        char *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
                        if (m == MAP_FAILED || memcmp(m, model, len) != 0) {
                                fprintf(stderr, "op %ld: mmap of %zu bytes %s\n", op, len, m == MAP_FAILED ? "failed" : "differs");
                                return 1;
                        }
                        munmap(m, len);
                }
        }
        close(fd);
        unlink(file);
        printf("fsx ok: %ld operations, seed %u\n", ops, seed);
        return 0;
}

int main(int argc, char **argv) {
        if (argc >= 4 && strcmp(argv[1], "as") == 0) {
                uid_t id = (uid_t) strtoul(argv[2], NULL, 10);
                if (setgroups(0, NULL) < 0 || setgid(id) < 0 || setuid(id) < 0) {
                        perror("lfs-mmap as");
                        return 2;
                }
                execvp(argv[3], argv + 3);
                perror(argv[3]);
                return 127;
        }
        if (argc == 5 && strcmp(argv[1], "fsx") == 0)
                return fsx(argv[2], (unsigned) strtoul(argv[3], NULL, 0), atol(argv[4]));
        if (argc != 5) {
                fprintf(stderr, "usage: lfs-mmap write|read|add FILE OFFSET ARG\n");
                return 2;
        }
        const char *op = argv[1];
        long off = strtol(argv[3], NULL, 0);
        int fd = open(argv[2], strcmp(op, "read") == 0 ? O_RDONLY : O_RDWR | O_CREAT, 0644);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                perror(argv[2]);
                return 1;
        }
        size_t need = (size_t) off + (strcmp(op, "write") == 0 ? strlen(argv[4]) + 1 :
                                      strcmp(op, "read") == 0 ? (size_t) atol(argv[4]) : 8);
        if ((size_t) st.st_size < need) {
                if (strcmp(op, "read") == 0) {
                        fprintf(stderr, "%s is only %lld bytes\n", argv[2], (long long) st.st_size);
                        return 1;
                }
                if (ftruncate(fd, (off_t) need) < 0) {
                        perror("ftruncate");
                        return 1;
                }
        }
        int prot = strcmp(op, "read") == 0 ? PROT_READ : PROT_READ | PROT_WRITE;
        char *p = mmap(NULL, need, prot, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                perror("mmap");
                return 1;
        }
        if (strcmp(op, "write") == 0)
                memcpy(p + off, argv[4], strlen(argv[4]) + 1);
        else if (strcmp(op, "read") == 0)
                printf("%.*s\n", atoi(argv[4]), p + off);
        else {
                uint64_t *w = (uint64_t *) (p + off);
                for (long i = 0; i < atol(argv[4]); i++)
                        __atomic_add_fetch(w, 1, __ATOMIC_SEQ_CST);
                printf("%llu\n", (unsigned long long) __atomic_load_n(w, __ATOMIC_SEQ_CST));
        }
        munmap(p, need);
        close(fd);
        return 0;
}
