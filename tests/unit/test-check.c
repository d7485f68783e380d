/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The coherence checker without QEMU: the memory model (check-model.c) driven access by access
 * on real shared files made by check_create(), the host side (host writes, a node's power
 * loss, the findings), and the instruction decoder on bytes from the assemblers.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-model.h"
#include "check.h"
#include "decode.h"
#include "testlib.h"

#define FAM_SIZE (1u << 20)

static char state[4096], fam_path[4096];
static struct check_map m;
static struct check *host;

/* The findings now, and how many of them match (kind, a, b, the line of offset); pcs are
 * checked where given (non-zero). */
static size_t count_findings(uint32_t kind, uint32_t a, uint64_t pc_a, uint32_t b, uint64_t pc_b, uint64_t offset,
                             uint64_t *ret_count) {
        struct check_report r;
        size_t n = 0;

        CHECK(check_read_findings(host, &r) == 0, "read findings");
        if (ret_count)
                *ret_count = 0;
        for (size_t i = 0; i < r.n; i++) {
                const struct check_finding *f = &r.f[i];
                if (f->kind != kind || f->node_a != a || f->node_b != b || f->fam_offset / 64 != offset / 64)
                        continue;
                if ((pc_a && f->pc_a != pc_a) || (pc_b && f->pc_b != pc_b))
                        continue;
                n++;
                if (ret_count)
                        *ret_count += f->count;
        }
        check_report_done(&r);
        return n;
}

static size_t total_findings(void) {
        struct check_report r;
        size_t n;
        CHECK(check_read_findings(host, &r) == 0, "read findings");
        n = r.n;
        check_report_done(&r);
        return n;
}

