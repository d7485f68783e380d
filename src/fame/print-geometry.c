/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Text and JSON renderings of a FAM geometry, shared by `fame fam info` and `fame info`. */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>

#include "fame.h"
#include "util.h"
#include "verbs.h"

static void iso_time(uint64_t t, char *buf, size_t len) {
        time_t tt = (time_t) t;
        struct tm tm;
        if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(buf, len, "%" PRIu64, t);
}

static void region_line(const char *name, uint64_t off, uint64_t size, const char *note) {
        char b[32];
        printf("  %-12s 0x%010" PRIx64 "-0x%010" PRIx64 "  %9s  %s\n", name, off, off + size - 1,
               format_bytes(size, b, sizeof b), note);
}

void print_geometry(const struct fame_geometry *g) {
        char a[32], b[32], u[37], t[40];
        uint64_t handed = (uint64_t) g->books_per_node * g->node_count;

        fame_uuid_format(g->uuid, u);
        iso_time(g->created, t, sizeof t);
        printf("format       %" PRIu32 ".%" PRIu32 "\n", g->version_major, g->version_minor);
        printf("uuid         %s\n", u);
        printf("created      %s\n", t);
        printf("size         %s (%" PRIu64 " bytes)\n", format_bytes(g->total_size, a, sizeof a), g->total_size);
        printf("book size    %s\n", format_bytes(g->book_size, b, sizeof b));
        printf("books        %" PRIu64 " in the book area, %" PRIu32 " per node (%" PRIu64 " in use, %s)\n",
               g->books_total, g->books_per_node, handed, format_bytes(handed * g->book_size, a, sizeof a));
        printf("nodes        %" PRIu32 " (%" PRIu32 " per enclosure, %" PRIu32 " enclosures per rack: %" PRIu32 " enclosure%s in %" PRIu32 " rack%s)\n",
               g->node_count, g->nodes_per_enclosure, g->enclosures_per_rack,
               g->enclosure_count, g->enclosure_count == 1 ? "" : "s", g->rack_count, g->rack_count == 1 ? "" : "s");
        printf("layout\n");
        region_line("header", 0, g->meta_offset, "");
        snprintf(a, sizeof a, "%" PRIu32 " x %" PRIu32 " bytes", g->slot_count, g->slot_size);
        region_line("node slots", g->slots_offset, (uint64_t) g->slot_count * g->slot_size, a);
        region_line("doorbells", g->doorbell_offset, g->doorbell_size, "reserved");
        region_line("librarian", g->librarian_offset, g->librarian_size, "reserved");
        uint64_t rest = g->librarian_offset + g->librarian_size;
        if (g->book_area_offset > rest)
                region_line("reserved", rest, g->book_area_offset - rest, "");
        region_line("books", g->book_area_offset, handed * g->book_size, "");
        uint64_t end = g->book_area_offset + handed * g->book_size;
        if (g->total_size > end)
                region_line("unused", end, g->total_size - end, "");
        printf("nodes\n  %-7s %4s %4s %4s %4s  %-25s\n", "node", "rack", "enc", "slot", "ig", "books");
        for (uint32_t n = 1; n <= g->node_count; n++) {
                struct fame_coord c;
                int64_t first = fame_geometry_book_offset(g, n - 1, 0);
                int64_t last = fame_geometry_book_offset(g, n - 1, g->books_per_node - 1);
                (void) fame_geometry_coord(g, n, &c);
                printf("  node%02" PRIu32 "  %4" PRIu32 " %4" PRIu32 " %4" PRIu32 " %4" PRIu32 "  0x%010" PRIx64 "-0x%010" PRIx64 "\n",
                       n, c.rack, c.enclosure, c.node_in_enclosure, c.interleave_group,
                       (uint64_t) first, (uint64_t) last + g->book_size - 1);
        }
}

static json_object *region_json(uint64_t off, uint64_t size) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "offset", json_object_new_uint64(off));
        json_object_object_add(o, "size", json_object_new_uint64(size));
        return o;
}

json_object *geometry_to_json(const struct fame_geometry *g) {
        json_object *o = json_object_new_object(), *regions, *nodes;
        char u[37], t[40], v[16];

        fame_uuid_format(g->uuid, u);
        iso_time(g->created, t, sizeof t);
        snprintf(v, sizeof v, "%" PRIu32 ".%" PRIu32, g->version_major, g->version_minor);
        json_object_object_add(o, "format", json_object_new_string(v));
        json_object_object_add(o, "uuid", json_object_new_string(u));
        json_object_object_add(o, "created", json_object_new_string(t));
        json_object_object_add(o, "size", json_object_new_uint64(g->total_size));
        json_object_object_add(o, "book_size", json_object_new_uint64(g->book_size));
        json_object_object_add(o, "books_total", json_object_new_uint64(g->books_total));
        json_object_object_add(o, "books_per_node", json_object_new_uint64(g->books_per_node));
        json_object_object_add(o, "node_count", json_object_new_uint64(g->node_count));
        json_object_object_add(o, "nodes_per_enclosure", json_object_new_uint64(g->nodes_per_enclosure));
        json_object_object_add(o, "enclosures_per_rack", json_object_new_uint64(g->enclosures_per_rack));
        json_object_object_add(o, "enclosure_count", json_object_new_uint64(g->enclosure_count));
        json_object_object_add(o, "rack_count", json_object_new_uint64(g->rack_count));
        regions = json_object_new_object();
        json_object_object_add(regions, "header", region_json(0, g->meta_offset));
        json_object_object_add(regions, "metadata", region_json(g->meta_offset, g->meta_size));
        json_object *slots = region_json(g->slots_offset, (uint64_t) g->slot_count * g->slot_size);
        json_object_object_add(slots, "slot_size", json_object_new_uint64(g->slot_size));
        json_object_object_add(slots, "slot_count", json_object_new_uint64(g->slot_count));
        json_object_object_add(regions, "slots", slots);
        json_object_object_add(regions, "doorbells", region_json(g->doorbell_offset, g->doorbell_size));
        json_object_object_add(regions, "librarian", region_json(g->librarian_offset, g->librarian_size));
        json_object_object_add(regions, "books", region_json(g->book_area_offset, g->books_total * g->book_size));
        json_object_object_add(o, "regions", regions);
        nodes = json_object_new_array();
        for (uint32_t n = 1; n <= g->node_count; n++) {
                struct fame_coord c;
                json_object *no = json_object_new_object();
                char name[16];
                (void) fame_geometry_coord(g, n, &c);
                snprintf(name, sizeof name, "node%02" PRIu32, n);
                json_object_object_add(no, "name", json_object_new_string(name));
                json_object_object_add(no, "node_id", json_object_new_uint64(n));
                json_object_object_add(no, "rack", json_object_new_uint64(c.rack));
                json_object_object_add(no, "enclosure", json_object_new_uint64(c.enclosure));
                json_object_object_add(no, "node_in_enclosure", json_object_new_uint64(c.node_in_enclosure));
                json_object_object_add(no, "interleave_group", json_object_new_uint64(c.interleave_group));
                json_object_object_add(no, "slot_offset", json_object_new_uint64(g->slots_offset + (uint64_t) (n - 1) * g->slot_size));
                json_object_object_add(no, "books_offset", json_object_new_uint64((uint64_t) fame_geometry_book_offset(g, n - 1, 0)));
                json_object_object_add(no, "books_size", json_object_new_uint64((uint64_t) g->books_per_node * g->book_size));
                json_object_array_add(nodes, no);
        }
        json_object_object_add(o, "nodes", nodes);
        return o;
}

int print_json(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return 0;
}
