/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame node setup: applies the node's seed at boot (Debian nodes; fame-setup.service; the seed
 * is made by src/cluster/seed.c, the format in docs/debian.md).  In C rather than a shell
 * script: under TCG early in boot every fork+exec costs ~0.2 s, and the script spent 11 s.
 *
 *   every boot:  /etc/hostname + sethostname, the FAM/E block of /etc/hosts,
 *                /etc/ssh/ssh_known_hosts, /run/systemd/network/NAME.network, group fam may map
 *                the ivshmem device's BAR2
 *   first boot:  machine-id, SSH host key, the user (useradd), its SSH keys, sudo rule
 *                (marked by /var/lib/fame/setup-done); fame-ldconfig.service runs ldconfig for
 *                libfame off the boot's critical path
 *
 * --root DIR applies everything under DIR instead of / and prints the programs it would run
 * instead of running them (tests).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "macro.h"
#include "spawn.h"
#include "util.h"
#include "verbs.h"

#define SEED_FW "/sys/firmware/qemu_fw_cfg/by_name/opt/org.fame/seed/raw"
#define MAX_ENTRIES 64

struct entry {
        char name[101];
        unsigned mode;
        const char *data;
        size_t len;
        bool dir;
};

struct setup {
        const char *root;               /* "" for / */
        bool dry;                       /* print commands instead of running them */
        struct entry e[MAX_ENTRIES];
        size_t n;
        char node[32], user[33], uid[16];
};

/* The seed, /etc files and sysfs attributes: all small. */
static char *slurp(const char *path, size_t *ret_len) {
        return read_file(path, 16u << 20, ret_len);
}

/* Our own ustar (tar_add in src/cluster/seed.c): names < 100 bytes, files and directories. */
static int parse_tar(struct setup *s, const char *buf, size_t len) {
        size_t off = 0;
        while (off + 512 <= len) {
                const unsigned char *h = (const unsigned char *) buf + off;
                if (h[0] == 0)
                        return 0;
                if (s->n == MAX_ENTRIES)
                        return -E2BIG;
                struct entry *e = &s->e[s->n];
                memcpy(e->name, h, 100);
                e->name[100] = 0;
                char num[13] = { 0 };
                memcpy(num, h + 124, 12);
                size_t size = (size_t) strtoull(num, NULL, 8);
                memcpy(num, h + 100, 8);
                num[8] = 0;
                e->mode = (unsigned) strtoul(num, NULL, 8);
                e->dir = h[156] == '5';
                off += 512;
                if (size > len - off || strstr(e->name, "..") || e->name[0] == '/')
                        return -EBADMSG;
                e->data = buf + off;
                e->len = size;
                off += (size + 511) / 512 * 512;
                s->n++;
        }
        return -EBADMSG;
}

static const struct entry *find(const struct setup *s, const char *name) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->e[i].name, name) == 0)
                        return &s->e[i];
        return NULL;
}

static void path(const struct setup *s, char *buf, size_t len, const char *p) {
        snprintf(buf, len, "%s%s", s->root, p);
}

static int write_path(const struct setup *s, const char *p, unsigned mode, const void *data, size_t len) {
        char full[PATH_MAX];
        path(s, full, sizeof full, p);
        char *slash = strrchr(full, '/');
        if (slash && slash != full) {
                *slash = 0;
                (void) mkdir_p(full, 0755);
                *slash = '/';
        }
        int r = write_file_atomic(full, mode, data, len);
        return r < 0 ? log_error_errno(r, "Cannot write '%s': %m", full) : 0;
}

static int install_entry(const struct setup *s, const char *name, const char *dest, unsigned mode) {
        const struct entry *e = find(s, name);
        if (!e)
                return log_error_errno(-ENOENT, "The seed has no '%s': start the node with fame up", name);
        return write_path(s, dest, mode, e->data, e->len);
}

