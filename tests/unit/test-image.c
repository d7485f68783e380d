/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The diskless node image builder, against this machine's real Debian kernel, modules,
 * busybox-static and qemu-ga: module resolution, vmlinux extraction, the cache (reuse, new key
 * on change, reproducible bytes) and the initramfs contents (read back with a small newc
 * reader).  Booting the image is the integration suite's job.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "image-internal.h"
#include "macro.h"
#include "spawn.h"
#include "testlib.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static char *path_join(const char *a, const char *b) {
        char *s;
        if (asprintf(&s, "%s/%s", a, b) < 0)
                abort();
        return s;
}

static void write_file(const char *path, const char *data, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t) strlen(data)) {
                perror(path);
                exit(1);
        }
        fchmod(fd, mode);
        close(fd);
}

static char *read_all(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (len + 65536 > cap) {
                        cap = cap ? cap * 2 : 1 << 20;
                        buf = realloc(buf, cap + 1);
                        if (!buf)
                                abort();
                }
                size_t k = fread(buf + len, 1, cap - len, f);
                len += k;
                if (k == 0)
                        break;
        }
        fclose(f);
        buf[len] = 0;
        *ret_len = len;
        return buf;
}

static off_t file_size(const char *path) {
        struct stat st;
        return stat(path, &st) < 0 ? -1 : st.st_size;
}

/* ---- a tiny cpio newc reader ------------------------------------------------------------ */

struct centry {
        char *name;
        uint32_t mode, uid, gid, mtime, rmajor, rminor;
        const char *data;
        uint32_t size;
};

struct carchive {
        char *buf;
        size_t len;
        struct centry *e;
        size_t n;
        bool ok;
};

static uint32_t hex8(const char *p) {
        char t[9];
        memcpy(t, p, 8);
        t[8] = 0;
        return (uint32_t) strtoul(t, NULL, 16);
}

static void cpio_read(const char *path, struct carchive *a) {
        *a = (struct carchive) { 0 };
        a->buf = read_all(path, &a->len);
        if (!a->buf)
                return;
        size_t off = 0;
        for (;;) {
                if (off + 110 > a->len || memcmp(a->buf + off, "070701", 6) != 0)
                        return;
                const char *h = a->buf + off;
                struct centry e = {
                        .mode = hex8(h + 14), .uid = hex8(h + 22), .gid = hex8(h + 30), .mtime = hex8(h + 46),
                        .size = hex8(h + 54), .rmajor = hex8(h + 78), .rminor = hex8(h + 86),
                };
                uint32_t namesize = hex8(h + 94);
                off += 110;
                if (off + namesize > a->len || a->buf[off + namesize - 1] != 0)
                        return;
                const char *name = a->buf + off;
                off = (off + namesize + 3) & ~(size_t) 3;
                if (!strcmp(name, "TRAILER!!!")) {
                        a->ok = off == a->len;
                        return;
                }
                if (off + e.size > a->len)
                        return;
                e.name = strdup(name);
                e.data = a->buf + off;
                off = (off + e.size + 3) & ~(size_t) 3;
                a->e = realloc(a->e, (a->n + 1) * sizeof *a->e);
                a->e[a->n++] = e;
        }
}

static void cpio_free(struct carchive *a) {
        for (size_t i = 0; i < a->n; i++)
                free(a->e[i].name);
        free(a->e);
        free(a->buf);
}

static const struct centry *cfind(const struct carchive *a, const char *name) {
        while (*name == '/')
                name++;
        for (size_t i = 0; i < a->n; i++)
                if (!strcmp(a->e[i].name, name))
                        return &a->e[i];
        return NULL;
}

static const struct centry *cfind_suffix(const struct carchive *a, const char *suffix) {
        size_t sl = strlen(suffix);
        for (size_t i = 0; i < a->n; i++) {
                size_t nl = strlen(a->e[i].name);
                if (nl >= sl && !strcmp(a->e[i].name + nl - sl, suffix))
                        return &a->e[i];
        }
        return NULL;
}

#define CHECK_ENTRY(a, name, want_mode) do {                                                     \
                const struct centry *_e = cfind(a, name);                                         \
                CHECK(_e, "initramfs has no %s", name);                                           \
                if (_e)                                                                           \
                        CHECK(_e->mode == (uint32_t) (want_mode), "%s mode %o, want %o", name,     \
                              (unsigned) _e->mode, (unsigned) (want_mode));                        \
        } while (0)

