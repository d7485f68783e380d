/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The on-FAM format, version 1: header, metadata area and book area (docs/fam-format.md).
 * Everything here is a pure function of its inputs except fame_file_create/inspect.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "fame-internal.h"

/* ---- CRC-32C (Castagnoli, reflected, as in iSCSI/ext4) ---------------------------------- */

uint32_t fame_crc32c(const void *buf, size_t len) {
        static uint32_t table[256];
        static int ready;
        const uint8_t *p = buf;
        uint32_t crc = 0xffffffffu;

        if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
                for (uint32_t i = 0; i < 256; i++) {
                        uint32_t c = i;
                        for (int k = 0; k < 8; k++)
                                c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
                        table[i] = c;       /* racing writers store the same values */
                }
                __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
        }
        while (len--)
                crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return crc ^ 0xffffffffu;
}

/* ---- header field offsets (docs/fam-format.md, "Header") --------------------------------- */

enum {
        H_MAGIC = 0x00,
        H_VERSION_MAJOR = 0x08,
        H_VERSION_MINOR = 0x0c,
        H_HEADER_SIZE = 0x10,
        H_FLAGS = 0x14,
        H_TOTAL_SIZE = 0x18,
        H_BOOK_SIZE = 0x20,
        H_META_OFFSET = 0x28,
        H_META_SIZE = 0x30,
        H_BOOK_AREA_OFFSET = 0x38,
        H_BOOKS_TOTAL = 0x40,
        H_NODE_COUNT = 0x48,
        H_BOOKS_PER_NODE = 0x4c,
        H_NODES_PER_ENCLOSURE = 0x50,
        H_ENCLOSURES_PER_RACK = 0x54,
        H_ENCLOSURE_COUNT = 0x58,
        H_RACK_COUNT = 0x5c,
        H_UUID = 0x60,
        H_CREATED = 0x70,
        H_SLOT_COUNT = 0x78,
        H_SLOT_SIZE = 0x7c,
        H_SLOTS_OFFSET = 0x80,
        H_DOORBELL_OFFSET = 0x88,
        H_DOORBELL_SIZE = 0x90,
        H_LIBRARIAN_OFFSET = 0x98,
        H_LIBRARIAN_SIZE = 0xa0,
        H_RESERVED = 0xa8,      /* ... 0xf7, zero */
        H_CHECKSUM = 0xf8,      /* CRC-32C of bytes 0x00..0xf7 */
        H_RESERVED2 = 0xfc,
};

static uint64_t align_up(uint64_t v, uint64_t a) {
        return (v + a - 1) & ~(a - 1);
}

static uint32_t div_round_up(uint32_t a, uint32_t b) {
        return (a + b - 1) / b;
}

static void format_size(uint64_t v, char *buf, size_t len) {
        static const char *units[] = { "", "K", "M", "G", "T", "P", "E" };
        unsigned u = 0;

        while (u + 1 < ELEMENTSOF(units) && v >= 1024 && v % 1024 == 0) {
                v /= 1024;
                u++;
        }
        snprintf(buf, len, "%" PRIu64 "%s", v, units[u]);
}

