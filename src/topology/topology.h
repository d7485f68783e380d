/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Librarian topology (src/topology/, a library of its own: the Librarian reads topologies, the
 * cluster writes them): what tm-book-register reads (docs/topology.md, docs/librarian-model.md)
 * turned into the rows the Librarian's database holds.
 *
 * Two input forms:
 *   - the INI form of book_register.py ([global] + short form with nvm_size_per_node, or long
 *     form with one [nodeNN] section per node; LZA, or PHYSADDR with "SIZE @ 0xADDR" lines);
 *   - the TMCF JSON form (/etc/tmconfig: racks → enclosures → nodes → mediaControllers,
 *     interleaveGroups, the librarian service's bookSize).
 * JSON is tried first (the text starts with '{' after white space), then INI.
 *
 * And one output form: the INI text FAM/E generates for a cluster (topology_ini_for_geometry).
 *
 * Pure functions: no I/O except topology_parse_file() reading its file.  Errors: negative errno
 * and *ret_error set to one line (malloc'ed) that names the file/line or JSON member, says what
 * is wrong and how to fix it, e.g.
 *   "topo.ini:3: book_size_bytes = 3M is not a power of two from 2M to 8G; use e.g. 8M".
 */
#ifndef FAME_TOPOLOGY_H
#define FAME_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

struct fame_geometry;

enum topology_mode {
        TOPOLOGY_LZA = 0,               /* BIImode 0: MFT, FAME */
        TOPOLOGY_PHYSADDR = 1,          /* BIImode 1: "SIZE @ 0xADDR" ranges */
};

#define TOPOLOGY_MAX_NODE_ID    80u
#define TOPOLOGY_MAX_IGS        128u
#define TOPOLOGY_MAX_BOOKS_PER_IG 8192u
#define TOPOLOGY_MCS_PER_NODE   4u
/* The datacenter FAM/E's generated TMCF topology places its racks in (HPE's fame.json: pa1) */
#define TOPOLOGY_DATACENTER     "/MachineVersion/1/Datacenter/pa1"

/* One FAModules row (LZA only). */
struct topology_mc {
        uint32_t ig;                    /* FAModules.IG */
        uint64_t module_size_books;
        uint64_t raw_cid;               /* (enc-1)<<9 | (node-1)<<4 | (8+ordinal) */
        char *coordinate;               /* "MemoryBoard/1/MediaController/<1-4>" */
        uint64_t memory_size;           /* bytes = books × book size */
};

/* One PHYSADDR range of a node (PHYSADDR only). */
struct topology_range {
        uint64_t size, addr;            /* bytes; addr book-aligned, >= book size; 0 @ 0 = none */
};

struct topology_node {
        uint32_t node_id;               /* (enc-1)*10 + node, 1..80 */
        uint32_t rack, enc, node;       /* rack 1 for INI; enc 1..8; node 1..10 */
        char *rack_name;                /* TMCF: the rack's name (last element of its coordinate)
                                         * when it is not a number (FRDnodes.rack is then TEXT) */
        char *hostname;                 /* "node%02d" of node_id unless TMCF says otherwise */
        char *coordinate;               /* FRDnodes.coordinate, INI: "Node/<node>"... see model §2 */
        char *serial;                   /* FRDnodes.serialNumber, INI: "1:<enc>:<node>" */
        char *mac;                      /* SOCs.MAC, INI: "52:54:42:NN:NN:NN" */
        char *soc_coordinate;           /* SOCs.coordinate, INI: "SocBoard/1/Soc/1" */
        char *tls_certificate;          /* SOCs.tlsPublicCertificate, INI: "NotToday" */
        uint32_t ig;                    /* LZA: the node's interleave group (node_id-1 for INI) */
        uint64_t books;                 /* books this node contributes */
        struct topology_mc *mcs;        /* LZA: 4 for INI */
        size_t n_mcs;
        struct topology_range *ranges;  /* PHYSADDR */
        size_t n_ranges;
};

/* One books row, in id order within the array topology_books() returns. */
struct topology_book {
        uint64_t id;                    /* LZA: (ig << 46) | (book_num << 33); PHYSADDR: address */
        uint32_t intlv_group;           /* LZA: ig; PHYSADDR: (1 << 16) | (node_id - 1) */
        uint32_t book_num;              /* index within the IG (PHYSADDR: across the node's ranges) */
};

struct topology {
        enum topology_mode mode;
        uint64_t book_size;             /* bytes, power of two */
        uint64_t nvm_bytes_total;       /* sum of all nodes' books × book_size */
        uint64_t books_total;           /* nvm_bytes_total / book_size */
        struct topology_node *nodes;    /* ascending node_id */
        size_t n_nodes;
        char *enclosure_u[9];           /* [enclosureN] u= for N 1..8 (NULL: "UV") */
};

/* Parses text (len bytes, need not be NUL-terminated); name is used in error messages. */
int topology_parse(const char *text, size_t len, const char *name, struct topology **ret,
                   char **ret_error);
/* Reads path (at most 16 MiB) and parses it. */
int topology_parse_file(const char *path, struct topology **ret, char **ret_error);
void topology_free(struct topology *t);

/* Every book of the topology in ascending id order; *ret_n = books_total. */
int topology_books(const struct topology *t, struct topology_book **ret, size_t *ret_n);

/* The node with this node_id, or NULL. */
const struct topology_node *topology_find_node(const struct topology *t, uint32_t node_id);

/*
 * The Librarian node id of FAM/E node n (1..node_count) of a FAM: enclosure e and node-in-
 * enclosure k from fame_geometry_coord(), node_id = (e-1)*10 + k.  -ERANGE (with *ret_error)
 * when the geometry cannot be expressed (more than 10 nodes per enclosure or 8 enclosures).
 */
int topology_node_id_for(const struct fame_geometry *geo, uint32_t n, uint32_t *ret_node_id,
                         char **ret_error);

/*
 * The INI topology of a FAM/E FAM (what `fame up` writes to STATE/topology.ini): book size and
 * books_per_node from geo; the short form ([global] node_count, book_size_bytes,
 * nvm_size_per_node = <books>B) when nodes_per_enclosure is 10, else the long form with one
 * [nodeNN] section per node (node_id from topology_node_id_for(), nvm_size = <books>B).
 * Begins with a comment line naming `comment` (e.g. the cluster name).  Parsing the result
 * with topology_parse() gives books whose FAM offsets (topology_book_offset) are exactly
 * fame_geometry_book_offset(geo, n-1, book_num).
 */
int topology_ini_for_geometry(const struct fame_geometry *geo, const char *comment, char **ret,
                              char **ret_error);

/*
 * The same topology in TMCF JSON (what `fame up` gives its Librarian, STATE/librarian/
 * topology.json): the same node ids, interleave groups (node_id - 1), books and FAM offsets,
 * with The Machine's full coordinates (TOPOLOGY_DATACENTER/Rack/R/Enclosure/E/EncNum/N/Node/K,
 * SocBoard/1/Soc/1 and four MemoryBoard/1/MediaController/M under each node), serial numbers
 * R:N:K and the MACs tm-book-register gives INI nodes.
 */
int topology_tmcf_for_geometry(const struct fame_geometry *geo, char **ret, char **ret_error);

/*
 * The byte offset of book `book_id` in the FAM file / BAR2 (librarian-model.md §12, shifted
 * by book_area_offset as docs/fam-format.md explains): igstart[g] is the sum of the books of
 * all IGs below g times book_size, offset = book_area_offset + igstart[ig] + book_num ×
 * book_size.  LZA only; -EINVAL for a PHYSADDR topology or an id not in the topology.
 */
int topology_book_offset(const struct topology *t, uint64_t book_area_offset, uint64_t book_id,
                         uint64_t *ret_offset);

#endif
