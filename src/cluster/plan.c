/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "image.h"
#include "fame-constants.h"
#include "log.h"
#include "macro.h"
#include "plan.h"
#include "util.h"

#define SUN_PATH_MAX 107

static char *path_join(const char *a, const char *b) {
        char *s = NULL;
        return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

/* A node's files, in its directory STATE/nodes/NAME (n->dir). */
static const struct {
        size_t offset;                  /* of the char * in struct node_plan */
        const char *file;
} node_files[] = {
        { offsetof(struct node_plan, qmp_sock), "qmp.sock" },
        { offsetof(struct node_plan, qga_sock), "qga.sock" },
        { offsetof(struct node_plan, librarian_sock), "lib.sock" },
        { offsetof(struct node_plan, agent_sock), "agent.sock" },
        { offsetof(struct node_plan, console_sock), "console.sock" },
        { offsetof(struct node_plan, console_log), "console.log" },
        { offsetof(struct node_plan, pidfile), "qemu.pid" },
        { offsetof(struct node_plan, net_sock), "net.sock" },
        { offsetof(struct node_plan, disk), "disk.qcow2" },
        { offsetof(struct node_plan, seed), "seed.tar" },
};

#define NODE_FILE(n, i) ((char **) ((char *) (n) + node_files[i].offset))

static int node_paths(struct cluster_plan *p, struct node_plan *n) {
        char rel[64];
        snprintf(rel, sizeof rel, "nodes/%s", n->name);
        n->dir = path_join(p->state_dir, rel);
        if (!n->dir)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(node_files); i++)
                if (!(*NODE_FILE(n, i) = path_join(n->dir, node_files[i].file)))
                        return -ENOMEM;
        /* console.sock is the longest socket name (agent.sock, the agent keeper's, is shorter) */
        if (strlen(n->console_sock) > SUN_PATH_MAX)
                return log_error_errno(-ENAMETOOLONG, "State directory '%s' is too long for QEMU's sockets (%zu > %d bytes); set state_dir to a shorter path",
                                       p->state_dir, strlen(n->console_sock), SUN_PATH_MAX);
        return 0;
}

/* The cluster's files in STATE that are not saved but made again: shared by plan_build() and
 * plan_from_json(). */
static const struct {
        size_t offset;                  /* of the char * in struct cluster_plan */
        const char *file;
} state_files[] = {
        { offsetof(struct cluster_plan, switch_sock), "switch.sock" },
        { offsetof(struct cluster_plan, switch_pid), "switch.pid" },
        { offsetof(struct cluster_plan, agents_pid), "agents.pid" },
        { offsetof(struct cluster_plan, agents_ready), "agents.ready" },
        { offsetof(struct cluster_plan, librarian_dir), "librarian" },
};

#define STATE_FILE(p, i) ((char **) ((char *) (p) + state_files[i].offset))

static int common_paths(struct cluster_plan *p) {
        for (size_t i = 0; i < ELEMENTSOF(state_files); i++)
                if (!(*STATE_FILE(p, i) = path_join(p->state_dir, state_files[i].file)))
                        return -ENOMEM;
        return 0;
}

/* ---- the plan's fields, as saved in STATE/cluster.json ------------------------------------------ */

enum field_type {
        F_STRING,                       /* char *, never NULL in a built plan */
        F_CHARS,                        /* a char array (node_plan.machine_id) */
        F_U64, F_U32, F_U16,
        F_ENUM,                         /* an enum, by name (config.h) */
        F_FORWARDS,                     /* forward[] and n_forward */
        F_NODES,                        /* node[] and nodes */
};

struct field {
        const char *key;
        enum field_type type;
        size_t offset;
        size_t size;                    /* F_CHARS */
        bool required;                  /* plan_from_json(): the file is not a plan without it */
        const char *fallback;           /* F_STRING: the value when the key is absent */
        const struct enum_names *names; /* F_ENUM */
        int fallback_value;             /* F_ENUM: the value when the key is absent or unknown */
};

#define PLAN(f) .offset = offsetof(struct cluster_plan, f)
#define NODE(f) .offset = offsetof(struct node_plan, f)

