/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cluster configuration (docs/config.md): defaults, a strict INI file, the command line.
 *
 * One table describes every cluster key; the file parser and config_set() both end in
 * set_cluster_key()/set_node_key(), so a value is checked the same way wherever it comes
 * from.  Values are validated before anything is changed, so a failed set leaves the config as
 * it was; a file is applied to a copy that replaces the config only when the whole file is
 * good.  node[] always holds effective values: a node key that was never set follows the
 * cluster key, as fam follows state_dir until it is set itself.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <unistd.h>

#include "config.h"
#include "fame.h"
#include "log.h"
#include "macro.h"
#include "util.h"

#define CONFIG_MAX_LINE 4096u
#define CONFIG_MAX_ERRORS 20u
#define CONFIG_MAX_CPUS 64u
#define CONFIG_MIN_MEMORY (UINT64_C(64) << 20)
#define CONFIG_MAX_NAME 32u
/* The metadata area before book 0 is align_up(2 MiB, book_size) (docs/fam-format.md). */
#define CONFIG_META_MIN (UINT64_C(2) << 20)

enum {
        K_STATE_DIR,
        K_CACHE_DIR,
        K_FAM,
        K_FAM_SIZE,
        K_BOOK_SIZE,
        K_NODES,
        K_NODES_PER_ENCLOSURE,
        K_ENCLOSURES_PER_RACK,
        K_MEMORY,
        K_CPUS,
        K_ACCEL,
        K_KIND,
        K_ARCH,
        K_BACKEND,
        K_LIBVIRT_URI,
        K_KERNEL,
        K_QEMU,
        K_QEMU_AARCH64,
        K_OVERLAY,
        K_RELEASE,
        K_MIRROR,
        K_PACKAGES,
        K_DISK_SIZE,
        K_USER,
        K_FORWARD,
        K_READY_TIMEOUT,
        K_DOWN_TIMEOUT,
        _K_MAX,
};

_Static_assert(_K_MAX == CONFIG_N_KEYS, "CONFIG_N_KEYS in config.h must count the keys");

enum { NODE_MEMORY, NODE_CPUS, NODE_ARCH };

enum key_type {
        T_PATH,                 /* non-empty; relative → from the file's directory or the cwd */
        T_PATH_OR_EMPTY,        /* the same, or "" */
        T_PROGRAM,              /* a name looked up in $PATH, or a path */
        T_FAM_SIZE,             /* a power of two */
        T_BOOK_SIZE,            /* a power of two, 2M..8G */
        T_MEMORY,               /* >= 64M, whole megabytes */
        T_UINT,                 /* min..max */
        T_ENUM,                 /* one of the names in key_def.names */
        T_URI,                  /* a libvirt connection URI: DRIVER:///... without spaces */
        T_WORD,                 /* [a-z0-9][a-z0-9.+_-]*: a Debian release or package name */
        T_URL_OR_EMPTY,         /* http://, https:// or file:/// URL, or "" */
        T_PACKAGES,             /* Debian package names separated by commas or spaces, or "" */
        T_DISK_SIZE,            /* >= 1G, whole megabytes */
        T_USER,                 /* a login name: [a-z_][a-z0-9_-]{0,31} */
        T_FORWARD,              /* "" or PORT[:HOSTPORT] entries separated by commas */
};

struct key_def {
        const char *name;
        enum key_type type;
        size_t offset;          /* of the field in struct fame_config */
        uint32_t min, max;      /* T_UINT */
        const char *expected;   /* what a good value looks like, for errors (T_ENUM: from names) */
        const struct enum_names *names;         /* T_ENUM */
};

#define FIELD(f) offsetof(struct fame_config, f)

