/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checker's memory model: see check-model.h and docs/check.md. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check-model.h"

#define RELAXED __ATOMIC_RELAXED
#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static inline uint64_t bit(uint32_t node) {
        return UINT64_C(1) << (node - 1);
}

/* The lowest node of a mask (1..), 0 when empty. */
static inline uint32_t first_node(uint64_t mask) {
        return mask ? (uint32_t) __builtin_ctzll(mask) + 1 : 0;
}

/* The 8-byte words of a line that [offset, offset+size) touches (within one line). */
static inline uint8_t words_of(uint64_t offset, uint32_t size) {
        unsigned first = (unsigned) (offset % CHECK_LINE) / 8, last = (unsigned) ((offset % CHECK_LINE) + size - 1) / 8;
        return (uint8_t) (((1u << (last + 1)) - 1) & ~((1u << first) - 1));
}

static void copy_to_persisted(struct check_map *m, uint64_t offset, uint64_t len) {
        /* byte copies: other nodes may store to the same FAM bytes meanwhile */
        volatile const uint8_t *src = m->fam + offset;
        volatile uint8_t *dst = m->persisted + offset;
        for (uint64_t i = 0; i < len; i++)
                dst[i] = src[i];
}

/* ---- findings ---------------------------------------------------------------------------- */

static const char *const kind_words[CHECK_KIND_MAX] = {
        [CHECK_UNFLUSHED_READ] = "read of unflushed data",
        [CHECK_STALE_READ] = "stale read (missing invalidate)",
        [CHECK_CONFLICTING_WRITES] = "conflicting unflushed writes",
        [CHECK_PLAIN_ATOMIC] = "plain access to an atomic word",
        [CHECK_UNSEEN_FLUSH] = "flush the checker cannot see",
};
static const char *const kind_names[CHECK_KIND_MAX] = {
        [CHECK_UNFLUSHED_READ] = "unflushed-read",
        [CHECK_STALE_READ] = "stale-read",
        [CHECK_CONFLICTING_WRITES] = "conflicting-writes",
        [CHECK_PLAIN_ATOMIC] = "plain-atomic",
        [CHECK_UNSEEN_FLUSH] = "unseen-flush",
};

const char *check_model_kind_words(uint32_t kind) {
        return kind > 0 && kind < CHECK_KIND_MAX ? kind_words[kind] : "unknown finding";
}

const char *check_model_kind_name(uint32_t kind) {
        return kind > 0 && kind < CHECK_KIND_MAX ? kind_names[kind] : "unknown";
}

static uint64_t mix(uint64_t h, uint64_t v) {
        h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
        h *= UINT64_C(0xff51afd7ed558ccd);
        return h ^ (h >> 33);
}

static void log_finding(struct check_map *m, const struct check_finding *f) {
        char line[512], when[32];
        struct timespec ts;
        struct tm tm;
        int n;

        if (m->log_fd < 0)
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        switch (f->kind) {
        case CHECK_UNSEEN_FLUSH:
                n = snprintf(line, sizeof line, "%s node%02u %s: a flush instruction at pc 0x%" PRIx64
                             " whose address is not visible (use fame_persist/fame_invalidate)\n",
                             when, f->node_a, kind_words[f->kind], f->pc_a);
                break;
        default:
                n = snprintf(line, sizeof line, "%s FAM 0x%" PRIx64 " %s: node%02u at pc 0x%" PRIx64
                             ", node%02u %s at pc 0x%" PRIx64 "\n",
                             when, f->fam_offset & ~(uint64_t) (CHECK_LINE - 1), check_model_kind_words(f->kind),
                             f->node_a, f->pc_a, f->node_b, f->b_store ? "stored" : "loaded", f->pc_b);
                break;
        }
        if (n > 0)      /* one write(2) of one line: lines from many QEMUs do not interleave */
                (void) !write(m->log_fd, line, (size_t) n < sizeof line ? (size_t) n : sizeof line - 1);
}

