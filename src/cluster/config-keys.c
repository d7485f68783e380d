/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The configuration's keys (docs/config.md): the one table of cluster keys, the names of each
 * enum's values, node names, and checking and setting a value — config_set() for the command
 * line, config_set_key()/config_set_node_key() for it and the file parser (config.c), so a
 * value is checked the same way wherever it comes from.  Values are validated before anything
 * is changed, so a failed set leaves the config as it was.  node[] always holds effective
 * values: a node key that was never set follows the cluster key, as fam follows state_dir until
 * it is set itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-internal.h"
#include "fame.h"
#include "log.h"
#include "macro.h"
#include "util.h"

#define FIELD(f) offsetof(struct fame_config, f)

const struct key_def config_keys[_K_MAX] = {
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
        [K_TB_SIZE]             = { "tb_size", T_UINT, FIELD(tb_size), 8, 1024, "a number of MiB" },
        [K_ACCEL]               = { "accel", T_ENUM, FIELD(accel), .names = &accel_names },
        [K_CHECK]               = { "check", T_ENUM, FIELD(check), .names = &check_names },
        [K_LIBRARIAN_AUTH]      = { "librarian_auth", T_ENUM, FIELD(librarian_auth), .names = &librarian_auth_names },
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
        [K_SHARE]               = { "share", T_PATH_OR_EMPTY, FIELD(share), 0, 0,
                                    "a host directory every node sees read-only at /share, or \"\" for none" },
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

const char *const config_node_keys[CONFIG_N_NODE_KEYS] = { [NODE_MEMORY] = "memory", [NODE_CPUS] = "cpus", [NODE_ARCH] = "arch" };

/* ---- enum names: one table each ------------------------------------------------------------ */

/* An enum field is written and read as an int (T_ENUM keys, the plan's JSON form). */
_Static_assert(sizeof(enum fame_accel) == sizeof(int) && sizeof(enum fame_kind) == sizeof(int) &&
               sizeof(enum fame_backend) == sizeof(int) && sizeof(enum fame_arch) == sizeof(int) &&
               sizeof(enum fame_check) == sizeof(int) && sizeof(enum fame_librarian_auth) == sizeof(int),
               "enums are stored as int");

#define ENUM_NAMES(table, ...) \
        static const char *const table##_list[] = { __VA_ARGS__ }; \
        const struct enum_names table = { table##_list, ELEMENTSOF(table##_list) }

ENUM_NAMES(accel_names, [FAME_ACCEL_AUTO] = "auto", [FAME_ACCEL_KVM] = "kvm", [FAME_ACCEL_TCG] = "tcg");
ENUM_NAMES(kind_names, [FAME_KIND_DISKLESS] = "diskless", [FAME_KIND_DEBIAN] = "debian");
ENUM_NAMES(backend_names, [FAME_BACKEND_QEMU] = "qemu", [FAME_BACKEND_LIBVIRT] = "libvirt");
ENUM_NAMES(arch_names, [FAME_ARCH_X86_64] = "x86_64", [FAME_ARCH_AARCH64] = "aarch64");
ENUM_NAMES(check_names, [FAME_CHECK_OFF] = "off", [FAME_CHECK_COHERENCE] = "coherence");
ENUM_NAMES(librarian_auth_names, [FAME_LIBRARIAN_AUTH_SECRET] = "secret", [FAME_LIBRARIAN_AUTH_NONE] = "none");

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
        return config_keys[k].type == T_ENUM ? enum_expected(config_keys[k].names, buf, len) : config_keys[k].expected;
}

int config_find_key(const char *name) {
        for (int i = 0; i < _K_MAX; i++)
                if (strcmp(config_keys[i].name, name) == 0)
                        return i;
        return -1;
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
int config_parse_node_prefix(const char *key, const char *dot, uint32_t *ret) {
        char name[16];
        if ((size_t) (dot - key) >= sizeof name)
                return -EINVAL;
        snprintf(name, sizeof name, "%.*s", (int) (dot - key), key);
        return parse_node_name(name, true, ret);
}

char *config_path_join(const char *a, const char *b) {
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
                s = value[1] ? config_path_join(home, value + 2) : strdup(home);
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
                s = *value == 0 || strcmp(value, ".") == 0 ? strdup(base) : config_path_join(base, value);
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
const char *config_key_hint(const char *key, bool node_section, bool command_line, char *buf, size_t len) {
        const char *best = NULL;
        /* a suggestion only for at most 2 edits, and fewer than half of the name */
        unsigned best_d = strlen(key) >= 6 ? 3 : (unsigned) (strlen(key) + 1) / 2;

        if (node_section) {
                for (size_t i = 0; i < ELEMENTSOF(config_node_keys); i++)
                        if (edit_distance(key, config_node_keys[i]) < best_d) {
                                best_d = edit_distance(key, config_node_keys[i]);
                                best = config_node_keys[i];
                        }
        } else
                for (size_t i = 0; i < _K_MAX; i++)
                        if (edit_distance(key, config_keys[i].name) < best_d) {
                                best_d = edit_distance(key, config_keys[i].name);
                                best = config_keys[i].name;
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
                n += (size_t) snprintf(buf + n, len - n, "%s %s", i ? "," : "", config_keys[i].name);
        if (command_line && n < len)
                snprintf(buf + n, len - n, ", nodeNN.memory, nodeNN.cpus, nodeNN.arch");
        return buf;
}

/* Logs "ORIGIN: KEY = VALUE: expected ..." and returns -EINVAL. */
void config_error(const char *fmt, ...) {
        char raw[2048], out[4 * sizeof raw];
        size_t o = 0;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        for (const unsigned char *q = (const unsigned char *) raw; *q; q++)
                if (*q < 0x20 || *q == 0x7f)
                        o += (size_t) snprintf(out + o, sizeof out - o, "\\x%02x", *q);
                else
                        out[o++] = (char) *q;
        out[o] = 0;
        log_error("%s", out);
}

static int bad_value(const char *origin, const char *key, const char *value, const char *fmt, ...) _printf_(4, 5);
static int bad_value(const char *origin, const char *key, const char *value, const char *fmt, ...) {
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        /* There are no end-of-line comments: say so when one seems to be there. */
        bool comment = strstr(value, " #") || strstr(value, "\t#") || strstr(value, " ;") || strstr(value, "\t;");
        config_error("%s: %s = %s%s%s: %s%s", origin, key, *value ? "" : "\"", value, *value ? "" : "\"", what,
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
bool config_is_string_key(int k) {
        switch (config_keys[k].type) {
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

bool config_user_name_ok(const char *value) {
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
                if (!config_user_name_ok(value))
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

int config_set_key(struct fame_config *c, int k, const char *value, const char *origin, const char *base,
                   const char *shown_key) {
        const struct key_def *d = &config_keys[k];
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
                                config_error("%s: %s: control characters (such as tab or newline) are not allowed in a path",
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
                new_fam = config_path_join(str, "fam");
                if (!new_fam)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }

        /* Nothing can fail from here on. */
        if (config_is_string_key(k)) {
                free(*CONFIG_FIELD(c, k, char *));
                *CONFIG_FIELD(c, k, char *) = TAKE_PTR(str);
        } else switch (d->type) {
        case T_FAM_SIZE:
        case T_BOOK_SIZE:
        case T_MEMORY:
        case T_DISK_SIZE:
                *CONFIG_FIELD(c, k, uint64_t) = u64;
                break;
        case T_UINT:
                *CONFIG_FIELD(c, k, uint32_t) = u32;
                break;
        case T_ENUM:
                *CONFIG_FIELD(c, k, int) = e;
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
int config_set_node_key(struct fame_config *c, uint32_t n, int which, const char *value, const char *origin,
                        const char *shown_key) {
        char *new_origin;
        uint64_t mem = 0;
        uint32_t cpus = 0;
        int arch = FAME_ARCH_X86_64;
        char expected[64];
        bool oom;
        int r;

        if (which == NODE_MEMORY)
                r = parse_memory(origin, shown_key, value, config_keys[K_MEMORY].expected, &mem);
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
                if (config_parse_node_prefix(key, dot, &n) < 0) {
                        config_error("%s: unknown key '%s'; node keys are node01.memory to node128.memory, node01.cpus to node128.cpus and node01.arch to node128.arch",
                                  origin, key);
                        return -EINVAL;
                }
                for (int w = 0; w < CONFIG_N_NODE_KEYS; w++)
                        if (strcmp(dot + 1, config_node_keys[w]) == 0)
                                return config_set_node_key(c, n, w, value, origin, key);
                config_error("%s: unknown key '%s'%s", origin, key, config_key_hint(dot + 1, true, true, hint, sizeof hint));
                return -EINVAL;
        }
        k = config_find_key(key);
        if (k < 0) {
                config_error("%s: unknown key '%s'%s", origin, key, config_key_hint(key, false, true, hint, sizeof hint));
                return -EINVAL;
        }
        return config_set_key(c, k, value, origin, NULL, key);
}

