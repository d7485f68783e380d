/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Libraries loaded when first used, not when fame starts.  Every fame command pays for each
 * library it is linked against (libvirt alone brings some 50 more: GnuTLS, ICU, Kerberos, …,
 * about 20 ms of dynamic loading per run), and only the libvirt backend and its domain XML
 * need them.  A module names the functions it calls in a table of dl_sym and binds them once;
 * a library that is missing or too old is one error that names the Debian package.
 */
#ifndef FAME_DL_H
#define FAME_DL_H

#include <stddef.h>

struct dl_sym {
        const char *name;
        void *slot;             /* the address of a function pointer: filled in by dl_bind */
};

struct dl_lib {
        const char *soname;     /* "libvirt.so.0" */
        const char *package;    /* the Debian package that has it: "libvirt0" */
        const struct dl_sym *syms;
        size_t n_syms;
        /* set by dl_bind: */
        int state;              /* 0 not tried, 1 bound, negative errno: failed (and said so) */
};

/* Loads lib->soname and fills every slot, once (thread-safe; later calls return the first
 * result).  On failure logs one error naming the library, why, and the package to install, and
 * returns a negative errno; the slots are then unusable.  FAME_DL_PATH=DIR (for tests) loads
 * DIR/SONAME instead. */
int dl_bind(struct dl_lib *lib);

/* { "name", &api.name } for a struct api whose members are named after the functions */
#define DL_SYM(api, f) { #f, &(api).f }

#endif