static void test_model(void) {
        uint64_t count;
        size_t before;

        /* read of unflushed data, counted once per pair of sites */
        check_store(&m, 1, 0x40, 8, 0x100);
        check_load(&m, 2, 0x40, 8, 0x200);
        check_load(&m, 2, 0x44, 4, 0x200);
        CHECK(count_findings(CHECK_UNFLUSHED_READ, 1, 0x100, 2, 0x200, 0x40, &count) == 1 && count == 2,
              "unflushed read: one finding seen twice (count %" PRIu64 ")", count);
        CHECK(total_findings() == 1, "nothing else: %zu findings", total_findings());
        check_writeback(&m, 1, 0x40, 0x101, false);

        /* written back first: nothing */
        check_store(&m, 1, 0x1000, 8, 0x110);
        check_writeback(&m, 1, 0x1000, 0x111, false);
        check_load(&m, 2, 0x1000, 8, 0x210);
        CHECK(total_findings() == 1, "writeback, then load: no finding (%zu)", total_findings());

        /* a stale copy: node 2 cached the line, node 1 wrote it back, node 2 loads again */
        check_load(&m, 2, 0x2000, 8, 0x220);
        check_store(&m, 1, 0x2000, 8, 0x120);
        check_writeback(&m, 1, 0x2000, 0x121, false);
        check_load(&m, 2, 0x2008, 8, 0x221);
        CHECK(count_findings(CHECK_STALE_READ, 1, 0x121, 2, 0x221, 0x2000, NULL) == 1, "stale read names the writeback");
        before = total_findings();
        check_writeback(&m, 2, 0x2000, 0x222, true);    /* node 2 invalidates: a fresh copy */
        check_load(&m, 2, 0x2008, 8, 0x223);
        CHECK(total_findings() == before, "invalidate, then load: no finding");

        /* two nodes hold unwritten stores to one line */
        check_store(&m, 1, 0x3000, 8, 0x130);
        check_store(&m, 2, 0x3020, 8, 0x230);
        CHECK(count_findings(CHECK_CONFLICTING_WRITES, 1, 0x130, 2, 0x230, 0x3000, NULL) == 1, "conflicting writes");
        check_writeback(&m, 1, 0x3000, 0x131, true);
        check_writeback(&m, 2, 0x3000, 0x231, true);

        /* fabric atomics: a plain store to the word; a plain load of a stale copy of it */
        check_atomic(&m, 1, 0x4000, 8, 0x140, false);
        m.fam[0x4000] = 1;
        check_atomic(&m, 1, 0x4000, 8, 0x140, true);
        check_store(&m, 2, 0x4000, 8, 0x240);
        CHECK(count_findings(CHECK_PLAIN_ATOMIC, 1, 0x140, 2, 0x240, 0x4000, NULL) == 1, "plain store to an atomic word");
        check_writeback(&m, 2, 0x4000, 0x241, true);
        check_load(&m, 3, 0x4000, 8, 0x340);            /* a fresh copy: fine */
        before = total_findings();
        check_atomic(&m, 1, 0x4000, 8, 0x141, true);    /* no change (fetch_add 0): copies stay good */
        check_load(&m, 3, 0x4000, 8, 0x341);
        CHECK(total_findings() == before, "an atomic that changed nothing makes no copy stale");
        m.fam[0x4000] = 2;
        check_atomic(&m, 1, 0x4000, 8, 0x142, true);
        check_load(&m, 3, 0x4000, 8, 0x342);
        CHECK(count_findings(CHECK_PLAIN_ATOMIC, 1, 0x142, 3, 0x342, 0x4000, NULL) == 1, "plain load of a stale atomic word");
        check_load(&m, 3, 0x4010, 8, 0x343);            /* another word of the line: a stale read */
        CHECK(count_findings(CHECK_STALE_READ, 1, 0x142, 3, 0x343, 0x4000, NULL) == 1, "stale read beside an atomic");
        /* a node holding plain stores in a line that an atomic then changes */
        check_store(&m, 2, 0x4020, 8, 0x244);
        m.fam[0x4000] = 3;
        check_atomic(&m, 1, 0x4000, 8, 0x143, true);
        CHECK(count_findings(CHECK_PLAIN_ATOMIC, 1, 0x143, 2, 0x244, 0x4000, NULL) == 1,
              "an unwritten line that will overwrite an atomic's result");
        check_writeback(&m, 2, 0x4020, 0x245, true);

        /* non-temporal stores go to memory */
        check_load(&m, 2, 0x8000, 8, 0x280);
        before = total_findings();
        check_nt_store(&m, 1, 0x8000, 8, 0x180);
        check_load(&m, 3, 0x8000, 8, 0x380);
        CHECK(total_findings() == before, "a non-temporal store is no unflushed data");
        check_load(&m, 2, 0x8000, 8, 0x281);
        CHECK(count_findings(CHECK_STALE_READ, 1, 0x180, 2, 0x281, 0x8000, NULL) == 1, "but it makes other copies stale");

        /* accesses that cross a line are two accesses */
        check_store(&m, 1, 0x903c, 8, 0x190);
        check_load(&m, 2, 0x9040, 4, 0x290);
        CHECK(count_findings(CHECK_UNFLUSHED_READ, 1, 0x190, 2, 0x290, 0x9040, NULL) == 1, "a store across two lines");
        check_writeback(&m, 1, 0x903c, 0x191, false);
        check_writeback(&m, 1, 0x9040, 0x191, false);

        check_unseen_flush(&m, 2, 0x2ff);
        CHECK(count_findings(CHECK_UNSEEN_FLUSH, 2, 0x2ff, 0, 0, 0, NULL) == 1, "a flush without its address");

        /* accesses outside the FAM, or by no node, are ignored */
        before = total_findings();
        check_store(&m, 1, FAM_SIZE, 8, 0x1);
        check_load(&m, 0, 0x40, 8, 0x1);
        check_load(&m, CHECK_MAX_NODES + 1, 0x40, 8, 0x1);
        CHECK(total_findings() == before, "outside accesses make no finding");
}

