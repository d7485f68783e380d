/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The verb table: names, argument counts and the help text that `fame help` and the man pages
 * (written at build time by `fame help --write-man-pages DIR`, one per verb) show.  Each verb's
 * options are declared in its option table (struct verb_options, in cmd-*.c next to the code
 * that parses them); the help shows them after the description. */
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
"SIZE and other sizes take K, M, G, T suffixes (powers of 1024) or 0x hex.\n",
                .options = &fam_create_options,
                .epilog =
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
"another format version, not a power of two) gets one error line and exit status 1.\n",
                .options = &fam_info_options,
        },
        {
                .name = "dump", .fn = cmd_fam_dump, .min_args = 1, .max_args = 1,
                .usage = "PATH [--offset X] [--length N] [--force]",
                .summary = "hex dump of a FAM file",
                .help =
"Prints LENGTH bytes of PATH starting at OFFSET as a hex dump (offset, 16 bytes in hex,\n"
"the same as text).  The file is read-only to this verb.\n",
                .options = &fam_dump_options,
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
"This is a benchmark, not a test: it prints figures.\n",
                .options = &bench_fam_options,
        },
        {
                .name = "lfs", .fn = cmd_bench_lfs, .min_args = 0, .max_args = 0,
                .usage = "[--at DIR --baseline DIR | --node NODE [cluster options]] [--quick] [--json]",
                .summary = "metadata and bandwidth figures of /lfs beside a tmpfs",
                .help =
"Measures a directory and a baseline directory in the same run, each in a subdirectory made\n"
"for it and removed after, and prints one table: figure, value, baseline, ratio.\n"
"  stat                  stat(2) of an unchanged 4 KiB file, us (median);\n"
"  listdir (10 entries)  opendir, readdir of all, closedir, us (median);\n"
"  create+close+unlink   open(O_CREAT|O_EXCL), close, unlink of a new file, us (median);\n"
"  workload (8 procs)    8 processes at once, each 2000 stat, open+close and readdir\n"
"                        over 4 directories of 25 files: wall seconds (median of 3), and\n"
"                        the same as operations per second (workload rate);\n"
"  write(2), read(2)     a 64 MiB file in 1 MiB blocks, pwrite then pread, MB/s (best of 3);\n"
"  memcpy (RAM)          the same size between two malloc'd buffers, MB/s (best of 3);\n"
"  write / RAM, read / RAM  the bandwidths as a fraction of memcpy's.\n"
"--quick: fewer iterations, 250 operations per workload process and a 16 MiB file.\n"
"Then its goals, each PASS or MISS (stat <= 20 us and create+close+unlink <= 250 us on\n"
"the host, the workload within 5x its baseline, read and write >= 0.5 of RAM in a node);\n"
"the exit status does not depend on them.\n"
"\n"
"With --at DIR --baseline DIR: DIR against the baseline (a tmpfs), where fame runs.\n"
"Without --at or --node: the host.  A FAM file, a Librarian and fame-lfs mounted in a\n"
"temporary directory, measured against /dev/shm (or a tmpfs mounted for the run), then all\n"
"stopped and removed, also when interrupted; needs root and /dev/fuse.\n"
"With --node NODE: the node's fame runs 'fame bench lfs --at /lfs --baseline TMPFS --json'\n"
"through its guest agent (as 'fame exec'); its figures are printed here.\n"
"This is a benchmark, not a test: it prints figures.  See docs/lfs.md, \"Measuring /lfs\".\n",
                .options = &bench_lfs_options,
        },
        {}
};


