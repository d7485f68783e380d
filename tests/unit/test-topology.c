/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Librarian topology (src/topology/): the INI examples of tm-librarian, one test
 * per error rule, TMCF JSON in both service styles, book ids, the FAM offset of a book, and the
 * INI FAM/E writes for a geometry (round trip and golden files under tests/golden/topology). */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fame-config.h"
#include "fame.h"
#include "macro.h"
#include "testlib.h"
#include "topology.h"
#include "util.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)

static int verbose;

static struct topology *parse_ok(const char *name, const char *text) {
        struct topology *t = NULL;
        char *err = NULL;
        int r = topology_parse(text, strlen(text), name, &t, &err);
        CHECK(r == 0 && t, "%s: parse failed: %d %s", name, r, err ? err : "(no message)");
        CHECK(!err, "%s: error message on success: %s", name, err);
        free(err);
        return t;
}

static void expect_error(const char *name, const char *text, size_t len, int want, const char *msg) {
        struct topology *t = (struct topology *) 1;
        char *err = (char *) 1;
        int r = topology_parse(text, len, name, &t, &err);
        CHECK(r == want, "%s: returned %d, want %d (%s)", name, r, want, err && err != (char *) 1 ? err : "");
        CHECK(!t, "%s: a topology despite the error", name);
        CHECK(err && err != (char *) 1, "%s: no error message", name);
        if (!err || err == (char *) 1)
                return;
        CHECK(strstr(err, msg), "%s: message\n  %s\nlacks\n  %s", name, err, msg);
        CHECK(!strchr(err, '\n'), "%s: message has more than one line: %s", name, err);
        CHECK(strncmp(err, name, strlen(name)) == 0 && (err[strlen(name)] == ':'), "%s: message does not name the file: %s", name, err);
        if (verbose)
                fprintf(stderr, "  %s\n", err);
        free(err);
}

/* ---- the INI examples of librarian-model.md §10 ------------------------------------------------ */

static const char fame_4nodes[] =
        "# Emulation/4nodes.ini\n"
        "[global]\n"
        "node_count = 4\n"
        "book_size_bytes = 8M\n"
        "nvm_size_per_node = 512B\n";

static const char fame_frd_max[] =
        "# Maximum configuration for Full Rack Demo (FRD), fall 2016.\n"
        "# 40 nodes, 512 books per node (like real), 8M/book (FAM/E), \n"
        "# 4GB per node, 160G total NVM.\n"
        "\n"
        "[global]\n"
        "node_count = 40\n"
        "book_size_bytes = 8M\n"
        "nvm_size_per_node = 512B\n";

static const char book_max[] =
        "# 80 nodes, 4TB per node, do the math\n"
        "\n"
        "[global]\n"
        "node_count = 80\n"
        "book_size_bytes = 8G\n"
        "nvm_size_per_node = 4T\n";

static const char book_data[] =
        "[global]\n"
        "node_count = 4\n"
        "book_size_bytes = 8G\n"
        "[node01]\n"
        "node_id = 1\n"
        "nvm_size = 512B\n"
        "[node02]\n"
        "node_id = 2\n"
        "nvm_size = 512B\n"
        "[node03]\n"
        "node_id = 3\n"
        "nvm_size = 256B\n"
        "[node04]\n"
        "node_id = 4\n"
        "nvm_size = 256B\n";

static const char ftcbu1[] =
        "# Used during October 2016 in Ft. Collins bringup \"bu\" lab\n"
        "\n"
        "[global]\n"
        "node_count = 2\n"
        "book_size_bytes = 8G\n"
        "Datacenter = FTCfishbowl\n"
        "Rack = buf1\n"
        "Domain = ftcp-bu1.mft.labs.hpecorp.net\n"
        "\n"
        "# The section name is the hostname, arbirtrary or \"nodeXX\" matching node_id\n"
        "[node02]\n"
        "node_id = 2\n"
        "nvm_size = 128B\n"
        "\n"
        "[node08]\n"
        "node_id = 8\n"
        "nvm_size = 128B\n"
        "\n";

static const char sdflex_good[] =
        "# For a 990x or Superdome Flex system.  Nodes are mostly equivalent to \n"
        "# partitions and serve as collections of physical address ranges to FAM.\n"
        "# A node does NOT need to contribute FAM space to participate in a librarian-\n"
        "# based cluster.  Multiple ranges from one node are delineated via standard\n"
        "# INI-file continuation lines (indented after a \"keyword =\" declaration.\n"
        "\n"
        "[global]\n"
        "node_count = 2\n"
        "book_size_bytes = 2M\n"
        "Datacenter = craycray\n"
        "Rack = moose\n"
        "Domain = labs.hpe.com\n"
        "\n"
        "[node01]\n"
        "node_id = 1\n"
        "nvm_size = 88B @ 0xf00000000000\n"
        "           88B @ 0xf00100000000\n"
        "\n"
        "[node04]\n"
        "node_id = 4\n"
        "nvm_size =\n"
        "\t   88B @ 0xf001a0000000\n";

static const char sdflex_bad[] =
        "# For a 990x or Superdome Flex system.  Nodes are mostly equivalent to \n"
        "# partitions and serve as collections of physical address ranges to FAM.\n"
        "# A node does NOT need to contribute FAM space to participate in a librarian-\n"
        "# based cluster.  Multiple ranges from one node are delineated via standard\n"
        "# INI-file continuation lines (indented after a \"keyword =\" declaration.\n"
        "\n"
        "[global]\n"
        "node_count = 2\n"
        "book_size_bytes = 2M\n"
        "Datacenter = craycray\n"
        "Rack = moose\n"
        "Domain = labs.hpe.com\n"
        "\n"
        "[node01]\n"
        "node_id = 1\n"
        "nvm_size = 88B @ 0xf0000000000\n"
        "           88B @ 0xf0010000000\n"
        "\n"
        "[node04]\n"
        "node_id = 4\n"
        "nvm_size =\n"
        "\t   88B @ 0xf001a000000\n";

static void check_books_lza(const char *name, const struct topology *t) {
        struct topology_book *books = NULL;
        size_t n = 0;
        CHECK(topology_books(t, &books, &n) == 0, "%s: topology_books", name);
        CHECK(n == t->books_total, "%s: %zu books listed, books_total %" PRIu64, name, n, t->books_total);
        for (size_t i = 0; i < n; i++) {
                CHECK(books[i].id == fame_lza(books[i].intlv_group, books[i].book_num), "%s: book %zu id 0x%" PRIx64, name, i, books[i].id);
                if (i)
                        CHECK(books[i].id > books[i - 1].id, "%s: book %zu not in id order", name, i);
                /* IG-major and dense: the FAM offsets of the books in id order follow each other */
                uint64_t off = 0;
                CHECK(topology_book_offset(t, 0, books[i].id, &off) == 0 && off == i * t->book_size,
                      "%s: book %zu (0x%" PRIx64 ") at 0x%" PRIx64, name, i, books[i].id, off);
        }
        free(books);
}