/* ---- tests ---------------------------------------------------------------------------------- */

static size_t strv_len(char **l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

static ssize_t strv_index_suffix(char **l, const char *suffix) {
        size_t sl = strlen(suffix);
        for (size_t i = 0; l && l[i]; i++) {
                size_t n = strlen(l[i]);
                if (n >= sl && !strcmp(l[i] + n - sl, suffix) && (n == sl || l[i][n - sl - 1] == '/'))
                        return (ssize_t) i;
        }
        return -1;
}

static void test_modules(const char *moddir) {
        static const char *const names[] = { "virtio_pci", "virtio-console", "virtio_net", "qemu_fw_cfg", NULL };
        char **paths = NULL;
        int r = image_resolve_modules(moddir, names, &paths);
        CHECK(r == 0 && paths, "resolve_modules(%s): %d", moddir, r);
        if (r < 0)
                return;
        size_t n = strv_len(paths);
        CHECK(n >= 6, "only %zu modules", n);
        for (size_t i = 0; i < n; i++) {
                CHECK(!strncmp(paths[i], moddir, strlen(moddir)) && paths[i][strlen(moddir)] == '/', "%s not under %s", paths[i], moddir);
                CHECK(access(paths[i], R_OK) == 0, "%s missing", paths[i]);
                for (size_t j = 0; j < i; j++)
                        CHECK(strcmp(paths[i], paths[j]) != 0, "%s listed twice", paths[i]);
        }
        ssize_t ring = strv_index_suffix(paths, "virtio_ring.ko"), virtio = strv_index_suffix(paths, "virtio.ko"),
                pci = strv_index_suffix(paths, "virtio_pci.ko"), modern = strv_index_suffix(paths, "virtio_pci_modern_dev.ko"),
                con = strv_index_suffix(paths, "virtio_console.ko"), net = strv_index_suffix(paths, "virtio_net.ko"),
                failover = strv_index_suffix(paths, "failover.ko"), netfo = strv_index_suffix(paths, "net_failover.ko");
        /* virtio and virtio_ring may be built in on other kernels; on Debian they are modules */
        if (virtio >= 0 && ring >= 0)
                CHECK(ring < virtio, "virtio_ring (%zd) after virtio (%zd)", ring, virtio);
        CHECK(pci >= 0 && con >= 0 && net >= 0, "virtio_pci %zd, virtio_console %zd, virtio_net %zd", pci, con, net);
        if (virtio >= 0)
                CHECK(virtio < pci && virtio < con && virtio < net, "virtio (%zd) after its users", virtio);
        if (modern >= 0)
                CHECK(modern < pci, "virtio_pci_modern_dev (%zd) after virtio_pci (%zd)", modern, pci);
        if (failover >= 0 && netfo >= 0)
                CHECK(failover < netfo && netfo < net, "failover %zd, net_failover %zd, virtio_net %zd", failover, netfo, net);
        image_strv_free(paths);

        /* unknown module: an error */
        static const char *const bad[] = { "virtio_pci", "no_such_module_fame", NULL };
        paths = NULL;
        r = image_resolve_modules(moddir, bad, &paths);
        CHECK(r == -ENOENT && !paths, "unknown module: %d", r);
}

/* A synthetic moddir: exact order, '-'/'_' equivalence, builtins skipped. */
static void test_modules_synthetic(const char *tmp) {
        char *dir = path_join(tmp, "moddir");
        mkdir(dir, 0755);
        char *dep = path_join(dir, "modules.dep"), *builtin = path_join(dir, "modules.builtin");
        write_file(dep,
                   "kernel/x/top.ko: kernel/x/mid-dle.ko kernel/y/base.ko\n"
                   "kernel/x/mid-dle.ko: kernel/y/base.ko\n"
                   "kernel/y/base.ko:\n"
                   "kernel/z/other.ko.xz: kernel/y/base.ko\n", 0644);
        write_file(builtin, "kernel/drivers/built_in-mod.ko\n", 0644);
        static const char *const names[] = { "top", "built-in_mod", "other", "mid_dle", "top", NULL };
        char **paths = NULL;
        int r = image_resolve_modules(dir, names, &paths);
        CHECK(r == 0 && strv_len(paths) == 4, "synthetic: r=%d n=%zu", r, strv_len(paths));
        if (r == 0 && strv_len(paths) == 4) {
                char *want[4] = { path_join(dir, "kernel/y/base.ko"), path_join(dir, "kernel/x/mid-dle.ko"),
                                  path_join(dir, "kernel/x/top.ko"), path_join(dir, "kernel/z/other.ko.xz") };
                for (int i = 0; i < 4; i++) {
                        CHECK(!strcmp(paths[i], want[i]), "synthetic[%d] = %s, want %s", i, paths[i], want[i]);
                        free(want[i]);
                }
        }
        image_strv_free(paths);
        free(dep);
        free(builtin);
        free(dir);
}

static void test_extract(const char *tmp, const char *vmlinuz) {
        char *out = path_join(tmp, "vmlinux");
        int r = image_extract_vmlinux(vmlinuz, out);
        CHECK(r == 0, "extract_vmlinux(%s): %d", vmlinuz, r);
        if (r == 0) {
                char magic[4] = { 0 };
                int fd = open(out, O_RDONLY | O_CLOEXEC);
                CHECK(fd >= 0 && read(fd, magic, 4) == 4 && !memcmp(magic, "\177ELF", 4), "vmlinux is not ELF");
                if (fd >= 0)
                        close(fd);
                CHECK(file_size(out) > file_size(vmlinuz), "vmlinux (%lld) not larger than vmlinuz (%lld)",
                      (long long) file_size(out), (long long) file_size(vmlinuz));
        }

        /* garbage: an error, and no output file */
        char *garbage = path_join(tmp, "garbage"), *gout = path_join(tmp, "garbage.out");
        write_file(garbage, "this is not a kernel, just some text\n", 0644);
        r = image_extract_vmlinux(garbage, gout);
        CHECK(r < 0 && access(gout, F_OK) < 0, "garbage: %d", r);

        /* an xz stream, but not of an ELF file, with trailing bytes after it */
        uint8_t buf[4096];
        size_t pos = 0;
        memcpy(buf, "MZ-some-setup-code", 18);
        pos = 18;
        static const char payload[] = "hello, not an ELF";
        lzma_ret lr = lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, (const uint8_t *) payload, sizeof payload,
                                              buf, &pos, sizeof buf - 16);
        CHECK(lr == LZMA_OK, "lzma encode");
        memcpy(buf + pos, "trailing", 8);
        pos += 8;
        char *notelf = path_join(tmp, "notelf");
        int fd = open(notelf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && write(fd, buf, pos) == (ssize_t) pos, "write notelf");
        close(fd);
        r = image_extract_vmlinux(notelf, gout);
        CHECK(r < 0 && access(gout, F_OK) < 0, "xz of a non-ELF: %d", r);

        free(notelf);
        free(garbage);
        free(gout);
        free(out);
}