/* Validates parameters and computes the layout; writes a one-line reason into err. */
static int geometry_compute(const struct fame_create_params *p, struct fame_geometry *g, char *err, size_t errlen) {
        char a[32], b[32];

        *g = (struct fame_geometry) {
                .version_major = FAME_FORMAT_MAJOR,
                .version_minor = FAME_FORMAT_MINOR,
                .total_size = p->total_size,
                .book_size = p->book_size ? p->book_size : FAME_DEFAULT_BOOK_SIZE,
                .node_count = p->node_count ? p->node_count : FAME_DEFAULT_NODES,
                .nodes_per_enclosure = p->nodes_per_enclosure ? p->nodes_per_enclosure : FAME_DEFAULT_NODES_PER_ENCLOSURE,
                .enclosures_per_rack = p->enclosures_per_rack ? p->enclosures_per_rack : FAME_DEFAULT_ENCLOSURES_PER_RACK,
        };

        if (!is_power_of_two_u64(g->total_size)) {
                format_size(g->total_size, a, sizeof a);
                snprintf(err, errlen, "FAM size %s (%" PRIu64 " bytes) is not a power of two (IVSHMEM's BAR2 must be); use e.g. 512M, 1G or 2G",
                         a, g->total_size);
                return -EINVAL;
        }
        if (!is_power_of_two_u64(g->book_size) || g->book_size < FAME_MIN_BOOK_SIZE || g->book_size > FAME_MAX_BOOK_SIZE) {
                format_size(g->book_size, a, sizeof a);
                snprintf(err, errlen, "book size %s is not a power of two from 2M to 8G", a);
                return -EINVAL;
        }
        if (g->node_count < 1 || g->node_count > FAME_MAX_NODES) {
                snprintf(err, errlen, "node count %" PRIu32 " is out of range (1 to %u)", g->node_count, FAME_MAX_NODES);
                return -EINVAL;
        }
        if (g->nodes_per_enclosure < 1 || g->nodes_per_enclosure > FAME_MAX_NODES) {
                snprintf(err, errlen, "nodes per enclosure %" PRIu32 " is out of range (1 to %u)", g->nodes_per_enclosure, FAME_MAX_NODES);
                return -EINVAL;
        }
        if (g->enclosures_per_rack < 1 || g->enclosures_per_rack > FAME_MAX_NODES) {
                snprintf(err, errlen, "enclosures per rack %" PRIu32 " is out of range (1 to %u)", g->enclosures_per_rack, FAME_MAX_NODES);
                return -EINVAL;
        }

        g->meta_offset = FAME_HEADER_PAGE;
        g->slots_offset = g->meta_offset;
        g->slot_count = FAME_MAX_NODES;
        g->slot_size = FAME_SLOT_SIZE;
        g->doorbell_offset = g->slots_offset + (uint64_t) g->slot_count * g->slot_size;
        g->doorbell_size = FAME_DOORBELL_SIZE;
        g->librarian_offset = g->doorbell_offset + g->doorbell_size;
        g->librarian_size = FAME_LIBRARIAN_SIZE;
        g->book_area_offset = align_up(FAME_META_MIN, g->book_size);
        g->meta_size = g->book_area_offset - g->meta_offset;
        g->enclosure_count = div_round_up(g->node_count, g->nodes_per_enclosure);
        g->rack_count = div_round_up(g->enclosure_count, g->enclosures_per_rack);

        /* Each node gets the same number of books, a multiple of 4 (the Machine's 4 media
         * controllers per node; tm-book-register refuses anything else). */
        uint64_t min_size = g->book_area_offset + (uint64_t) g->node_count * 4 * g->book_size;
        if (g->total_size < min_size) {
                format_size(g->total_size, a, sizeof a);
                format_size(1ull << (64 - __builtin_clzll(min_size - 1)), b, sizeof b);
                char bs[32];
                format_size(g->book_size, bs, sizeof bs);
                snprintf(err, errlen, "FAM size %s is too small for %" PRIu32 " node(s) with %s books (metadata plus 4 books per node); use --size %s or more",
                         a, g->node_count, bs, b);
                return -EINVAL;
        }
        g->books_total = (g->total_size - g->book_area_offset) / g->book_size;
        uint64_t per_node = (g->books_total / g->node_count) & ~UINT64_C(3);
        if (per_node > FAME_MAX_BOOKS_PER_NODE) {
                uint64_t need = g->book_size;
                while (need < FAME_MAX_BOOK_SIZE &&
                       (g->total_size - align_up(FAME_META_MIN, need)) / need / g->node_count > FAME_MAX_BOOKS_PER_NODE)
                        need <<= 1;
                if ((g->total_size - align_up(FAME_META_MIN, need)) / need / g->node_count > FAME_MAX_BOOKS_PER_NODE) {
                        format_size(g->total_size, a, sizeof a);
                        snprintf(err, errlen, "FAM size %s is more than %" PRIu32 " node(s) can address (8192 books of at most 8G each per node); use a smaller --size or more --nodes",
                                 a, g->node_count);
                        return -EINVAL;
                }
                format_size(need, a, sizeof a);
                snprintf(err, errlen, "%" PRIu64 " books per node is more than the %u an interleave group can hold; use --book-size %s or larger",
                         per_node, FAME_MAX_BOOKS_PER_NODE, a);
                return -EINVAL;
        }
        g->books_per_node = (uint32_t) per_node;

        if (p->have_uuid)
                memcpy(g->uuid, p->uuid, 16);
        g->created = p->created >= 0 ? (uint64_t) p->created : 0;
        return 0;
}