/* In the order `fame config` prints them and docs/config.md lists them. */
static const struct key_def keys[_K_MAX] = {
        [K_STATE_DIR]           = { "state_dir", T_PATH, FIELD(state_dir), 0, 0, "a directory" },
        [K_CACHE_DIR]           = { "cache_dir", T_PATH, FIELD(cache_dir), 0, 0, "a directory" },
        [K_FAM]                 = { "fam", T_PATH, FIELD(fam_path), 0, 0, "a file name" },
        [K_FAM_SIZE]            = { "fam_size", T_FAM_SIZE, FIELD(fam_size), 0, 0,
                                    "a power of two such as 512M, 1G or 2G" },
        [K_BOOK_SIZE]           = { "book_size", T_BOOK_SIZE, FIELD(book_size), 0, 0,
                                    "a power of two from 2M to 8G" },
        [K_NODES]               = { "nodes", T_UINT, FIELD(nodes), 1, FAME_MAX_NODES, "a number" },
        [K_NODES_PER_ENCLOSURE] = { "nodes_per_enclosure", T_UINT, FIELD(nodes_per_enclosure), 1, FAME_MAX_NODES,
                                    "a number" },
        [K_ENCLOSURES_PER_RACK] = { "enclosures_per_rack", T_UINT, FIELD(enclosures_per_rack), 1, FAME_MAX_NODES,
                                    "a number" },
        [K_MEMORY]              = { "memory", T_MEMORY, FIELD(memory), 0, 0,
                                    "a size of at least 64M in whole megabytes, such as 256M or 1G" },
        [K_CPUS]                = { "cpus", T_UINT, FIELD(cpus), 1, CONFIG_MAX_CPUS, "a number" },
        [K_ACCEL]               = { "accel", T_ENUM, FIELD(accel), .names = &accel_names },
        [K_KIND]                = { "kind", T_ENUM, FIELD(kind), .names = &kind_names },
        [K_ARCH]                = { "arch", T_ENUM, FIELD(arch), .names = &arch_names },
        [K_BACKEND]             = { "backend", T_ENUM, FIELD(backend), .names = &backend_names },
        [K_LIBVIRT_URI]         = { "libvirt_uri", T_URI, FIELD(libvirt_uri), 0, 0,
                                    "a libvirt URI such as qemu:///system or qemu:///session" },
        [K_KERNEL]              = { "kernel", T_PATH_OR_EMPTY, FIELD(kernel), 0, 0,
                                    "a kernel image, or \"\" for the newest /boot/vmlinuz-*" },
        [K_QEMU]                = { "qemu", T_PROGRAM, FIELD(qemu), 0, 0, "a program name or path" },
        [K_QEMU_AARCH64]        = { "qemu_aarch64", T_PROGRAM, FIELD(qemu_aarch64), 0, 0, "a program name or path" },
        [K_OVERLAY]             = { "overlay", T_PATH_OR_EMPTY, FIELD(overlay), 0, 0, "a directory, or \"\" for none" },
        [K_RELEASE]             = { "release", T_WORD, FIELD(release), 0, 0, "a Debian release name such as bookworm" },
        [K_MIRROR]              = { "mirror", T_URL_OR_EMPTY, FIELD(mirror), 0, 0,
                                    "an http://, https:// or file:// URL of a Debian archive, or \"\" for the one apt uses" },
        [K_PACKAGES]            = { "packages", T_PACKAGES, FIELD(packages), 0, 0,
                                    "Debian package names separated by commas or spaces" },
        [K_DISK_SIZE]           = { "disk_size", T_DISK_SIZE, FIELD(disk_size), 0, 0,
                                    "a size of at least 1G in whole megabytes, such as 4G" },
        [K_USER]                = { "user", T_USER, FIELD(user), 0, 0,
                                    "a login name: a lower-case letter or '_', then up to 31 of a-z, 0-9, '_' and '-'" },
        [K_FORWARD]             = { "forward", T_FORWARD, FIELD(forward), 0, 0,
                                    "TCP ports PORT or PORT:HOSTPORT separated by commas, or \"\"" },
        [K_READY_TIMEOUT]       = { "ready_timeout", T_UINT, FIELD(ready_timeout), 1, 3600, "a number of seconds" },
        [K_DOWN_TIMEOUT]        = { "down_timeout", T_UINT, FIELD(down_timeout), 1, 600, "a number of seconds" },
};

static const char *const node_keys[CONFIG_N_NODE_KEYS] = { [NODE_MEMORY] = "memory", [NODE_CPUS] = "cpus", [NODE_ARCH] = "arch" };

#define FIELD_PTR(c, k, type) ((type *) ((char *) (c) + keys[k].offset))

/* ---- enum names: one table each ------------------------------------------------------------ */

/* An enum field is written and read as an int (T_ENUM keys, the plan's JSON form). */
_Static_assert(sizeof(enum fame_accel) == sizeof(int) && sizeof(enum fame_kind) == sizeof(int) &&
               sizeof(enum fame_backend) == sizeof(int) && sizeof(enum fame_arch) == sizeof(int),
               "enums are stored as int");