static void check_image_contents(const struct image *img, const char *fame_static, const char *moddir) {
        struct carchive a;
        cpio_read(img->initrd, &a);
        CHECK(a.ok, "%s is not a well-formed cpio newc archive", img->initrd);

        for (size_t i = 0; i < a.n; i++) {
                CHECK(a.e[i].uid == 0 && a.e[i].gid == 0 && a.e[i].mtime == 0, "%s: uid %u gid %u mtime %u",
                      a.e[i].name, a.e[i].uid, a.e[i].gid, a.e[i].mtime);
                CHECK(a.e[i].name[0] != '/' && a.e[i].name[0], "bad name '%s'", a.e[i].name);
                /* parents first */
                char *slash = strrchr(a.e[i].name, '/');
                if (slash) {
                        *slash = 0;
                        bool found = false;
                        for (size_t j = 0; j < i && !found; j++)
                                found = !strcmp(a.e[j].name, a.e[i].name) && S_ISDIR(a.e[j].mode);
                        CHECK(found, "parent %s of an entry is not a directory listed before it", a.e[i].name);
                        *slash = '/';
                }
        }

        CHECK_ENTRY(&a, "/init", S_IFREG | 0755);
        const struct centry *init = cfind(&a, "/init");
        CHECK(init && init->size > 10 && !memcmp(init->data, "#!/bin/sh\n", 10), "/init is not a sh script");
        CHECK(init && memmem(init->data, init->size, "fame-node: ready", 16), "/init prints no ready line");
        CHECK_ENTRY(&a, "/bin/busybox", S_IFREG | 0755);
        const struct centry *bb = cfind(&a, "/bin/busybox");
        CHECK(bb && (off_t) bb->size == file_size("/bin/busybox"), "busybox size");
        CHECK_ENTRY(&a, "/bin/sh", S_IFLNK | 0777);
        CHECK_ENTRY(&a, "/sbin/shutdown", S_IFREG | 0755);
        CHECK_ENTRY(&a, "/usr/bin/qemu-ga", S_IFREG | 0755);
        CHECK_ENTRY(&a, "/usr/bin/fame", S_IFREG | 0755);
        const struct centry *fame = cfind(&a, "/usr/bin/fame");
        CHECK(fame && (off_t) fame->size == file_size(fame_static), "/usr/bin/fame is not %s", fame_static);
        CHECK_ENTRY(&a, "/etc/passwd", S_IFREG | 0644);
        CHECK_ENTRY(&a, "/etc/group", S_IFREG | 0644);
        CHECK_ENTRY(&a, "/tmp", S_IFDIR | 01777);
        CHECK_ENTRY(&a, "/dev/console", S_IFCHR | 0600);
        const struct centry *console = cfind(&a, "/dev/console");
        CHECK(console && console->rmajor == 5 && console->rminor == 1, "/dev/console is not 5:1");

        /* /lfs: fame-lfs, and the libraries every process preloads, mmap's first */
        CHECK_ENTRY(&a, "/lfs", S_IFDIR | 0755);
        CHECK_ENTRY(&a, "/usr/sbin/fame-lfs", S_IFREG | 0755);
        static const char *const preloaded[][2] = {
                { "/usr/lib/fame/libfame-mmap.so", "FAME_MMAP_SHIM" },
                { "/usr/lib/fame/libfame-pmem.so", "FAME_PMEM_SHIM" },
        };
        for (size_t i = 0; i < 2; i++) {
                const char *host = getenv(preloaded[i][1]);
                const struct centry *e = cfind(&a, preloaded[i][0]);
                CHECK_ENTRY(&a, preloaded[i][0], S_IFREG | 0644);
                CHECK(!host || (e && (off_t) e->size == file_size(host)), "%s is not %s", preloaded[i][0], host);
        }
        static const char want_preload[] = "/usr/lib/fame/libfame-mmap.so\n/usr/lib/fame/libfame-pmem.so\n";
        const struct centry *preload = cfind(&a, "/etc/ld.so.preload");
        CHECK(preload && preload->size == strlen(want_preload) && !memcmp(preload->data, want_preload, preload->size),
              "/etc/ld.so.preload is not: %s", want_preload);

        /* qemu-ga's libraries and the loader */
        CHECK(cfind_suffix(&a, "/libc.so.6"), "no libc.so.6");
        CHECK(cfind_suffix(&a, "/libglib-2.0.so.0"), "no libglib-2.0.so.0");
        CHECK(cfind_suffix(&a, "/ld-linux-x86-64.so.2"), "no ld-linux-x86-64.so.2");
        CHECK(cfind(&a, "/lib64/ld-linux-x86-64.so.2"), "no /lib64/ld-linux-x86-64.so.2 (qemu-ga's PT_INTERP)");

        /* modules: the load list names files that are in the image */
        const struct centry *list = cfind(&a, "/etc/fame/modules");
        CHECK(list, "no /etc/fame/modules");
        size_t n_mod = 0;
        if (list) {
                char *s = strndup(list->data, list->size);
                CHECK(strstr(s, "/virtio_pci.ko\n") && strstr(s, "/virtio_console.ko\n") && strstr(s, "/virtio_net.ko\n") &&
                      strstr(s, "/qemu_fw_cfg.ko\n"), "module list: %s", s);
                for (char *save = NULL, *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                        n_mod++;
                        CHECK(!strncmp(l, moddir, strlen(moddir)), "module %s not under %s", l, moddir);
                        const struct centry *m = cfind(&a, l);
                        CHECK(m && S_ISREG(m->mode) && (off_t) m->size == file_size(l), "module %s missing or wrong", l);
                }
                free(s);
        }
        CHECK(n_mod >= 6, "only %zu modules", n_mod);

        /* the overlay and the added files */
        CHECK_ENTRY(&a, "/etc/motd", S_IFREG | 0644);
        CHECK_ENTRY(&a, "/usr/local/bin/hello", S_IFREG | 0750);
        CHECK_ENTRY(&a, "/usr/local/bin", S_IFDIR | 0755);
        CHECK_ENTRY(&a, "/secret", S_IFDIR | 0700);
        CHECK_ENTRY(&a, "/secret/key", S_IFREG | 0600);
        CHECK_ENTRY(&a, "/etc/motd.link", S_IFLNK | 0777);
        const struct centry *lnk = cfind(&a, "/etc/motd.link");
        CHECK(lnk && lnk->size == 4 && !memcmp(lnk->data, "motd", 4), "symlink target");
        const struct centry *passwd = cfind(&a, "/etc/passwd");
        CHECK(passwd && passwd->size == 9 && !memcmp(passwd->data, "override\n", 9), "the overlay does not override /etc/passwd");
        CHECK_ENTRY(&a, "/opt/data.txt", S_IFREG | 0640);
        const struct centry *data = cfind(&a, "/opt/data.txt");
        CHECK(data && data->size == 5 && !memcmp(data->data, "data\n", 5), "/opt/data.txt contents");
        CHECK_ENTRY(&a, "/opt", S_IFDIR | 0755);
        CHECK_ENTRY(&a, "/opt/tree", S_IFDIR | 0711);
        CHECK_ENTRY(&a, "/opt/tree/sub/deep", S_IFREG | 0755);
        cpio_free(&a);
}