_public_ int fame_geometry_compute(const struct fame_create_params *params, struct fame_geometry *ret_geo) {
        char err[256];
        struct fame_geometry g;
        int r;

        if (!params || !ret_geo)
                return -EINVAL;
        r = geometry_compute(params, &g, err, sizeof err);
        if (r < 0)
                return log_err(r, "%s", err);
        *ret_geo = g;
        return 0;
}

void fame_header_encode(const struct fame_geometry *g, uint8_t h[FAME_HEADER_SIZE]) {
        memset(h, 0, FAME_HEADER_SIZE);
        memcpy(h + H_MAGIC, FAME_MAGIC, 8);
        put_le32(h + H_VERSION_MAJOR, g->version_major);
        put_le32(h + H_VERSION_MINOR, g->version_minor);
        put_le32(h + H_HEADER_SIZE, FAME_HEADER_SIZE);
        put_le32(h + H_FLAGS, 0);
        put_le64(h + H_TOTAL_SIZE, g->total_size);
        put_le64(h + H_BOOK_SIZE, g->book_size);
        put_le64(h + H_META_OFFSET, g->meta_offset);
        put_le64(h + H_META_SIZE, g->meta_size);
        put_le64(h + H_BOOK_AREA_OFFSET, g->book_area_offset);
        put_le64(h + H_BOOKS_TOTAL, g->books_total);
        put_le32(h + H_NODE_COUNT, g->node_count);
        put_le32(h + H_BOOKS_PER_NODE, g->books_per_node);
        put_le32(h + H_NODES_PER_ENCLOSURE, g->nodes_per_enclosure);
        put_le32(h + H_ENCLOSURES_PER_RACK, g->enclosures_per_rack);
        put_le32(h + H_ENCLOSURE_COUNT, g->enclosure_count);
        put_le32(h + H_RACK_COUNT, g->rack_count);
        memcpy(h + H_UUID, g->uuid, 16);
        put_le64(h + H_CREATED, g->created);
        put_le32(h + H_SLOT_COUNT, g->slot_count);
        put_le32(h + H_SLOT_SIZE, g->slot_size);
        put_le64(h + H_SLOTS_OFFSET, g->slots_offset);
        put_le64(h + H_DOORBELL_OFFSET, g->doorbell_offset);
        put_le64(h + H_DOORBELL_SIZE, g->doorbell_size);
        put_le64(h + H_LIBRARIAN_OFFSET, g->librarian_offset);
        put_le64(h + H_LIBRARIAN_SIZE, g->librarian_size);
        put_le32(h + H_CHECKSUM, fame_crc32c(h, H_CHECKSUM));
}

