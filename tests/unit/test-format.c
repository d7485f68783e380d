/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* On-FAM format: geometry, header encode/validate, FAM files (create, inspect, bad files). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "fame.h"
#include "fame-internal.h"
#include "testlib.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static void test_geometry(void) {
        struct fame_geometry g;
        struct fame_create_params p = { .total_size = GiB };

        CHECK(fame_geometry_compute(&p, &g) == 0, "default 1G");
        CHECK(g.book_size == 8 * MiB && g.node_count == 4, "defaults");
        CHECK(g.book_area_offset == 8 * MiB, "book area at one book: %" PRIu64, g.book_area_offset);
        CHECK(g.books_total == 127, "books_total %" PRIu64, g.books_total);
        CHECK(g.books_per_node == 28, "books per node is a multiple of 4: %" PRIu32, g.books_per_node);
        CHECK(g.slots_offset == 4096 && g.slot_count == FAME_MAX_NODES && g.slot_size == 4096, "slots");
        CHECK(g.doorbell_offset == g.slots_offset + (uint64_t) g.slot_count * 4096 && g.librarian_offset == g.doorbell_offset + g.doorbell_size, "regions follow each other");
        CHECK(g.librarian_offset + g.librarian_size <= g.book_area_offset, "metadata fits before the books");
        CHECK(g.meta_offset + g.meta_size == g.book_area_offset, "meta area ends at the book area");
        CHECK(g.enclosure_count == 1 && g.rack_count == 1, "topology");

        /* Small books: the book area starts at 2 MiB. */
        p = (struct fame_create_params) { .total_size = 64 * MiB, .book_size = 2 * MiB, .node_count = 2 };
        CHECK(fame_geometry_compute(&p, &g) == 0 && g.book_area_offset == 2 * MiB && g.books_total == 31 && g.books_per_node == 12,
              "64M/2M/2 nodes: offset %" PRIu64 " total %" PRIu64 " per node %" PRIu32, g.book_area_offset, g.books_total, g.books_per_node);

        /* Topology: 10 nodes per enclosure, 4 enclosures per rack by default. */
        p = (struct fame_create_params) { .total_size = 64 * GiB, .node_count = 80 };
        CHECK(fame_geometry_compute(&p, &g) == 0, "80 nodes");
        CHECK(g.enclosure_count == 8 && g.rack_count == 2, "80 nodes: %u enclosures %u racks", g.enclosure_count, g.rack_count);
        struct fame_coord c;
        CHECK(fame_geometry_coord(&g, 11, &c) == 0 && c.enclosure == 2 && c.node_in_enclosure == 1 && c.rack == 1 && c.interleave_group == 10, "node 11");
        CHECK(fame_geometry_coord(&g, 41, &c) == 0 && c.enclosure == 5 && c.enclosure_in_rack == 1 && c.rack == 2, "node 41");
        CHECK(fame_geometry_coord(&g, 80, &c) == 0 && c.node_in_enclosure == 10 && c.enclosure_in_rack == 4, "node 80");
        CHECK(fame_geometry_coord(&g, 0, &c) == -ERANGE && fame_geometry_coord(&g, 81, &c) == -ERANGE, "out of range nodes");

        /* Book offsets, worked out by hand from docs/fam-format.md ("Book area") for this
         * geometry (64 GiB, 8 MiB books, 80 nodes) and written as literals, so that a wrong
         * formula in lib/format.c fails here instead of being repeated:
         *   book_area_offset = align_up(2 MiB, 8 MiB)                     = 8 MiB
         *   books_total      = (64 GiB - 8 MiB) / 8 MiB = 8192 - 1        = 8191
         *   books_per_node   = 8191 / 80 = 102, down to a multiple of 4    = 100
         *   offset(ig, n)    = 8 MiB + (ig x 100 + n) x 8 MiB
         *   LZA(ig, n)       = ig << 46 | n << 33, with 1 << 46 = 0x400000000000 and
         *                      1 << 33 = 0x200000000 */
        CHECK(g.book_area_offset == 8 * MiB && g.books_total == 8191 && g.books_per_node == 100,
              "64G/8M/80 nodes: offset %" PRIu64 " total %" PRIu64 " per node %" PRIu32, g.book_area_offset, g.books_total, g.books_per_node);
        static const struct { uint32_t ig; uint64_t book, lza; int64_t offset; } books[] = {
                /* 8 MiB + 0 x 8 MiB = 8 MiB: the first book */
                { 0, 0, UINT64_C(0x0), INT64_C(0x800000) },
                /* 99 x 0x200000000 = 0xc600000000; 8 MiB + 99 x 8 MiB = 800 MiB: the last book of IG 0 */
                { 0, 99, UINT64_C(0xc600000000), INT64_C(0x32000000) },
                /* 1 << 46; 8 MiB + (1 x 100 + 0) x 8 MiB = 808 MiB: IG 1 follows IG 0's 100 books */
                { 1, 0, UINT64_C(0x400000000000), INT64_C(0x32800000) },
                /* 7 x 0x400000000000 + 13 x 0x200000000 = 0x1c01a00000000;
                 * 8 MiB + (700 + 13) x 8 MiB = 5712 MiB = 0x1650 x 1 MiB */
                { 7, 13, UINT64_C(0x1c01a00000000), INT64_C(0x165000000) },
                /* 40 x 0x400000000000 + 50 x 0x200000000 = 0xa006400000000;
                 * 8 MiB + (4000 + 50) x 8 MiB = 32408 MiB = 0x7e98 x 1 MiB */
                { 40, 50, UINT64_C(0xa006400000000), INT64_C(0x7e9800000) },
                /* 79 x 0x400000000000 + 99 x 0x200000000 = 0x13c0c600000000;
                 * 8 MiB + (7900 + 99) x 8 MiB = 64000 MiB = 0xfa00 x 1 MiB: the last book */
                { 79, 99, UINT64_C(0x13c0c600000000), INT64_C(0xfa0000000) },
        };
        for (size_t i = 0; i < ELEMENTSOF(books); i++) {
                int64_t off = fame_geometry_book_offset(&g, books[i].ig, books[i].book);
                CHECK(off == books[i].offset, "ig %" PRIu32 " book %" PRIu64 ": offset 0x%" PRIx64 ", expected 0x%" PRIx64,
                      books[i].ig, books[i].book, (uint64_t) off, (uint64_t) books[i].offset);
                CHECK(fame_lza(books[i].ig, books[i].book) == books[i].lza, "LZA of ig %" PRIu32 " book %" PRIu64 ": 0x%" PRIx64,
                      books[i].ig, books[i].book, fame_lza(books[i].ig, books[i].book));
                CHECK(fame_geometry_lza_offset(&g, books[i].lza) == books[i].offset, "offset of LZA 0x%" PRIx64, books[i].lza);
        }
        CHECK(fame_lza(2, 17) == UINT64_C(0x802200000000) && fame_lza(1, 0) == UINT64_C(0x400000000000), "LZA examples of tm-librarian");
        CHECK(fame_geometry_book_offset(&g, 80, 0) == -ERANGE, "ig out of range");
        CHECK(fame_geometry_book_offset(&g, 0, g.books_per_node) == -ERANGE, "book out of range");
        CHECK(fame_geometry_lza_offset(&g, fame_lza(0, 0) | 1) == -ERANGE, "LZA with a book offset");
        uint64_t last_end = (uint64_t) fame_geometry_book_offset(&g, g.node_count - 1, g.books_per_node - 1) + g.book_size;
        CHECK(last_end <= g.total_size, "last book inside FAM");

        /* The same with 2 MiB books, by hand: 64 MiB, 2 nodes; book_area_offset =
         * align_up(2 MiB, 2 MiB) = 2 MiB, books_total = (64 MiB - 2 MiB) / 2 MiB = 31,
         * books_per_node = 31 / 2 = 15, down to a multiple of 4 = 12. */
        p = (struct fame_create_params) { .total_size = 64 * MiB, .book_size = 2 * MiB, .node_count = 2 };
        CHECK(fame_geometry_compute(&p, &g) == 0, "64M/2M/2 nodes");
        /* 2 MiB + (1 x 12 + 0) x 2 MiB = 26 MiB = 0x1a00000: IG 1 starts after IG 0's 12 books */
        CHECK(fame_geometry_book_offset(&g, 1, 0) == INT64_C(0x1a00000), "2M books: ig 1 book 0 at 0x%" PRIx64,
              (uint64_t) fame_geometry_book_offset(&g, 1, 0));
        /* 2 MiB + (1 x 12 + 11) x 2 MiB = 48 MiB = 0x3000000: the last book; it ends at 50 MiB */
        CHECK(fame_geometry_book_offset(&g, 1, 11) == INT64_C(0x3000000), "2M books: ig 1 book 11 at 0x%" PRIx64,
              (uint64_t) fame_geometry_book_offset(&g, 1, 11));
        CHECK(fame_geometry_book_offset(&g, 1, 12) == -ERANGE, "2M books: book 12 of 12 out of range");

        /* Invalid parameters, each with a reason. */
        struct { struct fame_create_params p; const char *needle; } bad[] = {
                { { .total_size = 1000 * MiB }, "not a power of two" },
                { { .total_size = 0 }, "not a power of two" },
                { { .total_size = GiB, .book_size = MiB }, "book size" },
                { { .total_size = GiB, .book_size = 3 * MiB }, "book size" },
                { { .total_size = 64 * GiB, .book_size = 16 * GiB }, "book size" },
                { { .total_size = GiB, .node_count = 257 }, "node count" },
                { { .total_size = 16 * MiB }, "too small" },
                { { .total_size = 64 * MiB, .node_count = 2 }, "too small" },
                { { .total_size = UINT64_C(1) << 40 }, "--book-size 32M" },
                { { .total_size = UINT64_C(1) << 47, .node_count = 1 }, "can address" },
                { { .total_size = GiB, .nodes_per_enclosure = 300 }, "nodes per enclosure" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                test_clear_log();
                CHECK(fame_geometry_compute(&bad[i].p, &g) == -EINVAL, "bad params %zu accepted", i);
                CHECK(strstr(test_last_log(), bad[i].needle), "bad params %zu: message '%s' lacks '%s'", i, test_last_log(), bad[i].needle);
        }
}

