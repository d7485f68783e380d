/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame_open(): find FAM and map it — a backing file on the host, BAR2 of the ivshmem-plain
 * PCI device (1af4:1110) in a node.  $FAME_SYSFS and $FAME_PROC (default /sys and /proc)
 * let tests point the PCI scan and identity lookup at a tree they built.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fam_atomic.h"
#include "fame-config.h"
#include "fame-internal.h"


/* The mappings of a FAME_OPEN_LAZY handle: unit u is FAM [u * book_size, (u + 1) * book_size)
 * (book u - 1 of the book area for u >= 1, since book_area_offset = book_size); unit 0 beyond
 * head is mapped on demand like a book. */
struct lazy {
        pthread_mutex_t lock;           /* taken to map; mapped[] is read without it */
        int prot, mflags;
        uint64_t head;                  /* [0, head) mapped at fame_open() */
        uint64_t units;
        uint8_t mapped[];               /* 1 once unit u is mapped (release/acquire) */
};

struct fame {
        void *base;                     /* the whole FAM, or (lazy) the reserved range */
        uint64_t size;
        struct lazy *lazy;
        struct fame_geometry geo;
        int fd;
        bool registered;
        const char *kind;
        char *path;
        uint64_t bar_address;
        uint32_t node_id;
        char *cluster;
        uint32_t cluster_nodes;
        char *coordinate;
};

static const char *sysfs_root(void) {
        const char *s = getenv("FAME_SYSFS");
        return s && *s ? s : "/sys";
}

static const char *proc_root(void) {
        const char *s = getenv("FAME_PROC");
        return s && *s ? s : "/proc";
}