static void test_fame_short_form(void) {
        struct topology *t = parse_ok("4nodes.ini", fame_4nodes);
        if (!t)
                return;
        CHECK(t->mode == TOPOLOGY_LZA && t->book_size == 8 * MiB, "mode %d book %" PRIu64, t->mode, t->book_size);
        CHECK(t->n_nodes == 4 && t->books_total == 2048 && t->nvm_bytes_total == 16 * GiB,
              "%zu nodes, %" PRIu64 " books, %" PRIu64 " bytes", t->n_nodes, t->books_total, t->nvm_bytes_total);
        for (size_t i = 0; i < ELEMENTSOF(t->enclosure_u); i++)
                CHECK(!t->enclosure_u[i], "enclosure %zu has a U", i);
        const struct topology_node *n = topology_find_node(t, 3);
        CHECK(n && n == &t->nodes[2], "node 3");
        if (n) {
                CHECK(n->node_id == 3 && n->rack == 1 && n->enc == 1 && n->node == 3, "node 3 place");
                CHECK(strcmp(n->hostname, "node03") == 0, "hostname %s", n->hostname);
                CHECK(strcmp(n->coordinate, "Node/3") == 0, "coordinate %s", n->coordinate);
                CHECK(strcmp(n->serial, "1:1:3") == 0, "serial %s", n->serial);
                CHECK(strcmp(n->mac, "52:54:42:03:03:03") == 0, "mac %s", n->mac);
                CHECK(strcmp(n->soc_coordinate, "SocBoard/1/Soc/1") == 0, "soc %s", n->soc_coordinate);
                CHECK(strcmp(n->tls_certificate, "NotToday") == 0, "tls %s", n->tls_certificate);
                CHECK(n->ig == 2 && n->books == 512 && n->n_mcs == 4 && n->n_ranges == 0, "node 3 ig %u books %" PRIu64, n->ig, n->books);
                for (uint32_t i = 0; i < 4 && n->n_mcs == 4; i++) {
                        char want[64];
                        snprintf(want, sizeof want, "MemoryBoard/1/MediaController/%u", i + 1);
                        CHECK(n->mcs[i].ig == 2 && n->mcs[i].module_size_books == 128 && n->mcs[i].memory_size == GiB,
                              "mc %u sizes", i);
                        CHECK(n->mcs[i].raw_cid == ((2u << 4) | (8 + i)), "mc %u rawCID %" PRIu64, i, n->mcs[i].raw_cid);
                        CHECK(strcmp(n->mcs[i].coordinate, want) == 0, "mc %u coordinate %s", i, n->mcs[i].coordinate);
                }
        }
        CHECK(!topology_find_node(t, 5) && !topology_find_node(t, 0), "no node 5 or 0");

        /* librarian-model.md §3 and §12: IG 2, book 17 */
        struct topology_book *books = NULL;
        size_t nb = 0;
        CHECK(topology_books(t, &books, &nb) == 0 && nb == 2048, "books: %zu", nb);
        if (nb == 2048) {
                CHECK(books[2 * 512 + 17].id == UINT64_C(0x802200000000) && books[2 * 512 + 17].intlv_group == 2 &&
                      books[2 * 512 + 17].book_num == 17, "IG 2 book 17: 0x%" PRIx64, books[2 * 512 + 17].id);
                CHECK(books[512].id == UINT64_C(0x400000000000) && books[512].intlv_group == 1 && books[512].book_num == 0,
                      "IG 1 book 0: 0x%" PRIx64, books[512].id);
                CHECK(books[0].id == 0 && books[2047].id == fame_lza(3, 511), "first and last");
        }
        free(books);
        uint64_t off = 0;
        CHECK(topology_book_offset(t, 0, UINT64_C(0x802200000000), &off) == 0 && off == UINT64_C(0x208800000),
              "§12 example: 0x%" PRIx64, off);
        CHECK(topology_book_offset(t, 8 * MiB, UINT64_C(0x802200000000), &off) == 0 && off == UINT64_C(0x208800000) + 8 * MiB,
              "§12 example shifted by book_area_offset: 0x%" PRIx64, off);
        CHECK(topology_book_offset(t, 0, fame_lza(2, 512), &off) == -EINVAL, "book 512 of IG 2 does not exist");
        CHECK(topology_book_offset(t, 0, fame_lza(4, 0), &off) == -EINVAL, "IG 4 does not exist");
        CHECK(topology_book_offset(t, 0, fame_lza(2, 17) | 1, &off) == -EINVAL, "offset bits set");
        CHECK(topology_book_offset(t, 0, fame_lza(2, 17) | (UINT64_C(1) << 60), &off) == -EINVAL, "reserved bits set");
        check_books_lza("4nodes.ini", t);
        topology_free(t);
}

static void test_frd_max(void) {
        struct topology *t = parse_ok("FAME_FRD_max.ini", fame_frd_max);
        if (!t)
                return;
        CHECK(t->n_nodes == 40 && t->books_total == 40 * 512 && t->nvm_bytes_total == 160 * GiB, "FRD max totals");
        const struct topology_node *n = topology_find_node(t, 40);
        CHECK(n && n->enc == 4 && n->node == 10 && n->ig == 39, "node 40 place");
        if (n) {
                CHECK(strcmp(n->coordinate, "Node/10") == 0 && strcmp(n->serial, "1:4:10") == 0 &&
                      strcmp(n->mac, "52:54:42:40:40:40") == 0 && strcmp(n->hostname, "node40") == 0,
                      "node 40: %s %s %s %s", n->coordinate, n->serial, n->mac, n->hostname);
                CHECK(n->mcs[0].raw_cid == ((3u << 9) | (9u << 4) | 8), "node 40 rawCID %" PRIu64, n->mcs[0].raw_cid);
        }
        n = topology_find_node(t, 11);
        CHECK(n && n->enc == 2 && n->node == 1 && strcmp(n->serial, "1:2:1") == 0 && strcmp(n->coordinate, "Node/1") == 0,
              "node 11 place");
        uint64_t off = 0;
        CHECK(topology_book_offset(t, 0, fame_lza(39, 511), &off) == 0 && off == (40 * 512 - 1) * 8 * MiB, "last book");
        topology_free(t);
}

static void test_book_max(void) {
        struct topology *t = parse_ok("book_max.ini", book_max);
        if (!t)
                return;
        CHECK(t->n_nodes == 80 && t->book_size == 8 * GiB && t->books_total == 80 * 512 && t->nvm_bytes_total == 80 * 4 * TiB,
              "book_max totals: %" PRIu64 " books", t->books_total);
        const struct topology_node *n = topology_find_node(t, 80);
        CHECK(n && n->enc == 8 && n->node == 10 && n->books == 512 && n->mcs[3].memory_size == TiB, "node 80");
        check_books_lza("book_max.ini", t);
        topology_free(t);
}

static void test_book_data(void) {
        struct topology *t = parse_ok("book_data.ini", book_data);
        if (!t)
                return;
        CHECK(t->mode == TOPOLOGY_LZA && t->n_nodes == 4 && t->books_total == 1536 && t->nvm_bytes_total == 1536 * 8 * GiB,
              "book_data totals");
        CHECK(t->nodes[0].books == 512 && t->nodes[2].books == 256 && t->nodes[2].mcs[1].module_size_books == 64 &&
              t->nodes[2].mcs[1].memory_size == 512 * GiB, "book_data node sizes");
        uint64_t off = 0;
        CHECK(topology_book_offset(t, GiB, fame_lza(3, 0), &off) == 0 && off == GiB + 1280 * 8 * GiB, "IG 3 starts after 1280 books");
        check_books_lza("book_data.ini", t);
        topology_free(t);
}

static void test_ftcbu1(void) {
        struct topology *t = parse_ok("ftcbu1.ini", ftcbu1);
        if (!t)
                return;
        CHECK(t->n_nodes == 2 && t->nodes[0].node_id == 2 && t->nodes[1].node_id == 8 && t->books_total == 256, "ftcbu1 nodes");
        CHECK(strcmp(t->nodes[1].hostname, "node08") == 0 && t->nodes[1].ig == 7 && t->nodes[1].mcs[0].raw_cid == ((7u << 4) | 8),
              "node08");
        uint64_t off = 0;
        CHECK(topology_book_offset(t, 0, fame_lza(1, 0), &off) == 0 && off == 0, "IG 1 first");
        CHECK(topology_book_offset(t, 0, fame_lza(7, 1), &off) == 0 && off == 129 * 8 * GiB, "IG 7 after IG 1: 0x%" PRIx64, off);
        CHECK(topology_book_offset(t, 0, fame_lza(0, 0), &off) == -EINVAL, "IG 0 is empty");
        check_books_lza("ftcbu1.ini", t);
        topology_free(t);
}

static void test_sdflex_good(void) {
        struct topology *t = parse_ok("SDFlex_good.ini", sdflex_good);
        if (!t)
                return;
        CHECK(t->mode == TOPOLOGY_PHYSADDR && t->book_size == 2 * MiB && t->n_nodes == 2, "SDFlex mode");
        CHECK(t->books_total == 264 && t->nvm_bytes_total == 264 * 2 * MiB, "SDFlex totals %" PRIu64, t->books_total);
        const struct topology_node *n1 = topology_find_node(t, 1), *n4 = topology_find_node(t, 4);
        CHECK(n1 && n1->n_ranges == 2 && n1->books == 176 && n1->n_mcs == 0, "node01 ranges");
        if (n1 && n1->n_ranges == 2)
                CHECK(n1->ranges[0].addr == UINT64_C(0xf00000000000) && n1->ranges[0].size == 88 * 2 * MiB &&
                      n1->ranges[1].addr == UINT64_C(0xf00100000000), "node01 range values");
        CHECK(n4 && n4->n_ranges == 1 && n4->ranges[0].addr == UINT64_C(0xf001a0000000) && n4->enc == 1 && n4->node == 4,
              "node04 range");

        struct topology_book *books = NULL;
        size_t n = 0;
        CHECK(topology_books(t, &books, &n) == 0 && n == 264, "SDFlex books: %zu", n);
        if (n == 264) {
                CHECK(books[0].id == UINT64_C(0xf00000000000) && books[0].intlv_group == 0x10000 && books[0].book_num == 0, "first book");
                CHECK(books[87].id == UINT64_C(0xf00000000000) + 87 * 2 * MiB && books[87].book_num == 87, "book 87");
                CHECK(books[88].id == UINT64_C(0xf00100000000) && books[88].intlv_group == 0x10000 && books[88].book_num == 88,
                      "book_num counts across node01's ranges");
                CHECK(books[176].id == UINT64_C(0xf001a0000000) && books[176].intlv_group == 0x10003 && books[176].book_num == 0,
                      "node04's first book");
                for (size_t i = 1; i < n; i++)
                        CHECK(books[i].id > books[i - 1].id, "PHYSADDR books in id order at %zu", i);
        }
        free(books);
        uint64_t off;
        CHECK(topology_book_offset(t, 0, UINT64_C(0xf00000000000), &off) == -EINVAL, "no LZA offsets in PHYSADDR mode");
        topology_free(t);
}

