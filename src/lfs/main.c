/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs [--librarian HOST:PORT] [--fam PATH] [--node N] [--foreground] [--debug]
 *          [--ready-file FILE] [--relay SOCKET] [--cache-timeout SECONDS] MOUNTPOINT
 * Mounts the Librarian's shelves at MOUNTPOINT (docs/lfs.md).  Every node runs it at /lfs.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "lfs.h"
#include "log.h"
#include "util.h"
#include "fame-constants.h"

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "librarian", required_argument, NULL, 'l' },
                { "fam", required_argument, NULL, 'F' },
                { "node", required_argument, NULL, 'n' },
                { "foreground", no_argument, NULL, 'f' },
                { "debug", no_argument, NULL, 'd' },
                { "ready-file", required_argument, NULL, 'r' },
                { "relay", required_argument, NULL, 'R' },
                { "cache-timeout", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct lfs_options o = { .cache_timeout = LFS_CACHE_TIMEOUT_SECONDS };
        uint32_t ct;
        int c;

        while ((c = getopt_long(argc, argv, "fh", opts, NULL)) >= 0)
                switch (c) {
                case 'l': o.librarian = optarg; break;
                case 'F': o.fam = optarg; break;
                case 'f': o.foreground = true; break;
                case 'd': o.debug = true; o.foreground = true; break;
                case 'r': o.ready_file = optarg; break;
                case 'R': o.relay = optarg; break;
                case 'c':
                        if (parse_uint32(optarg, 0, 3600, &ct) < 0) {
                                log_error("fame-lfs: --cache-timeout %s: use a whole number of seconds, 0-3600 (0: cache nothing)", optarg);
                                return 2;
                        }
                        o.cache_timeout = ct;
                        break;
                case 'n':
                        if (parse_uint32(optarg, 1, 80, &o.node) < 0) {
                                log_error("fame-lfs: --node %s: use the Librarian node id, 1-%d", optarg, FAME_LIBRARIAN_MAX_NODE);
                                return 2;
                        }
                        break;
                case 'h':
                        printf("usage: fame-lfs [--librarian HOST:PORT] [--fam PATH] [--node N] [--foreground] [--debug]\n"
                               "                [--ready-file FILE] [--relay SOCKET] [--cache-timeout SECONDS] MOUNTPOINT\n");
                        return 0;
                default:
                        return 2;
                }
        if (optind + 1 != argc) {
                log_error("fame-lfs: give one MOUNTPOINT (e.g. /lfs); see fame-lfs --help");
                return 2;
        }
        o.mountpoint = argv[optind];
        return lfs_run(&o) < 0 ? 1 : 0;
}
