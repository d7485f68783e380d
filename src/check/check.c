/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checker's host side: see check.h and docs/check.md. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-model.h"
#include "check.h"
#include "log.h"
#include "macro.h"
#include "util.h"

struct check {
        struct check_map m;
};

static int remove_dir(const char *dir) {
        static const char *const files[] = { CHECK_LINES_FILE, CHECK_PERSISTED_FILE, CHECK_FINDINGS_FILE };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = strf("%s/%s", dir, files[i]);
                if (!p)
                        return -ENOMEM;
                if (unlink(p) < 0 && errno != ENOENT)
                        return -errno;
        }
        if (rmdir(dir) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int make_file(const char *dir, const char *name, uint64_t size, int *ret_fd) {
        _cleanup_free_ char *p = strf("%s/%s", dir, name);
        int fd;

        if (!p)
                return -ENOMEM;
        fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create '%s': %m", p);
        if (ftruncate(fd, (off_t) size) < 0) {
                int r = log_error_errno(-errno, "Failed to size '%s' to %" PRIu64 " bytes: %m", p, size);
                close(fd);
                return r;
        }
        if (ret_fd)
                *ret_fd = fd;
        else
                close(fd);
        return 0;
}

/* Copies the FAM file's data (not its holes) into persisted. */
static int copy_fam(const char *fam_path, int out, uint64_t size) {
        int in = open(fam_path, O_RDONLY | O_CLOEXEC);
        off_t pos = 0;

        if (in < 0)
                return log_error_errno(-errno, "Failed to open the FAM file '%s': %m", fam_path);
        while ((uint64_t) pos < size) {
                off_t data = lseek(in, pos, SEEK_DATA), hole;
                if (data < 0) {
                        if (errno == ENXIO)
                                break;
                        data = pos;     /* no SEEK_DATA: copy everything */
                        hole = (off_t) size;
                } else {
                        hole = lseek(in, data, SEEK_HOLE);
                        if (hole < 0 || (uint64_t) hole > size)
                                hole = (off_t) size;
                }
                while (data < hole) {
                        off_t o_in = data, o_out = data;
                        ssize_t k = copy_file_range(in, &o_in, out, &o_out, (size_t) (hole - data), 0);
                        if (k < 0) {
                                int r = log_error_errno(-errno, "Failed to copy the FAM file '%s' for the checker: %m", fam_path);
                                close(in);
                                return r;
                        }
                        if (k == 0)
                                break;
                        data += k;
                }
                pos = hole;
        }
        close(in);
        return 0;
}

int check_create(const char *state_dir, const char *fam_path, uint64_t fam_size, uint32_t nodes) {
        _cleanup_free_ char *dir = strf("%s/%s", state_dir, CHECK_DIR), *tmp = strf("%s/%s.new", state_dir, CHECK_DIR),
                            *log = strf("%s/%s", state_dir, CHECK_LOG_FILE);
        uint64_t n_lines = (fam_size + CHECK_LINE - 1) / CHECK_LINE;
        struct check_header h = { .magic = CHECK_MAGIC, .version = 1 };
        int r, fd;

        if (!dir || !tmp || !log)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (nodes < 1 || nodes > CHECK_MAX_NODES) {
                log_error("The checker follows at most %u nodes, not %u: use fewer nodes with --check", CHECK_MAX_NODES, nodes);
                return -EINVAL;
        }
        r = remove_dir(tmp);
        if (r < 0)
                return log_error_errno(r, "Failed to remove '%s': %m", tmp);
        if (mkdir(tmp, 0700) < 0)
                return log_error_errno(-errno, "Failed to create '%s': %m", tmp);

        h.nodes = nodes;
        h.fam_size = fam_size;
        h.capacity = CHECK_FINDINGS_CAPACITY;
        r = make_file(tmp, CHECK_FINDINGS_FILE, sizeof h + CHECK_FINDINGS_CAPACITY * sizeof(struct check_finding), &fd);
        if (r < 0)
                goto fail;
        r = write_all(fd, &h, sizeof h);
        close(fd);
        if (r < 0) {
                log_error_errno(r, "Failed to write the checker's findings file in '%s': %m", tmp);
                goto fail;
        }
        r = make_file(tmp, CHECK_LINES_FILE, n_lines * sizeof(struct check_line), NULL);
        if (r < 0)
                goto fail;
        r = make_file(tmp, CHECK_PERSISTED_FILE, fam_size, &fd);
        if (r < 0)
                goto fail;
        r = copy_fam(fam_path, fd, fam_size);
        close(fd);
        if (r < 0)
                goto fail;

        r = remove_dir(dir);
        if (r < 0) {
                log_error_errno(r, "Failed to remove the old checker state '%s': %m", dir);
                goto fail;
        }
        if (rename(tmp, dir) < 0) {
                r = log_error_errno(-errno, "Failed to rename '%s' to '%s': %m", tmp, dir);
                goto fail;
        }
        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return log_error_errno(-errno, "Failed to create '%s': %m", log);
        close(fd);
        return 0;
fail:
        (void) remove_dir(tmp);
        return r;
}

int check_remove(const char *state_dir) {
        _cleanup_free_ char *dir = strf("%s/%s", state_dir, CHECK_DIR), *log = strf("%s/%s", state_dir, CHECK_LOG_FILE);
        int r;

        if (!dir || !log)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = remove_dir(dir);
        if (r < 0)
                return log_error_errno(r, "Failed to remove the checker state '%s': %m", dir);
        if (unlink(log) < 0 && errno != ENOENT)
                return log_error_errno(-errno, "Failed to remove '%s': %m", log);
        return 0;
}

bool check_exists(const char *state_dir) {
        _cleanup_free_ char *p = strf("%s/%s/%s", state_dir, CHECK_DIR, CHECK_FINDINGS_FILE);
        return p && access(p, F_OK) == 0;
}

int check_open(const char *state_dir, const char *fam_path, struct check **ret) {
        struct check *c = calloc(1, sizeof *c);
        const char *what = NULL;
        int r;

        *ret = NULL;
        if (!c)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = check_map_open(&c->m, state_dir, fam_path, false, &what);
        if (r < 0) {
                free(c);
                if (r == -ENOENT && what && strcmp(what, fam_path) != 0)
                        log_error("No checker state in '%s/%s': start the cluster with fame up --check", state_dir, CHECK_DIR);
                else
                        log_error("Failed to open the checker's '%s' (in '%s/%s'): %s; fame up --check makes it anew",
                                  what ? what : "?", state_dir, CHECK_DIR, strerror(-r));
                return r;
        }
        *ret = c;
        return 0;
}

void check_close(struct check *c) {
        if (!c)
                return;
        check_map_close(&c->m);
        free(c);
}

int check_host_wrote(struct check *c, uint64_t offset, uint64_t len) {
        struct check_map *m = &c->m;
        uint64_t first, last;

        if (offset >= m->fam_size || len == 0)
                return 0;
        if (len > m->fam_size - offset)
                len = m->fam_size - offset;
        first = offset / CHECK_LINE;
        last = (offset + len - 1) / CHECK_LINE;
        for (uint64_t i = first; i <= last; i++) {
                struct check_line *l = &m->lines[i];
                /* untouched lines are holes of the sparse file: do not fill them in */
                if (!__atomic_load_n(&l->cached, __ATOMIC_ACQUIRE) && !__atomic_load_n(&l->dirty, __ATOMIC_ACQUIRE) &&
                    !__atomic_load_n(&l->atomic_words, __ATOMIC_ACQUIRE) && !__atomic_load_n(&l->stale, __ATOMIC_ACQUIRE))
                        continue;
                __atomic_store_n(&l->dirty, 0, __ATOMIC_RELEASE);
                __atomic_store_n(&l->cached, 0, __ATOMIC_RELEASE);
                __atomic_store_n(&l->stale, 0, __ATOMIC_RELEASE);
                __atomic_store_n(&l->atomic_words, 0, __ATOMIC_RELEASE);
                __atomic_store_n(&l->wb_atomic, 0, __ATOMIC_RELEASE);
        }
        memcpy(m->persisted + offset, m->fam + offset, len);
        return 0;
}

int check_node_stopped(struct check *c, uint32_t node, bool crash, uint64_t *ret_restored) {
        struct check_map *m = &c->m;
        uint64_t me, restored = 0, end = m->n_lines * sizeof(struct check_line);
        off_t pos = 0;

        if (ret_restored)
                *ret_restored = 0;
        if (node < 1 || node > CHECK_MAX_NODES)
                return -EINVAL;
        me = UINT64_C(1) << (node - 1);
        /* only the lines some node touched are data in the sparse lines file */
        while ((uint64_t) pos < end) {
                off_t data = lseek(m->lines_fd, pos, SEEK_DATA), hole;
                if (data < 0) {
                        if (errno == ENXIO)
                                break;
                        data = pos;
                        hole = (off_t) end;
                } else {
                        hole = lseek(m->lines_fd, data, SEEK_HOLE);
                        if (hole < 0 || (uint64_t) hole > end)
                                hole = (off_t) end;
                }
                for (uint64_t i = (uint64_t) data / sizeof(struct check_line); i < (uint64_t) hole / sizeof(struct check_line); i++) {
                        struct check_line *l = &m->lines[i];
                        uint64_t off = i * CHECK_LINE, n = m->fam_size - off < CHECK_LINE ? m->fam_size - off : CHECK_LINE;

                        if (!((__atomic_load_n(&l->cached, __ATOMIC_ACQUIRE) | __atomic_load_n(&l->dirty, __ATOMIC_ACQUIRE) |
                               __atomic_load_n(&l->stale, __ATOMIC_ACQUIRE)) & me))
                                continue;
                        if (__atomic_load_n(&l->dirty, __ATOMIC_ACQUIRE) & me) {
                                if (crash) {
                                        /* the node's cache is gone: memory holds what was written back */
                                        memcpy(m->fam + off, m->persisted + off, n);
                                        restored++;
                                } else {
                                        memcpy(m->persisted + off, m->fam + off, n);
                                        uint64_t others = __atomic_load_n(&l->cached, __ATOMIC_ACQUIRE) & ~me;
                                        if (others)
                                                __atomic_fetch_or(&l->stale, others, __ATOMIC_ACQ_REL);
                                }
                        }
                        __atomic_fetch_and(&l->dirty, ~me, __ATOMIC_ACQ_REL);
                        __atomic_fetch_and(&l->cached, ~me, __ATOMIC_ACQ_REL);
                        __atomic_fetch_and(&l->stale, ~me, __ATOMIC_ACQ_REL);
                }
                pos = hole;
        }
        if (ret_restored)
                *ret_restored = restored;
        return 0;
}

static int cmp_finding(const void *a, const void *b) {
        const struct check_finding *x = a, *y = b;
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        if (x->first_ns != y->first_ns)
                return x->first_ns < y->first_ns ? -1 : 1;
        return 0;
}

int check_read_findings(struct check *c, struct check_report *ret) {
        struct check_map *m = &c->m;
        struct check_report r = { .overflow = __atomic_load_n(&m->hdr->overflow, __ATOMIC_RELAXED), .nodes = m->hdr->nodes };

        r.f = calloc(m->hdr->capacity ? m->hdr->capacity : 1, sizeof *r.f);
        if (!r.f)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (uint64_t i = 0; i < m->hdr->capacity; i++) {
                const struct check_finding *f = &m->findings[i];
                if (!__atomic_load_n(&f->key, __ATOMIC_ACQUIRE) || !__atomic_load_n(&f->ready, __ATOMIC_ACQUIRE))
                        continue;
                r.f[r.n] = *f;
                r.f[r.n].count = __atomic_load_n(&f->count, __ATOMIC_RELAXED);
                r.n++;
        }
        qsort(r.f, r.n, sizeof *r.f, cmp_finding);
        for (uint32_t i = 0; i < CHECK_MAX_NODES; i++) {
                r.node_findings[i] = __atomic_load_n(&m->hdr->node_findings[i], __ATOMIC_RELAXED);
                r.node_events[i] = __atomic_load_n(&m->hdr->node_events[i], __ATOMIC_RELAXED);
        }
        *ret = r;
        return 0;
}

void check_report_done(struct check_report *r) {
        free(r->f);
        *r = (struct check_report) {0};
}

const char *check_kind_words(uint32_t kind) {
        return check_model_kind_words(kind);
}

const char *check_kind_name(uint32_t kind) {
        return check_model_kind_name(kind);
}

/*
 * Where BAR2 lands.
 *
 * aarch64 (virt, QEMU 7.2, direct kernel boot: no firmware): Linux assigns the BARs; a 64-bit
 * prefetchable BAR goes to the board's high PCIe window, 512 GiB at 0x8000000000 for the RAM
 * sizes nodes have (hw/arm/virt.c, VIRT_HIGH_PCIE_MMIO after the 256 GiB of RAM space), and the
 * largest BAR, BAR2, first.  The address does not depend on the FAM's size.
 *
 * x86_64 (QEMU 7.2's "pc" = i440fx, SeaBIOS 1.16.0-1.16.2: QEMU 7.2's own and Debian 12's
 * 1.16.2; src/fw/pciinit.c, i440fx_mem_addr_setup() and pci_bios_map_devices()):
 *  - RAM split (hw/i386/pc_piix.c, pc_init1()): all RAM below 4 GiB when it is less than
 *    3.5 GiB; else 3 GiB below and the rest from 4 GiB up.
 *  - The 32-bit PCI window is [0x80000000 when the RAM below 4 GiB is at most 2 GiB,
 *    0xc0000000 when at most 3 GiB, else 0xe0000000; 0xfec00000).  SeaBIOS puts the
 *    non-prefetchable BARs at its top, the prefetchable ones below them, aligned to the largest
 *    (BAR2, which is listed first): with the other devices' BARs under 1 MiB each kind (a few
 *    virtio devices), BAR2 = align_down(0xfe800000, F) - F for a FAM of F bytes: 0x80000000
 *    for 1 GiB, 0xc0000000 for 512 MiB.
 *  - When that is below the window, every 64-bit BAR moves above RAM: the window starts at
 *    4 GiB + the RAM above 4 GiB ("etc/reserved-memory-end" would raise it: QEMU gives it only
 *    with hotpluggable memory, which nodes have not), aligned to 1 GiB, then to the largest
 *    BAR: BAR2 = align_up(4 GiB + RAM above 4 GiB, max(F, 1 GiB)).  Measured: 0x400000000 for
 *    16 GiB with 256M of RAM.
 * SeaBIOS 1.16.3 (QEMU 8.2 and later) puts the 64-bit window at the top of the CPU's physical
 * address space instead; `fame node join` warns when BAR2 is not where this rule says.
 */
uint64_t check_bar2_base(bool is_aarch64, uint64_t fam_size, uint64_t memory) {
        const uint64_t G = UINT64_C(1) << 30;
        uint64_t low, high, window, bar;

        if (is_aarch64)
                return UINT64_C(0x8000000000);
        if (fam_size == 0 || (fam_size & (fam_size - 1)))
                return 0;
        low = memory < 3 * G + G / 2 ? memory : 3 * G;
        high = memory - low;
        window = low <= 2 * G ? 2 * G : low <= 3 * G ? 3 * G : UINT64_C(0xe0000000);
        if (fam_size <= 2 * G) {
                bar = (UINT64_C(0xfe800000) & ~(fam_size - 1)) - fam_size;
                if (bar >= window)
                        return bar;
        }
        uint64_t align = fam_size > G ? fam_size : G;
        return (4 * G + high + align - 1) & ~(align - 1);
}
