/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cluster configuration: embedded defaults, overridden by a fame.conf file (INI), overridden by
 * the command line.  Every key is documented in docs/config.md with its default; `fame config`
 * prints the effective configuration and where each value came from.
 *
 * File format (strict): "[cluster]" holds cluster keys, "[nodeNN]" (node01..node128) holds
 * per-node keys; "key = value" lines; '#' or ';' start a comment line; blank lines ignored.
 * Any unknown section or key, a duplicate key, or a bad value is an error "FILE:LINE: what is
 * wrong".
 */
#ifndef FAME_CONFIG_H
#define FAME_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fame.h"

enum fame_accel { FAME_ACCEL_AUTO, FAME_ACCEL_KVM, FAME_ACCEL_TCG };
/* The number of cluster keys (state_dir ... down_timeout); sizes the private origin table. */
#define CONFIG_N_KEYS 31
/* key tb_size's default, MiB (plan.h says why) */
#define CONFIG_DEFAULT_TB_SIZE_MIB 32u
/* Node keys: memory, cpus, arch. */
#define CONFIG_N_NODE_KEYS 3
#define CONFIG_MAX_FORWARDS 16u
enum fame_kind { FAME_KIND_DISKLESS, FAME_KIND_DEBIAN };
enum fame_backend { FAME_BACKEND_QEMU, FAME_BACKEND_LIBVIRT };
enum fame_arch { FAME_ARCH_X86_64, FAME_ARCH_AARCH64 };
/* The coherence and crash checker (docs/check.md): off, or every node's QEMU runs its plugin. */
enum fame_check { FAME_CHECK_OFF, FAME_CHECK_COHERENCE };
/* Who may say what to the Librarian (docs/librarian.md): callers prove themselves with a secret,
 * or (none: HPE's original clients, which send none) every caller is believed. */
enum fame_librarian_auth { FAME_LIBRARIAN_AUTH_SECRET, FAME_LIBRARIAN_AUTH_NONE };

struct fame_node_config {
        uint64_t memory;                /* bytes; node key "memory" (default: cluster memory) */
        uint32_t cpus;                  /* node key "cpus" (default: cluster cpus) */
        enum fame_arch arch;            /* node key "arch" (default: cluster arch) */
};

struct fame_config {
        char *name;                     /* cluster name: [a-z0-9][a-z0-9_-]{0,31}; default "default" */
        char *state_dir;                /* key state_dir: $XDG_STATE_HOME/fame/NAME or ~/.local/state/fame/NAME */
        char *cache_dir;                /* key cache_dir: $XDG_CACHE_HOME/fame or ~/.cache/fame (node images) */
        char *fam_path;                 /* key fam: STATE_DIR/fam */
        uint64_t fam_size;              /* key fam_size: 1G (power of two) */
        uint64_t book_size;             /* key book_size: 8M */
        uint32_t nodes;                 /* key nodes: 4 (1..FAME_MAX_NODES) */
        uint32_t nodes_per_enclosure;   /* key nodes_per_enclosure: 10 */
        uint32_t enclosures_per_rack;   /* key enclosures_per_rack: 4 */
        uint64_t memory;                /* key memory: 256M per node */
        uint32_t cpus;                  /* key cpus: 1 vCPU per node (TCG adds maxcpus >= 2) */
        uint32_t tb_size;               /* key tb_size: 32 MiB of TCG translation cache per node */
        enum fame_accel accel;          /* key accel: auto | kvm | tcg */
        enum fame_check check;          /* key check: off | coherence (fame up --check); TCG only */
        enum fame_librarian_auth librarian_auth; /* key librarian_auth: secret | none */
        enum fame_kind kind;            /* key kind: diskless | debian */
        enum fame_arch arch;            /* key arch: x86_64 | aarch64 (nodeNN.arch for mixed clusters) */
        char *qemu_aarch64;             /* key qemu_aarch64: qemu-system-aarch64 */
        enum fame_backend backend;      /* key backend: qemu (QEMU processes of fame's own) | libvirt (domains) */
        char *libvirt_uri;              /* key libvirt_uri: qemu:///system */
        char *kernel;                   /* key kernel: "" = the newest /boot/vmlinuz-* */
        char *qemu;                     /* key qemu: qemu-system-x86_64 */
        char *overlay;                  /* key overlay: "" or a directory copied into every node */
        char *share;                    /* key share: "" or a host directory every node mounts read-only at /share */
        char *release;                  /* key release: Debian release of kind=debian images (bookworm) */
        char *mirror;                   /* key mirror: "" = the Debian mirror the host's apt uses */
        char *packages;                 /* key packages: extra packages for debian images ("") */
        uint64_t disk_size;             /* key disk_size: root file system size of debian images (4G) */
        char *user;                     /* key user: account made in debian nodes (login name, "fame" for root) */
        char *forward;                  /* key forward: host services nodes reach at torms:PORT ("") */
        uint32_t ready_timeout;         /* key ready_timeout: 120 seconds */
        uint32_t down_timeout;          /* key down_timeout: 15 seconds before a forced stop */
        struct fame_node_config node[FAME_MAX_NODES];   /* [nodeNN] sections, index N-1; always the
                                                           effective values (cluster ones unless set) */

