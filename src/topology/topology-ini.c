/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The INI form of a topology (topology.h, docs/topology.md): the subset of Python's
 * configparser that book_register.py reads, its [global] short form (nvm_size_per_node) and
 * long form ([nodeNN] sections, [enclosureN]), LZA sizes or PHYSADDR "SIZE @ 0xADDR" ranges,
 * checked as the original checks them, each error one line naming the file and line.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fame.h"
#include "macro.h"
#include "topology-internal.h"
#include "util.h"

/* The INI defaults of book_register.py (frdnode.py FRDnode). */
static int node_ini_defaults(struct topology_node *n, uint32_t node_id, const char *hostname) {
        topo_node_place(n, node_id);
        n->ig = node_id - 1;
        if (!(n->hostname = hostname ? strdup(hostname) : strf("node%02" PRIu32, node_id)) ||
            !(n->coordinate = strf("Node/%" PRIu32, n->node)) ||
            !(n->serial = strf("1:%" PRIu32 ":%" PRIu32, n->enc, n->node)) ||
            !(n->mac = strf("52:54:42:%02" PRIu32 ":%02" PRIu32 ":%02" PRIu32, node_id, node_id, node_id)) ||
            !(n->soc_coordinate = strdup("SocBoard/1/Soc/1")) ||
            !(n->tls_certificate = strdup("NotToday")))
                return -ENOMEM;
        return 0;
}

/* The 4 media controllers of an LZA INI node, books/4 each. */
static int node_ini_mcs(struct topology_node *n, uint64_t books, uint64_t book_size) {
        n->mcs = calloc(TOPOLOGY_MCS_PER_NODE, sizeof *n->mcs);
        if (!n->mcs)
                return -ENOMEM;
        n->n_mcs = TOPOLOGY_MCS_PER_NODE;
        n->books = books;
        for (uint32_t i = 0; i < TOPOLOGY_MCS_PER_NODE; i++) {
                struct topology_mc *mc = &n->mcs[i];
                mc->ig = n->ig;
                mc->module_size_books = books / TOPOLOGY_MCS_PER_NODE;
                mc->raw_cid = (uint64_t) (n->enc - 1) << 9 | (uint64_t) (n->node - 1) << 4 | (8 + i);
                mc->memory_size = mc->module_size_books * book_size;
                if (!(mc->coordinate = strf("MemoryBoard/1/MediaController/%" PRIu32, i + 1)))
                        return -ENOMEM;
        }
        return 0;
}

/* ---- INI: the configparser subset ------------------------------------------------------------ */

struct ini_line {
        const char *text;               /* stripped */
        unsigned lineno;
};

struct ini_key {
        const char *name;               /* lower case */
        unsigned lineno;
        struct ini_line *lines;         /* the value's first line (perhaps ""), then continuations */
        size_t n_lines, allocated;
};

struct ini_section {
        const char *name;
        unsigned lineno;
        struct ini_key *keys;
        size_t n_keys, allocated;
};

struct ini {
        const char *name;               /* for messages */
        char *buf;                      /* the text, cut into lines in place */
        struct ini_section *sections;
        size_t n_sections, allocated;
};

static void ini_done(struct ini *ini) {
        for (size_t i = 0; i < ini->n_sections; i++) {
                for (size_t j = 0; j < ini->sections[i].n_keys; j++)
                        free(ini->sections[i].keys[j].lines);
                free(ini->sections[i].keys);
        }
        free(ini->sections);
        free(ini->buf);
}

static int key_append(struct ini_key *k, const char *text, unsigned lineno) {
        struct ini_line *l = grow(k->lines, &k->allocated, k->n_lines + 1, sizeof *l);
        if (!l)
                return -ENOMEM;
        k->lines = l;
        l[k->n_lines++] = (struct ini_line) { text, lineno };
        return 0;
}

/*
 * Python's ConfigParser.read() with its defaults: '#' and ';' comment lines (no inline
 * comments), "key = value" or "key: value", keys lower-cased, lines indented deeper than their
 * key continue its value (blank lines inside a value are kept as empty lines), duplicate
 * sections or keys are errors.
 */
