/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fame check report: the checker's findings (src/cluster/check-report.c), as text or JSON. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "check-report.h"
#include "check.h"
#include "cli.h"
#include "config.h"
#include "verbs.h"

enum { REPORT_NODE = 0x400 };
const struct verb_options check_report_options = {
        .list = (const struct verb_option[]) {
                { "node", REPORT_NODE, "NODE", "only the findings that involve NODE (node02, or 2)" },
                { "json", VERB_JSON, NULL, "machine-readable output" },
                { .group = &cluster_options },
                {}
        },
};

/* "node02", or "a node" for 0. */
static const char *node_name(uint32_t id, char buf[16]) {
        if (!id)
                return "a node";
        snprintf(buf, 16, "node%02" PRIu32, id);
        return buf;
}

/* The two lines of a finding that say who did what, in a FAM programmer's words. */
static void print_who(const struct check_finding *f) {
        char a[16], b[16];
        const char *na = node_name(f->node_a, a), *nb = node_name(f->node_b, b);

        switch (f->kind) {
        case CHECK_UNFLUSHED_READ:
                printf("  %s stored to the line at pc 0x%" PRIx64 " and did not write it back\n", na, f->pc_a);
                printf("  %s loaded it at pc 0x%" PRIx64 "\n", nb, f->pc_b);
                return;
        case CHECK_STALE_READ:
                printf("  %s changed memory at pc 0x%" PRIx64 " (wrote the line back, or used a fabric atomic)\n", na, f->pc_a);
                printf("  %s loaded its old cached copy at pc 0x%" PRIx64 " without invalidating it\n", nb, f->pc_b);
                return;
        case CHECK_CONFLICTING_WRITES:
                printf("  %s stored to the line at pc 0x%" PRIx64 " and did not write it back\n", na, f->pc_a);
                printf("  %s stored to it too at pc 0x%" PRIx64 ": both hold unwritten stores, and one will be lost\n", nb, f->pc_b);
                return;
        case CHECK_PLAIN_ATOMIC:
                printf("  %s used fabric atomics on the word at pc 0x%" PRIx64 "\n", na, f->pc_a);
                printf("  %s accessed it with a plain %s at pc 0x%" PRIx64 "\n", nb, f->b_store ? "store" : "load", f->pc_b);
                return;
        case CHECK_UNSEEN_FLUSH:
                printf("  %s ran a flush instruction at pc 0x%" PRIx64 " whose address the checker cannot see:\n"
                       "  use libfame's fame_persist/fame_invalidate (see docs/check.md)\n", na, f->pc_a);
                return;
        default:
                printf("  %s at pc 0x%" PRIx64 "\n", na, f->pc_a);
                if (f->node_b)
                        printf("  %s at pc 0x%" PRIx64 "%s\n", nb, f->pc_b, f->b_store ? " (a store)" : "");
                return;
        }
}

static void print_where(const struct check_report_item *it) {
        printf("  FAM offset 0x%" PRIx64 ": ", it->f.fam_offset);
        switch (it->place) {
        case CHECK_PLACE_SHELF:
                printf("shelf %s + 0x%" PRIx64 "\n", it->shelf, it->shelf_offset);
                break;
        case CHECK_PLACE_NO_SHELF:
                printf("in a book on no shelf\n");
                break;
        case CHECK_PLACE_METADATA:
                printf("FAM/E's own metadata, before the books\n");
                break;
        case CHECK_PLACE_UNKNOWN:
        default:
                printf("shelf unknown (the Librarian's database cannot be read)\n");
                break;
        }
}

static void print_report_text(const struct cluster_check_report *r) {
        for (size_t i = 0; i < r->n; i++) {
                const struct check_report_item *it = &r->item[i];
                printf("%s%s (x%" PRIu64 ")\n", i ? "\n" : "", check_kind_words(it->f.kind), it->f.count);
                print_who(&it->f);
                print_where(it);
        }
        if (r->n)
                printf("\n%zu finding%s (%" PRIu64 " occurrence%s)\n", r->n, r->n == 1 ? "" : "s", r->occurrences,
                       r->occurrences == 1 ? "" : "s");
        else
                printf("no findings\n");
        if (r->overflow)
                printf("%" PRIu64 " more occurrence%s found no room in the findings table\n", r->overflow, r->overflow == 1 ? "" : "s");
}

static void print_report_json(const struct cluster_check_report *r) {
        json_object *o = json_object_new_object(), *list = json_object_new_array();

        for (size_t i = 0; i < r->n; i++) {
                const struct check_report_item *it = &r->item[i];
                json_object *f = json_object_new_object(), *a = json_object_new_object(), *b = NULL;
                json_object_object_add(f, "kind", json_object_new_string(check_kind_name(it->f.kind)));
                json_object_object_add(f, "words", json_object_new_string(check_kind_words(it->f.kind)));
                json_object_object_add(f, "count", json_object_new_uint64(it->f.count));
                json_object_object_add(a, "node", json_object_new_uint64(it->f.node_a));
                json_object_object_add(a, "pc", json_object_new_uint64(it->f.pc_a));
                json_object_object_add(f, "a", a);
                if (it->f.node_b) {
                        b = json_object_new_object();
                        json_object_object_add(b, "node", json_object_new_uint64(it->f.node_b));
                        json_object_object_add(b, "pc", json_object_new_uint64(it->f.pc_b));
                        json_object_object_add(b, "store", json_object_new_boolean(it->f.b_store));
                }
                json_object_object_add(f, "b", b);
                json_object_object_add(f, "fam_offset", json_object_new_uint64(it->f.fam_offset));
                bool shelf = it->place == CHECK_PLACE_SHELF;
                json_object_object_add(f, "shelf", shelf ? json_object_new_string(it->shelf) : NULL);
                json_object_object_add(f, "shelf_offset", shelf ? json_object_new_uint64(it->shelf_offset) : NULL);
                json_object_array_add(list, f);
        }
        json_object_object_add(o, "findings", list);
        json_object_object_add(o, "overflow", json_object_new_uint64(r->overflow));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
}

/* fame check report [--json] [--node NODE] */
int cmd_check_report(const struct verb *v, int argc, char **argv) {
        struct cluster_opts o = { 0 };
        bool first = true, json = false;
        const char *node = NULL;
        struct fame_config c;
        uint32_t id;
        int ch, r;

        while ((ch = verb_getopt_json(v, argc, argv, &first, &json)) != -1) {
                r = cluster_opt(v, ch, &o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (ch != REPORT_NODE)
                        return -EINVAL;
                if (parse_node_name(optarg, false, &id) < 0)
                        return cli_usage_error(v, "--node '%s' is not a node name (node02, or 2)", optarg);
                node = optarg;
        }
        r = load_config(&o, NULL, &c);
        if (r < 0)
                return r;
        struct cluster_check_report rep;
        r = cluster_check_report(&c, node, &rep);
        config_done(&c);
        if (r >= 0) {
                if (json)
                        print_report_json(&rep);
                else
                        print_report_text(&rep);
        }
        cluster_check_report_done(&rep);
        return r < 0 ? r : 0;
}