/* In the order cluster.json has them. */
static const struct field plan_fields[] = {
        { "name", F_STRING, PLAN(name), .required = true },
        { "state_dir", F_STRING, PLAN(state_dir), .required = true },
        { "fam", F_STRING, PLAN(fam_path), .required = true },
        { "fam_size", F_U64, PLAN(fam_size) },
        /* resolved: kvm, or tcg for anything else */
        { "accel", F_ENUM, PLAN(accel), .required = true, .names = &accel_names, .fallback_value = FAME_ACCEL_TCG },
        { "check", F_ENUM, PLAN(check), .names = &check_names, .fallback_value = FAME_CHECK_OFF },
        { "check_plugin", F_STRING, PLAN(check_plugin), .fallback = "" },
        { "librarian_auth", F_ENUM, PLAN(librarian_auth), .names = &librarian_auth_names,
          .fallback_value = FAME_LIBRARIAN_AUTH_SECRET },
        { "qemu", F_STRING, PLAN(qemu), .required = true },
        { "kernel", F_STRING, PLAN(kernel), .fallback = "" },
        { "initrd", F_STRING, PLAN(initrd), .fallback = "" },
        { "qemu_aarch64", F_STRING, PLAN(qemu_aarch64), .fallback = "qemu-system-aarch64" },
        { "kernel_aarch64", F_STRING, PLAN(kernel_aarch64), .fallback = "" },
        { "initrd_aarch64", F_STRING, PLAN(initrd_aarch64), .fallback = "" },
        { "kind", F_ENUM, PLAN(kind), .names = &kind_names, .fallback_value = FAME_KIND_DISKLESS },
        { "backend", F_ENUM, PLAN(backend), .names = &backend_names, .fallback_value = FAME_BACKEND_QEMU },
        { "libvirt_uri", F_STRING, PLAN(libvirt_uri), .fallback = "qemu:///system" },
        { "uid", F_U32, PLAN(uid) },
        { "gid", F_U32, PLAN(gid) },
        { "image_dir", F_STRING, PLAN(image_dir), .fallback = "" },
        { "base", F_STRING, PLAN(base), .fallback = "" },
        { "image_dir_aarch64", F_STRING, PLAN(image_dir_aarch64), .fallback = "" },
        { "base_aarch64", F_STRING, PLAN(base_aarch64), .fallback = "" },
        { "share", F_STRING, PLAN(share), .fallback = "" },
        { "user", F_STRING, PLAN(user), .fallback = "fame" },
        { "fame_bin", F_STRING, PLAN(fame_bin), .fallback = "fame" },
        { "forward", F_FORWARDS, PLAN(forward) },
        { "librarian_port", F_U16, PLAN(librarian_port) },
        { "lmp_port", F_U16, PLAN(lmp_port) },
        { "nodes_per_enclosure", F_U32, PLAN(nodes_per_enclosure) },
        { "enclosures_per_rack", F_U32, PLAN(enclosures_per_rack) },
        { "tb_size", F_U32, PLAN(tb_size) },
        { "nodes", F_NODES, PLAN(node), .required = true },
};

static const struct field node_fields[] = {
        { "id", F_U32, NODE(id) },
        { "memory", F_U64, NODE(memory) },
        { "cpus", F_U32, NODE(cpus) },
        { "arch", F_ENUM, NODE(arch), .names = &arch_names, .fallback_value = FAME_ARCH_X86_64 },
        { "boot", F_U64, NODE(boot) },
        { "ssh_port", F_U16, NODE(ssh_port) },
        { "librarian_node", F_U32, NODE(librarian_node) },
        { "librarian_port", F_U16, NODE(librarian_port) },
        { "machine_id", F_CHARS, NODE(machine_id), .size = sizeof ((struct node_plan *) 0)->machine_id },
};

#define FIELD_AT(base, f, type) ((type *) ((char *) (base) + (f)->offset))

/* Whether every string field of the plan is set (after strdup()s that may have failed). */
static bool strings_set(const struct cluster_plan *p) {
        for (size_t i = 0; i < ELEMENTSOF(plan_fields); i++)
                if (plan_fields[i].type == F_STRING && !*FIELD_AT(p, &plan_fields[i], char *const))
                        return false;
        return true;
}

static int parse_forwards(const char *list, struct cluster_plan *p) {
        const char *q = list ? list : "";
        while (*q && p->n_forward < CONFIG_MAX_FORWARDS) {
                char item[32];
                size_t len = strcspn(q, ",");
                snprintf(item, sizeof item, "%.*s", (int) len, q);
                struct forward *f = &p->forward[p->n_forward];
                if (config_parse_forward(item, &f->guest_port, &f->host_port) < 0)
                        return -EINVAL;
                p->n_forward++;
                q += len;
                if (*q == ',')
                        q++;
        }
        return 0;
}

