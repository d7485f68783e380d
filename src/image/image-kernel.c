/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The kernel side of a node image: the uncompressed ELF vmlinux inside a Debian bzImage (an xz
 * stream in the compressed payload), the kernel release from the bzImage's setup header, and
 * the module list resolved from modules.dep.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lzma.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "image-internal.h"
#include "log.h"
#include "util.h"
#include "macro.h"

static const uint8_t xz_magic[6] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };

struct mapping {
        void *p;
        size_t len;
};

static void unmapp(struct mapping *m) {
        if (m->p && m->p != MAP_FAILED)
                munmap(m->p, m->len);
}

static int map_file(const char *path, struct mapping *ret) {
        struct stat st;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_size == 0) {
                *ret = (struct mapping) { NULL, 0 };
                return 0;
        }
        void *p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        *ret = (struct mapping) { p, (size_t) st.st_size };
        return 0;
}

/* Decodes one xz stream at in[0..len) into fd. Returns bytes written, -EBADMSG when this is
 * not a valid stream, or another -errno. */
static int64_t xz_decode_to(const uint8_t *in, size_t len, int fd, uint8_t *out, size_t out_len) {
        lzma_stream s = LZMA_STREAM_INIT;
        int64_t total = 0;
        int r = 0;

        /* No LZMA_CONCATENATED: decoding stops at the end of the first stream, and what
         * follows it in the bzImage (padding, the rest of the setup) is not looked at. */
        if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
                return -ENOMEM;
        s.next_in = in;
        s.avail_in = len;
        for (;;) {
                s.next_out = out;
                s.avail_out = out_len;
                lzma_ret lr = lzma_code(&s, LZMA_FINISH);
                size_t have = out_len - s.avail_out;
                if (have > 0) {
                        if (total == 0 && (have < 4 || memcmp(out, "\177ELF", 4) != 0)) {
                                r = -ENOEXEC;
                                break;
                        }
                        r = write_all(fd, out, have);
                        if (r < 0)
                                break;
                        total += (int64_t) have;
                }
                if (lr == LZMA_STREAM_END)
                        break;
                if (lr == LZMA_MEM_ERROR) {
                        r = -ENOMEM;
                        break;
                }
                if (lr != LZMA_OK) {
                        r = -EBADMSG;
                        break;
                }
        }
        lzma_end(&s);
        if (r < 0)
                return r;
        if (total == 0)
                return -ENOEXEC;
        return total;
}

