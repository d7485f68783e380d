/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An ordinary program that uses mmap(MAP_SHARED) on a file (no FAM/E library): under /lfs in a
 * node, libfame-mmap.so (preloaded) must make the mapping FAM itself.
 *   lfs-mmap write FILE OFFSET TEXT   map the file (growing it to OFFSET+len if needed), store TEXT
 *   lfs-mmap read FILE OFFSET LEN     map the file, print LEN bytes at OFFSET
 *   lfs-mmap add FILE OFFSET COUNT    COUNT atomic fetch-adds of 1 on the 64-bit word at OFFSET,
 *                                     then print its value
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
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