static const struct verb node_verbs[] = {
        {
                .name = "setup", .fn = cmd_node_setup, .min_args = 0, .max_args = 0,
                .usage = "[--seed FILE] [--root DIR]",
                .summary = "apply the node's seed at boot (Debian nodes)",
                .help =
"Reads the seed `fame up` passes to a Debian node (fw_cfg opt/org.fame/seed, or FILE) and\n"
"applies it: at every boot the hostname, the FAM/E block of /etc/hosts, the nodes' SSH host\n"
"keys, the network configuration and group fam's access to FAM; at the first boot also the\n"
"machine-id, the SSH host key, the user account with its SSH keys and sudo rule\n"
"(docs/debian.md).  fame-setup.service runs it.\n",
                .options = &node_setup_options,
        },
        {
                .name = "join", .fn = cmd_node_join, .min_args = 0, .max_args = 0,
                .usage = "",
                .summary = "record this node in its FAM slot (run at boot)",
                .help =
"Maps FAM, validates its header and writes this node's slot: node id, state up, one more\n"
"join, the time, and the boot nonce the cluster runtime passed (fw_cfg opt/org.fame/boot or\n"
"fame.boot=).  `fame up` waits for the nonce to appear: it proves the node mapped the shared\n"
"FAM.  The node images run it from /init.\n",
        },
        {
                .name = "slots", .fn = cmd_node_slots, .min_args = 0, .max_args = 0,
                .usage = "",
                .summary = "show every node's FAM slot",
                .help = "Prints each node slot's id, state, join count and boot nonce, as read through FAM.\n",
        },
        {
                .name = "fetch-add", .fn = cmd_node_fetch_add, .min_args = 2, .max_args = 2,
                .usage = "OFFSET COUNT",
                .summary = "COUNT fabric fetch_adds of 1 on the 64-bit word at OFFSET",
                .help = "Adds 1 COUNT times with fam_atomic_64_fetch_add to the word at byte OFFSET of FAM\n"
                        "(8-byte aligned, outside the header) and prints the value after its last add.\n",
        },
        {
                .name = "fill", .fn = cmd_node_fill, .min_args = 3, .max_args = 3,
                .usage = "OFFSET LENGTH SEED",
                .summary = "write a reproducible pattern into FAM; print its checksum",
                .help = "Writes LENGTH pseudo-random bytes (from SEED) at OFFSET, persists them and prints\n"
                        "their FNV-1a 64 checksum, as `fame node checksum` computes it.\n",
        },
        {
                .name = "checksum", .fn = cmd_node_checksum, .min_args = 2, .max_args = 2,
                .usage = "OFFSET LENGTH",
                .summary = "checksum of FAM bytes",
                .help = "Prints the FNV-1a 64 checksum of LENGTH bytes of FAM at OFFSET (read-only).\n",
        },
        {
                .name = "memcpy-bench", .fn = cmd_node_memcpy_bench, .min_args = 0, .max_args = 1,
                .usage = "[SIZE]",
                .summary = "memcpy bandwidth into this node's FAM books vs its own RAM",
                .help = "Copies SIZE bytes (default 16M) five times into this node's first books and into\n"
                        "malloc'd memory, and prints the best bandwidth of each and their ratio.\n",
        },
        {}
};

static const struct verb debug_verbs[] = {
        {
                .name = "agents", .fn = cmd_debug_agents, .min_args = 2, .max_args = -1,
                .usage = "READYFILE NODEDIR...",
                .summary = "the nodes' guest agent keeper (started by fame up)",
                .help = "Holds one connection to each node's guest agent (NODEDIR/qga.sock) and lends it to one\n"
                        "client at a time on NODEDIR/agent.sock; creates READYFILE once every socket is bound,\n"
                        "and serves until SIGTERM.  `fame up` starts it (direct backend); see docs/cluster.md.\n",
        },
        {
                .name = "net-switch", .fn = cmd_debug_net_switch, .min_args = 2, .max_args = -1,
                .usage = "SOCKET NODESOCKET...",
                .summary = "the private segment's Ethernet switch (started by fame up)",
                .help = "Switches Ethernet frames among the nodes' QEMU dgram sockets (NODESOCKET...) through\n"
                        "the UNIX datagram socket SOCKET until SIGTERM.  `fame up` starts it; see docs/debian.md.\n",
        },
        {
                .name = "populate", .fn = cmd_debug_image_populate, .min_args = 3, .max_args = 4,
                .usage = "TREE TMPDIR SIZE [x86_64|aarch64]",
                .summary = "stage 2 of a Debian image (run by fame image build)",
                .help = "Makes a Debian base image in TMPDIR from the Debian tree TREE and FAM/E's files in\n"
                        "TMPDIR/payload.  `fame image build` runs it, in mmdebstrap's user namespace when not\n"
                        "root, so that mke2fs -d sees the files' real owners.  See docs/debian.md.\n",
        },
        {
                .name = "arm-unpack", .fn = cmd_debug_debian_arm_unpacked, .min_args = 1, .max_args = 3,
                .usage = "CACHE_DIR [RELEASE [MIRROR]]",
                .summary = "the unconfigured arm64 Debian root (the host side of arm64 Debian images)",
                .help = "Makes (or finds) the unconfigured arm64 root of a Debian node with debootstrap --foreign\n"
                        "in CACHE_DIR/debian/arm64-unpacked-KEY/root and prints its path.  RELEASE defaults to\n"
                        "bookworm, MIRROR to the one apt uses.  Without root, debootstrap runs in mmdebstrap's\n"
                        "user namespace.  See docs/aarch64.md.\n",
        },
        {
                .name = "relay", .fn = cmd_debug_relay, .min_args = 1, .max_args = 1,
                .usage = "PORT",
                .summary = "join stdin/stdout to 127.0.0.1:PORT (QEMU guestfwd)",
                .help = "QEMU runs this for each connection a node makes to a forwarded host service\n"
                        "(forward= key): the connection is stdin/stdout, joined to 127.0.0.1:PORT.\n",
        },
        {
                .name = "qemu-args", .fn = cmd_debug_qemu_args, .min_args = 0, .max_args = 0,
                .usage = "[--node N] [--accel kvm|tcg] [cluster options]",
                .summary = "print a node's QEMU command line, one argument per line",
                .help = "Prints the QEMU argv `fame up` would use for a node, with @STATE@, @KERNEL@ and\n"
                        "@INITRD@ standing for paths and 42 for the boot nonce (golden tests).\n",
                .options = &debug_node_options,
        },
        {
                .name = "domain-xml", .fn = cmd_debug_domain_xml, .min_args = 0, .max_args = 0,
                .usage = "[--node N] [--accel kvm|tcg] [cluster options]",
                .summary = "print a node's libvirt domain XML",
                .help = "Prints the domain XML `fame up --backend libvirt` would give libvirt for a node, with\n"
                        "@STATE@, @KERNEL@, @INITRD@ and @EMULATOR@ standing for paths, 1000 for fame's uid and gid\n"
                        "and 42 for the boot nonce (golden tests).  See docs/libvirt.md.\n",
                .options = &debug_node_options,
        },
        {}
};