static void test_sdflex_bad(void) {
        expect_error("SDFlex_bad.ini", sdflex_bad, strlen(sdflex_bad), -EINVAL,
                     "SDFlex_bad.ini:22: [node04] range 0xf001a000000-0xf0024ffffff overlaps [node01] range 0xf0010000000-0xf001affffff (line 17); ranges may not overlap");
}

/* configparser details these files do not all use */
static void test_configparser(void) {
        static const char text[] =
                "; a semicolon comment\r\n"
                "[global]\r\n"
                "NODE_COUNT: 3\r\n"
                "  # an indented comment\r\n"
                "Book_Size_Bytes=8m\r\n"
                "nvm_size_per_node =\r\n"
                "    # a comment inside a value is skipped\r\n"
                "    8b\r\n"
                "\r\n"
                "[enclosure1]\r\n"
                "u = U3\r\n"
                "[node01]\r\n"
                "node_id = 1\r\n"
                "nvm_size = 4B";
        struct topology *t = parse_ok("configparser.ini", text);
        if (!t)
                return;
        CHECK(t->n_nodes == 3 && t->book_size == 8 * MiB && t->books_total == 24, "configparser: %zu nodes, %" PRIu64 " books",
              t->n_nodes, t->books_total);
        CHECK(!t->enclosure_u[1], "the short form ignores enclosure sections");
        topology_free(t);

        static const char long_form[] =
                "[global]\n"
                "node_count = 2\n"
                "book_size_bytes = 2M\n"
                "[enclosure1]\n"
                "u = U3\n"
                "[enclosure2]\n"
                "U: U7\n"
                "[node12]\n"
                "nvm_size = 0 @ 0x0\n"
                "node_id = 12\n"
                "[alpha]\n"
                "node_id = 1\n"
                "nvm_size = 4B @ 0x400000\n"
                "  \n"
                "\n";
        /* numbers as Python's int() reads them; lone CRs end lines (universal newlines) */
        t = parse_ok("int.ini", "[global]\rnode_count = +2\rbook_size_bytes = 8_388_608\r[node02]\rnode_id = 02\rnvm_size = 0004 B\r"
                     "[node01]\rnode_id = 1\rnvm_size = 32M\r");
        CHECK(t && t->n_nodes == 2 && t->book_size == 8 * MiB && t->nodes[1].books == 4 && t->nodes[0].books == 4,
              "Python int() forms");
        topology_free(t);

        t = parse_ok("long.ini", long_form);
        if (!t)
                return;
        CHECK(t->mode == TOPOLOGY_PHYSADDR && t->n_nodes == 2 && t->books_total == 4, "long form");
        CHECK(t->enclosure_u[1] && strcmp(t->enclosure_u[1], "U3") == 0 && t->enclosure_u[2] && strcmp(t->enclosure_u[2], "U7") == 0,
              "enclosure U values");
        CHECK(strcmp(t->nodes[0].hostname, "alpha") == 0 && t->nodes[0].node_id == 1, "a hostname that is not nodeXX");
        CHECK(t->nodes[1].node_id == 12 && t->nodes[1].n_ranges == 0 && t->nodes[1].books == 0 && t->nodes[1].enc == 2 &&
              t->nodes[1].node == 2 && strcmp(t->nodes[1].serial, "1:2:2") == 0, "0 @ 0x0 contributes nothing");
        topology_free(t);
}

#define G8(n) "[global]\nnode_count = " #n "\nbook_size_bytes = 8M\n"
#define G2(n) "[global]\nnode_count = " #n "\nbook_size_bytes = 2M\n"
#define NODE01 "[node01]\nnode_id = 1\nnvm_size = 4B\n"

