/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The verb table: names, argument counts and the help text that `fame help` and the man pages
 * (generated at build time with `fame help --man`) show. */
#include <stddef.h>

#include "verbs.h"

static const struct verb fam_verbs[] = {
        {
                .name = "create", .fn = cmd_fam_create, .min_args = 1, .max_args = 1,
                .usage = "PATH --size SIZE [--book-size SIZE] [--nodes N] [--force] [--json]",
                .summary = "create a FAM backing file",
                .help =
"Creates PATH as a sparse file of SIZE bytes holding an empty FAM: a header, the\n"
"metadata area and the book area (docs/fam-format.md).  The file is written next to\n"
"PATH and renamed into place, so PATH is never half-written.  An existing non-empty\n"
"file, and in particular a valid FAM, is never replaced without --force.\n"
"\n"
"SIZE and other sizes take K, M, G, T suffixes (powers of 1024) or 0x hex.\n"
"\n"
"Options:\n"
"  -s, --size SIZE               total size; a power of two (IVSHMEM BAR2 must be)\n"
"  -b, --book-size SIZE          book size, a power of two from 2M to 8G (default 8M)\n"
"  -n, --nodes N                 number of nodes, 1 to 128 (default 4); each gets the\n"
"                                same number of books, a multiple of 4\n"
"      --nodes-per-enclosure N   topology (default 10, as on The Machine)\n"
"      --enclosures-per-rack N   topology (default 4)\n"
"      --uuid UUID               use this UUID instead of a random one\n"
"  -f, --force                   replace an existing file; its content is lost\n"
"      --json                    print the new geometry as JSON\n"
"\n"
"The creation time is the current time, or $SOURCE_DATE_EPOCH when set.\n"
"\n"
"Example:\n"
"  fame fam create /tmp/x.fam --size 1G --nodes 4\n",
        },
        {
                .name = "info", .fn = cmd_fam_info, .min_args = 1, .max_args = 1,
                .usage = "PATH [--json]",
                .summary = "show the header and layout of a FAM file",
                .help =
"Validates PATH's FAM header and prints its geometry: size, book size, node count,\n"
"topology, the metadata regions and each node's book range.  PATH is opened read-only\n"
"and never modified.  A file that is not a valid FAM (empty, truncated, corrupt, of\n"
"another format version, not a power of two) gets one error line and exit status 1.\n"
"\n"
"Options:\n"
"      --json                    machine-readable output\n",
        },
        {
                .name = "dump", .fn = cmd_fam_dump, .min_args = 1, .max_args = 1,
                .usage = "PATH [--offset X] [--length N] [--force]",
                .summary = "hex dump of a FAM file",
                .help =
"Prints LENGTH bytes of PATH starting at OFFSET as a hex dump (offset, 16 bytes in hex,\n"
"the same as text).  The file is read-only to this verb.\n"
"\n"
"Options:\n"
"  -o, --offset X                where to start (default 0); sizes and 0x hex accepted\n"
"  -l, --length N                how many bytes (default 256)\n"
"  -f, --force                   dump even when the FAM header is not valid\n",
        },
        {}
};

static const struct verb bench_verbs[] = {
        {
                .name = "fam", .fn = cmd_bench_fam, .min_args = 0, .max_args = 0,
                .usage = "[--size SIZE] [--dir DIR] [--rounds N] [--ops N] [--json]",
                .summary = "memcpy bandwidth and contended atomics on a FAM mapping",
                .help =
"Benchmarks a host-process FAM mapping against ordinary memory, in the same run:\n"
"  1. memcpy bandwidth into a FAM file mapping vs into malloc'd memory (ratio);\n"
"  2. contended fam_atomic_64_fetch_add on one FAM word from 1, 2 and 4 processes,\n"
"     against the same instruction on anonymous shared memory (ratio).\n"
"This is a benchmark, not a test: it prints figures.\n"
"\n"
"Options:\n"
"      --size SIZE               bytes copied per round (default 64M)\n"
"      --dir DIR                 where the temporary FAM file lives (default $TMPDIR or /tmp)\n"
"      --rounds N                copies per destination; the median is reported (default 15)\n"
"      --ops N                   fetch_add operations per process (default 5000000)\n"
"      --json                    machine-readable output\n",
        },
        {}
};

const struct verb fame_verbs[] = {
        {
                .name = "fam", .sub = fam_verbs,
                .usage = "create|info|dump ...",
                .summary = "create and inspect FAM backing files",
                .help = "Verbs that work on a FAM backing file on the host.\n",
        },
        {
                .name = "info", .fn = cmd_info, .min_args = 0, .max_args = 0,
                .usage = "[--path PATH] [--json]",
                .summary = "show this node's FAM: node id, cluster, BAR2, header",
                .help =
"Finds FAM the way every libfame program does (fame_open): inside a node, the first\n"
"ivshmem PCI device (1af4:1110) whose BAR2 holds a valid FAM; on the host, the file\n"
"named by --path or $FAME_PATH.  Prints the node id ($FAME_NODE, fw_cfg\n"
"opt/org.fame/node, or fame.node= on the kernel command line), the cluster name, the\n"
"FAM size, the BAR2 address and the FAM header.  Opens FAM read-only.\n"
"\n"
"Options:\n"
"      --path PATH               a FAM file, or pci:BDF for one PCI device\n"
"      --json                    machine-readable output\n",
        },
        {
                .name = "bench", .sub = bench_verbs,
                .usage = "fam ...",
                .summary = "benchmarks that print figures",
                .help = "Benchmarks; each prints its figures and ratios against a baseline measured in the same run.\n",
        },
        {
                .name = "help", .fn = cmd_help, .min_args = 0, .max_args = 2,
                .usage = "[VERB [SUBVERB]] [--man]",
                .summary = "show help for a verb",
                .help =
"Shows the help of a verb (the same text as its man page), or lists the verbs.\n"
"\n"
"Options:\n"
"      --man                     print the help as a man page (roff)\n",
        },
        {
                .name = "version", .fn = cmd_version, .min_args = 0, .max_args = 0,
                .usage = "",
                .summary = "show the FAM/E version",
                .help = "Prints the version of fame and of libfame, and the FAM format version.\n",
        },
        {}
};
