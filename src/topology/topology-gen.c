/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The topologies FAM/E writes for a FAM (topology.h): the Librarian node id of each FAM/E
 * node from the FAM's geometry, the INI text `fame-librarian topology` prints, and the TMCF
 * JSON `fame up` gives the Librarian: the same nodes, interleave groups and books, with The
 * Machine's full coordinates.
 */
#include <errno.h>
#include <json-c/json.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "fame.h"
#include "fame-constants.h"
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

/* What both forms need of the geometry, checked once; the node ids (caller frees). */
static int check_geometry(const struct fame_geometry *geo, const char *comment, uint32_t **ret_ids, char **ret_error) {
        char b1[32];
        if (ret_error)
                *ret_error = NULL;
        if (!geo)
                return topo_fail(ret_error, -EINVAL, "no FAM geometry");
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
        _cleanup_free_ uint32_t *ids = calloc(geo->node_count, sizeof *ids);
        if (!ids)
                return -ENOMEM;
        for (uint32_t n = 1; n <= geo->node_count; n++) {
                int r = topology_node_id_for(geo, n, &ids[n - 1], ret_error);
                if (r < 0)
                        return r;
        }
        *ret_ids = TAKE_PTR(ids);
        return 0;
}

int topology_ini_for_geometry(const struct fame_geometry *geo, const char *comment, char **ret, char **ret_error) {
        _cleanup_free_ uint32_t *ids = NULL;
        char *text = NULL;
        size_t text_len = 0;
        char b1[32], b2[32];
        FILE *f;

        if (!ret)
                return topo_fail(ret_error, -EINVAL, "no FAM geometry");
        *ret = NULL;
        int r = check_geometry(geo, comment, &ids, ret_error);
        if (r < 0)
                return r;

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

int topology_tmcf_for_geometry(const struct fame_geometry *geo, char **ret, char **ret_error) {
        _cleanup_free_ uint32_t *ids = NULL;
        if (!ret)
                return topo_fail(ret_error, -EINVAL, "no FAM geometry");
        *ret = NULL;
        int r = check_geometry(geo, NULL, &ids, ret_error);
        if (r < 0)
                return r;

        char b[64], top[] = TOPOLOGY_DATACENTER;
        struct json_object *o = json_object_new_object(), *racks = json_object_new_array(), *igs = json_object_new_array(),
                           *servers = json_object_new_array(), *server = json_object_new_object(),
                           *services = json_object_new_array(), *lib = json_object_new_object();
        if (!o || !racks || !igs || !servers || !server || !services || !lib) {
                json_object_put(o);
                json_object_put(racks);
                json_object_put(igs);
                json_object_put(servers);
                json_object_put(server);
                json_object_put(services);
                json_object_put(lib);
                return -ENOMEM;
        }
        json_object_object_add(o, "coordinate", json_object_new_string(top));
        /* where the Librarian is, and its book size, as The Machine's management server said */
        json_object_object_add(server, "coordinate", json_object_new_string("Rack/1/MgmtServer/U41"));
        json_object_object_add(server, "ipv4Address", json_object_new_string("torms"));
        json_object_object_add(lib, "service", json_object_new_string("librarian"));
        json_object_object_add(lib, "bookSize", json_object_new_string(size_str(geo->book_size, b)));
        json_object_object_add(lib, "port", json_object_new_int(FAME_LIBRARIAN_PORT));
        json_object_array_add(services, lib);
        json_object_object_add(server, "services", services);
        json_object_array_add(servers, server);
        json_object_object_add(o, "servers", servers);
        json_object_object_add(o, "racks", racks);
        json_object_object_add(o, "interleaveGroups", igs);

        struct json_object *rack = NULL, *encs = NULL, *nodes = NULL;
        uint32_t cur_rack = 0, cur_enc = 0;
        uint64_t mc_size = (uint64_t) geo->books_per_node / TOPOLOGY_MCS_PER_NODE * geo->book_size;
        for (uint32_t n = 1; n <= geo->node_count; n++) {
                struct fame_coord c;
                (void) fame_geometry_coord(geo, n, &c);
                if (!rack || c.rack != cur_rack) {
                        rack = json_object_new_object();
                        encs = json_object_new_array();
                        snprintf(b, sizeof b, "Rack/%" PRIu32, c.rack);
                        json_object_object_add(rack, "coordinate", json_object_new_string(b));
                        json_object_object_add(rack, "enclosures", encs);
                        json_object_array_add(racks, rack);
                        cur_rack = c.rack;
                        cur_enc = 0;
                }
                if (!nodes || c.enclosure != cur_enc) {
                        struct json_object *enc = json_object_new_object();
                        nodes = json_object_new_array();
                        snprintf(b, sizeof b, "Enclosure/%" PRIu32 "/EncNum/%" PRIu32, c.enclosure_in_rack, c.enclosure);
                        json_object_object_add(enc, "coordinate", json_object_new_string(b));
                        json_object_object_add(enc, "nodes", nodes);
                        json_object_array_add(encs, enc);
                        cur_enc = c.enclosure;
                }
                char node_path[256];
                snprintf(node_path, sizeof node_path, "%s/Rack/%" PRIu32 "/Enclosure/%" PRIu32 "/EncNum/%" PRIu32 "/Node/%" PRIu32,
                         top, c.rack, c.enclosure_in_rack, c.enclosure, c.node_in_enclosure);
                struct json_object *node = json_object_new_object(), *soc = json_object_new_object(),
                                   *mcs = json_object_new_array(), *ig = json_object_new_object(), *ig_mcs = json_object_new_array();
                snprintf(b, sizeof b, "Node/%" PRIu32, c.node_in_enclosure);
                json_object_object_add(node, "coordinate", json_object_new_string(b));
                snprintf(b, sizeof b, "%" PRIu32 ":%" PRIu32 ":%" PRIu32, c.rack, c.enclosure, c.node_in_enclosure);
                json_object_object_add(node, "serialNumber", json_object_new_string(b));
                json_object_object_add(soc, "coordinate", json_object_new_string("SocBoard/1/Soc/1"));
                snprintf(b, sizeof b, "node%02" PRIu32, n);
                json_object_object_add(soc, "hostname", json_object_new_string(b));
                /* the MACs tm-book-register gives an INI topology's nodes */
                snprintf(b, sizeof b, "52:54:42:%02" PRIu32 ":%02" PRIu32 ":%02" PRIu32, ids[n - 1], ids[n - 1], ids[n - 1]);
                json_object_object_add(soc, "macAddress", json_object_new_string(b));
                json_object_object_add(soc, "tlsPublicCertificate", json_object_new_string("NotToday"));
                json_object_object_add(node, "soc", soc);
                for (uint32_t m = 1; m <= TOPOLOGY_MCS_PER_NODE; m++) {
                        struct json_object *mc = json_object_new_object();
                        snprintf(b, sizeof b, "MemoryBoard/1/MediaController/%" PRIu32, m);
                        json_object_object_add(mc, "coordinate", json_object_new_string(b));
                        json_object_object_add(mc, "memorySize", json_object_new_int64((int64_t) mc_size));
                        json_object_array_add(mcs, mc);
                        char full[320];
                        snprintf(full, sizeof full, "%s/%s", node_path, b);
                        json_object_array_add(ig_mcs, json_object_new_string(full));
                }
                json_object_object_add(node, "mediaControllers", mcs);
                json_object_array_add(nodes, node);
                /* the node's memory is one interleave group, numbered as the INI form numbers it */
                json_object_object_add(ig, "groupId", json_object_new_int((int32_t) (ids[n - 1] - 1)));
                json_object_object_add(ig, "mediaControllers", ig_mcs);
                json_object_array_add(igs, ig);
        }
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
        *ret = text ? strdup(text) : NULL;
        json_object_put(o);
        return *ret ? 0 : -ENOMEM;
}