static int run(const struct setup *s, const char *const *argv) {
        if (s->dry) {
                printf("would run:");
                for (size_t i = 0; argv[i]; i++)
                        printf(" %s", argv[i]);
                putchar('\n');
                return 0;
        }
        _cleanup_cmd_ struct cmd *c = cmd_new(argv[0]);
        cmd_args(c, argv + 1);
        int r = cmd_run(c, NULL);
        if (r != 0)
                return log_error_errno(-EIO, "%s failed (exit status %d)", argv[0], r);
        return 0;
}

/* The value of KEY in node.env ("KEY=VALUE" lines). */
static void env_value(const struct entry *env, const char *key, char *out, size_t len) {
        size_t kl = strlen(key);
        *out = 0;
        for (const char *l = env->data; l < env->data + env->len;) {
                const char *nl = memchr(l, '\n', (size_t) (env->data + env->len - l));
                size_t ll = nl ? (size_t) (nl - l) : (size_t) (env->data + env->len - l);
                if (ll > kl && strncmp(l, key, kl) == 0 && l[kl] == '=')
                        snprintf(out, len, "%.*s", (int) (ll - kl - 1), l + kl + 1);
                l += ll + 1;
        }
}

/* Field `field` (0-based) of the line for `name` in an /etc/passwd-style file, or "". */
static void db_field(const struct setup *s, const char *file, const char *name, int field, char *out, size_t len) {
        char full[PATH_MAX];
        size_t n;
        path(s, full, sizeof full, file);
        _cleanup_free_ char *db = slurp(full, &n);
        *out = 0;
        for (char *l = db ? strtok(db, "\n") : NULL; l; l = strtok(NULL, "\n")) {
                size_t nl = strlen(name);
                if (strncmp(l, name, nl) != 0 || l[nl] != ':')
                        continue;
                char *f = l;
                for (int i = 0; i < field && f; i++) {
                        f = strchr(f, ':');
                        if (f)
                                f++;
                }
                if (f)
                        snprintf(out, len, "%.*s", (int) strcspn(f, ":"), f);
                return;
        }
}

/* /etc/hosts: everything of the node's own, without the old FAM/E block, plus the new one. */
static int update_hosts(const struct setup *s) {
        char full[PATH_MAX];
        size_t n = 0;
        path(s, full, sizeof full, "/etc/hosts");
        _cleanup_free_ char *old = slurp(full, &n);
        const struct entry *e = find(s, "hosts");
        if (!e)
                return log_error_errno(-ENOENT, "The seed has no 'hosts'");
        char *text = NULL;
        size_t tlen = 0;
        FILE *f = open_memstream(&text, &tlen);
        bool in_block = false;
        for (char *l = old ? strtok(old, "\n") : NULL; l; l = strtok(NULL, "\n")) {
                if (strncmp(l, "# BEGIN FAM/E", 13) == 0)
                        in_block = true;
                else if (strncmp(l, "# END FAM/E", 11) == 0)
                        in_block = false;
                else if (!in_block && strncmp(l, "127.0.1.1", 9) != 0)
                        fprintf(f, "%s\n", l);
        }
        fwrite(e->data, 1, e->len, f);
        fclose(f);
        int r = write_path(s, "/etc/hosts", 0644, text, tlen);
        free(text);
        return r;
}

