/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The coherence checker's seeded bugs (tests/integration/check.sh, docs/check.md): small FAM
 * programs, each with one classic mistake of non-coherent FAM, and with --correct the same
 * program done right.  They work on a file of /lfs (a shelf, so FAM) mapped with mmap.
 *
 *   seeded producer FILE [--correct]      a message (at 0x40) and a ready flag (at 0x100);
 *                                         the bug: no writeback of either
 *   seeded consumer FILE [--correct]      prints the flag and the message; the bug: no
 *                                         invalidate before reading
 *   seeded half FILE INDEX [--correct]    writes 32 bytes of line 0x200 (half INDEX); the bug:
 *                                         two nodes share the line and write back nothing;
 *                                         --correct: a line of its own (0x240 + 64 × INDEX), written back
 *   seeded counter FILE N [--correct]     N fabric fetch_adds on the counter at 0x300, then
 *                                         prints it; the bug: reads it with a plain load
 *   seeded commit FILE VALUE [--correct]  writes the commit record at 0x400; the bug: no writeback
 *   seeded recover FILE                   prints the commit record's value (after an invalidate)
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fam_atomic.h"
#include "fame.h"

#define SIZE (1u << 20)

static int fd = -1;

static uint8_t *map(const char *path) {
        void *p;

        fd = open(path, O_RDWR | O_CREAT, 0644);
        if (fd < 0 || ftruncate(fd, SIZE) < 0) {
                perror(path);
                exit(1);
        }
        p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                perror("mmap");
                exit(1);
        }
        return p;
}

static void usage(void) {
        fprintf(stderr, "usage: seeded producer|consumer|half|counter|commit|recover FILE [ARG] [--correct]\n");
        exit(2);
}

struct record {
        uint64_t magic, value;
        char note[48];
};

int main(int argc, char **argv) {
        bool correct = argc > 1 && strcmp(argv[argc - 1], "--correct") == 0;
        int args = argc - correct;
        uint8_t *p;

        if (args < 3)
                usage();
        p = map(argv[2]);
        if (strcmp(argv[1], "producer") == 0) {
                static const char msg[] = "a message from the producer, in FAM";
                memcpy(p + 0x40, msg, sizeof msg);
                if (correct)
                        fame_persist(p + 0x40, sizeof msg);     /* the data first */
                *(volatile uint64_t *) (p + 0x100) = 1;
                if (correct)
                        fame_persist(p + 0x100, 8);             /* then the flag */
        } else if (strcmp(argv[1], "consumer") == 0) {
                if (correct)
                        fame_invalidate(p, 0x140);
                printf("flag %" PRIu64 " message '%.40s'\n", *(volatile uint64_t *) (p + 0x100), (const char *) p + 0x40);
        } else if (strcmp(argv[1], "half") == 0 && args == 4) {
                unsigned i = (unsigned) atoi(argv[3]) & 1;
                uint8_t *q = correct ? p + 0x240 + 64 * i : p + 0x200 + 32 * i;
                memset(q, 'a' + (int) i, 32);
                if (correct)
                        fame_persist(q, 32);
        } else if (strcmp(argv[1], "counter") == 0 && args == 4) {
                int64_t *c = (int64_t *) (p + 0x300);
                long n = atol(argv[3]);
                if (fam_atomic_register_region(p, SIZE, fd, 0) < 0) {
                        perror("fam_atomic_register_region");
                        return 1;
                }
                for (long i = 0; i < n; i++)
                        fam_atomic_64_fetch_add(c, 1);
                printf("%" PRId64 "\n", correct ? fam_atomic_64_read(c) : *(volatile int64_t *) c);
        } else if (strcmp(argv[1], "commit") == 0 && args == 4) {
                struct record r = { .magic = 0x434f4d4d4954, .value = strtoull(argv[3], NULL, 0) };
                snprintf(r.note, sizeof r.note, "commit %s", argv[3]);
                memcpy(p + 0x400, &r, sizeof r);
                if (correct)
                        fame_persist(p + 0x400, sizeof r);
        } else if (strcmp(argv[1], "recover") == 0) {
                struct record r;
                fame_invalidate(p + 0x400, sizeof r);
                memcpy(&r, p + 0x400, sizeof r);
                printf("%" PRIu64 "\n", r.magic == 0x434f4d4d4954 ? r.value : 0);
        } else
                usage();
        munmap(p, SIZE);
        close(fd);
        return 0;
}
