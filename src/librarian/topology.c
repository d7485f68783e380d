/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Librarian topology (topology.h, docs/topology.md): the INI and TMCF JSON files that
 * tm-librarian's book_register.py reads, turned into the rows of its database, and the INI
 * text FAM/E writes for a FAM.
 *
 * Rule of thumb: whatever this file accepts, book_register.py accepts with the same meaning.
 * A few things the original accepts are refused here with a message saying why (zero-book
 * short forms, white space in section names, [DEFAULT], duplicate node ids, ...); they are
 * listed in docs/topology.md under "Known limits".
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fame.h"
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

/* ---- helpers -------------------------------------------------------------------------------- */

/* Sets *ret_error (when wanted) to one line; control characters from the input become '?'. */
_printf_(3, 4)
static int fail(char **ret_error, int r, const char *fmt, ...) {
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

static void *grow(void *p, size_t *allocated, size_t need, size_t size) {
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
static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}

static char *strip(char *s) {
        while (is_blank(*s))
                s++;
        char *e = s + strlen(s);
        while (e > s && is_blank(e[-1]))
                e--;
        *e = 0;
        return s;
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
static int py_multiplier(const char *s, size_t len, uint64_t book_size, int64_t *ret) {
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
static int parse_int_range(const char *s, int64_t min, int64_t max, uint64_t *ret) {
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

/* Stored free text must be ASCII: Python strips Unicode white space and int() reads Unicode
 * digits, so other text could mean something else there. */
static bool is_ascii(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s >= 0x80)
                        return false;
        return true;
}

/* 1-based line and column of offset `at`. */
static void line_col(const char *text, size_t at, unsigned *ret_line, unsigned *ret_col) {
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

/* "8M", "1G", "4097": what the INI and error messages show for a byte count. */
static const char *size_str(uint64_t v, char buf[static 32]) {
        return format_size_compact(v, buf, 32);
}

static int node_id_cmp(const void *a, const void *b) {
        const struct topology_node *x = a, *y = b;
        return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

static void node_place(struct topology_node *n, uint32_t node_id) {
        n->node_id = node_id;
        n->rack = 1;
        n->enc = ((node_id - 1) % 80) / 10 + 1;
        n->node = (node_id - 1) % 10 + 1;
}

/* The INI defaults of book_register.py (frdnode.py FRDnode). */
static int node_ini_defaults(struct topology_node *n, uint32_t node_id, const char *hostname) {
        node_place(n, node_id);
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

static bool has_space(const char *s) {
        for (; *s; s++)
                if (isspace((unsigned char) *s))
                        return true;
        return false;
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
                                return fail(ret_error, -EINVAL, "%s:%u: '%.60s' is not a section header; write [name] alone on its line",
                                            name, lineno, s);
                        *close = 0;
                        const char *sname = s + 1;
                        if (strcmp(sname, "DEFAULT") == 0)
                                return fail(ret_error, -EINVAL, "%s:%u: [DEFAULT] is not supported; write its keys into the sections that use them",
                                            name, lineno);
                        if (has_space(sname))
                                return fail(ret_error, -EINVAL, "%s:%u: section name '%.60s' contains white space; write e.g. [node01] or [global]",
                                            name, lineno, sname);
                        for (size_t i = 0; i < ini->n_sections; i++)
                                if (strcmp(ini->sections[i].name, sname) == 0)
                                        return fail(ret_error, -EINVAL, "%s:%u: section [%s] appears again (first on line %u); merge the two",
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
                        return fail(ret_error, -EINVAL, "%s:%u: '%.60s' comes before any section; begin with a [global] section",
                                    name, lineno, s);

                char *d = strpbrk(s, "=:");
                if (!d)
                        return fail(ret_error, -EINVAL, "%s:%u: '%.60s' is not a 'key = value' line; add '= value' or comment it out with '#'",
                                    name, lineno, s);
                char *ne = d;
                while (ne > s && is_blank(ne[-1]))
                        ne--;
                if (ne == s)
                        return fail(ret_error, -EINVAL, "%s:%u: '%.60s' has no key before '%c'; write key = value",
                                    name, lineno, s, *d);
                char *value = d + 1;
                *ne = 0;
                for (char *c = s; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                while (is_blank(*value))
                        value++;
                for (size_t i = 0; i < sect->n_keys; i++)
                        if (strcmp(sect->keys[i].name, s) == 0)
                                return fail(ret_error, -EINVAL, "%s:%u: key %s appears again in [%s] (first on line %u); keep one",
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
                        return fail(ret_error, -EINVAL, "%s:%u: %s in [%s] continues on an indented line; only nvm_size may have more than one line, so write the value on line %u",
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
                        return fail(ret_error, -EINVAL, "%s:%u: [%s] has no %s; %s needs %s",
                                    ini->name, s->lineno, s->name, *r, what, req);
                }
        for (size_t i = 0; i < s->n_keys; i++)
                if (!in_list(legal, s->keys[i].name))
                        return fail(ret_error, -EINVAL, "%s:%u: [%s] has unknown key '%s'; the keys of %s are %s",
                                    ini->name, s->keys[i].lineno, s->name, s->keys[i].name, what, allowed);
        return 0;
}

/* A size from the file, with the message the caller's key deserves. */
static int ini_size(const struct ini *ini, unsigned lineno, const char *what, const char *text, size_t len,
                    uint64_t book_size, uint64_t *ret, char **ret_error) {
        int64_t v = 0;
        int r = py_multiplier(text, len, book_size, &v);
        if (r == 0 && v < 0)
                return fail(ret_error, -EINVAL, "%s:%u: %s '%.*s' is negative; write a size of at least 0",
                            ini->name, lineno, what, (int) len, text);
        *ret = (uint64_t) v;
        if (r == -EDOM)
                return fail(ret_error, -EINVAL, "%s:%u: %s '%.*s' uses B (books), which only nvm_size and nvm_size_per_node may; write bytes with K, M, G or T, e.g. 8M",
                            ini->name, lineno, what, (int) len, text);
        if (r == -ERANGE)
                return fail(ret_error, -EINVAL, "%s:%u: %s '%.*s' is too large; use a smaller size",
                            ini->name, lineno, what, (int) len, text);
        if (r < 0)
                return fail(ret_error, -EINVAL, "%s:%u: %s '%.*s' is not a size; write a whole number with an optional suffix K, M, G, T%s, e.g. %s",
                            ini->name, lineno, what, (int) len, text, book_size ? " or B (books)" : "",
                            book_size ? "512B" : "8M");
        return 0;
}

/* The books of an LZA node must fill 4 media controllers and one interleave group. */
static int ini_check_lza_books(const struct ini *ini, unsigned lineno, const char *what, uint64_t books,
                               char **ret_error) {
        if (books == 0)
                return fail(ret_error, -EINVAL, "%s:%u: %s is 0 books; give each node at least 4 books, e.g. 4B",
                            ini->name, lineno, what);
        if (books % TOPOLOGY_MCS_PER_NODE) {
                uint64_t lo = books / TOPOLOGY_MCS_PER_NODE * TOPOLOGY_MCS_PER_NODE;
                if (lo == 0)
                        return fail(ret_error, -EINVAL, "%s:%u: %s is %" PRIu64 " books, not a multiple of 4 (a node has 4 media controllers); use 4B",
                                    ini->name, lineno, what, books);
                return fail(ret_error, -EINVAL, "%s:%u: %s is %" PRIu64 " books, not a multiple of 4 (a node has 4 media controllers); use %" PRIu64 "B or %" PRIu64 "B",
                            ini->name, lineno, what, books, lo, lo + TOPOLOGY_MCS_PER_NODE);
        }
        if (books > TOPOLOGY_MAX_BOOKS_PER_IG)
                return fail(ret_error, -EINVAL, "%s:%u: %s is %" PRIu64 " books, more than the %u of an interleave group (book count too large); use at most %uB or larger books",
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
                return fail(st->ret_error, -EINVAL, "%s:%u: nvm_size in [%s] is empty; write e.g. nvm_size = 512B",
                            ini->name, k->lineno, s->name);

        size_t lza_lines = 0;
        for (size_t i = first; i < last; i++) {
                const char *text = k->lines[i].text;
                unsigned lineno = k->lines[i].lineno;
                if (!*text)
                        return fail(st->ret_error, -EINVAL, "%s:%u: blank line inside nvm_size of [%s]; remove it",
                                    ini->name, lineno, s->name);
                const char *at = strchr(text, '@');
                if (at && strchr(at + 1, '@'))
                        return fail(st->ret_error, -EINVAL, "%s:%u: bad nvm_size syntax '%.60s' in [%s]; write SIZE @ 0xADDRESS",
                                    ini->name, lineno, text, s->name);
                int mode = at ? TOPOLOGY_PHYSADDR : TOPOLOGY_LZA;
                if (st->mode >= 0 && mode != st->mode)
                        return fail(st->ret_error, -EINVAL, "%s:%u: '%.60s' in [%s] is %s but line %u made the file %s; write every nvm_size line as SIZE @ 0xADDRESS (PHYSADDR) or every one as a plain size (LZA)",
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
                                return fail(st->ret_error, -EINVAL, "%s:%u: address '%.40s' in [%s] must start with 0x; write e.g. 88B @ 0xf00000000000",
                                            ini->name, lineno, a, s->name);
                        const char *h = a + 2;
                        bool any = false;
                        for (; isxdigit((unsigned char) *h); h++) {
                                if (addr >> 60)
                                        return fail(st->ret_error, -EINVAL, "%s:%u: address '%.40s' in [%s] does not fit 64 bits",
                                                    ini->name, lineno, a, s->name);
                                int c = tolower((unsigned char) *h);
                                addr = addr << 4 | (uint64_t) (c <= '9' ? c - '0' : c - 'a' + 10);
                                any = true;
                        }
                        if (!any || *h)
                                return fail(st->ret_error, -EINVAL, "%s:%u: address '%.40s' in [%s] is not a hexadecimal number; write e.g. 0xf00000000000",
                                            ini->name, lineno, a, s->name);
                        if (addr == 0 && size == 0)
                                continue;       /* "0 @ 0x0": this node contributes no FAM */
                }
                if (size % bs)
                        return fail(st->ret_error, -EINVAL, "%s:%u: nvm_size '%.60s' in [%s] is not a whole number of %s books; use a multiple of %s or the B suffix",
                                    ini->name, lineno, text, s->name, size_str(bs, bsbuf), bsbuf);
                uint64_t books = size / bs;
                if (books == 0)
                        return fail(st->ret_error, -EINVAL, "%s:%u: nvm_size '%.60s' in [%s] is 0 books; give at least one book%s",
                                    ini->name, lineno, text, s->name, at ? ", or write 0 @ 0x0 for a node without FAM" : "");
                if (at) {
                        if (addr < bs)
                                return fail(st->ret_error, -EINVAL, "%s:%u: address 0x%" PRIx64 " in [%s] is below the book size %s; FAM ranges start at or above one book",
                                            ini->name, lineno, addr, s->name, size_str(bs, bsbuf));
                        if (addr % bs)
                                return fail(st->ret_error, -EINVAL, "%s:%u: address 0x%" PRIx64 " in [%s] is not book-aligned; use a multiple of %s (0x%" PRIx64 ")",
                                            ini->name, lineno, addr, s->name, size_str(bs, bsbuf), bs);
                        if (addr >= PHYS_ADDR_LIMIT || size > PHYS_ADDR_LIMIT - addr)
                                return fail(st->ret_error, -EINVAL, "%s:%u: range '%.60s' in [%s] ends beyond 2^63, which a book id (SQLite INTEGER) cannot hold",
                                            ini->name, lineno, text, s->name);
                        if (books > TOPOLOGY_MAX_PHYS_BOOKS - st->phys_books)
                                return fail(st->ret_error, -EINVAL, "%s:%u: with '%.60s' the PHYSADDR ranges hold more than %" PRIu64 " books, more than FAM/E lists; use larger books",
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
                                return fail(st->ret_error, -EINVAL, "%s:%u: nvm_size of [%s] has a second line; only PHYSADDR ranges (SIZE @ 0xADDRESS) may, so write one size (multiple ranges are illegal in LZA)",
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
                        return fail(st->ret_error, -EINVAL, "%s:%u: [%s] range 0x%" PRIx64 "-0x%" PRIx64 " overlaps its own range 0x%" PRIx64 "-0x%" PRIx64 " (line %u); ranges may not overlap",
                                    st->ini->name, b->lineno, nb->hostname, b->addr, b->addr + b->size - 1,
                                    a->addr, a->addr + a->size - 1, a->lineno);
                return fail(st->ret_error, -EINVAL, "%s:%u: [%s] range 0x%" PRIx64 "-0x%" PRIx64 " overlaps [%s] range 0x%" PRIx64 "-0x%" PRIx64 " (line %u); ranges may not overlap",
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
                return fail(st->ret_error, -EINVAL, "%s:%u: [%s] comes after a node section; move enclosure sections before the first node section",
                            ini->name, s->lineno, s->name);
        if (last < '1' || last > '0' + (int) TOPOLOGY_MAX_ENCLOSURES)
                return fail(st->ret_error, -EINVAL, "%s:%u: [%s]: the last character of an enclosure section's name is its number, 1 to 8; name it e.g. [enclosure1]",
                            ini->name, s->lineno, s->name);
        unsigned enc = (unsigned) (last - '0');
        if (t->enclosure_u[enc])
                return fail(st->ret_error, -EINVAL, "%s:%u: [%s] describes enclosure %u again (first on line %u); keep one section per enclosure",
                            ini->name, s->lineno, s->name, enc, first_enc_line[enc]);
        r = ini_scalar(ini, s, ini_key(s, "u"), &u, &lineno, st->ret_error);
        if (r < 0)
                return r;
        if (!*u || has_space(u) || strchr(u, '/'))
                return fail(st->ret_error, -EINVAL, "%s:%u: u = '%.40s' in [%s] is not a rack position: it must be non-empty, without spaces or '/'; write e.g. u = U3",
                            ini->name, lineno, u, s->name);
        if (!is_ascii(u))
                return fail(st->ret_error, -EINVAL, "%s:%u: u = '%.40s' in [%s] is not ASCII; write e.g. u = U3",
                            ini->name, lineno, u, s->name);
        if (strchr(u, '%'))
                return fail(st->ret_error, -EINVAL, "%s:%u: u = '%.40s' in [%s] contains '%%', which configparser would interpolate; remove it",
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
        if (parse_int_range(v, 1, TOPOLOGY_MAX_NODE_ID, &id) < 0)
                return fail(st->ret_error, -EINVAL, "%s:%u: node_id = '%.40s' in [%s] is not a whole number from 1 to %u (bad node id)",
                            ini->name, lineno, v, s->name, TOPOLOGY_MAX_NODE_ID);
        if (strncmp(s->name, "node", 4) == 0) {
                char want[16];
                snprintf(want, sizeof want, "node%02" PRIu64, id);
                if (strcmp(s->name, want) != 0)
                        return fail(st->ret_error, -EINVAL, "%s:%u: section [%s] does not match node_id = %" PRIu64 "; a nodeXX section must be named [%s]",
                                    ini->name, s->lineno, s->name, id, want);
        }
        for (size_t i = 0; i < t->n_nodes; i++)
                if (t->nodes[i].node_id == id)
                        return fail(st->ret_error, -EINVAL, "%s:%u: [%s] has node_id = %" PRIu64 " like [%s]; give every node its own node_id",
                                    ini->name, lineno, s->name, id, t->nodes[i].hostname);

        size_t index = t->n_nodes++;
        r = node_ini_defaults(&t->nodes[index], (uint32_t) id, s->name);
        if (r < 0)
                return r;
        return ini_nvm_size(st, s, ini_key(s, "nvm_size"), index);
}

static int ini_parse(char *buf, size_t len, const char *name, struct topology *t, char **ret_error) {
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
                r = fail(ret_error, -EINVAL, "%s:1: no [global] section; add [global] with node_count and book_size_bytes",
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
        if (parse_int_range(v, 1, TOPOLOGY_MAX_NODE_ID, &node_count) < 0) {
                r = fail(ret_error, -EINVAL, "%s:%u: node_count = '%.40s' is not a whole number from 1 to %u; write e.g. node_count = 4",
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
                r = fail(ret_error, -EINVAL, "%s:%u: book_size_bytes = %s is not a power of two from 2M to 8G; use e.g. 8M",
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
                        r = fail(ret_error, -EINVAL, "%s:%u: nvm_size_per_node = %s is not a whole number of %s books; use a multiple of the book size or the B suffix, e.g. 512B",
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
                        r = fail(ret_error, -EINVAL, "%s:%u: node_count = %" PRIu64 " but the file describes %zu node%s; %s",
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

        qsort(t->nodes, t->n_nodes, sizeof *t->nodes, node_id_cmp);
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

/* ---- TMCF JSON ------------------------------------------------------------------------------ */

struct jctx {
        const char *name;
        char **ret_error;
        struct topology *t;
        size_t nodes_allocated;
        uint64_t book_size;
        const char *rack_full;          /* the rack being read */
};

#define JPATH_MAX 256

/* "parent.member[idx]" ("member" at the top; no index when idx < 0). */
static char *jpath(char buf[static JPATH_MAX], const char *parent, const char *member, long idx) {
        if (idx >= 0)
                snprintf(buf, JPATH_MAX, "%s%s%s[%ld]", parent, *parent ? "." : "", member, idx);
        else
                snprintf(buf, JPATH_MAX, "%s%s%s", parent, *parent ? "." : "", member);
        return buf;
}

/* "NAME: PATH: message" */
_printf_(3, 4)
static int jfail(struct jctx *c, const char *path, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;

        va_start(ap, fmt);
        m = vstrf(fmt, ap);
        va_end(ap);
        if (!m)
                return -ENOMEM;
        int r = fail(c->ret_error, -EINVAL, "%s: %s: %s", c->name, path, m);
        free(m);
        return r;
}

/* The member, or NULL when it is absent or null. */
static struct json_object *jget(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

static int jstring(struct jctx *c, struct json_object *o, const char *parent, const char *key, bool required,
                   const char **ret) {
        struct json_object *v = jget(o, key);
        char path[JPATH_MAX];

        *ret = NULL;
        if (!v) {
                if (required)
                        return jfail(c, jpath(path, parent, key, -1), "is missing; add \"%s\": \"...\"", key);
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return jfail(c, jpath(path, parent, key, -1), "must be a string");
        const char *s = json_object_get_string(v);
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return jfail(c, jpath(path, parent, key, -1), "contains a NUL character");
        *ret = s;
        return 0;
}

/* A number, or a string that tmconfig.py turns into one ("1T"). */
static int jnumber(struct jctx *c, struct json_object *o, const char *parent, const char *key, bool required,
                   uint64_t *ret) {
        struct json_object *v = jget(o, key);
        char path[JPATH_MAX];

        if (!v) {
                if (required)
                        return jfail(c, jpath(path, parent, key, -1), "is missing; add e.g. \"%s\": \"8G\"", key);
                return 0;
        }
        if (json_object_is_type(v, json_type_int)) {
                int64_t i = json_object_get_int64(v);
                if (i < 0)
                        return jfail(c, jpath(path, parent, key, -1), "%" PRId64 " is negative", i);
                *ret = i == INT64_MAX ? json_object_get_uint64(v) : (uint64_t) i;
                return 0;
        }
        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                int64_t i;
                int r = py_multiplier(s, (size_t) json_object_get_string_len(v), 0, &i);
                if (r == -ERANGE)
                        return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" is too large", s);
                if (r < 0)
                        return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" is not a number; write a whole number with an optional suffix K, M, G or T, e.g. \"8G\"",
                                     s);
                if (i < 0)
                        return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" is negative", s);
                *ret = (uint64_t) i;
                return 0;
        }
        return jfail(c, jpath(path, parent, key, -1), "must be a whole number or a string like \"8G\"");
}

/* A text member as it reaches the database: tmconfig.py turns every string that multiplier()
 * reads as a number into that number ("0042" becomes 42).  NULL when absent and optional. */
static int jtext(struct jctx *c, struct json_object *o, const char *parent, const char *key, bool required,
                 char **ret) {
        struct json_object *v = NULL;
        char path[JPATH_MAX];
        int64_t i;
        int r;

        *ret = NULL;
        if (json_object_object_get_ex(o, key, &v) && !v)
                return jfail(c, jpath(path, parent, key, -1), "is null; write a string");
        if (!v) {
                if (required)
                        return jfail(c, jpath(path, parent, key, -1), "is missing; add \"%s\": \"...\"", key);
                return 0;
        }
        if (json_object_is_type(v, json_type_int)) {
                i = json_object_get_int64(v);
                if (i == INT64_MAX)
                        *ret = strf("%" PRIu64, json_object_get_uint64(v));
                else
                        *ret = strf("%" PRId64, i);
                return *ret ? 0 : -ENOMEM;
        }
        if (!json_object_is_type(v, json_type_string))
                return jfail(c, jpath(path, parent, key, -1), "must be a string");
        const char *s = json_object_get_string(v);
        size_t len = (size_t) json_object_get_string_len(v);
        if (strlen(s) != len)
                return jfail(c, jpath(path, parent, key, -1), "contains a NUL character");
        if (!is_ascii(s))
                return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" is not ASCII", s);
        r = py_multiplier(s, len, 0, &i);
        if (r == -ERANGE)
                return jfail(c, jpath(path, parent, key, -1), "\"%.40s\" reads as a number too large for the database", s);
        *ret = r == 0 ? strf("%" PRId64, i) : strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* The non-empty array member, or NULL with *ret set. */
static struct json_object *jarray(struct jctx *c, struct json_object *o, const char *parent, const char *key, int *ret) {
        struct json_object *v = jget(o, key);
        char path[JPATH_MAX];

        *ret = 0;
        if (!v || !json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0) {
                *ret = jfail(c, jpath(path, parent, key, -1), "%s; add at least one entry",
                             !v ? "is missing" : !json_object_is_type(v, json_type_array) ? "must be an array" : "is empty");
                return NULL;
        }
        return v;
}

static struct json_object *jobject_at(struct jctx *c, struct json_object *a, size_t i, const char *path, int *ret) {
        struct json_object *v = json_object_array_get_idx(a, i);
        *ret = 0;
        if (!v || !json_object_is_type(v, json_type_object)) {
                *ret = jfail(c, path, "must be an object");
                return NULL;
        }
        return v;
}

static const char *const studly_keys[] = {
        "MachineVersion", "Datacenter", "Frame", "Rack", "Enclosure", "EncNum", "Node", "MemoryBoard", "SocBoard", NULL
};

/* tmconfig.py finish_child(): no white space, no '/' at either end, known words capitalised. */
static int jcoordinate(struct jctx *c, const char *path, const char *coord, bool top) {
        if (!top && !*coord)
                return jfail(c, path, "is empty; write e.g. \"Node/1\"");
        if (has_space(coord))
                return jfail(c, path, "\"%.80s\" has superfluous white space; remove it", coord);
        if (!top && (coord[0] == '/' || coord[strlen(coord) - 1] == '/'))
                return jfail(c, path, "\"%.80s\" has a leading or trailing '/'; coordinates below the top are relative", coord);
        for (const char *e = coord; *e; ) {
                size_t n = strcspn(e, "/");
                for (const char *const *k = studly_keys; *k; k++)
                        if (strlen(*k) == n && strncasecmp(*k, e, n) == 0 && strncmp(*k, e, n) != 0)
                                return jfail(c, path, "\"%.80s\": case should be \"%s\", not \"%.*s\"", coord, *k, (int) n, e);
                e += n;
                if (*e)
                        e++;
        }
        return 0;
}

/* The number a relative coordinate ends with ("Enclosure/U3/EncNum/2" → 2). */
static int coordinate_number(const char *coord, uint32_t min, uint32_t max, uint32_t *ret) {
        const char *p = strrchr(coord, '/');
        uint64_t v;
        if (parse_int_range(p ? p + 1 : coord, min, max, &v) < 0)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* The coordinate member of the object at path, checked, and joined to its parent's. */
static int jchild_coordinate(struct jctx *c, struct json_object *o, const char *path, const char *parent_coord,
                             const char **ret_rel, char **ret_full) {
        char cpath[JPATH_MAX];
        const char *rel;

        int r = jstring(c, o, path, "coordinate", true, &rel);
        if (r < 0)
                return r;
        r = jcoordinate(c, jpath(cpath, path, "coordinate", -1), rel, false);
        if (r < 0)
                return r;
        if (!(*ret_full = strf("%s/%s", parent_coord, rel)))
                return -ENOMEM;
        *ret_rel = rel;
        return 0;
}

/* The librarian service's bookSize: new style servers[].services[], or old style
 * managementServer.librarian. */
static int json_book_size(struct jctx *c, struct json_object *root) {
        struct json_object *found = NULL, *v;
        char path[JPATH_MAX], where[JPATH_MAX] = "";
        int r;

        v = jget(root, "managementServer");
        if (v && json_object_is_type(v, json_type_object)) {
                struct json_object *l = jget(v, "librarian");
                if (l && json_object_is_type(l, json_type_object)) {
                        found = l;
                        snprintf(where, sizeof where, "managementServer.librarian");
                }
        }
        v = jget(root, "servers");
        for (size_t i = 0; v && json_object_is_type(v, json_type_array) && i < json_object_array_length(v); i++) {
                struct json_object *srv = json_object_array_get_idx(v, i), *svcs;
                if (!srv || !json_object_is_type(srv, json_type_object))
                        continue;
                svcs = jget(srv, "services");
                for (size_t j = 0; svcs && json_object_is_type(svcs, json_type_array) && j < json_object_array_length(svcs); j++) {
                        struct json_object *svc = json_object_array_get_idx(svcs, j), *name;
                        if (!svc || !json_object_is_type(svc, json_type_object))
                                continue;
                        name = jget(svc, "service");
                        if (!name || !json_object_is_type(name, json_type_string) ||
                            strcmp(json_object_get_string(name), "librarian") != 0)
                                continue;
                        snprintf(path, sizeof path, "servers[%zu].services[%zu]", i, j);
                        if (found)
                                return jfail(c, path, "a second librarian service (the first is %s); keep one", where);
                        found = svc;
                        snprintf(where, sizeof where, "%s", path);
                }
        }
        if (!found)
                return fail(c->ret_error, -EINVAL, "%s: servers: no librarian service; add {\"service\": \"librarian\", \"bookSize\": \"8M\"} to servers[].services[] (or managementServer.librarian)",
                            c->name);
        r = jnumber(c, found, where, "bookSize", true, &c->book_size);
        if (r < 0)
                return r;
        if (!is_power_of_two_u64(c->book_size) || c->book_size < JSON_MIN_BOOK || c->book_size > JSON_MAX_BOOK)
                return jfail(c, jpath(path, where, "bookSize", -1), "%" PRIu64 " is not a power of two from 2K to 16G; use e.g. \"8M\"",
                             c->book_size);
        return 0;
}

static struct topology_mc *json_find_mc(struct jctx *c, const char *coordinate) {
        for (size_t i = 0; i < c->t->n_nodes; i++)
                for (size_t j = 0; j < c->t->nodes[i].n_mcs; j++)
                        if (strcmp(c->t->nodes[i].mcs[j].coordinate, coordinate) == 0)
                                return &c->t->nodes[i].mcs[j];
        return NULL;
}

static int json_mcs(struct jctx *c, struct json_object *jn, const char *npath, struct topology_node *n) {
        struct json_object *a;
        char path[JPATH_MAX], mpath[JPATH_MAX];
        int r;

        a = jarray(c, jn, npath, "mediaControllers", &r);
        if (!a)
                return r;
        size_t count = json_object_array_length(a);
        n->mcs = calloc(count, sizeof *n->mcs);
        if (!n->mcs)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                struct topology_mc *mc = &n->mcs[i];
                const char *rel;
                uint32_t num;

                jpath(path, npath, "mediaControllers", (long) i);
                struct json_object *jm = jobject_at(c, a, i, path, &r);
                if (!jm)
                        return r;
                mc->ig = UINT32_MAX;    /* in no interleave group yet */
                n->n_mcs++;
                r = jchild_coordinate(c, jm, path, n->coordinate, &rel, &mc->coordinate);
                if (r < 0)
                        return r;
                if (coordinate_number(rel, 1, 8, &num) < 0)
                        return jfail(c, jpath(mpath, path, "coordinate", -1), "\"%.80s\" must end with the MC number 1 to 8, e.g. MemoryBoard/1/MediaController/1",
                                     rel);
                if (json_find_mc(c, mc->coordinate) != mc)
                        return jfail(c, path, "duplicate MC coordinate %s", mc->coordinate);
                r = jnumber(c, jm, path, "memorySize", true, &mc->memory_size);
                if (r < 0)
                        return r;
                if (mc->memory_size % c->book_size)
                        return jfail(c, jpath(mpath, path, "memorySize", -1), "%" PRIu64 " is not a whole number of books of %" PRIu64 " bytes; use a multiple of bookSize",
                                     mc->memory_size, c->book_size);
                mc->module_size_books = mc->memory_size / c->book_size;
                if (mc->module_size_books > TOPOLOGY_MAX_BOOKS_PER_IG)
                        return jfail(c, jpath(mpath, path, "memorySize", -1), "%" PRIu64 " books, more than the %u an MC may hold (MC has too much NVM); use a larger bookSize",
                                     mc->module_size_books, TOPOLOGY_MAX_BOOKS_PER_IG);
                mc->raw_cid = (uint64_t) (n->enc - 1) << 9 | (uint64_t) (n->node - 1) << 4 | (uint64_t) (num - 1 + 8);
                n->books += mc->module_size_books;
        }
        return 0;
}

static int json_node(struct jctx *c, struct json_object *jn, const char *path, const char *enc_full, uint32_t enc) {
        struct topology *t = c->t;
        struct topology_node *n;
        struct json_object *soc;
        const char *rel;
        char spath[JPATH_MAX], cpath[JPATH_MAX];
        uint32_t num;
        int r;

        n = grow(t->nodes, &c->nodes_allocated, t->n_nodes + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        t->nodes = n;
        n = &t->nodes[t->n_nodes++];
        *n = (struct topology_node) { 0 };

        r = jchild_coordinate(c, jn, path, enc_full, &rel, &n->coordinate);
        if (r < 0)
                return r;
        if (coordinate_number(rel, 1, TOPOLOGY_MAX_NODES_PER_ENCLOSURE, &num) < 0)
                return jfail(c, jpath(cpath, path, "coordinate", -1), "\"%.80s\" must end with the node number in its enclosure, 1 to 10, e.g. Node/1",
                             rel);
        node_place(n, (enc - 1) * 10 + num);
        /* FRDnodes.rack: the last element of the rack's coordinate, a number when it is one */
        {
                const char *slash = c->rack_full ? strrchr(c->rack_full, '/') : NULL;
                const char *name = slash ? slash + 1 : c->rack_full;
                uint32_t rn;
                if (name && *name && parse_uint32(name, 0, UINT32_MAX, &rn) >= 0)
                        n->rack = rn;
                else if (name && *name && !(n->rack_name = strdup(name)))
                        return -ENOMEM;
        }
        for (size_t i = 0; i + 1 < t->n_nodes; i++) {
                if (strcmp(t->nodes[i].coordinate, n->coordinate) == 0)
                        return jfail(c, path, "duplicate node coordinate %s", n->coordinate);
                if (t->nodes[i].node_id == n->node_id)
                        return jfail(c, path, "node_id %" PRIu32 " again (node_id = (enclosure-1)*10 + node; first %s); give every node its own enclosure and node number",
                                     n->node_id, t->nodes[i].coordinate);
        }

        r = jtext(c, jn, path, "serialNumber", true, &n->serial);
        if (r < 0)
                return r;

        jpath(spath, path, "soc", -1);
        soc = jget(jn, "soc");
        if (!soc || !json_object_is_type(soc, json_type_object))
                return jfail(c, spath, "%s; add {\"coordinate\": \"SocBoard/1/Soc/1\", ...}", soc ? "must be an object" : "is missing");
        r = jchild_coordinate(c, soc, spath, n->coordinate, &rel, &n->soc_coordinate);
        if (r < 0)
                return r;
        r = jtext(c, soc, spath, "hostname", false, &n->hostname);
        if (r < 0)
                return r;
        if (!n->hostname && !(n->hostname = strf("node%02" PRIu32, n->node_id)))
                return -ENOMEM;
        r = jtext(c, soc, spath, "macAddress", false, &n->mac);
        if (r < 0)
                return r;
        if (!n->mac && !(n->mac = strdup("n/a")))
                return -ENOMEM;
        r = jtext(c, soc, spath, "tlsPublicCertificate", false, &n->tls_certificate);
        if (r < 0)
                return r;
        /* what tmconfig.py's _FTFY() fills in */
        if (!n->tls_certificate && !(n->tls_certificate = strdup("You forgot an attribute.  BAD GEEK! BAD!")))
                return -ENOMEM;

        return json_mcs(c, jn, path, n);
}

static int json_enclosure(struct jctx *c, struct json_object *je, const char *epath, const char *rack_full,
                          char ***enc_seen, size_t *n_enc_seen, size_t *enc_seen_allocated) {
        struct json_object *nodes;
        char path[JPATH_MAX];
        const char *rel;
        char *enc_full = NULL;
        uint32_t enc;
        int r;

        r = jchild_coordinate(c, je, epath, rack_full, &rel, &enc_full);
        if (r < 0)
                return r;
        char **es = grow(*enc_seen, enc_seen_allocated, *n_enc_seen + 1, sizeof *es);
        if (!es) {
                free(enc_full);
                return -ENOMEM;
        }
        *enc_seen = es;
        es[(*n_enc_seen)++] = enc_full;
        if (coordinate_number(rel, 1, TOPOLOGY_MAX_ENCLOSURES, &enc) < 0)
                return jfail(c, jpath(path, epath, "coordinate", -1), "\"%.80s\" must end with the enclosure number 1 to 8, e.g. Enclosure/1 or Enclosure/U3/EncNum/1",
                             rel);
        for (size_t k = 0; k + 1 < *n_enc_seen; k++)
                if (strcmp(es[k], enc_full) == 0)
                        return jfail(c, epath, "duplicate enclosure coordinate %s", enc_full);
        nodes = jarray(c, je, epath, "nodes", &r);
        if (!nodes)
                return r;
        for (size_t k = 0; k < json_object_array_length(nodes); k++) {
                jpath(path, epath, "nodes", (long) k);
                struct json_object *jn = jobject_at(c, nodes, k, path, &r);
                if (!jn)
                        return r;
                r = json_node(c, jn, path, enc_full, enc);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int json_racks(struct jctx *c, struct json_object *root, const char *top) {
        struct json_object *racks;
        char rpath[JPATH_MAX], epath[JPATH_MAX];
        char **enc_seen = NULL;
        size_t n_enc_seen = 0, enc_seen_allocated = 0;
        int r = 0;

        racks = jarray(c, root, "", "racks", &r);
        for (size_t i = 0; racks && i < json_object_array_length(racks) && r >= 0; i++) {
                _cleanup_free_ char *rack_full = NULL;
                struct json_object *rack, *encs;
                const char *rel;

                jpath(rpath, "", "racks", (long) i);
                rack = jobject_at(c, racks, i, rpath, &r);
                if (!rack)
                        break;
                r = jchild_coordinate(c, rack, rpath, top, &rel, &rack_full);
                if (r < 0)
                        break;
                c->rack_full = rack_full;
                encs = jarray(c, rack, rpath, "enclosures", &r);
                for (size_t j = 0; encs && j < json_object_array_length(encs) && r >= 0; j++) {
                        jpath(epath, rpath, "enclosures", (long) j);
                        struct json_object *je = jobject_at(c, encs, j, epath, &r);
                        if (je)
                                r = json_enclosure(c, je, epath, rack_full, &enc_seen, &n_enc_seen, &enc_seen_allocated);
                }
        }
        for (size_t i = 0; i < n_enc_seen; i++)
                free(enc_seen[i]);
        free(enc_seen);
        return r;
}

static int json_igs(struct jctx *c, struct json_object *root) {
        struct json_object *igs;
        bool seen[TOPOLOGY_MAX_IGS] = { false };
        char path[JPATH_MAX], mpath[JPATH_MAX], gpath[JPATH_MAX];
        int r;

        igs = jarray(c, root, "", "interleaveGroups", &r);
        if (!igs)
                return r;
        for (size_t i = 0; i < json_object_array_length(igs); i++) {
                struct json_object *ig, *mcs;
                uint64_t gid = 0, books = 0;

                jpath(path, "", "interleaveGroups", (long) i);
                ig = jobject_at(c, igs, i, path, &r);
                if (!ig)
                        return r;
                r = jnumber(c, ig, path, "groupId", true, &gid);
                if (r < 0)
                        return r;
                if (gid >= TOPOLOGY_MAX_IGS)
                        return jfail(c, jpath(gpath, path, "groupId", -1), "%" PRIu64 " is out of range (0 to %u)", gid, TOPOLOGY_MAX_IGS - 1);
                if (seen[gid])
                        return jfail(c, jpath(gpath, path, "groupId", -1), "duplicate interleave group ID %" PRIu64 "; number the groups apart", gid);
                seen[gid] = true;
                mcs = jarray(c, ig, path, "mediaControllers", &r);
                if (!mcs)
                        return r;
                for (size_t j = 0; j < json_object_array_length(mcs); j++) {
                        struct json_object *e = json_object_array_get_idx(mcs, j);
                        const char *coord = NULL;
                        jpath(mpath, path, "mediaControllers", (long) j);
                        if (e && json_object_is_type(e, json_type_string))
                                coord = json_object_get_string(e);
                        else if (e && json_object_is_type(e, json_type_object)) {
                                r = jstring(c, e, mpath, "coordinate", true, &coord);
                                if (r < 0)
                                        return r;
                                if (jget(e, "memorySize"))
                                        return jfail(c, mpath, "IG %" PRIu64 " MC %.200s sets memorySize; only the MC under its node may, so remove it here",
                                                     gid, coord);
                        } else
                                return jfail(c, mpath, "must be an absolute MC coordinate string or {\"coordinate\": \"...\"}");
                        struct topology_mc *mc = json_find_mc(c, coord);
                        if (!mc)
                                return jfail(c, mpath, "IG %" PRIu64 " MC %.200s not in any node; use the full coordinate of an MC listed under racks[]",
                                             gid, coord);
                        if (mc->ig != UINT32_MAX)
                                return jfail(c, mpath, "MC %s is already in interleave group %" PRIu32 "; every MC belongs to exactly one group",
                                             coord, mc->ig);
                        mc->ig = (uint32_t) gid;
                        books += mc->module_size_books;
                }
                if (books > TOPOLOGY_MAX_BOOKS_PER_IG)
                        return jfail(c, path, "interleave group %" PRIu64 " holds %" PRIu64 " books, more than %u (book count too large); use a larger bookSize or fewer MCs",
                                     gid, books, TOPOLOGY_MAX_BOOKS_PER_IG);
        }
        for (size_t i = 0; i < c->t->n_nodes; i++)
                for (size_t j = 0; j < c->t->nodes[i].n_mcs; j++)
                        if (c->t->nodes[i].mcs[j].ig == UINT32_MAX)
                                return fail(c->ret_error, -EINVAL, "%s: interleaveGroups: MC %s is not assigned to an IG; add it to exactly one group",
                                            c->name, c->t->nodes[i].mcs[j].coordinate);
        return 0;
}

static int hex4(const char *s, size_t len, size_t i, unsigned *ret) {
        unsigned v = 0;
        if (len - i < 4)
                return -EINVAL;
        for (size_t k = 0; k < 4; k++) {
                int c = tolower((unsigned char) s[i + k]);
                if (!isxdigit(c))
                        return -EINVAL;
                v = v << 4 | (unsigned) (c <= '9' ? c - '0' : c - 'a' + 10);
        }
        *ret = v;
        return 0;
}

/*
 * What json-c (strict) accepts but Python's json.loads() does not: control characters inside
 * strings, single-quoted strings, numbers ending in '.', lone UTF-16 surrogates.  Run on text
 * json-c has parsed.  0, or the offset of the problem and what it is.
 */
static int json_python_check(const char *text, size_t len, size_t *ret_at, const char **ret_what) {
        for (size_t i = 0; i < len; i++) {
                char ch = text[i];
                if (ch == '\'') {
                        *ret_at = i;
                        *ret_what = "a single-quoted string; use double quotes";
                        return -EINVAL;
                }
                if (ch == '.' && (i + 1 >= len || !isdigit((unsigned char) text[i + 1]))) {
                        *ret_at = i;
                        *ret_what = "a number ending in '.'; write e.g. 1.0 or 1";
                        return -EINVAL;
                }
                if (ch != '"')
                        continue;
                for (i++; i < len && text[i] != '"'; i++) {
                        unsigned u, lo;
                        if ((unsigned char) text[i] < 0x20) {
                                *ret_at = i;
                                *ret_what = "a control character inside a string; write it as \\n, \\t or \\u00XX";
                                return -EINVAL;
                        }
                        if (text[i] != '\\')
                                continue;
                        i++;
                        if (i < len && text[i] == 'u' && hex4(text, len, i + 1, &u) == 0 && u >= 0xd800 && u <= 0xdfff) {
                                if (u >= 0xdc00 || i + 10 >= len || text[i + 5] != '\\' || text[i + 6] != 'u' ||
                                    hex4(text, len, i + 7, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
                                        *ret_at = i - 1;
                                        *ret_what = "a lone UTF-16 surrogate escape";
                                        return -EINVAL;
                                }
                                i += 6;
                        }
                }
        }
        return 0;
}

static int json_parse(const char *text, size_t len, const char *name, struct topology *t, char **ret_error) {
        struct jctx c = { .name = name, .ret_error = ret_error, .t = t };
        struct json_tokener *tok;
        struct json_object *root;
        const char *top;
        int r;

        if (len > INT32_MAX)
                return fail(ret_error, -EFBIG, "%s: too large for a topology", name);
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, text, (int) len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!root || e != json_tokener_success) {
                unsigned line, col;
                line_col(text, end < len ? end : len, &line, &col);
                json_object_put(root);
                return fail(ret_error, -EINVAL, "%s:%u:%u: not valid JSON (%s); fix the syntax",
                            name, line, col, e == json_tokener_continue ? "unexpected end of text" : json_tokener_error_desc(e));
        }
        size_t at;
        const char *what;
        if (json_python_check(text, len, &at, &what) < 0) {
                unsigned line, col;
                line_col(text, at, &line, &col);
                json_object_put(root);
                return fail(ret_error, -EINVAL, "%s:%u:%u: not valid JSON (%s)", name, line, col, what);
        }
        for (size_t i = end; i < len; i++)
                if (!isspace((unsigned char) text[i])) {
                        json_object_put(root);
                        return fail(ret_error, -EINVAL, "%s: text after the JSON object at byte %zu; remove it", name, i);
                }
        if (!json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return fail(ret_error, -EINVAL, "%s: the top level must be a JSON object", name);
        }

        r = jstring(&c, root, "", "coordinate", true, &top);
        if (r < 0)
                goto out;
        if (strncmp(top, "/MachineVersion/1/", 18) != 0) {
                r = jfail(&c, "coordinate", "\"%.80s\" does not start with /MachineVersion/1/ (illegal MachineVersion); write e.g. /MachineVersion/1/Datacenter/pa1",
                          top);
                goto out;
        }
        r = jcoordinate(&c, "coordinate", top, true);
        if (r < 0)
                goto out;
        r = json_book_size(&c, root);
        if (r < 0)
                goto out;
        t->book_size = c.book_size;
        t->mode = TOPOLOGY_LZA;
        r = json_racks(&c, root, top);
        if (r < 0)
                goto out;
        r = json_igs(&c, root);
        if (r < 0)
                goto out;

        for (size_t i = 0; i < t->n_nodes; i++) {
                struct topology_node *n = &t->nodes[i];
                n->ig = n->mcs[0].ig;
                t->books_total += n->books;
        }
        t->nvm_bytes_total = t->books_total * t->book_size;
        qsort(t->nodes, t->n_nodes, sizeof *t->nodes, node_id_cmp);
        r = 0;
out:
        json_object_put(root);
        return r;
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
                return fail(ret_error, -EINVAL, "%s: contains a NUL byte at offset %zu; a topology is a text file",
                            name, (size_t) ((const char *) memchr(text, 0, len) - text));

        i = utf8_invalid(text, len);
        if (i < len) {
                unsigned line, col;
                line_col(text, i, &line, &col);
                return fail(ret_error, -EINVAL, "%s:%u: invalid UTF-8 (byte 0x%02x at column %u); save the file as UTF-8",
                            name, line, (unsigned char) text[i], col);
        }

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        for (i = 0; i < len && isspace((unsigned char) text[i]); i++)
                ;
        if (i < len && text[i] == '{')
                r = json_parse(text, len, name, t, ret_error);
        else {
                char *buf = malloc(len + 1);
                if (!buf) {
                        topology_free(t);
                        return -ENOMEM;
                }
                if (len)
                        memcpy(buf, text, len);
                buf[len] = 0;
                r = ini_parse(buf, len, name, t, ret_error);
                free(buf);
        }
        if (r < 0) {
                topology_free(t);
                if (r == -ENOMEM && ret_error && !*ret_error)
                        fail(ret_error, r, "%s: out of memory", name);
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
                        return fail(ret_error, r, "%s: larger than %u MiB, too large for a topology", path, TOPOLOGY_MAX_FILE >> 20);
                return fail(ret_error, r, "%s: cannot read: %s", path, strerror(-r));
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

/* ---- FAM/E geometry → INI ------------------------------------------------------------------ */

int topology_node_id_for(const struct fame_geometry *geo, uint32_t n, uint32_t *ret_node_id, char **ret_error) {
        struct fame_coord coord;

        if (ret_error)
                *ret_error = NULL;
        if (!geo || !ret_node_id || geo->nodes_per_enclosure == 0)
                return fail(ret_error, -EINVAL, "no FAM geometry (nodes_per_enclosure is 0)");
        if (geo->nodes_per_enclosure > TOPOLOGY_MAX_NODES_PER_ENCLOSURE)
                return fail(ret_error, -ERANGE, "nodes_per_enclosure = %" PRIu32 " cannot be expressed to the Librarian, whose enclosures hold at most 10 nodes (node_id = (enclosure-1)*10 + node); set nodes_per_enclosure to 10 or less",
                            geo->nodes_per_enclosure);
        if (fame_geometry_coord(geo, n, &coord) < 0)
                return fail(ret_error, -ERANGE, "node %" PRIu32 " is not in the FAM (nodes 1 to %" PRIu32 ")", n, geo->node_count);
        if (coord.enclosure > TOPOLOGY_MAX_ENCLOSURES)
                return fail(ret_error, -ERANGE, "node %" PRIu32 " is in enclosure %" PRIu32 ", but the Librarian has at most 8 enclosures (node_id 1 to 80); use fewer nodes or more nodes_per_enclosure (up to 10)",
                            n, coord.enclosure);
        *ret_node_id = (coord.enclosure - 1) * 10 + coord.node_in_enclosure;
        return 0;
}

int topology_ini_for_geometry(const struct fame_geometry *geo, const char *comment, char **ret, char **ret_error) {
        _cleanup_free_ uint32_t *ids = NULL;
        char *text = NULL;
        size_t text_len = 0;
        char b1[32], b2[32];
        FILE *f;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!geo || !ret)
                return fail(ret_error, -EINVAL, "no FAM geometry");
        *ret = NULL;
        if (!is_power_of_two_u64(geo->book_size) || geo->book_size < INI_MIN_BOOK || geo->book_size > INI_MAX_BOOK)
                return fail(ret_error, -EINVAL, "book size %s is not a power of two from 2M to 8G, which tm-book-register requires",
                            size_str(geo->book_size, b1));
        if (geo->books_per_node < 4 || geo->books_per_node % 4 || geo->books_per_node > TOPOLOGY_MAX_BOOKS_PER_IG)
                return fail(ret_error, -EINVAL, "%" PRIu32 " books per node is not a multiple of 4 from 4 to %u, which tm-book-register requires",
                            geo->books_per_node, TOPOLOGY_MAX_BOOKS_PER_IG);
        if (geo->node_count < 1)
                return fail(ret_error, -EINVAL, "a FAM without nodes has no topology");
        for (const char *p = comment; p && *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return fail(ret_error, -EINVAL, "the topology comment contains a control character; it must fit on one line");

        ids = calloc(geo->node_count, sizeof *ids);
        if (!ids)
                return -ENOMEM;
        for (uint32_t n = 1; n <= geo->node_count; n++) {
                r = topology_node_id_for(geo, n, &ids[n - 1], ret_error);
                if (r < 0)
                        return r;
        }

        f = open_memstream(&text, &text_len);
        if (!f)
                return -ENOMEM;
        size_str(geo->book_size, b1);
        fprintf(f, "# tm-librarian topology%s%s, written by FAM/E (docs/topology.md)\n",
                comment && *comment ? " of " : "", comment ? comment : "");
        fprintf(f, "# %" PRIu32 " node%s x %" PRIu32 " books of %s = %s each; the book area starts at FAM offset 0x%" PRIx64 " (book_area_offset)\n",
                geo->node_count, geo->node_count == 1 ? "" : "s", geo->books_per_node, b1,
                size_str((uint64_t) geo->books_per_node * geo->book_size, b2), geo->book_area_offset);
        fprintf(f, "[global]\nnode_count = %" PRIu32 "\nbook_size_bytes = %s\n", geo->node_count, b1);
        if (geo->nodes_per_enclosure == TOPOLOGY_MAX_NODES_PER_ENCLOSURE)
                fprintf(f, "nvm_size_per_node = %" PRIu32 "B\n", geo->books_per_node);
        else
                for (uint32_t n = 1; n <= geo->node_count; n++) {
                        struct fame_coord coord;
                        (void) fame_geometry_coord(geo, n, &coord);
                        fprintf(f, "\n# FAM/E node %" PRIu32 ": enclosure %" PRIu32 ", node %" PRIu32 " in it\n"
                                "[node%02" PRIu32 "]\nnode_id = %" PRIu32 "\nnvm_size = %" PRIu32 "B\n",
                                n, coord.enclosure, coord.node_in_enclosure, ids[n - 1], ids[n - 1], geo->books_per_node);
                }
        if (ferror(f)) {
                fclose(f);
                free(text);
                return -ENOMEM;
        }
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}
