/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "log.h"
#include "macro.h"
#include "seed.h"
#include "spawn.h"
#include "util.h"

#define NODE_UID 1000

/* ---- ustar ---------------------------------------------------------------------------------- */

int tar_add(int fd, const char *name, unsigned mode, const void *data, size_t len) {
        unsigned char h[512] = { 0 };
        bool dir = name[strlen(name) - 1] == '/';
        if (strlen(name) >= 100)
                return -ENAMETOOLONG;
        memcpy(h, name, strlen(name));
        snprintf((char *) h + 100, 8, "%07o", mode & 07777);
        snprintf((char *) h + 108, 8, "%07o", 0);
        snprintf((char *) h + 116, 8, "%07o", 0);
        snprintf((char *) h + 124, 12, "%011zo", dir ? (size_t) 0 : len);
        snprintf((char *) h + 136, 12, "%011o", 0);
        h[156] = dir ? '5' : '0';
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memcpy(h + 265, "root", 4);
        memcpy(h + 297, "root", 4);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (size_t i = 0; i < sizeof h; i++)
                sum += h[i];
        snprintf((char *) h + 148, 8, "%06o", sum);
        h[155] = ' ';
        int r = write_all(fd, h, sizeof h);
        if (r < 0 || dir || len == 0)
                return r;
        r = write_all(fd, data, len);
        if (r < 0)
                return r;
        static const unsigned char zero[512];
        return len % 512 ? write_all(fd, zero, 512 - len % 512) : 0;
}

int tar_end(int fd) {
        static const unsigned char zero[1024];
        return write_all(fd, zero, sizeof zero);
}

/* ---- files ------------------------------------------------------------------------------------ */

/* Keys, ids and lists: small files. */
static char *read_small_file(const char *path, size_t *ret_len) {
        return read_file(path, 1 << 20, ret_len);
}

static int mkdir_one(const char *path, mode_t mode) {
        return mkdir(path, mode) < 0 && errno != EEXIST ? -errno : 0;
}

/* ---- keys -------------------------------------------------------------------------------------- */