static bool files_equal(const char *a, const char *b) {
        size_t la, lb;
        char *x = read_all(a, &la), *y = read_all(b, &lb);
        bool eq = x && y && la == lb && !memcmp(x, y, la);
        free(x);
        free(y);
        return eq;
}

static void test_build(const char *tmp, const char *vmlinuz, const char *fame_static, const char *moddir) {
        char *cache = path_join(tmp, "cache"), *cache2 = path_join(tmp, "cache2"), *ov = path_join(tmp, "overlay");
        char *p;

        /* overlay: files, modes, a symlink, a private dir, a replaced base file */
        mkdir(ov, 0755);
        p = path_join(ov, "etc"); mkdir(p, 0755); free(p);
        p = path_join(ov, "etc/motd"); write_file(p, "hello from the overlay\n", 0644); free(p);
        p = path_join(ov, "etc/passwd"); write_file(p, "override\n", 0644); free(p);
        p = path_join(ov, "etc/motd.link"); CHECK(symlink("motd", p) == 0, "symlink"); free(p);
        p = path_join(ov, "usr"); mkdir(p, 0755); free(p);
        p = path_join(ov, "usr/local"); mkdir(p, 0755); free(p);
        p = path_join(ov, "usr/local/bin"); mkdir(p, 0755); free(p);
        p = path_join(ov, "usr/local/bin/hello"); write_file(p, "#!/bin/sh\necho hello\n", 0750); free(p);
        p = path_join(ov, "secret"); mkdir(p, 0700); chmod(p, 0700); free(p);
        p = path_join(ov, "secret/key"); write_file(p, "k\n", 0600); free(p);

        /* adds: a file and a directory tree */
        char *datafile = path_join(tmp, "data.txt"), *tree = path_join(tmp, "tree");
        write_file(datafile, "data\n", 0640);
        mkdir(tree, 0711);
        chmod(tree, 0711);
        p = path_join(tree, "sub"); mkdir(p, 0755); free(p);
        p = path_join(tree, "sub/deep"); write_file(p, "#!/bin/sh\n", 0755); free(p);
        char *add1, *add2;
        if (asprintf(&add1, "%s:/opt/data.txt", datafile) < 0 || asprintf(&add2, "%s:/opt/tree", tree) < 0)
                abort();
        const char *adds[] = { add1, add2, NULL };

        struct image_params prm = { .kernel = vmlinuz, .cache_dir = cache, .fame_static = fame_static,
                                    .overlay = ov, .adds = adds };
        struct image a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };

        int r = image_diskless_ensure(&prm, &a);
        CHECK(r == 0, "first build: %d", r);
        if (r < 0)
                goto out;
        CHECK(a.built, "first build was not built");
        CHECK(a.key && strlen(a.key) == 32, "key '%s'", a.key);
        CHECK(a.kernel_release && strstr(moddir, a.kernel_release), "release %s vs %s", a.kernel_release, moddir);
        CHECK(a.kernel && a.initrd && !strncmp(a.kernel, cache, strlen(cache)), "paths %s %s", a.kernel, a.initrd);
        CHECK(file_size(a.kernel) > file_size(vmlinuz), "vmlinux size");
        fprintf(stderr, "image %s: initramfs %lld bytes, vmlinux %lld bytes\n", a.key,
                (long long) file_size(a.initrd), (long long) file_size(a.kernel));
        check_image_contents(&a, fame_static, moddir);

        /* again: the cache, same paths */
        r = image_diskless_ensure(&prm, &b);
        CHECK(r == 0 && !b.built, "second call: r=%d built=%d", r, b.built);
        CHECK(r == 0 && !strcmp(a.key, b.key) && !strcmp(a.kernel, b.kernel) && !strcmp(a.initrd, b.initrd),
              "second call: different image");

        /* the same inputs into another cache: byte-identical (reproducible) */
        prm.cache_dir = cache2;
        r = image_diskless_ensure(&prm, &d);
        CHECK(r == 0 && d.built && !strcmp(a.key, d.key), "other cache: r=%d", r);
        CHECK(r == 0 && files_equal(a.initrd, d.initrd), "initramfs is not reproducible");
        prm.cache_dir = cache;

        /* an overlay file changes (same size): a new key and a new build */
        p = path_join(ov, "etc/motd"); write_file(p, "HELLO from the overlay\n", 0644); free(p);
        r = image_diskless_ensure(&prm, &c);
        CHECK(r == 0 && c.built && strcmp(a.key, c.key) != 0, "changed overlay: r=%d built=%d", r, c.built);
        CHECK(r == 0 && access(a.initrd, R_OK) == 0, "the old image went away");

        /* a mode change alone: a new key too */
        image_done(&c);
        p = path_join(ov, "usr/local/bin/hello"); chmod(p, 0755); free(p);
        r = image_diskless_ensure(&prm, &c);
        CHECK(r == 0 && c.built && strcmp(a.key, c.key) != 0, "changed mode: r=%d built=%d", r, c.built);
        image_done(&c);

        /* errors */
        struct image_params bad = prm;
        bad.kernel = "/nonexistent/vmlinuz-0";
        CHECK(image_diskless_ensure(&bad, &c) < 0, "missing kernel accepted");
        bad = prm;
        bad.kernel = datafile;
        CHECK(image_diskless_ensure(&bad, &c) < 0, "non-kernel accepted");
        bad = prm;
        bad.overlay = datafile;
        CHECK(image_diskless_ensure(&bad, &c) == -ENOTDIR, "overlay that is a file accepted");
        bad.overlay = "/nonexistent/overlay";
        CHECK(image_diskless_ensure(&bad, &c) < 0, "missing overlay accepted");
        bad = prm;
        const char *rel[] = { add1, "/etc/hostname:etc/relative", NULL };
        bad.adds = rel;
        CHECK(image_diskless_ensure(&bad, &c) == -EINVAL, "relative node path accepted");
        const char *missing[] = { "/nonexistent/file:/opt/x", NULL };
        bad.adds = missing;
        CHECK(image_diskless_ensure(&bad, &c) < 0, "missing host path accepted");
        bad = prm;
        bad.fame_static = "/nonexistent/fame-static";
        CHECK(image_diskless_ensure(&bad, &c) < 0, "missing fame-static accepted");

        /* no temporary directories left behind */
        char *images = path_join(cache, "images");
        DIR *dd = opendir(images);
        CHECK(dd, "no %s", images);
        if (dd) {
                struct dirent *de;
                while ((de = readdir(dd)))
                        CHECK(strncmp(de->d_name, ".tmp", 4) != 0, "left over %s", de->d_name);
                closedir(dd);
        }
        free(images);