static const struct err_case {
        const char *name, *text, *msg;
} ini_errors[] = {
        /* [global] */
        { "no-global", NODE01, "no-global:1: no [global] section; add [global] with node_count and book_size_bytes" },
        { "empty", "", "empty:1: no [global] section" },
        { "no-node-count", "[global]\nbook_size_bytes = 8M\n", "no-node-count:1: [global] has no node_count; [global] needs node_count, book_size_bytes" },
        { "no-book-size", "[global]\nnode_count = 4\nnvm_size_per_node = 4B\n", "no-book-size:1: [global] has no book_size_bytes" },
        { "bytes-per-node", G8(4) "bytes_per_node = 4G\n",
          "bytes-per-node:4: [global] has unknown key 'bytes_per_node'; the keys of [global] are node_count, book_size_bytes, nvm_size_per_node, datacenter, rack, domain" },
        { "book-size-3m", "[global]\nnode_count = 4\nbook_size_bytes = 3M\nnvm_size_per_node = 4B\n",
          "book-size-3m:3: book_size_bytes = 3M is not a power of two from 2M to 8G; use e.g. 8M" },
        { "book-size-1m", "[global]\nnode_count = 4\nbook_size_bytes = 1M\n", "book-size-1m:3: book_size_bytes = 1M is not a power of two from 2M to 8G" },
        { "book-size-16g", "[global]\nnode_count = 4\nbook_size_bytes = 16G\n", "book-size-16g:3: book_size_bytes = 16G is not a power of two" },
        { "book-size-books", "[global]\nnode_count = 4\nbook_size_bytes = 8B\n", "book-size-books:3: book_size_bytes '8B' uses B (books)" },
        { "book-size-syntax", "[global]\nnode_count = 4\nbook_size_bytes = 8X\n", "book-size-syntax:3: book_size_bytes '8X' is not a size" },
        { "book-size-float", "[global]\nnode_count = 4\nbook_size_bytes = 8.5M\n", "book-size-float:3: book_size_bytes '8.5M' is not a size" },
        { "node-count-0", "[global]\nnode_count = 0\nbook_size_bytes = 8M\n", "node-count-0:2: node_count = '0' is not a whole number from 1 to 80" },
        { "node-count-81", "[global]\nnode_count = 81\nbook_size_bytes = 8M\n", "node-count-81:2: node_count = '81' is not a whole number from 1 to 80" },
        { "node-count-suffix", "[global]\nnode_count = 4K\nbook_size_bytes = 8M\n", "node-count-suffix:2: node_count = '4K' is not a whole number" },
        /* short form */
        { "per-node-not-multiple", G8(4) "nvm_size_per_node = 12M\n",
          "per-node-not-multiple:4: nvm_size_per_node = 12M is not a whole number of 8M books" },
        { "per-node-510", G8(4) "nvm_size_per_node = 510B\n",
          "per-node-510:4: nvm_size_per_node is 510 books, not a multiple of 4 (a node has 4 media controllers); use 508B or 512B" },
        { "per-node-negative", G8(4) "nvm_size_per_node = -4B\n", "per-node-negative:4: nvm_size_per_node '-4B' is negative" },
        { "per-node-2", G8(4) "nvm_size_per_node = 2B\n", "per-node-2:4: nvm_size_per_node is 2 books, not a multiple of 4 (a node has 4 media controllers); use 4B" },
        { "per-node-0", G8(4) "nvm_size_per_node = 0\n", "per-node-0:4: nvm_size_per_node is 0 books" },
        { "per-node-8196", G8(4) "nvm_size_per_node = 8196B\n", "per-node-8196:4: nvm_size_per_node is 8196 books, more than the 8192 of an interleave group" },
        { "per-node-overflow", G8(4) "nvm_size_per_node = 99999999999999999999\n", "per-node-overflow:4: nvm_size_per_node '99999999999999999999' is too large" },
        { "per-node-overflow-t", G8(4) "nvm_size_per_node = 99999999T\n", "per-node-overflow-t:4: nvm_size_per_node '99999999T' is too large" },
        { "short-form-other-section", G8(2) "nvm_size_per_node = 4B\n[alpha]\nnode_id = 1\nnvm_size = 4B\ncolor = blue\n",
          "short-form-other-section:8: [alpha] has unknown key 'color'; the keys of a node section are node_id, nvm_size" },
        /* node sections */
        { "node-unknown-key", G8(1) NODE01 "size = 4\n", "node-unknown-key:7: [node01] has unknown key 'size'" },
        { "node-no-nvm-size", G8(1) "[node01]\nnode_id = 1\n", "node-no-nvm-size:4: [node01] has no nvm_size; a node section needs node_id, nvm_size" },
        { "node-no-node-id", G8(1) "[node01]\nnvm_size = 4B\n", "node-no-node-id:4: [node01] has no node_id" },
        { "section-name-mismatch", G8(1) "[node3]\nnode_id = 3\nnvm_size = 4B\n",
          "section-name-mismatch:4: section [node3] does not match node_id = 3; a nodeXX section must be named [node03]" },
        { "node-id-0", G8(1) "[alpha]\nnode_id = 0\nnvm_size = 4B\n", "node-id-0:5: node_id = '0' in [alpha] is not a whole number from 1 to 80" },
        { "node-id-81", G8(1) "[alpha]\nnode_id = 81\nnvm_size = 4B\n", "node-id-81:5: node_id = '81' in [alpha] is not a whole number from 1 to 80" },
        { "node-id-suffix", G8(1) "[alpha]\nnode_id = 1K\nnvm_size = 4B\n", "node-id-suffix:5: node_id = '1K' in [alpha]" },
        { "node-id-underscores", G8(1) "[alpha]\nnode_id = 1__0\nnvm_size = 4B\n", "node-id-underscores:5: node_id = '1__0' in [alpha]" },
        { "node-id-text", G8(1) "[alpha]\nnode_id = one\nnvm_size = 4B\n", "node-id-text:5: node_id = 'one' in [alpha]" },
        { "duplicate-node-id", G8(2) "[alpha]\nnode_id = 1\nnvm_size = 4B\n" NODE01, "duplicate-node-id:8: [node01] has node_id = 1 like [alpha]" },
        { "count-mismatch", G8(2) NODE01, "count-mismatch:2: node_count = 2 but the file describes 1 node; make them agree" },
        { "no-nodes", G8(2), "no-nodes:2: node_count = 2 but the file describes 0 nodes; add one [nodeNN] section per node, or nvm_size_per_node" },
        /* LZA nvm_size */
        { "lza-not-multiple", G8(1) "[node01]\nnode_id = 1\nnvm_size = 12M\n", "lza-not-multiple:6: nvm_size '12M' in [node01] is not a whole number of 8M books" },
        { "lza-zero", G8(1) "[node01]\nnode_id = 1\nnvm_size = 0\n", "lza-zero:6: nvm_size '0' in [node01] is 0 books" },
        { "lza-6", G8(1) "[node01]\nnode_id = 1\nnvm_size = 6B\n", "lza-6:6: nvm_size is 6 books, not a multiple of 4" },
        { "lza-8196", G8(1) "[node01]\nnode_id = 1\nnvm_size = 8196B\n", "lza-8196:6: nvm_size is 8196 books, more than the 8192" },
        { "lza-two-lines", G8(1) "[node01]\nnode_id = 1\nnvm_size = 4B\n    4B\n", "lza-two-lines:7: nvm_size of [node01] has a second line" },
        { "lza-syntax", G8(1) "[node01]\nnode_id = 1\nnvm_size = lots\n", "lza-syntax:6: nvm_size 'lots' is not a size" },
        { "empty-nvm-size", G8(1) "[node01]\nnode_id = 1\nnvm_size =\n", "empty-nvm-size:6: nvm_size in [node01] is empty" },
        /* PHYSADDR nvm_size */
        { "phys-no-0x", G2(1) "[node01]\nnode_id = 1\nnvm_size = 88B @ f00000000000\n",
          "phys-no-0x:6: address 'f00000000000' in [node01] must start with 0x" },
        { "phys-bad-hex", G2(1) "[node01]\nnode_id = 1\nnvm_size = 88B @ 0xf0g0\n", "phys-bad-hex:6: address '0xf0g0' in [node01] is not a hexadecimal number" },
        { "phys-hex-overflow", G2(1) "[node01]\nnode_id = 1\nnvm_size = 4B @ 0x10000000000000000\n", "phys-hex-overflow:6: address '0x10000000000000000' in [node01] does not fit 64 bits" },
        { "phys-unaligned", G2(1) "[node01]\nnode_id = 1\nnvm_size = 4B @ 0x200001\n", "phys-unaligned:6: address 0x200001 in [node01] is not book-aligned" },
        { "phys-below-book", G2(1) "[node01]\nnode_id = 1\nnvm_size = 88B @ 0x0\n", "phys-below-book:6: address 0x0 in [node01] is below the book size 2M" },
        { "phys-zero-size", G2(1) "[node01]\nnode_id = 1\nnvm_size = 0 @ 0x200000\n", "phys-zero-size:6: nvm_size '0 @ 0x200000' in [node01] is 0 books" },
        { "phys-two-at", G2(1) "[node01]\nnode_id = 1\nnvm_size = 4B @ 0x200000 @ 0x400000\n", "phys-two-at:6: bad nvm_size syntax" },
        { "phys-beyond-2^63", G2(1) "[node01]\nnode_id = 1\nnvm_size = 4B @ 0x7fffffffffe00000\n", "phys-beyond-2^63:6: range '4B @ 0x7fffffffffe00000' in [node01] ends beyond 2^63" },
        { "phys-too-many-books", G2(1) "[node01]\nnode_id = 1\nnvm_size = 100T @ 0x200000\n", "phys-too-many-books:6: with '100T @ 0x200000' the PHYSADDR ranges hold more than 16777216 books" },
        { "phys-blank-line", G2(1) "[node01]\nnode_id = 1\nnvm_size = 4B @ 0x200000\n\n    4B @ 0x400000\n",
          "phys-blank-line:7: blank line inside nvm_size of [node01]" },
        { "phys-own-overlap", G2(1) "[node01]\nnode_id = 1\nnvm_size = 100B @ 0x200000000\n    4B @ 0x200400000\n",
          "phys-own-overlap:7: [node01] range 0x200400000-0x200bfffff overlaps its own range 0x200000000-0x20c7fffff (line 6)" },
        { "phys-contained", G2(2) "[node01]\nnode_id = 1\nnvm_size = 100B @ 0x200000000\n[node02]\nnode_id = 2\nnvm_size = 2B @ 0x200400000\n",
          "phys-contained:9: [node02] range 0x200400000-0x2007fffff overlaps [node01] range 0x200000000-0x20c7fffff (line 6)" },
        { "mix-in-node", G2(1) "[node01]\nnode_id = 1\nnvm_size = 88B @ 0x200000000\n    4B\n",
          "mix-in-node:7: '4B' in [node01] is a plain size (LZA) but line 6 made the file PHYSADDR" },
        { "mix-across-nodes", G2(2) NODE01 "[node02]\nnode_id = 2\nnvm_size = 4B @ 0x200000000\n",
          "mix-across-nodes:9: '4B @ 0x200000000' in [node02] is a range (PHYSADDR) but line 6 made the file LZA" },
        /* enclosures */
        { "enclosure-unknown-key", G8(1) "[enclosure1]\nu = U3\nrack = 2\n" NODE01, "enclosure-unknown-key:6: [enclosure1] has unknown key 'rack'; the keys of an enclosure section are u" },
        { "enclosure-no-u", G8(1) "[enclosure1]\n" NODE01, "enclosure-no-u:4: [enclosure1] has no u" },
        { "enclosure-after-node", G8(1) NODE01 "[enclosure1]\nu = U3\n", "enclosure-after-node:7: [enclosure1] comes after a node section" },
        { "enclosure-bad-number", G8(1) "[enclosureX]\nu = U3\n" NODE01, "enclosure-bad-number:4: [enclosureX]: the last character of an enclosure section's name is its number, 1 to 8" },
        { "enclosure-9", G8(1) "[enclosure9]\nu = U3\n" NODE01, "enclosure-9:4: [enclosure9]: the last character" },
        { "enclosure-duplicate", G8(1) "[enclosure2]\nu = U1\n[enclosure12]\nu = U2\n" NODE01,
          "enclosure-duplicate:6: [enclosure12] describes enclosure 2 again (first on line 4)" },
        { "enclosure-u-space", G8(1) "[enclosure1]\nu = U 3\n" NODE01, "enclosure-u-space:5: u = 'U 3' in [enclosure1] is not a rack position" },
        { "enclosure-u-slash", G8(1) "[enclosure1]\nu = U/3\n" NODE01, "enclosure-u-slash:5: u = 'U/3' in [enclosure1] is not a rack position" },
        { "enclosure-u-percent", G8(1) "[enclosure1]\nu = U%3\n" NODE01, "enclosure-u-percent:5: u = 'U%3' in [enclosure1] contains '%', which configparser would interpolate" },
        { "enclosure-u-ascii", G8(1) "[enclosure1]\nu = U3\xc2\xa0\n" NODE01, "enclosure-u-ascii:5: u = 'U3\xc2\xa0' in [enclosure1] is not ASCII" },
        { "bad-utf8", G8(1) "# caf\xe9\n" NODE01, "bad-utf8:4: invalid UTF-8 (byte 0xe9 at column 6); save the file as UTF-8" },
        { "utf8-surrogate", G8(1) "# \xed\xa0\x80\n" NODE01, "utf8-surrogate:4: invalid UTF-8 (byte 0xed at column 3)" },
        { "utf8-overlong", G8(1) "# \xc0\xaf\n" NODE01, "utf8-overlong:4: invalid UTF-8 (byte 0xc0" },
        { "enclosure-u-empty", G8(1) "[enclosure1]\nu =\n" NODE01, "enclosure-u-empty:5: u = '' in [enclosure1] is not a rack position" },
        /* configparser */
        { "duplicate-section", G8(1) NODE01 "[global]\n", "duplicate-section:7: section [global] appears again (first on line 1); merge the two" },
        { "duplicate-key", G8(1) "Rack = a\nrack = b\n" NODE01, "duplicate-key:5: key rack appears again in [global] (first on line 4); keep one" },
        { "no-delimiter", "[global]\nnode_count 4\n", "no-delimiter:2: 'node_count 4' is not a 'key = value' line" },
        { "before-section", "node_count = 4\n" G8(1), "before-section:1: 'node_count = 4' comes before any section; begin with a [global] section" },
        { "default-section", "[DEFAULT]\nrack = 1\n" G8(1) NODE01, "default-section:1: [DEFAULT] is not supported" },
        { "header-junk", "[global] # comment\nnode_count = 1\n", "header-junk:1: '[global] # comment' is not a section header" },
        { "header-empty", "[]\n", "header-empty:1: '[]' is not a section header" },
        { "section-space", G8(1) "[node 01]\nnode_id = 1\nnvm_size = 4B\n", "section-space:4: section name 'node 01' contains white space" },
        { "empty-key", "[global]\n = 4\n", "empty-key:2: '= 4' has no key before '='" },
        { "scalar-continuation", "[global]\nnode_count = 4\n  5\nbook_size_bytes = 8M\n",
          "scalar-continuation:3: node_count in [global] continues on an indented line" },
};