static const struct verb lmp_verbs[] = {
        {
                .name = "serve", .fn = cmd_lmp_serve, .min_args = 0, .max_args = -1,
                .usage = "--db PATH [--fam FILE] [--port 31179] [--bind 127.0.0.1] [--port-file FILE]",
                .summary = "serve the management view of a Librarian database by hand",
                .help =
"Serves the page of the Machine and its FAM at http://BIND:PORT/, FAM/E's API under /api/v1/ and\n"
"tm-lmp's under /lmp/ (docs/lmp.md) for the Librarian database PATH, read-only; with --fam, the\n"
"FAM's node slots too.  --port 0 takes any free port (--port-file FILE gets it).  `fame up` needs\n"
"none of this: the cluster's Librarian serves the view itself (fame status shows where), and\n"
"its database cannot be read by another process while it runs.\n",
        },
        {}
};

static const struct verb libvirt_verbs[] = {
        {
                .name = "export", .fn = cmd_libvirt_export, .min_args = 1, .max_args = 1,
                .no_man_page = true,
                .usage = "DIR [cluster options]",
                .summary = "write every node's libvirt domain XML into DIR",
                .help = "Writes DIR/node01.xml ... for users who run the nodes with virsh themselves\n"
                        "(virsh create DIR/node01.xml).  The XML is that of the running cluster (its FAM,\n"
                        "image, Librarian ports); for a cluster that was never started, fame prepares the\n"
                        "image and FAM as `fame up` would, and the nodes then have no Librarian and no\n"
                        "private segment unless `fame up` runs them.  See docs/libvirt.md.\n",
                .options = &cluster_options,
        },
        {}
};

static const struct verb image_verbs[] = {
        {
                .name = "build", .fn = cmd_image_build, .min_args = 0, .max_args = 0,
                .usage = "[--kind diskless|debian|all] [cluster options]",
                .summary = "build the node images (or find them in the cache)",
                .help =
"Builds the node images `fame up` boots, or finds them in the cache (cache_dir), and prints\n"
"one line per image: kind, cache key, kernel and path.  Without --kind, both kinds.\n"
"\n"
"diskless: an initramfs from the host's kernel, busybox, qemu-ga and FAM/E's node binary\n"
"(about a second).\n"
"\n"
"debian: a Debian system made by mmdebstrap from the release, mirror and packages keys, with\n"
"systemd, sshd, qemu-guest-agent, sudo, gcc and pkg-config, and FAM/E's node tools, libfame,\n"
"its headers and pkg-config files; as an ext4 file system made by mke2fs -d (no loop mounts,\n"
"no chroot) in a read-only qcow2 base image that nodes use through overlays.  The kernel and\n"
"initrd inside it are taken out for direct boot.  Downloaded packages stay in the cache, so a\n"
"rebuild after a FAM/E change takes seconds.  See docs/debian.md.\n"
"\n"
"Each architecture the cluster's nodes have (arch, nodeNN.arch) gets its images.  An arm64\n"
"Debian image is configured by the first boot of one aarch64 node instead of mmdebstrap (no\n"
"binfmt_misc; about 10 minutes under TCG, once).  See docs/aarch64.md.\n",
                .options = &image_build_options,
        },
        {
                .name = "prune", .fn = cmd_image_prune, .min_args = 0, .max_args = 0,
                .usage = "[--dry-run] [--json] [cluster options]",
                .summary = "remove the node images no cluster uses from the cache",
                .help =
"Every rebuild of a node image (a new FAM/E, kernel or overlay) leaves the old one in the cache\n"
"(cache_dir): about 15 MB for a diskless image, about 600 MB for a Debian one.  This removes\n"
"every image that no cluster's plan (STATE/cluster.json of each cluster, running or not) boots\n"
"from, the kernels only they shared, every Debian stage-1 tree but the newest of each\n"
"architecture, and what failed arm64 first boots left (console and disk).  Package\n"
"downloads stay.  The next `fame up` of a cluster whose image was removed builds it again.\n"
"With --dry-run, nothing is removed and each line says \"would remove\".\n",
                .options = &image_prune_options,
        },
        {}
};