_public_ int fame_header_check(const void *header, size_t header_len, uint64_t region_size,
                               struct fame_geometry *ret_geo, char *err, size_t errlen) {
        const uint8_t *h = header;
        char dummy[8], a[32], b[32];
        struct fame_geometry want;
        int r;

        if (!err) {
                err = dummy;
                errlen = sizeof dummy;
        }
        if (!h || header_len < FAME_HEADER_SIZE) {
                snprintf(err, errlen, "header buffer of %zu bytes is shorter than the %u-byte FAM header", header_len, FAME_HEADER_SIZE);
                return -EINVAL;
        }
        if (region_size < FAME_HEADER_PAGE) {
                snprintf(err, errlen, "too small to hold FAM (%" PRIu64 " bytes); create it with 'fame fam create'", region_size);
                return -EBADMSG;
        }
        if (memcmp(h + H_MAGIC, FAME_MAGIC, 8) != 0) {
                bool zero = true;
                for (size_t i = 0; i < FAME_HEADER_SIZE && zero; i++)
                        zero = h[i] == 0;
                snprintf(err, errlen, zero ? "holds no FAM header (the first bytes are zero); create one with 'fame fam create --force'"
                                           : "is not a FAM/E FAM (no \"FAME-FAM\" magic at offset 0)");
                return -EBADMSG;
        }
        uint32_t major = get_le32(h + H_VERSION_MAJOR), minor = get_le32(h + H_VERSION_MINOR);
        if (major != FAME_FORMAT_MAJOR) {
                snprintf(err, errlen, "has FAM format version %" PRIu32 ".%" PRIu32 ", which this FAM/E (format %d.x) cannot read; use a matching FAM/E or re-create the FAM",
                         major, minor, FAME_FORMAT_MAJOR);
                return -EPROTONOSUPPORT;
        }
        uint32_t stored = get_le32(h + H_CHECKSUM), computed = fame_crc32c(h, H_CHECKSUM);
        if (stored != computed) {
                snprintf(err, errlen, "has a corrupt FAM header (checksum 0x%08" PRIx32 ", expected 0x%08" PRIx32 ")", stored, computed);
                return -EBADMSG;
        }
        uint32_t hsize = get_le32(h + H_HEADER_SIZE);
        if (hsize < FAME_HEADER_SIZE || hsize > FAME_HEADER_PAGE) {
                snprintf(err, errlen, "has a corrupt FAM header (header size %" PRIu32 ")", hsize);
                return -EBADMSG;
        }
        uint64_t total = get_le64(h + H_TOTAL_SIZE);
        if (total != region_size) {
                format_size(total, a, sizeof a);
                format_size(region_size, b, sizeof b);
                snprintf(err, errlen, total > region_size ? "is truncated: the FAM header says %s but only %s are there"
                                                          : "is %s but its FAM header says %s",
                         total > region_size ? a : b, total > region_size ? b : a);
                return -EBADMSG;
        }

        struct fame_create_params p = {
                .total_size = total,
                .book_size = get_le64(h + H_BOOK_SIZE),
                .node_count = get_le32(h + H_NODE_COUNT),
                .nodes_per_enclosure = get_le32(h + H_NODES_PER_ENCLOSURE),
                .enclosures_per_rack = get_le32(h + H_ENCLOSURES_PER_RACK),
                .have_uuid = true,
                .created = (int64_t) get_le64(h + H_CREATED),
        };
        memcpy(p.uuid, h + H_UUID, 16);
        if (p.book_size == 0 || p.node_count == 0 || p.nodes_per_enclosure == 0 || p.enclosures_per_rack == 0) {
                snprintf(err, errlen, "has a corrupt FAM header (a zero book size, node count or topology field)");
                return -EBADMSG;
        }
        char why[200];
        r = geometry_compute(&p, &want, why, sizeof why);
        if (r < 0) {
                snprintf(err, errlen, "has an invalid FAM header: %s", why);
                return -EBADMSG;
        }
        want.version_minor = minor;

        /* Every derived field must be what format version 1 computes from the parameters. */
        struct { const char *name; uint64_t got, want; } fields[] = {
                { "metadata offset",  get_le64(h + H_META_OFFSET),       want.meta_offset },
                { "metadata size",    get_le64(h + H_META_SIZE),         want.meta_size },
                { "book area offset", get_le64(h + H_BOOK_AREA_OFFSET),  want.book_area_offset },
                { "books total",      get_le64(h + H_BOOKS_TOTAL),       want.books_total },
                { "books per node",   get_le32(h + H_BOOKS_PER_NODE),    want.books_per_node },
                { "enclosure count",  get_le32(h + H_ENCLOSURE_COUNT),   want.enclosure_count },
                { "rack count",       get_le32(h + H_RACK_COUNT),        want.rack_count },
                { "slot count",       get_le32(h + H_SLOT_COUNT),        want.slot_count },
                { "slot size",        get_le32(h + H_SLOT_SIZE),         want.slot_size },
                { "slots offset",     get_le64(h + H_SLOTS_OFFSET),      want.slots_offset },
                { "doorbell offset",  get_le64(h + H_DOORBELL_OFFSET),   want.doorbell_offset },
                { "doorbell size",    get_le64(h + H_DOORBELL_SIZE),     want.doorbell_size },
                { "librarian offset", get_le64(h + H_LIBRARIAN_OFFSET),  want.librarian_offset },
                { "librarian size",   get_le64(h + H_LIBRARIAN_SIZE),    want.librarian_size },
        };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (fields[i].got != fields[i].want) {
                        snprintf(err, errlen, "has an inconsistent FAM header (%s is %" PRIu64 ", format %d.x requires %" PRIu64 ")",
                                 fields[i].name, fields[i].got, FAME_FORMAT_MAJOR, fields[i].want);
                        return -EBADMSG;
                }

        if (ret_geo)
                *ret_geo = want;
        return 0;
}