#define ENUM_NAMES(table, ...) \
        static const char *const table##_list[] = { __VA_ARGS__ }; \
        const struct enum_names table = { table##_list, ELEMENTSOF(table##_list) }

ENUM_NAMES(accel_names, [FAME_ACCEL_AUTO] = "auto", [FAME_ACCEL_KVM] = "kvm", [FAME_ACCEL_TCG] = "tcg");
ENUM_NAMES(kind_names, [FAME_KIND_DISKLESS] = "diskless", [FAME_KIND_DEBIAN] = "debian");
ENUM_NAMES(backend_names, [FAME_BACKEND_QEMU] = "qemu", [FAME_BACKEND_LIBVIRT] = "libvirt");
ENUM_NAMES(arch_names, [FAME_ARCH_X86_64] = "x86_64", [FAME_ARCH_AARCH64] = "aarch64");

int enum_from_name(const struct enum_names *t, const char *s) {
        for (size_t i = 0; i < t->n; i++)
                if (t->name[i] && strcmp(t->name[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *enum_to_name(const struct enum_names *t, int v) {
        return v >= 0 && (size_t) v < t->n && t->name[v] ? t->name[v] : "unknown";
}

const char *enum_expected(const struct enum_names *t, char *buf, size_t len) {
        size_t k = 0;
        buf[0] = 0;
        for (size_t i = 0; i < t->n && k < len; i++)
                k += (size_t) snprintf(buf + k, len - k, "%s%s", i == 0 ? "" : i + 1 == t->n ? " or " : ", ", t->name[i]);
        return buf;
}

/* What a good value of key k looks like, for errors. */
static const char *key_expected(int k, char *buf, size_t len) {
        return keys[k].type == T_ENUM ? enum_expected(keys[k].names, buf, len) : keys[k].expected;
}

static int find_key(const char *name) {
        for (int i = 0; i < _K_MAX; i++)
                if (strcmp(keys[i].name, name) == 0)
                        return i;
        return -1;
}

/* ---- helpers ------------------------------------------------------------------------------ */

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

int parse_node_name(const char *s, bool exact, uint32_t *ret) {
        const char *digits = strncmp(s, "node", 4) == 0 ? s + 4 : s;
        char canonical[16];
        uint32_t n;

        if (exact && digits == s)
                return -EINVAL;
        if (parse_uint32(digits, 1, FAME_MAX_NODES, &n) < 0)
                return -EINVAL;
        snprintf(canonical, sizeof canonical, "node%02" PRIu32, n);
        if (exact && strcmp(canonical, s) != 0)
                return -EINVAL;
        *ret = n;
        return 0;
}

/* parse_node_name(exact) of the part of key before its '.'. */
static int parse_node_prefix(const char *key, const char *dot, uint32_t *ret) {
        char name[16];
        if ((size_t) (dot - key) >= sizeof name)
                return -EINVAL;
        snprintf(name, sizeof name, "%.*s", (int) (dot - key), key);
        return parse_node_name(name, true, ret);
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

static char *path_join(const char *a, const char *b) {
        char *s;
        size_t la = strlen(a);

        if (asprintf(&s, "%s%s%s", a, la > 0 && a[la - 1] == '/' ? "" : "/", b) < 0)
                return NULL;
        return s;
}

/* Makes value a path: "~" and "~/..." are $HOME; a relative path is taken from base (NULL:
 * the current directory).  -ENOENT when "~" is used without $HOME. */
static int make_path(const char *value, const char *base, char **ret) {
        _cleanup_free_ char *cwd = NULL;
        char *s;

        if (value[0] == '~' && (value[1] == 0 || value[1] == '/')) {
                const char *home = getenv("HOME");
                if (!home || home[0] != '/')
                        return -ENOENT;
                s = value[1] ? path_join(home, value + 2) : strdup(home);
        } else if (value[0] == '/')
                s = strdup(value);
        else {
                if (!base) {
                        cwd = getcwd(NULL, 0);
                        if (!cwd)
                                return negative_errno();
                        base = cwd;
                }
                while (value[0] == '.' && value[1] == '/') {
                        value += 2;
                        while (*value == '/')
                                value++;
                }
                s = *value == 0 || strcmp(value, ".") == 0 ? strdup(base) : path_join(base, value);
        }
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Levenshtein distance, for "did you mean" (names are short). */
static unsigned edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        unsigned row[64];

        if (la >= ELEMENTSOF(row) || lb >= ELEMENTSOF(row))
                return UINT32_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++) {
                unsigned diag = row[0];
                row[0] = (unsigned) i;
                for (size_t j = 1; j <= lb; j++) {
                        unsigned up = row[j];
                        unsigned best = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

/* "; did you mean 'nodes'?" or "; known keys: ..." into buf. */
static const char *key_hint(const char *key, bool node_section, bool command_line, char *buf, size_t len) {
        const char *best = NULL;
        /* a suggestion only for at most 2 edits, and fewer than half of the name */
        unsigned best_d = strlen(key) >= 6 ? 3 : (unsigned) (strlen(key) + 1) / 2;

        if (node_section) {
                for (size_t i = 0; i < ELEMENTSOF(node_keys); i++)
                        if (edit_distance(key, node_keys[i]) < best_d) {
                                best_d = edit_distance(key, node_keys[i]);
                                best = node_keys[i];
                        }
        } else
                for (size_t i = 0; i < _K_MAX; i++)
                        if (edit_distance(key, keys[i].name) < best_d) {
                                best_d = edit_distance(key, keys[i].name);
                                best = keys[i].name;
                        }
        if (best) {
                snprintf(buf, len, "; did you mean '%s'?", best);
                return buf;
        }
        if (node_section) {
                snprintf(buf, len, "; a node section takes memory and cpus");
                return buf;
        }
        size_t n = (size_t) snprintf(buf, len, "; known keys:");
        for (size_t i = 0; i < _K_MAX && n < len; i++)
                n += (size_t) snprintf(buf + n, len - n, "%s %s", i ? "," : "", keys[i].name);
        if (command_line && n < len)
                snprintf(buf + n, len - n, ", nodeNN.memory, nodeNN.cpus, nodeNN.arch");
        return buf;
}

/* Logs "ORIGIN: KEY = VALUE: expected ..." and returns -EINVAL. */
static int bad_value(const char *origin, const char *key, const char *value, const char *fmt, ...) _printf_(4, 5);
static int bad_value(const char *origin, const char *key, const char *value, const char *fmt, ...) {
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        /* There are no end-of-line comments: say so when one seems to be there. */
        bool comment = strstr(value, " #") || strstr(value, "\t#") || strstr(value, " ;") || strstr(value, "\t;");
        log_error("%s: %s = %s%s%s: %s%s", origin, key, *value ? "" : "\"", value, *value ? "" : "\"", what,
                  comment ? " (comments go on lines of their own)" : "");
        return -EINVAL;
}

/* ---- setting values ----------------------------------------------------------------------- */

static char *origin_dup(const char *origin, bool *ret_oom) {
        char *s;

        *ret_oom = false;
        if (!origin || strcmp(origin, "default") == 0)
                return NULL;
        s = strdup(origin);
        *ret_oom = !s;
        return s;
}

static int parse_memory(const char *origin, const char *key, const char *value, const char *expected, uint64_t *ret) {
        uint64_t v;

        if (parse_size(value, &v) < 0 || v < CONFIG_MIN_MEMORY || v % (UINT64_C(1) << 20) != 0)
                return bad_value(origin, key, value, "expected %s", expected);
        *ret = v;
        return 0;
}

static int parse_cpus(const char *origin, const char *key, const char *value, uint32_t *ret) {
        if (parse_uint32(value, 1, CONFIG_MAX_CPUS, ret) < 0)
                return bad_value(origin, key, value, "expected a number from 1 to %u", CONFIG_MAX_CPUS);
        return 0;
}

/* shown_key: the key as the user wrote it (for errors). */
static bool is_string_key(int k) {
        switch (keys[k].type) {
        case T_PATH:
        case T_PATH_OR_EMPTY:
        case T_PROGRAM:
        case T_WORD:
        case T_URL_OR_EMPTY:
        case T_PACKAGES:
        case T_USER:
        case T_FORWARD:
        case T_URI:
                return true;
        default:
                return false;
        }
}

static bool user_name_ok(const char *value) {
        if (!*value || strlen(value) > 32 || !((*value >= 'a' && *value <= 'z') || *value == '_') ||
            strcmp(value, "root") == 0)
                return false;
        for (const char *q = value; *q; q++)
                if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_' || *q == '-'))
                        return false;
        return true;
}

static bool is_word_char(char ch, bool first) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (!first && strchr(".+_-", ch));
}

/* Checks the text-valued keys that are not paths; one error line on failure. */
static int check_string_value(enum key_type t, const char *value, const char *origin, const char *key,
                              const char *expected) {
        switch (t) {
        case T_WORD:
                if (!*value || strlen(value) > 64)
                        return bad_value(origin, key, value, "expected %s", expected);
                for (const char *q = value; *q; q++)
                        if (!is_word_char(*q, q == value))
                                return bad_value(origin, key, value, "expected %s", expected);
                return 0;
        case T_URL_OR_EMPTY:
                if (!*value)
                        return 0;
                if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0 && strncmp(value, "file:///", 8) != 0)
                        return bad_value(origin, key, value, "expected %s", expected);
                for (const char *q = value; *q; q++)
                        if ((unsigned char) *q <= 0x20 || *q == 0x7f)
                                return bad_value(origin, key, value, "a URL cannot hold spaces or control characters");
                return 0;
        case T_PACKAGES: {
                const char *q = value;
                while (*q) {
                        size_t n = 0;
                        while (q[n] && q[n] != ',' && q[n] != ' ')
                                n++;
                        for (size_t i = 0; i < n; i++)
                                if (!is_word_char(q[i], i == 0) || n < 2)
                                        return bad_value(origin, key, value, "'%.*s' is not a Debian package name (lower-case letters, digits and . + - only)",
                                                         (int) n, q);
                        q += n;
                        while (*q == ',' || *q == ' ')
                                q++;
                }
                return 0;
        }
        case T_URI: {
                const char *sep = strstr(value, "://");
                if (!sep || sep == value || strlen(value) > 1024)
                        return bad_value(origin, key, value, "expected %s", expected);
                for (const char *q = value; *q; q++)
                        if ((unsigned char) *q <= 0x20 || *q == 0x7f)
                                return bad_value(origin, key, value, "a URI cannot hold spaces or control characters");
                return 0;
        }
        case T_USER:
                if (!user_name_ok(value))
                        return bad_value(origin, key, value, "expected %s, not root", expected);
                return 0;
        case T_FORWARD: {
                uint16_t g, h;
                const char *q = value;
                for (unsigned n = 0; *q; n++) {
                        const char *end = strchr(q, ',');
                        size_t len = end ? (size_t) (end - q) : strlen(q);
                        char item[32];
                        if (len == 0 || len >= sizeof item || n >= CONFIG_MAX_FORWARDS)
                                return bad_value(origin, key, value, "expected %s (at most %u)", expected, CONFIG_MAX_FORWARDS);
                        memcpy(item, q, len);
                        item[len] = 0;
                        if (config_parse_forward(item, &g, &h) < 0)
                                return bad_value(origin, key, value, "'%s': expected PORT or PORT:HOSTPORT with ports from 1 to 65535", item);
                        q += len;
                        if (*q == ',')
                                q++;
                }
                return 0;
        }
        default:
                return 0;
        }
}

int config_parse_forward(const char *item, uint16_t *ret_guest, uint16_t *ret_host) {
        char buf[32];
        uint32_t g, h;
        const char *colon = strchr(item, ':');

        if (strlen(item) >= sizeof buf)
                return -EINVAL;
        strcpy(buf, item);
        if (colon)
                buf[colon - item] = 0;
        if (parse_uint32(buf, 1, 65535, &g) < 0)
                return -EINVAL;
        if (colon) {
                if (parse_uint32(colon + 1, 1, 65535, &h) < 0)
                        return -EINVAL;
        } else
                h = g;
        *ret_guest = (uint16_t) g;
        *ret_host = (uint16_t) h;
        return 0;
}

/* The name of the account made in Debian nodes: the caller's login name ($USER, $LOGNAME), or
 * "fame" for root or a name Debian would not take.  (No getpwuid(): fame-static has no NSS.) */
static char *default_user(void) {
        const char *name = getenv("USER");
        if (!name || !*name)
                name = getenv("LOGNAME");
        if (name && geteuid() != 0 && user_name_ok(name))
                return strdup(name);
        return strdup("fame");
}

static int set_cluster_key(struct fame_config *c, int k, const char *value, const char *origin, const char *base,
                           const char *shown_key) {
        const struct key_def *d = &keys[k];
        _cleanup_free_ char *str = NULL, *new_origin = NULL, *new_fam = NULL;
        uint64_t u64 = 0;
        uint32_t u32 = 0;
        int r, e = 0;
        bool oom;

        switch (d->type) {
        case T_PATH:
        case T_PATH_OR_EMPTY:
        case T_PROGRAM:
                for (const char *q = value; *q; q++)
                        if ((unsigned char) *q < 0x20 || *q == 0x7f) {
                                log_error("%s: %s: control characters (such as tab or newline) are not allowed in a path",
                                          origin, shown_key);
                                return -EINVAL;
                        }
                if (!*value) {
                        if (d->type != T_PATH_OR_EMPTY)
                                return bad_value(origin, shown_key, value, "expected %s", d->expected);
                        str = strdup("");
                } else if (d->type == T_PROGRAM && !strchr(value, '/'))
                        str = strdup(value);
                else {
                        r = make_path(value, base, &str);
                        if (r == -ENOENT)
                                return bad_value(origin, shown_key, value, "'~' needs $HOME, which is not set");
                        if (r < 0 && r != -ENOMEM)
                                return log_error_errno(r, "%s: %s: Failed to get the current directory: %m", origin, shown_key);
                }
                if (!str)
                        return log_error_errno(-ENOMEM, "Out of memory");
                break;
        case T_FAM_SIZE:
                if (parse_size(value, &u64) < 0 || !is_power_of_two_u64(u64))
                        return bad_value(origin, shown_key, value, "expected %s", d->expected);
                break;
        case T_BOOK_SIZE:
                if (parse_size(value, &u64) < 0 || !is_power_of_two_u64(u64) ||
                    u64 < FAME_MIN_BOOK_SIZE || u64 > FAME_MAX_BOOK_SIZE)
                        return bad_value(origin, shown_key, value, "expected %s", d->expected);
                break;
        case T_MEMORY:
                r = parse_memory(origin, shown_key, value, d->expected, &u64);
                if (r < 0)
                        return r;
                break;
        case T_UINT:
                if (parse_uint32(value, d->min, d->max, &u32) < 0)
                        return bad_value(origin, shown_key, value, "expected %s from %" PRIu32 " to %" PRIu32,
                                         d->expected, d->min, d->max);
                break;
        case T_ENUM: {
                char expected[64];
                e = enum_from_name(d->names, value);
                if (e < 0)
                        return bad_value(origin, shown_key, value, "expected %s", key_expected(k, expected, sizeof expected));
                break;
        }
        case T_WORD:
        case T_URL_OR_EMPTY:
        case T_PACKAGES:
        case T_USER:
        case T_FORWARD:
        case T_URI:
                r = check_string_value(d->type, value, origin, shown_key, d->expected);
                if (r < 0)
                        return r;
                str = strdup(value);
                if (!str)
                        return log_error_errno(-ENOMEM, "Out of memory");
                break;
        case T_DISK_SIZE:
                r = parse_memory(origin, shown_key, value, d->expected, &u64);
                if (r < 0)
                        return r;
                if (u64 < (UINT64_C(1) << 30))
                        return bad_value(origin, shown_key, value, "expected %s", d->expected);
                break;
        }

        new_origin = origin_dup(origin, &oom);
        if (oom)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (k == K_STATE_DIR && !c->origin[K_FAM]) {
                new_fam = path_join(str, "fam");
                if (!new_fam)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }

        /* Nothing can fail from here on. */
        if (is_string_key(k)) {
                free(*FIELD_PTR(c, k, char *));
                *FIELD_PTR(c, k, char *) = TAKE_PTR(str);
        } else switch (d->type) {
        case T_FAM_SIZE:
        case T_BOOK_SIZE:
        case T_MEMORY:
        case T_DISK_SIZE:
                *FIELD_PTR(c, k, uint64_t) = u64;
                break;
        case T_UINT:
                *FIELD_PTR(c, k, uint32_t) = u32;
                break;
        case T_ENUM:
                *FIELD_PTR(c, k, int) = e;
                break;
        default:
                break;
        }
        free(c->origin[k]);
        c->origin[k] = TAKE_PTR(new_origin);
        if (new_fam) {
                free(c->fam_path);
                c->fam_path = TAKE_PTR(new_fam);
        }
        for (size_t i = 0; i < FAME_MAX_NODES; i++) {
                if (k == K_MEMORY && !c->node_origin[i][NODE_MEMORY])
                        c->node[i].memory = c->memory;
                if (k == K_CPUS && !c->node_origin[i][NODE_CPUS])
                        c->node[i].cpus = c->cpus;
                if (k == K_ARCH && !c->node_origin[i][NODE_ARCH])
                        c->node[i].arch = c->arch;
        }
        return 0;
}

/* n counts from 1. */
static int set_node_key(struct fame_config *c, uint32_t n, int which, const char *value, const char *origin,
                        const char *shown_key) {
        char *new_origin;
        uint64_t mem = 0;
        uint32_t cpus = 0;
        int arch = FAME_ARCH_X86_64;
        char expected[64];
        bool oom;
        int r;

        if (which == NODE_MEMORY)
                r = parse_memory(origin, shown_key, value, keys[K_MEMORY].expected, &mem);
        else if (which == NODE_ARCH) {
                arch = enum_from_name(&arch_names, value);
                r = arch < 0 ? bad_value(origin, shown_key, value, "expected %s", key_expected(K_ARCH, expected, sizeof expected)) : 0;
        } else
                r = parse_cpus(origin, shown_key, value, &cpus);
        if (r < 0)
                return r;
        new_origin = origin_dup(origin, &oom);
        if (oom)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (which == NODE_MEMORY)
                c->node[n - 1].memory = new_origin ? mem : c->memory;
        else if (which == NODE_ARCH)
                c->node[n - 1].arch = new_origin ? (enum fame_arch) arch : c->arch;
        else
                c->node[n - 1].cpus = new_origin ? cpus : c->cpus;
        free(c->node_origin[n - 1][which]);
        c->node_origin[n - 1][which] = new_origin;
        return 0;
}

int config_set(struct fame_config *c, const char *key, const char *value, const char *origin) {
        char hint[512];
        const char *dot;
        uint32_t n;
        int k;

        if (!value)
                value = "";
        if (!origin)
                origin = "command line";
        dot = strchr(key, '.');
        if (dot) {
                if (parse_node_prefix(key, dot, &n) < 0) {
                        log_error("%s: unknown key '%s'; node keys are node01.memory to node128.memory, node01.cpus to node128.cpus and node01.arch to node128.arch",
                                  origin, key);
                        return -EINVAL;
                }
                for (int w = 0; w < CONFIG_N_NODE_KEYS; w++)
                        if (strcmp(dot + 1, node_keys[w]) == 0)
                                return set_node_key(c, n, w, value, origin, key);
                log_error("%s: unknown key '%s'%s", origin, key, key_hint(dot + 1, true, true, hint, sizeof hint));
                return -EINVAL;
        }
        k = find_key(key);
        if (k < 0) {
                log_error("%s: unknown key '%s'%s", origin, key, key_hint(key, false, true, hint, sizeof hint));
                return -EINVAL;
        }
        return set_cluster_key(c, k, value, origin, NULL, key);
}

/* ---- init, copy, done --------------------------------------------------------------------- */

void config_done(struct fame_config *c) {
        if (!c)
                return;
        free(c->name);
        free(c->state_dir);
        free(c->cache_dir);
        free(c->fam_path);
        free(c->kernel);
        free(c->qemu);
        free(c->overlay);
        free(c->release);
        free(c->mirror);
        free(c->packages);
        free(c->user);
        free(c->forward);
        free(c->libvirt_uri);
        free(c->qemu_aarch64);
        for (size_t i = 0; i < _K_MAX; i++)
                free(c->origin[i]);
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
        c->cache_dir = path_join(cache, "fame");
        c->fam_path = c->state_dir ? path_join(c->state_dir, "fam") : NULL;
        c->kernel = strdup("");
        c->qemu = strdup("qemu-system-x86_64");
        c->overlay = strdup("");
        c->release = strdup("bookworm");
        c->mirror = strdup("");
        c->packages = strdup("");
        c->user = default_user();
        c->forward = strdup("");
        c->libvirt_uri = strdup("qemu:///system");
        c->qemu_aarch64 = strdup("qemu-system-aarch64");
        if (!c->libvirt_uri || !c->qemu_aarch64 || !c->name || !c->state_dir || !c->cache_dir || !c->fam_path || !c->kernel || !c->qemu || !c->overlay ||
            !c->release || !c->mirror || !c->packages || !c->user || !c->forward) {
                config_done(c);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        c->fam_size = UINT64_C(1) << 30;
        c->book_size = FAME_DEFAULT_BOOK_SIZE;
        c->nodes = FAME_DEFAULT_NODES;
        c->nodes_per_enclosure = FAME_DEFAULT_NODES_PER_ENCLOSURE;
        c->enclosures_per_rack = FAME_DEFAULT_ENCLOSURES_PER_RACK;
        c->memory = UINT64_C(256) << 20;
        c->cpus = 1;
        c->accel = FAME_ACCEL_AUTO;
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
        r |= dup_str(&dst->state_dir);
        r |= dup_str(&dst->cache_dir);
        r |= dup_str(&dst->fam_path);
        r |= dup_str(&dst->kernel);
        r |= dup_str(&dst->qemu);
        r |= dup_str(&dst->overlay);
        r |= dup_str(&dst->release);
        r |= dup_str(&dst->mirror);
        r |= dup_str(&dst->packages);
        r |= dup_str(&dst->user);
        r |= dup_str(&dst->forward);
        r |= dup_str(&dst->libvirt_uri);
        r |= dup_str(&dst->qemu_aarch64);
        for (size_t i = 0; i < _K_MAX; i++)
                r |= dup_str(&dst->origin[i]);
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
        log_error("%s:%u: %s", p->path, p->line, what);
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
                        if (strcmp(key, node_keys[w]) != 0)
                                continue;
                        if (p->node_key_line[p->node - 1][w]) {
                                parse_error(p, "duplicate key '%s' in [node%02" PRIu32 "] (first set at line %u)",
                                            key, p->node, p->node_key_line[p->node - 1][w]);
                                return;
                        }
                        p->node_key_line[p->node - 1][w] = p->line;
                        if (set_node_key(p->c, p->node, w, value, origin, key) < 0)
                                p->errors++;
                        return;
                }
                if (find_key(key) >= 0)
                        parse_error(p, "'%s' cannot be set per node; [node%02" PRIu32 "] takes memory and cpus", key, p->node);
                else
                        parse_error(p, "unknown key '%.80s' in [node%02" PRIu32 "]%s", key, p->node,
                                    key_hint(key, true, false, hint, sizeof hint));
                return;
        }

        k = find_key(key);
        if (k < 0) {
                char *dot = strchr(key, '.');
                uint32_t n;
                if (dot && parse_node_prefix(key, dot, &n) >= 0)
                        parse_error(p, "unknown key '%.80s' in [cluster]; put node keys in a [node%02" PRIu32 "] section",
                                    key, n);
                else
                        parse_error(p, "unknown key '%.80s' in [cluster]%s", key, key_hint(key, false, false, hint, sizeof hint));
                return;
        }
        if (p->key_line[k]) {
                parse_error(p, "duplicate key '%s' in [cluster] (first set at line %u)", key, p->key_line[k]);
                return;
        }
        p->key_line[k] = p->line;
        if (set_cluster_key(p->c, k, value, origin, p->base, key) < 0)
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
        return strcmp(dir, ".") == 0 ? TAKE_PTR(cwd) : path_join(cwd, dir);
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
                snprintf(err, errlen, "FAM size %s is too small for %" PRIu32 " node(s) with %s books (metadata plus 4 books per node); use --size %s or more",
                         format_size_compact(total, a, sizeof a), nodes, format_size_compact(book, bs, sizeof bs),
                         format_size_compact(UINT64_C(1) << (64 - __builtin_clzll(min_size - 1)), b, sizeof b));
                return K_FAM_SIZE;
        }
        uint64_t per_node = ((total - book_area) / book / nodes) & ~UINT64_C(3);
        if (per_node > FAME_MAX_BOOKS_PER_NODE) {
                uint64_t need = book;
#define BOOKS_PER_NODE(bsz) ((total - ((bsz) > CONFIG_META_MIN ? (bsz) : CONFIG_META_MIN)) / (bsz) / nodes)
                while (need < FAME_MAX_BOOK_SIZE && BOOKS_PER_NODE(need) > FAME_MAX_BOOKS_PER_NODE)
                        need <<= 1;
                if (BOOKS_PER_NODE(need) > FAME_MAX_BOOKS_PER_NODE) {
                        snprintf(err, errlen, "FAM size %s is more than %" PRIu32 " node(s) can address (8192 books of at most 8G each per node); use a smaller --size or more --nodes",
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

static const char *value_text(const struct fame_config *c, int k, char *buf, size_t len);

static const char *origin_text(const char *o);

int config_check(const struct fame_config *c) {
        char err[512], v[64];
        int k;

        k = geometry_problem(c, err, sizeof err);
        if (k >= 0)
                return log_error_errno(-EINVAL, "%s = %s: %s", keys[k].name, value_text(c, k, v, sizeof v), err);

        for (uint32_t i = c->nodes; i < FAME_MAX_NODES; i++)
                for (int w = 0; w < CONFIG_N_NODE_KEYS; w++)
                        if (c->node_origin[i][w])
                                return log_error_errno(-EINVAL, "%s: [node%02" PRIu32 "] is configured but nodes = %" PRIu32,
                                                       c->node_origin[i][w], i + 1, c->nodes);

        /* aarch64 nodes: diskless (so far) */
        for (uint32_t i = 0; i < c->nodes; i++) {
                if (c->node[i].arch != FAME_ARCH_AARCH64)
                        continue;
                const char *where = c->node_origin[i][NODE_ARCH] ? c->node_origin[i][NODE_ARCH] : origin_text(c->origin[K_ARCH]);
                if (c->kind == FAME_KIND_DEBIAN)
                        return log_error_errno(-EINVAL, "%s: node%02" PRIu32 " is aarch64, and aarch64 nodes are diskless only so far; use kind = diskless, or arch = x86_64 for Debian nodes",
                                               where, i + 1);
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

/* ---- printing ----------------------------------------------------------------------------- */

/* A string as the file would take it back: quoted when empty or holding white space. */
static char *quote(const char *s) {
        bool need = !*s || s[0] == '"';
        size_t n = 0;
        char *q, *o;

        for (const char *p = s; *p; p++) {
                need = need || isspace((unsigned char) *p);
                n += (*p == '"' || *p == '\\') ? 2 : 1;
        }
        if (!need)
                return strdup(s);
        q = o = malloc(n + 3);
        if (!q)
                return NULL;
        *o++ = '"';
        for (const char *p = s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        *o++ = '\\';
                *o++ = *p;
        }
        *o++ = '"';
        *o = 0;
        return q;
}

/* Non-string values as text (sizes compact: "1G"). */
static const char *value_text(const struct fame_config *c, int k, char *buf, size_t len) {
        switch (keys[k].type) {
        case T_FAM_SIZE:
        case T_BOOK_SIZE:
        case T_MEMORY:
        case T_DISK_SIZE:
                return format_size_compact(*FIELD_PTR(c, k, const uint64_t), buf, len);
        case T_UINT:
                snprintf(buf, len, "%" PRIu32, *FIELD_PTR(c, k, const uint32_t));
                return buf;
        case T_ENUM:
                return enum_to_name(keys[k].names, *FIELD_PTR(c, k, const int));
        default:
                return *FIELD_PTR(c, k, char *const);
        }
}


static const char *origin_text(const char *o) {
        return o ? o : "default";
}

/* The origin of a node key: its own, else that of the cluster key it follows. */
static const char *node_origin_text(const struct fame_config *c, size_t i, int w) {
        return origin_text(c->node_origin[i][w] ? c->node_origin[i][w] :
                           c->origin[w == NODE_MEMORY ? K_MEMORY : w == NODE_ARCH ? K_ARCH : K_CPUS]);
}

#define PRINT_KEY_WIDTH 19      /* strlen("enclosures_per_rack") */
#define PRINT_VALUE_WIDTH_MAX 40

static int print_text(const struct fame_config *c, FILE *f) {
        char *text[_K_MAX] = { 0 };
        char buf[64];
        int width = 0, r = 0;

        for (int k = 0; k < _K_MAX; k++) {
                text[k] = is_string_key(k) ? quote(value_text(c, k, buf, sizeof buf)) : strdup(value_text(c, k, buf, sizeof buf));
                if (!text[k]) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        goto out;
                }
                if ((int) strlen(text[k]) > width)
                        width = (int) strlen(text[k]);
        }
        if (width > PRINT_VALUE_WIDTH_MAX)
                width = PRINT_VALUE_WIDTH_MAX;

        fprintf(f, "# cluster %s\n", c->name);
        for (int k = 0; k < _K_MAX; k++)
                fprintf(f, "%-*s = %-*s  # %s\n", PRINT_KEY_WIDTH, keys[k].name, width, text[k], origin_text(c->origin[k]));
        for (size_t i = 0; i < FAME_MAX_NODES; i++)
                for (int w = 0; w < CONFIG_N_NODE_KEYS; w++) {
                        char key[32];
                        if (!c->node_origin[i][w])
                                continue;
                        snprintf(key, sizeof key, "node%02zu.%s", i + 1, node_keys[w]);
                        if (w == NODE_MEMORY)
                                format_size_compact(c->node[i].memory, buf, sizeof buf);
                        else if (w == NODE_ARCH)
                                snprintf(buf, sizeof buf, "%s", arch_to_string(c->node[i].arch));
                        else
                                snprintf(buf, sizeof buf, "%" PRIu32, c->node[i].cpus);
                        fprintf(f, "%-*s = %-*s  # %s\n", PRINT_KEY_WIDTH, key, width, buf, c->node_origin[i][w]);
                }
out:
        for (int k = 0; k < _K_MAX; k++)
                free(text[k]);
        return r;
}

static json_object *json_value(const struct fame_config *c, int k) {
        switch (keys[k].type) {
        case T_FAM_SIZE:
        case T_BOOK_SIZE:
        case T_MEMORY:
        case T_DISK_SIZE:
                return json_object_new_uint64(*FIELD_PTR(c, k, const uint64_t));
        case T_UINT:
                return json_object_new_uint64(*FIELD_PTR(c, k, const uint32_t));
        default: {
                char buf[64];
                return json_object_new_string(value_text(c, k, buf, sizeof buf));
        }
        }
}

/* json-c returns 0 on success from its add functions (< 0 on allocation failure). */
static int json_add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int print_json(const struct fame_config *c, FILE *f) {
        json_object *root = json_object_new_object(), *jkeys = json_object_new_object(), *nodes = json_object_new_array();
        int r = 0;

        if (!root || !jkeys || !nodes) {
                json_object_put(root);
                json_object_put(jkeys);
                json_object_put(nodes);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        r |= json_add(root, "cluster", json_object_new_string(c->name));
        r |= json_add(root, "keys", jkeys);
        r |= json_add(root, "nodes", nodes);
        for (int k = 0; k < _K_MAX && r == 0; k++) {
                json_object *e = json_object_new_object();
                r |= json_add(jkeys, keys[k].name, e);
                if (r == 0) {
                        r |= json_add(e, "value", json_value(c, k));
                        r |= json_add(e, "origin", json_object_new_string(origin_text(c->origin[k])));
                }
        }
        for (size_t i = 0; i < c->nodes && i < FAME_MAX_NODES && r == 0; i++) {
                json_object *n = json_object_new_object(), *o = json_object_new_object();
                char name[16];

                snprintf(name, sizeof name, "node%02zu", i + 1);
                if (!n || !o || json_object_array_add(nodes, n) < 0) {
                        json_object_put(n);
                        json_object_put(o);
                        r = -ENOMEM;
                        break;
                }
                r |= json_add(n, "name", json_object_new_string(name));
                r |= json_add(n, "memory", json_object_new_uint64(c->node[i].memory));
                r |= json_add(n, "cpus", json_object_new_uint64(c->node[i].cpus));
                r |= json_add(n, "arch", json_object_new_string(arch_to_string(c->node[i].arch)));
                r |= json_add(n, "origin", o);
                if (r == 0) {
                        r |= json_add(o, "memory", json_object_new_string(node_origin_text(c, i, NODE_MEMORY)));
                        r |= json_add(o, "cpus", json_object_new_string(node_origin_text(c, i, NODE_CPUS)));
                        r |= json_add(o, "arch", json_object_new_string(node_origin_text(c, i, NODE_ARCH)));
                }
        }
        if (r == 0)
                fprintf(f, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
        return r < 0 ? log_error_errno(-ENOMEM, "Out of memory") : 0;
}

int config_print(const struct fame_config *c, FILE *f, bool json) {
        int r = json ? print_json(c, f) : print_text(c, f);

        if (r < 0)
                return r;
        if (fflush(f) != 0 || ferror(f))
                return log_error_errno(errno > 0 ? -errno : -EIO, "Failed to write the configuration: %m");
        return 0;
}
