/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The coherence checker's seeded bug with libpmem (docs/check.md): seeded.c's producer and
 * consumer, the producer persisting with libpmem as an unmodified PMDK program does.  Its
 * flushes are seen through libfame-pmem.so, which every node preloads (lib/pmem-shim.c).
 *
 *   seeded-pmem producer FILE [--correct]   a message (at 0x40) and a ready flag (at 0x100);
 *                                           the bug: no pmem_persist of either
 *   seeded-pmem consumer FILE [--correct]   prints the flag and the message; the bug: no
 *                                           invalidate before reading (libpmem has none:
 *                                           libfame's fame_invalidate)
 *
 * FILE is a file of /lfs (a shelf, so FAM) mapped with mmap MAP_SHARED (libfame-mmap.so makes
 * it FAM).  libpmem is linked dynamically, or nothing could interpose its calls; libfame
 * statically, as seeded.c does.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <libpmem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fame.h"

#define SIZE (1u << 20)

static void usage(void) {
        fprintf(stderr, "usage: seeded-pmem producer|consumer FILE [--correct]\n");
        exit(2);
}

int main(int argc, char **argv) {
        bool correct = argc > 1 && strcmp(argv[argc - 1], "--correct") == 0;
        int args = argc - correct;
        uint8_t *p;
        int fd;

        if (args != 3)
                usage();
        fd = open(argv[2], O_RDWR | O_CREAT, 0644);
        if (fd < 0 || ftruncate(fd, SIZE) < 0) {
                perror(argv[2]);
                return 1;
        }
        p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                perror("mmap");
                return 1;
        }
        if (strcmp(argv[1], "producer") == 0) {
                static const char msg[] = "a message from the producer, in FAM";
                memcpy(p + 0x40, msg, sizeof msg);
                if (correct)
                        pmem_persist(p + 0x40, sizeof msg);     /* the data first */
                *(volatile uint64_t *) (p + 0x100) = 1;
                if (correct)
                        pmem_persist(p + 0x100, 8);             /* then the flag */
        } else if (strcmp(argv[1], "consumer") == 0) {
                if (correct)
                        fame_invalidate(p, 0x140);
                printf("flag %" PRIu64 " message '%.40s'\n", *(volatile uint64_t *) (p + 0x100), (const char *) p + 0x40);
        } else
                usage();
        munmap(p, SIZE);
        close(fd);
        return 0;
}