int image_extract_vmlinux(const char *vmlinuz, const char *out_path) {
        _cleanup_(unmapp) struct mapping m = { 0 };
        _cleanup_free_ char *tmp = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        int r;

        r = map_file(vmlinuz, &m);
        if (r < 0)
                return log_error_errno(r, "Cannot read kernel '%s': %m", vmlinuz);
        if (asprintf(&tmp, "%s.XXXXXX", out_path) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        buf = malloc(1 << 20);
        if (!buf)
                return log_error_errno(-ENOMEM, "Out of memory");

        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot create '%s': %m", tmp);

        /* The first offset holding the magic that decodes as an xz stream of an ELF file. */
        int64_t n = -ENOENT;
        const uint8_t *p = m.p, *end = p ? p + m.len : NULL;
        while (p && p < end) {
                const uint8_t *hit = memmem(p, (size_t) (end - p), xz_magic, sizeof xz_magic);
                if (!hit)
                        break;
                if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
                        n = -errno;
                        break;
                }
                n = xz_decode_to(hit, (size_t) (end - hit), fd, buf, 1 << 20);
                if (n >= 0 || (n != -EBADMSG && n != -ENOEXEC))
                        break;
                p = hit + 1;
        }
        if (n < 0) {
                (void) unlink(tmp);
                if (n == -ENOENT || n == -EBADMSG || n == -ENOEXEC)
                        return log_error_errno((int) n, "'%s' is not an xz-compressed bzImage (no xz stream holding an ELF kernel); set kernel= to a Debian vmlinuz", vmlinuz);
                return log_error_errno((int) n, "Cannot write '%s': %m", tmp);
        }
        if (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || rename(tmp, out_path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return log_error_errno(r, "Cannot write '%s': %m", out_path);
        }
        return 0;
}

int image_kernel_release(const char *vmlinuz, char **ret) {
        /* x86 boot protocol: "HdrS" at 0x202; at 0x20e a 16-bit pointer (minus 0x200) to the
         * version string "6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP ...". */
        uint8_t hdr[0x210];
        char ver[256];
        _cleanup_close_ int fd = open(vmlinuz, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (pread(fd, hdr, sizeof hdr, 0) != (ssize_t) sizeof hdr || memcmp(hdr + 0x202, "HdrS", 4) != 0)
                return -ENOEXEC;
        off_t at = (off_t) (hdr[0x20e] | hdr[0x20f] << 8) + 0x200;
        ssize_t k = pread(fd, ver, sizeof ver - 1, at);
        if (k <= 0)
                return -ENOEXEC;
        ver[k] = 0;
        size_t n = strcspn(ver, " \t\n");
        if (n == 0 || n >= (size_t) k)
                return -ENOEXEC;
        for (size_t i = 0; i < n; i++)
                if (ver[i] < 0x21 || ver[i] > 0x7e || ver[i] == '/')
                        return -ENOEXEC;
        char *s = strndup(ver, n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- modules ---------------------------------------------------------------------------- */

struct moddep {
        char *name;             /* normalized: '-' -> '_', no directory, no ".ko..." */
        char *path;             /* as in modules.dep, relative to moddir */
        char **deps;            /* paths, as in modules.dep */
        size_t n_deps;
        int state;              /* 0 new, 1 visiting, 2 done */
};

struct modtab {
        struct moddep *m;
        size_t n, allocated;
        char **builtin;         /* normalized names */
        size_t n_builtin, allocated_builtin;
};

static char *module_name(const char *s, size_t len) {
        const char *slash = memrchr(s, '/', len);
        if (slash) {
                len -= (size_t) (slash + 1 - s);
                s = slash + 1;
        }
        const char *ko = NULL;
        for (size_t i = 0; i + 3 <= len; i++)
                if (!memcmp(s + i, ".ko", 3) && (i + 3 == len || s[i + 3] == '.'))
                        ko = s + i;
        if (ko)
                len = (size_t) (ko - s);
        char *n = strndup(s, len);
        if (!n)
                return NULL;
        for (char *c = n; *c; c++)
                if (*c == '-')
                        *c = '_';
        return n;
}

static void modtab_done(struct modtab *t) {
        for (size_t i = 0; i < t->n; i++) {
                free(t->m[i].name);
                free(t->m[i].path);
                for (size_t j = 0; j < t->m[i].n_deps; j++)
                        free(t->m[i].deps[j]);
                free(t->m[i].deps);
        }
        free(t->m);
        for (size_t i = 0; i < t->n_builtin; i++)
                free(t->builtin[i]);
        free(t->builtin);
}

static int parse_dep_line(struct modtab *t, char *line) {
        char *colon = strchr(line, ':');
        if (!colon)
                return 0;
        if (t->n == t->allocated) {
                size_t na = t->allocated ? t->allocated * 2 : 1024;
                struct moddep *m = realloc(t->m, na * sizeof *m);
                if (!m)
                        return -ENOMEM;
                t->m = m;
                t->allocated = na;
        }
        struct moddep *d = &t->m[t->n];
        *d = (struct moddep) { 0 };
        d->path = strndup(line, (size_t) (colon - line));
        d->name = module_name(line, (size_t) (colon - line));
        if (!d->path || !d->name) {
                free(d->path);
                free(d->name);
                return -ENOMEM;
        }
        t->n++;
        for (char *save = NULL, *tok = strtok_r(colon + 1, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
                char **nd = realloc(d->deps, (d->n_deps + 1) * sizeof *nd);
                if (!nd)
                        return -ENOMEM;
                d->deps = nd;
                if (!(d->deps[d->n_deps] = strdup(tok)))
                        return -ENOMEM;
                d->n_deps++;
        }
        return 0;
}

static int modtab_load(struct modtab *t, const char *moddir) {
        _cleanup_free_ char *dep = NULL, *builtin = NULL, *line = NULL;
        size_t cap = 0;
        ssize_t k;
        int r = 0;

        if (asprintf(&dep, "%s/modules.dep", moddir) < 0 || asprintf(&builtin, "%s/modules.builtin", moddir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        FILE *f = fopen(dep, "re");
        if (!f)
                return log_error_errno(-errno, "Cannot read '%s': %m", dep);
        while ((k = getline(&line, &cap, f)) > 0) {
                r = parse_dep_line(t, line);
                if (r < 0)
                        break;
        }
        fclose(f);
        if (r < 0)
                return log_error_errno(r, "Cannot parse '%s': %m", dep);

        /* modules.builtin is optional (a kernel without builtin modules has none) */
        f = fopen(builtin, "re");
        if (!f) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(-errno, "Cannot read '%s': %m", builtin);
        }
        while ((k = getline(&line, &cap, f)) > 0) {
                while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == ' '))
                        line[--k] = 0;
                if (k == 0)
                        continue;
                if (t->n_builtin == t->allocated_builtin) {
                        size_t na = t->allocated_builtin ? t->allocated_builtin * 2 : 1024;
                        char **b = realloc(t->builtin, na * sizeof *b);
                        if (!b) {
                                r = -ENOMEM;
                                break;
                        }
                        t->builtin = b;
                        t->allocated_builtin = na;
                }
                if (!(t->builtin[t->n_builtin] = module_name(line, (size_t) k))) {
                        r = -ENOMEM;
                        break;
                }
                t->n_builtin++;
        }
        fclose(f);
        if (r < 0)
                return log_error_errno(r, "Cannot parse '%s': %m", builtin);
        return 0;
}

static struct moddep *modtab_find(struct modtab *t, const char *name) {
        for (size_t i = 0; i < t->n; i++)
                if (!strcmp(t->m[i].name, name))
                        return &t->m[i];
        return NULL;
}

static bool modtab_builtin(const struct modtab *t, const char *name) {
        for (size_t i = 0; i < t->n_builtin; i++)
                if (!strcmp(t->builtin[i], name))
                        return true;
        return false;
}

struct strv {
        char **v;
        size_t n;
};

static int strv_push(struct strv *s, char *str) {
        char **nv = realloc(s->v, (s->n + 2) * sizeof *nv);
        if (!nv) {
                free(str);
                return -ENOMEM;
        }
        s->v = nv;
        s->v[s->n++] = str;
        s->v[s->n] = NULL;
        return 0;
}

/* Depth-first, dependencies before the module; modules.dep lists a module's dependencies
 * nearest-last (modprobe loads them back to front), and each has a line of its own, so
 * recursing on every line gives a correct order whatever the listing order. */
static int visit(struct modtab *t, struct moddep *d, const char *moddir, struct strv *out) {
        if (d->state == 2)
                return 0;
        if (d->state == 1)
                return 0;       /* a dependency cycle: modules.dep never has one; don't loop */
        d->state = 1;
        for (size_t i = d->n_deps; i-- > 0;) {
                _cleanup_free_ char *name = module_name(d->deps[i], strlen(d->deps[i]));
                if (!name)
                        return -ENOMEM;
                struct moddep *dd = modtab_find(t, name);
                if (!dd)
                        return log_error_errno(-ENOENT, "Module '%s' (needed by %s) is missing from %s/modules.dep", d->deps[i], d->name, moddir);
                int r = visit(t, dd, moddir, out);
                if (r < 0)
                        return r;
        }
        d->state = 2;
        char *path;
        if (d->path[0] == '/')
                path = strdup(d->path);
        else if (asprintf(&path, "%s/%s", moddir, d->path) < 0)
                path = NULL;
        if (!path)
                return -ENOMEM;
        return strv_push(out, path);
}

void image_strv_free(char **l) {
        if (!l)
                return;
        for (char **s = l; *s; s++)
                free(*s);
        free(l);
}

int image_resolve_modules(const char *moddir, const char *const *names, char ***ret_paths) {
        struct modtab t = { 0 };
        struct strv out = { 0 };
        int r;

        r = modtab_load(&t, moddir);
        if (r < 0)
                goto out;
        for (const char *const *n = names; n && *n; n++) {
                bool optional = **n == '?';
                const char *want = *n + optional;
                _cleanup_free_ char *name = module_name(want, strlen(want));
                if (!name) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        goto out;
                }
                struct moddep *d = modtab_find(&t, name);
                if (!d) {
                        if (modtab_builtin(&t, name) || optional)
                                continue;
                        r = log_error_errno(-ENOENT, "Kernel module '%s' is neither in %s/modules.dep nor built in", want, moddir);
                        goto out;
                }
                r = visit(&t, d, moddir, &out);
                if (r < 0) {
                        if (r == -ENOMEM)
                                log_error_errno(r, "Out of memory");
                        goto out;
                }
        }
        if (!out.v) {
                out.v = calloc(1, sizeof *out.v);
                if (!out.v) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        goto out;
                }
        }
        *ret_paths = TAKE_PTR(out.v);
        r = 0;
out:
        image_strv_free(out.v);
        modtab_done(&t);
        return r;
}