static void test_ini_errors(void) {
        for (size_t i = 0; i < ELEMENTSOF(ini_errors); i++)
                expect_error(ini_errors[i].name, ini_errors[i].text, strlen(ini_errors[i].text), -EINVAL, ini_errors[i].msg);
        static const char nul[] = "[global]\nnode_count = 4\0\n";
        expect_error("nul", nul, sizeof nul - 1, -EINVAL, "nul: contains a NUL byte at offset 23");
}

/* ---- TMCF JSON ------------------------------------------------------------------------------ */

#define PFX "/MachineVersion/1/Datacenter/pa1/Rack/A1"
static const char tmcf[] =
        "{\n"
        "  \"coordinate\": \"/MachineVersion/1/Datacenter/pa1\",\n"
        "  @SERVICES@,\n"
        "  \"racks\": [\n"
        "    {\"coordinate\": \"Rack/A1\",\n"
        "     \"enclosures\": [\n"
        "       {\"coordinate\": \"Enclosure/U3/EncNum/1\",\n"
        "        \"nodes\": [\n"
        "          {\"coordinate\": \"Node/1\", \"serialNumber\": \"SN1\",\n"
        "           \"soc\": {\"coordinate\": \"SocBoard/1/Soc/1\", \"hostname\": \"alpha\",\n"
        "                   \"macAddress\": \"aa:bb:cc:00:00:01\", \"tlsPublicCertificate\": \"cert1\"},\n"
        "           \"mediaControllers\": [\n"
        "             {\"coordinate\": \"MemoryBoard/1/MediaController/1\", \"memorySize\": \"64M\"},\n"
        "             {\"coordinate\": \"MemoryBoard/1/MediaController/2\", \"memorySize\": 67108864}]},\n"
        "          {\"coordinate\": \"Node/2\", \"serialNumber\": 22222,\n"
        "           \"soc\": {\"coordinate\": \"SocBoard/1/Soc/1\"},\n"
        "           \"mediaControllers\": [\n"
        "             {\"coordinate\": \"MemoryBoard/1/MediaController/1\", \"memorySize\": \" +32_768k\"}]}]},\n"
        "       {\"coordinate\": \"Enclosure/U5/EncNum/2\",\n"
        "        \"nodes\": [\n"
        "          {\"coordinate\": \"Node/3\", \"serialNumber\": \"0013\",\n"
        "           \"soc\": {\"coordinate\": \"SocBoard/1/Soc/1\"},\n"
        "           \"mediaControllers\": [\n"
        "             {\"coordinate\": \"MemoryBoard/1/MediaController/4\", \"memorySize\": \"1G\"}]}]}]}],\n"
        "  \"interleaveGroups\": [\n"
        "    {\"groupId\": 12, \"mediaControllers\": [\"" PFX "/Enclosure/U5/EncNum/2/Node/3/MemoryBoard/1/MediaController/4\"]},\n"
        "    {\"groupId\": 0, \"mediaControllers\": [\n"
        "       {\"coordinate\": \"" PFX "/Enclosure/U3/EncNum/1/Node/1/MemoryBoard/1/MediaController/2\"},\n"
        "       {\"coordinate\": \"" PFX "/Enclosure/U3/EncNum/1/Node/1/MemoryBoard/1/MediaController/1\"}]},\n"
        "    {\"groupId\": \"1\", \"mediaControllers\": [\"" PFX "/Enclosure/U3/EncNum/1/Node/2/MemoryBoard/1/MediaController/1\"]}]\n"
        "}\n";

static const char new_style[] =
        "\"servers\": [{\"coordinate\": \"Rack/A1/MgmtServer/U41\", \"ipv4Address\": \"torms\",\n"
        "     \"services\": [{\"service\": \"osManifesting\", \"restUri\": \"http://torms:31178\"},\n"
        "                  {\"service\": \"librarian\", \"bookSize\": \"8M\", \"port\": 9093}]}]";
static const char old_style[] =
        "\"managementServer\": {\"keyManager\": {\"restUri\": \"https://torms:12000/rest/v1\"},\n"
        "     \"librarian\": {\"bookSize\": 8388608, \"tlsPublicCertificate\": \"x\"}}";

/* s with the first `from` replaced by `to` (malloc'ed). */
static char *replace(const char *s, const char *from, const char *to) {
        const char *p = strstr(s, from);
        CHECK(p, "'%s' not in the template", from);
        if (!p)
                return strdup(s);
        char *r = NULL;
        if (asprintf(&r, "%.*s%s%s", (int) (p - s), s, to, p + strlen(from)) < 0)
                abort();
        return r;
}

static char *tmcf_with(const char *services, const char *from, const char *to) {
        char *a = replace(tmcf, "@SERVICES@", services);
        if (!from)
                return a;
        char *b = replace(a, from, to);
        free(a);
        return b;
}

static void check_tmcf(const char *name, struct topology *t) {
        if (!t)
                return;
        CHECK(t->mode == TOPOLOGY_LZA && t->book_size == 8 * MiB, "%s: mode/book size", name);
        CHECK(t->n_nodes == 3 && t->books_total == 16 + 4 + 128 && t->nvm_bytes_total == 148 * 8 * MiB,
              "%s: %zu nodes %" PRIu64 " books", name, t->n_nodes, t->books_total);
        if (t->n_nodes != 3)
                return;
        const struct topology_node *a = &t->nodes[0], *b = &t->nodes[1], *c = &t->nodes[2];
        CHECK(a->node_id == 1 && b->node_id == 2 && c->node_id == 13, "%s: node ids in order", name);
        CHECK(strcmp(a->hostname, "alpha") == 0 && strcmp(a->mac, "aa:bb:cc:00:00:01") == 0 &&
              strcmp(a->tls_certificate, "cert1") == 0 && strcmp(a->serial, "SN1") == 0, "%s: node 1 soc", name);
        CHECK(strcmp(a->coordinate, PFX "/Enclosure/U3/EncNum/1/Node/1") == 0, "%s: absolute node coordinate %s", name, a->coordinate);
        CHECK(strcmp(a->soc_coordinate, PFX "/Enclosure/U3/EncNum/1/Node/1/SocBoard/1/Soc/1") == 0, "%s: soc coordinate", name);
        CHECK(a->ig == 0 && a->books == 16 && a->n_mcs == 2 && a->mcs[1].module_size_books == 8 && a->mcs[1].memory_size == 64 * MiB &&
              a->mcs[1].raw_cid == 9, "%s: node 1 MCs", name);
        CHECK(strcmp(b->serial, "22222") == 0 && strcmp(b->hostname, "node02") == 0 && strcmp(b->mac, "n/a") == 0 &&
              strcmp(b->tls_certificate, "You forgot an attribute.  BAD GEEK! BAD!") == 0 && b->ig == 1 && b->books == 4, "%s: node 2 defaults", name);
        CHECK(c->enc == 2 && c->node == 3 && c->rack == 1 && c->ig == 12 && c->books == 128 && strcmp(c->hostname, "node13") == 0,
              "%s: node 13", name);
        CHECK(strcmp(c->serial, "13") == 0, "%s: a serialNumber that reads as a number becomes one (tmconfig.py): %s", name, c->serial);
        CHECK(c->mcs[0].raw_cid == ((1u << 9) | (2u << 4) | 11) &&
              strcmp(c->mcs[0].coordinate, PFX "/Enclosure/U5/EncNum/2/Node/3/MemoryBoard/1/MediaController/4") == 0,
              "%s: node 13 MC: rawCID %" PRIu64 " %s", name, c->mcs[0].raw_cid, c->mcs[0].coordinate);

        uint64_t off = 0;
        CHECK(topology_book_offset(t, 8 * MiB, fame_lza(12, 5), &off) == 0 && off == 8 * MiB + (20 + 5) * 8 * MiB,
              "%s: IG 12 starts after IGs 0 and 1", name);
        CHECK(topology_book_offset(t, 0, fame_lza(1, 3), &off) == 0 && off == 19 * 8 * MiB, "%s: IG 1 book 3", name);
        CHECK(topology_book_offset(t, 0, fame_lza(1, 4), &off) == -EINVAL, "%s: IG 1 has 4 books", name);
        CHECK(topology_book_offset(t, 0, fame_lza(5, 0), &off) == -EINVAL, "%s: no IG 5", name);
        check_books_lza(name, t);
}