void check_report(struct check_map *m, uint32_t kind, uint32_t node_a, uint64_t pc_a, uint32_t node_b, uint64_t pc_b,
                  bool b_store, uint64_t offset) {
        uint64_t cap = m->hdr->capacity, key;

        key = mix(mix(mix(mix(mix(mix(0, kind), node_a), pc_a), node_b), pc_b), b_store) | 1;
        for (uint64_t i = 0; i < 64 && cap; i++) {
                struct check_finding *f = &m->findings[(key + i) % cap];
                uint64_t k = LOAD(&f->key);

                if (k == 0) {
                        uint64_t zero = 0;
                        if (__atomic_compare_exchange_n(&f->key, &zero, key, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                                struct timespec ts;
                                clock_gettime(CLOCK_REALTIME, &ts);
                                f->kind = kind;
                                f->node_a = (uint16_t) node_a;
                                f->node_b = (uint16_t) node_b;
                                f->b_store = b_store;
                                f->pc_a = pc_a;
                                f->pc_b = pc_b;
                                f->fam_offset = offset;
                                f->first_ns = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
                                __atomic_add_fetch(&f->count, 1, RELAXED);
                                STORE(&f->ready, 1);
                                if (node_a >= 1 && node_a <= CHECK_MAX_NODES)
                                        __atomic_add_fetch(&m->hdr->node_findings[node_a - 1], 1, RELAXED);
                                if (node_b >= 1 && node_b <= CHECK_MAX_NODES && node_b != node_a)
                                        __atomic_add_fetch(&m->hdr->node_findings[node_b - 1], 1, RELAXED);
                                log_finding(m, f);
                                return;
                        }
                        k = zero;
                }
                if (k == key) {
                        __atomic_add_fetch(&f->count, 1, RELAXED);
                        return;
                }
        }
        __atomic_add_fetch(&m->hdr->overflow, 1, RELAXED);
}

/* ---- the model, per line ----------------------------------------------------------------- */

static inline struct check_line *line_of(struct check_map *m, uint64_t offset) {
        return &m->lines[offset / CHECK_LINE];
}

/* The node whose unwritten store a finding names: the last storer if it is among `mask`. */
static void writer_of(const struct check_line *l, uint64_t mask, uint32_t *node, uint64_t *pc) {
        uint32_t s = __atomic_load_n(&l->store_node, RELAXED);
        if (s && (mask & bit(s))) {
                *node = s;
                *pc = __atomic_load_n(&l->store_pc, RELAXED);
        } else {
                *node = first_node(mask);
                *pc = 0;
        }
}

/* The node takes a copy of the line from memory if it has none: fresh. */
static inline void take_copy(struct check_line *l, uint64_t me) {
        if (!(LOAD(&l->cached) & me)) {
                __atomic_fetch_and(&l->stale, ~me, __ATOMIC_ACQ_REL);
                __atomic_fetch_or(&l->cached, me, __ATOMIC_ACQ_REL);
        }
}

static void load_line(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc) {
        struct check_line *l = line_of(m, offset);
        uint64_t me = bit(node), dirty = LOAD(&l->dirty), cached = LOAD(&l->cached);

        if (dirty & ~me) {
                uint32_t a;
                uint64_t apc;
                writer_of(l, dirty & ~me, &a, &apc);
                check_report(m, CHECK_UNFLUSHED_READ, a, apc, node, pc, false, offset);
        } else if ((cached & me) && (LOAD(&l->stale) & me)) {
                if (words_of(offset, size) & LOAD(&l->atomic_words))
                        check_report(m, CHECK_PLAIN_ATOMIC, __atomic_load_n(&l->atomic_node, RELAXED),
                                     __atomic_load_n(&l->atomic_pc, RELAXED), node, pc, false, offset);
                else
                        check_report(m, CHECK_STALE_READ, __atomic_load_n(&l->wb_node, RELAXED),
                                     __atomic_load_n(&l->wb_pc, RELAXED), node, pc, false, offset);
        }
        take_copy(l, me);
}

static void store_line(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc) {
        struct check_line *l = line_of(m, offset);
        uint64_t me = bit(node), dirty = LOAD(&l->dirty);

        if (dirty & ~me) {
                uint32_t a;
                uint64_t apc;
                writer_of(l, dirty & ~me, &a, &apc);
                check_report(m, CHECK_CONFLICTING_WRITES, a, apc, node, pc, true, offset);
        }
        if (words_of(offset, size) & LOAD(&l->atomic_words))
                check_report(m, CHECK_PLAIN_ATOMIC, __atomic_load_n(&l->atomic_node, RELAXED),
                             __atomic_load_n(&l->atomic_pc, RELAXED), node, pc, true, offset);
        take_copy(l, me);       /* write-allocate */
        if (!(dirty & me)) {
                /* the site a finding names: the store that made the line dirty, kept while
                 * any node holds it dirty */
                if (!(__atomic_fetch_or(&l->dirty, me, __ATOMIC_ACQ_REL) & ~me)) {
                        __atomic_store_n(&l->store_pc, pc, RELAXED);
                        __atomic_store_n(&l->store_node, (uint16_t) node, RELAXED);
                }
        }
}

/* Memory changed under every copy but `keep`'s. */
static inline void memory_changed(struct check_line *l, uint64_t keep, uint32_t node, uint64_t pc, bool atomic) {
        uint64_t others = LOAD(&l->cached) & ~keep;
        if (others)
                __atomic_fetch_or(&l->stale, others, __ATOMIC_ACQ_REL);
        __atomic_store_n(&l->wb_pc, pc, RELAXED);
        __atomic_store_n(&l->wb_node, (uint16_t) node, RELAXED);
        __atomic_store_n(&l->wb_atomic, atomic, RELAXED);
}

void check_writeback(struct check_map *m, uint32_t node, uint64_t offset, uint64_t pc, bool invalidate) {
        struct check_line *l;
        uint64_t me;

        if (offset >= m->fam_size || node < 1 || node > CHECK_MAX_NODES)
                return;
        l = line_of(m, offset);
        me = bit(node);
        if (LOAD(&l->dirty) & me) {
                uint64_t start = offset & ~(uint64_t) (CHECK_LINE - 1);
                copy_to_persisted(m, start, CHECK_LINE);
                memory_changed(l, me, node, pc, false);
                __atomic_fetch_and(&l->dirty, ~me, __ATOMIC_ACQ_REL);
        }
        if (invalidate && (LOAD(&l->cached) & me)) {
                __atomic_fetch_and(&l->cached, ~me, __ATOMIC_ACQ_REL);
                __atomic_fetch_and(&l->stale, ~me, __ATOMIC_ACQ_REL);
        }
}

static void atomic_line(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc, bool write) {
        struct check_line *l = line_of(m, offset);
        uint8_t words = words_of(offset, size);
        uint64_t dirty;

        if ((LOAD(&l->atomic_words) & words) != words)
                __atomic_fetch_or(&l->atomic_words, words, __ATOMIC_ACQ_REL);
        if (__atomic_load_n(&l->atomic_pc, RELAXED) != pc)
                __atomic_store_n(&l->atomic_pc, pc, RELAXED);
        if (__atomic_load_n(&l->atomic_node, RELAXED) != node)
                __atomic_store_n(&l->atomic_node, (uint16_t) node, RELAXED);
        if (!write)
                return;
        /* a node holding plain stores to this line will write the whole line back over the
         * atomic's result */
        dirty = LOAD(&l->dirty);
        if (dirty) {
                uint32_t b;
                uint64_t bpc;
                writer_of(l, dirty, &b, &bpc);
                check_report(m, CHECK_PLAIN_ATOMIC, node, pc, b, bpc, true, offset);
        }
        if (memcmp((const void *) (m->fam + offset), (const void *) (m->persisted + offset), size) != 0) {
                copy_to_persisted(m, offset, size);
                memory_changed(l, 0, node, pc, true);
        }
}

static void nt_store_line(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc) {
        struct check_line *l = line_of(m, offset);
        uint64_t me = bit(node), dirty = LOAD(&l->dirty);

        if (dirty & me) {               /* merges into the node's dirty copy */
                store_line(m, node, offset, size, pc);
                return;
        }
        if (dirty) {
                uint32_t a;
                uint64_t apc;
                writer_of(l, dirty, &a, &apc);
                check_report(m, CHECK_CONFLICTING_WRITES, a, apc, node, pc, true, offset);
        }
        if (words_of(offset, size) & LOAD(&l->atomic_words))
                check_report(m, CHECK_PLAIN_ATOMIC, __atomic_load_n(&l->atomic_node, RELAXED),
                             __atomic_load_n(&l->atomic_pc, RELAXED), node, pc, true, offset);
        copy_to_persisted(m, offset, size);
        memory_changed(l, 0, node, pc, false);
        if (LOAD(&l->cached) & me) {
                __atomic_fetch_and(&l->cached, ~me, __ATOMIC_ACQ_REL);
                __atomic_fetch_and(&l->stale, ~me, __ATOMIC_ACQ_REL);
        }
}

/* Splits [offset, offset+size) at line boundaries. */
#define FOR_EACH_LINE(m, node, offset, size, fn, ...)                                           \
        do {                                                                                    \
                if ((node) < 1 || (node) > CHECK_MAX_NODES || (offset) >= (m)->fam_size)        \
                        return;                                                                 \
                uint64_t _o = (offset), _end = (offset) + (size);                               \
                if (_end > (m)->fam_size)                                                       \
                        _end = (m)->fam_size;                                                   \
                while (_o < _end) {                                                             \
                        uint64_t _next = (_o | (CHECK_LINE - 1)) + 1;                           \
                        uint32_t _n = (uint32_t) ((_next < _end ? _next : _end) - _o);          \
                        fn(m, node, _o, _n, __VA_ARGS__);                                       \
                        _o += _n;                                                               \
                }                                                                               \
        } while (0)

void check_load(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc) {
        FOR_EACH_LINE(m, node, offset, size, load_line, pc);
}

void check_store(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc) {
        FOR_EACH_LINE(m, node, offset, size, store_line, pc);
}

void check_atomic(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc, bool write) {
        FOR_EACH_LINE(m, node, offset, size, atomic_line, pc, write);
}

void check_nt_store(struct check_map *m, uint32_t node, uint64_t offset, uint32_t size, uint64_t pc) {
        FOR_EACH_LINE(m, node, offset, size, nt_store_line, pc);
}

void check_unseen_flush(struct check_map *m, uint32_t node, uint64_t pc) {
        check_report(m, CHECK_UNSEEN_FLUSH, node, pc, 0, 0, false, 0);
}

/* ---- mapping the files ------------------------------------------------------------------- */

static void *map_file(const char *dir, const char *name, int *ret_fd, size_t *ret_len) {
        char path[PATH_MAX];
        struct stat st;
        void *p;
        int fd;

        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int) sizeof path) {
                errno = ENAMETOOLONG;
                return NULL;
        }
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        if (fstat(fd, &st) < 0 || st.st_size == 0) {
                int e = st.st_size == 0 ? EINVAL : errno;
                close(fd);
                errno = e;
                return NULL;
        }
        p = mmap(NULL, (size_t) st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                int e = errno;
                close(fd);
                errno = e;
                return NULL;
        }
        *ret_len = (size_t) st.st_size;
        if (ret_fd)
                *ret_fd = fd;
        else
                close(fd);
        return p;
}

