/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame_open(): host files, and the in-node path (PCI scan, BAR2, node identity) against a
 * sysfs/proc tree built here: resource2 is a real FAM file, so the same mmap code runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fam_atomic.h"
#include "fame.h"
#include "testlib.h"

#define MiB (UINT64_C(1) << 20)

static char dir[PATH_MAX];

static void put(const char *rel, const char *content) {
        char path[PATH_MAX * 2], *slash;
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        for (slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = 0;
                mkdir(path, 0755);
                *slash = '/';
        }
        FILE *f = fopen(path, "we");
        CHECK(f != NULL, "create %s", path);
        if (f) {
                fputs(content, f);
                fclose(f);
        }
}

static void make_fam(const char *rel, uint32_t nodes) {
        char path[PATH_MAX * 2];
        struct fame_create_params p = { .total_size = 64 * MiB, .book_size = 2 * MiB, .node_count = nodes, .created = 0 };
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        CHECK(fame_file_create(path, &p, FAME_CREATE_FORCE, NULL) == 0, "create %s: %s", path, test_last_log());
}

static void add_pci(const char *bdf, const char *vendor, const char *device, uint64_t bar, const char *enable) {
        char rel[256], res[512];
        snprintf(rel, sizeof rel, "sys/bus/pci/devices/%s/vendor", bdf);
        put(rel, vendor);
        snprintf(rel, sizeof rel, "sys/bus/pci/devices/%s/device", bdf);
        put(rel, device);
        snprintf(rel, sizeof rel, "sys/bus/pci/devices/%s/enable", bdf);
        put(rel, enable);
        snprintf(res, sizeof res,
                 "0x00000000febf1000 0x00000000febf10ff 0x0000000000040200\n"
                 "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                 "0x%016" PRIx64 " 0x%016" PRIx64 " 0x000000000014220c\n",
                 bar, bar ? bar + 64 * MiB - 1 : 0);
        snprintf(rel, sizeof rel, "sys/bus/pci/devices/%s/resource", bdf);
        put(rel, res);
}

static void test_host_file(void) {
        char path[PATH_MAX * 2];
        struct fame *a = NULL, *b = NULL;

        make_fam("host.fam", 2);
        snprintf(path, sizeof path, "%s/host.fam", dir);
        unsetenv("FAME_NODE");
        CHECK(fame_open(path, 0, &a) == 0, "open: %s", test_last_log());
        if (!a)
                return;
        const struct fame_geometry *g = fame_get_geometry(a);
        CHECK(fame_size(a) == 64 * MiB && g->node_count == 2 && fame_node_id(a) == 0, "geometry");
        CHECK(strcmp(fame_source_kind(a), "file") == 0 && strcmp(fame_source_path(a), path) == 0, "source");
        CHECK(fame_bar_address(a) == 0, "no BAR for files");
        CHECK(memcmp(fame_base(a), "FAME-FAM", 8) == 0, "header mapped");
        CHECK((uint8_t *) fame_slot(a, 2) == (uint8_t *) fame_base(a) + g->slots_offset + 4096, "slot 2");
        CHECK(fame_slot(a, 0) == NULL && fame_slot(a, 3) == NULL, "slots out of range");
        CHECK((uint8_t *) fame_book(a, 1, 3) == (uint8_t *) fame_base(a) + fame_geometry_book_offset(g, 1, 3), "book");
        CHECK(fame_book(a, 2, 0) == NULL, "book out of range");

        /* A second, independent mapping sees stores and atomics of the first. */
        setenv("FAME_PATH", path, 1);
        setenv("FAME_NODE", "2", 1);
        setenv("FAME_CLUSTER", "lab", 1);
        CHECK(fame_open(NULL, 0, &b) == 0, "open via FAME_PATH: %s", test_last_log());
        if (b) {
                CHECK(fame_node_id(b) == 2 && strcmp(fame_cluster_name(b), "lab") == 0, "identity from the environment");
                int64_t *wa = fame_slot(a, 2), *wb = fame_slot(b, 2);
                CHECK(wa != wb, "distinct mappings");
                fam_atomic_64_write(wa, 40);
                CHECK(fam_atomic_64_fetch_add(wb, 2) == 40 && fam_atomic_64_read(wa) == 42, "shared between mappings");
                memcpy(fame_book(b, 0, 0), "hello", 6);
                fame_persist(fame_book(b, 0, 0), 6);
                CHECK(strcmp(fame_book(a, 0, 0), "hello") == 0, "plain stores shared");
                fame_invalidate(fame_book(a, 0, 0), 6);
                fame_fence();
                fame_close(b);
        }
        fame_close(a);
        unsetenv("FAME_PATH");
        unsetenv("FAME_CLUSTER");

        /* Node ids the FAM has no room for, and ids that are not numbers. */
        setenv("FAME_NODE", "3", 1);
        test_clear_log();
        CHECK(fame_open(path, 0, &a) == -ERANGE && strstr(test_last_log(), "node count 2"), "node 3 of 2: %s", test_last_log());
        setenv("FAME_NODE", "two", 1);
        test_clear_log();
        CHECK(fame_open(path, 0, &a) == -EINVAL && strstr(test_last_log(), "'two'"), "bad FAME_NODE: %s", test_last_log());
        unsetenv("FAME_NODE");

        /* Read-only: never registered, mapping not writable. */
        CHECK(fame_open(path, FAME_OPEN_RDONLY, &a) == 0, "rdonly");
        fame_close(a);

        snprintf(path, sizeof path, "%s/missing.fam", dir);
        test_clear_log();
        CHECK(fame_open(path, 0, &a) == -ENOENT && strstr(test_last_log(), "fame fam create"), "missing: %s", test_last_log());
}

