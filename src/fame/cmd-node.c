/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame node ...: node-side verbs.  They find FAM like every libfame program (the ivshmem device
 * in a node, $FAME_PATH on the host), so they work in both places.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fam_atomic.h"
#include "fame.h"
#include "util.h"
#include "verbs.h"

/* Lazily: in a node, mapping all of BAR2 fills a page-table entry per page at once (32 MiB and
 * TCG's time for 16 GiB); these verbs touch the slots and a few bytes. */
static int open_fam(struct fame **ret) {
        return fame_open(NULL, FAME_OPEN_LAZY, ret);
}

/* FAM bytes [off, off+len) of a lazy handle, mapped; libfame says why it cannot. */
static int map_bytes(struct fame *fam, uint64_t off, uint64_t len, void **ret) {
        return fame_map_range(fam, off, len, ret);
}

static int read_small(const char *path, char *buf, size_t len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t k = read(fd, buf, len - 1);
        close(fd);
        if (k <= 0)
                return -1;
        buf[k] = 0;
        return 0;
}

/* The boot nonce the cluster runtime gave this boot: $FAME_BOOT, fw_cfg, or fame.boot=. */
static uint64_t boot_nonce(void) {
        char buf[4096], path[PATH_MAX];
        const char *env = getenv("FAME_BOOT"), *sys = getenv("FAME_SYSFS"), *proc = getenv("FAME_PROC");

        if (env && *env)
                return strtoull(env, NULL, 10);
        snprintf(path, sizeof path, "%s/firmware/qemu_fw_cfg/by_name/opt/org.fame/boot/raw", sys && *sys ? sys : "/sys");
        if (read_small(path, buf, sizeof buf) == 0)
                return strtoull(buf, NULL, 10);
        snprintf(path, sizeof path, "%s/cmdline", proc && *proc ? proc : "/proc");
        if (read_small(path, buf, sizeof buf) == 0) {
                char *p = strstr(buf, "fame.boot=");
                if (p)
                        return strtoull(p + 10, NULL, 10);
        }
        return 0;
}

static uint64_t realtime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* The verbs that take no arguments and act on this node's FAM. */
static int open_fam_no_args(const struct verb *v, int argc, char **argv, struct fame **ret) {
        (void) argv;
        int r = verb_check_args(v, argc - 1);
        return r < 0 ? r : open_fam(ret);
}

int cmd_node_join(const struct verb *v, int argc, char **argv) {
        struct fame *fam = NULL;
        int r = open_fam_no_args(v, argc, argv, &fam);
        if (r < 0)
                return r;
        uint32_t id = fame_node_id(fam);
        if (id == 0) {
                fame_close(fam);
                return cli_fail(-EINVAL, "This node's id is unknown: no FAME_NODE, fw_cfg opt/org.fame/node or fame.node= on the kernel command line");
        }
        struct fame_slot_header *h = fame_slot(fam, id);
        fam_atomic_32_write((int32_t *) &h->node_id, (int32_t) id);
        fam_atomic_64_fetch_add((int64_t *) &h->join_count, 1);
        fam_atomic_64_write((int64_t *) &h->heartbeat_ns, (int64_t) realtime_ns());
        fam_atomic_32_write((int32_t *) &h->state, FAME_SLOT_UP);
        /* The boot nonce last: the host takes it as "this boot has joined". */
        fam_atomic_64_write((int64_t *) &h->boot, (int64_t) boot_nonce());

        const struct fame_geometry *g = fame_get_geometry(fam);
        char u[37], sz[32];
        fame_uuid_format(g->uuid, u);
        printf("fame: node%02" PRIu32 " joined FAM %s (%s, %s %s", id, u, format_bytes(g->total_size, sz, sizeof sz),
               fame_source_kind(fam), fame_source_path(fam));
        if (fame_bar_address(fam))
                printf(", BAR2 at 0x%" PRIx64, fame_bar_address(fam));
        printf(")\n");
        fame_close(fam);
        return 0;
}

int cmd_node_slots(const struct verb *v, int argc, char **argv) {
        struct fame *fam = NULL;
        int r = open_fam_no_args(v, argc, argv, &fam);
        if (r < 0)
                return r;
        const struct fame_geometry *g = fame_get_geometry(fam);
        static const char *const states[] = { "never", "up", "down" };
        printf("%-8s %4s  %-6s %6s  %s\n", "SLOT", "ID", "STATE", "JOINS", "BOOT");
        for (uint32_t n = 1; n <= g->node_count; n++) {
                struct fame_slot_header *h = fame_slot(fam, n);
                uint32_t state = (uint32_t) fam_atomic_32_read((int32_t *) &h->state);
                printf("node%02" PRIu32 "   %4" PRId32 "  %-6s %6" PRId64 "  %016" PRIx64 "\n", n,
                       fam_atomic_32_read((int32_t *) &h->node_id), state < 3 ? states[state] : "?",
                       fam_atomic_64_read((int64_t *) &h->join_count), (uint64_t) fam_atomic_64_read((int64_t *) &h->boot));
        }
        fame_close(fam);
        return 0;
}

static int parse_offset(const struct verb *v, struct fame *fam, const char *s, uint64_t len, uint64_t align, uint64_t *ret) {
        if (parse_size(s, ret) < 0)
                return cli_usage_error(v, "'%s' is not an offset (e.g. 0x800000, 8M)", s);
        if (*ret % align || *ret >= fame_size(fam) || len > fame_size(fam) - *ret)
                return cli_usage_error(v, "offset 0x%" PRIx64 " (+%" PRIu64 ") is outside FAM or not %" PRIu64 "-byte aligned", *ret, len, align);
        if (*ret < fame_get_geometry(fam)->meta_offset)
                return cli_usage_error(v, "offset 0x%" PRIx64 " is inside the FAM header", *ret);
        return 0;
}

