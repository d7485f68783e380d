/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A host program's shared libraries (libs.h): the ELF header says the architecture and the
 * loader (PT_INTERP); the loader says the closure (--list, which resolves exactly as a run of
 * the program on this host would: ld.so.cache, RUNPATH, the system directories).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libs.h"
#include "log.h"
#include "macro.h"
#include "spawn.h"
#include "util.h"

#if defined(__x86_64__)
#define HOST_ARCH FAME_ARCH_X86_64
#elif defined(__aarch64__)
#define HOST_ARCH FAME_ARCH_AARCH64
#else
#define HOST_ARCH ((enum fame_arch) -1)
#endif

const char *libs_triplet(enum fame_arch arch) {
        return arch == FAME_ARCH_AARCH64 ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
}

static const char *machine_name(unsigned m) {
        switch (m) {
        case EM_X86_64: return "x86_64";
        case EM_AARCH64: return "aarch64";
        case EM_386: return "i386";
        case EM_ARM: return "arm";
        case EM_RISCV: return "riscv";
        case EM_PPC64: return "ppc64";
        case EM_S390: return "s390x";
        default: return "an unknown architecture";
        }
}

int elf_program_read(const char *path, struct elf_program *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        Elf64_Ehdr h;
        if (fd < 0)
                return log_error_errno(-errno, "Cannot read '%s': %m", path);
        ssize_t k = pread(fd, &h, sizeof h, 0);
        if (k < 0)
                return log_error_errno(-errno, "Cannot read '%s': %m", path);
        if ((size_t) k < EI_NIDENT || memcmp(h.e_ident, ELFMAG, SELFMAG) != 0)
                return log_error_errno(-ENOEXEC, "'%s' is not a program (no ELF header): --libs copies ELF programs", path);
        if ((size_t) k < sizeof h || h.e_ident[EI_CLASS] != ELFCLASS64 || h.e_ident[EI_DATA] != ELFDATA2LSB)
                return log_error_errno(-ENOEXEC, "'%s' is not a 64-bit little-endian ELF program, which nodes (x86_64, aarch64) run", path);
        if (h.e_type != ET_EXEC && h.e_type != ET_DYN)
                return log_error_errno(-ENOEXEC, "'%s' is an ELF file but not a program or shared library", path);

        *ret = (struct elf_program) {
                .arch = h.e_machine == EM_AARCH64 ? FAME_ARCH_AARCH64 : FAME_ARCH_X86_64,
                .arch_name = machine_name(h.e_machine),
                .known_arch = h.e_machine == EM_X86_64 || h.e_machine == EM_AARCH64,
        };
        if (h.e_phentsize != sizeof(Elf64_Phdr) || h.e_phnum > 4096)
                return h.e_phnum == 0 ? 0 : log_error_errno(-ENOEXEC, "'%s': malformed ELF program headers", path);
        for (unsigned i = 0; i < h.e_phnum; i++) {
                Elf64_Phdr ph;
                if (pread(fd, &ph, sizeof ph, (off_t) (h.e_phoff + (uint64_t) i * sizeof ph)) != (ssize_t) sizeof ph)
                        return log_error_errno(-ENOEXEC, "'%s': truncated ELF program headers", path);
                if (ph.p_type != PT_INTERP)
                        continue;
                if (ph.p_filesz < 2 || ph.p_filesz > sizeof ret->interp)
                        return log_error_errno(-ENOEXEC, "'%s': malformed ELF interpreter (PT_INTERP)", path);
                if (pread(fd, ret->interp, ph.p_filesz, (off_t) ph.p_offset) != (ssize_t) ph.p_filesz)
                        return log_error_errno(-ENOEXEC, "'%s': truncated ELF interpreter (PT_INTERP)", path);
                ret->interp[ph.p_filesz - 1] = 0;
                if (ret->interp[0] != '/' || strlen(ret->interp) != ph.p_filesz - 1)
                        return log_error_errno(-ENOEXEC, "'%s': malformed ELF interpreter (PT_INTERP)", path);
        }
        return 0;
}