static void test_host(void) {
        static const char old_rec[] = "old record", new_rec[] = "new record!";
        uint64_t restored = 99;
        size_t before;
        struct check_report r;

        /* the host writes: memory holds it, nobody has a copy */
        memcpy(m.fam + 0x10000, old_rec, sizeof old_rec);
        CHECK(check_host_wrote(host, 0x10000, 64) == 0, "host wrote");
        CHECK(memcmp(m.persisted + 0x10000, old_rec, sizeof old_rec) == 0, "host writes are memory");

        /* node 1 stores a record and loses power: the line returns to the written-back one */
        memcpy(m.fam + 0x10000, new_rec, sizeof new_rec);
        check_store(&m, 1, 0x10000, sizeof new_rec, 0x1a0);
        check_load(&m, 1, 0x20000, 8, 0x1a1);            /* a clean copy elsewhere: nothing to undo */
        CHECK(check_node_stopped(host, 1, true, &restored) == 0, "crash");
        CHECK(restored == 1, "one line restored, not %" PRIu64, restored);
        CHECK(memcmp(m.fam + 0x10000, old_rec, sizeof old_rec) == 0, "the FAM holds the old record: '%s'", m.fam + 0x10000);
        before = total_findings();
        check_load(&m, 2, 0x10000, 8, 0x2a0);
        CHECK(total_findings() == before, "after the crash, node 1 holds nothing dirty");

        /* a clean stop writes back */
        memcpy(m.fam + 0x11000, new_rec, sizeof new_rec);
        check_store(&m, 2, 0x11000, sizeof new_rec, 0x2a1);
        CHECK(check_node_stopped(host, 2, false, &restored) == 0 && restored == 0, "stop");
        CHECK(memcmp(m.persisted + 0x11000, new_rec, sizeof new_rec) == 0, "a stopped node's stores are written back");

        /* the Librarian zeroes a book under a dirty line: the state is gone */
        check_store(&m, 3, 0x12000, 8, 0x3a0);
        memset(m.fam + 0x12000, 0, 4096);
        CHECK(check_host_wrote(host, 0x12000, 4096) == 0, "zeroing");
        before = total_findings();
        check_load(&m, 1, 0x12000, 8, 0x1a2);
        CHECK(total_findings() == before, "zeroed lines are nobody's");

        CHECK(check_read_findings(host, &r) == 0, "findings");
        CHECK(r.node_findings[0] > 0 && r.node_findings[1] > 0 && r.node_findings[2] > 0, "every node is counted");
        for (size_t i = 1; i < r.n; i++)
                CHECK(r.f[i - 1].kind <= r.f[i].kind, "sorted by kind");
        check_report_done(&r);

        /* the log: one line per finding */
        {
                char path[4200];
                size_t len = 0;
                snprintf(path, sizeof path, "%s/check.log", state);
                FILE *f = fopen(path, "r");
                char line[600];
                size_t lines = 0;
                CHECK(f != NULL, "check.log exists");
                while (f && fgets(line, sizeof line, f)) {
                        lines++;
                        len += strlen(line);
                }
                if (f)
                        fclose(f);
                CHECK(lines == total_findings() && len > 0, "check.log: %zu lines for %zu findings", lines, total_findings());
        }
}

static void test_create_errors(void) {
        char other[4200];
        struct check *c = NULL;

        CHECK(check_create(state, fam_path, FAM_SIZE, CHECK_MAX_NODES + 1) < 0, "too many nodes refused");
        snprintf(other, sizeof other, "%s/never", state);
        mkdir(other, 0700);
        CHECK(!check_exists(other), "no state");
        CHECK(check_open(other, fam_path, &c) == -ENOENT && !c, "open without state: ENOENT");
        CHECK(check_exists(state), "state exists");
}

