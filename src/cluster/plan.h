/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cluster plan: everything needed to start the nodes, derived from the configuration and
 * the injected paths (state directory, kernel, initramfs) — and the QEMU command line of a
 * node, a pure function of the plan (no I/O), checked against golden files.
 */
#ifndef FAME_PLAN_H
#define FAME_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "spawn.h"
#include "fame-constants.h"

struct node_plan {
        uint32_t id;                    /* 1.. */
        char name[16];                  /* node01 */
        uint64_t memory;
        uint32_t cpus;
        enum fame_arch arch;            /* x86_64, or aarch64 (qemu-system-aarch64 -M virt, TCG) */
        uint64_t boot;                  /* nonce of the current boot, written back to the slot */
        uint16_t ssh_port;              /* debian: 127.0.0.1 port forwarded to the node's sshd */
        uint32_t librarian_node;        /* the node's Librarian node id, 0: no Librarian */
        uint16_t librarian_port;        /* 127.0.0.1 port of the Librarian pinned to this node */
        char machine_id[33];            /* debian: the node's /etc/machine-id */
        char *dir;                      /* STATE/nodes/node01 */
        char *qmp_sock, *qga_sock, *console_sock, *console_log, *pidfile;
        char *librarian_sock;           /* the Librarian's socket for the node's port (--node-socket) */
        char *agent_sock;               /* direct backend: the agent keeper's socket for this node */
        char *net_sock;                 /* the node's end of the private segment */
        char *disk, *seed;              /* debian: qcow2 overlay, fw_cfg seed (tar) */
        bool fault_boot;                /* this boot fails on purpose ($FAME_FAULT_BOOT; not saved) */
};

/* A boot that must fail (node_plan.fault_boot) runs this init, which no image has. */
#define PLAN_FAULT_INIT "/fame-fault-boot"

/* The private segment's addresses, torms and the Librarian's port: fame-constants.h. */

struct forward {
        uint16_t guest_port;            /* nodes connect to torms:guest_port */
        uint16_t host_port;             /* which reaches 127.0.0.1:host_port on the host */
};

struct cluster_plan {
        char *name;
        char *state_dir;
        char *fam_path;
        uint64_t fam_size;
        enum fame_accel accel;          /* resolved: FAME_ACCEL_KVM or FAME_ACCEL_TCG */
        enum fame_check check;          /* the checker: every node's QEMU loads check_plugin (TCG) */
        char *check_plugin;             /* fame-check.so ("" without the checker) */
        enum fame_librarian_auth librarian_auth;        /* secret: nodes get theirs via fw_cfg */
        char *qemu;
        char *kernel, *initrd;
        char *qemu_aarch64, *kernel_aarch64, *initrd_aarch64;   /* aarch64 nodes ("" when none) */
        enum fame_kind kind;
        enum fame_backend backend;      /* who runs the QEMUs: fame itself or libvirt */
        char *libvirt_uri;              /* libvirt: the connection URI */
        uint32_t uid, gid;              /* libvirt: QEMU runs as fame's user (the owner of the state) */
        char *image_dir, *base;         /* debian: the image and its qcow2 base */
        char *image_dir_aarch64, *base_aarch64; /* debian: aarch64 nodes' ("" when none) */
        char *share;                    /* key share: a host directory exported read-only to every
                                         * node (virtio 9p, tag FAME_SHARE_TAG; "" for none) */
        char *user;                     /* debian: the account in every node */
        char *fame_bin;                 /* this fame, which QEMU runs for guestfwd relays */
        char *switch_sock, *switch_pid; /* the private segment's switch */
        char *agents_pid, *agents_ready;        /* the agent keeper (direct backend) */
        char *librarian_dir;            /* STATE/librarian: database, topology, pid, log, port */
        uint16_t librarian_port;        /* 127.0.0.1 port of the Librarian (host clients), 0: none */
        uint16_t lmp_port;              /* 127.0.0.1 port of its management view (docs/lmp.md), 0: none */
        struct forward forward[CONFIG_MAX_FORWARDS];
        uint32_t n_forward;
        uint32_t nodes;
        uint32_t nodes_per_enclosure, enclosures_per_rack;
        uint32_t tb_size;               /* TCG translation cache per node, MiB (key tb_size) */
        struct node_plan node[FAME_MAX_NODES];
};

/* Fills the plan; logs and returns -EINVAL/-ENAMETOOLONG for paths QEMU cannot use (UNIX
 * socket paths are limited to 107 bytes). */
struct image;
/* img: the node image (kernel, initrd; for debian also dir and base). fame_bin: the fame binary
 * QEMU runs for host services (forward=). */
/* img_aarch64: the aarch64 node image, NULL when no node is aarch64.  accel applies to x86_64
 * nodes; aarch64 nodes are always TCG, and so is every node with the checker (c->check), whose
 * QEMU plugin is check_plugin (programs.h; unused and may be NULL without the checker). */