/* Members of group fam may map FAM: the ivshmem device's BAR2, enabled. */
static int fam_device_access(const struct setup *s) {
        char gid_s[16], pattern[PATH_MAX];
        db_field(s, "/etc/group", "fam", 2, gid_s, sizeof gid_s);
        if (!*gid_s) {
                int r = run(s, (const char *const[]) { "groupadd", "--system", "fam", NULL });
                if (r < 0)
                        return r;
                db_field(s, "/etc/group", "fam", 2, gid_s, sizeof gid_s);
        }
        path(s, pattern, sizeof pattern, "/sys/bus/pci/devices/*");
        glob_t g = { 0 };
        if (glob(pattern, 0, NULL, &g) != 0)
                return 0;
        for (size_t i = 0; i < g.gl_pathc; i++) {
                char p[PATH_MAX], buf[32] = "";
                size_t n;
                snprintf(p, sizeof p, "%s/vendor", g.gl_pathv[i]);
                _cleanup_free_ char *vendor = slurp(p, &n);
                snprintf(p, sizeof p, "%s/device", g.gl_pathv[i]);
                _cleanup_free_ char *device = slurp(p, &n);
                if (!vendor || !device || strncmp(vendor, "0x1af4", 6) != 0 || strncmp(device, "0x1110", 6) != 0)
                        continue;
                snprintf(p, sizeof p, "%s/enable", g.gl_pathv[i]);
                int fd = open(p, O_RDWR | O_CLOEXEC);
                if (fd >= 0) {
                        if (read(fd, buf, sizeof buf - 1) > 0 && buf[0] == '0' && pwrite(fd, "1", 1, 0) != 1)
                                log_warning("Cannot enable %s: %m", g.gl_pathv[i]);
                        close(fd);
                }
                snprintf(p, sizeof p, "%s/resource2", g.gl_pathv[i]);
                if (*gid_s && (chown(p, 0, (gid_t) strtoul(gid_s, NULL, 10)) < 0 || chmod(p, 0660) < 0))
                        log_warning("Cannot open %s to group fam: %m", p);
        }
        globfree(&g);
        return 0;
}

