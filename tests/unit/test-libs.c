/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fame cp --libs on the host (src/cluster/libs.c): the ELF header's architecture and loader, the
 * loader's --list output parsed, and the closure of a host program resolved by its loader. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "libs.h"
#include "testlib.h"

static const struct lib_entry *find(const struct lib_list *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i].name, name) == 0)
                        return &l->v[i];
        return NULL;
}

static void write_bytes(const char *path, const void *data, size_t len) {
        FILE *f = fopen(path, "we");
        CHECK(f && fwrite(data, 1, len, f) == len, "write %s", path);
        if (f)
                fclose(f);
}

int main(void) {
        struct lib_list l = {};
        struct elf_program e;
        char path[4096];
        int r;

        /* What glibc's loader prints, vDSO and loader included, duplicates once. */
        r = libs_parse_list("prog",
                            "\tlinux-vdso.so.1 (0x00007ffd1b9e4000)\n"
                            "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f0c5e3a1000)\n"
                            "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c5e1c0000)\n"
                            "\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f0c5e3a1000)\n"
                            "\t/lib64/ld-linux-x86-64.so.2 (0x00007f0c5e3d6000)\n", &l);
        CHECK(r == 0 && l.n == 3, "parse: r=%d n=%zu", r, l.n);
        CHECK(find(&l, "libz.so.1") && strcmp(find(&l, "libz.so.1")->path, "/lib/x86_64-linux-gnu/libz.so.1") == 0 &&
              !find(&l, "libz.so.1")->loader, "libz");
        CHECK(find(&l, "/lib64/ld-linux-x86-64.so.2") && find(&l, "/lib64/ld-linux-x86-64.so.2")->loader, "the loader");
        CHECK(!find(&l, "linux-vdso.so.1"), "no vDSO");
        lib_list_done(&l);
        /* (the messages: tests/unit/cli-errors.sh) */
        r = libs_parse_list("prog", "\tlibfoo.so.2 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n", &l);
        CHECK(r == -ENOENT && l.n == 0, "not found: %d", r);
        CHECK(libs_parse_list("prog", "\tstatically linked\n", &l) == 0 && l.n == 0, "static");
        lib_list_done(&l);

        /* A host program: its loader lists libc; the loader is in the closure. */
        snprintf(path, sizeof path, "/bin/ls");
        r = elf_program_read(path, &e);
        CHECK(r == 0 && e.known_arch && e.interp[0] == '/', "elf %s: r=%d interp '%s'", path, r, e.interp);
        if (r == 0 && e.interp[0]) {
                r = libs_closure(path, &e, &l);
                CHECK(r == 0 && find(&l, "libc.so.6") && find(&l, e.interp) && find(&l, e.interp)->loader,
                      "closure of %s: r=%d n=%zu", path, r, l.n);
                CHECK(strcmp(libs_triplet(e.arch), e.arch == FAME_ARCH_AARCH64 ? "aarch64-linux-gnu" : "x86_64-linux-gnu") == 0, "triplet");
                lib_list_done(&l);
        }

        /* Another machine's program (RISC-V: no node and no host is one), and not a program. */
        unsigned char h[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0 };
        h[16] = 2;                      /* ET_EXEC */
        h[18] = 243;                    /* EM_RISCV */
        h[20] = 1;
        snprintf(path, sizeof path, "%s/riscv", test_tmpdir());
        write_bytes(path, h, sizeof h);
        r = elf_program_read(path, &e);
        CHECK(r == 0 && !e.known_arch && strcmp(e.arch_name, "riscv") == 0 && !e.interp[0], "riscv: r=%d", r);
        h[18] = 183;                    /* EM_AARCH64 */
        write_bytes(path, h, sizeof h);
        CHECK(elf_program_read(path, &e) == 0 && e.known_arch && e.arch == FAME_ARCH_AARCH64, "aarch64");
        write_bytes(path, "#!/bin/sh\n", 10);
        CHECK(elf_program_read(path, &e) == -ENOEXEC, "script");
        h[4] = 1;                       /* ELFCLASS32 */
        write_bytes(path, h, sizeof h);
        CHECK(elf_program_read(path, &e) == -ENOEXEC, "32-bit");
        return test_exit();
}