int check_map_open(struct check_map *m, const char *state_dir, const char *fam_path, bool with_log, const char **ret_what) {
        char dir[PATH_MAX];
        size_t len, lines_len, fam_len;
        const char *what = CHECK_FINDINGS_FILE;
        void *p;

        *m = (struct check_map) { .lines_fd = -1, .log_fd = -1 };
        if (snprintf(dir, sizeof dir, "%s/%s", state_dir, CHECK_DIR) >= (int) sizeof dir)
                return -ENAMETOOLONG;
        p = map_file(dir, CHECK_FINDINGS_FILE, NULL, &len);
        if (!p)
                goto fail;
        m->hdr = p;
        m->findings_len = len;
        if (len < sizeof *m->hdr || memcmp(m->hdr->magic, CHECK_MAGIC, 8) != 0 || m->hdr->version != 1 ||
            m->hdr->capacity > (len - sizeof *m->hdr) / sizeof(struct check_finding)) {
                errno = EINVAL;
                goto fail;
        }
        m->findings = (struct check_finding *) (m->hdr + 1);
        m->fam_size = m->hdr->fam_size;
        m->n_lines = (m->fam_size + CHECK_LINE - 1) / CHECK_LINE;

        what = CHECK_LINES_FILE;
        p = map_file(dir, CHECK_LINES_FILE, &m->lines_fd, &lines_len);
        if (!p)
                goto fail;
        m->lines = p;
        m->lines_len = lines_len;
        if (lines_len < m->n_lines * sizeof(struct check_line)) {
                munmap(p, lines_len);
                m->lines = NULL;
                m->lines_len = 0;
                errno = EINVAL;
                goto fail;
        }

        what = CHECK_PERSISTED_FILE;
        p = map_file(dir, CHECK_PERSISTED_FILE, NULL, &len);
        if (!p)
                goto fail;
        m->persisted = p;
        m->persisted_len = len;
        if (len < m->fam_size) {
                munmap(p, len);
                m->persisted = NULL;
                errno = EINVAL;
                goto fail;
        }

        what = fam_path;
        {
                char fdir[PATH_MAX];
                const char *slash = strrchr(fam_path, '/');
                if (slash && slash - fam_path >= (long) sizeof fdir) {
                        errno = ENAMETOOLONG;
                        goto fail;
                }
                if (slash) {
                        memcpy(fdir, fam_path, (size_t) (slash - fam_path));
                        fdir[slash - fam_path] = 0;
                } else
                        strcpy(fdir, ".");
                p = map_file(slash == fam_path ? "" : fdir, slash ? slash + 1 : fam_path, NULL, &fam_len);
        }
        if (!p)
                goto fail;
        m->fam = p;
        m->fam_len = fam_len;
        if (fam_len < m->fam_size) {
                munmap(p, fam_len);
                m->fam = NULL;
                errno = EINVAL;
                goto fail;
        }

        if (with_log) {
                char path[PATH_MAX];
                what = CHECK_LOG_FILE;
                if (snprintf(path, sizeof path, "%s/%s", state_dir, CHECK_LOG_FILE) >= (int) sizeof path) {
                        errno = ENAMETOOLONG;
                        goto fail;
                }
                m->log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
                if (m->log_fd < 0)
                        goto fail;
        }
        if (ret_what)
                *ret_what = NULL;
        return 0;
fail:;
        int e = errno ? errno : EIO;
        check_map_close(m);
        if (ret_what)
                *ret_what = what;
        return -e;
}

void check_map_close(struct check_map *m) {
        if (m->hdr)
                munmap(m->hdr, m->findings_len);
        if (m->lines)
                munmap(m->lines, m->lines_len);
        if (m->persisted)
                munmap(m->persisted, m->persisted_len);
        if (m->fam)
                munmap(m->fam, m->fam_len);
        if (m->lines_fd >= 0)
                close(m->lines_fd);
        if (m->log_fd >= 0)
                close(m->log_fd);
        *m = (struct check_map) { .lines_fd = -1, .log_fd = -1 };
}