static const struct verb shelf_verbs[] = {
        {
                .name = "ls", .fn = cmd_shelf_ls, .min_args = 0, .max_args = 1,
                .usage = "[PATH] [options]",
                .summary = "list shelves",
                .help = "Lists the shelves in directory PATH (default /) with their mode, creating node, size\n"
                        "and number of books; a PATH that is a shelf lists that shelf.\n",
                .options = &shelf_options,
        },
        {
                .name = "create", .fn = cmd_shelf_create, .min_args = 1, .max_args = 1,
                .usage = "PATH [--size SIZE] [--mode MODE] [--policy POLICY] [options]",
                .summary = "create a shelf, optionally with books",
                .help = "Creates shelf PATH owned by you (uid and gid) and this node, then gives it SIZE bytes of\n"
                        "books chosen by POLICY, and prints it as `info` does.  An existing PATH is an error;\n"
                        "a shelf whose books cannot be had (ENOSPC) is removed again.\n",
                .options = &shelf_create_options,
        },
        {
                .name = "mkdir", .fn = cmd_shelf_mkdir, .min_args = 1, .max_args = 1,
                .usage = "PATH [options]",
                .summary = "create a directory of shelves",
                .help = "Creates directory PATH in the Librarian's name space.\n",
                .options = &shelf_options,
        },
        {
                .name = "resize", .fn = cmd_shelf_resize, .min_args = 2, .max_args = 2,
                .usage = "PATH SIZE [options]",
                .summary = "grow or shrink a shelf",
                .help = "Sets the size of shelf PATH.  Growing allocates books by the shelf's allocation policy;\n"
                        "shrinking frees books from the end, which the Librarian zeroes in FAM before anyone\n"
                        "gets them again.  Shrinking fails (EMFILE) while another process has the shelf open.\n",
                .options = &shelf_options,
        },
        {
                .name = "rm", .fn = cmd_shelf_rm, .min_args = 1, .max_args = 1,
                .usage = "PATH [options]",
                .summary = "remove a shelf or an empty directory",
                .help = "Removes shelf PATH (its books are zeroed, then free) or the empty directory PATH.  Fails\n"
                        "(EBUSY) while the shelf is open, and (EACCES) unless you own it or its directory.\n",
                .options = &shelf_options,
        },
        {
                .name = "info", .fn = cmd_shelf_info, .min_args = 1, .max_args = 1,
                .usage = "PATH [options]",
                .summary = "show a shelf, its books and their FAM offsets",
                .help = "Prints shelf PATH: size, mode, owner, creating node, allocation policy, and each book with\n"
                        "its interleave group, number, LZA and byte offset in FAM (BAR2 of every node and the\n"
                        "host's FAM file).\n",
                .options = &shelf_options,
        },
        {
                .name = "mv", .fn = cmd_shelf_mv, .min_args = 2, .max_args = 2,
                .usage = "PATH NEWPATH [options]",
                .summary = "rename or move a shelf",
                .help = "Renames PATH to NEWPATH, which must not exist (EEXIST).\n",
                .options = &shelf_options,
        },
        {
                .name = "fill", .fn = cmd_shelf_fill, .min_args = 2, .max_args = 2,
                .usage = "PATH SEED [options]",
                .summary = "write a pattern through the shelf's mapping; print its checksum",
                .help = "Maps shelf PATH with fame_shelf_map(), writes size bytes of a pattern made from SEED,\n"
                        "persists them and prints their FNV-1a 64 checksum (as `fame shelf checksum` does).\n",
                .options = &shelf_options,
        },
        {
                .name = "checksum", .fn = cmd_shelf_checksum, .min_args = 1, .max_args = 1,
                .usage = "PATH [options]",
                .summary = "checksum of a shelf's bytes, read through its mapping",
                .help = "Maps shelf PATH with fame_shelf_map() and prints the FNV-1a 64 checksum of its bytes.\n",
                .options = &shelf_options,
        },
        {}
};