static void test_pci(void) {
        char sys[PATH_MAX * 2], proc[PATH_MAX * 2], path[PATH_MAX * 2], buf[16];
        struct fame *f = NULL;

        snprintf(sys, sizeof sys, "%s/sys", dir);
        snprintf(proc, sizeof proc, "%s/proc", dir);
        setenv("FAME_SYSFS", sys, 1);
        setenv("FAME_PROC", proc, 1);
        put("proc/cmdline", "console=ttyS0 quiet fame.node=2 fame.nodes=3 fame.cluster=fromcmdline\n");

        /* No ivshmem device at all. */
        add_pci("0000:00:01.0", "0x8086\n", "0x7000\n", 0xfe000000, "1\n");
        test_clear_log();
        CHECK(fame_open(NULL, 0, &f) == -ENODEV && strstr(test_last_log(), "1af4:1110"), "no device: %s", test_last_log());

        /* 00:03.0: ivshmem whose BAR2 holds zeros; 00:04.0: disabled device with a valid FAM;
         * 00:05.0: unassigned BAR.  The scan must pick 00:04.0 and enable it. */
        add_pci("0000:00:03.0", "0x1af4\n", "0x1110\n", 0xfc000000, "1\n");
        put("sys/bus/pci/devices/0000:00:03.0/resource2", "");
        snprintf(path, sizeof path, "%s/sys/bus/pci/devices/0000:00:03.0/resource2", dir);
        CHECK(truncate(path, 64 * MiB) == 0, "zero BAR");
        add_pci("0000:00:04.0", "0x1af4\n", "0x1110\n", 0x800000000, "0\n");
        make_fam("sys/bus/pci/devices/0000:00:04.0/resource2", 4);
        add_pci("0000:00:05.0", "0x1af4\n", "0x1110\n", 0, "1\n");

        test_clear_log();
        CHECK(fame_open(NULL, 0, &f) == 0, "pci scan: %s", test_last_log());
        if (f) {
                CHECK(strcmp(fame_source_kind(f), "pci") == 0 && strstr(fame_source_path(f), "0000:00:04.0"), "picked %s", fame_source_path(f));
                CHECK(fame_bar_address(f) == 0x800000000, "BAR2 address 0x%" PRIx64, fame_bar_address(f));
                CHECK(fame_size(f) == 64 * MiB && fame_get_geometry(f)->node_count == 4, "geometry from BAR2");
                CHECK(fame_node_id(f) == 2 && strcmp(fame_cluster_name(f), "fromcmdline") == 0, "identity from the kernel command line");
                CHECK(fame_cluster_node_count(f) == 3 && fame_node_coordinate(f) == NULL, "node count from the kernel command line");
                fam_atomic_32_write(fame_slot(f, 1), 7);
                fame_close(f);
        }
        snprintf(path, sizeof path, "%s/sys/bus/pci/devices/0000:00:04.0/enable", dir);
        FILE *e = fopen(path, "re");
        CHECK(e && fgets(buf, sizeof buf, e) && buf[0] == '1', "device enabled");
        if (e)
                fclose(e);

        /* fw_cfg wins over the command line; FAME_NODE over both. */
        put("sys/firmware/qemu_fw_cfg/by_name/opt/org.fame/node/raw", "3");
        put("sys/firmware/qemu_fw_cfg/by_name/opt/org.fame/cluster/raw", "fromfwcfg");
        put("sys/firmware/qemu_fw_cfg/by_name/opt/org.fame/nodes/raw", "4");
        put("sys/firmware/qemu_fw_cfg/by_name/opt/org.fame/coordinate/raw", "Rack/1/Enclosure/1/Node/3");
        CHECK(fame_open("pci:", 0, &f) == 0 && fame_node_id(f) == 3 && strcmp(fame_cluster_name(f), "fromfwcfg") == 0, "fw_cfg identity");
        CHECK(f && fame_cluster_node_count(f) == 4 && fame_node_coordinate(f) && strcmp(fame_node_coordinate(f), "Rack/1/Enclosure/1/Node/3") == 0,
              "fw_cfg node count and coordinate");
        fame_close(f);
        setenv("FAME_NODE", "4", 1);
        CHECK(fame_open(NULL, 0, &f) == 0 && fame_node_id(f) == 4, "FAME_NODE wins");
        fame_close(f);
        unsetenv("FAME_NODE");

        /* A named device. */
        CHECK(fame_open("pci:0000:00:04.0", 0, &f) == 0 && fame_get_geometry(f)->node_count == 4, "pci:BDF");
        if (f)
                CHECK(fam_atomic_32_read(fame_slot(f, 1)) == 7, "data persisted in BAR2");
        fame_close(f);
        test_clear_log();
        CHECK(fame_open("pci:0000:00:03.0", 0, &f) == -EBADMSG && strstr(test_last_log(), "no FAM header"), "zero BAR: %s", test_last_log());
        test_clear_log();
        CHECK(fame_open("pci:0000:00:05.0", 0, &f) == -ENXIO && strstr(test_last_log(), "no address"), "unassigned: %s", test_last_log());
        test_clear_log();
        CHECK(fame_open("pci:0000:00:01.0", 0, &f) == -ENODEV && strstr(test_last_log(), "not an ivshmem"), "wrong device: %s", test_last_log());
        setenv("FAME_PCI_DEVICE", "0000:00:03.0", 1);
        CHECK(fame_open(NULL, 0, &f) == -EBADMSG, "FAME_PCI_DEVICE honoured");
        unsetenv("FAME_PCI_DEVICE");

        /* Only bad devices: the error names the first reason. */
        snprintf(path, sizeof path, "%s/sys/bus/pci/devices/0000:00:04.0/resource2", dir);
        CHECK(truncate(path, 0) == 0 && truncate(path, 64 * MiB) == 0, "wipe");
        test_clear_log();
        CHECK(fame_open(NULL, 0, &f) == -EBADMSG && strstr(test_last_log(), "0000:00:03.0"), "all bad: %s", test_last_log());

        unsetenv("FAME_SYSFS");
        unsetenv("FAME_PROC");
}

int main(void) {
        test_capture_log();
        snprintf(dir, sizeof dir, "%s", test_tmpdir());
        test_host_file();
        test_pci();
        return test_exit();
}