int plan_build(const struct fame_config *c, enum fame_accel accel, const struct image *img, const struct image *img_aarch64,
               const char *fame_bin, const char *check_plugin, struct cluster_plan *ret);
/* Whether a node runs under KVM (x86_64 nodes of a KVM plan). */
static inline bool plan_node_kvm(const struct cluster_plan *p, const struct node_plan *n) {
        return p->accel == FAME_ACCEL_KVM && n->arch == FAME_ARCH_X86_64;
}
void plan_done(struct cluster_plan *p);

/* The node's QEMU command line (daemonizing, with a pidfile). */
struct cmd *qemu_command(const struct cluster_plan *p, const struct node_plan *n);

/* The parts of a node's machine that both backends describe the same way (backend-libvirt.c puts them
 * in domain XML): */
/* TCG's translation cache per node, MiB: the default of key tb_size.  Where memory and boot
 * time trade (docs/cluster.md, "Where a node's boot goes"): a boot fills 32 MiB about three
 * times over; 16 MiB saves 19 MiB PSS a node for 10 % more boot CPU. */
#define PLAN_TB_SIZE_MIB CONFIG_DEFAULT_TB_SIZE_MIB
/* The plan's translation cache (a cluster.json of before the key: the default). */
static inline uint32_t plan_tb_size(const struct cluster_plan *p) {
        return p->tb_size ? p->tb_size : PLAN_TB_SIZE_MIB;
}
/* TCG nodes get room for a second vCPU: multi-threaded TCG then emits real host atomics. */
static inline uint32_t plan_max_cpus(const struct cluster_plan *p, const struct node_plan *n) {
        return plan_node_kvm(p, n) || n->cpus >= 2 ? n->cpus : 2;
}
/* The kernel command line (caller frees; NULL on ENOMEM). */
char *plan_kernel_cmdline(const struct cluster_plan *p, const struct node_plan *n);
/* fw_cfg entries: the node's identity, and its seed file for debian nodes. */
#define PLAN_MAX_FW_CFG 8
struct fw_cfg_entry {
        const char *name;               /* opt/org.fame/... */
        char value[4096];               /* the string, or the file's path */
        bool file;
};
size_t plan_fw_cfg(const struct cluster_plan *p, const struct node_plan *n, struct fw_cfg_entry out[PLAN_MAX_FW_CFG]);
/* The file of node n's Librarian secret (STATE/librarian/secrets/node-ID.secret); false when
 * the node has none (no Librarian, or librarian_auth = none). */
bool plan_librarian_secret(const struct cluster_plan *p, const struct node_plan *n, char *buf, size_t len);
/* The directory of the cluster's Librarian secrets (STATE/librarian/secrets), and a host
 * program's way in: $FAME_LIBRARIAN_SECRET_FILE names the host's secret unless it is set
 * already (fame shelf, fame check report). */
#define PLAN_SECRETS_DIR "secrets"
void plan_use_host_secret(const struct cluster_plan *p);
/* -object/-device of the FAM (file-backed ivshmem-plain at PCI 00:10.0 of the node's root bus). */
void plan_fam_args(const struct cluster_plan *p, const struct node_plan *n, struct cmd *c);
/* -netdev/-device of the node's two networks (user-mode at 00:06.0, private segment at 00:07.0). */
void plan_net_args(const struct cluster_plan *p, const struct node_plan *n, struct cmd *c);
/* -plugin of the checker (nothing without it): "file=PLUGIN,node=N,arch=ARCH,bar=0xBAR2,fam=FAM,
 * size=BYTES,state=STATE" with ',' in the paths doubled (QEMU's option syntax). */
/* libvirt: for a libvirt domain, whose RAM backend comes before the FAM in QEMU's RAM blocks
 * (bar= is then BAR2 + the node's memory: see plan.c). */
/* -fsdev/-device of key share's directory, read-only (nothing without it). */
void plan_share_args(const struct cluster_plan *p, struct cmd *c);
void plan_check_args(const struct cluster_plan *p, const struct node_plan *n, bool libvirt, struct cmd *c);
/* The TCG CPU's tuning, as -global properties of QEMU's "max" CPU (both backends; nothing under
 * KVM). */
void plan_cpu_args(const struct cluster_plan *p, const struct node_plan *n, struct cmd *c);
/* Whether QEMU must start relay processes for the node (guestfwd cmd: the Librarian, forward=). */
bool plan_needs_relays(const struct cluster_plan *p, const struct node_plan *n);

/* JSON form saved as STATE/cluster.json by `fame up`, read back by the other verbs. */
struct json_object;
struct json_object *plan_to_json(const struct cluster_plan *p);
int plan_from_json(struct json_object *o, struct cluster_plan *ret);
int plan_save(const struct cluster_plan *p);            /* atomic write of STATE/cluster.json */
int plan_load(const char *state_dir, struct cluster_plan *ret);   /* -ENOENT: never started */

#endif