static void header_for(struct fame_geometry *g, uint8_t h[FAME_HEADER_SIZE], uint64_t size) {
        struct fame_create_params p = { .total_size = size, .have_uuid = true, .created = 1767225600 };
        memset(p.uuid, 0xab, 16);
        CHECK(fame_geometry_compute(&p, g) == 0, "geometry");
        fame_header_encode(g, h);
}

static void reseal(uint8_t *h) {
        put_le32(h + 0xf8, fame_crc32c(h, 0xf8));
}

static void test_header(void) {
        struct fame_geometry g, back;
        uint8_t h[FAME_HEADER_SIZE], c[FAME_HEADER_SIZE];
        char err[256];

        header_for(&g, h, GiB);
        CHECK(memcmp(h, "FAME-FAM", 8) == 0, "magic");
        CHECK(fame_header_check(h, sizeof h, GiB, &back, err, sizeof err) == 0, "valid header rejected: %s", err);
        CHECK(memcmp(&g, &back, sizeof g) == 0, "decode(encode(g)) == g");

        /* Known CRC-32C check value ("123456789" -> 0xE3069283). */
        CHECK(fame_crc32c("123456789", 9) == 0xe3069283, "crc32c check value");

        /* Every single-bit flip in the checked bytes is caught. */
        unsigned missed = 0;
        for (unsigned i = 0; i < 0xfc; i++)
                for (unsigned bit = 0; bit < 8; bit++) {
                        memcpy(c, h, sizeof c);
                        c[i] ^= (uint8_t) (1u << bit);
                        if (fame_header_check(c, sizeof c, GiB, NULL, err, sizeof err) == 0)
                                missed++;
                }
        CHECK(missed == 0, "%u bit flips not detected", missed);

        memcpy(c, h, sizeof c);
        c[0xf9] ^= 1;
        CHECK(fame_header_check(c, sizeof c, GiB, NULL, err, sizeof err) == -EBADMSG && strstr(err, "checksum"), "checksum: %s", err);

        memcpy(c, h, sizeof c);
        put_le32(c + 0x08, 2);
        reseal(c);
        CHECK(fame_header_check(c, sizeof c, GiB, NULL, err, sizeof err) == -EPROTONOSUPPORT && strstr(err, "version 2.0"), "version: %s", err);

        memcpy(c, h, sizeof c);
        put_le32(c + 0x0c, 7);          /* a newer minor version is readable */
        reseal(c);
        CHECK(fame_header_check(c, sizeof c, GiB, &back, err, sizeof err) == 0 && back.version_minor == 7, "minor version: %s", err);

        CHECK(fame_header_check(h, sizeof h, GiB / 2, NULL, err, sizeof err) == -EBADMSG && strstr(err, "truncated"), "truncated: %s", err);
        CHECK(fame_header_check(h, sizeof h, 2 * GiB, NULL, err, sizeof err) == -EBADMSG && strstr(err, "header says"), "too long: %s", err);
        CHECK(fame_header_check(h, 100, GiB, NULL, err, sizeof err) == -EINVAL && strstr(err, "shorter"), "short buffer: %s", err);

        memset(c, 0, sizeof c);
        CHECK(fame_header_check(c, sizeof c, GiB, NULL, err, sizeof err) == -EBADMSG && strstr(err, "no FAM header"), "zero: %s", err);
        memset(c, 'x', sizeof c);
        CHECK(fame_header_check(c, sizeof c, GiB, NULL, err, sizeof err) == -EBADMSG && strstr(err, "magic"), "garbage: %s", err);

        /* Derived fields must match what the parameters give, even with a valid checksum. */
        memcpy(c, h, sizeof c);
        put_le64(c + 0x38, 4 * MiB);
        reseal(c);
        CHECK(fame_header_check(c, sizeof c, GiB, NULL, err, sizeof err) == -EBADMSG && strstr(err, "book area offset"), "inconsistent: %s", err);
        memcpy(c, h, sizeof c);
        put_le32(c + 0x48, 0);
        reseal(c);
        CHECK(fame_header_check(c, sizeof c, GiB, NULL, err, sizeof err) == -EBADMSG, "zero nodes: %s", err);
        memcpy(c, h, sizeof c);
        put_le64(c + 0x20, 3 * MiB);
        reseal(c);
        CHECK(fame_header_check(c, sizeof c, GiB, NULL, err, sizeof err) == -EBADMSG && strstr(err, "book size"), "bad book size: %s", err);

        /* Non-power-of-two region whose header claims the same size. */
        memcpy(c, h, sizeof c);
        put_le64(c + 0x18, GiB + 4096);
        reseal(c);
        CHECK(fame_header_check(c, sizeof c, GiB + 4096, NULL, err, sizeof err) == -EBADMSG && strstr(err, "power of two"), "npot: %s", err);
}