static void test_tmcf(void) {
        char *text = tmcf_with(new_style, NULL, NULL);
        struct topology *t = parse_ok("tmcf-new.json", text);
        check_tmcf("tmcf-new.json", t);
        topology_free(t);
        free(text);

        text = tmcf_with(old_style, NULL, NULL);
        t = parse_ok("tmcf-old.json", text);
        check_tmcf("tmcf-old.json", t);
        topology_free(t);
        free(text);
}

static const struct json_case {
        const char *name, *services, *from, *to, *msg;
} json_errors[] = {
        { "syntax.json", new_style, "\"racks\": [", "\"racks\": [,", "syntax.json:6:13: not valid JSON (unexpected character); fix the syntax" },
        { "truncated.json", new_style, "\n}\n", "", "truncated.json:32:149: not valid JSON (unexpected end of text)" },
        { "trailing.json", new_style, "\n}\n", "}}", "trailing.json:32:150: not valid JSON (unexpected character)" },
        { "machine-version.json", new_style, "/MachineVersion/1/Datacenter/pa1\",", "/machine_rev/1/datacenter/pa1\",",
          "machine-version.json: coordinate: \"/machine_rev/1/datacenter/pa1\" does not start with /MachineVersion/1/" },
        { "case.json", new_style, "\"Rack/A1\"", "\"rack/A1\"", "case.json: racks[0].coordinate: \"rack/A1\": case should be \"Rack\"" },
        { "space.json", new_style, "\"Rack/A1\"", "\"Rack/A 1\"", "space.json: racks[0].coordinate: \"Rack/A 1\" has superfluous white space" },
        { "slash.json", new_style, "\"Node/2\"", "\"Node/2/\"", "slash.json: racks[0].enclosures[0].nodes[1].coordinate: \"Node/2/\" has a leading or trailing '/'" },
        { "no-librarian.json", new_style, "\"librarian\"", "\"librarian2\"", "no-librarian.json: servers: no librarian service" },
        { "two-librarians.json", old_style, "\"managementServer\"", "\"servers\": [{\"services\": [{\"service\": \"librarian\", \"bookSize\": \"8M\"}]}], \"managementServer\"",
          "two-librarians.json: servers[0].services[0]: a second librarian service (the first is managementServer.librarian)" },
        { "no-book-size.json", new_style, "\"bookSize\"", "\"bookSize2\"", "no-book-size.json: servers[0].services[1].bookSize: is missing" },
        { "book-size-3m.json", new_style, "\"bookSize\": \"8M\"", "\"bookSize\": \"3M\"",
          "book-size-3m.json: servers[0].services[1].bookSize: 3145728 is not a power of two from 2K to 16G" },
        { "book-size-1k.json", old_style, "8388608", "1024", "book-size-1k.json: managementServer.librarian.bookSize: 1024 is not a power of two from 2K to 16G" },
        { "book-size-32g.json", new_style, "\"bookSize\": \"8M\"", "\"bookSize\": \"32G\"", "book-size-32g.json: servers[0].services[1].bookSize: 34359738368 is not a power of two" },
        { "book-size-books.json", new_style, "\"bookSize\": \"8M\"", "\"bookSize\": \"8B\"", "book-size-books.json: servers[0].services[1].bookSize: \"8B\" is not a number" },
        { "book-size-float.json", new_style, "\"bookSize\": \"8M\"", "\"bookSize\": 8.5", "book-size-float.json: servers[0].services[1].bookSize: must be a whole number" },
        { "no-racks.json", new_style, "\"racks\"", "\"rack\"", "no-racks.json: racks: is missing" },
        { "empty-nodes.json", new_style, "\"nodes\": [\n          {\"coordinate\": \"Node/3\"", "\"nodes\": [], \"x\": [{\"coordinate\": \"Node/3\"",
          "empty-nodes.json: racks[0].enclosures[1].nodes: is empty" },
        { "enclosure-9.json", new_style, "EncNum/2\"", "EncNum/9\"", "enclosure-9.json: racks[0].enclosures[1].coordinate: \"Enclosure/U5/EncNum/9\" must end with the enclosure number 1 to 8" },
        { "enclosure-duplicate.json", new_style, "U5/EncNum/2\"", "U3/EncNum/1\"", "enclosure-duplicate.json: racks[0].enclosures[1]: duplicate enclosure coordinate " PFX "/Enclosure/U3/EncNum/1" },
        { "node-11.json", new_style, "\"Node/3\"", "\"Node/11\"", "node-11.json: racks[0].enclosures[1].nodes[0].coordinate: \"Node/11\" must end with the node number in its enclosure, 1 to 10" },
        { "node-duplicate.json", new_style, "\"Node/2\"", "\"Node/1\"", "node-duplicate.json: racks[0].enclosures[0].nodes[1]: duplicate node coordinate" },
        { "node-id-duplicate.json", new_style, "U5/EncNum/2\",\n        \"nodes\": [\n          {\"coordinate\": \"Node/3\"",
          "U5/EncNum/1\",\n        \"nodes\": [\n          {\"coordinate\": \"Node/1\"",
          "node-id-duplicate.json: racks[0].enclosures[1].nodes[0]: node_id 1 again" },
        { "no-soc.json", new_style, "\"soc\": {\"coordinate\": \"SocBoard/1/Soc/1\", \"hostname\"", "\"sock\": {\"coordinate\": \"SocBoard/1/Soc/1\", \"hostname\"",
          "no-soc.json: racks[0].enclosures[0].nodes[0].soc: is missing" },
        { "no-serial.json", new_style, "\"serialNumber\": \"0013\"", "\"serial\": \"0013\"", "no-serial.json: racks[0].enclosures[1].nodes[0].serialNumber: is missing" },
        { "mc-number.json", new_style, "MediaController/4\", \"memorySize\"", "MediaController/9\", \"memorySize\"",
          "mc-number.json: racks[0].enclosures[1].nodes[0].mediaControllers[0].coordinate: \"MemoryBoard/1/MediaController/9\" must end with the MC number 1 to 8" },
        { "mc-duplicate.json", new_style, "MediaController/2\", \"memorySize\"", "MediaController/1\", \"memorySize\"",
          "mc-duplicate.json: racks[0].enclosures[0].nodes[0].mediaControllers[1]: duplicate MC coordinate" },
        { "mc-not-multiple.json", new_style, "\" +32_768k\"", "\"12M\"",
          "mc-not-multiple.json: racks[0].enclosures[0].nodes[1].mediaControllers[0].memorySize: 12582912 is not a whole number of books of 8388608 bytes" },
        { "mc-too-large.json", new_style, "\"1G\"", "\"65G\"",
          "mc-too-large.json: racks[0].enclosures[1].nodes[0].mediaControllers[0].memorySize: 8320 books, more than the 8192 an MC may hold" },
        { "mc-suffix.json", new_style, "\"1G\"", "\"1X\"", "mc-suffix.json: racks[0].enclosures[1].nodes[0].mediaControllers[0].memorySize: \"1X\" is not a number" },
        { "mc-negative.json", new_style, "67108864", "-67108864", "mc-negative.json: racks[0].enclosures[0].nodes[0].mediaControllers[1].memorySize: -67108864 is negative" },
        { "mc-negative-string.json", new_style, "\"1G\"", "\"-1G\"", "mc-negative-string.json: racks[0].enclosures[1].nodes[0].mediaControllers[0].memorySize: \"-1G\" is negative" },
        { "serial-ascii.json", new_style, "\"serialNumber\": \"0013\"", "\"serialNumber\": \"\\u0661\"",
          "serial-ascii.json: racks[0].enclosures[1].nodes[0].serialNumber: \"\xd9\xa1\" is not ASCII" },
        { "serial-null.json", new_style, "\"serialNumber\": \"0013\"", "\"serialNumber\": null", "serial-null.json: racks[0].enclosures[1].nodes[0].serialNumber: is null" },
        { "raw-newline.json", new_style, "\"SN1\"", "\"S\nN1\"", "raw-newline.json:11:54: not valid JSON (a control character inside a string" },
        { "single-quote.json", new_style, "\"SN1\"", "'SN1'", "single-quote.json:11:52: not valid JSON (unexpected character)" },
        { "single-quote-key.json", new_style, "\"serialNumber\": \"SN1\"", "'serialNumber': \"SN1\"",
          "single-quote-key.json:11:36: not valid JSON (a single-quoted string; use double quotes)" },
        { "number-dot.json", new_style, "\"port\": 9093", "\"port\": 9093.", "number-dot.json:5:74: not valid JSON (a number ending in '.'" },
        { "lone-surrogate.json", new_style, "\"SN1\"", "\"SN\\ud8001\"", "lone-surrogate.json:11:55: not valid JSON (a lone UTF-16 surrogate escape)" },
        { "bad-utf8.json", new_style, "\"SN1\"", "\"SN\xff\"", "bad-utf8.json:11: invalid UTF-8 (byte 0xff at column 55)" },
        { "serial-float.json", new_style, "\"serialNumber\": \"0013\"", "\"serialNumber\": 13.5", "serial-float.json: racks[0].enclosures[1].nodes[0].serialNumber: must be a string" },
        { "mc-no-size.json", new_style, "\"memorySize\": \"1G\"", "\"size\": \"1G\"", "mc-no-size.json: racks[0].enclosures[1].nodes[0].mediaControllers[0].memorySize: is missing" },
        { "no-mcs.json", new_style, "\"mediaControllers\": [\n             {\"coordinate\": \"MemoryBoard/1/MediaController/4\", \"memorySize\": \"1G\"}]",
          "\"mediaControllers\": []", "no-mcs.json: racks[0].enclosures[1].nodes[0].mediaControllers: is empty" },
        { "ig-memory-size.json", new_style, "MediaController/2\"}", "MediaController/2\", \"memorySize\": \"64M\"}",
          "ig-memory-size.json: interleaveGroups[1].mediaControllers[0]: IG 0 MC " PFX "/Enclosure/U3/EncNum/1/Node/1/MemoryBoard/1/MediaController/2 sets memorySize" },
        { "ig-unknown-mc.json", new_style, "Node/3/MemoryBoard/1/MediaController/4\"]", "Node/3/MemoryBoard/1/MediaController/3\"]",
          "ig-unknown-mc.json: interleaveGroups[0].mediaControllers[0]: IG 12 MC " PFX "/Enclosure/U5/EncNum/2/Node/3/MemoryBoard/1/MediaController/3 not in any node" },
        { "ig-twice.json", new_style, "Node/2/MemoryBoard/1/MediaController/1\"]", "Node/1/MemoryBoard/1/MediaController/1\"]",
          "ig-twice.json: interleaveGroups[2].mediaControllers[0]: MC " PFX "/Enclosure/U3/EncNum/1/Node/1/MemoryBoard/1/MediaController/1 is already in interleave group 0" },
        { "ig-missing-mc.json", new_style, ",\n    {\"groupId\": \"1\", \"mediaControllers\": [\"" PFX "/Enclosure/U3/EncNum/1/Node/2/MemoryBoard/1/MediaController/1\"]}", "",
          "ig-missing-mc.json: interleaveGroups: MC " PFX "/Enclosure/U3/EncNum/1/Node/2/MemoryBoard/1/MediaController/1 is not assigned to an IG" },
        { "ig-duplicate.json", new_style, "\"groupId\": \"1\"", "\"groupId\": 0", "ig-duplicate.json: interleaveGroups[2].groupId: duplicate interleave group ID 0" },
        { "ig-128.json", new_style, "\"groupId\": 12", "\"groupId\": 128", "ig-128.json: interleaveGroups[0].groupId: 128 is out of range (0 to 127)" },
        { "ig-entry.json", new_style, "\"groupId\": 12, \"mediaControllers\": [\"", "\"groupId\": 12, \"mediaControllers\": [7, \"",
          "ig-entry.json: interleaveGroups[0].mediaControllers[0]: must be an absolute MC coordinate string" },
        { "no-igs.json", new_style, "\"interleaveGroups\"", "\"interleaveGroup\"", "no-igs.json: interleaveGroups: is missing" },
        { "ig-too-large.json", new_style, "\"64M\"", "\"64G\"",
          "ig-too-large.json: interleaveGroups[1]: interleave group 0 holds 8200 books, more than 8192 (book count too large)" },
        { "top-coordinate-type.json", new_style, "\"coordinate\": \"/MachineVersion/1/Datacenter/pa1\"", "\"coordinate\": 5",
          "top-coordinate-type.json: coordinate: must be a string" },
};