_public_ int fame_geometry_coord(const struct fame_geometry *g, uint32_t node_id, struct fame_coord *ret) {
        if (!g || !ret || node_id < 1 || node_id > g->node_count)
                return -ERANGE;
        uint32_t enc = (node_id - 1) / g->nodes_per_enclosure;      /* 0-based */
        *ret = (struct fame_coord) {
                .node_id = node_id,
                .enclosure = enc + 1,
                .rack = enc / g->enclosures_per_rack + 1,
                .enclosure_in_rack = enc % g->enclosures_per_rack + 1,
                .node_in_enclosure = (node_id - 1) % g->nodes_per_enclosure + 1,
                .interleave_group = node_id - 1,
        };
        return 0;
}

_public_ int64_t fame_geometry_book_offset(const struct fame_geometry *g, uint32_t ig, uint64_t book_num) {
        if (!g || ig >= g->node_count || book_num >= g->books_per_node)
                return -ERANGE;
        return (int64_t) (g->book_area_offset + ((uint64_t) ig * g->books_per_node + book_num) * g->book_size);
}

_public_ int64_t fame_geometry_lza_offset(const struct fame_geometry *g, uint64_t lza) {
        if (lza & ((UINT64_C(1) << 33) - 1))
                return -ERANGE;         /* the book offset field must be zero */
        if (lza >> 53)
                return -ERANGE;         /* IG is 7 bits (0-127) */
        return fame_geometry_book_offset(g, (uint32_t) (lza >> 46), (lza >> 33) & 0x1fff);
}

/* ---- UUIDs --------------------------------------------------------------------------- */

