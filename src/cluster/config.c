/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cluster configuration (docs/config.md): the defaults, a strict INI file (fame.conf) and the
 * cross-key checks.  A file is applied to a copy that replaces the config only when the whole
 * file is good; every value goes through the key table (config-keys.c).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-format.h"
#include "config-internal.h"
#include "fame.h"
#include "log.h"
#include "macro.h"
#include "util.h"

#define CONFIG_MAX_LINE 4096u
#define CONFIG_MAX_ERRORS 20u
/* The metadata area before book 0 is align_up(2 MiB, book_size) (docs/fam-format.md). */
#define CONFIG_META_MIN (UINT64_C(2) << 20)

static bool name_is_valid(const char *name) {
        size_t n = strlen(name);

        if (n < 1 || n > CONFIG_MAX_NAME)
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = name[i];
                bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (i > 0 && (ch == '_' || ch == '-'));
                if (!ok)
                        return false;
        }
        return true;
}

/* $VAR if it is an absolute path, else $HOME/fallback.  NULL with errno set when neither. */
static char *xdg_dir(const char *var, const char *fallback) {
        const char *e = getenv(var), *home = getenv("HOME");
        char *s;

        if (e && e[0] == '/')
                return strdup(e);
        if (!home || home[0] != '/') {
                errno = ENOENT;
                return NULL;
        }
        if (asprintf(&s, "%s/%s", home, fallback) < 0) {
                errno = ENOMEM;
                return NULL;
        }
        return s;
}

/* The name of the account made in Debian nodes: the caller's login name ($USER, $LOGNAME), or
 * "fame" for root or a name Debian would not take.  (No getpwuid(): fame-static has no NSS.) */
static char *default_user(void) {
        const char *name = getenv("USER");
        if (!name || !*name)
                name = getenv("LOGNAME");
        if (name && geteuid() != 0 && config_user_name_ok(name))
                return strdup(name);
        return strdup("fame");
}

/* ---- init, copy, done --------------------------------------------------------------------- */

void config_done(struct fame_config *c) {
        if (!c)
                return;
        free(c->name);
        for (int k = 0; k < _K_MAX; k++) {
                if (config_is_string_key(k))
                        free(*CONFIG_FIELD(c, k, char *));
                free(c->origin[k]);
        }
        for (size_t i = 0; i < FAME_MAX_NODES; i++) {
                for (int w = 0; w < CONFIG_N_NODE_KEYS; w++)
                        free(c->node_origin[i][w]);
        }
        memset(c, 0, sizeof *c);
}

