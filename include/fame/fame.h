/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libfame: find fabric-attached memory (FAM) and work on it.
 *
 * The same code runs inside a FAM/E node (it maps BAR2 of the ivshmem-plain PCI device,
 * 1af4:1110) and in a plain host process (it maps the FAM backing file).  See
 * docs/fam-format.md for the on-FAM layout and docs/libfame.md for this API.
 *
 * Conventions: functions that can fail return >= 0 on success or a negative errno value.
 * The library never prints; install a log callback with fame_set_log() to see why a call
 * failed.  Output parameters are named ret_* and come last.
 */
#ifndef FAME_FAME_H
#define FAME_FAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FAME_FORMAT_MAJOR 1
#define FAME_FORMAT_MINOR 0

/* Limits of on-FAM format version 1 (docs/fam-format.md). */
#define FAME_MAX_NODES           128u                    /* 7-bit interleave group in an LZA */
#define FAME_MIN_BOOK_SIZE       (UINT64_C(2) << 20)     /* 2 MiB, as tm-book-register */
#define FAME_MAX_BOOK_SIZE       (UINT64_C(8) << 30)     /* 8 GiB, a book of The Machine */
#define FAME_MAX_BOOKS_PER_NODE  8192u                   /* 13-bit book number in an LZA */
#define FAME_DEFAULT_BOOK_SIZE   (UINT64_C(8) << 20)
#define FAME_DEFAULT_NODES       4u
#define FAME_DEFAULT_NODES_PER_ENCLOSURE   10u
#define FAME_DEFAULT_ENCLOSURES_PER_RACK   4u
#define FAME_SLOT_SIZE           4096u

/* ---- logging ---------------------------------------------------------------------------- */

/* priority uses syslog levels: LOG_CRIT = 2 (a misused fam atomic, right before SIGSEGV/SIGBUS),
 * LOG_ERR = 3, LOG_WARNING = 4, LOG_INFO = 6, LOG_DEBUG = 7. */
typedef void (*fame_log_fn)(int priority, const char *message, void *userdata);

/* Process-wide; NULL silences the library (the default). */
void fame_set_log(fame_log_fn fn, void *userdata);

/* ---- geometry --------------------------------------------------------------------------- */

struct fame_geometry {
        uint32_t version_major;
        uint32_t version_minor;
        uint64_t total_size;            /* bytes; a power of two; = file size = BAR2 size */
        uint64_t book_size;             /* bytes; a power of two */
        uint64_t meta_offset;           /* metadata area: [meta_offset, book_area_offset) */
        uint64_t meta_size;
        uint64_t slots_offset;          /* per-node slots: FAME_SLOT_SIZE bytes each */
        uint32_t slot_count;
        uint32_t slot_size;
        uint64_t doorbell_offset, doorbell_size;     /* reserved for doorbells */
        uint64_t librarian_offset, librarian_size;   /* reserved for the Librarian */
        uint64_t book_area_offset;      /* first byte of book 0 of node 1 */
        uint64_t books_total;           /* whole books that fit in the book area */
        uint32_t books_per_node;        /* books handed to each node (a multiple of 4) */
        uint32_t node_count;
        uint32_t nodes_per_enclosure;
        uint32_t enclosures_per_rack;
        uint32_t enclosure_count;
        uint32_t rack_count;
        uint8_t uuid[16];
        uint64_t created;               /* seconds since the epoch */
};

/* Where a node sits in the Machine's topology; all numbers count from 1. */
struct fame_coord {
        uint32_t node_id;
        uint32_t rack;
        uint32_t enclosure;             /* across the whole machine */
        uint32_t enclosure_in_rack;
        uint32_t node_in_enclosure;
        uint32_t interleave_group;      /* node_id - 1 */
};

struct fame_create_params {
        uint64_t total_size;            /* required */
        uint64_t book_size;             /* 0: FAME_DEFAULT_BOOK_SIZE */
        uint32_t node_count;            /* 0: FAME_DEFAULT_NODES */
        uint32_t nodes_per_enclosure;   /* 0: FAME_DEFAULT_NODES_PER_ENCLOSURE */
        uint32_t enclosures_per_rack;   /* 0: FAME_DEFAULT_ENCLOSURES_PER_RACK */
        bool have_uuid;                 /* false: a random version-4 UUID */
        uint8_t uuid[16];
        int64_t created;                /* < 0: now (or $SOURCE_DATE_EPOCH when set) */
};