static void uuid_roundtrip(void) {
        uint8_t u[16], v[16];
        char s[37];
        for (int i = 0; i < 16; i++)
                u[i] = (uint8_t) (i * 17 + 3);
        fame_uuid_format(u, s);
        CHECK(fame_uuid_parse(s, v) == 0 && memcmp(u, v, 16) == 0, "uuid roundtrip %s", s);
        CHECK(fame_uuid_parse("not-a-uuid", v) < 0 && fame_uuid_parse("0123456789abcdef0123456789abcdef0123", v) < 0, "bad uuids");
}

/* Size and CRC of a whole file, to prove a failed operation left it unchanged. */
static uint64_t file_fingerprint(const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t buf[65536];
        uint64_t fp = 0;
        ssize_t n;
        if (fd < 0)
                return 0;
        while ((n = read(fd, buf, sizeof buf)) > 0)
                fp = fp * 1000003 + fame_crc32c(buf, (size_t) n) + (uint64_t) n;
        close(fd);
        return fp;
}

static unsigned count_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;
        while (d && (de = readdir(d)))
                n += de->d_name[0] != '.';
        if (d)
                closedir(d);
        return n;
}

static void write_file(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && write(fd, data, len) == (ssize_t) len, "write %s", path);
        close(fd);
}

