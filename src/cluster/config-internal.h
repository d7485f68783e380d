/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Inside the configuration (config.h): the one table of cluster keys and what the three parts
 * share — config-keys.c (the table, checking and setting values, config_set()), config.c
 * (defaults, the fame.conf file, cross checks) and config-print.c (`fame config`).
 */
#ifndef FAME_CONFIG_INTERNAL_H
#define FAME_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CONFIG_MAX_CPUS 64u
#define CONFIG_MIN_MEMORY (UINT64_C(64) << 20)
#define CONFIG_MAX_NAME 32u

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
        K_TB_SIZE,
        K_ACCEL,
        K_CHECK,
        K_LIBRARIAN_AUTH,
        K_KIND,
        K_ARCH,
        K_BACKEND,
        K_LIBVIRT_URI,
        K_KERNEL,
        K_QEMU,
        K_QEMU_AARCH64,
        K_OVERLAY,
        K_SHARE,
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

/* In the order `fame config` prints them and docs/config.md lists them. */
extern const struct key_def config_keys[_K_MAX];
extern const char *const config_node_keys[CONFIG_N_NODE_KEYS];

#define CONFIG_FIELD(c, k, type) ((type *) ((char *) (c) + config_keys[k].offset))

/* The key called name, or -1. */
/* log_error() of a configuration error: control bytes of the keys, values and paths it echoes
 * are shown as \xNN, never sent to the terminal as they are (escape sequences). */
void config_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int config_find_key(const char *name);
/* Whether key k holds a string (char *) rather than a number or an enum. */
bool config_is_string_key(int k);
/* "; did you mean 'nodes'?" or "; known keys: ..." into buf. */
const char *config_key_hint(const char *key, bool node_section, bool command_line, char *buf, size_t len);
/* Check a value and set cluster key k / node key `which` of node n (1..) from it; base: the
 * directory relative paths are taken from (NULL: the current one); shown_key: the key as the
 * user wrote it.  One error line and -EINVAL (c unchanged) for a bad value. */
int config_set_key(struct fame_config *c, int k, const char *value, const char *origin, const char *base,
                   const char *shown_key);
int config_set_node_key(struct fame_config *c, uint32_t n, int which, const char *value, const char *origin,
                        const char *shown_key);
/* parse_node_name(exact) of the part of key before dot. */
int config_parse_node_prefix(const char *key, const char *dot, uint32_t *ret);
/* A Debian login name FAM/E can make: [a-z_][a-z0-9_-]{0,31}, not root. */
bool config_user_name_ok(const char *value);
/* a + "/" + b (no double slash); NULL when out of memory. */
char *config_path_join(const char *a, const char *b);

/* Non-string values as text (sizes compact: "1G"); strings as they are. */
const char *config_value_text(const struct fame_config *c, int k, char *buf, size_t len);
/* Where a value came from: "default" for NULL. */
const char *config_origin_text(const char *o);

#endif