static void test_decode(void) {
        static const struct {
                uint8_t b[8];
                size_t n;
                unsigned want;
                const char *what;
        } x86[] = {
                { { 0x66, 0x0f, 0xae, 0x31 }, 4, DECODE_WRITEBACK, "clwb (%rcx)" },
                { { 0x0f, 0xae, 0x39 }, 3, DECODE_WB_INVALIDATE, "clflush (%rcx)" },
                { { 0x66, 0x0f, 0xae, 0x39 }, 4, DECODE_WB_INVALIDATE, "clflushopt (%rcx)" },
                { { 0x66, 0x43, 0x0f, 0xae, 0x74, 0xd1, 0x40 }, 7, DECODE_WRITEBACK, "clwb 0x40(%r9,%r10,8)" },
                { { 0x0f, 0xae, 0xf8 }, 3, 0, "sfence" },
                { { 0x0f, 0xae, 0xf0 }, 3, 0, "mfence" },
                { { 0x0f, 0xae, 0x37 }, 3, 0, "xsaveopt (%rdi)" },
                { { 0xf0, 0x48, 0x0f, 0xc1, 0x07 }, 5, DECODE_ATOMIC, "lock xadd" },
                { { 0x48, 0x87, 0x07 }, 3, DECODE_ATOMIC, "xchg %rax,(%rdi)" },
                { { 0xf0, 0x48, 0x0f, 0xc7, 0x0f }, 5, DECODE_ATOMIC, "lock cmpxchg16b" },
                { { 0x64, 0xf0, 0xff, 0x00 }, 4, DECODE_ATOMIC, "lock incl %fs:(%rax)" },
                { { 0x48, 0x8b, 0x07 }, 3, 0, "mov (%rdi),%rax" },
                { { 0x8a, 0x01 }, 2, 0, "mov (%rcx),%al" },
                { { 0x48, 0x0f, 0xc3, 0x07 }, 4, DECODE_NT_STORE, "movnti" },
                { { 0x66, 0x0f, 0xe7, 0x07 }, 4, DECODE_NT_STORE, "movntdq" },
                { { 0xc5, 0xfd, 0xe7, 0x07 }, 4, DECODE_NT_STORE, "vmovntdq" },
                { { 0xc4, 0xc1, 0x78, 0x2b, 0x08 }, 5, DECODE_NT_STORE, "vmovntps %xmm1,(%r8)" },
                { { 0x0f }, 1, 0, "truncated" },
        };
        static const struct {
                uint32_t insn;
                unsigned want;
                const char *what;
        } a64[] = {
                { 0xd50b7a20, DECODE_WRITEBACK, "dc cvac, x0" },
                { 0xd50b7e21, DECODE_WB_INVALIDATE, "dc civac, x1" },
                { 0xd50b7c22, DECODE_WRITEBACK, "dc cvap, x2" },
                { 0xc85f7c20, DECODE_ATOMIC, "ldxr x0, [x1]" },
                { 0xc8027c20, DECODE_ATOMIC, "stxr w2, x0, [x1]" },
                { 0xc8dffc20, 0, "ldar x0, [x1]" },
                { 0xc89ffc20, 0, "stlr x0, [x1]" },
                { 0xf8210040, DECODE_ATOMIC, "ldadd x1, x0, [x2]" },
                { 0xb8e10040, DECODE_ATOMIC, "ldaddal w1, w0, [x2]" },
                { 0xc8e0fc41, DECODE_ATOMIC, "casal x0, x1, [x2]" },
                { 0x4860fc82, DECODE_ATOMIC, "caspal x0, x1, x2, x3, [x4]" },
                { 0xf8e08041, DECODE_ATOMIC, "swpal x0, x1, [x2]" },
                { 0xf8bfc020, 0, "ldapr x0, [x1]" },
                { 0xf9400020, 0, "ldr x0, [x1]" },
                { 0xf8226820, 0, "str x0, [x1, x2]" },
                { 0x39400020, 0, "ldrb w0, [x1]" },
                { 0xc87f8440, DECODE_ATOMIC, "ldaxp x0, x1, [x2]" },
                { 0xc8238440, DECODE_ATOMIC, "stlxp w3, x0, x1, [x2]" },
        };
        for (size_t i = 0; i < sizeof x86 / sizeof x86[0]; i++)
                CHECK(decode_x86_64(x86[i].b, x86[i].n) == x86[i].want, "x86_64 %s: %u, not %u", x86[i].what,
                      decode_x86_64(x86[i].b, x86[i].n), x86[i].want);
        for (size_t i = 0; i < sizeof a64 / sizeof a64[0]; i++) {
                uint8_t b[4] = { (uint8_t) a64[i].insn, (uint8_t) (a64[i].insn >> 8), (uint8_t) (a64[i].insn >> 16),
                                 (uint8_t) (a64[i].insn >> 24) };
                CHECK(decode_aarch64(b, 4) == a64[i].want, "aarch64 %s: %u, not %u", a64[i].what, decode_aarch64(b, 4),
                      a64[i].want);
        }
}

int main(void) {
        const char *what = NULL;
        int fd, r;

        snprintf(state, sizeof state, "%s", test_tmpdir());
        snprintf(fam_path, sizeof fam_path, "%s/fam", state);
        fd = open(fam_path, O_RDWR | O_CREAT, 0600);
        CHECK(fd >= 0 && ftruncate(fd, FAM_SIZE) == 0 && pwrite(fd, "before", 6, 0x20000) == 6, "FAM file");
        close(fd);
        CHECK(check_create(state, fam_path, FAM_SIZE, 3) == 0, "check_create");
        r = check_map_open(&m, state, fam_path, true, &what);
        CHECK(r == 0, "check_map_open: %d (%s)", r, what ? what : "");
        CHECK(check_open(state, fam_path, &host) == 0, "check_open");
        if (r < 0 || !host)
                return test_exit();
        CHECK(memcmp(m.persisted + 0x20000, "before", 6) == 0, "persisted starts as a copy of the FAM");
        test_model();
        test_host();
        test_create_errors();
        check_close(host);
        check_map_close(&m);
        /* made anew: no findings */
        CHECK(check_create(state, fam_path, FAM_SIZE, 3) == 0 && check_open(state, fam_path, &host) == 0, "again");
        CHECK(total_findings() == 0, "fame up --check starts with no findings");
        check_close(host);
        CHECK(check_remove(state) == 0 && !check_exists(state), "check_remove");
        test_decode();
        return test_exit();
}