static int keygen(const char *path, const char *comment) {
        if (!path)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(path, R_OK) == 0) {
                _cleanup_free_ char *pub = strf("%s.pub", path);
                if (pub && access(pub, R_OK) == 0)
                        return 0;
        }
        (void) unlink(path);
        _cleanup_cmd_ struct cmd *c = cmd_new("ssh-keygen");
        cmd_args(c, (const char *const[]) { "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path, NULL });
        cmd_map_fd(c, 0, -1);
        _cleanup_free_ char *out = NULL;
        int r = cmd_run_timeout(c, 30000, &out);
        if (r == 127 || r == -ENOENT)
                return log_error_errno(-ENOENT, "ssh-keygen not found: install openssh-client (scripts/install-deps)");
        if (r != 0)
                return log_error_errno(-EIO, "ssh-keygen failed for '%s' (exit status %d)", path, r);
        return 0;
}

static int ensure_machine_id(const struct node_plan *n, char out[33]) {
        _cleanup_free_ char *path = strf("%s/machine-id", n->dir);
        if (!path)
                return -ENOMEM;
        _cleanup_free_ char *have = read_small_file(path, NULL);
        if (have && strlen(have) >= 32 && strspn(have, "0123456789abcdef") >= 32) {
                memcpy(out, have, 32);
                out[32] = 0;
                return 0;
        }
        unsigned char b[16];
        if (getrandom(b, sizeof b, 0) != sizeof b)
                return log_error_errno(-EIO, "getrandom failed: %m");
        b[6] = (b[6] & 0x0f) | 0x40;            /* a v4 UUID, as systemd makes them */
        b[8] = (b[8] & 0x3f) | 0x80;
        for (size_t i = 0; i < 16; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
        char line[34];
        snprintf(line, sizeof line, "%s\n", out);
        int r = write_file_atomic(path, 0644, line, 33);
        return r < 0 ? log_error_errno(r, "Cannot write '%s': %m", path) : 0;
}

int seed_ensure_keys(struct cluster_plan *p) {
        _cleanup_free_ char *dir = strf("%s/ssh", p->state_dir), *login = seed_login_key(p->state_dir),
                            *nodekey = strf("%s/ssh/node_key", p->state_dir), *comment = NULL,
                            *known = seed_known_hosts(p->state_dir);
        int r;
        if (!dir || !login || !nodekey || !known || asprintf(&comment, "fame-%s", p->name) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = mkdir_one(dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Cannot create '%s': %m", dir);
        r = keygen(login, comment);
        if (r < 0)
                return r;
        r = keygen(nodekey, comment);
        if (r < 0)
                return r;
        /* host keys, machine-ids, and the host's known_hosts listing every node */
        char *kh = NULL;
        size_t khlen = 0;
        FILE *f = open_memstream(&kh, &khlen);
        if (!f)
                return log_error_errno(-ENOMEM, "Out of memory");
        _cleanup_free_ char *nodes_dir = strf("%s/nodes", p->state_dir);
        if (!nodes_dir || (r = mkdir_one(nodes_dir, 0755)) < 0) {
                fclose(f);
                free(kh);
                return log_error_errno(nodes_dir ? r : -ENOMEM, "Cannot create '%s': %m", nodes_dir);
        }
        for (uint32_t i = 0; i < p->nodes; i++) {
                struct node_plan *n = &p->node[i];
                _cleanup_free_ char *hk = strf("%s/ssh_host_ed25519_key", n->dir), *pubp = NULL, *pub = NULL;
                r = mkdir_one(n->dir, 0755);
                if (r < 0) {
                        log_error_errno(r, "Cannot create '%s': %m", n->dir);
                        break;
                }
                r = hk ? keygen(hk, n->name) : -ENOMEM;
                if (r < 0)
                        break;
                r = ensure_machine_id(n, n->machine_id);
                if (r < 0)
                        break;
                pubp = strf("%s.pub", hk);
                pub = pubp ? read_small_file(pubp, NULL) : NULL;
                if (!pub) {
                        r = log_error_errno(-errno, "Cannot read '%s': %m", pubp);
                        break;
                }
                pub[strcspn(pub, "\n")] = 0;
                /* "ssh-ed25519 KEY comment" -> "nodeNN ssh-ed25519 KEY" */
                char type[64], key[256];
                if (sscanf(pub, "%63s %255s", type, key) != 2) {
                        r = log_error_errno(-EINVAL, "'%s' is not an SSH public key; remove it to make a new one", pubp);
                        break;
                }
                fprintf(f, "%s %s %s\n", n->name, type, key);
        }
        fclose(f);
        if (r >= 0) {
                r = write_file_atomic(known, 0644, kh, khlen);
                if (r < 0)
                        log_error_errno(r, "Cannot write '%s': %m", known);
        }
        free(kh);
        return r < 0 ? r : 0;
}

char *seed_login_key(const char *state_dir) {
        return strf("%s/ssh/id_ed25519", state_dir);
}

char *seed_known_hosts(const char *state_dir) {
        return strf("%s/ssh/known_hosts", state_dir);
}

/* ---- overlay ----------------------------------------------------------------------------------- */

/* The backing file a qcow2 overlay names (its header: offset and size of the name, big-endian),
 * or NULL. */
static char *overlay_backing(const char *path) {
        uint8_t h[20];
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || pread(fd, h, sizeof h, 0) != (ssize_t) sizeof h || memcmp(h, "QFI\xfb", 4) != 0)
                return NULL;
        uint64_t off = 0;
        for (int i = 0; i < 8; i++)
                off = off << 8 | h[8 + i];
        uint32_t len = (uint32_t) h[16] << 24 | (uint32_t) h[17] << 16 | (uint32_t) h[18] << 8 | h[19];
        if (!off || !len || len > 4096)
                return NULL;
        char *name = calloc(1, len + 1);
        if (name && pread(fd, name, len, (off_t) off) != (ssize_t) len) {
                free(name);
                return NULL;
        }
        return name;
}

int seed_ensure_overlay(const struct cluster_plan *p, const struct node_plan *n, bool reset) {
        const char *base = n->arch == FAME_ARCH_AARCH64 ? p->base_aarch64 : p->base;
        if (!reset && access(n->disk, F_OK) == 0) {
                /* a disk of the other architecture's image (the node's arch changed) cannot boot */
                _cleanup_free_ char *backing = overlay_backing(n->disk);
                if (backing && strcmp(backing, base) != 0)
                        return log_error_errno(-EINVAL, "%s's disk was made from %s, not from its %s image %s (was its arch changed?); "
                                               "'fame up --reset' gives every node a new disk (what was changed inside the nodes is lost)",
                                               n->name, backing, arch_to_string(n->arch), base);
                return 0;
        }
        _cleanup_free_ char *tmp = strf("%s.new", n->disk);
        if (!tmp)
                return log_error_errno(-ENOMEM, "Out of memory");
        (void) unlink(tmp);
        _cleanup_cmd_ struct cmd *c = cmd_new("qemu-img");
        cmd_args(c, (const char *const[]) { "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", tmp, NULL });
        cmd_map_fd(c, 0, -1);
        int r = cmd_run_timeout(c, 60000, NULL);
        if (r == 127 || r == -ENOENT)
                return log_error_errno(-ENOENT, "qemu-img not found: install qemu-utils (scripts/install-deps)");
        if (r != 0) {
                unlink(tmp);
                return log_error_errno(-EIO, "%s: qemu-img create of the overlay of '%s' failed (exit status %d)", n->name, base, r);
        }
        if (rename(tmp, n->disk) < 0) {
                r = log_error_errno(-errno, "Cannot rename '%s': %m", tmp);
                unlink(tmp);
                return r;
        }
        /* a new disk: the node sets itself up again (first boot) */
        return 1;
}

/* STATE/image, STATE/image-aarch64: the image each architecture's disks were made from */
static char *recorded_path(const struct cluster_plan *p, enum fame_arch arch) {
        return strf("%s/image%s", p->state_dir, arch == FAME_ARCH_AARCH64 ? "-aarch64" : "");
}

char *seed_recorded_image(const struct cluster_plan *p, enum fame_arch arch) {
        _cleanup_free_ char *path = recorded_path(p, arch);
        char *s = path ? read_small_file(path, NULL) : NULL;
        if (s)
                s[strcspn(s, "\n")] = 0;
        return s;
}

int seed_record_image(const struct cluster_plan *p) {
        for (int a = 0; a < 2; a++) {
                const char *dir = a ? p->image_dir_aarch64 : p->image_dir;
                if (!dir || !*dir)
                        continue;
                _cleanup_free_ char *path = recorded_path(p, a ? FAME_ARCH_AARCH64 : FAME_ARCH_X86_64), *line = strf("%s\n", dir);
                if (!path || !line)
                        return log_error_errno(-ENOMEM, "Out of memory");
                int r = write_file_atomic(path, 0644, line, strlen(line));
                if (r < 0)
                        return log_error_errno(r, "Cannot write '%s': %m", path);
        }
        return 0;
}

unsigned seed_free_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        socklen_t len = sizeof a;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *) &a, &len) < 0)
                return 0;
        return ntohs(a.sin_port);
}

