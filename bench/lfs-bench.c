/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sequential bandwidth of a file under /lfs, in a node: write(2) and read(2) (through FUSE
 * into FAM), then stores and loads through mmap (libfame-mmap.so maps FAM itself), against
 * the same copies into and out of the node's own RAM, in the same run.  Prints MB/s and
 * ratios.  An ordinary dynamic program (bench/bench-lfs.sh copies it into a node).
 *   lfs-bench FILE [SIZE_MIB] [ROUNDS]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double best(double a, double b) {
        return a > b ? a : b;
}

int main(int argc, char **argv) {
        if (argc < 2) {
                fprintf(stderr, "usage: lfs-bench FILE [SIZE_MIB] [ROUNDS]\n");
                return 2;
        }
        size_t size = (size_t) (argc > 2 ? atol(argv[2]) : 64) << 20, chunk = 1 << 20;
        int rounds = argc > 3 ? atoi(argv[3]) : 3;
        char *src = malloc(size), *dst = malloc(size), *buf = malloc(chunk), *other = malloc(size);
        if (!src || !dst || !buf || !other)
                return 1;
        memset(other, 0, size);
        for (size_t i = 0; i < size; i++)
                src[i] = (char) (i * 7);
        memset(dst, 0, size);
        int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t) size) < 0) {
                perror(argv[1]);
                return 1;
        }
        double w = 0, r = 0, mw = 0, mr = 0, ramw = 0, ramr = 0;
        for (int k = 0; k < rounds; k++) {
                double t = now();
                for (size_t o = 0; o < size; o += chunk)
                        if (pwrite(fd, src + o, chunk, (off_t) o) != (ssize_t) chunk) {
                                perror("pwrite");
                                return 1;
                        }
                w = best(w, (double) size / (now() - t));
                t = now();
                for (size_t o = 0; o < size; o += chunk)
                        if (pread(fd, buf, chunk, (off_t) o) != (ssize_t) chunk) {
                                perror("pread");
                                return 1;
                        }
                r = best(r, (double) size / (now() - t));
                char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (m == MAP_FAILED) {
                        perror("mmap");
                        return 1;
                }
                t = now();
                memcpy(m, src, size);
                mw = best(mw, (double) size / (now() - t));
                t = now();
                memcpy(dst, m, size);
                mr = best(mr, (double) size / (now() - t));
                munmap(m, size);
                if (memcmp(dst, src, size) != 0) {
                        fprintf(stderr, "mmap read back differs\n");
                        return 1;
                }
                t = now();
                memcpy(dst, src, size);
                ramw = best(ramw, (double) size / (now() - t));
                t = now();
                memcpy(other, dst, size);
                ramr = best(ramr, (double) size / (now() - t));
        }
        close(fd);
        unlink(argv[1]);
        printf("%-28s %10s %10s\n", "sequential, best of rounds", "MB/s", "vs RAM");
        printf("%-28s %10.0f %9.2fx\n", "write(2), 1 MiB", w / 1e6, w / ramw);
        printf("%-28s %10.0f %9.2fx\n", "read(2), 1 MiB", r / 1e6, r / ramr);
        printf("%-28s %10.0f %9.2fx\n", "mmap stores (memcpy)", mw / 1e6, mw / ramw);
        printf("%-28s %10.0f %9.2fx\n", "mmap loads (memcpy)", mr / 1e6, mr / ramr);
        printf("%-28s %10.0f %9s\n", "RAM stores (baseline)", ramw / 1e6, "1.00x");
        printf("%-28s %10.0f %9s\n", "RAM loads (baseline)", ramr / 1e6, "1.00x");
        return 0;
}
