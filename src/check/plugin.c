/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-check.so: the coherence checker inside a node's QEMU (TCG plugin API version 1, as
 * QEMU 7.2 has it).  Every guest memory access that lands in the FAM (ivshmem BAR2, found by
 * its guest-physical address) goes through the memory model (check-model.c); cache-line
 * flushes are seen through the instruction that follows them (docs/check.md: "What the checker
 * sees").  Arguments (-plugin file=fame-check.so,ARG=VALUE,...):
 *   node=N  arch=x86_64|aarch64  bar=GUEST_PHYSICAL_BASE  fam=FAM_FILE  size=FAM_BYTES  state=STATE_DIR
 *
 * Debian ships no qemu-plugin.h: the few declarations used are written below from QEMU's
 * documented plugin API.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "check-model.h"
#include "decode.h"

/* ---- QEMU's plugin API (version 1), the parts used ---------------------------------------- */
typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_hwaddr;
typedef struct {
        const char *target_name;
        struct {
                int min, cur;
        } version;
        bool system_emulation;
        union {
                struct {
                        int smp_vcpus, max_vcpus;
                } system;
        };
} qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                                          void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
unsigned int qemu_plugin_mem_size_shift(qemu_plugin_meminfo_t info);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
struct qemu_plugin_hwaddr *qemu_plugin_get_hwaddr(qemu_plugin_meminfo_t info, uint64_t vaddr);
uint64_t qemu_plugin_hwaddr_phys_addr(const struct qemu_plugin_hwaddr *haddr);

/* QEMU 7.2's struct qemu_plugin_hwaddr (its include/qemu/plugin-memory.h), which the API keeps
 * opaque.  Reading the host address of an access from it is 2-3x cheaper than asking for its
 * physical address (a walk of QEMU's RAM blocks), and names the FAM exactly however QEMU ordered
 * its RAM blocks.  The layout is checked at run time against the API (is_store) before it is
 * trusted; otherwise the plugin uses qemu_plugin_hwaddr_phys_addr(). */
struct hwaddr_v72 {
        bool is_io;
        bool is_store;
        union {
                struct {
                        void *section;
                        uint64_t offset;
                } io;
                struct {
                        void *hostaddr;
                } ram;
        } v;
};

#define EXPORT __attribute__((visibility("default")))
EXPORT int qemu_plugin_version = 1;
EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);

/* ---- state -------------------------------------------------------------------------------- */

static struct check_map map;
static uint32_t node;
static uint64_t bar, fam_size;
static bool aarch64;
static bool seen_fam;           /* a vCPU accessed the FAM: boot code (its own cache maintenance,
                                 * with the MMU off on aarch64) is over */

/* A flush seen on a vCPU, waiting for the load that follows it (the flush idiom). */
struct vcpu {
        uint64_t flush_pc, next_pc;
        unsigned kind;                  /* DECODE_WRITEBACK, DECODE_WB_INVALIDATE; 0: none */
        uint64_t events;                /* FAM accesses not yet added to the header */
} __attribute__((aligned(64)));
static struct vcpu *vcpus;
static unsigned n_vcpus;

/* How FAM accesses are recognised: by QEMU's host address of the access (its mapping of the
 * FAM file, found in /proc/self/maps), once the layout above proved right; by the physical
 * address (BAR2, bar=) until then, or for good when it did not. */
enum { BY_UNDECIDED, BY_HOST, BY_PHYS };
static int by = BY_UNDECIDED;
static unsigned layout_ok;
static uintptr_t fam_host;              /* QEMU's mapping of the FAM file, 0: not found (yet) */
static dev_t fam_dev;
static ino_t fam_ino;

/* Per-instruction data rides in the callback's userdata: (pc << 8) | flags; the pc comes back
 * by an arithmetic shift (guest addresses are sign-extended from bit 55 or below). */
static inline void *pack(uint64_t pc, unsigned flags) {
        return (void *) (uintptr_t) ((pc << 8) | (flags & 0xff));
}
static inline uint64_t unpack_pc(void *ud) {
        return (uint64_t) ((int64_t) (uintptr_t) ud >> 8);
}
static inline unsigned unpack_flags(void *ud) {
        return (unsigned) ((uintptr_t) ud & 0xff);
}

static inline bool user_pc(uint64_t pc) {
        return (int64_t) pc >= 0;       /* the kernel lives in the upper half */
}