/* ---- the seed ------------------------------------------------------------------------------------ */

static int add_text(int fd, const char *name, unsigned mode, const char *text) {
        return tar_add(fd, name, mode, text, strlen(text));
}

static int add_file(int fd, const char *name, unsigned mode, const char *path) {
        size_t len;
        _cleanup_free_ char *s = read_small_file(path, &len);
        if (!s)
                return log_error_errno(-errno, "Cannot read '%s': %m", path);
        return tar_add(fd, name, mode, s, len);
}

/* The user's own public keys (~/.ssh/id_*.pub). */
static void user_keys(FILE *f) {
        const char *home = getenv("HOME");
        static const char *const names[] = { "id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub", NULL };
        if (!home || !*home)
                return;
        for (size_t i = 0; names[i]; i++) {
                _cleanup_free_ char *path = strf("%s/.ssh/%s", home, names[i]);
                _cleanup_free_ char *s = path ? read_small_file(path, NULL) : NULL;
                if (s && *s && (strncmp(s, "ssh-", 4) == 0 || strncmp(s, "ecdsa-", 6) == 0))
                        fprintf(f, "%s%s", s, s[strlen(s) - 1] == '\n' ? "" : "\n");
        }
}

int seed_write(const struct cluster_plan *p, const struct node_plan *n) {
        _cleanup_free_ char *tmp = strf("%s.tmp", n->seed), *hk = strf("%s/ssh_host_ed25519_key", n->dir),
                            *hkpub = strf("%s/ssh_host_ed25519_key.pub", n->dir),
                            *login_pub = strf("%s/ssh/id_ed25519.pub", p->state_dir),
                            *node_key = strf("%s/ssh/node_key", p->state_dir),
                            *node_pub = strf("%s/ssh/node_key.pub", p->state_dir);
        char *text = NULL;
        size_t len = 0;
        int r = 0;

        if (!tmp || !hk || !hkpub || !login_pub || !node_key || !node_pub)
                return log_error_errno(-ENOMEM, "Out of memory");
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot write '%s': %m", tmp);

        /* node.env: read by the setup script (sh); values are plain words */
        FILE *f = open_memstream(&text, &len);
        fprintf(f, "FAME_NODE_NAME=%s\nFAME_NODE_ID=%" PRIu32 "\nFAME_USER=%s\nFAME_UID=%d\nFAME_CLUSTER=%s\n", n->name, n->id,
                p->user, NODE_UID, p->name);
        fclose(f);
        r = r < 0 ? r : tar_add(fd, "node.env", 0644, text, len);
        free(text);

        if (r >= 0) {
                char mid[34];
                snprintf(mid, sizeof mid, "%s\n", n->machine_id);
                r = add_text(fd, "machine-id", 0444, mid);
        }

        /* /etc/hosts block and known hosts: every node and the host */
        f = open_memstream(&text, &len);
        fprintf(f, "# BEGIN FAM/E (cluster %s: rewritten at every boot; edit outside this block)\n", p->name);
        fprintf(f, "%s\ttorms\n", FAME_TORMS_ADDR);
        for (uint32_t i = 0; i < p->nodes; i++)
                fprintf(f, "%s.%" PRIu32 "\t%s\n", FAME_PRIVATE_NET, p->node[i].id, p->node[i].name);
        fprintf(f, "# END FAM/E\n");
        fclose(f);
        r = r < 0 ? r : tar_add(fd, "hosts", 0644, text, len);
        free(text);

        f = open_memstream(&text, &len);
        for (uint32_t i = 0; i < p->nodes && r >= 0; i++) {
                _cleanup_free_ char *pp = strf("%s/ssh_host_ed25519_key.pub", p->node[i].dir);
                _cleanup_free_ char *pub = pp ? read_small_file(pp, NULL) : NULL;
                char type[64], key[256];
                if (!pub || sscanf(pub, "%63s %255s", type, key) != 2)
                        continue;       /* seed_ensure_keys made them all */
                fprintf(f, "%s,%s.%" PRIu32 " %s %s\n", p->node[i].name, FAME_PRIVATE_NET, p->node[i].id, type, key);
        }
        fclose(f);
        r = r < 0 ? r : tar_add(fd, "ssh_known_hosts", 0644, text, len);
        free(text);

        /* who may log in: the cluster's login key, the user's own keys, the nodes' key */
        f = open_memstream(&text, &len);
        {
                _cleanup_free_ char *a = read_small_file(login_pub, NULL), *b = read_small_file(node_pub, NULL);
                if (a)
                        fputs(a, f);
                user_keys(f);
                if (b)
                        fputs(b, f);
        }
        fclose(f);
        r = r < 0 ? r : tar_add(fd, "authorized_keys", 0600, text, len);
        free(text);

        r = r < 0 ? r : add_file(fd, "ssh_host_ed25519_key", 0600, hk);
        r = r < 0 ? r : add_file(fd, "ssh_host_ed25519_key.pub", 0644, hkpub);
        r = r < 0 ? r : add_file(fd, "id_ed25519", 0600, node_key);
        r = r < 0 ? r : add_file(fd, "id_ed25519.pub", 0644, node_pub);

        /* systemd-networkd: the user-mode NIC (fixed addresses of QEMU's slirp) and the
         * private segment, matched by the MACs plan.c gives them */
        r = r < 0 ? r : tar_add(fd, "network/", 0755, NULL, 0);
        char buf[1024];
        snprintf(buf, sizeof buf,
                 "# FAM/E: QEMU user-mode network (restricted: host services at torms only)\n"
                 "[Match]\nMACAddress=52:54:00:fa:%02x:%02x\n\n"
                 "[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
                 (n->id >> 8) & 0xff, n->id & 0xff);
        r = r < 0 ? r : add_text(fd, "network/10-fame-user.network", 0644, buf);
        snprintf(buf, sizeof buf,
                 "# FAM/E: the cluster's private segment (node to node)\n"
                 "[Match]\nMACAddress=52:54:00:fb:%02x:%02x\n\n"
                 "[Network]\nAddress=%s.%" PRIu32 "/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
                 (n->id >> 8) & 0xff, n->id & 0xff, FAME_PRIVATE_NET, n->id);
        r = r < 0 ? r : add_text(fd, "network/20-fame-cluster.network", 0644, buf);
        r = r < 0 ? r : tar_end(fd);
        if (r < 0) {
                unlink(tmp);
                return r == -ENOMEM || r == -EIO ? log_error_errno(r, "Cannot write the seed '%s': %m", tmp) : r;
        }
        if (rename(tmp, n->seed) < 0) {
                r = log_error_errno(-errno, "Cannot rename '%s': %m", tmp);
                unlink(tmp);
                return r;
        }
        return 0;
}