static int first_boot(const struct setup *s) {
        char home[PATH_MAX], p[PATH_MAX], gid[16];
        int r;

        r = install_entry(s, "machine-id", "/etc/machine-id", 0444);
        if (r < 0)
                return r;
        glob_t g = { 0 };
        path(s, p, sizeof p, "/etc/ssh/ssh_host_*");
        if (glob(p, 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                        unlink(g.gl_pathv[i]);
        globfree(&g);
        r = install_entry(s, "ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key", 0600);
        if (r >= 0)
                r = install_entry(s, "ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_ed25519_key.pub", 0644);
        if (r < 0)
                return r;

        db_field(s, "/etc/passwd", s->user, 5, home, sizeof home);
        if (!*home) {
                r = run(s, (const char *const[]) { "useradd", "--create-home", "--uid", s->uid, "--user-group", "--groups", "sudo,fam",
                                                   "--shell", "/bin/bash", s->user, NULL });
                if (r < 0)
                        return r;
                db_field(s, "/etc/passwd", s->user, 5, home, sizeof home);
                if (!*home)
                        snprintf(home, sizeof home, "/home/%s", s->user);
        }
        db_field(s, "/etc/passwd", s->user, 3, gid, sizeof gid);
        uid_t u = (uid_t) strtoul(s->uid, NULL, 10);
        gid_t gr = *gid ? (gid_t) strtoul(gid, NULL, 10) : u;
        char ssh[PATH_MAX];
        snprintf(ssh, sizeof ssh, "%s/.ssh", home);
        path(s, p, sizeof p, home);
        (void) mkdir_p(p, 0755);
        path(s, p, sizeof p, ssh);
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Cannot create '%s': %m", p);
        static const char *const files[][2] = { { "authorized_keys", "0600" }, { "id_ed25519", "0600" }, { "id_ed25519.pub", "0644" } };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char dest[PATH_MAX];
                snprintf(dest, sizeof dest, "%s/%s", ssh, files[i][0]);
                r = install_entry(s, files[i][0], dest, (unsigned) strtoul(files[i][1], NULL, 8));
                if (r < 0)
                        return r;
                path(s, p, sizeof p, dest);
                if (!s->dry && chown(p, u, gr) < 0)
                        return log_error_errno(-errno, "Cannot chown '%s': %m", p);
        }
        path(s, p, sizeof p, ssh);
        if (!s->dry && chown(p, u, gr) < 0)
                return log_error_errno(-errno, "Cannot chown '%s': %m", p);
        char sudo[128];
        int n = snprintf(sudo, sizeof sudo, "%s ALL=(ALL) NOPASSWD:ALL\n", s->user);
        r = write_path(s, "/etc/sudoers.d/fame-user", 0440, sudo, (size_t) n);
        if (r < 0)
                return r;
        path(s, p, sizeof p, "/var/lib/fame");
        (void) mkdir_p(p, 0755);
        char done[40];
        n = snprintf(done, sizeof done, "%s\n", s->node);
        return write_path(s, "/var/lib/fame/setup-done", 0644, done, (size_t) n);
}

const struct verb_options node_setup_options = {
        .list = (const struct verb_option[]) {
                { "seed", 's', "FILE", "read the seed from FILE" },
                { "root", 'r', "DIR", "apply under DIR instead of /, and print the programs it would\n"
                                      "run (useradd, ldconfig) instead of running them" },
                {}
        },
};

int cmd_node_setup(const struct verb *v, int argc, char **argv) {
        static struct setup s;
        const char *seed = SEED_FW;
        bool first = true;
        int ch, r;

        s = (struct setup) { .root = "" };
        while ((ch = verb_getopt(v, argc, argv, &first)) != -1) {
                if (ch == 's')
                        seed = optarg;
                else if (ch == 'r') {
                        s.root = strcmp(optarg, "/") == 0 ? "" : optarg;
                        s.dry = *s.root != 0;
                } else
                        return -EINVAL;
        }
        if (access(seed, R_OK) < 0 && strcmp(seed, SEED_FW) == 0 && !s.dry)
                (void) run(&s, (const char *const[]) { "modprobe", "qemu_fw_cfg", NULL });
        size_t len;
        _cleanup_free_ char *buf = slurp(seed, &len);
        if (!buf) {
                if (errno == ENOENT && strcmp(seed, SEED_FW) == 0) {
                        printf("fame-setup: no seed in fw_cfg (opt/org.fame/seed): this node was not started by fame up\n");
                        return 0;
                }
                return log_error_errno(-errno, "Cannot read the seed '%s': %m", seed), 1;
        }
        r = parse_tar(&s, buf, len);
        if (r < 0)
                return log_error_errno(r, "'%s' is not a FAM/E seed (a tar archive of small files)", seed), 1;
        const struct entry *env = find(&s, "node.env");
        if (!env)
                return log_error_errno(-EBADMSG, "The seed '%s' has no node.env", seed), 1;
        env_value(env, "FAME_NODE_NAME", s.node, sizeof s.node);
        env_value(env, "FAME_USER", s.user, sizeof s.user);
        env_value(env, "FAME_UID", s.uid, sizeof s.uid);
        if (!*s.node || !*s.user || !*s.uid || strspn(s.uid, "0123456789") != strlen(s.uid) || strchr(s.user, '/'))
                return log_error_errno(-EBADMSG, "The seed's node.env lacks FAME_NODE_NAME, FAME_USER or FAME_UID"), 1;

        /* every boot */
        char line[40];
        int n = snprintf(line, sizeof line, "%s\n", s.node);
        r = write_path(&s, "/etc/hostname", 0644, line, (size_t) n);
        if (r >= 0 && !s.dry && sethostname(s.node, strlen(s.node)) < 0)
                log_warning("sethostname: %m");
        if (r >= 0)
                r = update_hosts(&s);
        if (r >= 0)
                r = install_entry(&s, "ssh_known_hosts", "/etc/ssh/ssh_known_hosts", 0644);
        if (r >= 0) {
                char p[PATH_MAX];
                path(&s, p, sizeof p, "/run/systemd/network");
                (void) mkdir_p(p, 0755);
                for (size_t i = 0; i < s.n && r >= 0; i++) {
                        if (strncmp(s.e[i].name, "network/", 8) != 0 || s.e[i].dir)
                                continue;
                        char dest[PATH_MAX];
                        snprintf(dest, sizeof dest, "/run/systemd/network/%s", s.e[i].name + 8);
                        r = write_path(&s, dest, 0644, s.e[i].data, s.e[i].len);
                }
        }
        if (r >= 0)
                r = fam_device_access(&s);
        if (r < 0)
                return 1;

        char done[PATH_MAX];
        path(&s, done, sizeof done, "/var/lib/fame/setup-done");
        bool firstboot = access(done, F_OK) < 0;
        if (firstboot && first_boot(&s) < 0)
                return 1;
        printf("fame-setup: %s set up%s (user %s)\n", s.node, firstboot ? " for the first time" : "", s.user);
        return 0;
}