_public_ void fame_uuid_format(const uint8_t u[16], char s[37]) {
        snprintf(s, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

_public_ int fame_uuid_parse(const char *s, uint8_t ret[16]) {
        uint8_t u[16];
        unsigned n = 0;

        if (!s || strlen(s) != 36)
                return -EINVAL;
        for (unsigned i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return -EINVAL;
                        continue;
                }
                char c = s[i];
                int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (v < 0)
                        return -EINVAL;
                if (n % 2 == 0)
                        u[n / 2] = (uint8_t) (v << 4);
                else
                        u[n / 2] |= (uint8_t) v;
                n++;
        }
        memcpy(ret, u, 16);
        return 0;
}

static int uuid_random(uint8_t u[16]) {
        size_t got = 0;
        while (got < 16) {
                ssize_t n = getrandom(u + got, 16 - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                got += (size_t) n;
        }
        u[6] = (u[6] & 0x0f) | 0x40;    /* version 4 */
        u[8] = (u[8] & 0x3f) | 0x80;    /* RFC 4122 variant */
        return 0;
}

/* ---- files ------------------------------------------------------------------------------ */

const char *fame_file_kind(mode_t mode) {
        return S_ISREG(mode) ? "a regular file" : S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" :
               S_ISSOCK(mode) ? "a socket" : S_ISCHR(mode) ? "a character device" :
               S_ISBLK(mode) ? "a block device" : "not a regular file";
}

static int read_header_fd(int fd, const char *path, uint8_t buf[FAME_HEADER_SIZE], uint64_t *ret_size) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return log_err(negative_errno(), "Failed to stat '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return log_err(-EINVAL, "'%s' is %s, not a FAM file; give a regular file made by 'fame fam create FILE --size 1G'",
                               path, fame_file_kind(st.st_mode));
        memset(buf, 0, FAME_HEADER_SIZE);
        size_t got = 0;
        while (got < FAME_HEADER_SIZE) {
                ssize_t n = pread(fd, buf + got, FAME_HEADER_SIZE - got, (off_t) got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_err(negative_errno(), "Failed to read the FAM header of '%s': %m", path);
                }
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        *ret_size = (uint64_t) st.st_size;
        return 0;
}

int fame_file_check_fd(int fd, const char *path, struct fame_geometry *ret_geo) {
        uint8_t h[FAME_HEADER_SIZE];
        uint64_t size;
        char why[256];
        int r;

        r = read_header_fd(fd, path, h, &size);
        if (r < 0)
                return r;
        if (size == 0)
                return log_err(-EBADMSG, "'%s' is empty, not a FAM; create one with 'fame fam create %s --size 1G --force'", path, path);
        r = fame_header_check(h, sizeof h, size, ret_geo, why, sizeof why);
        if (r < 0)
                return log_err(r, "'%s' %s", path, why);
        return 0;
}

_public_ int fame_file_inspect(const char *path, struct fame_geometry *ret_geo) {
        _cleanup_close_ int fd = -1;

        if (!path)
                return -EINVAL;
        /* O_NONBLOCK: a FIFO would block the open until a writer comes; it is refused below */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                int r = negative_errno();
                if (r == -ENOENT)
                        return log_err(r, "'%s' does not exist; create it with 'fame fam create %s --size 1G'", path, path);
                return log_err(r, "Failed to open '%s': %m", path);
        }
        return fame_file_check_fd(fd, path, ret_geo);
}

static int fsync_parent(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return negative_errno();
        return 0;
}

_public_ int fame_file_create(const char *path, const struct fame_create_params *params, unsigned flags,
                              struct fame_geometry *ret_geo) {
        struct fame_create_params p;
        struct fame_geometry g;
        uint8_t page[FAME_HEADER_PAGE] = { 0 };
        struct stat st;
        int r;

        if (!path || !params)
                return -EINVAL;
        p = *params;
        if (!p.have_uuid) {
                r = uuid_random(p.uuid);
                if (r < 0)
                        return log_err(r, "Failed to get random bytes for the FAM UUID: %m");
                p.have_uuid = true;
        }
        if (p.created < 0) {
                const char *sde = getenv("SOURCE_DATE_EPOCH");
                char *end = NULL;
                p.created = (int64_t) time(NULL);
                if (sde && *sde) {
                        errno = 0;
                        long long v = strtoll(sde, &end, 10);
                        if (errno || *end || v < 0)
                                return log_err(-EINVAL, "SOURCE_DATE_EPOCH='%s' is not a number of seconds", sde);
                        p.created = v;
                }
        }
        r = fame_geometry_compute(&p, &g);
        if (r < 0)
                return r;

        if (stat(path, &st) == 0) {
                if (!S_ISREG(st.st_mode))
                        return log_err(-EEXIST, "'%s' exists and is not a regular file; choose another path", path);
                if (st.st_size > 0 && !(flags & FAME_CREATE_FORCE)) {
                        struct fame_geometry old;
                        char why[256], u[37];
                        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                        uint8_t h[FAME_HEADER_SIZE];
                        uint64_t size;

                        if (fd >= 0 && read_header_fd(fd, path, h, &size) >= 0 &&
                            fame_header_check(h, sizeof h, size, &old, why, sizeof why) >= 0) {
                                fame_uuid_format(old.uuid, u);
                                return log_err(-EEXIST, "'%s' already holds a valid FAM (uuid %s); use --force to replace it and lose its content", path, u);
                        }
                        return log_err(-EEXIST, "'%s' exists and is not empty (%lld bytes); refusing to overwrite it without --force",
                                       path, (long long) st.st_size);
                }
        } else if (errno != ENOENT)
                return log_err(negative_errno(), "Failed to stat '%s': %m", path);

        /* Write a sibling temporary file, then rename it into place: never half-written. */
        size_t plen = strlen(path);
        _cleanup_free_ char *tmp = malloc(plen + sizeof(".tmp-XXXXXX"));
        if (!tmp)
                return log_err(-ENOMEM, "Out of memory");
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, ".tmp-XXXXXX", sizeof(".tmp-XXXXXX"));
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_err(negative_errno(), "Failed to create a file next to '%s': %m", path);

        fame_header_encode(&g, page);
        if (fchmod(fd, 0660) < 0 ||
            ftruncate(fd, (off_t) g.total_size) < 0) {
                r = log_err(negative_errno(), "Failed to size '%s' to %" PRIu64 " bytes: %m", path, g.total_size);
                goto fail;
        }
        for (size_t done = 0; done < sizeof page;) {
                ssize_t n = pwrite(fd, page + done, sizeof page - done, (off_t) done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = log_err(n < 0 ? negative_errno() : -EIO, "Failed to write the FAM header of '%s': %m", path);
                        goto fail;
                }
                done += (size_t) n;
        }
        if (fsync(fd) < 0) {
                r = log_err(negative_errno(), "Failed to flush '%s' to disk: %m", path);
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = log_err(negative_errno(), "Failed to move the new FAM into place at '%s': %m", path);
                goto fail;
        }
        (void) fsync_parent(path);
        if (ret_geo)
                *ret_geo = g;
        return 0;
fail:
        (void) unlink(tmp);
        return r;
}
