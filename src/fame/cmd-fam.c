/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fame fam create|info|dump: FAM backing files on the host. */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"
#include "fame.h"
#include "util.h"
#include "verbs.h"

enum { CREATE_NPE = 0x100, CREATE_EPR, CREATE_UUID };
const struct verb_options fam_create_options = {
        .list = (const struct verb_option[]) {
                { "size", 's', "SIZE", "total size; a power of two (IVSHMEM BAR2 must be)", VERB_OPT_SHORT },
                { "book-size", 'b', "SIZE", "book size, a power of two from 2M to 8G (default 8M)", VERB_OPT_SHORT },
                { "nodes", 'n', "N", "number of nodes, 1 to 128 (default 4); each gets the\n"
                                     "same number of books, a multiple of 4", VERB_OPT_SHORT },
                { "nodes-per-enclosure", CREATE_NPE, "N", "topology (default 10, as on The Machine)" },
                { "enclosures-per-rack", CREATE_EPR, "N", "topology (default 4)" },
                { "uuid", CREATE_UUID, "UUID", "use this UUID instead of a random one" },
                { "force", 'f', NULL, "replace an existing file; its content is lost", VERB_OPT_SHORT },
                { "json", VERB_JSON, NULL, "print the new geometry as JSON" },
                {}
        },
};