/* fame node fetch-add OFFSET COUNT: COUNT fabric fetch_adds of 1 on the 64-bit word. */
int cmd_node_fetch_add(const struct verb *v, int argc, char **argv) {
        struct fame *fam = NULL;
        uint64_t off;
        uint32_t count;
        int r = verb_check_args(v, argc - 1);
        if (r < 0)
                return r;
        if (parse_uint32(argv[2], 1, UINT32_MAX, &count) < 0)
                return cli_usage_error(v, "COUNT '%s' is not a positive number", argv[2]);
        r = open_fam(&fam);
        if (r < 0)
                return r;
        int64_t *w = NULL;
        r = parse_offset(v, fam, argv[1], 8, 8, &off);
        if (r >= 0)
                r = map_bytes(fam, off, 8, (void **) &w);
        if (r >= 0) {
                int64_t last = 0;
                for (uint32_t i = 0; i < count; i++)
                        last = fam_atomic_64_fetch_add(w, 1);
                printf("%" PRId64 "\n", last + 1);
        }
        fame_close(fam);
        return r;
}

/* fame node fill OFFSET LENGTH SEED: writes a pattern; prints its checksum. */
int cmd_node_fill(const struct verb *v, int argc, char **argv) {
        struct fame *fam = NULL;
        uint64_t off, len, seed;
        int r = verb_check_args(v, argc - 1);
        if (r < 0)
                return r;
        if (parse_size(argv[2], &len) < 0 || len == 0)
                return cli_usage_error(v, "LENGTH '%s' is not a size", argv[2]);
        if (parse_size(argv[3], &seed) < 0)
                return cli_usage_error(v, "SEED '%s' is not a number", argv[3]);
        r = open_fam(&fam);
        if (r < 0)
                return r;
        uint8_t *p = NULL;
        r = parse_offset(v, fam, argv[1], len, 1, &off);
        if (r >= 0)
                r = map_bytes(fam, off, len, (void **) &p);
        if (r >= 0) {
                uint64_t s = seed | 1;
                for (uint64_t i = 0; i < len; i++)
                        p[i] = (uint8_t) xorshift64(&s);
                fame_persist(p, len);
                printf("%016" PRIx64 "\n", fnv1a64(p, len));
        }
        fame_close(fam);
        return r;
}

/* fame node checksum OFFSET LENGTH */
int cmd_node_checksum(const struct verb *v, int argc, char **argv) {
        struct fame *fam = NULL;
        uint64_t off, len;
        int r = verb_check_args(v, argc - 1);
        if (r < 0)
                return r;
        if (parse_size(argv[2], &len) < 0 || len == 0)
                return cli_usage_error(v, "LENGTH '%s' is not a size", argv[2]);
        r = fame_open(NULL, FAME_OPEN_RDONLY | FAME_OPEN_LAZY, &fam);
        if (r < 0)
                return r;
        uint8_t *p = NULL;
        r = parse_offset(v, fam, argv[1], len, 1, &off);
        if (r >= 0)
                r = map_bytes(fam, off, len, (void **) &p);
        if (r >= 0) {
                fame_invalidate(p, len);        /* read FAM, not lines this node cached before */
                printf("%016" PRIx64 "\n", fnv1a64(p, len));
        }
        fame_close(fam);
        return r;
}

/* fame node memcpy-bench [SIZE]: memcpy into this node's FAM books vs into its own RAM. */
int cmd_node_memcpy_bench(const struct verb *v, int argc, char **argv) {
        struct fame *fam = NULL;
        uint64_t size = UINT64_C(16) << 20;
        int r = verb_check_args(v, argc - 1);
        if (r < 0)
                return r;
        if (argc > 1 && (parse_size(argv[1], &size) < 0 || size < 4096))
                return cli_usage_error(v, "SIZE '%s' is not a size of at least 4K", argv[1]);
        r = open_fam(&fam);
        if (r < 0)
                return r;
        const struct fame_geometry *g = fame_get_geometry(fam);
        uint32_t id = fame_node_id(fam) ? fame_node_id(fam) : 1;
        if (size > (uint64_t) g->books_per_node * g->book_size) {
                fame_close(fam);
                return cli_usage_error(v, "SIZE is larger than this node's books");
        }
        uint8_t *dst = NULL;
        r = map_bytes(fam, (uint64_t) fame_geometry_book_offset(g, id - 1, 0), size, (void **) &dst);
        if (r < 0) {
                fame_close(fam);
                return r;
        }
        uint8_t *src = malloc(size), *ram = malloc(size);
        if (!src || !ram) {
                free(src);
                free(ram);
                fame_close(fam);
                return cli_fail(-ENOMEM, "Out of memory for two %" PRIu64 "-byte buffers", size);
        }
        for (uint64_t i = 0; i < size; i++)
                src[i] = (uint8_t) i;
        memset(ram, 0, size);
        memset(dst, 0, size);
        double best_ram = 0, best_fam = 0;
        for (int round = 0; round < 5; round++) {
                double t0 = now_seconds();
                memcpy(ram, src, size);
                double t1 = now_seconds();
                memcpy(dst, src, size);
                double t2 = now_seconds();
                double a = (double) size / (t1 - t0) / 1e6, b = (double) size / (t2 - t1) / 1e6;
                best_ram = a > best_ram ? a : best_ram;
                best_fam = b > best_fam ? b : best_fam;
        }
        printf("memcpy %" PRIu64 " MiB: node RAM %.0f MB/s, FAM %.0f MB/s, ratio %.2f\n", size >> 20, best_ram, best_fam, best_fam / best_ram);
        free(src);
        free(ram);
        fame_close(fam);
        return 0;
}