static void flush_events(struct vcpu *v) {
        if (v->events) {
                __atomic_add_fetch(&map.hdr->node_events[node - 1], v->events, __ATOMIC_RELAXED);
                v->events = 0;
        }
}

/* QEMU's shared mapping of the whole FAM file (the memory backend), from /proc/self/maps. */
static uintptr_t find_fam_mapping(void) {
        FILE *f = fopen("/proc/self/maps", "re");
        char line[4096];
        uintptr_t found = 0;

        if (!f)
                return 0;
        while (!found && fgets(line, sizeof line, f)) {
                unsigned long start, end, off, maj, min, ino;
                if (sscanf(line, "%lx-%lx %*s %lx %lx:%lx %lu", &start, &end, &off, &maj, &min, &ino) == 6 && off == 0 &&
                    ino == (unsigned long) fam_ino && makedev(maj, min) == fam_dev && end - start >= fam_size &&
                    start != (uintptr_t) map.fam && start != (uintptr_t) map.persisted)   /* not ours */
                        found = start;
        }
        fclose(f);
        return found;
}

/* Decides, over the first accesses, whether the host address can be used. */
static void decide(qemu_plugin_meminfo_t info, const struct hwaddr_v72 *h) {
        if (h->is_store != qemu_plugin_mem_is_store(info) || (h->is_io != 0 && h->is_io != 1)) {
                __atomic_store_n(&by, BY_PHYS, __ATOMIC_RELAXED);
                fprintf(stderr, "fame-check: this QEMU's hwaddr layout is not 7.2's: using physical addresses\n");
                return;
        }
        if (__atomic_add_fetch(&layout_ok, 1, __ATOMIC_RELAXED) < 256)
                return;
        uintptr_t base = find_fam_mapping();
        if (base) {
                __atomic_store_n(&fam_host, base, __ATOMIC_RELAXED);
                __atomic_store_n(&by, BY_HOST, __ATOMIC_RELEASE);
        } else if (layout_ok > 65536) {
                __atomic_store_n(&by, BY_PHYS, __ATOMIC_RELAXED);
                fprintf(stderr, "fame-check: QEMU's mapping of the FAM is not in /proc/self/maps: using physical addresses\n");
        }
}

static void on_mem(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *ud) {
        struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
        const struct hwaddr_v72 *h = (const struct hwaddr_v72 *) hw;
        struct vcpu *v = &vcpus[vcpu_index < n_vcpus ? vcpu_index : 0];
        uint64_t pc = unpack_pc(ud), off;
        unsigned flags = unpack_flags(ud), size;
        bool store;

        if (!hw)
                return;
        switch (__atomic_load_n(&by, __ATOMIC_ACQUIRE)) {
        case BY_HOST:
                off = h->is_io ? UINT64_MAX : (uint64_t) ((uintptr_t) h->v.ram.hostaddr - fam_host);
                break;
        case BY_UNDECIDED:
                decide(info, h);
                __attribute__((fallthrough));
        default:
                off = qemu_plugin_hwaddr_phys_addr(hw) - bar;
                break;
        }
        if (__builtin_expect(v->kind != 0, 0) && v->next_pc == pc) {
                /* the load right after a flush names the flushed line */
                if (off < fam_size)
                        check_writeback(&map, node, off, v->flush_pc, v->kind == DECODE_WB_INVALIDATE);
                v->kind = 0;
        }
        if (off >= fam_size)
                return;
        if (__builtin_expect(!seen_fam, 0))
                seen_fam = true;
        size = 1u << qemu_plugin_mem_size_shift(info);
        store = qemu_plugin_mem_is_store(info);
        if (flags & DECODE_ATOMIC)
                check_atomic(&map, node, off, size, pc, store);
        else if (!store)
                check_load(&map, node, off, size, pc);
        else if (flags & DECODE_NT_STORE)
                check_nt_store(&map, node, off, size, pc);
        else
                check_store(&map, node, off, size, pc);
        if (++v->events >= 4096)
                flush_events(v);
}