static int ini_read(struct ini *ini, size_t len, char **ret_error) {
        const char *name = ini->name;
        char *p = ini->buf, *end = ini->buf + len;
        struct ini_section *sect = NULL;
        struct ini_key *key = NULL;
        size_t indent_level = 0;
        unsigned lineno = 0;

        while (p < end) {
                /* Python's universal newlines: \n, \r\n or \r */
                char *line = p, *nl = p;
                while (nl < end && *nl != '\n' && *nl != '\r')
                        nl++;
                if (nl < end) {
                        p = nl + (*nl == '\r' && nl + 1 < end && nl[1] == '\n' ? 2 : 1);
                        *nl = 0;
                } else
                        p = end;
                lineno++;

                char *s = line;
                while (is_blank(*s))
                        s++;
                size_t indent = (size_t) (s - line);
                s = strip(s);
                if (*s == '#' || *s == ';')
                        continue;
                if (!*s) {
                        if (key && key_append(key, "", lineno) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (key && indent > indent_level) {
                        if (key_append(key, s, lineno) < 0)
                                return -ENOMEM;
                        continue;
                }
                indent_level = indent;
                key = NULL;

                if (*s == '[') {
                        char *close = strchr(s, ']');
                        if (!close || close == s + 1 || close[1])
                                return topo_fail(ret_error, -EINVAL, "%s:%u: '%.60s' is not a section header; write [name] alone on its line",
                                                 name, lineno, s);
                        *close = 0;
                        const char *sname = s + 1;
                        if (strcmp(sname, "DEFAULT") == 0)
                                return topo_fail(ret_error, -EINVAL, "%s:%u: [DEFAULT] is not supported; write its keys into the sections that use them",
                                                 name, lineno);
                        if (has_space(sname))
                                return topo_fail(ret_error, -EINVAL, "%s:%u: section name '%.60s' contains white space; write e.g. [node01] or [global]",
                                                 name, lineno, sname);
                        for (size_t i = 0; i < ini->n_sections; i++)
                                if (strcmp(ini->sections[i].name, sname) == 0)
                                        return topo_fail(ret_error, -EINVAL, "%s:%u: section [%s] appears again (first on line %u); merge the two",
                                                         name, lineno, sname, ini->sections[i].lineno);
                        struct ini_section *n = grow(ini->sections, &ini->allocated, ini->n_sections + 1, sizeof *n);
                        if (!n)
                                return -ENOMEM;
                        ini->sections = n;
                        sect = &n[ini->n_sections++];
                        *sect = (struct ini_section) { .name = sname, .lineno = lineno };
                        continue;
                }
                if (!sect)
                        return topo_fail(ret_error, -EINVAL, "%s:%u: '%.60s' comes before any section; begin with a [global] section",
                                         name, lineno, s);

                char *d = strpbrk(s, "=:");
                if (!d)
                        return topo_fail(ret_error, -EINVAL, "%s:%u: '%.60s' is not a 'key = value' line; add '= value' or comment it out with '#'",
                                         name, lineno, s);
                char *ne = d;
                while (ne > s && is_blank(ne[-1]))
                        ne--;
                if (ne == s)
                        return topo_fail(ret_error, -EINVAL, "%s:%u: '%.60s' has no key before '%c'; write key = value",
                                         name, lineno, s, *d);
                char *value = d + 1;
                *ne = 0;
                for (char *c = s; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                while (is_blank(*value))
                        value++;
                for (size_t i = 0; i < sect->n_keys; i++)
                        if (strcmp(sect->keys[i].name, s) == 0)
                                return topo_fail(ret_error, -EINVAL, "%s:%u: key %s appears again in [%s] (first on line %u); keep one",
                                                 name, lineno, s, sect->name, sect->keys[i].lineno);
                struct ini_key *k = grow(sect->keys, &sect->allocated, sect->n_keys + 1, sizeof *k);
                if (!k)
                        return -ENOMEM;
                sect->keys = k;
                key = &k[sect->n_keys++];
                *key = (struct ini_key) { .name = s, .lineno = lineno };
                if (key_append(key, value, lineno) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static struct ini_section *ini_section(const struct ini *ini, const char *name) {
        for (size_t i = 0; i < ini->n_sections; i++)
                if (strcmp(ini->sections[i].name, name) == 0)
                        return &ini->sections[i];
        return NULL;
}

static const struct ini_key *ini_key(const struct ini_section *s, const char *name) {
        for (size_t i = 0; i < s->n_keys; i++)
                if (strcmp(s->keys[i].name, name) == 0)
                        return &s->keys[i];
        return NULL;
}

/* The one non-empty line of a single-line key ("" if none), and its line number. */
static int ini_scalar(const struct ini *ini, const struct ini_section *s, const struct ini_key *k,
                      const char **ret, unsigned *ret_lineno, char **ret_error) {
        const struct ini_line *found = NULL;
        for (size_t i = 0; i < k->n_lines; i++) {
                if (!*k->lines[i].text)
                        continue;
                if (found)
                        return topo_fail(ret_error, -EINVAL, "%s:%u: %s in [%s] continues on an indented line; only nvm_size may have more than one line, so write the value on line %u",
                                         ini->name, k->lines[i].lineno, k->name, s->name, k->lineno);
                found = &k->lines[i];
        }
        *ret = found ? found->text : "";
        *ret_lineno = found ? found->lineno : k->lineno;
        return 0;
}

static const char *const global_keys[] = { "node_count", "book_size_bytes", "nvm_size_per_node", "datacenter", "rack", "domain", NULL };
static const char *const global_required[] = { "node_count", "book_size_bytes", NULL };
static const char *const enclosure_keys[] = { "u", NULL };
static const char *const node_keys[] = { "node_id", "nvm_size", NULL };

static bool in_list(const char *const *list, const char *s) {
        for (; *list; list++)
                if (strcmp(*list, s) == 0)
                        return true;
        return false;
}

static void join_list(const char *const *list, char *buf, size_t len) {
        size_t off = 0;
        buf[0] = 0;
        for (const char *const *l = list; *l && off < len; l++)
                off += (size_t) snprintf(buf + off, len - off, "%s%s", l == list ? "" : ", ", *l);
}

static bool is_enclosure_section(const char *name) {
        return strncmp(name, "enclosure", 9) == 0;
}

/* book_register.py load_config(): every section has its required keys and no others. */
static int ini_check_keys(const struct ini *ini, const struct ini_section *s, char **ret_error) {
        const char *const *legal, *const *required;
        const char *what;
        char allowed[160];

        if (strcmp(s->name, "global") == 0) {
                legal = global_keys;
                required = global_required;
                what = "[global]";
        } else if (is_enclosure_section(s->name)) {
                legal = required = enclosure_keys;
                what = "an enclosure section";
        } else {
                legal = required = node_keys;
                what = "a node section";
        }
        join_list(legal, allowed, sizeof allowed);
        for (const char *const *r = required; *r; r++)
                if (!ini_key(s, *r)) {
                        char req[80];
                        join_list(required, req, sizeof req);
                        return topo_fail(ret_error, -EINVAL, "%s:%u: [%s] has no %s; %s needs %s",
                                         ini->name, s->lineno, s->name, *r, what, req);
                }
        for (size_t i = 0; i < s->n_keys; i++)
                if (!in_list(legal, s->keys[i].name))
                        return topo_fail(ret_error, -EINVAL, "%s:%u: [%s] has unknown key '%s'; the keys of %s are %s",
                                         ini->name, s->keys[i].lineno, s->name, s->keys[i].name, what, allowed);
        return 0;
}

/* A size from the file, with the message the caller's key deserves. */
static int ini_size(const struct ini *ini, unsigned lineno, const char *what, const char *text, size_t len,
                    uint64_t book_size, uint64_t *ret, char **ret_error) {
        int64_t v = 0;
        int r = topo_py_multiplier(text, len, book_size, &v);
        if (r == 0 && v < 0)
                return topo_fail(ret_error, -EINVAL, "%s:%u: %s '%.*s' is negative; write a size of at least 0",
                                 ini->name, lineno, what, (int) len, text);
        *ret = (uint64_t) v;
        if (r == -EDOM)
                return topo_fail(ret_error, -EINVAL, "%s:%u: %s '%.*s' uses B (books), which only nvm_size and nvm_size_per_node may; write bytes with K, M, G or T, e.g. 8M",
                                 ini->name, lineno, what, (int) len, text);
        if (r == -ERANGE)
                return topo_fail(ret_error, -EINVAL, "%s:%u: %s '%.*s' is too large; use a smaller size",
                                 ini->name, lineno, what, (int) len, text);
        if (r < 0)
                return topo_fail(ret_error, -EINVAL, "%s:%u: %s '%.*s' is not a size; write a whole number with an optional suffix K, M, G, T%s, e.g. %s",
                                 ini->name, lineno, what, (int) len, text, book_size ? " or B (books)" : "",
                                 book_size ? "512B" : "8M");
        return 0;
}

/* The books of an LZA node must fill 4 media controllers and one interleave group. */
static int ini_check_lza_books(const struct ini *ini, unsigned lineno, const char *what, uint64_t books,
                               char **ret_error) {
        if (books == 0)
                return topo_fail(ret_error, -EINVAL, "%s:%u: %s is 0 books; give each node at least 4 books, e.g. 4B",
                                 ini->name, lineno, what);
        if (books % TOPOLOGY_MCS_PER_NODE) {
                uint64_t lo = books / TOPOLOGY_MCS_PER_NODE * TOPOLOGY_MCS_PER_NODE;
                if (lo == 0)
                        return topo_fail(ret_error, -EINVAL, "%s:%u: %s is %" PRIu64 " books, not a multiple of 4 (a node has 4 media controllers); use 4B",
                                         ini->name, lineno, what, books);
                return topo_fail(ret_error, -EINVAL, "%s:%u: %s is %" PRIu64 " books, not a multiple of 4 (a node has 4 media controllers); use %" PRIu64 "B or %" PRIu64 "B",
                                 ini->name, lineno, what, books, lo, lo + TOPOLOGY_MCS_PER_NODE);
        }
        if (books > TOPOLOGY_MAX_BOOKS_PER_IG)
                return topo_fail(ret_error, -EINVAL, "%s:%u: %s is %" PRIu64 " books, more than the %u of an interleave group (book count too large); use at most %uB or larger books",
                                 ini->name, lineno, what, books, TOPOLOGY_MAX_BOOKS_PER_IG, TOPOLOGY_MAX_BOOKS_PER_IG);
        return 0;
}

/* One PHYSADDR range as read, for the overlap check. */
struct range_src {
        uint64_t addr, size;
        unsigned lineno;
        size_t node;                    /* index into t->nodes (unsorted) */
};

static int range_src_cmp(const void *a, const void *b) {
        const struct range_src *x = a, *y = b;
        return x->addr < y->addr ? -1 : x->addr > y->addr;
}

struct ini_state {
        const struct ini *ini;
        struct topology *t;
        uint64_t book_size;
        int mode;                       /* -1 until the first nvm_size line */
        unsigned mode_lineno;
        struct range_src *ranges;
        size_t n_ranges, ranges_allocated;
        uint64_t phys_books;
        char **ret_error;
};

/* The nvm_size of one node section: one LZA size, or PHYSADDR "SIZE @ 0xADDR" lines. */
static int ini_nvm_size(struct ini_state *st, const struct ini_section *s, const struct ini_key *k, size_t node_index) {
        const struct ini *ini = st->ini;
        struct topology_node *n = &st->t->nodes[node_index];
        uint64_t bs = st->book_size;
        char bsbuf[32];
        size_t first = 0, last = k->n_lines;
        int r;

        /* value.strip().split('\n'): blank lines around the value go, blank lines inside stay */
        while (first < last && !*k->lines[first].text)
                first++;
        while (last > first && !*k->lines[last - 1].text)
                last--;
        if (first == last)
                return topo_fail(st->ret_error, -EINVAL, "%s:%u: nvm_size in [%s] is empty; write e.g. nvm_size = 512B",
                                 ini->name, k->lineno, s->name);

        size_t lza_lines = 0;
        for (size_t i = first; i < last; i++) {
                const char *text = k->lines[i].text;
                unsigned lineno = k->lines[i].lineno;
                if (!*text)
                        return topo_fail(st->ret_error, -EINVAL, "%s:%u: blank line inside nvm_size of [%s]; remove it",
                                         ini->name, lineno, s->name);
                const char *at = strchr(text, '@');
                if (at && strchr(at + 1, '@'))
                        return topo_fail(st->ret_error, -EINVAL, "%s:%u: bad nvm_size syntax '%.60s' in [%s]; write SIZE @ 0xADDRESS",
                                         ini->name, lineno, text, s->name);
                int mode = at ? TOPOLOGY_PHYSADDR : TOPOLOGY_LZA;
                if (st->mode >= 0 && mode != st->mode)
                        return topo_fail(st->ret_error, -EINVAL, "%s:%u: '%.60s' in [%s] is %s but line %u made the file %s; write every nvm_size line as SIZE @ 0xADDRESS (PHYSADDR) or every one as a plain size (LZA)",
                                         ini->name, lineno, text, s->name,
                                         mode == TOPOLOGY_LZA ? "a plain size (LZA)" : "a range (PHYSADDR)", st->mode_lineno,
                                         st->mode == TOPOLOGY_LZA ? "LZA" : "PHYSADDR");
                if (st->mode < 0) {
                        st->mode = mode;
                        st->mode_lineno = lineno;
                }

                uint64_t size, addr = 0;
                r = ini_size(ini, lineno, "nvm_size", text, at ? (size_t) (at - text) : strlen(text), bs, &size, st->ret_error);
                if (r < 0)
                        return r;
                if (at) {
                        const char *a = at + 1;
                        while (is_blank(*a))
                                a++;
                        if (a[0] != '0' || (a[1] != 'x' && a[1] != 'X'))
                                return topo_fail(st->ret_error, -EINVAL, "%s:%u: address '%.40s' in [%s] must start with 0x; write e.g. 88B @ 0xf00000000000",
                                                 ini->name, lineno, a, s->name);
                        const char *h = a + 2;
                        bool any = false;
                        for (; isxdigit((unsigned char) *h); h++) {
                                if (addr >> 60)
                                        return topo_fail(st->ret_error, -EINVAL, "%s:%u: address '%.40s' in [%s] does not fit 64 bits",
                                                         ini->name, lineno, a, s->name);
                                int c = tolower((unsigned char) *h);
                                addr = addr << 4 | (uint64_t) (c <= '9' ? c - '0' : c - 'a' + 10);
                                any = true;
                        }
                        if (!any || *h)
                                return topo_fail(st->ret_error, -EINVAL, "%s:%u: address '%.40s' in [%s] is not a hexadecimal number; write e.g. 0xf00000000000",
                                                 ini->name, lineno, a, s->name);
                        if (addr == 0 && size == 0)
                                continue;       /* "0 @ 0x0": this node contributes no FAM */
                }
                if (size % bs)
                        return topo_fail(st->ret_error, -EINVAL, "%s:%u: nvm_size '%.60s' in [%s] is not a whole number of %s books; use a multiple of %s or the B suffix",
                                         ini->name, lineno, text, s->name, size_str(bs, bsbuf), bsbuf);
                uint64_t books = size / bs;
                if (books == 0)
                        return topo_fail(st->ret_error, -EINVAL, "%s:%u: nvm_size '%.60s' in [%s] is 0 books; give at least one book%s",
                                         ini->name, lineno, text, s->name, at ? ", or write 0 @ 0x0 for a node without FAM" : "");
                if (at) {
                        if (addr < bs)
                                return topo_fail(st->ret_error, -EINVAL, "%s:%u: address 0x%" PRIx64 " in [%s] is below the book size %s; FAM ranges start at or above one book",
                                                 ini->name, lineno, addr, s->name, size_str(bs, bsbuf));
                        if (addr % bs)
                                return topo_fail(st->ret_error, -EINVAL, "%s:%u: address 0x%" PRIx64 " in [%s] is not book-aligned; use a multiple of %s (0x%" PRIx64 ")",
                                                 ini->name, lineno, addr, s->name, size_str(bs, bsbuf), bs);
                        if (addr >= PHYS_ADDR_LIMIT || size > PHYS_ADDR_LIMIT - addr)
                                return topo_fail(st->ret_error, -EINVAL, "%s:%u: range '%.60s' in [%s] ends beyond 2^63, which a book id (SQLite INTEGER) cannot hold",
                                                 ini->name, lineno, text, s->name);
                        if (books > TOPOLOGY_MAX_PHYS_BOOKS - st->phys_books)
                                return topo_fail(st->ret_error, -EINVAL, "%s:%u: with '%.60s' the PHYSADDR ranges hold more than %" PRIu64 " books, more than FAM/E lists; use larger books",
                                                 ini->name, lineno, text, TOPOLOGY_MAX_PHYS_BOOKS);
                        st->phys_books += books;
                        struct topology_range *rg = realloc(n->ranges, (n->n_ranges + 1) * sizeof *rg);
                        if (!rg)
                                return -ENOMEM;
                        n->ranges = rg;
                        rg[n->n_ranges++] = (struct topology_range) { size, addr };
                        struct range_src *src = grow(st->ranges, &st->ranges_allocated, st->n_ranges + 1, sizeof *src);
                        if (!src)
                                return -ENOMEM;
                        st->ranges = src;
                        src[st->n_ranges++] = (struct range_src) { addr, size, lineno, node_index };
                        n->books += books;
                } else {
                        if (lza_lines++)
                                return topo_fail(st->ret_error, -EINVAL, "%s:%u: nvm_size of [%s] has a second line; only PHYSADDR ranges (SIZE @ 0xADDRESS) may, so write one size (multiple ranges are illegal in LZA)",
                                                 ini->name, lineno, s->name);
                        r = ini_check_lza_books(ini, lineno, "nvm_size", books, st->ret_error);
                        if (r < 0)
                                return r;
                        n->books = books;
                }
        }
        return 0;
}

/* book_register.py collision(): no two ranges share a byte, within a node or between nodes. */
static int ini_check_overlaps(struct ini_state *st) {
        if (st->n_ranges < 2)
                return 0;
        qsort(st->ranges, st->n_ranges, sizeof *st->ranges, range_src_cmp);
        for (size_t i = 0; i + 1 < st->n_ranges; i++) {
                const struct range_src *a = &st->ranges[i], *b = &st->ranges[i + 1];
                if (b->addr >= a->addr + a->size)
                        continue;
                if (a->lineno > b->lineno) {
                        const struct range_src *x = a;
                        a = b;
                        b = x;
                }
                const struct topology_node *na = &st->t->nodes[a->node], *nb = &st->t->nodes[b->node];
                if (a->node == b->node)
                        return topo_fail(st->ret_error, -EINVAL, "%s:%u: [%s] range 0x%" PRIx64 "-0x%" PRIx64 " overlaps its own range 0x%" PRIx64 "-0x%" PRIx64 " (line %u); ranges may not overlap",
                                         st->ini->name, b->lineno, nb->hostname, b->addr, b->addr + b->size - 1,
                                         a->addr, a->addr + a->size - 1, a->lineno);
                return topo_fail(st->ret_error, -EINVAL, "%s:%u: [%s] range 0x%" PRIx64 "-0x%" PRIx64 " overlaps [%s] range 0x%" PRIx64 "-0x%" PRIx64 " (line %u); ranges may not overlap",
                                 st->ini->name, b->lineno, nb->hostname, b->addr, b->addr + b->size - 1,
                                 na->hostname, a->addr, a->addr + a->size - 1, a->lineno);
        }
        return 0;
}

static int ini_enclosure(struct ini_state *st, const struct ini_section *s, unsigned first_enc_line[static 9]) {
        const struct ini *ini = st->ini;
        struct topology *t = st->t;
        char last = s->name[strlen(s->name) - 1];
        const char *u;
        unsigned lineno;
        int r;

        if (t->n_nodes > 0)
                return topo_fail(st->ret_error, -EINVAL, "%s:%u: [%s] comes after a node section; move enclosure sections before the first node section",
                                 ini->name, s->lineno, s->name);
        if (last < '1' || last > '0' + (int) TOPOLOGY_MAX_ENCLOSURES)
                return topo_fail(st->ret_error, -EINVAL, "%s:%u: [%s]: the last character of an enclosure section's name is its number, 1 to 8; name it e.g. [enclosure1]",
                                 ini->name, s->lineno, s->name);
        unsigned enc = (unsigned) (last - '0');
        if (t->enclosure_u[enc])
                return topo_fail(st->ret_error, -EINVAL, "%s:%u: [%s] describes enclosure %u again (first on line %u); keep one section per enclosure",
                                 ini->name, s->lineno, s->name, enc, first_enc_line[enc]);
        r = ini_scalar(ini, s, ini_key(s, "u"), &u, &lineno, st->ret_error);
        if (r < 0)
                return r;
        if (!*u || has_space(u) || strchr(u, '/'))
                return topo_fail(st->ret_error, -EINVAL, "%s:%u: u = '%.40s' in [%s] is not a rack position: it must be non-empty, without spaces or '/'; write e.g. u = U3",
                                 ini->name, lineno, u, s->name);
        if (!is_ascii(u))
                return topo_fail(st->ret_error, -EINVAL, "%s:%u: u = '%.40s' in [%s] is not ASCII; write e.g. u = U3",
                                 ini->name, lineno, u, s->name);
        if (strchr(u, '%'))
                return topo_fail(st->ret_error, -EINVAL, "%s:%u: u = '%.40s' in [%s] contains '%%', which configparser would interpolate; remove it",
                                 ini->name, lineno, u, s->name);
        t->enclosure_u[enc] = strdup(u);
        if (!t->enclosure_u[enc])
                return -ENOMEM;
        first_enc_line[enc] = s->lineno;
        return 0;
}

static int ini_node(struct ini_state *st, const struct ini_section *s) {
        const struct ini *ini = st->ini;
        struct topology *t = st->t;
        const char *v;
        unsigned lineno;
        uint64_t id;
        int r;

        r = ini_scalar(ini, s, ini_key(s, "node_id"), &v, &lineno, st->ret_error);
        if (r < 0)
                return r;
        if (topo_int_range(v, 1, TOPOLOGY_MAX_NODE_ID, &id) < 0)
                return topo_fail(st->ret_error, -EINVAL, "%s:%u: node_id = '%.40s' in [%s] is not a whole number from 1 to %u (bad node id)",
                           ini->name, lineno, v, s->name, TOPOLOGY_MAX_NODE_ID);
        if (strncmp(s->name, "node", 4) == 0) {
                char want[16];
                snprintf(want, sizeof want, "node%02" PRIu64, id);
                if (strcmp(s->name, want) != 0)
                        return topo_fail(st->ret_error, -EINVAL, "%s:%u: section [%s] does not match node_id = %" PRIu64 "; a nodeXX section must be named [%s]",
                                         ini->name, s->lineno, s->name, id, want);
        }
        for (size_t i = 0; i < t->n_nodes; i++)
                if (t->nodes[i].node_id == id)
                        return topo_fail(st->ret_error, -EINVAL, "%s:%u: [%s] has node_id = %" PRIu64 " like [%s]; give every node its own node_id",
                                         ini->name, lineno, s->name, id, t->nodes[i].hostname);

        size_t index = t->n_nodes++;
        r = node_ini_defaults(&t->nodes[index], (uint32_t) id, s->name);
        if (r < 0)
                return r;
        return ini_nvm_size(st, s, ini_key(s, "nvm_size"), index);
}

int topo_parse_ini(char *buf, size_t len, const char *name, struct topology *t, char **ret_error) {
        struct ini ini = { .name = name, .buf = buf };
        struct ini_state st = { .ini = &ini, .t = t, .mode = -1, .ret_error = ret_error };
        const struct ini_section *g;
        const struct ini_key *k;
        unsigned count_line, lineno;
        const char *v;
        uint64_t node_count;
        char b1[32];
        int r;

        r = ini_read(&ini, len, ret_error);
        if (r < 0)
                goto out;
        g = ini_section(&ini, "global");
        if (!g) {
                r = topo_fail(ret_error, -EINVAL, "%s:1: no [global] section; add [global] with node_count and book_size_bytes",
                              name);
                goto out;
        }
        for (size_t i = 0; i < ini.n_sections; i++) {
                r = ini_check_keys(&ini, &ini.sections[i], ret_error);
                if (r < 0)
                        goto out;
        }

        r = ini_scalar(&ini, g, ini_key(g, "node_count"), &v, &count_line, ret_error);
        if (r < 0)
                goto out;
        if (topo_int_range(v, 1, TOPOLOGY_MAX_NODE_ID, &node_count) < 0) {
                r = topo_fail(ret_error, -EINVAL, "%s:%u: node_count = '%.40s' is not a whole number from 1 to %u; write e.g. node_count = 4",
                              name, count_line, v, TOPOLOGY_MAX_NODE_ID);
                goto out;
        }

        r = ini_scalar(&ini, g, ini_key(g, "book_size_bytes"), &v, &lineno, ret_error);
        if (r < 0)
                goto out;
        r = ini_size(&ini, lineno, "book_size_bytes", v, strlen(v), 0, &st.book_size, ret_error);
        if (r < 0)
                goto out;
        if (!is_power_of_two_u64(st.book_size) || st.book_size < INI_MIN_BOOK || st.book_size > INI_MAX_BOOK) {
                r = topo_fail(ret_error, -EINVAL, "%s:%u: book_size_bytes = %s is not a power of two from 2M to 8G; use e.g. 8M",
                              name, lineno, v);
                goto out;
        }
        t->book_size = st.book_size;
        t->mode = TOPOLOGY_LZA;

        t->nodes = calloc(ini.n_sections + node_count, sizeof *t->nodes);
        if (!t->nodes) {
                r = -ENOMEM;
                goto out;
        }

        k = ini_key(g, "nvm_size_per_node");
        if (k) {
                /* Short form: nodes 1..node_count, other sections ignored. */
                uint64_t bytes;
                r = ini_scalar(&ini, g, k, &v, &lineno, ret_error);
                if (r < 0)
                        goto out;
                r = ini_size(&ini, lineno, "nvm_size_per_node", v, strlen(v), st.book_size, &bytes, ret_error);
                if (r < 0)
                        goto out;
                if (bytes % st.book_size) {
                        r = topo_fail(ret_error, -EINVAL, "%s:%u: nvm_size_per_node = %s is not a whole number of %s books; use a multiple of the book size or the B suffix, e.g. 512B",
                                      name, lineno, v, size_str(st.book_size, b1));
                        goto out;
                }
                r = ini_check_lza_books(&ini, lineno, "nvm_size_per_node", bytes / st.book_size, ret_error);
                if (r < 0)
                        goto out;
                for (uint32_t id = 1; id <= node_count; id++) {
                        struct topology_node *n = &t->nodes[t->n_nodes++];
                        r = node_ini_defaults(n, id, NULL);
                        if (r < 0)
                                goto out;
                        r = node_ini_mcs(n, bytes / st.book_size, st.book_size);
                        if (r < 0)
                                goto out;
                }
        } else {
                unsigned first_enc_line[9] = { 0 };
                for (size_t i = 0; i < ini.n_sections; i++) {
                        const struct ini_section *s = &ini.sections[i];
                        if (s == g)
                                continue;
                        r = is_enclosure_section(s->name) ? ini_enclosure(&st, s, first_enc_line) : ini_node(&st, s);
                        if (r < 0)
                                goto out;
                }
                if (t->n_nodes != node_count) {
                        r = topo_fail(ret_error, -EINVAL, "%s:%u: node_count = %" PRIu64 " but the file describes %zu node%s; %s",
                                      name, count_line, node_count, t->n_nodes, t->n_nodes == 1 ? "" : "s",
                                      t->n_nodes ? "make them agree" : "add one [nodeNN] section per node, or nvm_size_per_node to [global]");
                        goto out;
                }
                if (st.mode == TOPOLOGY_PHYSADDR) {
                        t->mode = TOPOLOGY_PHYSADDR;
                        r = ini_check_overlaps(&st);
                        if (r < 0)
                                goto out;
                } else
                        for (size_t i = 0; i < t->n_nodes; i++) {
                                r = node_ini_mcs(&t->nodes[i], t->nodes[i].books, st.book_size);
                                if (r < 0)
                                        goto out;
                        }
        }

        qsort(t->nodes, t->n_nodes, sizeof *t->nodes, topo_node_cmp);
        for (size_t i = 0; i < t->n_nodes; i++)
                t->books_total += t->nodes[i].books;
        t->nvm_bytes_total = t->books_total * t->book_size;
        r = 0;
out:
        free(st.ranges);
        ini.buf = NULL;                 /* the caller's */
        ini_done(&ini);
        return r;
}