/* Computes the layout a FAM with these parameters would have; validates them. */
int fame_geometry_compute(const struct fame_create_params *params, struct fame_geometry *ret_geo);

int fame_geometry_coord(const struct fame_geometry *geo, uint32_t node_id, struct fame_coord *ret_coord);

/* Byte offset (into the FAM file / BAR2) of book book_num of interleave group ig
 * (ig = node_id - 1), using the FAME formula: book_area_offset + ig * books_per_node *
 * book_size + book_num * book_size.  Returns -ERANGE when out of the geometry. */
int64_t fame_geometry_book_offset(const struct fame_geometry *geo, uint32_t ig, uint64_t book_num);

/* Same for a book id in LZA form: (ig << 46) | (book_num << 33). */
int64_t fame_geometry_lza_offset(const struct fame_geometry *geo, uint64_t lza);

static inline uint64_t fame_lza(uint32_t ig, uint64_t book_num) {
        return ((uint64_t) ig << 46) | (book_num << 33);
}

/* ---- FAM files on the host ---------------------------------------------------------------- */

enum {
        FAME_CREATE_FORCE = 1 << 0,     /* replace an existing file, even a valid FAM */
};

/* Creates a sparse FAM file atomically (temporary file + rename): never half-written.
 * Refuses (-EEXIST) to replace an existing non-empty file without FAME_CREATE_FORCE. */
int fame_file_create(const char *path, const struct fame_create_params *params, unsigned flags,
                     struct fame_geometry *ret_geo);

/* Reads and validates the header of a FAM file without mapping or modifying it. */
int fame_file_inspect(const char *path, struct fame_geometry *ret_geo);

/* Validates a raw header (at least 256 bytes) against the size of the region holding it.
 * On failure returns a negative errno and, when err is not NULL, a one-line reason. */
int fame_header_check(const void *header, size_t header_len, uint64_t region_size,
                      struct fame_geometry *ret_geo, char *err, size_t errlen);

/* ---- mapping FAM ------------------------------------------------------------------------ */

struct fame;

enum {
        FAME_OPEN_RDONLY   = 1 << 0,    /* map read-only; implies FAME_OPEN_NOREGISTER */
        FAME_OPEN_NOREGISTER = 1 << 1,  /* do not register the mapping for fam_atomic_* */
        FAME_OPEN_POPULATE = 1 << 2,    /* pre-fault the whole mapping (with LAZY: each part as mapped) */
        FAME_OPEN_LAZY     = 1 << 3,    /* map the header and node slots now, books at first use */
};

/*
 * Opens FAM.  path may be:
 *   - NULL: $FAME_PATH if set, else the first ivshmem PCI device (1af4:1110) whose BAR2 holds
 *     a valid FAM header ($FAME_PCI_DEVICE may name one, e.g. 0000:00:04.0);
 *   - a file name: that FAM backing file;
 *   - "pci:" or "pci:BDF": an ivshmem device.
 * The header is validated before the mapping is handed out.  Unless FAME_OPEN_NOREGISTER is
 * given, the mapping is registered for the fam_atomic_* functions.
 */
int fame_open(const char *path, unsigned flags, struct fame **ret);

/* Unmaps and frees; accepts NULL. */
void fame_close(struct fame *fam);

/*
 * The whole FAM as one mapping: FAM byte x at fame_base() + x.  NULL on a handle opened with
 * FAME_OPEN_LAZY, which maps only part of FAM: use fame_map_range() (or fame_slot(),
 * fame_book()) there.
 *
 * FAME_OPEN_LAZY is for processes that touch little of a large FAM.  In a node, mapping BAR2
 * through sysfs fills every page-table entry at once (8 bytes per 4 KiB page: 32 MiB for
 * 16 GiB, and the time to fill them); a lazy handle maps the header page, the node slots and
 * the doorbell and librarian areas at fame_open(), and each book (a book_size-aligned,
 * book_size-long part of FAM; the metadata area counts as book 0's place) the first time
 * fame_map_range() or fame_book() asks for a byte of it.  Mappings stay until fame_close().
 * Address space for the whole FAM is reserved at once (PROT_NONE, no memory and no page
 * tables), so that every part sits at the same place relative to the others as in FAM: a
 * range may span books, and fam_atomic_* (unless FAME_OPEN_NOREGISTER) work on every mapped
 * part.  In a node each mapped book is one entry of the process's mappings
 * (vm.max_map_count, 65530 by default).
 */