static void test_json_errors(void) {
        for (size_t i = 0; i < ELEMENTSOF(json_errors); i++) {
                const struct json_case *c = &json_errors[i];
                char *text = tmcf_with(c->services, c->from, c->to);
                expect_error(c->name, text, strlen(text), -EINVAL, c->msg);
                free(text);
        }
}

/* ---- files ------------------------------------------------------------------------------------ */

static void test_parse_file(void) {
        char path[512];
        struct topology *t = NULL;
        char *err = NULL;

        snprintf(path, sizeof path, "%s/topo.ini", test_tmpdir());
        CHECK(write_file_atomic(path, 0644, fame_4nodes, strlen(fame_4nodes)) == 0, "write %s", path);
        CHECK(topology_parse_file(path, &t, &err) == 0 && t && t->books_total == 2048 && !err, "parse %s: %s", path, err ? err : "");
        topology_free(t);
        free(err);

        snprintf(path, sizeof path, "%s/missing.ini", test_tmpdir());
        t = (struct topology *) 1;
        err = NULL;
        CHECK(topology_parse_file(path, &t, &err) == -ENOENT && !t, "missing file");
        CHECK(err && strstr(err, "missing.ini: cannot read: No such file or directory"), "missing file message: %s", err ? err : "");
        free(err);

        snprintf(path, sizeof path, "%s/bad.ini", test_tmpdir());
        CHECK(write_file_atomic(path, 0644, "[global]\nnode_count = 4\n", 24) == 0, "write %s", path);
        err = NULL;
        CHECK(topology_parse_file(path, &t, &err) == -EINVAL && !t, "bad file");
        CHECK(err && strncmp(err, path, strlen(path)) == 0 && strstr(err, ":1: [global] has no book_size_bytes"),
              "bad file message names the path: %s", err ? err : "");
        free(err);

        CHECK(topology_parse(NULL, 0, NULL, &t, NULL) == -EINVAL && !t, "no text, no error wanted");
        topology_free(NULL);
}

/* ---- FAM/E geometry → INI ------------------------------------------------------------------ */

static bool geometry(uint64_t size, uint64_t book, uint32_t nodes, uint32_t per_enclosure, struct fame_geometry *geo) {
        struct fame_create_params p = {
                .total_size = size,
                .book_size = book,
                .node_count = nodes,
                .nodes_per_enclosure = per_enclosure,
                .created = 0,
        };
        int r = fame_geometry_compute(&p, geo);
        CHECK(r == 0, "fame_geometry_compute(%" PRIu64 ", %" PRIu64 ", %u, %u): %d", size, book, nodes, per_enclosure, r);
        return r == 0;
}

static void test_node_ids(void) {
        struct fame_geometry geo;
        uint32_t id = 0;
        char *err = NULL;

        if (geometry(GiB, 0, 4, 0, &geo))
                for (uint32_t n = 1; n <= 4; n++)
                        CHECK(topology_node_id_for(&geo, n, &id, &err) == 0 && id == n && !err, "default: node %u is %u", n, id);
        if (geometry(GiB, 0, 8, 4, &geo)) {
                static const uint32_t want[] = { 1, 2, 3, 4, 11, 12, 13, 14 };
                for (uint32_t n = 1; n <= 8; n++)
                        CHECK(topology_node_id_for(&geo, n, &id, &err) == 0 && id == want[n - 1], "4 per enclosure: node %u is %u", n, id);
                CHECK(topology_node_id_for(&geo, 9, &id, &err) == -ERANGE && err && strstr(err, "node 9 is not in the FAM (nodes 1 to 8)"),
                      "node 9: %s", err ? err : "");
                free(err);
                CHECK(topology_node_id_for(&geo, 0, &id, &err) == -ERANGE && err, "node 0");
                free(err);
        }
        if (geometry(GiB, 0, 12, 12, &geo)) {
                CHECK(topology_node_id_for(&geo, 1, &id, &err) == -ERANGE && err &&
                      strstr(err, "nodes_per_enclosure = 12 cannot be expressed to the Librarian") &&
                      strstr(err, "set nodes_per_enclosure to 10 or less"), "12 per enclosure: %s", err ? err : "");
                free(err);
                char *ini = (char *) 1;
                CHECK(topology_ini_for_geometry(&geo, "big", &ini, &err) == -ERANGE && !ini && err &&
                      strstr(err, "nodes_per_enclosure = 12") && !strchr(err, '\n'), "12 per enclosure INI: %s", err ? err : "");
                if (verbose && err)
                        fprintf(stderr, "  %s\n", err);
                free(err);
        }
        if (geometry(GiB, 2 * MiB, 9, 1, &geo)) {
                CHECK(topology_node_id_for(&geo, 8, &id, &err) == 0 && id == 71, "node 8 of 1 per enclosure is 71: %u", id);
                CHECK(topology_node_id_for(&geo, 9, &id, &err) == -ERANGE && err &&
                      strstr(err, "node 9 is in enclosure 9, but the Librarian has at most 8 enclosures"), "9 enclosures: %s", err ? err : "");
                free(err);
                char *ini = NULL;
                CHECK(topology_ini_for_geometry(&geo, NULL, &ini, &err) == -ERANGE && !ini && err, "9 enclosures INI");
                free(err);
        }
        if (geometry(4 * GiB, 0, 81, 0, &geo)) {
                CHECK(topology_node_id_for(&geo, 81, &id, &err) == -ERANGE && err, "node 81");
                free(err);
        }
        if (geometry(GiB, 0, 4, 0, &geo)) {
                char *ini = NULL;
                CHECK(topology_ini_for_geometry(&geo, "two\nlines", &ini, &err) == -EINVAL && !ini && err &&
                      strstr(err, "control character"), "comment with a newline: %s", err ? err : "");
                free(err);
        }
}