int cmd_fam_create(const struct verb *v, int argc, char **argv) {
        struct fame_create_params p = { .created = -1 };
        struct fame_geometry g;
        bool first = true, json = false, have_size = false;
        unsigned flags = 0;
        int c, r;

        while ((c = verb_getopt_json(v, argc, argv, &first, &json)) != -1) {
                switch (c) {
                case 's':
                        if (parse_size(optarg, &p.total_size) < 0)
                                return cli_usage_error(v, "--size '%s' is not a size (e.g. 1G, 512M)", optarg);
                        have_size = true;
                        break;
                case 'b':
                        if (parse_size(optarg, &p.book_size) < 0 || p.book_size == 0)
                                return cli_usage_error(v, "--book-size '%s' is not a size (e.g. 8M)", optarg);
                        break;
                case 'n':
                        if (parse_uint32(optarg, 1, FAME_MAX_NODES, &p.node_count) < 0)
                                return cli_usage_error(v, "--nodes '%s' is not a number from 1 to %u", optarg, FAME_MAX_NODES);
                        break;
                case CREATE_NPE:
                        if (parse_uint32(optarg, 1, FAME_MAX_NODES, &p.nodes_per_enclosure) < 0)
                                return cli_usage_error(v, "--nodes-per-enclosure '%s' is not a number from 1 to %u", optarg, FAME_MAX_NODES);
                        break;
                case CREATE_EPR:
                        if (parse_uint32(optarg, 1, FAME_MAX_NODES, &p.enclosures_per_rack) < 0)
                                return cli_usage_error(v, "--enclosures-per-rack '%s' is not a number from 1 to %u", optarg, FAME_MAX_NODES);
                        break;
                case CREATE_UUID:
                        if (fame_uuid_parse(optarg, p.uuid) < 0)
                                return cli_usage_error(v, "--uuid '%s' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", optarg);
                        p.have_uuid = true;
                        break;
                case 'f':
                        flags |= FAME_CREATE_FORCE;
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (!have_size)
                return cli_usage_error(v, "--size is required (e.g. --size 1G)");

        const char *path = argv[optind];
        r = fame_file_create(path, &p, flags, &g);
        if (r < 0)
                return r;       /* libfame said why */
        if (json) {
                json_object *o = geometry_to_json(&g);
                json_object_object_add(o, "path", json_object_new_string(path));
                return print_json(o);
        }
        char a[32], b[32], u[37];
        fame_uuid_format(g.uuid, u);
        printf("Created FAM %s: %s, %" PRIu32 " node%s x %" PRIu32 " books of %s, uuid %s\n",
               path, format_bytes(g.total_size, a, sizeof a), g.node_count, g.node_count == 1 ? "" : "s",
               g.books_per_node, format_bytes(g.book_size, b, sizeof b), u);
        return 0;
}

const struct verb_options fam_info_options = {
        .list = (const struct verb_option[]) {
                { "json", VERB_JSON, NULL, "machine-readable output" },
                {}
        },
};

int cmd_fam_info(const struct verb *v, int argc, char **argv) {
        struct fame_geometry g;
        bool first = true, json = false;
        int c, r;

        while ((c = verb_getopt_json(v, argc, argv, &first, &json)) != -1)
                return -EINVAL;
        const char *path = argv[optind];
        r = fame_file_inspect(path, &g);
        if (r < 0)
                return r;
        if (json) {
                json_object *o = geometry_to_json(&g);
                json_object_object_add(o, "path", json_object_new_string(path));
                return print_json(o);
        }
        printf("FAM          %s\n", path);
        print_geometry(&g);
        return 0;
}

static void hexdump_line(uint64_t off, const uint8_t *p, size_t n) {
        printf("%010" PRIx64 " ", off);
        for (size_t i = 0; i < 16; i++) {
                if (i == 8)
                        putchar(' ');
                if (i < n)
                        printf(" %02x", p[i]);
                else
                        printf("   ");
        }
        printf("  |");
        for (size_t i = 0; i < n; i++)
                putchar(isprint(p[i]) ? p[i] : '.');
        printf("|\n");
}

const struct verb_options fam_dump_options = {
        .list = (const struct verb_option[]) {
                { "offset", 'o', "X", "where to start (default 0); sizes and 0x hex accepted", VERB_OPT_SHORT },
                { "length", 'l', "N", "how many bytes (default 256)", VERB_OPT_SHORT },
                { "force", 'f', NULL, "dump even when the FAM header is not valid", VERB_OPT_SHORT },
                {}
        },
};

int cmd_fam_dump(const struct verb *v, int argc, char **argv) {
        uint64_t offset = 0, length = 256;
        bool first = true, force = false;
        int c, r;

        while ((c = verb_getopt(v, argc, argv, &first)) != -1) {
                switch (c) {
                case 'o':
                        if (parse_size(optarg, &offset) < 0)
                                return cli_usage_error(v, "--offset '%s' is not a number (e.g. 0x1000, 8M)", optarg);
                        break;
                case 'l':
                        if (parse_size(optarg, &length) < 0)
                                return cli_usage_error(v, "--length '%s' is not a number (e.g. 256, 4K)", optarg);
                        break;
                case 'f':
                        force = true;
                        break;
                default:
                        return -EINVAL;
                }
        }
        const char *path = argv[optind];
        struct fame_geometry g;
        if (!force) {
                r = fame_file_inspect(path, &g);
                if (r < 0)
                        return r;
        }
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return cli_fail(negative_errno(), "Failed to open '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return cli_fail(-EINVAL, "'%s' is not a regular file; fame fam dump reads FAM files", path);
        uint64_t size = (uint64_t) st.st_size;
        if (offset >= size || length > size - offset)
                return cli_usage_error(v, "offset 0x%" PRIx64 " + length %" PRIu64 " is beyond the end of '%s' (%" PRIu64 " bytes)",
                                   offset, length, path, size);

        uint8_t buf[65536];
        uint64_t done = 0;
        while (done < length) {
                size_t want = length - done > sizeof buf ? sizeof buf : (size_t) (length - done);
                ssize_t n = pread(fd, buf, want, (off_t) (offset + done));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return cli_fail(n < 0 ? negative_errno() : -EIO, "Failed to read '%s': %m", path);
                for (size_t i = 0; i < (size_t) n; i += 16)
                        hexdump_line(offset + done + i, buf + i, (size_t) n - i < 16 ? (size_t) n - i : 16);
                done += (uint64_t) n;
        }
        return 0;
}