void *fame_base(const struct fame *fam);

/*
 * Points *ret at FAM bytes [offset, offset + len), mapping what is not mapped yet (lazy
 * handles; thread-safe), else fame_base() + offset.  The pointer stays valid until
 * fame_close().  Errors: -ERANGE when the range is not inside FAM, -EINVAL without fam or
 * ret, or the mmap error (-ENOMEM when the process has too many mappings).
 */
int fame_map_range(struct fame *fam, uint64_t offset, uint64_t len, void **ret);
uint64_t fame_size(const struct fame *fam);
const struct fame_geometry *fame_get_geometry(const struct fame *fam);

/* "file" or "pci" */
const char *fame_source_kind(const struct fame *fam);
/* The file name, or the sysfs directory of the PCI device. */
const char *fame_source_path(const struct fame *fam);
/* Guest-physical address of BAR2 for PCI sources, 0 for files. */
uint64_t fame_bar_address(const struct fame *fam);

/*
 * This node's id (1..node_count), 0 when unknown.  Taken from $FAME_NODE, else (in a node)
 * fw_cfg entry opt/org.fame/node, else the kernel command line (fame.node=N).
 */
uint32_t fame_node_id(const struct fame *fam);
/* Cluster name passed the same ways (FAME_CLUSTER, opt/org.fame/cluster, fame.cluster=). */
const char *fame_cluster_name(const struct fame *fam);
/* Number of nodes in the cluster (FAME_NODES, opt/org.fame/nodes, fame.nodes=), 0 if unknown. */
uint32_t fame_cluster_node_count(const struct fame *fam);
/* This node's coordinate, e.g. "Rack/1/Enclosure/1/Node/3" (FAME_COORDINATE or
 * opt/org.fame/coordinate), NULL if not given. */
const char *fame_node_coordinate(const struct fame *fam);

/* Address of the given node's slot (docs/fam-format.md), NULL when out of range. */
void *fame_slot(const struct fame *fam, uint32_t node_id);

/* The first 64 bytes of every node slot (format 1.0).  Little-endian; update the fields with
 * fam_atomic_* so that every node sees them at once.  Bytes 64..4095 are the application's. */
struct fame_slot_header {
        uint32_t node_id;               /* N, written by node N when it joins */
        uint32_t state;                 /* FAME_SLOT_* */
        uint64_t join_count;            /* joins since the FAM was created */
        uint64_t heartbeat_ns;          /* CLOCK_REALTIME of the last join or heartbeat */
        uint64_t boot;                  /* the boot nonce the cluster runtime gave this boot */
        uint8_t reserved[32];
};
enum { FAME_SLOT_NEVER = 0, FAME_SLOT_UP = 1, FAME_SLOT_DOWN = 2 };
#define FAME_SLOT_APP_OFFSET 64u

/* Address of a book, or NULL when out of the geometry.  On a lazy handle the book is mapped
 * first (only that book: for several, use fame_map_range()); NULL (errno set) if that fails. */
void *fame_book(const struct fame *fam, uint32_t ig, uint64_t book_num);

/* ---- the Librarian: shelves of books (docs/librarian.md) --------------------------------- */

/*
 * A connection to the cluster's Librarian.  address "HOST:PORT"; NULL or "" means
 * $FAME_LIBRARIAN if set, else "torms:9093" (inside a node, torms is the host; without a
 * resolver for it, 10.0.2.100).  Requests carry this process's uid, gid and pid and the node
 * id given by fame_librarian_set_node() (default: $FAME_NODE, else the node this process runs
 * in, else 1 on the host).
 */