int plan_build(const struct fame_config *c, enum fame_accel accel, const struct image *img, const struct image *img_aarch64,
               const char *fame_bin, const char *check_plugin, struct cluster_plan *ret) {
        bool check = c->check != FAME_CHECK_OFF;
        struct cluster_plan p = {
                .fam_size = c->fam_size,
                /* the checker is a TCG plugin */
                .accel = check ? FAME_ACCEL_TCG : accel,
                .check = c->check,
                .librarian_auth = c->librarian_auth,
                .kind = c->kind,
                .backend = c->backend,
                .uid = (uint32_t) getuid(),
                .gid = (uint32_t) getgid(),
                .nodes = c->nodes,
                .nodes_per_enclosure = c->nodes_per_enclosure,
                .enclosures_per_rack = c->enclosures_per_rack,
                .tb_size = c->tb_size,
        };
        int r;

        p.name = strdup(c->name);
        p.state_dir = strdup(c->state_dir);
        p.fam_path = strdup(c->fam_path);
        p.qemu = strdup(c->qemu);
        p.kernel = strdup(img && img->kernel ? img->kernel : "");
        p.initrd = strdup(img && img->initrd ? img->initrd : "");
        p.qemu_aarch64 = strdup(c->qemu_aarch64 ? c->qemu_aarch64 : "qemu-system-aarch64");
        p.kernel_aarch64 = strdup(img_aarch64 && img_aarch64->kernel ? img_aarch64->kernel : "");
        p.initrd_aarch64 = strdup(img_aarch64 && img_aarch64->initrd ? img_aarch64->initrd : "");
        p.image_dir = strdup(img && img->dir ? img->dir : "");
        p.base = strdup(img && img->base ? img->base : "");
        p.image_dir_aarch64 = strdup(img_aarch64 && img_aarch64->dir && p.kind == FAME_KIND_DEBIAN ? img_aarch64->dir : "");
        p.base_aarch64 = strdup(img_aarch64 && img_aarch64->base ? img_aarch64->base : "");
        p.share = strdup(c->share ? c->share : "");
        p.user = strdup(c->user);
        p.libvirt_uri = strdup(c->libvirt_uri ? c->libvirt_uri : "qemu:///system");
        p.fame_bin = strdup(fame_bin ? fame_bin : "fame");
        p.check_plugin = strdup(check && check_plugin ? check_plugin : "");
        if (!strings_set(&p) || common_paths(&p) < 0) {
                plan_done(&p);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        if (strpbrk(p.fame_bin, "',\\")) {
                plan_done(&p);
                return log_error_errno(-EINVAL, "The fame binary's path '%s' holds a quote, comma or backslash, which QEMU's command line cannot carry; install or build FAM/E elsewhere",
                                       fame_bin);
        }
        if (*p.share) {
                /* the one look at the disk here: QEMU would only say so once a node starts */
                struct stat st;
                r = stat(p.share, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
                if (r < 0) {
                        plan_done(&p);
                        return log_error_errno(r, "share = %s: %s; %s, or set share = \"\" for none", c->share,
                                               r == -ENOTDIR ? "not a directory" : strerror(-r),
                                               r == -ENOTDIR ? "name a directory" : "make the directory");
                }
        }
        if (check && !*p.check_plugin) {
                plan_done(&p);
                return log_error_errno(-EINVAL, "check = %s needs the checker's QEMU plugin (fame-check.so)", check_to_string(c->check));
        }
        if (parse_forwards(c->forward, &p) < 0) {
                plan_done(&p);
                return log_error_errno(-EINVAL, "forward = %s: expected PORT or PORT:HOSTPORT entries", c->forward);
        }
        for (uint32_t i = 0; i < p.n_forward; i++)
                if (p.forward[i].guest_port == FAME_LIBRARIAN_PORT) {
                        plan_done(&p);
                        return log_error_errno(-EINVAL, "forward = %s: port %u is the Librarian's (torms:%u in every node); forward another port",
                                               c->forward, FAME_LIBRARIAN_PORT, FAME_LIBRARIAN_PORT);
                }
        for (uint32_t i = 0; i < p.nodes; i++) {
                struct node_plan *n = &p.node[i];
                n->id = i + 1;
                snprintf(n->name, sizeof n->name, "node%02" PRIu32, n->id);
                n->memory = c->node[i].memory ? c->node[i].memory : c->memory;
                n->cpus = c->node[i].cpus ? c->node[i].cpus : c->cpus;
                n->arch = c->node[i].arch;
                r = node_paths(&p, n);
                if (r < 0) {
                        plan_done(&p);
                        return r == -ENOMEM ? log_error_errno(r, "Out of memory") : r;
                }
        }
        *ret = p;
        return 0;
}

void plan_done(struct cluster_plan *p) {
        if (!p)
                return;
        for (size_t i = 0; i < ELEMENTSOF(plan_fields); i++)
                if (plan_fields[i].type == F_STRING)
                        free(*FIELD_AT(p, &plan_fields[i], char *));
        for (size_t i = 0; i < ELEMENTSOF(state_files); i++)
                free(*STATE_FILE(p, i));
        for (uint32_t i = 0; i < FAME_MAX_NODES; i++) {
                struct node_plan *n = &p->node[i];
                free(n->dir);
                for (size_t k = 0; k < ELEMENTSOF(node_files); k++)
                        free(*NODE_FILE(n, k));
        }
        memset(p, 0, sizeof *p);
}

char *plan_kernel_cmdline(const struct cluster_plan *p, const struct node_plan *n) {
        /* What a TCG boot does not need, measured (docs/cluster.md, "Where a node's boot goes"):
         * - x86 no_timer_check: no IO-APIC timer self-check.  It fails when the vCPU is starved
         *   (many TCG nodes booting on a few host cores: "IO-APIC + timer doesn't work!", a
         *   panic), and the timer QEMU emulates is known to work.
         * - x86 acpi=noirq: PCI interrupts routed by the BIOS's table, not by running the
         *   ACPI interrupt-link methods, 0.3 s of interpreted AML per virtio device under TCG.
         * - cryptomgr.notests: no self-tests of every crypto algorithm at boot (0.2 s).
         * Together a diskless node is ready in 2.3 s instead of 3.1 s. */
        const char *tune = n->arch == FAME_ARCH_AARCH64 ? " cryptomgr.notests" : " no_timer_check acpi=noirq cryptomgr.notests";
        char *s = NULL;
        int k;
        if (p->kind == FAME_KIND_DEBIAN)
                /* systemd takes the hostname and machine-id from here before it reads /etc */
                k = asprintf(&s, "console=%s root=/dev/vda rw quiet panic=-1%s systemd.hostname=%s systemd.machine_id=%s "
                             "fame.node=%" PRIu32 " fame.nodes=%" PRIu32 " fame.cluster=%s fame.boot=%" PRIu64,
                             n->arch == FAME_ARCH_AARCH64 ? "ttyAMA0" : "ttyS0", tune, n->name, n->machine_id, n->id, p->nodes, p->name, n->boot);
        else
                k = asprintf(&s, "console=%s quiet panic=-1%s fame.node=%" PRIu32 " fame.nodes=%" PRIu32 " fame.cluster=%s fame.boot=%" PRIu64,
                             n->arch == FAME_ARCH_AARCH64 ? "ttyAMA0" : "ttyS0", tune, n->id, p->nodes, p->name, n->boot);
        if (k >= 0 && n->fault_boot) {
                /* an init that is not there: the kernel panics, QEMU exits (-no-reboot) */
                char *f = NULL;
                k = asprintf(&f, "%s rdinit=" PLAN_FAULT_INIT " init=" PLAN_FAULT_INIT, s);
                free(s);
                s = f;
        }
        return k < 0 ? NULL : s;
}

bool plan_librarian_secret(const struct cluster_plan *p, const struct node_plan *n, char *buf, size_t len) {
        if (p->librarian_auth != FAME_LIBRARIAN_AUTH_SECRET || !n->librarian_port || !n->librarian_node || !p->librarian_dir)
                return false;
        int k = snprintf(buf, len, "%s/" PLAN_SECRETS_DIR "/node-%" PRIu32 ".secret", p->librarian_dir, n->librarian_node);
        return k > 0 && (size_t) k < len;
}

void plan_use_host_secret(const struct cluster_plan *p) {
        char path[4096];
        if (p->librarian_dir &&
            snprintf(path, sizeof path, "%s/" PLAN_SECRETS_DIR "/host.secret", p->librarian_dir) < (int) sizeof path)
                setenv(FAME_LIBRARIAN_SECRET_ENV, path, 0);
}

size_t plan_fw_cfg(const struct cluster_plan *p, const struct node_plan *n, struct fw_cfg_entry out[PLAN_MAX_FW_CFG]) {
        size_t k = 0;
        if (p->kind == FAME_KIND_DEBIAN) {
                /* the node's seed (keys, user, hostname), read by fame node-setup at first boot */
                out[k] = (struct fw_cfg_entry) { .name = "opt/org.fame/seed", .file = true };
                snprintf(out[k++].value, sizeof out[0].value, "%s", n->seed);
        }
        /* Node identity (read by libfame from /sys/firmware/qemu_fw_cfg). */
        out[k] = (struct fw_cfg_entry) { .name = "opt/org.fame/node" };
        snprintf(out[k++].value, sizeof out[0].value, "%" PRIu32, n->id);
        out[k] = (struct fw_cfg_entry) { .name = "opt/org.fame/cluster" };
        snprintf(out[k++].value, sizeof out[0].value, "%s", p->name);
        out[k] = (struct fw_cfg_entry) { .name = "opt/org.fame/boot" };
        snprintf(out[k++].value, sizeof out[0].value, "%" PRIu64, n->boot);
        out[k] = (struct fw_cfg_entry) { .name = "opt/org.fame/nodes" };
        snprintf(out[k++].value, sizeof out[0].value, "%" PRIu32, p->nodes);
        /* The Machine's coordinate of this node, relative as in TMCF: Rack/R/Enclosure/E/Node/N
         * (E within the rack, N within the enclosure). */
        uint32_t npe = p->nodes_per_enclosure ? p->nodes_per_enclosure : 10;
        uint32_t epr = p->enclosures_per_rack ? p->enclosures_per_rack : 4;
        uint32_t enc = (n->id - 1) / npe;
        out[k] = (struct fw_cfg_entry) { .name = "opt/org.fame/coordinate" };
        snprintf(out[k++].value, sizeof out[0].value, "Rack/%" PRIu32 "/Enclosure/%" PRIu32 "/Node/%" PRIu32,
                 enc / epr + 1, enc % epr + 1, (n->id - 1) % npe + 1);
        /* The node's Librarian secret (docs/librarian.md, "Who may say what"): the guest's
         * qemu_fw_cfg shows it to root only.  The Librarian made it before any node starts. */
        if (plan_librarian_secret(p, n, out[k].value, sizeof out[0].value)) {
                out[k].name = "opt/org.fame/secret";
                out[k++].file = true;
        }
        return k;
}

/* The escaped strings of one option-building function, freed together when it returns. */
struct opt_pool {
        char *s[16];
        size_t n;
};

static void opt_pool_free(struct opt_pool *pool) {
        for (size_t i = 0; i < pool->n; i++)
                free(pool->s[i]);
}

/* s for an option string (qemu_opt_escaped()); "" when out of memory, which QEMU then refuses */
static const char *opt_esc(struct opt_pool *pool, const char *s) {
        if (!s)
                return "";
        if (!strchr(s, ','))
                return s;
        if (pool->n == ELEMENTSOF(pool->s))
                return "";
        char *e = qemu_opt_escaped(s);
        if (!e)
                return "";
        pool->s[pool->n++] = e;
        return e;
}

void plan_fam_args(const struct cluster_plan *p, const struct node_plan *n, struct cmd *c) {
        _cleanup_(opt_pool_free) struct opt_pool e = {};
        /* The FAM: the cluster's file, shared (share=on is what makes it FAM), at a fixed PCI
         * address (libvirt assigns its own devices around it). */
        cmd_arg(c, "-object");
        cmd_argf(c, "memory-backend-file,id=fam,mem-path=%s,size=%" PRIu64 ",share=on", opt_esc(&e, p->fam_path), p->fam_size);
        /* The checker: QEMU 7.2 tells a TCG plugin a RAM access's address as its RAM block's
         * offset among all RAM blocks plus the address of the block's region (plan_check_args()).
         * The FAM's block comes first (or right after libvirt's RAM), so every block after it
         * is offset by the FAM's size: with a FAM of 4 GiB or more an x86_64 node's BAR2 sits
         * at that very size (above RAM, aligned to it), and the node's RAM and firmware would be
         * reported inside the FAM's range.  A reserved, never-used block as large as BAR2's
         * address right after the FAM moves every later block past it (address space only:
         * reserve=off, nothing is touched). */
        if (p->check != FAME_CHECK_OFF && n->arch != FAME_ARCH_AARCH64) {
                cmd_arg(c, "-object");
                cmd_argf(c, "memory-backend-ram,id=fam-check-pad,size=%" PRIu64 ",reserve=off",
                         check_bar2_base(false, p->fam_size, n->memory));
        }
        cmd_arg(c, "-device");
        cmd_argf(c, "ivshmem-plain,id=fam0,memdev=fam,bus=%s,addr=0x10", n->arch == FAME_ARCH_AARCH64 ? "pcie.0" : "pci.0");
}

void plan_net_args(const struct cluster_plan *p, const struct node_plan *n, struct cmd *c) {
        _cleanup_(opt_pool_free) struct opt_pool e = {};
        /* User-mode network, restricted: the node reaches only the forwarded host services
         * (torms:PORT, each connection relayed to 127.0.0.1 by `fame debug relay`); debian
         * nodes' sshd is reachable from the host's 127.0.0.1 only. */
        cmd_arg(c, "-netdev");
        {
                char spec[4096];
                size_t len = (size_t) snprintf(spec, sizeof spec, "user,id=net0,restrict=on,hostname=%s", n->name);
                if (p->kind == FAME_KIND_DEBIAN && len < sizeof spec)
                        len += (size_t) snprintf(spec + len, sizeof spec - len, ",hostfwd=tcp:127.0.0.1:%u-:22", n->ssh_port);
                for (uint32_t i = 0; i < p->n_forward && len < sizeof spec; i++)
                        len += (size_t) snprintf(spec + len, sizeof spec - len, ",guestfwd=tcp:" FAME_TORMS_ADDR ":%u-cmd:'%s' debug relay %u",
                                                 p->forward[i].guest_port, opt_esc(&e, p->fame_bin), p->forward[i].host_port);
                /* the Librarian, through the port that accepts only this node's id */
                if (n->librarian_port && len < sizeof spec)
                        len += (size_t) snprintf(spec + len, sizeof spec - len, ",guestfwd=tcp:" FAME_TORMS_ADDR ":%u-cmd:'%s' debug relay %u",
                                                 FAME_LIBRARIAN_PORT, opt_esc(&e, p->fame_bin), n->librarian_port);
                cmd_arg(c, spec);
        }
        cmd_arg(c, "-device");
        cmd_argf(c, "virtio-net-pci,netdev=net0,mac=52:54:00:fa:%02x:%02x,addr=0x6", (n->id >> 8) & 0xff, n->id & 0xff);
        /* The private segment among the nodes: a datagram socket to the cluster's switch. */
        cmd_arg(c, "-netdev");
        cmd_argf(c, "dgram,id=net1,local.type=unix,local.path=%s,remote.type=unix,remote.path=%s", opt_esc(&e, n->net_sock), opt_esc(&e, p->switch_sock));
        cmd_arg(c, "-device");
        cmd_argf(c, "virtio-net-pci,netdev=net1,mac=52:54:00:fb:%02x:%02x,addr=0x7", (n->id >> 8) & 0xff, n->id & 0xff);
}

void plan_share_args(const struct cluster_plan *p, struct cmd *c) {
        if (!*p->share)
                return;
        /* Key share: the host directory, read-only, as the 9p tag the node mounts at /share.
         * security_model=none: files keep the host's owners and modes, and QEMU (fame's user)
         * reads only what that user may read.  At 00:08.0 with either backend. */
        _cleanup_free_ char *path = qemu_opt_escaped(p->share);
        cmd_arg(c, "-fsdev");
        cmd_argf(c, "local,id=share,path=%s,security_model=none,readonly=on", path ? path : "");
        cmd_arg(c, "-device");
        cmd_arg(c, "virtio-9p-pci,fsdev=share,mount_tag=" FAME_SHARE_TAG ",addr=0x8");
}

void plan_check_args(const struct cluster_plan *p, const struct node_plan *n, bool libvirt, struct cmd *c) {
        if (p->check == FAME_CHECK_OFF)
                return;
        /* The checker: FAM/E's TCG plugin follows the node's accesses to the FAM (its BAR2 in the
         * node's physical address space) in the cluster's STATE/check (docs/check.md). */
        _cleanup_free_ char *plugin = qemu_opt_escaped(p->check_plugin), *fam = qemu_opt_escaped(p->fam_path),
                            *state = qemu_opt_escaped(p->state_dir);
        /* QEMU 7.2 reports a RAM access's address as the RAM block's offset among QEMU's RAM
         * blocks plus the address of its region: for the FAM, BAR2 + that offset.  fame's own
         * command line makes the FAM the first RAM block (offset 0: its -object is created
         * before the machine's RAM); libvirt creates the node's RAM backend first, so the FAM
         * follows it (offset: the node's memory). */
        uint64_t ram_offset = libvirt ? n->memory : 0;
        cmd_arg(c, "-plugin");
        cmd_argf(c, "file=%s,node=%" PRIu32 ",arch=%s,bar=0x%" PRIx64 ",fam=%s,size=%" PRIu64 ",state=%s",
                 plugin ? plugin : "", n->id, arch_to_string(n->arch),
                 check_bar2_base(n->arch == FAME_ARCH_AARCH64, p->fam_size, n->memory) + ram_offset, fam ? fam : "", p->fam_size, state ? state : "");
}

bool plan_needs_relays(const struct cluster_plan *p, const struct node_plan *n) {
        return p->n_forward > 0 || n->librarian_port;
}

void plan_cpu_args(const struct cluster_plan *p, const struct node_plan *n, struct cmd *c) {
        if (plan_node_kvm(p, n))
                return;
        if (n->arch == FAME_ARCH_AARCH64) {
                /* QEMU's cheap pointer authentication: a node boots in ~2 s, not ~7 s */
                cmd_arg(c, "-global");
                cmd_arg(c, "max-arm-cpu.pauth-impdef=on");
                return;
        }
        /* Without ERMS and FSRM the node's kernel copies with rep movsq, which TCG runs 8 bytes
         * at a time, instead of rep movsb, byte by byte: read(2) from tmpfs 482 -> 2170 MB/s,
         * write(2) 469 -> 1787 MB/s, /lfs 336/310 -> 877/809 MB/s (docs/cluster.md) */
        cmd_arg(c, "-global");
        cmd_arg(c, "max-x86_64-cpu.erms=off");
        cmd_arg(c, "-global");
        cmd_arg(c, "max-x86_64-cpu.fsrm=off");
}

struct cmd *qemu_command(const struct cluster_plan *p, const struct node_plan *n) {
        bool arm = n->arch == FAME_ARCH_AARCH64;
        struct cmd *c = cmd_new(arm ? p->qemu_aarch64 : p->qemu);
        bool kvm = plan_node_kvm(p, n);
        /* -kernel, -initrd, -append and -pidfile take whole arguments; paths inside KEY=VALUE
         * option strings are escaped */
        _cleanup_(opt_pool_free) struct opt_pool e = {};

        cmd_arg(c, "-name");
        cmd_argf(c, "%s,process=fame-%s-%s", n->name, p->name, n->name);
        cmd_arg(c, "-machine");
        /* aarch64: the virt board (PCIe root pcie.0, PL011 serial, fw_cfg in its device tree) */
        cmd_arg(c, arm ? "virt" : "pc");
        cmd_arg(c, "-accel");
        /* Plain TCG with one vCPU does not make guest atomics atomic across QEMU processes
         * (2,097,511 instead of 4,000,000 in two nodes' 2M lock xadd each): multi-threaded TCG
         * with room for a second vCPU emits real host atomics.  The translation cache is
         * tb_size, 32 MiB by default (QEMU's default grows to ~60 MiB while a node boots:
         * 178 instead of 209 MiB PSS per node with 4 nodes, boot time within noise). */
        if (kvm)
                cmd_arg(c, "kvm");
        else
                cmd_argf(c, "tcg,thread=multi,tb-size=%" PRIu32, plan_tb_size(p));
        cmd_arg(c, "-cpu");
        cmd_arg(c, kvm ? "host" : "max");
        plan_cpu_args(p, n, c);
        cmd_arg(c, "-smp");
        if (kvm)
                cmd_argf(c, "%" PRIu32, n->cpus);
        else
                cmd_argf(c, "%" PRIu32 ",maxcpus=%" PRIu32, n->cpus, plan_max_cpus(p, n));
        cmd_arg(c, "-m");
        cmd_argf(c, "%" PRIu64 "M", n->memory >> 20);
        cmd_args(c, (const char *const[]) { "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", NULL });

        bool debian = p->kind == FAME_KIND_DEBIAN;
        cmd_arg(c, "-kernel");
        cmd_arg(c, arm ? p->kernel_aarch64 : p->kernel);
        cmd_arg(c, "-initrd");
        cmd_arg(c, arm ? p->initrd_aarch64 : p->initrd);
        cmd_arg(c, "-append");
        {
                _cleanup_free_ char *line = plan_kernel_cmdline(p, n);
                cmd_arg(c, line ? line : "");
        }
        if (debian) {
                /* The node's own copy-on-write overlay of the read-only base. */
                cmd_arg(c, "-drive");
                cmd_argf(c, "file=%s,if=none,id=root,format=qcow2,discard=unmap", opt_esc(&e, n->disk));
                cmd_arg(c, "-device");
                cmd_arg(c, "virtio-blk-pci,drive=root,addr=0x5");
        }
        struct fw_cfg_entry fw[PLAN_MAX_FW_CFG];
        size_t n_fw = plan_fw_cfg(p, n, fw);
        for (size_t i = 0; i < n_fw; i++) {
                cmd_arg(c, "-fw_cfg");
                cmd_argf(c, "name=%s,%s=%s", fw[i].name, fw[i].file ? "file" : "string", opt_esc(&e, fw[i].value));
        }

        plan_fam_args(p, n, c);
        plan_check_args(p, n, false, c);

        /* Serial console: a socket for `fame console`, everything logged for `fame logs`. */
        cmd_arg(c, "-chardev");
        cmd_argf(c, "socket,id=console,path=%s,server=on,wait=off,logfile=%s,logappend=on", opt_esc(&e, n->console_sock), opt_esc(&e, n->console_log));
        cmd_arg(c, "-serial");
        cmd_arg(c, "chardev:console");

        cmd_arg(c, "-chardev");
        cmd_argf(c, "socket,id=qmp,path=%s,server=on,wait=off", opt_esc(&e, n->qmp_sock));
        cmd_arg(c, "-mon");
        cmd_arg(c, "chardev=qmp,mode=control");

        cmd_arg(c, "-device");
        cmd_arg(c, "virtio-serial-pci,id=vser0");
        cmd_arg(c, "-chardev");
        cmd_argf(c, "socket,id=qga,path=%s,server=on,wait=off", opt_esc(&e, n->qga_sock));
        cmd_arg(c, "-device");
        cmd_arg(c, "virtserialport,bus=vser0.0,chardev=qga,name=org.qemu.guest_agent.0");
        /* fame-lfs's own requests to the Librarian: a port whose host end connects to the
         * Librarian's socket for this node, again a second after the Librarian restarts
         * (docs/lfs.md, "The Librarian's port") */
        cmd_arg(c, "-chardev");
        cmd_argf(c, "socket,id=librarian,path=%s,reconnect=1", opt_esc(&e, n->librarian_sock));
        cmd_arg(c, "-device");
        cmd_arg(c, "virtserialport,bus=vser0.0,chardev=librarian,name=" FAME_LIBRARIAN_VPORT_NAME);

        plan_net_args(p, n, c);
        plan_share_args(p, c);

        cmd_arg(c, "-pidfile");
        cmd_arg(c, n->pidfile);
        cmd_arg(c, "-daemonize");
        return c;
}

/* ---- cluster.json ---------------------------------------------------------------------- */

static json_object *fields_to_json(const struct field *fields, size_t n, const void *base, const struct cluster_plan *p);

static json_object *field_to_json(const struct field *f, const void *base, const struct cluster_plan *p) {
        switch (f->type) {
        case F_STRING:
                return json_object_new_string(*FIELD_AT(base, f, char *const));
        case F_CHARS:
                return json_object_new_string(FIELD_AT(base, f, const char));
        case F_U64:
                return json_object_new_uint64(*FIELD_AT(base, f, const uint64_t));
        case F_U32:
                return json_object_new_uint64(*FIELD_AT(base, f, const uint32_t));
        case F_U16:
                return json_object_new_uint64(*FIELD_AT(base, f, const uint16_t));
        case F_ENUM:
                return json_object_new_string(enum_to_name(f->names, *FIELD_AT(base, f, const int)));
        case F_FORWARDS: {
                json_object *fw = json_object_new_array();
                for (uint32_t i = 0; i < p->n_forward; i++) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "guest_port", json_object_new_uint64(p->forward[i].guest_port));
                        json_object_object_add(o, "host_port", json_object_new_uint64(p->forward[i].host_port));
                        json_object_array_add(fw, o);
                }
                return fw;
        }
        case F_NODES: {
                json_object *nodes = json_object_new_array();
                for (uint32_t i = 0; i < p->nodes; i++)
                        json_object_array_add(nodes, fields_to_json(node_fields, ELEMENTSOF(node_fields), &p->node[i], p));
                return nodes;
        }
        }
        return NULL;
}

