/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Librarian topology (topology.h, docs/topology.md): the model both readers fill, the text
 * helpers they share, topology_parse() choosing between them, and what the Librarian and the
 * cluster ask of a topology (books, a node, a book's FAM offset).  The readers are
 * topology-ini.c (book_register.py's INI) and topology-tmcf.c (TMCF JSON); topology-gen.c
 * writes the INI for a FAM/E geometry.
 *
 * Rule of thumb: whatever these files accept, book_register.py accepts with the same meaning.
 * A few things the original accepts are refused here with a message saying why (zero-book
 * short forms, white space in section names, [DEFAULT], duplicate node ids, ...); they are
 * listed in docs/topology.md under "Known limits".
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fame.h"
#include "macro.h"
#include "topology-internal.h"
#include "util.h"

/* ---- helpers -------------------------------------------------------------------------------- */

/* Sets *ret_error (when wanted) to one line; control characters from the input become '?'. */
int topo_fail(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        if (!ret_error)
                return r;
        va_start(ap, fmt);
        s = vstrf(fmt, ap);
        va_end(ap);
        for (char *p = s; p && *p; p++)
                if (*p == '\t')
                        *p = ' ';
                else if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        free(*ret_error);
        *ret_error = s;
        return r;
}

/*
 * Python's int() of ASCII text: white space around, an optional sign, digits with single '_'
 * between them.  -EINVAL when it is not one, -ERANGE beyond 64 bits (Python would go on with a
 * big integer that every caller then refuses anyway).
 */
static int py_int(const char *s, size_t len, int64_t *ret) {
        const char *e = s + len;
        bool neg = false, overflow = false;
        int64_t v = 0;

        while (s < e && is_blank(*s))
                s++;
        while (e > s && is_blank(e[-1]))
                e--;
        if (s < e && (*s == '+' || *s == '-'))
                neg = *s++ == '-';
        if (s == e || !isdigit((unsigned char) *s))
                return -EINVAL;
        for (; s < e; s++) {
                if (*s == '_' && s + 1 < e && isdigit((unsigned char) s[1]))
                        continue;
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, neg ? -(*s - '0') : *s - '0', &v))
                        overflow = true;
        }
        if (overflow)
                return -ERANGE;
        *ret = v;
        return 0;
}

/*
 * tmconfig.py's multiplier(): int(), or else int() of all but the last character (after
 * stripping) times its suffix, K, M, G, T (powers of 1024) or B (book_size; -EDOM when it is
 * 0, as where the original refuses B).
 */
int topo_py_multiplier(const char *s, size_t len, uint64_t book_size, int64_t *ret) {
        const char *e = s + len;
        int64_t v, m;
        int r;

        r = py_int(s, len, ret);
        if (r != -EINVAL)
                return r;
        while (s < e && is_blank(*s))
                s++;
        while (e > s && is_blank(e[-1]))
                e--;
        if (e - s < 2)
                return -EINVAL;
        r = py_int(s, (size_t) (e - s - 1), &v);
        if (r < 0)
                return r;
        switch (toupper((unsigned char) e[-1])) {
        case 'K': m = INT64_C(1) << 10; break;
        case 'M': m = INT64_C(1) << 20; break;
        case 'G': m = INT64_C(1) << 30; break;
        case 'T': m = INT64_C(1) << 40; break;
        case 'B':
                if (!book_size)
                        return -EDOM;
                if (book_size > INT64_MAX)
                        return -ERANGE;
                m = (int64_t) book_size;
                break;
        default:
                return -EINVAL;
        }
        if (__builtin_mul_overflow(v, m, ret))
                return -ERANGE;
        return 0;
}

/* A whole number min..max as Python's int() reads it. */
int topo_int_range(const char *s, int64_t min, int64_t max, uint64_t *ret) {
        int64_t v;
        if (py_int(s, strlen(s), &v) < 0 || v < min || v > max)
                return -EINVAL;
        *ret = (uint64_t) v;
        return 0;
}

/*
 * book_register.py reads its file as UTF-8, strictly: no overlong forms, no surrogates, nothing
 * above U+10FFFF.  The offset of the first bad byte, or len.
 */