static void test_files(void) {
        char path[PATH_MAX], other[PATH_MAX], bad[PATH_MAX];
        const char *dir = test_tmpdir();
        struct fame_create_params p = { .total_size = 64 * MiB, .book_size = 2 * MiB, .node_count = 2, .created = -1 };
        struct fame_geometry g, g2;
        struct stat st;
        int r;

        snprintf(path, sizeof path, "%s/a.fam", dir);
        setenv("SOURCE_DATE_EPOCH", "1767225600", 1);
        CHECK(fame_file_create(path, &p, 0, &g) == 0, "create: %s", test_last_log());
        unsetenv("SOURCE_DATE_EPOCH");
        CHECK(g.created == 1767225600, "SOURCE_DATE_EPOCH honoured");
        CHECK((g.uuid[6] >> 4) == 4 && (g.uuid[8] >> 6) == 2, "random v4 UUID");
        CHECK(stat(path, &st) == 0 && (uint64_t) st.st_size == 64 * MiB, "size");
        CHECK((uint64_t) st.st_blocks * 512 < 1 * MiB, "sparse: %lld blocks", (long long) st.st_blocks);
        CHECK(count_entries(dir) == 1, "no temporary file left behind");
        CHECK(fame_file_inspect(path, &g2) == 0 && memcmp(&g, &g2, sizeof g) == 0, "inspect == create");

        /* Never replaced without force. */
        uint64_t fp = file_fingerprint(path);
        test_clear_log();
        r = fame_file_create(path, &p, 0, NULL);
        CHECK(r == -EEXIST && strstr(test_last_log(), "valid FAM") && strstr(test_last_log(), "--force"), "refuse: %d %s", r, test_last_log());
        CHECK(file_fingerprint(path) == fp, "unchanged after refusal");
        p.total_size = 128 * MiB;
        CHECK(fame_file_create(path, &p, FAME_CREATE_FORCE, &g2) == 0 && g2.total_size == 128 * MiB, "force replaces");
        CHECK(memcmp(g.uuid, g2.uuid, 16) != 0, "new UUID");

        snprintf(other, sizeof other, "%s/notes.txt", dir);
        write_file(other, "precious", 8);
        test_clear_log();
        CHECK(fame_file_create(other, &p, 0, NULL) == -EEXIST && strstr(test_last_log(), "not empty"), "non-FAM file: %s", test_last_log());
        CHECK(file_fingerprint(other) != 0 && stat(other, &st) == 0 && st.st_size == 8, "non-FAM file untouched");

        snprintf(bad, sizeof bad, "%s/no/such/dir/x.fam", dir);
        CHECK(fame_file_create(bad, &p, 0, NULL) < 0, "missing directory");
        p.total_size = 100 * MiB;
        snprintf(bad, sizeof bad, "%s/npot.fam", dir);
        CHECK(fame_file_create(bad, &p, 0, NULL) == -EINVAL && stat(bad, &st) < 0, "npot: nothing created");

        /* Bad files: one reason each, file unchanged. */
        struct { const char *name; const char *needle; } cases[] = {
                { "empty", "empty" },
                { "truncated", "truncated" },
                { "grown", "header says" },
                { "garbage", "magic" },
                { "version", "version 9.0" },
                { "corrupt", "checksum" },
                { "zero", "no FAM header" },
        };
        uint8_t h[FAME_HEADER_SIZE];
        p = (struct fame_create_params) { .total_size = 64 * MiB, .book_size = 2 * MiB, .node_count = 2, .created = 0, .have_uuid = true };
        fame_geometry_compute(&p, &g);
        fame_header_encode(&g, h);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char f[PATH_MAX];
                uint8_t c[FAME_HEADER_SIZE];
                snprintf(f, sizeof f, "%s/%s.fam", dir, cases[i].name);
                memcpy(c, h, sizeof c);
                int fd = open(f, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                CHECK(fd >= 0, "open");
                if (strcmp(cases[i].name, "empty") == 0) {
                } else if (strcmp(cases[i].name, "truncated") == 0) {
                        CHECK(pwrite(fd, c, sizeof c, 0) == sizeof c && ftruncate(fd, 32 * MiB) == 0, "write");
                } else if (strcmp(cases[i].name, "grown") == 0) {
                        CHECK(pwrite(fd, c, sizeof c, 0) == sizeof c && ftruncate(fd, 64 * MiB + 512) == 0, "write");
                } else if (strcmp(cases[i].name, "garbage") == 0) {
                        memset(c, 0x5a, sizeof c);
                        CHECK(pwrite(fd, c, sizeof c, 0) == sizeof c && ftruncate(fd, 64 * MiB) == 0, "write");
                } else if (strcmp(cases[i].name, "version") == 0) {
                        put_le32(c + 0x08, 9);
                        reseal(c);
                        CHECK(pwrite(fd, c, sizeof c, 0) == sizeof c && ftruncate(fd, 64 * MiB) == 0, "write");
                } else if (strcmp(cases[i].name, "corrupt") == 0) {
                        c[0x40] ^= 0x10;
                        CHECK(pwrite(fd, c, sizeof c, 0) == sizeof c && ftruncate(fd, 64 * MiB) == 0, "write");
                } else {
                        CHECK(ftruncate(fd, 64 * MiB) == 0, "write");
                }
                close(fd);
                fp = file_fingerprint(f);
                test_clear_log();
                r = fame_file_inspect(f, NULL);
                CHECK(r < 0 && strstr(test_last_log(), cases[i].needle) && strstr(test_last_log(), f),
                      "%s: r=%d message '%s' lacks '%s'", cases[i].name, r, test_last_log(), cases[i].needle);
                CHECK(!strchr(test_last_log(), '\n'), "one line");
                CHECK(file_fingerprint(f) == fp, "%s modified by inspect", cases[i].name);
                struct fame *fam = NULL;
                CHECK(fame_open(f, 0, &fam) < 0 && !fam, "%s: fame_open must refuse it", cases[i].name);
                CHECK(file_fingerprint(f) == fp, "%s modified by fame_open", cases[i].name);
        }
        test_clear_log();
        snprintf(bad, sizeof bad, "%s/absent.fam", dir);
        CHECK(fame_file_inspect(bad, NULL) == -ENOENT && strstr(test_last_log(), "fame fam create"), "absent: %s", test_last_log());
}

int main(void) {
        test_capture_log();
        test_geometry();
        test_header();
        uuid_roundtrip();
        test_files();
        return test_exit();
}