static json_object *fields_to_json(const struct field *fields, size_t n, const void *base, const struct cluster_plan *p) {
        json_object *o = json_object_new_object();
        for (size_t i = 0; i < n; i++)
                json_object_object_add(o, fields[i].key, field_to_json(&fields[i], base, p));
        return o;
}

json_object *plan_to_json(const struct cluster_plan *p) {
        return fields_to_json(plan_fields, ELEMENTSOF(plan_fields), p, p);
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static uint64_t juint(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

/* Reads the scalar fields into base: -EBADMSG when a required one is missing, -ENOMEM. */
static int fields_from_json(const struct field *fields, size_t n, json_object *o, void *base) {
        for (size_t i = 0; i < n; i++) {
                const struct field *f = &fields[i];
                const char *s = jstr(o, f->key);
                switch (f->type) {
                case F_STRING:
                        if (!s && f->required)
                                return -EBADMSG;
                        if (!(*FIELD_AT(base, f, char *) = strdup(s ? s : f->fallback)))
                                return -ENOMEM;
                        break;
                case F_CHARS:
                        snprintf(FIELD_AT(base, f, char), f->size, "%s", s ? s : "");
                        break;
                case F_U64:
                        *FIELD_AT(base, f, uint64_t) = juint(o, f->key);
                        break;
                case F_U32:
                        *FIELD_AT(base, f, uint32_t) = (uint32_t) juint(o, f->key);
                        break;
                case F_U16:
                        *FIELD_AT(base, f, uint16_t) = (uint16_t) juint(o, f->key);
                        break;
                case F_ENUM: {
                        if (!s && f->required)
                                return -EBADMSG;
                        int v = s ? enum_from_name(f->names, s) : -EINVAL;
                        *FIELD_AT(base, f, int) = v < 0 ? f->fallback_value : v;
                        break;
                }
                case F_FORWARDS:
                case F_NODES:
                        break;
                }
        }
        return 0;
}

static int from_json(json_object *o, struct cluster_plan *p) {
        json_object *nodes, *fw;
        int r;

        if (!json_object_object_get_ex(o, "nodes", &nodes) || !json_object_is_type(nodes, json_type_array) ||
            json_object_array_length(nodes) > FAME_MAX_NODES)
                return -EBADMSG;
        r = fields_from_json(plan_fields, ELEMENTSOF(plan_fields), o, p);
        if (r < 0)
                return r;
        /* A plan's accelerator is resolved: kvm, or tcg. */
        if (p->accel != FAME_ACCEL_KVM)
                p->accel = FAME_ACCEL_TCG;
        if (common_paths(p) < 0)
                return -ENOMEM;
        if (json_object_object_get_ex(o, "forward", &fw) && json_object_is_type(fw, json_type_array))
                for (size_t i = 0; i < json_object_array_length(fw) && p->n_forward < CONFIG_MAX_FORWARDS; i++) {
                        json_object *f = json_object_array_get_idx(fw, i);
                        p->forward[p->n_forward].guest_port = (uint16_t) juint(f, "guest_port");
                        p->forward[p->n_forward].host_port = (uint16_t) juint(f, "host_port");
                        p->n_forward++;
                }
        p->nodes = (uint32_t) json_object_array_length(nodes);
        for (uint32_t i = 0; i < p->nodes; i++) {
                struct node_plan *n = &p->node[i];
                (void) fields_from_json(node_fields, ELEMENTSOF(node_fields), json_object_array_get_idx(nodes, i), n);
                if (n->id != i + 1)
                        return -EBADMSG;
                snprintf(n->name, sizeof n->name, "node%02" PRIu32, n->id);
                if (node_paths(p, n) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int plan_from_json(json_object *o, struct cluster_plan *ret) {
        struct cluster_plan p = { 0 };
        int r = from_json(o, &p);
        if (r < 0) {
                plan_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}

int plan_save(const struct cluster_plan *p) {
        _cleanup_free_ char *path = path_join(p->state_dir, "cluster.json");
        _cleanup_free_ char *tmp = path_join(p->state_dir, ".cluster.json.tmp");
        json_object *o = plan_to_json(p);
        int r = 0;

        if (!path || !tmp) {
                json_object_put(o);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        if (json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PRETTY) < 0 || rename(tmp, path) < 0)
                r = log_error_errno(-EIO, "Failed to write '%s': %s", path, json_util_get_last_err());
        json_object_put(o);
        return r;
}

int plan_load(const char *state_dir, struct cluster_plan *ret) {
        _cleanup_free_ char *path = path_join(state_dir, "cluster.json");
        if (!path)
                return -ENOMEM;
        if (access(path, F_OK) < 0)
                return -ENOENT;
        json_object *o = json_object_from_file(path);
        if (!o)
                return log_error_errno(-EBADMSG, "'%s' is not valid JSON: %s", path, json_util_get_last_err());
        int r = plan_from_json(o, ret);
        json_object_put(o);
        if (r == -EBADMSG)
                return log_error_errno(r, "'%s' is not a FAM/E cluster state file; remove it if no QEMU of this cluster runs", path);
        return r;
}