out:
        image_done(&a);
        image_done(&b);
        image_done(&c);
        image_done(&d);
        free(add1);
        free(add2);
        free(datafile);
        free(tree);
        free(cache);
        free(cache2);
        free(ov);
}

/* Issue 16 #18d: mmdebstrap's special hooks split their text with Perl's shellwords; a path with
 * a space (cache_dir) or a quote must stay one word.  The text is checked exactly, then split by
 * the real Text::ParseWords when perl is there. */
static void test_hook_quoting(void) {
        static const struct { const char *a, *b, *want; } cases[] = {
                { "/c/debs", "/", "sync-in '/c/debs' '/'" },
                { "/my cache/debian/debs", "/var/cache/apt/archives/", "sync-in '/my cache/debian/debs' '/var/cache/apt/archives/'" },
                { "/it's/$HOME/\\x", "/", "sync-in '/it'\\''s/$HOME/\\x' '/'" },
        };
        bool perl = access("/usr/bin/perl", X_OK) == 0;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *h = image_hook("sync-in", cases[i].a, cases[i].b);
                CHECK(h && strcmp(h, cases[i].want) == 0, "hook of '%s': %s, expected %s", cases[i].a, h ? h : "(null)", cases[i].want);
                if (h && perl) {
                        struct cmd *c = cmd_new("/usr/bin/perl");
                        char *out = NULL, want[1024];
                        cmd_args(c, (const char *const[]) { "-MText::ParseWords", "-e", "print join(qq(\\n), shellwords($ARGV[0]))", h, NULL });
                        int r = cmd_run(c, &out);
                        snprintf(want, sizeof want, "sync-in\n%s\n%s", cases[i].a, cases[i].b);
                        CHECK(r == 0 && out && strcmp(out, want) == 0, "shellwords(%s) = %s", h, out ? out : "(failed)");
                        free(out);
                        cmd_free(c);
                }
                free(h);
        }
        if (!perl)
                fprintf(stderr, "no /usr/bin/perl: the hook text is not split by Text::ParseWords\n");
}

