/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the topology files share (src/topology/): limits, the one-line error helper, Python's
 * int() and tmconfig.py's multiplier() as the readers need them, and the two readers that
 * topology_parse() chooses between.  Not an API: topology.h is.
 */
#ifndef FAME_TOPOLOGY_INTERNAL_H
#define FAME_TOPOLOGY_INTERNAL_H

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "topology.h"
#include "util.h"

#define TOPOLOGY_MAX_FILE       (16u << 20)
#define TOPOLOGY_MAX_ENCLOSURES 8u
#define TOPOLOGY_MAX_NODES_PER_ENCLOSURE 10u
/* PHYSADDR books are listed one by one (topology_books): keep that list within reason. */
#define TOPOLOGY_MAX_PHYS_BOOKS (UINT64_C(1) << 24)
#define INI_MIN_BOOK            (UINT64_C(2) << 20)
#define INI_MAX_BOOK            (UINT64_C(8) << 30)
#define JSON_MIN_BOOK           (UINT64_C(2) << 10)
#define JSON_MAX_BOOK           (UINT64_C(16) << 30)
#define LZA_BOOK_SHIFT          33
#define LZA_IG_SHIFT            46
#define MODE_SHIFT              16
/* The ids are SQLite INTEGERs: signed 64 bits. */
#define PHYS_ADDR_LIMIT         (UINT64_C(1) << 63)

/* Sets *ret_error (when wanted) to one line; control characters from the input become '?'.
 * Returns r. */
_printf_(3, 4)
int topo_fail(char **ret_error, int r, const char *fmt, ...);

/* tmconfig.py's multiplier(): int(), or else int() of all but the last character times its
 * suffix K, M, G, T or B (book_size; -EDOM when it is 0).  -EINVAL, -ERANGE. */
int topo_py_multiplier(const char *s, size_t len, uint64_t book_size, int64_t *ret);
/* A whole number min..max as Python's int() reads it; -EINVAL otherwise. */
int topo_int_range(const char *s, int64_t min, int64_t max, uint64_t *ret);
/* 1-based line and column of offset `at`. */
void topo_line_col(const char *text, size_t at, unsigned *ret_line, unsigned *ret_col);

/* qsort() order of nodes: ascending node_id. */
int topo_node_cmp(const void *a, const void *b);
/* node_id, rack 1, and the enclosure and node numbers node_id stands for. */
void topo_node_place(struct topology_node *n, uint32_t node_id);

/* The two readers (topology-ini.c, topology-tmcf.c): fill t or return -errno with *ret_error.
 * The INI reader cuts buf (len bytes and a NUL) into lines in place. */
int topo_parse_ini(char *buf, size_t len, const char *name, struct topology *t, char **ret_error);
int topo_parse_tmcf(const char *text, size_t len, const char *name, struct topology *t, char **ret_error);

/* ---- small helpers --------------------------------------------------------------------- */

static inline void *grow(void *p, size_t *allocated, size_t need, size_t size) {
        if (need <= *allocated)
                return p;
        size_t n = *allocated ? *allocated : 4;
        while (n < need)
                n *= 2;
        void *q = reallocarray(p, n, size);
        if (q)
                *allocated = n;
        return q;
}

/* What Python's str.strip() removes (ASCII part). */
static inline bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}

static inline char *strip(char *s) {
        while (is_blank(*s))
                s++;
        char *e = s + strlen(s);
        while (e > s && is_blank(e[-1]))
                e--;
        *e = 0;
        return s;
}

static inline bool has_space(const char *s) {
        for (; *s; s++)
                if (isspace((unsigned char) *s))
                        return true;
        return false;
}

/* Stored free text must be ASCII: Python strips Unicode white space and int() reads Unicode
 * digits, so other text could mean something else there. */
static inline bool is_ascii(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s >= 0x80)
                        return false;
        return true;
}

/* "8M", "1G", "4097": what the INI and error messages show for a byte count. */
static inline const char *size_str(uint64_t v, char buf[static 32]) {
        return format_size_compact(v, buf, 32);
}

#endif