static void on_flush(unsigned int vcpu_index, void *ud) {
        struct vcpu *v = &vcpus[vcpu_index < n_vcpus ? vcpu_index : 0];
        unsigned kind = unpack_flags(ud);
        uint64_t next = unpack_pc(ud);

        /* the previous flush had no load after it: its address stays unknown */
        if (v->kind && seen_fam && user_pc(v->flush_pc))
                check_unseen_flush(&map, node, v->flush_pc);
        v->kind = kind;
        v->next_pc = next;
        v->flush_pc = next - (aarch64 ? 4 : 0);
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
        size_t n = qemu_plugin_tb_n_insns(tb);
        (void) id;

        for (size_t i = 0; i < n; i++) {
                struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
                const uint8_t *data = qemu_plugin_insn_data(insn);
                size_t len = qemu_plugin_insn_size(insn);
                uint64_t pc = qemu_plugin_insn_vaddr(insn);
                unsigned cls = aarch64 ? decode_aarch64(data, len) : decode_x86_64(data, len);

                if (cls & (DECODE_WRITEBACK | DECODE_WB_INVALIDATE)) {
                        unsigned kind = cls & DECODE_WB_INVALIDATE ? DECODE_WB_INVALIDATE : DECODE_WRITEBACK;
                        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_flush, QEMU_PLUGIN_CB_NO_REGS, pack(pc + len, kind));
                } else
                        qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW,
                                                         pack(pc, cls & (DECODE_ATOMIC | DECODE_NT_STORE)));
        }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *userdata) {
        (void) id;
        (void) userdata;
        for (unsigned i = 0; i < n_vcpus; i++)
                flush_events(&vcpus[i]);
        check_map_close(&map);
}

static const char *arg(int argc, char **argv, const char *name) {
        size_t k = strlen(name);
        for (int i = 0; i < argc; i++)
                if (strncmp(argv[i], name, k) == 0 && argv[i][k] == '=')
                        return argv[i] + k + 1;
        return NULL;
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
        const char *s_node = arg(argc, argv, "node"), *s_arch = arg(argc, argv, "arch"), *s_bar = arg(argc, argv, "bar"),
                   *s_fam = arg(argc, argv, "fam"), *s_size = arg(argc, argv, "size"), *s_state = arg(argc, argv, "state");
        const char *what = NULL;
        char *end;
        int r;

        if (!info->system_emulation) {
                fprintf(stderr, "fame-check: the checker runs in a node's system emulation, not in user-mode QEMU\n");
                return -1;
        }
        if (!s_node || !s_arch || !s_bar || !s_fam || !s_size || !s_state) {
                fprintf(stderr, "fame-check: missing argument: give node=, arch=, bar=, fam=, size= and state= "
                        "(fame up --check passes them)\n");
                return -1;
        }
        errno = 0;
        node = (uint32_t) strtoul(s_node, &end, 10);
        if (errno || *end || node < 1 || node > CHECK_MAX_NODES) {
                fprintf(stderr, "fame-check: node=%s is not a node number 1..%u\n", s_node, CHECK_MAX_NODES);
                return -1;
        }
        bar = strtoull(s_bar, &end, 0);
        if (*end) {
                fprintf(stderr, "fame-check: bar=%s is not an address\n", s_bar);
                return -1;
        }
        fam_size = strtoull(s_size, &end, 0);
        if (*end || fam_size == 0) {
                fprintf(stderr, "fame-check: size=%s is not a FAM size in bytes\n", s_size);
                return -1;
        }
        if (strcmp(s_arch, "aarch64") == 0)
                aarch64 = true;
        else if (strcmp(s_arch, "x86_64") != 0) {
                fprintf(stderr, "fame-check: arch=%s: the checker knows x86_64 and aarch64\n", s_arch);
                return -1;
        }
        {
                struct stat st;
                if (stat(s_fam, &st) < 0) {
                        fprintf(stderr, "fame-check: fam=%s: %s\n", s_fam, strerror(errno));
                        return -1;
                }
                fam_dev = st.st_dev;
                fam_ino = st.st_ino;
        }
        r = check_map_open(&map, s_state, s_fam, true, &what);
        if (r < 0) {
                fprintf(stderr, "fame-check: cannot open the checker's %s (state %s): %s; fame up --check makes it\n",
                        what ? what : "state", s_state, strerror(-r));
                return -1;
        }
        if (map.fam_size != fam_size) {
                fprintf(stderr, "fame-check: the checker state is for a %" PRIu64 "-byte FAM, this node has %" PRIu64
                        " bytes: restart the cluster with fame up --check\n", map.fam_size, fam_size);
                check_map_close(&map);
                return -1;
        }
        n_vcpus = info->system.max_vcpus > 0 ? (unsigned) info->system.max_vcpus : 1;
        vcpus = aligned_alloc(64, n_vcpus * sizeof *vcpus);
        if (!vcpus) {
                check_map_close(&map);
                return -1;
        }
        memset(vcpus, 0, n_vcpus * sizeof *vcpus);
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
        qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
        return 0;
}