static size_t utf8_invalid(const char *text, size_t len) {
        const unsigned char *s = (const unsigned char *) text;
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i];
                uint32_t cp, min;
                size_t n;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                        min = 0x80;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                        min = 0x800;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                        min = 0x10000;
                } else
                        return i;
                if (len - i <= n)
                        return i;
                for (size_t k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return i;
                        cp = cp << 6 | (s[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return i;
                i += n + 1;
        }
        return len;
}

/* 1-based line and column of offset `at`. */
void topo_line_col(const char *text, size_t at, unsigned *ret_line, unsigned *ret_col) {
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < at; i++)
                if (text[i] == '\n') {
                        line++;
                        col = 1;
                } else
                        col++;
        *ret_line = line;
        *ret_col = col;
}

int topo_node_cmp(const void *a, const void *b) {
        const struct topology_node *x = a, *y = b;
        return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

void topo_node_place(struct topology_node *n, uint32_t node_id) {
        n->node_id = node_id;
        n->rack = 1;
        n->enc = ((node_id - 1) % 80) / 10 + 1;
        n->node = (node_id - 1) % 10 + 1;
}

static void node_done(struct topology_node *n) {
        free(n->hostname);
        free(n->rack_name);
        free(n->coordinate);
        free(n->serial);
        free(n->mac);
        free(n->soc_coordinate);
        free(n->tls_certificate);
        for (size_t i = 0; i < n->n_mcs; i++)
                free(n->mcs[i].coordinate);
        free(n->mcs);
        free(n->ranges);
}

void topology_free(struct topology *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n_nodes; i++)
                node_done(&t->nodes[i]);
        free(t->nodes);
        for (size_t i = 0; i < ELEMENTSOF(t->enclosure_u); i++)
                free(t->enclosure_u[i]);
        free(t);
}

/* Books per IG (LZA). */
static void ig_totals(const struct topology *t, uint64_t totals[static TOPOLOGY_MAX_IGS]) {
        memset(totals, 0, TOPOLOGY_MAX_IGS * sizeof totals[0]);
        for (size_t i = 0; i < t->n_nodes; i++)
                for (size_t j = 0; j < t->nodes[i].n_mcs; j++)
                        if (t->nodes[i].mcs[j].ig < TOPOLOGY_MAX_IGS)
                                totals[t->nodes[i].mcs[j].ig] += t->nodes[i].mcs[j].module_size_books;
}

/* ---- public --------------------------------------------------------------------------------- */

int topology_parse(const char *text, size_t len, const char *name, struct topology **ret, char **ret_error) {
        struct topology *t;
        size_t i;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!ret || (!text && len))
                return -EINVAL;
        *ret = NULL;
        if (!name)
                name = "topology";
        if (memchr(text ? text : "", 0, len))
                return topo_fail(ret_error, -EINVAL, "%s: contains a NUL byte at offset %zu; a topology is a text file",
                                 name, (size_t) ((const char *) memchr(text, 0, len) - text));

        i = utf8_invalid(text, len);
        if (i < len) {
                unsigned line, col;
                topo_line_col(text, i, &line, &col);
                return topo_fail(ret_error, -EINVAL, "%s:%u: invalid UTF-8 (byte 0x%02x at column %u); save the file as UTF-8",
                                 name, line, (unsigned char) text[i], col);
        }

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        for (i = 0; i < len && isspace((unsigned char) text[i]); i++)
                ;
        if (i < len && text[i] == '{')
                r = topo_parse_tmcf(text, len, name, t, ret_error);
        else {
                char *buf = malloc(len + 1);
                if (!buf) {
                        topology_free(t);
                        return -ENOMEM;
                }
                if (len)
                        memcpy(buf, text, len);
                buf[len] = 0;
                r = topo_parse_ini(buf, len, name, t, ret_error);
                free(buf);
        }
        if (r < 0) {
                topology_free(t);
                if (r == -ENOMEM && ret_error && !*ret_error)
                        topo_fail(ret_error, r, "%s: out of memory", name);
                return r;
        }
        *ret = t;
        return 0;
}

int topology_parse_file(const char *path, struct topology **ret, char **ret_error) {
        size_t len;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!path || !ret)
                return -EINVAL;
        *ret = NULL;
        _cleanup_free_ char *text = read_file(path, TOPOLOGY_MAX_FILE, &len);
        if (!text) {
                r = negative_errno();
                if (r == -EFBIG)
                        return topo_fail(ret_error, r, "%s: larger than %u MiB, too large for a topology", path, TOPOLOGY_MAX_FILE >> 20);
                return topo_fail(ret_error, r, "%s: cannot read: %s", path, strerror(-r));
        }
        return topology_parse(text, len, path, ret, ret_error);
}

