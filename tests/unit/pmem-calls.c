/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An ordinary libpmem program for test-pmem-shim: maps FILE (64 KiB, MAP_SHARED) and calls each
 * of libpmem's persistence entry points once, in the order of test-pmem-shim.c's table, at
 * the offsets and lengths it lists; prints "base 0xADDR" (the mapping) and exits 0 when every
 * call returned what libpmem returns.  It knows nothing of libfame-pmem.so: the test preloads it.
 *
 *   pmem-calls FILE
 */
#include <fcntl.h>
#include <inttypes.h>
#include <libpmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (64u << 10)

static int failures;

static void same(const void *got, const void *want, const char *what) {
        if (got != want) {
                fprintf(stderr, "pmem-calls: %s returned %p, not its destination %p\n", what, got, want);
                failures++;
        }
}

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: pmem-calls FILE\n");
                return 2;
        }
        int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || ftruncate(fd, SIZE) < 0) {
                perror(argv[1]);
                return 1;
        }
        char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                perror("mmap");
                return 1;
        }
        printf("base 0x%" PRIxPTR "\n", (uintptr_t) p);

        memcpy(p, "persist", 7);
        pmem_persist(p, 7);
        memcpy(p + 64, "flush", 5);
        pmem_flush(p + 64, 100);
        pmem_deep_flush(p + 256, 64);
        if (pmem_deep_persist(p + 512, 64) != 0) {
                fprintf(stderr, "pmem-calls: pmem_deep_persist failed: %s\n", pmem_errormsg());
                failures++;
        }
        same(pmem_memcpy_persist(p + 1024, "memcpy_persist", 14), p + 1024, "pmem_memcpy_persist");
        same(pmem_memmove_persist(p + 2048, p + 1024, 14), p + 2048, "pmem_memmove_persist");
        same(pmem_memset_persist(p + 3072, 'a', 300), p + 3072, "pmem_memset_persist");
        same(pmem_memcpy_nodrain(p + 4096, "memcpy_nodrain", 14), p + 4096, "pmem_memcpy_nodrain");
        same(pmem_memmove_nodrain(p + 5120, p + 4096, 14), p + 5120, "pmem_memmove_nodrain");
        same(pmem_memset_nodrain(p + 6144, 'b', 5000), p + 6144, "pmem_memset_nodrain");
        same(pmem_memcpy(p + 12288, "memcpy", 6, 0), p + 12288, "pmem_memcpy");
        same(pmem_memmove(p + 13312, "memmove", 7, PMEM_F_MEM_NODRAIN | PMEM_F_MEM_NONTEMPORAL), p + 13312, "pmem_memmove");
        same(pmem_memset(p + 14336, 'c', 64, PMEM_F_MEM_NOFLUSH | PMEM_F_MEM_NODRAIN), p + 14336, "pmem_memset");
        same(pmem_memcpy(p + 15360, "noflush", 7, PMEM_F_MEM_NOFLUSH), p + 15360, "pmem_memcpy");
        pmem_drain();

        munmap(p, SIZE);
        close(fd);
        return failures ? 1 : 0;
}