        /* Private to config*.c: where each value came from ("PATH:LINE", "command line"; NULL =
         * default), cluster keys in `fame config` order, node keys as [N-1][0 memory, 1 cpus]. */
        char *origin[CONFIG_N_KEYS];
        char *node_origin[FAME_MAX_NODES][CONFIG_N_NODE_KEYS];
};

/* Fills defaults for cluster NAME (NULL: "default"); uses $XDG_STATE_HOME, $XDG_CACHE_HOME,
 * $HOME.  Returns -EINVAL (logged) for a bad cluster name. */
int config_init(struct fame_config *c, const char *name);

/* Reads a fame.conf; every error is logged as "PATH:LINE: ..." and returns -EINVAL (a file that
 * cannot be read: one line with the reason, -errno).  On error, c is unchanged (the file is
 * applied all or nothing).  Relative paths in the file are taken from the file's directory. */
int config_load_file(struct fame_config *c, const char *path);

/* Sets one cluster key ("nodes", "memory", ...) or node key ("node03.memory") from text, as
 * the file and the command line do; origin is recorded for `fame config` ("default",
 * "PATH:LINE", "command line").  Errors are logged with the origin and return -EINVAL; c is
 * then unchanged.  Relative paths are taken from the current directory. */
int config_set(struct fame_config *c, const char *key, const char *value, const char *origin);

/* Cross-key checks after everything is applied (e.g. fam_size vs nodes and book_size, via
 * fame_geometry_compute); logs one line and returns -EINVAL. */
int config_check(const struct fame_config *c);
/* A fam_size nobody set grows to what the nodes need (metadata plus 4 books per node, rounded up
 * to a power of two), so that `fame up -n 40` works with defaults; one that was set stays as it
 * is (config_check() then says if it is too small). */
void config_size_fam(struct fame_config *c);

/* Whether any of the c->nodes nodes is of architecture a. */
bool config_has_arch(const struct fame_config *c, enum fame_arch a);

/* `fame config`: every key, its value and origin; as text ("key = value  # origin") or JSON. */
int config_print(const struct fame_config *c, FILE *f, bool json);

/* Where the default config file of cluster NAME lives: $XDG_CONFIG_HOME/fame/NAME.conf or
 * ~/.config/fame/NAME.conf (it need not exist). Caller frees.  NULL (errno set, nothing
 * logged) when neither variable holds an absolute path, or out of memory. */
char *config_default_path(const char *name);

/* Frees the strings and zeroes c; accepts a zeroed or already freed config. */
void config_done(struct fame_config *c);

/* The names of each enum's values, one table each: what config keys take, what `fame config`,
 * STATE/cluster.json and `fame status` show.  Indexed by value. */
struct enum_names {
        const char *const *name;
        size_t n;
};
extern const struct enum_names accel_names, kind_names, backend_names, arch_names, check_names, librarian_auth_names;
/* The value called s, or -EINVAL (nothing logged). */
int enum_from_name(const struct enum_names *t, const char *s);
/* The name of value v, or "unknown". */
const char *enum_to_name(const struct enum_names *t, int v);
/* "auto, kvm or tcg": what a config value may be, for messages. */
const char *enum_expected(const struct enum_names *t, char *buf, size_t len);

static inline const char *accel_to_string(enum fame_accel a) { return enum_to_name(&accel_names, (int) a); }
static inline const char *kind_to_string(enum fame_kind k) { return enum_to_name(&kind_names, (int) k); }
static inline const char *backend_to_string(enum fame_backend b) { return enum_to_name(&backend_names, (int) b); }
static inline const char *arch_to_string(enum fame_arch a) { return enum_to_name(&arch_names, (int) a); }
static inline const char *check_to_string(enum fame_check k) { return enum_to_name(&check_names, (int) k); }
static inline const char *librarian_auth_to_string(enum fame_librarian_auth k) {
        return enum_to_name(&librarian_auth_names, (int) k);
}

/* A node's number from its name.  exact (config sections and keys): "node01".."node128" only,
 * as "node%02u" prints them; otherwise (a node named to a verb) also "node2", "2" or "02".
 * -EINVAL (nothing logged) for anything else. */
int parse_node_name(const char *s, bool exact, uint32_t *ret);

/* One forward entry "PORT" or "PORT:HOSTPORT" -> the port nodes connect to at torms and the
 * port on the host's 127.0.0.1 it reaches.  -EINVAL when malformed (nothing logged). */
int config_parse_forward(const char *item, uint16_t *ret_guest, uint16_t *ret_host);

#endif