const struct topology_node *topology_find_node(const struct topology *t, uint32_t node_id) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_nodes; i++)
                if (t->nodes[i].node_id == node_id)
                        return &t->nodes[i];
        return NULL;
}

struct phys_range {
        uint64_t addr, books;
        uint32_t intlv_group, first_book;
};

static int phys_range_cmp(const void *a, const void *b) {
        const struct phys_range *x = a, *y = b;
        return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int topology_books(const struct topology *t, struct topology_book **ret, size_t *ret_n) {
        struct topology_book *books;
        size_t n = 0;

        if (!t || !ret || !ret_n)
                return -EINVAL;
        if (t->books_total > SIZE_MAX / sizeof *books)
                return -ENOMEM;
        books = calloc(t->books_total ? t->books_total : 1, sizeof *books);
        if (!books)
                return -ENOMEM;

        if (t->mode == TOPOLOGY_LZA) {
                uint64_t totals[TOPOLOGY_MAX_IGS];
                ig_totals(t, totals);
                for (uint32_t ig = 0; ig < TOPOLOGY_MAX_IGS; ig++)
                        for (uint64_t b = 0; b < totals[ig] && n < t->books_total; b++)
                                books[n++] = (struct topology_book) {
                                        .id = (uint64_t) ig << LZA_IG_SHIFT | b << LZA_BOOK_SHIFT,
                                        .intlv_group = ig,
                                        .book_num = (uint32_t) b,
                                };
        } else {
                size_t nr = 0, k = 0;
                for (size_t i = 0; i < t->n_nodes; i++)
                        nr += t->nodes[i].n_ranges;
                _cleanup_free_ struct phys_range *ranges = calloc(nr ? nr : 1, sizeof *ranges);
                if (!ranges) {
                        free(books);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < t->n_nodes; i++) {
                        const struct topology_node *node = &t->nodes[i];
                        uint32_t first = 0;
                        for (size_t j = 0; j < node->n_ranges; j++) {
                                uint64_t nb = node->ranges[j].size / t->book_size;
                                ranges[k++] = (struct phys_range) {
                                        .addr = node->ranges[j].addr,
                                        .books = nb,
                                        .intlv_group = UINT32_C(1) << MODE_SHIFT | ((node->node_id - 1) & 0xffff),
                                        .first_book = first,
                                };
                                first += (uint32_t) nb;
                        }
                }
                qsort(ranges, nr, sizeof *ranges, phys_range_cmp);
                for (size_t i = 0; i < nr; i++)
                        for (uint64_t b = 0; b < ranges[i].books && n < t->books_total; b++)
                                books[n++] = (struct topology_book) {
                                        .id = ranges[i].addr + b * t->book_size,
                                        .intlv_group = ranges[i].intlv_group,
                                        .book_num = ranges[i].first_book + (uint32_t) b,
                                };
        }
        *ret = books;
        *ret_n = n;
        return 0;
}

int topology_book_offset(const struct topology *t, uint64_t book_area_offset, uint64_t book_id,
                         uint64_t *ret_offset) {
        uint64_t totals[TOPOLOGY_MAX_IGS], igstart = 0, off;

        if (!t || !ret_offset || t->mode != TOPOLOGY_LZA)
                return -EINVAL;
        if (book_id & ((UINT64_C(1) << LZA_BOOK_SHIFT) - 1) || book_id >> 53)
                return -EINVAL;
        uint32_t ig = (uint32_t) (book_id >> LZA_IG_SHIFT) & 0x7f;
        uint64_t book_num = (book_id >> LZA_BOOK_SHIFT) & 0x1fff;
        ig_totals(t, totals);
        if (book_num >= totals[ig])
                return -EINVAL;
        for (uint32_t g = 0; g < ig; g++)
                igstart += totals[g];
        if (__builtin_mul_overflow(igstart + book_num, t->book_size, &off) ||
            __builtin_add_overflow(off, book_area_offset, &off))
                return -ERANGE;
        *ret_offset = off;
        return 0;
}
