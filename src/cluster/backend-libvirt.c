/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The libvirt backend (backend.h, docs/libvirt.md): every node is a transient domain
 * fame-CLUSTER-nodeNN, made from the same plan as the direct backend's QEMU command line and
 * driven through the libvirt C API only.
 *
 * What libvirt's domain XML can say, it says: direct kernel boot, memory and vCPUs (TCG: one
 * vCPU of two, with multi-threaded TCG, which QEMU picks by itself for an x86_64 guest on an
 * x86_64 host), the Debian overlay disk, the serial console (a pty for `virsh console`, logged
 * to the node's console.log), the guest agent channel, fw_cfg identity entries, and the FAM as
 * <shmem> when it lives in /dev/shm.  What it cannot say goes through <qemu:commandline>, with
 * the same arguments as the direct backend (plan.c): the file-backed FAM, the two networks
 * (restricted user-mode with guestfwd relays, the private segment), each at a fixed PCI slot,
 * and the checker's -plugin;
 * every device libvirt adds itself gets a fixed slot below them.
 *
 * QEMU runs as fame's own user (<seclabel> DAC label uid:gid, relabel='no'): the FAM file, the
 * overlays and the sockets in the state directory are the user's, and libvirt leaves their
 * ownership alone — the same access as with the direct backend.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/xmlwriter.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"
#include "fame.h"
#include "fame-constants.h"
#include "log.h"
#include "macro.h"
#include "dl.h"
#include "plan.h"
#include "qmp.h"
#include "spawn.h"
#include "util.h"

#define FAME_XML_NS "https://fame.dev/libvirt/1"

/* ---- the libraries, loaded when first used (dl.h) ------------------------------------------- */

/* Every function of libvirt, libvirt-qemu and libxml2 this file calls, as api.NAME. */
#define LIBVIRT_FUNCS(X) X(virConnectClose) \
        X(virConnectDomainXMLToNative) \
        X(virConnectGetType) \
        X(virConnectOpen) \
        X(virDomainCreateXML) \
        X(virDomainDestroy) \
        X(virDomainFree) \
        X(virDomainGetMetadata) \
        X(virDomainIsActive) \
        X(virDomainIsPersistent) \
        X(virDomainLookupByName) \
        X(virDomainOpenConsole) \
        X(virDomainShutdownFlags) \
        X(virGetLastErrorCode) \
        X(virGetLastErrorMessage) \
        X(virSetErrorFunc) \
        X(virStreamFree) \
        X(virStreamNew) \
        X(virStreamRecv) \
        X(virStreamSend)
#define LIBVIRT_QEMU_FUNCS(X) X(virDomainQemuAgentCommand) \
        X(virDomainQemuMonitorCommand)
#define LIBXML2_FUNCS(X) X(xmlBufferContent) \
        X(xmlBufferCreate) \
        X(xmlBufferFree) \
        X(xmlFreeTextWriter) \
        X(xmlNewTextWriterMemory) \
        X(xmlTextWriterEndDocument) \
        X(xmlTextWriterEndElement) \
        X(xmlTextWriterSetIndent) \
        X(xmlTextWriterSetIndentString) \
        X(xmlTextWriterStartElement) \
        X(xmlTextWriterWriteAttribute) \
        X(xmlTextWriterWriteString)
#define API_MEMBER(f) __typeof__(f) *f;
static struct {
        LIBVIRT_FUNCS(API_MEMBER)
        LIBVIRT_QEMU_FUNCS(API_MEMBER)
        LIBXML2_FUNCS(API_MEMBER)
} api;
#define API_SYM(f) DL_SYM(api, f),
static const struct dl_sym libvirt_syms[] = { LIBVIRT_FUNCS(API_SYM) };
static const struct dl_sym libvirt_qemu_syms[] = { LIBVIRT_QEMU_FUNCS(API_SYM) };
static const struct dl_sym libxml2_syms[] = { LIBXML2_FUNCS(API_SYM) };
static struct dl_lib libvirt_lib = { "libvirt.so.0", "libvirt0", libvirt_syms, ELEMENTSOF(libvirt_syms), 0 };
static struct dl_lib libvirt_qemu_lib = { "libvirt-qemu.so.0", "libvirt0", libvirt_qemu_syms, ELEMENTSOF(libvirt_qemu_syms), 0 };
static struct dl_lib libxml2_lib = { "libxml2.so.2", "libxml2", libxml2_syms, ELEMENTSOF(libxml2_syms), 0 };

/* ---- domain XML ---------------------------------------------------------------------------- */

void domain_name(const struct cluster_plan *p, const struct node_plan *n, char *buf, size_t len) {
        snprintf(buf, len, "fame-%s-%s", p->name, n->name);
}

/* The FAM's name under /dev/shm when libvirt's <shmem> can carry it, else NULL. */
static const char *shm_name(const struct cluster_plan *p) {
        const char *prefix = "/dev/shm/";
        const char *name = p->fam_path + strlen(prefix);
        if (strncmp(p->fam_path, prefix, strlen(prefix)) != 0 || !*name || strchr(name, '/'))
                return NULL;
        return name;
}

struct xw {
        xmlTextWriterPtr w;
        int err;
};

static void start(struct xw *x, const char *name) {
        if (api.xmlTextWriterStartElement(x->w, BAD_CAST name) < 0)
                x->err = -ENOMEM;
}

static void end(struct xw *x) {
        if (api.xmlTextWriterEndElement(x->w) < 0)
                x->err = -ENOMEM;
}

static void attr(struct xw *x, const char *name, const char *value) {
        if (api.xmlTextWriterWriteAttribute(x->w, BAD_CAST name, BAD_CAST value) < 0)
                x->err = -ENOMEM;
}

__attribute__((format(printf, 3, 4)))
static void attrf(struct xw *x, const char *name, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *v = vstrf(fmt, ap);
        va_end(ap);
        if (!v)
                x->err = -ENOMEM;
        else
                attr(x, name, v);
}

static void text(struct xw *x, const char *t) {
        if (api.xmlTextWriterWriteString(x->w, BAD_CAST t) < 0)
                x->err = -ENOMEM;
}

/* <name attr=value>text</name>; attr may be NULL. */
static void element(struct xw *x, const char *name, const char *a, const char *av, const char *t) {
        start(x, name);
        if (a)
                attr(x, a, av);
        if (t)
                text(x, t);
        end(x);
}

/* <name a1=v1 a2=v2/> */
static void empty2(struct xw *x, const char *name, const char *a1, const char *v1, const char *a2, const char *v2) {
        start(x, name);
        attr(x, a1, v1);
        attr(x, a2, v2);
        end(x);
}

static void pci_address(struct xw *x, unsigned slot) {
        start(x, "address");
        attr(x, "type", "pci");
        attr(x, "domain", "0x0000");
        attr(x, "bus", "0x00");
        attrf(x, "slot", "0x%02x", slot);
        attr(x, "function", "0x0");
        end(x);
}

/* PCI slots: 00:01 is the PIIX3 (libvirt's USB controller is off), the rest fixed. */
enum {
        SLOT_VIRTIO_SERIAL = 0x04,
        SLOT_DISK = 0x05,               /* plan.c: the same for the direct backend */
        /* 0x06, 0x07: the two networks; 0x10: the FAM (plan.c) */
        SLOT_SHARE = 0x08,              /* key share's 9p export; plan.c: the same */
};

static void write_domain(struct xw *x, const struct cluster_plan *p, const struct node_plan *n, const char *emulator) {
        bool kvm = plan_node_kvm(p, n), debian = p->kind == FAME_KIND_DEBIAN, arm = n->arch == FAME_ARCH_AARCH64;
        char name[128], buf[64];

        domain_name(p, n, name, sizeof name);
        start(x, "domain");
        attr(x, "type", kvm ? "kvm" : "qemu");
        attr(x, "xmlns:qemu", "http://libvirt.org/schemas/domain/qemu/1.0");
        element(x, "name", NULL, NULL, name);
        {
                _cleanup_free_ char *title = strf("FAM/E cluster %s, %s", p->name, n->name);
                element(x, "title", NULL, NULL, title ? title : "FAM/E node");
        }
        element(x, "description", NULL, NULL,
                "A node of a FAM/E cluster (fame up --backend libvirt). fame up, down, kill and start manage it; it is transient: fame down leaves nothing defined.");
        start(x, "metadata");
        start(x, "fame:node");
        attr(x, "xmlns:fame", FAME_XML_NS);
        attr(x, "cluster", p->name);
        attrf(x, "id", "%" PRIu32, n->id);
        attr(x, "state_dir", p->state_dir);
        end(x);
        end(x);
        snprintf(buf, sizeof buf, "%" PRIu64, n->memory >> 20);
        element(x, "memory", "unit", "MiB", buf);
        start(x, "vcpu");
        attr(x, "placement", "static");
        if (plan_max_cpus(p, n) != n->cpus)
                attrf(x, "current", "%" PRIu32, n->cpus);
        snprintf(buf, sizeof buf, "%" PRIu32, plan_max_cpus(p, n));
        text(x, buf);
        end(x);

        /* Node identity (and the Debian seed) through fw_cfg, as with the direct backend. */
        start(x, "sysinfo");
        attr(x, "type", "fwcfg");
        struct fw_cfg_entry fw[PLAN_MAX_FW_CFG];
        size_t n_fw = plan_fw_cfg(p, n, fw);
        for (size_t i = 0; i < n_fw; i++) {
                start(x, "entry");
                attr(x, "name", fw[i].name);
                if (fw[i].file)
                        attr(x, "file", fw[i].value);
                else
                        text(x, fw[i].value);
                end(x);
        }
        end(x);

        start(x, "os");
        start(x, "type");
        attr(x, "arch", arch_to_string(n->arch));
        attr(x, "machine", arm ? "virt" : "pc");
        text(x, "hvm");
        end(x);
        element(x, "kernel", NULL, NULL, arm ? p->kernel_aarch64 : p->kernel);
        element(x, "initrd", NULL, NULL, arm ? p->initrd_aarch64 : p->initrd);
        {
                _cleanup_free_ char *line = plan_kernel_cmdline(p, n);
                if (!line)
                        x->err = -ENOMEM;
                element(x, "cmdline", NULL, NULL, line ? line : "");
        }
        end(x);

        start(x, "features");
        /* guest-shutdown powers the node off: ACPI on pc; PSCI on virt (where libvirt wants UEFI
         * for ACPI) */
        if (!arm)
                element(x, "acpi", NULL, NULL, NULL);
        if (!kvm) {
                /* The same translation cache as the direct backend (plan.h). */
                start(x, "tcg");
                snprintf(buf, sizeof buf, "%" PRIu32, plan_tb_size(p));
                element(x, "tb-cache", "unit", "MiB", buf);
                end(x);
        }
        end(x);
        empty2(x, "cpu", "mode", kvm ? "host-passthrough" : "maximum", "check", "none");
        element(x, "clock", "offset", "utc", NULL);
        /* -no-reboot: a node that reboots or crashes stops, and `fame start` boots it anew */
        element(x, "on_poweroff", NULL, NULL, "destroy");
        element(x, "on_reboot", NULL, NULL, "destroy");
        element(x, "on_crash", NULL, NULL, "destroy");

        start(x, "devices");
        element(x, "emulator", NULL, NULL, emulator);
        if (debian) {
                start(x, "disk");
                attr(x, "type", "file");
                attr(x, "device", "disk");
                start(x, "driver");
                attr(x, "name", "qemu");
                attr(x, "type", "qcow2");
                attr(x, "discard", "unmap");
                end(x);
                element(x, "source", "file", n->disk, NULL);
                empty2(x, "target", "dev", "vda", "bus", "virtio");
                pci_address(x, SLOT_DISK);
                end(x);
        }
        empty2(x, "controller", "type", "usb", "model", "none");
        start(x, "controller");
        attr(x, "type", "virtio-serial");
        attr(x, "index", "0");
        pci_address(x, SLOT_VIRTIO_SERIAL);
        end(x);
        /* The serial console: a pty (virsh console, fame console), logged like the direct backend's. */
        start(x, "serial");
        attr(x, "type", "pty");
        empty2(x, "log", "file", n->console_log, "append", "on");
        element(x, "target", "port", "0", NULL);
        end(x);
        start(x, "console");
        attr(x, "type", "pty");
        empty2(x, "target", "type", "serial", "port", "0");
        end(x);
        /* The guest agent: libvirt connects to it (virDomainQemuAgentCommand). */
        start(x, "channel");
        attr(x, "type", "unix");
        empty2(x, "target", "type", "virtio", "name", "org.qemu.guest_agent.0");
        end(x);
        /* fame-lfs's own requests to the Librarian: QEMU connects to the Librarian's socket for
         * this node, and again a second after the Librarian restarts (docs/lfs.md) */
        start(x, "channel");
        attr(x, "type", "unix");
        start(x, "source");
        attr(x, "mode", "connect");
        attr(x, "path", n->librarian_sock);
        empty2(x, "reconnect", "enabled", "yes", "timeout", "1");
        end(x);
        empty2(x, "target", "type", "virtio", "name", FAME_LIBRARIAN_VPORT_NAME);
        end(x);
        const char *shm = shm_name(p);
        if (shm) {
                /* The FAM in /dev/shm: libvirt's own ivshmem-plain device. */
                start(x, "shmem");
                attr(x, "name", shm);
                element(x, "model", "type", "ivshmem-plain", NULL);
                snprintf(buf, sizeof buf, "%" PRIu64, p->fam_size);
                element(x, "size", "unit", "B", buf);
                pci_address(x, 0x10);
                end(x);
        }
        if (*p->share) {
                /* Key share, read-only at /share: the direct backend's -fsdev (plan_share_args());
                 * accessmode squash is its security_model=none. */
                start(x, "filesystem");
                attr(x, "type", "mount");
                attr(x, "accessmode", "squash");
                element(x, "source", "dir", p->share, NULL);
                element(x, "target", "dir", FAME_SHARE_TAG, NULL);
                element(x, "readonly", NULL, NULL, NULL);
                pci_address(x, SLOT_SHARE);
                end(x);
        }
        element(x, "memballoon", "model", "none", NULL);
        end(x);

        /* QEMU runs as fame's user; libvirt leaves the files' ownership alone. */
        start(x, "seclabel");
        attr(x, "type", "static");
        attr(x, "model", "dac");
        attr(x, "relabel", "no");
        snprintf(buf, sizeof buf, "+%" PRIu32 ":+%" PRIu32, p->uid, p->gid);
        element(x, "label", NULL, NULL, buf);
        end(x);

        /* What domain XML cannot say: the same arguments as the direct backend's. */
        _cleanup_cmd_ struct cmd *c = cmd_new("qemu");
        if (!shm)
                plan_fam_args(p, n, c);
        plan_net_args(p, n, c);
        plan_cpu_args(p, n, c);     /* the TCG CPU's tuning, as the direct backend's */
        /* the checker's TCG plugin (a TCG domain: type qemu) */
        plan_check_args(p, n, true, c);
        start(x, "qemu:commandline");
        char *const *args = cmd_argv(c);
        for (size_t i = 1; args[i]; i++)
                element(x, "qemu:arg", "value", args[i], NULL);
        end(x);
        end(x);
}

char *domain_xml(const struct cluster_plan *p, const struct node_plan *n, const char *emulator) {
        if (dl_bind(&libxml2_lib) < 0)
                return NULL;
        xmlBufferPtr b = api.xmlBufferCreate();
        struct xw x = { .w = b ? api.xmlNewTextWriterMemory(b, 0) : NULL };
        char *s = NULL;

        if (!x.w) {
                if (b)
                        api.xmlBufferFree(b);
                log_error("Out of memory");
                return NULL;
        }
        api.xmlTextWriterSetIndent(x.w, 1);
        api.xmlTextWriterSetIndentString(x.w, BAD_CAST "  ");
        write_domain(&x, p, n, emulator);
        if (api.xmlTextWriterEndDocument(x.w) < 0)
                x.err = -ENOMEM;
        api.xmlFreeTextWriter(x.w);
        if (x.err == 0)
                s = strdup((const char *) api.xmlBufferContent(b));
        api.xmlBufferFree(b);
        if (!s)
                log_error("Out of memory");
        return s;
}

/* The node's QEMU as an absolute path (libvirt requires one): as given, or found in $PATH. */
static char *emulator_path(const struct cluster_plan *p, const struct node_plan *n) {
        bool arm = n->arch == FAME_ARCH_AARCH64;
        const char *qemu = arm ? p->qemu_aarch64 : p->qemu;
        if (strchr(qemu, '/'))
                return realpath(qemu, NULL) ?: strdup(qemu);
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        for (char *save = NULL, *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *cand = strf("%s/%s", d, qemu);
                if (cand && *d == '/' && access(cand, X_OK) == 0)
                        return TAKE_PTR(cand);
        }
        log_error("Cannot find '%s' in $PATH: install %s (scripts/install-deps) or set %s = to its path", qemu,
                  arm ? "qemu-system-arm" : "qemu-system-x86", arm ? "qemu_aarch64" : "qemu");
        return NULL;
}

int domain_export(const struct cluster_plan *p, const char *dir, void (*wrote)(const char *path, void *userdata), void *userdata) {
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create '%s': %m", dir);
        for (uint32_t i = 0; i < p->nodes; i++) {
                const struct node_plan *n = &p->node[i];
                _cleanup_free_ char *emulator = emulator_path(p, n);
                if (!emulator)
                        return -ENOENT;
                _cleanup_free_ char *xml = domain_xml(p, n, emulator), *path = strf("%s/%s.xml", dir, n->name);
                if (!xml || !path)
                        return -ENOMEM;
                r = write_file_atomic(path, 0644, xml, strlen(xml));
                if (r < 0)
                        return log_error_errno(r, "Cannot write '%s': %m", path);
                wrote(path, userdata);
        }
        return 0;
}

/* ---- the connection ------------------------------------------------------------------------- */

struct lv {
        virConnectPtr conn;
        char *uri;
        bool checked;                   /* the daemon's QEMU command line was checked (check_native) */
        pid_t pid[FAME_MAX_NODES];      /* cache of the nodes' QEMU pids */
};

/* libvirt's own error printing goes; its last error is reported by us, in one line. */
static void quiet(void *data, virErrorPtr e) {
        (void) data;
        (void) e;
}

static const char *last_error(void) {
        const char *m = api.virGetLastErrorMessage();
        return m && *m ? m : "unknown error";
}

static int lv_open(const char *cluster, const char *libvirt_uri, void **ret_data) {
        const char *uri = libvirt_uri ? libvirt_uri : "qemu:///system";
        const char *after = strstr(uri, "://");

        (void) cluster;
        int r = dl_bind(&libvirt_lib);
        if (r < 0 || (r = dl_bind(&libvirt_qemu_lib)) < 0)
                return r;
        api.virSetErrorFunc(NULL, quiet);
        if (!after || after[3] != '/')
                return log_error_errno(-EINVAL, "libvirt_uri = %s names another host; FAM/E's nodes share a file on this machine, so use a local libvirtd (qemu:///system or qemu:///session)",
                                       uri);
        struct lv *lv = calloc(1, sizeof *lv);
        if (!lv || !(lv->uri = strdup(uri))) {
                free(lv);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        lv->conn = api.virConnectOpen(uri);
        if (!lv->conn) {
                r = log_error_errno(-ECONNREFUSED, "Cannot connect to libvirt at %s: %s; start libvirtd ('systemctl start libvirtd', or as root 'virtlogd -d && libvirtd -d'; scripts/install-deps installs it), or set libvirt_uri",
                                        uri, last_error());
                free(lv->uri);
                free(lv);
                return r;
        }
        const char *type = api.virConnectGetType(lv->conn);
        if (!type || strcmp(type, "QEMU") != 0) {
                api.virConnectClose(lv->conn);
                free(lv->uri);
                free(lv);
                return log_error_errno(-EINVAL, "libvirt_uri = %s is a %s connection; FAM/E needs libvirt's QEMU driver (qemu:///system or qemu:///session)",
                                       uri, type ? type : "non-QEMU");
        }
        *ret_data = lv;
        return 0;
}

static void lv_close(void *data) {
        struct lv *lv = data;
        if (!lv)
                return;
        api.virConnectClose(lv->conn);
        free(lv->uri);
        free(lv);
}

/* The node's domain, or NULL (nothing logged). */
static virDomainPtr lookup(struct lv *lv, const struct cluster_plan *p, const struct node_plan *n) {
        char name[128];
        domain_name(p, n, name, sizeof name);
        return api.virDomainLookupByName(lv->conn, name);
}

/* Whether the domain named so is one of ours: its metadata names this cluster and node. */
static bool ours(virDomainPtr d, const struct cluster_plan *p, const struct node_plan *n) {
        _cleanup_free_ char *meta = api.virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, FAME_XML_NS, VIR_DOMAIN_AFFECT_CURRENT);
        _cleanup_free_ char *want = strf("id=\"%" PRIu32 "\"", n->id);
        return meta && want && strstr(meta, want) && strstr(meta, p->state_dir);
}

/*
 * Once per connection: the QEMU command line libvirtd would run for this XML.  libvirtd's
 * default seccomp sandbox (-sandbox ...,spawn=deny) forbids QEMU to start processes, and the
 * nodes' host services are relays QEMU starts for every connection (guestfwd cmd:): the
 * Librarian at torms:9093 would not answer.  Said before any node starts.
 */
static int check_native(struct lv *lv, const struct cluster_plan *p, const struct node_plan *n, const char *xml) {
        if (lv->checked)
                return 0;
        _cleanup_free_ char *argv = api.virConnectDomainXMLToNative(lv->conn, "qemu-argv", xml, 0);
        if (!argv) {
                log_debug("libvirt: cannot show the QEMU command line: %s", last_error());
                lv->checked = true;
                return 0;
        }
        log_debug("libvirt: %s", argv);
        if (plan_needs_relays(p, n) && strstr(argv, "spawn=deny"))
                return log_error_errno(-EPERM, "libvirtd at %s runs QEMU with '-sandbox spawn=deny', which stops the relays that connect nodes to the Librarian (torms:%d) and forward= services; set 'seccomp_sandbox = 0' in libvirt's qemu.conf (/etc/libvirt/qemu.conf) and restart libvirtd",
                                       lv->uri, FAME_LIBRARIAN_PORT);
        lv->checked = true;
        return 0;
}

static int lv_start(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        struct lv *lv = data;
        char name[128];
        virDomainPtr d;

        domain_name(p, n, name, sizeof name);
        d = api.virDomainLookupByName(lv->conn, name);
        if (d) {
                int active = api.virDomainIsActive(d), persistent = api.virDomainIsPersistent(d);
                bool mine = ours(d, p, n);
                api.virDomainFree(d);
                if (active == 1)
                        return log_error_errno(-EEXIST, "%s: libvirt domain %s is already running%s; stop it with 'fame kill %s'%s",
                                               n->name, name, mine ? "" : " and is not this cluster's", n->name,
                                               mine ? "" : " or 'virsh destroy'");
                if (persistent == 1)
                        return log_error_errno(-EEXIST, "%s: a libvirt domain named %s is defined (by 'virsh define'?); fame runs its nodes as transient domains: remove it with 'virsh -c %s undefine %s'",
                                               n->name, name, lv->uri, name);
        }
        _cleanup_free_ char *emulator = emulator_path(p, n);
        if (!emulator)
                return -ENOENT;
        _cleanup_free_ char *xml = domain_xml(p, n, emulator);
        if (!xml)
                return -ENOMEM;
        int r = check_native(lv, p, n, xml);
        if (r < 0)
                return r;
        log_debug("%s: %s", n->name, xml);
        d = api.virDomainCreateXML(lv->conn, xml, VIR_DOMAIN_NONE);
        if (!d)
                return log_error_errno(-EIO, "%s: libvirt could not start domain %s: %s", n->name, name, last_error());
        api.virDomainFree(d);
        lv->pid[n->id - 1] = 0;
        return 0;
}

/* The process whose command line holds needle, or 0. */
static pid_t find_process(const char *needle) {
        DIR *dir = opendir("/proc");
        struct dirent *de;
        pid_t found = 0;
        if (!dir)
                return 0;
        while (!found && (de = readdir(dir))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (!*end && pid > 0 && process_cmdline_has((pid_t) pid, needle))
                        found = (pid_t) pid;
        }
        closedir(dir);
        return found;
}

/* Running is what libvirt says; the pid is the local QEMU whose private-segment socket is the
 * node's (1 when it cannot be seen, e.g. under hidepid). */
static pid_t lv_pid(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        struct lv *lv = data;
        virDomainPtr d = lookup(lv, p, n);
        int active = d ? api.virDomainIsActive(d) : 0;
        if (d)
                api.virDomainFree(d);
        if (active != 1) {
                lv->pid[n->id - 1] = 0;
                return 0;
        }
        _cleanup_free_ char *sock = qemu_opt_escaped(n->net_sock);
        _cleanup_free_ char *needle = sock ? strf("local.path=%s,", sock) : NULL;
        pid_t *cached = &lv->pid[n->id - 1];
        if (!needle)
                return 1;
        if (*cached > 0 && process_cmdline_has(*cached, needle))
                return *cached;
        *cached = find_process(needle);
        return *cached > 0 ? *cached : 1;
}

/* ---- monitor and agent ---------------------------------------------------------------------- */

struct call {
        virDomainPtr d;
};

static void call_free(void *data) {
        struct call *c = data;
        if (c) {
                if (c->d)
                        api.virDomainFree(c->d);
                free(c);
        }
}

static int monitor_call(void *data, const char *request, int timeout_ms, char **ret_reply, char **ret_error) {
        struct call *c = data;
        (void) timeout_ms;
        (void) ret_error;
        if (api.virDomainQemuMonitorCommand(c->d, request, ret_reply, VIR_DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT) < 0) {
                log_debug("libvirt monitor: %s", last_error());
                return api.virGetLastErrorCode() == VIR_ERR_OPERATION_INVALID ? -ESRCH : -EIO;
        }
        return 0;
}

static int agent_call(void *data, const char *request, int timeout_ms, char **ret_reply, char **ret_error) {
        struct call *c = data;
        int timeout_s = (timeout_ms + 999) / 1000;
        char *reply = api.virDomainQemuAgentCommand(c->d, request, timeout_s > 0 ? timeout_s : 1, 0);
        if (reply) {
                *ret_reply = reply;
                return 0;
        }
        const char *m = last_error();
        int code = api.virGetLastErrorCode();
        log_debug("libvirt agent: %s", m);
        /* The agent answered with an error: libvirt says "unable to execute QEMU agent command
         * 'NAME': DESC". */
        const char *tag = "unable to execute QEMU agent command '";
        const char *hit = strstr(m, tag);
        if (hit && (hit = strstr(hit + strlen(tag), "': "))) {
                *ret_error = strdup(hit + 3);
                return *ret_error ? -EREMOTEIO : -ENOMEM;
        }
        if (code == VIR_ERR_AGENT_UNRESPONSIVE || code == VIR_ERR_OPERATION_TIMEOUT || code == VIR_ERR_AGENT_UNSYNCED)
                return -ETIMEDOUT;
        if (code == VIR_ERR_OPERATION_INVALID)
                return -ESRCH;
        return -EIO;
}

static int open_call(struct lv *lv, const struct cluster_plan *p, const struct node_plan *n, bool qga, struct qmp **ret) {
        char name[128];
        struct call *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        domain_name(p, n, name, sizeof name);
        c->d = api.virDomainLookupByName(lv->conn, name);
        if (!c->d) {
                free(c);
                return -ESRCH;
        }
        return qmp_new_call(name, qga, qga ? agent_call : monitor_call, c, call_free, ret);
}

static int lv_monitor(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms, struct qmp **ret) {
        (void) timeout_ms;
        return open_call(data, p, n, false, ret);
}

/* Like qga_connect(): answers only once the agent does. */
static int lv_agent(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms, struct qmp **ret) {
        struct qmp *q = NULL;
        int r = open_call(data, p, n, true, &q);
        if (r < 0)
                return r;
        r = qga_ping(q, timeout_ms);
        if (r < 0) {
                qmp_close(q);
                return r;
        }
        *ret = q;
        return 0;
}

/* ---- stopping ------------------------------------------------------------------------------- */

static void lv_shutdown(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        virDomainPtr d = lookup(data, p, n);
        if (!d)
                return;
        if (api.virDomainShutdownFlags(d, VIR_DOMAIN_SHUTDOWN_GUEST_AGENT) < 0)
                log_debug("%s: libvirt could not ask the guest agent to power off: %s", n->name, last_error());
        api.virDomainFree(d);
}

static void lv_destroy(void *data, const struct cluster_plan *p, const struct node_plan *n, int timeout_ms) {
        struct lv *lv = data;
        virDomainPtr d = lookup(lv, p, n);
        if (!d)
                return;
        /* destroy waits for QEMU to exit (SIGTERM, then SIGKILL after 10 s) */
        if (api.virDomainDestroy(d) < 0 && api.virDomainIsActive(d) == 1)
                log_warning("%s: libvirt could not stop the domain: %s", n->name, last_error());
        api.virDomainFree(d);
        (void) timeout_ms;
        lv->pid[n->id - 1] = 0;
}

/* Power loss: virDomainDestroy, which kills QEMU without asking the guest (SIGTERM, then SIGKILL)
 * and returns once it is gone. */
static int lv_crash(void *data, const struct cluster_plan *p, const struct node_plan *n) {
        struct lv *lv = data;
        virDomainPtr d = lookup(lv, p, n);
        int r = 0;

        if (!d)
                return 0;
        if (api.virDomainDestroy(d) < 0 && api.virDomainIsActive(d) == 1)
                r = log_error_errno(-EIO, "%s: libvirt could not stop the domain: %s", n->name, last_error());
        api.virDomainFree(d);
        lv->pid[n->id - 1] = 0;
        return r;
}

/* ---- console -------------------------------------------------------------------------------- */

/* virDomainOpenConsole gives a libvirt stream; `fame console` wants a socket: two threads copy
 * between the stream and one end of a socket pair. */
struct bridge {
        virStreamPtr st;
        int fd;
};

static void *stream_to_fd(void *arg) {
        struct bridge *b = arg;
        char buf[4096];
        for (;;) {
                int k = api.virStreamRecv(b->st, buf, sizeof buf);
                if (k <= 0 || write_all(b->fd, buf, (size_t) k) < 0)
                        break;
        }
        shutdown(b->fd, SHUT_WR);
        return NULL;
}

static void *fd_to_stream(void *arg) {
        struct bridge *b = arg;
        char buf[4096];
        for (;;) {
                ssize_t k = read(b->fd, buf, sizeof buf);
                if (k <= 0)
                        break;
                for (ssize_t off = 0; off < k;) {
                        int w = api.virStreamSend(b->st, buf + off, (size_t) (k - off));
                        if (w <= 0)
                                return NULL;
                        off += w;
                }
        }
        return NULL;
}

static int lv_console(void *data, const struct cluster_plan *p, const struct node_plan *n, int *ret_fd) {
        struct lv *lv = data;
        int sp[2];
        pthread_t t;
        virDomainPtr d = lookup(lv, p, n);
        if (!d)
                return log_error_errno(-ESRCH, "%s is not running", n->name);
        virStreamPtr st = api.virStreamNew(lv->conn, 0);
        if (!st || api.virDomainOpenConsole(d, NULL, st, VIR_DOMAIN_CONSOLE_FORCE) < 0) {
                int r = log_error_errno(-EIO, "%s: libvirt cannot open the console: %s", n->name, last_error());
                if (st)
                        api.virStreamFree(st);
                api.virDomainFree(d);
                return r;
        }
        api.virDomainFree(d);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
                api.virStreamFree(st);
                return log_error_errno(-errno, "socketpair: %m");
        }
        /* The bridge lives as long as the process (fame console exits when the console closes). */
        struct bridge *b = malloc(sizeof *b);
        if (!b) {
                close(sp[0]);
                close(sp[1]);
                api.virStreamFree(st);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        *b = (struct bridge) { .st = st, .fd = sp[1] };
        if (pthread_create(&t, NULL, stream_to_fd, b) != 0 || pthread_detach(t) != 0 ||
            pthread_create(&t, NULL, fd_to_stream, b) != 0 || pthread_detach(t) != 0) {
                close(sp[0]);
                return log_error_errno(-EAGAIN, "Cannot start the console threads");
        }
        *ret_fd = sp[0];
        return 0;
}

static const char *lv_fam_object(const struct cluster_plan *p) {
        /* libvirt names the memory backend of <shmem> shmem0 "shmmem-shmem0" */
        return shm_name(p) ? "/objects/shmmem-shmem0" : "/objects/fam";
}

const struct backend_ops backend_libvirt_ops = {
        .name = "libvirt",
        .open = lv_open,
        .close = lv_close,
        .start = lv_start,
        .pid = lv_pid,
        .monitor = lv_monitor,
        .agent = lv_agent,
        .shutdown = lv_shutdown,
        .destroy = lv_destroy,
        .crash = lv_crash,
        .console = lv_console,
        .fam_object = lv_fam_object,
};
