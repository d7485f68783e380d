/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fame info: what this node (or host process) sees of FAM, through fame_open(). */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "cli.h"
#include "fame.h"
#include "verbs.h"

enum { O_PATH = 0x100 };
const struct verb_options info_options = {
        .list = (const struct verb_option[]) {
                { "path", O_PATH, "PATH", "a FAM file, or pci:BDF for one PCI device" },
                { "json", VERB_JSON, NULL, "machine-readable output" },
                {}
        },
};

int cmd_info(const struct verb *v, int argc, char **argv) {
        const char *path = NULL;
        bool first = true, json = false;
        struct fame *fam = NULL;
        int c, r;

        while ((c = verb_getopt_json(v, argc, argv, &first, &json)) != -1) {
                switch (c) {
                case O_PATH:
                        path = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        }
        r = fame_open(path, FAME_OPEN_RDONLY | FAME_OPEN_NOREGISTER | FAME_OPEN_LAZY, &fam);
        if (r < 0)
                return r;

        const struct fame_geometry *g = fame_get_geometry(fam);
        uint32_t node = fame_node_id(fam);
        const char *cluster = fame_cluster_name(fam);
        char name[16] = "";
        if (node)
                snprintf(name, sizeof name, "node%02" PRIu32, node);

        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "node", node ? json_object_new_string(name) : NULL);
                json_object_object_add(o, "node_id", json_object_new_uint64(node));
                json_object_object_add(o, "cluster", cluster ? json_object_new_string(cluster) : NULL);
                json_object_object_add(o, "cluster_nodes", json_object_new_uint64(fame_cluster_node_count(fam)));
                json_object_object_add(o, "coordinate", fame_node_coordinate(fam) ? json_object_new_string(fame_node_coordinate(fam)) : NULL);
                json_object_object_add(o, "source", json_object_new_string(fame_source_kind(fam)));
                json_object_object_add(o, "path", json_object_new_string(fame_source_path(fam)));
                json_object_object_add(o, "bar2_address", json_object_new_uint64(fame_bar_address(fam)));
                json_object_object_add(o, "fam_size", json_object_new_uint64(fame_size(fam)));
                json_object_object_add(o, "persist", json_object_new_string(fame_persist_method()));
                json_object_object_add(o, "header", geometry_to_json(g));
                fame_close(fam);
                return print_json(o);
        }
        printf("node         %s\n", node ? name : "(unknown: set FAME_NODE)");
        printf("cluster      %s", cluster ? cluster : "(none)");
        if (fame_cluster_node_count(fam))
                printf(" (%" PRIu32 " nodes)", fame_cluster_node_count(fam));
        printf("\n");
        if (node) {
                struct fame_coord co;
                if (fame_node_coordinate(fam))
                        printf("coordinate   %s\n", fame_node_coordinate(fam));
                else if (fame_geometry_coord(g, node, &co) == 0)
                        printf("coordinate   Rack/%" PRIu32 "/Enclosure/%" PRIu32 "/Node/%" PRIu32 "\n",
                               co.rack, co.enclosure_in_rack, co.node_in_enclosure);
        }
        printf("source       %s %s\n", fame_source_kind(fam), fame_source_path(fam));
        if (fame_bar_address(fam))
                printf("BAR2         0x%" PRIx64 "\n", fame_bar_address(fam));
        printf("persist      %s\n", fame_persist_method());
        print_geometry(g);
        fame_close(fam);
        return 0;
}