struct fame_librarian;
int fame_librarian_connect(const char *address, struct fame_librarian **ret);
void fame_librarian_disconnect(struct fame_librarian *lib);
/* node_id is the Librarian's node id ((enclosure-1)*10 + node in enclosure; 1..80). */
int fame_librarian_set_node(struct fame_librarian *lib, uint32_t node_id);
/* The Librarian node id of FAM/E node n of this FAM (see docs/librarian.md), 0 if none. */
uint32_t fame_librarian_node_id(const struct fame_geometry *geo, uint32_t n);
/* The reason the last call on lib failed (one line, never NULL). */
const char *fame_librarian_error(const struct fame_librarian *lib);

/* A shelf opened through the Librarian. */
struct fame_shelf;
enum {
        FAME_SHELF_CREATE = 1 << 0,     /* create it if it does not exist (mode applies) */
        FAME_SHELF_EXCL   = 1 << 1,     /* with CREATE: fail with -EEXIST if it exists */
        FAME_SHELF_MODE_EXACT = 1 << 2, /* with CREATE: mode as given (0 is 0), without the umask */
};
/*
 * Opens (or creates) shelf path.  fam is where the shelf's books are mapped from (a node's
 * BAR2 or the host's FAM file); lib may be NULL to connect to the default address (the
 * connection is then owned by the shelf).  With lib, fam may be NULL: the shelf can then be
 * sized but not mapped (fame_shelf_map() fails with EINVAL, fame_shelf_book_offset() with
 * -EINVAL).  mode: permission bits of a created shelf, 0 for 0666, less the process's umask.
 * Errors: -ENOENT, -EEXIST, -EACCES, -EISDIR, -ECONNREFUSED...; the Librarian's reason is
 * logged (fame_set_log) and given by fame_librarian_error().
 */
int fame_shelf_open(struct fame *fam, struct fame_librarian *lib, const char *path, unsigned flags,
                    uint32_t mode, struct fame_shelf **ret);
/* Grows (allocating books by the shelf's allocation policy) or shrinks (freeing books, which
 * the Librarian zeroes before reuse).  An existing mapping is rebuilt: its address may change. */
int fame_shelf_resize(struct fame_shelf *shelf, uint64_t size);
uint64_t fame_shelf_size(const struct fame_shelf *shelf);
/* Number of books and the FAM byte offset of book i (0 <= i < count). */
uint64_t fame_shelf_book_count(const struct fame_shelf *shelf);
int64_t fame_shelf_book_offset(const struct fame_shelf *shelf, uint64_t i);
/*
 * Maps all books of the shelf into one contiguous range (book i at i * book_size), each a
 * MAP_SHARED mapping of its book in FAM, registered for fam_atomic_*.  *ret_len (optional) is
 * book_count * book_size.  NULL with errno set on failure, or when the shelf has no books
 * (errno ENODATA).  The mapping lives until fame_shelf_close() or the next resize.
 */
void *fame_shelf_map(struct fame_shelf *shelf, size_t *ret_len);
/* Unmaps, closes the Librarian handle, frees.  NULL is fine. */
int fame_shelf_close(struct fame_shelf *shelf);

/* ---- ordering and persistence ------------------------------------------------------------ */

/* Writes back the cache lines covering [addr, addr+len) (clwb, else clflushopt, else clflush
 * on x86_64; dc cvac on aarch64) and fences.  Safe on any memory. */
void fame_persist(const void *addr, size_t len);

/* Writes back and invalidates the lines, so that the next load reads FAM, then fences. */
void fame_invalidate(const void *addr, size_t len);

/* Full memory barrier (loads and stores). */
void fame_fence(void);

/* Which cache-line instruction fame_persist() uses: "clwb", "clflushopt", "clflush", "dc cvac". */
const char *fame_persist_method(void);

/* ---- misc ----------------------------------------------------------------------------- */

const char *fame_version(void);

/* Formats a UUID as 36 characters plus NUL. */
void fame_uuid_format(const uint8_t uuid[16], char ret_str[37]);
int fame_uuid_parse(const char *s, uint8_t ret_uuid[16]);

#ifdef __cplusplus
}
#endif

#endif
