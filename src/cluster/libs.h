/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A host program's shared libraries (`fame cp --libs`): its architecture and dynamic loader
 * from its ELF header, and its library closure as that loader itself resolves it
 * (`LOADER --list PROGRAM`, run as argv: never ldd, never a shell).
 */
#ifndef FAME_LIBS_H
#define FAME_LIBS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct elf_program {
        enum fame_arch arch;            /* from e_machine */
        const char *arch_name;          /* "x86_64", "aarch64", or the e_machine number's name */
        bool known_arch;                /* e_machine is one a node can be */
        char interp[256];               /* PT_INTERP, "" for a static program */
};

/* Reads path's ELF header and program headers.  -ENOEXEC (logged) when it is not a 64-bit
 * little-endian ELF executable or shared object; other -errno when it cannot be read. */
int elf_program_read(const char *path, struct elf_program *ret);

/* The multiarch triplet of a node architecture: "x86_64-linux-gnu", "aarch64-linux-gnu". */
const char *libs_triplet(enum fame_arch arch);

struct lib_entry {
        char *name;                     /* as the program asks for it: libz.so.1 (the loader: its path) */
        char *path;                     /* where the host's loader found it */
        bool loader;                    /* the dynamic loader itself (PT_INTERP) */
};

struct lib_list {
        struct lib_entry *v;
        size_t n;
};
void lib_list_done(struct lib_list *l);

/* Parses the loader's --list output ("\tlibz.so.1 => /lib/.../libz.so.1 (0x...)", the loader as
 * "\t/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO, which has no file, is left out).  A
 * "NAME => not found" line: -ENOENT, logged with the program's name. */
int libs_parse_list(const char *program, const char *text, struct lib_list *ret);

/* The libraries program (read by elf_program_read() into e) loads, with the loader: runs
 * e->interp --list program.  A static program: an empty list.  A program of another
 * architecture than the host's cannot be listed here: -ENOEXEC, logged. */
int libs_closure(const char *program, const struct elf_program *e, struct lib_list *ret);

#endif