/* Reads a small text file, strips the trailing newline. */
static int read_line(const char *path, char *buf, size_t len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        do
                n = read(fd, buf, len - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        buf[n] = 0;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                buf[--n] = 0;
        return (int) n;
}

static int parse_node_number(const char *s, uint32_t *ret) {
        char *end;
        unsigned long v;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v < 1 || v > FAME_MAX_NODES)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* Finds "key=value" on the kernel command line. */
static char *cmdline_value(const char *key) {
        char path[PATH_MAX], buf[4096];
        size_t klen = strlen(key);

        snprintf(path, sizeof path, "%s/cmdline", proc_root());
        if (read_line(path, buf, sizeof buf) < 0)
                return NULL;
        char *save = NULL;
        for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
                if (strncmp(tok, key, klen) == 0 && tok[klen] == '=')
                        return strdup(tok + klen + 1);
        return NULL;
}

static char *fw_cfg_value(const char *name) {
        char path[PATH_MAX], buf[256];

        snprintf(path, sizeof path, "%s/firmware/qemu_fw_cfg/by_name/opt/org.fame/%s/raw", sysfs_root(), name);
        if (read_line(path, buf, sizeof buf) < 0)
                return NULL;
        return strdup(buf);
}

char *fame_read_identity_value(const char *env, const char *name) {
        char key[64];
        const char *e = getenv(env);
        char *v;

        if (e && *e)
                return strdup(e);
        v = fw_cfg_value(name);
        if (v)
                return v;
        snprintf(key, sizeof key, "fame.%s", name);
        return cmdline_value(key);
}

/* Node identity: environment, then fw_cfg, then the kernel command line. */
int fame_read_node_identity(uint32_t *ret_node, char **ret_cluster) {
        _cleanup_free_ char *node = NULL;
        const char *origin = "FAME_NODE";
        const char *env;
        int r;

        env = getenv("FAME_NODE");
        if (env && *env)
                node = strdup(env);
        if (!node) {
                origin = "fw_cfg opt/org.fame/node";
                node = fw_cfg_value("node");
        }
        if (!node) {
                origin = "kernel command line fame.node";
                node = cmdline_value("fame.node");
        }
        *ret_node = 0;
        if (node) {
                r = parse_node_number(node, ret_node);
                if (r < 0)
                        return log_err(r, "%s='%s' is not a node number (1 to %u)", origin, node, FAME_MAX_NODES);
        }

        env = getenv("FAME_CLUSTER");
        *ret_cluster = env && *env ? strdup(env) : NULL;
        if (!*ret_cluster)
                *ret_cluster = fw_cfg_value("cluster");
        if (!*ret_cluster)
                *ret_cluster = cmdline_value("fame.cluster");
        return 0;
}

/* Lazy: reserves address space for all of FAM and maps its head, the header page up to the
 * end of the librarian area (page-aligned; never past book 0's place). */
static int map_lazy(struct fame *f, int fd, uint64_t size, int prot, int mflags) {
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE);
        uint64_t head = (f->geo.librarian_offset + f->geo.librarian_size + page - 1) / page * page;
        uint64_t units = size / f->geo.book_size;
        void *p;

        if (head > f->geo.book_size)
                head = f->geo.book_size;
        if (units > SIZE_MAX - sizeof(struct lazy))
                return -EFBIG;
        f->lazy = calloc(1, sizeof(struct lazy) + (size_t) units);
        if (!f->lazy)
                return -ENOMEM;
        pthread_mutex_init(&f->lazy->lock, NULL);
        f->lazy->prot = prot;
        f->lazy->mflags = mflags;
        f->lazy->head = head;
        f->lazy->units = units;
        f->base = mmap(NULL, (size_t) size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (f->base == MAP_FAILED) {
                f->base = NULL;
                return negative_errno();
        }
        f->size = size;
        p = mmap(f->base, (size_t) head, prot, mflags | MAP_FIXED, fd, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        if (head == f->geo.book_size)
                f->lazy->mapped[0] = 1;
        return 0;
}

static int map_checked(struct fame *f, int fd, uint64_t size, unsigned flags) {
        int prot = PROT_READ | ((flags & FAME_OPEN_RDONLY) ? 0 : PROT_WRITE);
        int mflags = MAP_SHARED | ((flags & FAME_OPEN_POPULATE) ? MAP_POPULATE : 0);

        if (size > SIZE_MAX)
                return -EFBIG;
        if (flags & FAME_OPEN_LAZY)
                return map_lazy(f, fd, size, prot, mflags);
        f->base = mmap(NULL, (size_t) size, prot, mflags, fd, 0);
        if (f->base == MAP_FAILED) {
                f->base = NULL;
                return negative_errno();
        }
        f->size = size;
        return 0;
}

/* Drops the mapping(s) and the lazy table: after a failed map_checked() too. */
static void unmap(struct fame *f) {
        if (f->base)
                munmap(f->base, (size_t) f->size);
        f->base = NULL;
        if (f->lazy) {
                pthread_mutex_destroy(&f->lazy->lock);
                free(f->lazy);
                f->lazy = NULL;
        }
}

static int open_file(struct fame *f, const char *path, unsigned flags) {
        _cleanup_close_ int fd = -1;
        int r;

        /* O_NONBLOCK: a FIFO would block the open; fame_file_check_fd() refuses anything not regular */
        fd = open(path, ((flags & FAME_OPEN_RDONLY) ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = negative_errno();
                if (r == -ENOENT)
                        return log_err(r, "FAM file '%s' does not exist; create it with 'fame fam create %s --size 1G'", path, path);
                return log_err(r, "Failed to open FAM file '%s': %m", path);
        }
        r = fame_file_check_fd(fd, path, &f->geo);
        if (r < 0)
                return r;
        r = map_checked(f, fd, f->geo.total_size, flags);
        if (r < 0)
                return log_err(r, "Failed to map FAM file '%s': %m", path);
        f->kind = "file";
        f->path = strdup(path);
        if (!f->path)
                return -ENOMEM;
        f->fd = TAKE_FD(fd);
        return 0;
}

static int hexfile(const char *dir, const char *name, unsigned long long *ret) {
        char path[PATH_MAX], buf[64], *end;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (read_line(path, buf, sizeof buf) < 0)
                return -ENOENT;
        errno = 0;
        *ret = strtoull(buf, &end, 16);
        return errno || end == buf ? -EINVAL : 0;
}

/* Tries one PCI device: identity, BAR2 placement, then the FAM header in BAR2. */
static int open_pci_device(struct fame *f, const char *dir, unsigned flags, char *why, size_t whylen) {
        char path[PATH_MAX + 32], buf[512];
        unsigned long long vendor, device, start = 0, end = 0, rflags;
        int r;

        if (hexfile(dir, "vendor", &vendor) < 0 || hexfile(dir, "device", &device) < 0 ||
            vendor != 0x1af4 || device != 0x1110)
                return -ENODEV;

        /* Direct kernel boot (aarch64 virt in particular) may leave the device disabled:
         * then reads return all-ones and writes are lost.  Enabling it needs root. */
        snprintf(path, sizeof path, "%s/enable", dir);
        if (read_line(path, buf, sizeof buf) >= 0 && strcmp(buf, "0") == 0) {
                _cleanup_close_ int efd = open(path, O_WRONLY | O_CLOEXEC);
                ssize_t w = efd < 0 ? -1 : write(efd, "1", 1);
                if (w != 1) {
                        r = w < 0 ? negative_errno() : -EIO;
                        snprintf(why, whylen, "the device is disabled and enabling it failed (%s)%s", strerror(-r),
                                 r == -EACCES || r == -EPERM ? "; run as root" : "");
                        return r;
                }
        }

        /* Line 3 of "resource" is BAR2: start end flags. */
        snprintf(path, sizeof path, "%s/resource", dir);
        FILE *res = fopen(path, "re");
        if (!res) {
                snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
                return -EIO;
        }
        for (int i = 0; i < 3 && fgets(buf, sizeof buf, res); i++)
                if (i == 2 && sscanf(buf, "%llx %llx %llx", &start, &end, &rflags) != 3)
                        start = end = 0;
        fclose(res);
        if (start == 0 || end <= start) {
                snprintf(why, whylen, "BAR2 has no address (it did not fit the guest's PCI window)");
                return -ENXIO;
        }
        uint64_t size = end - start + 1;

        snprintf(path, sizeof path, "%s/resource2", dir);
        _cleanup_close_ int fd = open(path, ((flags & FAME_OPEN_RDONLY) ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                snprintf(why, whylen, "cannot open %s: %s%s", path, strerror(-r), r == -EACCES ? " (run as root)" : "");
                return r;
        }

        /* Look at the header through a one-page mapping before mapping everything. */
        void *p = mmap(NULL, FAME_HEADER_PAGE, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                r = negative_errno();
                snprintf(why, whylen, "cannot map %s: %s", path, strerror(-r));
                return r;
        }
        uint8_t h[FAME_HEADER_SIZE];
        memcpy(h, p, sizeof h);
        munmap(p, FAME_HEADER_PAGE);
        char reason[256];
        r = fame_header_check(h, sizeof h, size, &f->geo, reason, sizeof reason);
        if (r < 0) {
                snprintf(why, whylen, "BAR2 %s", reason);
                return r;
        }
        r = map_checked(f, fd, size, flags);
        if (r < 0) {
                unmap(f);
                snprintf(why, whylen, "cannot map %s: %s", path, strerror(-r));
                return r;
        }
        f->kind = "pci";
        f->path = strdup(dir);
        if (!f->path) {
                unmap(f);
                snprintf(why, whylen, "out of memory");
                return -ENOMEM;
        }
        f->bar_address = start;
        f->fd = TAKE_FD(fd);
        return 0;
}

static int open_pci(struct fame *f, const char *bdf, unsigned flags) {
        char devdir[PATH_MAX], dir[PATH_MAX + 300], why[400];
        char first_reason[700] = "";
        unsigned found = 0;
        int r, first_r = 0;

        snprintf(devdir, sizeof devdir, "%s/bus/pci/devices", sysfs_root());
        if (bdf && *bdf) {
                snprintf(dir, sizeof dir, "%s/%s", devdir, bdf);
                why[0] = 0;
                r = open_pci_device(f, dir, flags, why, sizeof why);
                if (r == -ENODEV)
                        return log_err(r, "PCI device %s is not an ivshmem device (1af4:1110)", bdf);
                if (r < 0)
                        return log_err(r, "PCI device %s: %s", bdf, why);
                return 0;
        }

        struct dirent **names = NULL;
        int n = scandir(devdir, &names, NULL, alphasort);   /* bus order: the first device wins */
        if (n < 0)
                return log_err(-ENODEV, "No FAM found: FAME_PATH is not set and %s cannot be read; on the host, name a FAM file or set FAME_PATH", devdir);
        r = -ENODEV;
        for (int i = 0; i < n; i++) {
                if (r < 0 && names[i]->d_name[0] != '.') {
                        snprintf(dir, sizeof dir, "%s/%s", devdir, names[i]->d_name);
                        why[0] = 0;
                        r = open_pci_device(f, dir, flags, why, sizeof why);
                        if (r != -ENODEV)
                                found++;
                        if (r < 0 && r != -ENODEV && !first_reason[0]) {
                                snprintf(first_reason, sizeof first_reason, "%s: %s", names[i]->d_name, why);
                                first_r = r;
                        }
                }
                free(names[i]);
        }
        free(names);
        if (r >= 0)
                return 0;
        if (found == 0)
                return log_err(-ENODEV, "No FAM found: FAME_PATH is not set and there is no ivshmem PCI device (1af4:1110); on the host, name a FAM file or set FAME_PATH");
        return log_err(first_r, "No ivshmem PCI device holds usable FAM: %s", first_reason);
}

_public_ int fame_open(const char *path, unsigned flags, struct fame **ret) {
        struct fame *f;
        int r;

        if (!ret)
                return -EINVAL;
        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->fd = -1;

        if (!path || !*path) {
                const char *env = getenv("FAME_PATH");
                path = env && *env ? env : NULL;
        }
        if (!path) {
                const char *bdf = getenv("FAME_PCI_DEVICE");
                r = open_pci(f, bdf, flags);
        } else if (strncmp(path, "pci:", 4) == 0)
                r = open_pci(f, path + 4, flags);
        else
                r = open_file(f, path, flags);
        if (r < 0)
                goto fail;

        r = fame_read_node_identity(&f->node_id, &f->cluster);
        if (r < 0)
                goto fail;
        {
                _cleanup_free_ char *nodes = fame_read_identity_value("FAME_NODES", "nodes");
                if (nodes && parse_node_number(nodes, &f->cluster_nodes) < 0)
                        f->cluster_nodes = 0;
                f->coordinate = fame_read_identity_value("FAME_COORDINATE", "coordinate");
        }
        if (f->node_id > f->geo.node_count) {
                r = log_err(-ERANGE, "This node's id %" PRIu32 " is larger than the FAM's node count %" PRIu32 "; check FAME_NODE",
                            f->node_id, f->geo.node_count);
                goto fail;
        }

        if (!(flags & (FAME_OPEN_NOREGISTER | FAME_OPEN_RDONLY))) {
                if (fam_atomic_register_region(f->base, f->size, f->fd, 0) < 0) {
                        r = log_err(negative_errno(), "Failed to register the FAM mapping for atomics: %m");
                        goto fail;
                }
                f->registered = true;
        }
        *ret = f;
        return 0;
fail:
        fame_close(f);
        return r;
}

_public_ void fame_close(struct fame *f) {
        if (!f)
                return;
        if (f->registered)
                fam_atomic_unregister_region(f->base, f->size);
        unmap(f);
        if (f->fd >= 0)
                close(f->fd);
        free(f->path);
        free(f->cluster);
        free(f->coordinate);
        free(f);
}

_public_ void *fame_base(const struct fame *f) { return f && !f->lazy ? f->base : NULL; }
_public_ uint64_t fame_size(const struct fame *f) { return f ? f->size : 0; }
_public_ const struct fame_geometry *fame_get_geometry(const struct fame *f) { return f ? &f->geo : NULL; }
_public_ const char *fame_source_kind(const struct fame *f) { return f ? f->kind : NULL; }
_public_ const char *fame_source_path(const struct fame *f) { return f ? f->path : NULL; }
_public_ uint64_t fame_bar_address(const struct fame *f) { return f ? f->bar_address : 0; }
_public_ uint32_t fame_node_id(const struct fame *f) { return f ? f->node_id : 0; }
int fame_fd(const struct fame *f) { return f ? f->fd : -1; }
_public_ const char *fame_cluster_name(const struct fame *f) { return f ? f->cluster : NULL; }
_public_ uint32_t fame_cluster_node_count(const struct fame *f) { return f ? f->cluster_nodes : 0; }
_public_ const char *fame_node_coordinate(const struct fame *f) { return f ? f->coordinate : NULL; }

_public_ void *fame_slot(const struct fame *f, uint32_t node_id) {
        if (!f || node_id < 1 || node_id > f->geo.node_count)
                return NULL;
        return (uint8_t *) f->base + f->geo.slots_offset + (uint64_t) (node_id - 1) * f->geo.slot_size;
}

/* Maps units [first, last] of a lazy handle that are not mapped yet. */
static int map_units(const struct fame *f, uint64_t first, uint64_t last) {
        struct lazy *z = f->lazy;
        uint64_t bs = f->geo.book_size;
        int r = 0;

        pthread_mutex_lock(&z->lock);
        for (uint64_t u = first; u <= last && r >= 0; u++) {
                if (__atomic_load_n(&z->mapped[u], __ATOMIC_RELAXED))
                        continue;
                uint64_t start = u == 0 ? z->head : u * bs;   /* unit 0's head is always mapped */
                void *p = mmap((uint8_t *) f->base + start, (size_t) ((u + 1) * bs - start), z->prot,
                               z->mflags | MAP_FIXED, f->fd, (off_t) start);
                if (p == MAP_FAILED) {
                        r = negative_errno();
                        log_err(r, "Failed to map FAM bytes 0x%" PRIx64 "-0x%" PRIx64 " from %s: %m%s", start,
                                (u + 1) * bs - 1, f->path,
                                r == -ENOMEM ? " (too many mappings? see /proc/sys/vm/max_map_count)" : "");
                } else
                        __atomic_store_n(&z->mapped[u], 1, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&z->lock);
        return r;
}

static int map_range(const struct fame *f, uint64_t offset, uint64_t len, void **ret) {
        if (offset > f->size || len > f->size - offset)
                return log_err(-ERANGE, "FAM bytes 0x%" PRIx64 " (+%" PRIu64 ") are outside the FAM of %" PRIu64 " bytes",
                               offset, len, f->size);
        if (f->lazy && len > 0 && offset + len > f->lazy->head) {
                uint64_t first = offset / f->geo.book_size, last = (offset + len - 1) / f->geo.book_size;
                for (uint64_t u = first; u <= last; u++)
                        if (!__atomic_load_n(&f->lazy->mapped[u], __ATOMIC_ACQUIRE)) {
                                int r = map_units(f, u, last);
                                if (r < 0)
                                        return r;
                                break;
                        }
        }
        *ret = (uint8_t *) f->base + offset;
        return 0;
}

_public_ int fame_map_range(struct fame *f, uint64_t offset, uint64_t len, void **ret) {
        if (!f || !ret)
                return -EINVAL;
        return map_range(f, offset, len, ret);
}

_public_ void *fame_book(const struct fame *f, uint32_t ig, uint64_t book_num) {
        void *p;
        int r;

        if (!f)
                return NULL;
        int64_t off = fame_geometry_book_offset(&f->geo, ig, book_num);
        if (off < 0)
                return NULL;
        r = map_range(f, (uint64_t) off, f->geo.book_size, &p);
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        return p;
}

_public_ const char *fame_version(void) {
        return FAME_VERSION;
}