static const struct verb check_verbs[] = {
        {
                .name = "report", .fn = cmd_check_report, .min_args = 0, .max_args = 0,
                .usage = "[--node NODE] [--json] [cluster options]",
                .summary = "what the coherence checker found (a cluster started with --check)",
                .help =
"Lists the findings of the checker of a cluster started with `fame up --check`: for each, what\n"
"went wrong and how often, which node did what at which program counter, and where in the FAM\n"
"it happened, as a shelf and the offset in it (from the cluster's Librarian; without a readable\n"
"Librarian database, only the FAM offset).  What it finds:\n"
"\n"
"  - a node loaded a line another node had stored to and not written back;\n"
"  - a node loaded its old cached copy of a line another node had changed in memory;\n"
"  - two nodes hold unwritten stores to one line: one of them will be lost;\n"
"  - a plain load or store on a word that nodes use with fabric atomics;\n"
"  - a flush instruction whose address the checker cannot see.\n"
"\n"
"Ends with the number of findings and of their occurrences, or \"no findings\".  The exit\n"
"status is 0 either way; 1 when there is nothing to report on (the cluster never ran with\n"
"--check).  See docs/check.md.\n",
                .options = &check_report_options,
        },
        {}
};

const struct verb fame_verbs[] = {
        {
                .name = "up", .fn = cmd_up, .min_args = 0, .max_args = 0,
                .usage = "[-n N] [--kind diskless|debian] [--accel auto|kvm|tcg] [--backend qemu|libvirt] [--arch x86_64|aarch64] [--check] [--reset] [--add HOSTPATH:NODEPATH] [--json] [cluster options]",
                .summary = "boot the cluster's nodes on one FAM",
                .help =
"Creates the cluster's FAM file if it is absent (its content is kept when it is present and\n"
"valid), builds or reuses the node image (diskless, or Debian: see fame image build),\n"
"chooses the accelerator (KVM only if a test guest really runs under it; otherwise\n"
"multi-threaded TCG, which keeps guest atomics atomic across nodes), starts one QEMU per\n"
"node in the background and waits until every node has joined the FAM and its guest agent\n"
"answers.  Then prints a table of the nodes and\n"
"the total time, and returns with the cluster running.\n"
"\n"
"Debian nodes (kind=debian) each boot from their own qcow2 overlay of the read-only base image,\n"
"made once and kept: what users change inside a node survives `fame down` and `fame up`.\n"
"They are ready when their guest agent answers, they joined the FAM and sshd accepts.  Every\n"
"node also has a private Ethernet segment with the others (nodeNN = 10.11.0.N) through a\n"
"switch process of the cluster; the host's services listed in forward= are at torms:PORT.\n"
"\n"
"With arch=aarch64 (or nodeNN.arch = aarch64) nodes are qemu-system-aarch64 -M virt under\n"
"TCG, booting Debian's arm64 kernel and FAM/E's cross-built node programs, on the same FAM as\n"
"x86_64 nodes.  See docs/aarch64.md.\n"
"\n"
"With backend=libvirt every node is a transient libvirt domain fame-CLUSTER-nodeNN of the\n"
"libvirtd at libvirt_uri (default qemu:///system), made from the same plan; every other verb\n"
"works the same.  See docs/libvirt.md.\n"
"\n"
"With --check (check = coherence) every node's QEMU runs under TCG with FAM/E's checker plugin,\n"
"which follows every 64-byte line of the FAM in every node's caches and records what a real\n"
"fabric would get wrong: reads of data another node has not written back, stale cached\n"
"copies, conflicting writes, plain accesses to words used with fabric atomics.  `fame check\n"
"report` lists them; `fame kill --crash` and `fame down --crash` emulate a power loss.  See\n"
"docs/check.md.\n",
                .options = &up_options,
        },
        {
                .name = "down", .fn = cmd_down, .min_args = 0, .max_args = 0,
                .usage = "[--crash] [cluster options]",
                .summary = "stop every node (FAM is kept)",
                .help =
"Asks every node's guest agent to power off, waits down_timeout seconds, then stops what is\n"
"left through QEMU's monitor and finally with SIGKILL.  No QEMU is left behind; the FAM file\n"
"keeps its content.\n"
"\n"
"With --crash (a cluster started with --check) every node loses power at once: each QEMU is\n"
"killed without warning, and in the FAM every line a node had stored to and not written back\n"
"returns to its last written-back content, as on a machine whose caches lose their content;\n"
"fame prints how many lines each node lost.  See docs/check.md.\n",
                .options = &crash_options,
        },
        {
                .name = "status", .fn = cmd_status, .min_args = 0, .max_args = 0,
                .usage = "[--json] [cluster options]",
                .summary = "show the cluster's nodes and their state",
                .help =
"For each node: the QEMU pid, the accelerator, the state (stopped, booting, joined: in FAM but\n"
"the guest agent does not answer yet, ready), how often it joined the FAM, and its console log.\n"
"For a cluster started with --check, also the number of the checker's findings that involve\n"
"the node (FINDINGS; `fame check report` lists them).\n",
                .options = &cluster_json_options,
        },
        {
                .name = "exec", .fn = cmd_exec, .min_args = 0, .max_args = -1,
                .usage = "NODE|--all [--timeout S] -- CMD [ARGS...]",
                .summary = "run a command in one node or all nodes",
                .help =
"Runs CMD through the node's guest agent, prints its stdout and stderr and exits with its\n"
"exit status.  With --all it runs on every node at the same time and prefixes each output\n"
"line with the node's name; the exit status is the highest of all nodes.  NODE is node01 or\n"
"a number.\n",
                .options = &exec_options,
        },
        {
                .name = "cp", .fn = cmd_cp, .min_args = 2, .max_args = 2,
                .usage = "[--libs [-q] [--json]] HOSTFILE NODE:/PATH | --all HOSTFILE /PATH",
                .summary = "copy a host file, or a program with its libraries, into nodes",
                .help =
"Writes HOSTFILE to PATH in one node (or every node with --all), keeping its mode.\n"
"\n"
"With --libs, HOSTFILE is a program built on the host, and the shared libraries it needs come\n"
"with it.  The program's dynamic loader lists them on the host (LOADER --list HOSTFILE, as a\n"
"run of it would find them); each one the node lacks where its own loader looks (/lib/TRIPLET,\n"
"/usr/lib/TRIPLET, /lib, /usr/lib) is copied to the node's /usr/lib/TRIPLET (x86_64-linux-gnu\n"
"or aarch64-linux-gnu), which the node's loader searches without ldconfig.  Files the node has\n"
"are never replaced: its own libc stays.  The program last, once its libraries are there; one\n"
"line per file copied (none with -q; --json lists every file, copied or not).  The program must\n"
"be of the node's architecture.  For many programs, or files that change, key share (a host\n"
"directory every node sees at /share) may suit better: see docs/config.md.\n",
                .options = &cp_options,
        },
        {
                .name = "console", .fn = cmd_console, .min_args = 1, .max_args = 1,
                .usage = "NODE [cluster options]",
                .summary = "interactive serial console of a node",
                .help = "Connects the terminal to the node's serial console (a root shell in diskless nodes).\n"
                        "Ctrl-] leaves.  Everything the console shows is also in `fame logs NODE`.\n",
                .options = &cluster_options,
        },
        {
                .name = "logs", .fn = cmd_logs, .min_args = 1, .max_args = 1,
                .usage = "NODE [-f] [cluster options]",
                .summary = "print a node's console log",
                .help = "Prints everything the node wrote to its serial console since it was started.\n",
                .options = &logs_options,
        },
        {
                .name = "kill", .fn = cmd_kill, .min_args = 1, .max_args = 1,
                .usage = "NODE [--crash] [cluster options]",
                .summary = "stop one node at once (the others keep running)",
                .help = "Stops the node's QEMU without asking the guest (like pulling the plug) and marks its\n"
                        "FAM slot down.  `fame start NODE` boots it again.\n"
                        "\n"
                        "With --crash (a cluster started with --check) the node loses power: its QEMU gets\n"
                        "SIGKILL, and in the FAM every line the node had stored to and not written back\n"
                        "returns to its last written-back content, as the checker recorded it.  fame prints\n"
                        "how many lines that were.  See docs/check.md.\n",
                .options = &crash_options,
        },
        {
                .name = "start", .fn = cmd_start, .min_args = 1, .max_args = 1,
                .usage = "NODE [cluster options]",
                .summary = "boot one stopped node again",
                .help = "Starts the node with the cluster's plan and waits until it has rejoined the FAM and\n"
                        "its guest agent answers.\n",
                .options = &cluster_options,
        },
        {
                .name = "config", .fn = cmd_config, .min_args = 0, .max_args = 0,
                .usage = "[--json] [cluster options]",
                .summary = "print the effective configuration",
                .help = "Prints every configuration key with its value and where it came from (default, a\n"
                        "file and line, or the command line).  Keys: docs/config.md.\n",
                .options = &cluster_json_options,
        },
        {
                .name = "check", .sub = check_verbs,
                .usage = "report ...",
                .summary = "the coherence and crash checker (fame up --check)",
                .help = "Verbs that read what the checker of a cluster started with `fame up --check` found.\n"
                        "See docs/check.md.\n",
        },
        {
                .name = "node", .sub = node_verbs,
                .usage = "join|slots|fetch-add|fill|checksum ...",
                .summary = "node-side verbs (inside nodes, or on the host with FAME_PATH)",
                .help = "Verbs that node software and tests run inside a node.\n",
        },
        {
                .name = "ssh", .fn = cmd_ssh, .min_args = 1, .max_args = -1,
                .usage = "NODE [-- CMD [ARGS...]] [cluster options]",
                .summary = "log in to a Debian node, or run a command there, over SSH",
                .help =
"Runs ssh to the node's sshd through its port forward on 127.0.0.1, as the node's user\n"
"(the user key), with the cluster's login key and a known_hosts file that holds every\n"
"node's host key (no prompts, no trust on first use).  Without CMD, an interactive login;\n"
"with CMD, ssh runs it through the user's shell on the node and exits with its status.\n"
"Only kind=debian nodes have sshd.  From a node, `ssh nodeNN` reaches the other nodes over\n"
"the cluster's private segment.\n"
"\n"
"Example:\n"
"  fame ssh node01 -- ssh node02 hostname\n",
                .options = &ssh_options,
        },
        {
                .name = "shelf", .sub = shelf_verbs,
                .usage = "ls|create|mkdir|resize|rm|info|mv|fill|checksum ...",
                .summary = "shelves of FAM books, through the Librarian",
                .help = "Verbs that ask the cluster's Librarian for shelves (named, ordered lists of books of\n"
                        "FAM), on the host and inside nodes.  See docs/librarian.md.\n",
        },
        {
                .name = "librarian", .fn = cmd_librarian, .min_args = 0, .max_args = -1,
                .usage = "serve|init|topology|bench|fsck [OPTIONS]",
                .summary = "the Librarian: FAM allocation service (tm-librarian compatible)",
                .help =
"Runs fame-librarian.  `fame up` starts one Librarian per cluster; these verbs are for running\n"
"one by hand and for its tools (docs/librarian.md).\n"
"\n"
"  serve --db PATH [--fam FILE] [--port 9093] [--bind 127.0.0.1] [--node-port NODE=PORT]...\n"
"        [--node-socket NODE=PATH]... [--port-file FILE] [--check-state DIR]\n"
"        [--secrets DIR | --trust-clients]\n"
"        [--insecure-remote] [--max-per-peer 64] [--idle-timeout 30] [--max-output 256K]\n"
"        [--handle-grace 30] [--sync second|each-change]\n"
"      Serves the tm-librarian protocol.  With --fam, books leaving shelves are zeroed in that\n"
"      FAM before reuse.  --node-port adds a port whose clients may only act as NODE.\n"
"      A connection must send its port's secret before it may assert a node or a uid:\n"
"      DIR/host.secret for --port, DIR/node-NODE.secret for each --node-port (made when\n"
"      missing; DIR defaults to PATH.secrets; libfame sends the file $FAME_LIBRARIAN_SECRET_FILE\n"
"      names).  --trust-clients believes every caller, as HPE's original Librarian did (its\n"
"      clients send no secret); with it a --bind address other than loopback is refused\n"
"      without --insecure-remote.\n"
"      --node-socket NODE=PATH: a unix socket (mode 0600) for NODE's virtio-serial port to the\n"
"      Librarian (QEMU connects to it; fame up passes one per node): its connections act as\n"
"      NODE's root without a secret, since only that node's root can open the port.\n"
"      --check-state: the state directory of a cluster started with --check, whose checker\n"
"      then learns of every book zeroed (fame up passes it).\n"
"      --http-port PORT [--http-bind 127.0.0.1] [--http-port-file FILE] [--cluster NAME]\n"
"      [--cluster-state DIR]: also serve the management view, the page of the Machine and its\n"
"      FAM and tm-lmp's API, from the same poll loop (docs/lmp.md; fame up passes them).\n"
"      Limits (docs/librarian.md, \"Limits and fairness\"): --max-per-peer, connections from\n"
"      one address to one port (1-1024); --idle-timeout, seconds a connection may hold a\n"
"      partial request without sending more (0.1-86400); --max-output, unsent replies held\n"
"      for a connection before its requests are no longer read (4K-1G; a larger reply still\n"
"      goes out whole).  --handle-grace: seconds the previous run's open handles wait for\n"
"      their clients to reclaim them after a restart (0 drops them at start).\n"
"      --sync: when commits reach the disk: `second` (default) within a second, no reply\n"
"      waiting for it (a killed Librarian loses nothing; a host's power loss, the last second);\n"
"      `each-change`: every change to shelves before its reply (durable across a power loss).\n"
"  init --db PATH --topology FILE [--force]\n"
"      Creates the database from an INI (tm-book-register) or TMCF JSON topology; an existing\n"
"      database is replaced only with --force.\n"
"  topology --fam FILE [--comment TEXT | --tmcf]\n"
"      Prints the topology of a FAM file: INI (tm-book-register's form), or with --tmcf the\n"
"      TMCF JSON with The Machine's full coordinates that `fame up` gives its Librarian.\n"
"  bench [--address HOST:PORT [--server-pid PID]] [--clients 1,8] [--seconds 3] [--node N]\n"
"        [--lfs-unlink] [--fam-size 1G]\n"
"      Shelf cycles per second (create, resize to 2 books, close, destroy) with 1 and 8\n"
"      clients, and the server's CPU time per request; without --address against a\n"
"      Librarian of its own (a child process, on a FAM of --fam-size), with --address\n"
"      against any server (its CPU with --server-pid).\n"
"  fsck [--db PATH] [--fam FILE] [-c NAME] [--repair] [--json]\n"
"      Checks a database against itself and its FAM (tm-librarian's fsck_lfs): books on two\n"
"      shelves or on none, book states, each shelf's places, book_count and size, globals,\n"
"      parents and link counts, zeroing shelves left by a crash, stale open handles, the FAM's\n"
"      geometry.  One line per problem.  --repair fixes what it can in one transaction without\n"
"      freeing a book that holds a shelf's data; refused while a Librarian serves the\n"
"      database.  Without --db, the database and FAM of cluster NAME (default: the default\n"
"      cluster).  Exit status 0 clean, 1 problems found (repaired or not), 2 could not check.\n",
        },
        {
                .name = "image", .sub = image_verbs,
                .usage = "build ...",
                .summary = "build node images",
                .help = "Verbs that build the images nodes boot.\n",
        },
        {
                .name = "lmp", .sub = lmp_verbs,
                .usage = "serve ...",
                .summary = "the management view: the Machine and its FAM in a browser, tm-lmp's API",
                .help = "`fame up` starts it with the Librarian (fame status shows its address); `fame lmp serve`\n"
                        "serves a database by hand.  See docs/lmp.md.\n",
        },
        {
                .name = "libvirt", .sub = libvirt_verbs,
                .usage = "export ...",
                .summary = "domain XML for libvirt users",
                .help = "Verbs for running nodes as libvirt domains yourself; `fame up --backend libvirt`\n"
                        "does it for you.  See docs/libvirt.md.\n",
        },
        {
                .name = "debug", .sub = debug_verbs, .no_man_page = true,
                .usage = "qemu-args|domain-xml ...",
                .summary = "developer tools",
                .help = "Tools for FAM/E's own tests.\n",
        },
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
"FAM size, the BAR2 address and the FAM header.  Opens FAM read-only.\n",
                .options = &info_options,
        },
        {
                .name = "bench", .sub = bench_verbs,
                .usage = "fam|lfs ...",
                .summary = "benchmarks that print figures",
                .help = "Benchmarks; each prints its figures and ratios against a baseline measured in the same run.\n",
        },
        {
                .name = "help", .fn = cmd_help, .min_args = 0, .max_args = 2,
                .usage = "[VERB [SUBVERB]] [--man]",
                .summary = "show help for a verb",
                .help =
"Shows the help of a verb (the same text as its man page), or lists the verbs.\n",
                .options = &help_options,
        },
        {
                .name = "version", .fn = cmd_version, .min_args = 0, .max_args = 0,
                .usage = "[--json]",
                .summary = "show the FAM/E version",
                .help = "Prints the version of fame and of libfame, and the FAM format version.\n",
                .options = &version_options,
        },
        {}
};
