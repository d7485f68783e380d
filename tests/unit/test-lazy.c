/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FAME_OPEN_LAZY on a 16 GiB sparse FAM file: fame_open() maps the head only, fame_map_range()
 * and fame_book() map books at first use, the bytes are those a full mapping shows, and threads
 * racing to map the same books get the same addresses.  How much is mapped is read from
 * /proc/self/maps (the mappings of the FAM file), as a node's page tables follow it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fam_atomic.h"
#include "fame.h"
#include "testlib.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define BOOK (8 * MiB)
#define THREADS 8
#define THREAD_BOOKS 64

static char path[PATH_MAX];

/* Bytes of this process's mappings of the FAM file. */
static uint64_t mapped_bytes(void) {
        struct stat st;
        char line[PATH_MAX + 256];
        uint64_t total = 0;

        if (stat(path, &st) < 0)
                return UINT64_MAX;
        FILE *f = fopen("/proc/self/maps", "re");
        if (!f)
                return UINT64_MAX;
        while (fgets(line, sizeof line, f)) {
                unsigned long long start, end, inode;
                if (sscanf(line, "%llx-%llx %*s %*s %*s %llu", &start, &end, &inode) == 3 && inode == st.st_ino &&
                    strstr(line, path))
                        total += end - start;
        }
        fclose(f);
        return total;
}

struct worker {
        struct fame *fam;
        unsigned seed;
        uintptr_t base;                 /* pointer - offset, the same for every lookup */
        unsigned bad;
};

static void *work(void *arg) {
        struct worker *w = arg;
        uint64_t s = w->seed;

        w->base = 0;
        for (unsigned k = 0; k < 2000; k++) {
                s = s * 6364136223846793005u + 1442695040888963407u;
                uint64_t book = 1 + (s >> 33) % THREAD_BOOKS;        /* unit 1..64: books 0..63 */
                uint64_t off = book * BOOK + ((s >> 13) % (BOOK / 8)) * 8;
                uint64_t *p;
                if (fame_map_range(w->fam, off, 16, (void **) &p) < 0) {
                        w->bad++;
                        continue;
                }
                if (w->base == 0)
                        w->base = (uintptr_t) p - off;
                if ((uintptr_t) p - off != w->base)
                        w->bad++;
                /* each book starts with its number, written through the full mapping */
                uint64_t *head = (uint64_t *) ((uint8_t *) p - (off - book * BOOK));
                if (*head != book)
                        w->bad++;
        }
        return NULL;
}