int config_init(struct fame_config *c, const char *name) {
        _cleanup_free_ char *state = NULL, *cache = NULL;

        memset(c, 0, sizeof *c);
        if (!name)
                name = "default";
        if (!name_is_valid(name))
                return log_error_errno(-EINVAL, "Invalid cluster name '%s': use 1 to %u characters from a-z, 0-9, '_' and '-', starting with a letter or digit",
                                       name, CONFIG_MAX_NAME);

        state = xdg_dir("XDG_STATE_HOME", ".local/state");
        if (!state)
                return errno == ENOMEM ? log_error_errno(-ENOMEM, "Out of memory")
                                       : log_error_errno(-ENOENT, "Neither $XDG_STATE_HOME nor $HOME is an absolute path; set HOME, or state_dir and cache_dir");
        cache = xdg_dir("XDG_CACHE_HOME", ".cache");
        if (!cache)
                return errno == ENOMEM ? log_error_errno(-ENOMEM, "Out of memory")
                                       : log_error_errno(-ENOENT, "Neither $XDG_CACHE_HOME nor $HOME is an absolute path; set HOME");

        c->name = strdup(name);
        if (asprintf(&c->state_dir, "%s/fame/%s", state, name) < 0)
                c->state_dir = NULL;
        c->cache_dir = config_path_join(cache, "fame");
        c->fam_path = c->state_dir ? config_path_join(c->state_dir, "fam") : NULL;
        c->kernel = strdup("");
        c->qemu = strdup("qemu-system-x86_64");
        c->overlay = strdup("");
        c->share = strdup("");
        c->release = strdup("bookworm");
        c->mirror = strdup("");
        c->packages = strdup("");
        c->user = default_user();
        c->forward = strdup("");
        c->libvirt_uri = strdup("qemu:///system");
        c->qemu_aarch64 = strdup("qemu-system-aarch64");
        if (!c->libvirt_uri || !c->qemu_aarch64 || !c->name || !c->state_dir || !c->cache_dir || !c->fam_path || !c->kernel || !c->qemu || !c->overlay || !c->share ||
            !c->release || !c->mirror || !c->packages || !c->user || !c->forward) {
                config_done(c);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        /* what FAM software of The Machine's era expects (HPE's NVMM tests want more than
         * 13 GiB); a sparse file, and the nodes map it lazily (FAME_OPEN_LAZY) */
        c->fam_size = UINT64_C(16) << 30;
        c->book_size = FAME_DEFAULT_BOOK_SIZE;
        c->nodes = FAME_DEFAULT_NODES;
        c->nodes_per_enclosure = FAME_DEFAULT_NODES_PER_ENCLOSURE;
        c->enclosures_per_rack = FAME_DEFAULT_ENCLOSURES_PER_RACK;
        c->memory = UINT64_C(256) << 20;
        c->cpus = 1;
        c->tb_size = CONFIG_DEFAULT_TB_SIZE_MIB;
        c->accel = FAME_ACCEL_AUTO;
        c->check = FAME_CHECK_OFF;
        c->librarian_auth = FAME_LIBRARIAN_AUTH_SECRET;
        c->kind = FAME_KIND_DISKLESS;
        c->disk_size = UINT64_C(4) << 30;
        c->ready_timeout = 120;
        c->down_timeout = 15;
        for (size_t i = 0; i < FAME_MAX_NODES; i++)
                c->node[i] = (struct fame_node_config) { .memory = c->memory, .cpus = c->cpus };
        return 0;
}

/* Replaces *p by a copy of itself; NULL when that fails. */
static int dup_str(char **p) {
        if (*p && !(*p = strdup(*p)))
                return -ENOMEM;
        return 0;
}

/* A deep copy; on failure dst is zeroed. */
static int config_copy(const struct fame_config *src, struct fame_config *dst) {
        int r = 0;

        *dst = *src;
        r |= dup_str(&dst->name);
        for (int k = 0; k < _K_MAX; k++) {
                if (config_is_string_key(k))
                        r |= dup_str(CONFIG_FIELD(dst, k, char *));
                r |= dup_str(&dst->origin[k]);
        }
        for (size_t i = 0; i < FAME_MAX_NODES; i++) {
                for (int w = 0; w < CONFIG_N_NODE_KEYS; w++)
                        r |= dup_str(&dst->node_origin[i][w]);
        }
        if (r < 0) {
                /* A failed strdup() left NULL behind, so every pointer is dst's own. */
                config_done(dst);
                return -ENOMEM;
        }
        return 0;
}

char *config_default_path(const char *name) {
        _cleanup_free_ char *dir = xdg_dir("XDG_CONFIG_HOME", ".config");
        char *s;

        if (!dir)
                return NULL;
        if (asprintf(&s, "%s/fame/%s.conf", dir, name ? name : "default") < 0) {
                errno = ENOMEM;
                return NULL;
        }
        return s;
}

/* ---- the file ----------------------------------------------------------------------------- */

enum section { SEC_NONE, SEC_BAD, SEC_CLUSTER, SEC_NODE };

struct parser {
        struct fame_config *c;
        const char *path;
        const char *base;               /* the file's directory, absolute */
        unsigned line;
        unsigned errors;
        enum section section;
        uint32_t node;                  /* SEC_NODE: 1..128 */
        unsigned cluster_line;          /* where [cluster] started, 0 = not yet */
        unsigned node_line[FAME_MAX_NODES];
        unsigned key_line[_K_MAX];
        unsigned node_key_line[FAME_MAX_NODES][CONFIG_N_NODE_KEYS];
};

static void parse_error(struct parser *p, const char *fmt, ...) _printf_(2, 3);
static void parse_error(struct parser *p, const char *fmt, ...) {
        char what[1024];
        va_list ap;

        p->errors++;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        config_error("%s:%u: %s", p->path, p->line, what);
}

static char *trim(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = 0;
        return s;
}

/* Removes the quotes of "..." in place, undoing \" and \\.  Returns NULL or what is wrong. */
static const char *unquote(char *v) {
        char *in = v + 1, *out = v;

        for (;;) {
                if (*in == 0)
                        return "the closing \" is missing";
                if (*in == '"')
                        break;
                if (*in == '\\') {
                        in++;
                        if (*in != '"' && *in != '\\')
                                return "only \\\" and \\\\ may follow a backslash in a quoted value";
                }
                *out++ = *in++;
        }
        if (in[1] != 0)
                return "there is text after the closing \"";
        *out = 0;
        return NULL;
}

static void parse_section(struct parser *p, char *s) {
        char *end = strchr(s, ']');
        uint32_t n;

        if (!end || end[1] != 0) {
                parse_error(p, "'%.80s' is not a section header; expected [cluster] or [nodeNN]", s);
                p->section = SEC_BAD;
                return;
        }
        *end = 0;
        s++;
        if (strcmp(s, "cluster") == 0) {
                if (p->cluster_line) {
                        parse_error(p, "section [cluster] appears twice (first at line %u)", p->cluster_line);
                        p->section = SEC_BAD;
                        return;
                }
                p->cluster_line = p->line;
                p->section = SEC_CLUSTER;
                return;
        }
        if (parse_node_name(s, true, &n) >= 0) {
                if (p->node_line[n - 1]) {
                        parse_error(p, "section [%s] appears twice (first at line %u)", s, p->node_line[n - 1]);
                        p->section = SEC_BAD;
                        return;
                }
                p->node_line[n - 1] = p->line;
                p->section = SEC_NODE;
                p->node = n;
                return;
        }
        if (strncmp(s, "node", 4) == 0)
                parse_error(p, "unknown section [%.80s]; nodes are [node01] to [node%u], with at least two digits",
                            s, FAME_MAX_NODES);
        else
                parse_error(p, "unknown section [%.80s]; expected [cluster] or [node01] to [node%u]", s, FAME_MAX_NODES);
        p->section = SEC_BAD;
}

static void parse_key(struct parser *p, char *s, char *eq) {
        _cleanup_free_ char *origin = NULL;
        char hint[512];
        const char *why;
        char *key, *value;
        int k;

        *eq = 0;
        key = trim(s);
        value = trim(eq + 1);
        if (!*key) {
                parse_error(p, "the key name before '=' is missing");
                return;
        }
        if (p->section == SEC_NONE) {
                parse_error(p, "'%.80s' comes before any section; put it under [cluster] or [nodeNN]", key);
                return;
        }
        if (p->section == SEC_BAD)
                return;         /* the section header was reported already */
        if (value[0] == '"') {
                why = unquote(value);
                if (why) {
                        parse_error(p, "%.80s: %s", key, why);
                        return;
                }
        }
        if (asprintf(&origin, "%s:%u", p->path, p->line) < 0) {
                origin = NULL;
                p->errors++;
                log_error_errno(-ENOMEM, "Out of memory");
                return;
        }

        if (p->section == SEC_NODE) {
                for (int w = 0; w < CONFIG_N_NODE_KEYS; w++) {
                        if (strcmp(key, config_node_keys[w]) != 0)
                                continue;
                        if (p->node_key_line[p->node - 1][w]) {
                                parse_error(p, "duplicate key '%s' in [node%02" PRIu32 "] (first set at line %u)",
                                            key, p->node, p->node_key_line[p->node - 1][w]);
                                return;
                        }
                        p->node_key_line[p->node - 1][w] = p->line;
                        if (config_set_node_key(p->c, p->node, w, value, origin, key) < 0)
                                p->errors++;
                        return;
                }
                if (config_find_key(key) >= 0)
                        parse_error(p, "'%s' cannot be set per node; [node%02" PRIu32 "] takes memory and cpus", key, p->node);
                else
                        parse_error(p, "unknown key '%.80s' in [node%02" PRIu32 "]%s", key, p->node,
                                    config_key_hint(key, true, false, hint, sizeof hint));
                return;
        }

        k = config_find_key(key);
        if (k < 0) {
                char *dot = strchr(key, '.');
                uint32_t n;
                if (dot && config_parse_node_prefix(key, dot, &n) >= 0)
                        parse_error(p, "unknown key '%.80s' in [cluster]; put node keys in a [node%02" PRIu32 "] section",
                                    key, n);
                else
                        parse_error(p, "unknown key '%.80s' in [cluster]%s", key, config_key_hint(key, false, false, hint, sizeof hint));
                return;
        }
        if (p->key_line[k]) {
                parse_error(p, "duplicate key '%s' in [cluster] (first set at line %u)", key, p->key_line[k]);
                return;
        }
        p->key_line[k] = p->line;
        if (config_set_key(p->c, k, value, origin, p->base, key) < 0)
                p->errors++;
}

static void parse_line(struct parser *p, char *line) {
        char *s = trim(line), *eq;

        if (!*s || *s == '#' || *s == ';')
                return;
        if (*s == '[') {
                parse_section(p, s);
                return;
        }
        eq = strchr(s, '=');
        if (!eq) {
                parse_error(p, "'%.80s' is not a 'key = value' line, a [section] or a comment", s);
                return;
        }
        parse_key(p, s, eq);
}

/* The absolute directory of path, for relative paths in the file. */
static char *file_dir(const char *path) {
        _cleanup_free_ char *cwd = NULL, *dir = NULL;
        const char *slash = strrchr(path, '/');

        if (slash == path)
                return strdup("/");
        if (slash)
                dir = strndup(path, (size_t) (slash - path));
        else
                dir = strdup(".");
        if (!dir)
                return NULL;
        if (dir[0] == '/')
                return TAKE_PTR(dir);
        cwd = getcwd(NULL, 0);
        if (!cwd)
                return NULL;
        return strcmp(dir, ".") == 0 ? TAKE_PTR(cwd) : config_path_join(cwd, dir);
}

int config_load_file(struct fame_config *c, const char *path) {
        _cleanup_free_ char *base = NULL;
        struct fame_config t;
        struct parser p = { .path = path };
        char buf[CONFIG_MAX_LINE + 1];
        FILE *f;
        int r;

        f = fopen(path, "re");
        if (!f)
                return log_error_errno(negative_errno(), "Failed to open config file '%s': %m", path);
        base = file_dir(path);
        if (!base) {
                r = negative_errno();
                fclose(f);
                return log_error_errno(r, "Failed to find the directory of config file '%s': %m", path);
        }
        r = config_copy(c, &t);
        if (r < 0) {
                fclose(f);
                return log_error_errno(r, "Out of memory");
        }
        p.c = &t;
        p.base = base;

        /* Read by hand: a line is at most CONFIG_MAX_LINE characters and holds no NUL byte. */
        for (bool eof = false; !eof && p.errors < CONFIG_MAX_ERRORS;) {
                size_t len = 0;
                bool too_long = false, nul = false;
                int ch;

                while ((ch = getc(f)) != EOF && ch != '\n') {
                        if (ch == 0)
                                nul = true;
                        if (len < CONFIG_MAX_LINE)
                                buf[len++] = (char) ch;
                        else
                                too_long = true;
                }
                if (ch == EOF) {
                        if (ferror(f)) {
                                r = log_error_errno(negative_errno(), "Failed to read config file '%s': %m", path);
                                fclose(f);
                                config_done(&t);
                                return r;
                        }
                        eof = true;
                        if (len == 0)
                                break;
                }
                buf[len] = 0;
                p.line++;
                if (too_long)
                        parse_error(&p, "the line is longer than %u characters", CONFIG_MAX_LINE);
                else if (nul)
                        parse_error(&p, "the line holds a NUL byte; is this a text file?");
                else
                        parse_line(&p, buf);
        }
        fclose(f);
        if (p.errors >= CONFIG_MAX_ERRORS)
                log_error("%s:%u: too many errors; stopped reading here", path, p.line);
        if (p.errors > 0) {
                config_done(&t);
                return -EINVAL;
        }
        config_done(c);
        *c = t;
        return 0;
}

/* ---- cross checks ------------------------------------------------------------------------- */

/* The checks of fame_geometry_compute() (lib/format.c), in its words, so that config_check()
 * can name the key to change in the same single line without replacing libfame's
 * process-wide log callback.  test-config compares the texts with libfame's.  Returns the key
 * to blame, or -1. */
static int geometry_problem(const struct fame_config *c, char *err, size_t errlen) {
        uint64_t total = c->fam_size, book = c->book_size;
        uint32_t nodes = c->nodes;
        char a[32], b[32], bs[32];

        if (!is_power_of_two_u64(total)) {
                snprintf(err, errlen, "FAM size %s (%" PRIu64 " bytes) is not a power of two (IVSHMEM's BAR2 must be); use e.g. 512M, 1G or 2G",
                         format_size_compact(total, a, sizeof a), total);
                return K_FAM_SIZE;
        }
        if (!is_power_of_two_u64(book) || book < FAME_MIN_BOOK_SIZE || book > FAME_MAX_BOOK_SIZE) {
                snprintf(err, errlen, "book size %s is not a power of two from 2M to 8G", format_size_compact(book, a, sizeof a));
                return K_BOOK_SIZE;
        }
        if (nodes < 1 || nodes > FAME_MAX_NODES) {
                snprintf(err, errlen, "node count %" PRIu32 " is out of range (1 to %u)", nodes, FAME_MAX_NODES);
                return K_NODES;
        }
        if (c->nodes_per_enclosure < 1 || c->nodes_per_enclosure > FAME_MAX_NODES) {
                snprintf(err, errlen, "nodes per enclosure %" PRIu32 " is out of range (1 to %u)", c->nodes_per_enclosure, FAME_MAX_NODES);
                return K_NODES_PER_ENCLOSURE;
        }
        if (c->enclosures_per_rack < 1 || c->enclosures_per_rack > FAME_MAX_NODES) {
                snprintf(err, errlen, "enclosures per rack %" PRIu32 " is out of range (1 to %u)", c->enclosures_per_rack, FAME_MAX_NODES);
                return K_ENCLOSURES_PER_RACK;
        }

        uint64_t book_area = book > CONFIG_META_MIN ? book : CONFIG_META_MIN;   /* both powers of two */
        uint64_t min_size = book_area + (uint64_t) nodes * 4 * book;
        if (total < min_size) {
                format_size_compact(UINT64_C(1) << (64 - __builtin_clzll(min_size - 1)), b, sizeof b);
                snprintf(err, errlen, "FAM size %s is too small for %" PRIu32 " node(s) with %s books (metadata plus 4 books per node); "
                         "use fam_size = %s or more (fame up --fam-size %s), or leave fam_size unset",
                         format_size_compact(total, a, sizeof a), nodes, format_size_compact(book, bs, sizeof bs), b, b);
                return K_FAM_SIZE;
        }
        uint64_t per_node = ((total - book_area) / book / nodes) & ~UINT64_C(3);
        if (per_node > FAME_MAX_BOOKS_PER_NODE) {
                uint64_t need = book;
#define BOOKS_PER_NODE(bsz) ((total - ((bsz) > CONFIG_META_MIN ? (bsz) : CONFIG_META_MIN)) / (bsz) / nodes)
                while (need < FAME_MAX_BOOK_SIZE && BOOKS_PER_NODE(need) > FAME_MAX_BOOKS_PER_NODE)
                        need <<= 1;
                if (BOOKS_PER_NODE(need) > FAME_MAX_BOOKS_PER_NODE) {
                        snprintf(err, errlen, "FAM size %s is more than %" PRIu32 " node(s) can address (8192 books of at most 8G each per node); use a smaller fam_size or more nodes",
                                 format_size_compact(total, a, sizeof a), nodes);
                        return K_FAM_SIZE;
                }
#undef BOOKS_PER_NODE
                snprintf(err, errlen, "%" PRIu64 " books per node is more than the %u an interleave group can hold; use --book-size %s or larger",
                         per_node, FAME_MAX_BOOKS_PER_NODE, format_size_compact(need, a, sizeof a));
                return K_BOOK_SIZE;
        }
        return -1;
}

bool config_has_arch(const struct fame_config *c, enum fame_arch a) {
        for (uint32_t i = 0; i < c->nodes; i++)
                if (c->node[i].arch == a)
                        return true;
        return false;
}

static uint64_t fam_size_needed(const struct fame_config *c) {
        uint64_t book = c->book_size;
        uint64_t book_area = book > CONFIG_META_MIN ? book : CONFIG_META_MIN;
        uint64_t min_size = book_area + (uint64_t) c->nodes * 4 * book;
        return UINT64_C(1) << (64 - __builtin_clzll(min_size - 1));
}

void config_size_fam(struct fame_config *c) {
        if (c->origin[K_FAM_SIZE] || !is_power_of_two_u64(c->book_size) || c->nodes < 1 || c->nodes > FAME_MAX_NODES)
                return;
        uint64_t need = fam_size_needed(c);
        if (need > c->fam_size)
                c->fam_size = need;
}

int config_check(const struct fame_config *c) {
        char err[512], v[64];
        int k;

        k = geometry_problem(c, err, sizeof err);
        if (k >= 0)
                return log_error_errno(-EINVAL, "%s = %s: %s", config_keys[k].name, config_value_text(c, k, v, sizeof v), err);

        for (uint32_t i = c->nodes; i < FAME_MAX_NODES; i++)
                for (int w = 0; w < CONFIG_N_NODE_KEYS; w++)
                        if (c->node_origin[i][w])
                                return log_error_errno(-EINVAL, "%s: [node%02" PRIu32 "] is configured but nodes = %" PRIu32,
                                                       c->node_origin[i][w], i + 1, c->nodes);

        /* The checker: a TCG plugin, with 64-bit node masks. */
        if (c->check != FAME_CHECK_OFF) {
                if (c->accel == FAME_ACCEL_KVM)
                        return log_error_errno(-EINVAL, "%s: accel = kvm, but check = %s: the checker runs in TCG: set accel = tcg or auto",
                                               config_origin_text(c->origin[K_ACCEL]), check_to_string(c->check));
                if (c->nodes > CHECK_MAX_NODES)
                        return log_error_errno(-EINVAL, "%s: nodes = %" PRIu32 ", but check = %s follows at most %u nodes: use nodes = %u or fewer, or check = off",
                                               config_origin_text(c->origin[K_NODES]), c->nodes, check_to_string(c->check),
                                               CHECK_MAX_NODES, CHECK_MAX_NODES);
        }

        /* The authority is libfame; should the copy above ever disagree, it logs one line. */
        struct fame_create_params params = {
                .total_size = c->fam_size,
                .book_size = c->book_size,
                .node_count = c->nodes,
                .nodes_per_enclosure = c->nodes_per_enclosure,
                .enclosures_per_rack = c->enclosures_per_rack,
                .created = 0,
        };
        struct fame_geometry g;
        return fame_geometry_compute(&params, &g) < 0 ? -EINVAL : 0;
}