static void check_parsed(const char *name, const struct fame_geometry *gp, const struct topology *t, uint32_t nodes);

/* The INI and the TMCF JSON of a geometry parse into books at exactly the FAM/E offsets. */
static void round_trip(uint64_t size, uint64_t book, uint32_t nodes, uint32_t per_enclosure, bool want_long) {
        struct fame_geometry geo;
        struct topology *t = NULL;
        char *ini = NULL, *err = NULL, name[96];

        if (!geometry(size, book, nodes, per_enclosure, &geo))
                return;
        snprintf(name, sizeof name, "geometry-%" PRIu64 "M-%" PRIu64 "M-%u-%u.ini", size >> 20, geo.book_size >> 20, nodes,
                 geo.nodes_per_enclosure);
        CHECK(topology_ini_for_geometry(&geo, name, &ini, &err) == 0 && ini && !err, "%s: %s", name, err ? err : "");
        free(err);
        if (!ini)
                return;
        CHECK(ini[0] == '#' && strstr(ini, name) && strstr(ini, name) < strchr(ini, '\n'), "%s: first line names the comment", name);
        CHECK(!strstr(ini, "nvm_size_per_node") == want_long, "%s: %s form expected", name, want_long ? "long" : "short");
        err = NULL;
        CHECK(topology_parse(ini, strlen(ini), name, &t, &err) == 0 && t, "%s: parse: %s\n%s", name, err ? err : "", ini);
        free(err);
        if (!t) {
                free(ini);
                return;
        }
        check_parsed(name, &geo, t, nodes);
        topology_free(t);
        t = NULL;

        /* the TMCF form fame up gives the Librarian: the same books, The Machine's coordinates */
        char *json = NULL;
        CHECK(topology_tmcf_for_geometry(&geo, &json, &err) == 0 && json && !err, "%s TMCF: %s", name, err ? err : "");
        free(err);
        err = NULL;
        CHECK(json && topology_parse(json, strlen(json), name, &t, &err) == 0 && t, "%s TMCF: parse: %s\n%s", name, err ? err : "",
              json ? json : "");
        free(err);
        if (t) {
                check_parsed(name, &geo, t, nodes);
                for (size_t i = 0; i < t->n_nodes; i++) {
                        const struct topology_node *tn = &t->nodes[i];
                        char want[256];
                        snprintf(want, sizeof want, "/MachineVersion/1/Datacenter/pa1/Rack/%u/Enclosure/", tn->rack);
                        CHECK(strncmp(tn->coordinate, want, strlen(want)) == 0 && tn->ig == tn->node_id - 1 &&
                              strstr(tn->soc_coordinate, "/SocBoard/1/Soc/1") && tn->soc_coordinate[0] == '/',
                              "%s TMCF: node %u at %s, IG %u", name, tn->node_id, tn->coordinate, tn->ig);
                }
                topology_free(t);
        }
        free(json);
        free(ini);
}

/* A parsed topology of a FAM/E geometry: its totals, nodes and every book's FAM offset. */
static void check_parsed(const char *name, const struct fame_geometry *gp, const struct topology *t, uint32_t nodes) {
        const struct fame_geometry geo = *gp;
        CHECK(t->mode == TOPOLOGY_LZA && t->book_size == geo.book_size && t->n_nodes == nodes &&
              t->books_total == (uint64_t) nodes * geo.books_per_node, "%s: totals", name);
        for (uint32_t n = 1; n <= nodes; n++) {
                uint32_t id = 0;
                CHECK(topology_node_id_for(&geo, n, &id, NULL) == 0 && topology_find_node(t, id), "%s: node %u", name, n);
                for (uint64_t b = 0; b < geo.books_per_node; b++) {
                        uint64_t off = 0;
                        int64_t want = fame_geometry_book_offset(&geo, n - 1, b);
                        int r = topology_book_offset(t, geo.book_area_offset, fame_lza(id - 1, b), &off);
                        if (r != 0 || want < 0 || off != (uint64_t) want) {
                                CHECK(false, "%s: node %u (id %u) book %" PRIu64 ": %d 0x%" PRIx64 " want 0x%" PRIx64,
                                      name, n, id, b, r, off, (uint64_t) want);
                                break;
                        }
                }
                uint64_t off;
                CHECK(topology_book_offset(t, geo.book_area_offset, fame_lza(id - 1, geo.books_per_node), &off) == -EINVAL,
                      "%s: node %u has no book %u", name, n, geo.books_per_node);
        }
        check_books_lza(name, t);
}

static void test_round_trip(void) {
        round_trip(GiB, 8 * MiB, 4, 0, false);
        round_trip(GiB, 8 * MiB, 3, 0, false);
        round_trip(GiB, 8 * MiB, 8, 4, true);
        round_trip(128 * MiB, 2 * MiB, 2, 0, false);
        round_trip(2 * GiB, 8 * MiB, 10, 3, true);
        round_trip(GiB, 2 * MiB, 5, 1, true);
        round_trip(4 * GiB, 8 * MiB, 80, 10, false);
        round_trip(32 * GiB, 8 * MiB, 4, 0, false);
        round_trip(64 * GiB, 1 * GiB, 7, 2, true);
}

static void golden(const char *name, uint64_t size, uint64_t book, uint32_t nodes, uint32_t per_enclosure) {
        struct fame_geometry geo;
        char *ini = NULL, *err = NULL, path[1024], comment[64];
        const char *root = getenv("FAME_SOURCE_ROOT");

        if (!geometry(size, book, nodes, per_enclosure, &geo))
                return;
        snprintf(comment, sizeof comment, "cluster %s", name);
        CHECK(topology_ini_for_geometry(&geo, comment, &ini, &err) == 0 && ini, "%s: %s", name, err ? err : "");
        free(err);
        if (!ini)
                return;
        snprintf(path, sizeof path, "%s/tests/golden/topology", root && *root ? root : FAME_SOURCE_ROOT);
        const char *regen = getenv("FAME_REGENERATE");
        if (regen && strcmp(regen, "1") == 0)
                CHECK(mkdir_p(path, 0755) == 0, "cannot create %s", path);
        snprintf(path + strlen(path), sizeof path - strlen(path), "/%s.ini", name);
        size_t len = 0;
        char *want = read_file(path, 1 << 20, &len);
        if (regen && strcmp(regen, "1") == 0 && (!want || strcmp(want, ini) != 0)) {
                /* rewritten, and still a failure: a regeneration never passes for a check */
                CHECK(write_file_atomic(path, 0644, ini, strlen(ini)) == 0, "cannot write %s", path);
                CHECK(false, "regenerated %s: it differed; review git diff, then run again", path);
        } else {
                CHECK(want, "cannot read %s (FAME_REGENERATE=1 writes it)", path);
                if (want)
                        CHECK(strcmp(want, ini) == 0, "%s differs from the INI generated now (FAME_REGENERATE=1 rewrites it):\n%s", path, ini);
        }
        free(want);
        free(ini);
}

static void test_golden(void) {
        golden("default", GiB, 8 * MiB, 4, 0);
        golden("enclosures", GiB, 8 * MiB, 8, 4);
        golden("book-2m", 128 * MiB, 2 * MiB, 2, 0);
}

int main(void) {
        verbose = getenv("FAME_TEST_VERBOSE") != NULL;
        test_capture_log();
        test_fame_short_form();
        test_frd_max();
        test_book_max();
        test_book_data();
        test_ftcbu1();
        test_sdflex_good();
        test_sdflex_bad();
        test_configparser();
        test_ini_errors();
        test_tmcf();
        test_json_errors();
        test_parse_file();
        test_node_ids();
        test_round_trip();
        test_golden();
        return test_exit();
}