int main(void) {
        struct fame *full = NULL, *lazy = NULL;
        struct fame_create_params cp = { .total_size = 16 * GiB, .book_size = BOOK, .node_count = 4, .created = 0 };
        void *p;
        int r;

        test_capture_log();
        unsetenv("FAME_NODE");
        unsetenv("FAME_PATH");
        snprintf(path, sizeof path, "%s/big.fam", test_tmpdir());
        r = fame_file_create(path, &cp, 0, NULL);
        if (r < 0)
                SKIP("cannot create a sparse 16 GiB FAM file in %s: %s", test_tmpdir(), strerror(-r));

        CHECK(fame_open(path, FAME_OPEN_LAZY, &lazy) == 0, "lazy open: %s", test_last_log());
        if (!lazy)
                return test_exit();
        const struct fame_geometry *g = fame_get_geometry(lazy);
        uint64_t head = mapped_bytes();
        CHECK(head > 0 && head <= MiB, "a lazy open maps the head only, not %" PRIu64 " bytes", head);
        CHECK(fame_base(lazy) == NULL, "fame_base() of a lazy handle is NULL");
        CHECK(fame_size(lazy) == 16 * GiB && g->book_size == BOOK && g->book_area_offset == BOOK, "geometry");

        /* the slots work at once (and the registered range takes atomics) */
        struct fame_slot_header *h = fame_slot(lazy, 4);
        CHECK(h != NULL, "slot 4");
        fam_atomic_64_write((int64_t *) &h->heartbeat_ns, 42);
        CHECK(mapped_bytes() == head, "slots are in the head");

        /* a full mapping of the same file: the same bytes at the same offsets */
        CHECK(fame_open(path, FAME_OPEN_NOREGISTER, &full) == 0, "full open: %s", test_last_log());
        if (!full)
                return test_exit();
        uint8_t *fb = fame_base(full);
        CHECK(fb != NULL && memcmp(fb, "FAME-FAM", 8) == 0, "full mapping");
        CHECK(((struct fame_slot_header *) fame_slot(full, 4))->heartbeat_ns == 42, "slot write seen by the full mapping");
        uint64_t before_full = mapped_bytes();

        static const struct { uint64_t off, len; } ranges[] = {
                { 0x100000, 4096 },                             /* unit 0 beyond the head */
                { 3 * BOOK - 100, 200 },                        /* across books 1 and 2 */
                { 1000 * BOOK + 12345, 64 },                    /* one book in the middle */
                { 16 * GiB - 64, 64 },                          /* the last bytes */
        };
        for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
                for (uint64_t k = 0; k < ranges[i].len; k++)
                        fb[ranges[i].off + k] = (uint8_t) (k * 7 + i);
                CHECK(fame_map_range(lazy, ranges[i].off, ranges[i].len, &p) == 0, "range %zu: %s", i, test_last_log());
                CHECK(p && memcmp(p, fb + ranges[i].off, ranges[i].len) == 0, "range %zu: the full mapping's bytes", i);
                if (p)
                        memset(p, 0xa5, 8);
                CHECK(fb[ranges[i].off] == 0xa5, "range %zu: a lazy store seen by the full mapping", i);
        }
        /* unit 0's rest after the head, units 2 and 3, 1000 and the last */
        uint64_t after = mapped_bytes() - before_full;
        CHECK(after == 5 * BOOK - head, "mapped %" PRIu64 " bytes, expected 5 units of %" PRIu64, after, BOOK);

        /* fame_book: the same address as fame_map_range */
        uint8_t *b = fame_book(lazy, 1, 7);
        int64_t boff = fame_geometry_book_offset(g, 1, 7);
        CHECK(b && fame_map_range(lazy, (uint64_t) boff, 1, &p) == 0 && p == b, "fame_book on a lazy handle");

        /* errors */
        test_clear_log();
        CHECK(fame_map_range(lazy, 16 * GiB - 8, 16, &p) == -ERANGE && strstr(test_last_log(), "outside"),
              "past the end: %s", test_last_log());
        CHECK(fame_map_range(lazy, UINT64_MAX, 2, &p) == -ERANGE, "wrapping offset");
        CHECK(fame_map_range(NULL, 0, 1, &p) == -EINVAL, "NULL handle");

        /* threads: each book's first word is its number; lookups race to map books 0..63 */
        for (uint64_t u = 1; u <= THREAD_BOOKS; u++)
                *(uint64_t *) (fb + u * BOOK) = u;
        uint64_t start = mapped_bytes();
        pthread_t t[THREADS];
        struct worker w[THREADS];
        for (unsigned i = 0; i < THREADS; i++) {
                w[i] = (struct worker) { .fam = lazy, .seed = i + 1 };
                CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0, "thread %u", i);
        }
        for (unsigned i = 0; i < THREADS; i++) {
                pthread_join(t[i], NULL);
                CHECK(w[i].bad == 0, "thread %u: %u bad lookups", i, w[i].bad);
                CHECK(w[i].base == w[0].base, "thread %u sees FAM at another address", i);
        }
        /* units 2 and 3 were mapped before: at most 62 more */
        CHECK(mapped_bytes() - start <= (THREAD_BOOKS - 2) * BOOK, "threads mapped %" PRIu64 " bytes",
              mapped_bytes() - start);
        CHECK(mapped_bytes() - before_full < 1 * GiB, "far less than the whole FAM mapped");

        /* read-only lazy handles map read-only */
        struct fame *ro = NULL;
        CHECK(fame_open(path, FAME_OPEN_RDONLY | FAME_OPEN_LAZY, &ro) == 0, "read-only lazy open");
        CHECK(ro && fame_map_range(ro, 1000 * BOOK + 12345, 8, &p) == 0 && *(uint8_t *) p == 0xa5, "read-only lookup");
        fame_close(ro);

        fame_close(lazy);
        fame_close(full);
        CHECK(mapped_bytes() == 0, "fame_close() unmaps everything");
        unlink(path);
        return test_exit();
}
