/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The INI topology FAM/E writes for a FAM (topology.h): the Librarian node id of each FAM/E
 * node from the FAM's geometry, and the INI text `fame up` and `fame-librarian topology` give
 * the Librarian.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "fame.h"
#include "macro.h"
#include "topology-internal.h"
#include "util.h"

int topology_node_id_for(const struct fame_geometry *geo, uint32_t n, uint32_t *ret_node_id, char **ret_error) {
        struct fame_coord coord;

        if (ret_error)
                *ret_error = NULL;
        if (!geo || !ret_node_id || geo->nodes_per_enclosure == 0)
                return topo_fail(ret_error, -EINVAL, "no FAM geometry (nodes_per_enclosure is 0)");
        if (geo->nodes_per_enclosure > TOPOLOGY_MAX_NODES_PER_ENCLOSURE)
                return topo_fail(ret_error, -ERANGE, "nodes_per_enclosure = %" PRIu32 " cannot be expressed to the Librarian, whose enclosures hold at most 10 nodes (node_id = (enclosure-1)*10 + node); set nodes_per_enclosure to 10 or less",
                                 geo->nodes_per_enclosure);
        if (fame_geometry_coord(geo, n, &coord) < 0)
                return topo_fail(ret_error, -ERANGE, "node %" PRIu32 " is not in the FAM (nodes 1 to %" PRIu32 ")", n, geo->node_count);
        if (coord.enclosure > TOPOLOGY_MAX_ENCLOSURES)
                return topo_fail(ret_error, -ERANGE, "node %" PRIu32 " is in enclosure %" PRIu32 ", but the Librarian has at most 8 enclosures (node_id 1 to 80); use fewer nodes or more nodes_per_enclosure (up to 10)",
                                 n, coord.enclosure);
        *ret_node_id = (coord.enclosure - 1) * 10 + coord.node_in_enclosure;
        return 0;
}

int topology_ini_for_geometry(const struct fame_geometry *geo, const char *comment, char **ret, char **ret_error) {
        _cleanup_free_ uint32_t *ids = NULL;
        char *text = NULL;
        size_t text_len = 0;
        char b1[32], b2[32];
        FILE *f;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!geo || !ret)
                return topo_fail(ret_error, -EINVAL, "no FAM geometry");
        *ret = NULL;
        if (!is_power_of_two_u64(geo->book_size) || geo->book_size < INI_MIN_BOOK || geo->book_size > INI_MAX_BOOK)
                return topo_fail(ret_error, -EINVAL, "book size %s is not a power of two from 2M to 8G, which tm-book-register requires",
                                 size_str(geo->book_size, b1));
        if (geo->books_per_node < 4 || geo->books_per_node % 4 || geo->books_per_node > TOPOLOGY_MAX_BOOKS_PER_IG)
                return topo_fail(ret_error, -EINVAL, "%" PRIu32 " books per node is not a multiple of 4 from 4 to %u, which tm-book-register requires",
                                 geo->books_per_node, TOPOLOGY_MAX_BOOKS_PER_IG);
        if (geo->node_count < 1)
                return topo_fail(ret_error, -EINVAL, "a FAM without nodes has no topology");
        for (const char *p = comment; p && *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return topo_fail(ret_error, -EINVAL, "the topology comment contains a control character; it must fit on one line");

        ids = calloc(geo->node_count, sizeof *ids);
        if (!ids)
                return -ENOMEM;
        for (uint32_t n = 1; n <= geo->node_count; n++) {
                r = topology_node_id_for(geo, n, &ids[n - 1], ret_error);
                if (r < 0)
                        return r;
        }

        f = open_memstream(&text, &text_len);
        if (!f)
                return -ENOMEM;
        size_str(geo->book_size, b1);
        fprintf(f, "# tm-librarian topology%s%s, written by FAM/E (docs/topology.md)\n",
                comment && *comment ? " of " : "", comment ? comment : "");
        fprintf(f, "# %" PRIu32 " node%s x %" PRIu32 " books of %s = %s each; the book area starts at FAM offset 0x%" PRIx64 " (book_area_offset)\n",
                geo->node_count, geo->node_count == 1 ? "" : "s", geo->books_per_node, b1,
                size_str((uint64_t) geo->books_per_node * geo->book_size, b2), geo->book_area_offset);
        fprintf(f, "[global]\nnode_count = %" PRIu32 "\nbook_size_bytes = %s\n", geo->node_count, b1);
        if (geo->nodes_per_enclosure == TOPOLOGY_MAX_NODES_PER_ENCLOSURE)
                fprintf(f, "nvm_size_per_node = %" PRIu32 "B\n", geo->books_per_node);
        else
                for (uint32_t n = 1; n <= geo->node_count; n++) {
                        struct fame_coord coord;
                        (void) fame_geometry_coord(geo, n, &coord);
                        fprintf(f, "\n# FAM/E node %" PRIu32 ": enclosure %" PRIu32 ", node %" PRIu32 " in it\n"
                                "[node%02" PRIu32 "]\nnode_id = %" PRIu32 "\nnvm_size = %" PRIu32 "B\n",
                                n, coord.enclosure, coord.node_in_enclosure, ids[n - 1], ids[n - 1], geo->books_per_node);
                }
        if (ferror(f)) {
                fclose(f);
                free(text);
                return -ENOMEM;
        }
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}