void lib_list_done(struct lib_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].name);
                free(l->v[i].path);
        }
        free(l->v);
        *l = (struct lib_list) {};
}

static int lib_list_add(struct lib_list *l, const char *name, size_t name_len, const char *path, size_t path_len, bool loader) {
        for (size_t i = 0; i < l->n; i++)
                if (strlen(l->v[i].path) == path_len && strncmp(l->v[i].path, path, path_len) == 0)
                        return 0;
        struct lib_entry *v = realloc(l->v, (l->n + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        l->v = v;
        v[l->n] = (struct lib_entry) { .name = strndup(name, name_len), .path = strndup(path, path_len), .loader = loader };
        if (!v[l->n].name || !v[l->n].path) {
                free(v[l->n].name);
                free(v[l->n].path);
                return -ENOMEM;
        }
        l->n++;
        return 0;
}

/* The length of s up to " (0x" or the end of the line. */
static size_t before_address(const char *s) {
        size_t n = strcspn(s, "\n");
        for (size_t i = 0; i + 3 < n; i++)
                if (memcmp(s + i, " (0x", 4) == 0)
                        return i;
        return n;
}

int libs_parse_list(const char *program, const char *text, struct lib_list *ret) {
        struct lib_list l = {};
        int r = 0;
        for (const char *line = text; *line && r >= 0; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] == '\n')) {
                const char *s = line + strspn(line, " \t");
                size_t len = before_address(s);
                const char *arrow = memmem(s, len, " => ", 4);
                if (arrow) {
                        const char *path = arrow + 4;
                        size_t plen = len - (size_t) (path - s);
                        if (plen == 9 && strncmp(path, "not found", 9) == 0) {
                                r = log_error_errno(-ENOENT, "'%s' needs %.*s, which the host's loader does not find: install it on the host, or set LD_LIBRARY_PATH as for running it",
                                                    program, (int) (arrow - s), s);
                                break;
                        }
                        if (plen > 0 && path[0] == '/')
                                r = lib_list_add(&l, s, (size_t) (arrow - s), path, plen, false);
                } else if (len > 0 && s[0] == '/')
                        r = lib_list_add(&l, s, len, s, len, true);   /* the loader */
                /* else the vDSO (linux-vdso.so.1 (0x...)), or "statically linked": no file */
        }
        if (r == -ENOMEM)
                log_error_errno(r, "Out of memory");
        if (r < 0) {
                lib_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

int libs_closure(const char *program, const struct elf_program *e, struct lib_list *ret) {
        if (!e->interp[0]) {
                *ret = (struct lib_list) {};
                return 0;
        }
        if (!e->known_arch || e->arch != HOST_ARCH)
                return log_error_errno(-ENOEXEC, "'%s' is an %s program: its libraries can be listed only on an %s host, by its own loader",
                                       program, e->arch_name, e->arch_name);
        if (access(e->interp, X_OK) < 0)
                return log_error_errno(-errno, "'%s' names the loader %s, which this host lacks: %m", program, e->interp);
        /* The loader runs the listing itself, as argv; LD_LIBRARY_PATH, if the user set it,
         * counts as it would for a run of the program. */
        _cleanup_cmd_ struct cmd *c = cmd_new(e->interp);
        _cleanup_free_ char *out = NULL;
        cmd_arg(c, "--list");
        cmd_arg(c, program);
        const char *llp = getenv("LD_LIBRARY_PATH");
        if (llp)
                cmd_setenv(c, "LD_LIBRARY_PATH", llp);
        int r = cmd_run_timeout(c, 60000, &out);
        if (r < 0)
                return log_error_errno(r, "Cannot run %s --list '%s': %m", e->interp, program);
        if (r > 0) {
                /* "not found" lines make the loader exit non-zero: the parser names the library */
                _cleanup_(lib_list_done) struct lib_list l = {};
                if (out && libs_parse_list(program, out, &l) == -ENOENT)
                        return -ENOENT;
                return log_error_errno(-EIO, "%s --list '%s' failed (exit status %d)", e->interp, program, r);
        }
        return libs_parse_list(program, out ? out : "", ret);
}