int main(void) {
        char vmlinuz[PATH_MAX] = "", moddir[PATH_MAX], fame_static[PATH_MAX];

        test_hook_quoting();

        /* the newest /boot/vmlinuz-* (the builder's own choice) */
        DIR *d = opendir("/boot");
        struct dirent *de;
        char best[256] = "";
        while (d && (de = readdir(d)))
                if (!strncmp(de->d_name, "vmlinuz-", 8) && (!best[0] || strverscmp(de->d_name, best) > 0))
                        snprintf(best, sizeof best, "%s", de->d_name);
        if (d)
                closedir(d);
        if (!best[0])
                SKIP("no /boot/vmlinuz-*: install linux-image-amd64");
        snprintf(vmlinuz, sizeof vmlinuz, "/boot/%s", best);
        snprintf(moddir, sizeof moddir, "/lib/modules/%s", best + 8);
        if (access(vmlinuz, R_OK) < 0)
                SKIP("%s is not readable", vmlinuz);
        if (access(moddir, F_OK) < 0)
                SKIP("no %s for %s", moddir, vmlinuz);
        if (access("/bin/busybox", X_OK) < 0 && access("/usr/bin/busybox", X_OK) < 0)
                SKIP("busybox is not installed (busybox-static)");
        if (access("/usr/bin/qemu-ga", X_OK) < 0 && access("/usr/sbin/qemu-ga", X_OK) < 0)
                SKIP("qemu-ga is not installed (qemu-guest-agent)");

        const char *build = getenv("FAME_BUILD_ROOT");
        snprintf(fame_static, sizeof fame_static, "%s/fame-static", build && *build ? build : "build");
        if (access(fame_static, R_OK) < 0) {
                /* Sanitizer builds have no static node binary: any static program stands in. */
                const char *bb = access("/bin/busybox", R_OK) == 0 ? "/bin/busybox" : "/usr/bin/busybox";
                fprintf(stderr, "%s is missing (a sanitizer build?): using %s in its place\n", fame_static, bb);
                snprintf(fame_static, sizeof fame_static, "%s", bb);
                /* and for fame-lfs-static; libfame-mmap.so and libfame-pmem.so are built in every build */
                setenv("FAME_NODE_LFS", bb, 1);
        }

        const char *tmp = test_tmpdir();
        test_modules(moddir);
        test_modules_synthetic(tmp);
        test_extract(tmp, vmlinuz);
        test_build(tmp, vmlinuz, fame_static, moddir);
        return test_exit();
}
