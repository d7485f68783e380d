/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* src/cluster/config.c: defaults, every key through config_set(), the fame.conf parser and its
 * errors, config_check(), config_print(). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "config-internal.h"
#include "fame.h"
#include "macro.h"
#include "node-images.h"
#include "testlib.h"
#include "util.h"

static char home[PATH_MAX];

/* ---- capturing stderr ------------------------------------------------------------------- */

static char errbuf[65536];
static int saved_stderr = -1;

static void capture_start(void) {
        char path[PATH_MAX];
        int fd;

        fflush(stderr);
        snprintf(path, sizeof path, "%s/stderr", test_tmpdir());
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                perror("open");
                exit(1);
        }
        saved_stderr = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
}

/* Returns what was written to stderr since capture_start(). */
static const char *capture_end(void) {
        char path[PATH_MAX];
        FILE *f;
        size_t n;

        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        snprintf(path, sizeof path, "%s/stderr", test_tmpdir());
        f = fopen(path, "re");
        n = f ? fread(errbuf, 1, sizeof errbuf - 1, f) : 0;
        errbuf[n] = 0;
        if (f)
                fclose(f);
        return errbuf;
}

static unsigned count_lines(const char *s) {
        unsigned n = 0;
        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static char *dump(const struct fame_config *c, bool json) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                exit(1);
        if (config_print(c, f, json) < 0)
                fputs("config_print failed", f);
        fclose(f);
        return buf;
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        if (!f) {
                perror(path);
                exit(1);
        }
        fputs(text, f);
        fclose(f);
}

static char *tmp_path(const char *name) {
        char *s;
        if (asprintf(&s, "%s/%s", test_tmpdir(), name) < 0)
                exit(1);
        return s;
}

static void init(struct fame_config *c) {
        if (config_init(c, NULL) < 0) {
                fprintf(stderr, "config_init failed\n");
                exit(1);
        }
}

/* config_set() must fail with exactly the line "fame: command line: " + want, and change nothing. */
static void set_fails(const char *key, const char *value, const char *want, int line) {
        struct fame_config c;
        char expect[1024];
        init(&c);
        _cleanup_free_ char *before = dump(&c, false);

        capture_start();
        int r = config_set(&c, key, value, "command line");
        const char *err = capture_end();
        _cleanup_free_ char *after = dump(&c, false);

        CHECK(r == -EINVAL, "line %d: %s=%s: r=%d", line, key, value, r);
        CHECK(count_lines(err) == 1, "line %d: %s=%s: %u lines: %s", line, key, value, count_lines(err), err);
        if (want) {
                snprintf(expect, sizeof expect, "fame: command line: %s\n", want);
                CHECK(strcmp(err, expect) == 0, "line %d: got '%s', want '%s'", line, err, expect);
        } else {
                snprintf(expect, sizeof expect, "fame: command line: %s = ", key);
                CHECK(strncmp(err, expect, strlen(expect)) == 0, "line %d: got '%s'", line, err);
        }
        CHECK(strcmp(before, after) == 0, "line %d: %s=%s changed the config", line, key, value);
        config_done(&c);
}
#define SET_FAILS(key, value, want) set_fails(key, value, want, __LINE__)

static void set_ok(struct fame_config *c, const char *key, const char *value, int line) {
        capture_start();
        int r = config_set(c, key, value, "command line");
        const char *err = capture_end();
        CHECK(r == 0 && !*err, "line %d: %s=%s: r=%d: %s", line, key, value, r, err);
}
#define SET_OK(c, key, value) set_ok(c, key, value, __LINE__)

/* Loads text as a file; must fail with exactly want (several lines allowed) and change nothing. */
static void file_fails(const char *text, const char *want, int line) {
        _cleanup_free_ char *path = tmp_path("bad.conf");
        struct fame_config c;
        char expect[16384];

        write_file(path, text);
        init(&c);
        _cleanup_free_ char *before = dump(&c, false);
        capture_start();
        int r = config_load_file(&c, path);
        const char *err = capture_end();
        _cleanup_free_ char *after = dump(&c, false);

        CHECK(r == -EINVAL, "line %d: r=%d", line, r);
        /* want uses "F" for the path */
        size_t n = 0;
        for (const char *p = want; *p && n + PATH_MAX + 16 < sizeof expect; p++) {
                if (*p == 'F' && (p == want || p[-1] == '\n'))
                        n += (size_t) snprintf(expect + n, sizeof expect - n, "fame: %s", path);
                else
                        expect[n++] = *p;
        }
        expect[n] = 0;
        CHECK(strcmp(err, expect) == 0, "line %d:\ngot:  %swant: %s", line, err, expect);
        CHECK(strcmp(before, after) == 0, "line %d: a bad file changed the config", line);
        config_done(&c);
}
#define FILE_FAILS(text, want) file_fails(text, want, __LINE__)

/* ---- tests -------------------------------------------------------------------------------- */

static void test_defaults(void) {
        struct fame_config c;
        char want[PATH_MAX * 2];

        unsetenv("XDG_STATE_HOME");
        unsetenv("XDG_CACHE_HOME");
        unsetenv("XDG_CONFIG_HOME");
        CHECK(config_init(&c, NULL) == 0, "init");
        CHECK(strcmp(c.name, "default") == 0, "%s", c.name);
        snprintf(want, sizeof want, "%s/.local/state/fame/default", home);
        CHECK(strcmp(c.state_dir, want) == 0, "%s", c.state_dir);
        snprintf(want, sizeof want, "%s/.cache/fame", home);
        CHECK(strcmp(c.cache_dir, want) == 0, "%s", c.cache_dir);
        snprintf(want, sizeof want, "%s/.local/state/fame/default/fam", home);
        CHECK(strcmp(c.fam_path, want) == 0, "%s", c.fam_path);
        CHECK(c.fam_size == UINT64_C(16) << 30, "%" PRIu64, c.fam_size);
        CHECK(c.book_size == UINT64_C(8) << 20, "%" PRIu64, c.book_size);
        CHECK(c.nodes == 4 && c.nodes_per_enclosure == 10 && c.enclosures_per_rack == 4, "topology");
        CHECK(c.memory == UINT64_C(256) << 20 && c.cpus == 1, "memory/cpus");
        CHECK(c.tb_size == 32, "tb_size default %u", c.tb_size);
        CHECK(c.accel == FAME_ACCEL_AUTO && c.kind == FAME_KIND_DISKLESS, "accel/kind");
        CHECK(c.check == FAME_CHECK_OFF, "check is off by default");
        CHECK(c.librarian_auth == FAME_LIBRARIAN_AUTH_SECRET, "librarian_auth is secret by default");
        CHECK(strcmp(c.kernel, "") == 0 && strcmp(c.overlay, "") == 0, "kernel/overlay");
        CHECK(strcmp(c.qemu, "qemu-system-x86_64") == 0, "%s", c.qemu);
        CHECK(c.ready_timeout == 120 && c.down_timeout == 15, "timeouts");
        for (unsigned i = 0; i < FAME_MAX_NODES; i++)
                CHECK(c.node[i].memory == c.memory && c.node[i].cpus == c.cpus, "node %u", i + 1);
        CHECK(config_check(&c) == 0, "defaults pass config_check");
        config_done(&c);
        config_done(&c);        /* idempotent */

        /* XDG_* win when absolute, are ignored when relative */
        setenv("XDG_STATE_HOME", "/xdg/state", 1);
        setenv("XDG_CACHE_HOME", "relative/cache", 1);
        CHECK(config_init(&c, "lab-1") == 0, "init lab-1");
        CHECK(strcmp(c.state_dir, "/xdg/state/fame/lab-1") == 0, "%s", c.state_dir);
        CHECK(strcmp(c.fam_path, "/xdg/state/fame/lab-1/fam") == 0, "%s", c.fam_path);
        snprintf(want, sizeof want, "%s/.cache/fame", home);
        CHECK(strcmp(c.cache_dir, want) == 0, "%s", c.cache_dir);
        config_done(&c);
        setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
        CHECK(config_init(&c, NULL) == 0, "init");
        CHECK(strcmp(c.cache_dir, "/xdg/cache/fame") == 0, "%s", c.cache_dir);
        config_done(&c);
        unsetenv("XDG_STATE_HOME");
        unsetenv("XDG_CACHE_HOME");

        /* config_default_path */
        char *p = config_default_path(NULL);
        snprintf(want, sizeof want, "%s/.config/fame/default.conf", home);
        CHECK(p && strcmp(p, want) == 0, "%s", p);
        free(p);
        setenv("XDG_CONFIG_HOME", "/xdg/config", 1);
        p = config_default_path("lab");
        CHECK(p && strcmp(p, "/xdg/config/fame/lab.conf") == 0, "%s", p);
        free(p);
        unsetenv("XDG_CONFIG_HOME");

        CHECK(strcmp(accel_to_string(FAME_ACCEL_AUTO), "auto") == 0 && strcmp(accel_to_string(FAME_ACCEL_KVM), "kvm") == 0 &&
              strcmp(accel_to_string(FAME_ACCEL_TCG), "tcg") == 0, "accel_to_string");
        CHECK(strcmp(check_to_string(FAME_CHECK_OFF), "off") == 0 && strcmp(check_to_string(FAME_CHECK_COHERENCE), "coherence") == 0,
              "check_to_string");
        CHECK(strcmp(librarian_auth_to_string(FAME_LIBRARIAN_AUTH_SECRET), "secret") == 0 &&
              strcmp(librarian_auth_to_string(FAME_LIBRARIAN_AUTH_NONE), "none") == 0, "librarian_auth_to_string");
}

static void test_names(void) {
        static const char *good[] = { "a", "0", "lab", "a-b_c", "9lives", "abcdefghijklmnopqrstuvwxyz012345" };
        static const char *bad[] = { "", "A", "Lab", "-a", "_a", "a.b", "a/b", "a b", "abcdefghijklmnopqrstuvwxyz0123456", "é" };
        struct fame_config c;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                CHECK(config_init(&c, good[i]) == 0, "'%s' should be a good name", good[i]);
                CHECK(c.name && strcmp(c.name, good[i]) == 0, "name");
                config_done(&c);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                capture_start();
                int r = config_init(&c, bad[i]);
                const char *err = capture_end();
                CHECK(r == -EINVAL, "'%s' should be refused: %d", bad[i], r);
                CHECK(count_lines(err) == 1 && strstr(err, "from a-z, 0-9, '_' and '-', starting with a letter or digit") &&
                      strstr(err, "1 to 32 characters"), "%s", err);
                config_done(&c);        /* safe after a failed init */
        }
}

static void test_set(void) {
        struct fame_config c;
        char cwd[PATH_MAX], want[PATH_MAX * 2];

        CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
        init(&c);

        SET_OK(&c, "state_dir", "/srv/fame");
        CHECK(strcmp(c.state_dir, "/srv/fame") == 0, "%s", c.state_dir);
        SET_OK(&c, "state_dir", "rel/state");
        snprintf(want, sizeof want, "%s/rel/state", cwd);
        CHECK(strcmp(c.state_dir, want) == 0, "%s", c.state_dir);
        SET_OK(&c, "cache_dir", "~/cache");
        snprintf(want, sizeof want, "%s/cache", home);
        CHECK(strcmp(c.cache_dir, want) == 0, "%s", c.cache_dir);
        SET_OK(&c, "fam", "./my.fam");
        snprintf(want, sizeof want, "%s/my.fam", cwd);
        CHECK(strcmp(c.fam_path, want) == 0, "%s", c.fam_path);
        SET_OK(&c, "fam", "/dev/shm/fam with space");
        CHECK(strcmp(c.fam_path, "/dev/shm/fam with space") == 0, "%s", c.fam_path);

        SET_OK(&c, "fam_size", "2G");
        CHECK(c.fam_size == UINT64_C(2) << 30, "fam_size");
        SET_OK(&c, "fam_size", "0x40000000");
        CHECK(c.fam_size == UINT64_C(1) << 30, "fam_size hex");
        SET_OK(&c, "fam_size", "512MiB");
        CHECK(c.fam_size == UINT64_C(512) << 20, "fam_size MiB");
        SET_OK(&c, "book_size", "2M");
        CHECK(c.book_size == UINT64_C(2) << 20, "book_size 2M");
        SET_OK(&c, "book_size", "8G");
        CHECK(c.book_size == UINT64_C(8) << 30, "book_size 8G");
        SET_OK(&c, "nodes", "1");
        SET_OK(&c, "nodes", "128");
        CHECK(c.nodes == 128, "nodes");
        SET_OK(&c, "nodes_per_enclosure", "128");
        SET_OK(&c, "enclosures_per_rack", "1");
        CHECK(c.nodes_per_enclosure == 128 && c.enclosures_per_rack == 1, "topology");
        SET_OK(&c, "memory", "64M");
        CHECK(c.memory == UINT64_C(64) << 20, "memory");
        SET_OK(&c, "memory", "1G");
        SET_OK(&c, "cpus", "64");
        CHECK(c.cpus == 64, "cpus");
        SET_OK(&c, "tb_size", "16");
        CHECK(c.tb_size == 16, "tb_size");
        SET_OK(&c, "accel", "kvm");
        CHECK(c.accel == FAME_ACCEL_KVM, "kvm");
        SET_OK(&c, "accel", "tcg");
        CHECK(c.accel == FAME_ACCEL_TCG, "tcg");
        SET_OK(&c, "accel", "auto");
        CHECK(c.accel == FAME_ACCEL_AUTO, "auto");
        SET_OK(&c, "check", "coherence");
        CHECK(c.check == FAME_CHECK_COHERENCE, "check coherence");
        SET_OK(&c, "check", "off");
        CHECK(c.check == FAME_CHECK_OFF, "check off");
        SET_OK(&c, "kind", "debian");
        CHECK(c.kind == FAME_KIND_DEBIAN, "debian");
        SET_OK(&c, "kind", "diskless");
        CHECK(c.kind == FAME_KIND_DISKLESS, "diskless");
        SET_OK(&c, "release", "trixie");
        CHECK(strcmp(c.release, "trixie") == 0, "release");
        SET_OK(&c, "mirror", "http://ftp.example/debian");
        SET_OK(&c, "mirror", "");
        SET_OK(&c, "packages", "vim, htop strace");
        CHECK(strcmp(c.packages, "vim, htop strace") == 0, "packages");
        SET_OK(&c, "disk_size", "8G");
        CHECK(c.disk_size == (UINT64_C(8) << 30), "disk_size");
        SET_OK(&c, "user", "alice");
        CHECK(strcmp(c.user, "alice") == 0, "user");
        SET_OK(&c, "forward", "9093,8080:18080");
        CHECK(strcmp(c.forward, "9093,8080:18080") == 0, "forward");
        SET_OK(&c, "kernel", "/boot/vmlinuz-6.1");
        CHECK(strcmp(c.kernel, "/boot/vmlinuz-6.1") == 0, "kernel");
        SET_OK(&c, "kernel", "");
        CHECK(strcmp(c.kernel, "") == 0, "kernel empty");
        SET_OK(&c, "qemu", "qemu-system-aarch64");
        CHECK(strcmp(c.qemu, "qemu-system-aarch64") == 0, "qemu name stays a name");
        SET_OK(&c, "qemu", "bin/qemu");
        snprintf(want, sizeof want, "%s/bin/qemu", cwd);
        CHECK(strcmp(c.qemu, want) == 0, "%s", c.qemu);
        SET_OK(&c, "overlay", "/tmp/overlay");
        SET_OK(&c, "overlay", "");
        CHECK(strcmp(c.overlay, "") == 0, "overlay");
        SET_OK(&c, "ready_timeout", "3600");
        SET_OK(&c, "down_timeout", "600");
        CHECK(c.ready_timeout == 3600 && c.down_timeout == 600, "timeouts");
        SET_OK(&c, "node03.memory", "2G");
        SET_OK(&c, "node128.cpus", "8");
        CHECK(c.node[2].memory == UINT64_C(2) << 30 && c.node[127].cpus == 8, "node keys");
        config_done(&c);

        SET_FAILS("state_dir", "", "state_dir = \"\": expected a directory");
        SET_FAILS("cache_dir", "", "cache_dir = \"\": expected a directory");
        SET_FAILS("fam", "", "fam = \"\": expected a file name");
        SET_FAILS("fam_size", "1000M", "fam_size = 1000M: expected a power of two such as 512M, 1G or 2G");
        SET_FAILS("fam_size", "0", NULL);
        SET_FAILS("fam_size", "1X", NULL);
        SET_FAILS("fam_size", "", NULL);
        SET_FAILS("fam_size", "-1G", NULL);
        SET_FAILS("fam_size", "99999999999999999999", NULL);
        SET_FAILS("book_size", "1M", "book_size = 1M: expected a power of two from 2M to 8G");
        SET_FAILS("book_size", "16G", NULL);
        SET_FAILS("book_size", "3M", NULL);
        SET_FAILS("nodes", "0", "nodes = 0: expected a number from 1 to 128");
        SET_FAILS("nodes", "129", NULL);
        SET_FAILS("nodes", "four", NULL);
        SET_FAILS("nodes", "4 # four", "nodes = 4 # four: expected a number from 1 to 128 (comments go on lines of their own)");
        SET_FAILS("nodes_per_enclosure", "0", "nodes_per_enclosure = 0: expected a number from 1 to 128");
        SET_FAILS("enclosures_per_rack", "129", "enclosures_per_rack = 129: expected a number from 1 to 128");
        SET_FAILS("memory", "32M", "memory = 32M: expected a size of at least 64M in whole megabytes, such as 256M or 1G");
        SET_FAILS("memory", "100000K", NULL);
        SET_FAILS("memory", "", NULL);
        SET_FAILS("cpus", "0", "cpus = 0: expected a number from 1 to 64");
        SET_FAILS("cpus", "65", NULL);
        SET_FAILS("tb_size", "4", "tb_size = 4: expected a number of MiB from 8 to 1024");
        SET_FAILS("tb_size", "16M", NULL);
        SET_FAILS("accel", "hvf", "accel = hvf: expected auto, kvm or tcg");
        SET_FAILS("accel", "KVM", NULL);
        SET_FAILS("check", "on", "check = on: expected off or coherence");
        SET_FAILS("check", "", "check = \"\": expected off or coherence");
        SET_FAILS("kind", "disk", "kind = disk: expected diskless or debian");
        SET_FAILS("backend", "virsh", "backend = virsh: expected qemu or libvirt");
        SET_FAILS("arch", "arm64", "arch = arm64: expected x86_64 or aarch64");
        SET_FAILS("node02.arch", "i386", "node02.arch = i386: expected x86_64 or aarch64");
        SET_FAILS("libvirt_uri", "system", "libvirt_uri = system: expected a libvirt URI such as qemu:///system or qemu:///session");
        SET_FAILS("libvirt_uri", "qemu:///system?socket=/a b", "libvirt_uri = qemu:///system?socket=/a b: a URI cannot hold spaces or control characters");
        SET_FAILS("release", "Bookworm", "release = Bookworm: expected a Debian release name such as bookworm");
        SET_FAILS("mirror", "ftp://x/debian", "mirror = ftp://x/debian: expected an http://, https:// or file:// URL of a Debian archive, or \"\" for the one apt uses");
        SET_FAILS("mirror", "http://x y", "mirror = http://x y: a URL cannot hold spaces or control characters");
        SET_FAILS("packages", "vim;rm", "packages = vim;rm: 'vim;rm' is not a Debian package name (lower-case letters, digits and . + - only)");
        SET_FAILS("disk_size", "512M", "disk_size = 512M: expected a size of at least 1G in whole megabytes, such as 4G");
        SET_FAILS("user", "root", NULL);
        SET_FAILS("user", "Alice", "user = Alice: expected a login name: a lower-case letter or '_', then up to 31 of a-z, 0-9, '_' and '-', not root");
        SET_FAILS("forward", "0", "forward = 0: '0': expected PORT or PORT:HOSTPORT with ports from 1 to 65535");
        SET_FAILS("forward", "80:x", NULL);
        SET_FAILS("qemu", "", "qemu = \"\": expected a program name or path");
        SET_FAILS("fam", "/a\nb", "fam: control characters (such as tab or newline) are not allowed in a path");
        SET_FAILS("overlay", "/a\tb", "overlay: control characters (such as tab or newline) are not allowed in a path");
        SET_FAILS("ready_timeout", "0", "ready_timeout = 0: expected a number of seconds from 1 to 3600");
        SET_FAILS("ready_timeout", "3601", NULL);
        SET_FAILS("down_timeout", "601", "down_timeout = 601: expected a number of seconds from 1 to 600");
        SET_FAILS("node03.memory", "1K", "node03.memory = 1K: expected a size of at least 64M in whole megabytes, such as 256M or 1G");
        SET_FAILS("node03.cpus", "100", "node03.cpus = 100: expected a number from 1 to 64");
        SET_FAILS("nodez", "3", "unknown key 'nodez'; did you mean 'nodes'?");
        SET_FAILS("name", "x", "unknown key 'name'; known keys: state_dir, cache_dir, fam, fam_size, "
                  "book_size, nodes, nodes_per_enclosure, enclosures_per_rack, memory, cpus, tb_size, accel, check, librarian_auth, kind, arch, backend, libvirt_uri, kernel, qemu, "
                  "qemu_aarch64, overlay, share, release, mirror, packages, disk_size, user, forward, ready_timeout, down_timeout, nodeNN.memory, nodeNN.cpus, nodeNN.arch");
        SET_FAILS("memroy", "1G", "unknown key 'memroy'; did you mean 'memory'?");
        SET_FAILS("ready_timout", "1", "unknown key 'ready_timout'; did you mean 'ready_timeout'?");
        SET_FAILS("xyzzy_plugh", "x", "unknown key 'xyzzy_plugh'; known keys: state_dir, cache_dir, fam, fam_size, "
                  "book_size, nodes, nodes_per_enclosure, enclosures_per_rack, memory, cpus, tb_size, accel, check, librarian_auth, kind, arch, backend, libvirt_uri, kernel, qemu, "
                  "qemu_aarch64, overlay, share, release, mirror, packages, disk_size, user, forward, ready_timeout, down_timeout, nodeNN.memory, nodeNN.cpus, nodeNN.arch");
        SET_FAILS("node3.memory", "1G", "unknown key 'node3.memory'; node keys are node01.memory to node128.memory, node01.cpus to node128.cpus and node01.arch to node128.arch");
        SET_FAILS("node129.memory", "1G", "unknown key 'node129.memory'; node keys are node01.memory to node128.memory, node01.cpus to node128.cpus and node01.arch to node128.arch");
        SET_FAILS("node00.cpus", "1", "unknown key 'node00.cpus'; node keys are node01.memory to node128.memory, node01.cpus to node128.cpus and node01.arch to node128.arch");
        SET_FAILS("node03.disk", "1", "unknown key 'node03.disk'; a node section takes memory and cpus");

        /* unknown keys name the known ones */
        init(&c);
        capture_start();
        config_set(&c, "xyzzy_plugh", "1", "command line");
        const char *err = capture_end();
        for (const char *k = "state_dir,cache_dir,fam,fam_size,book_size,nodes,memory,cpus,accel,check,kind,kernel,qemu,overlay,"
                             "ready_timeout,down_timeout,nodes_per_enclosure,enclosures_per_rack,nodeNN.memory,nodeNN.cpus"; *k;) {
                char name[32];
                size_t n = strcspn(k, ",");
                snprintf(name, sizeof name, " %.*s", (int) n, k);
                CHECK(strstr(err, name), "'%s' not in: %s", name, err);
                k += n + (k[n] == ',');
        }
        config_done(&c);
}

static void test_follow(void) {
        struct fame_config c;

        init(&c);
        /* fam follows state_dir until it is set */
        SET_OK(&c, "state_dir", "/srv/a");
        CHECK(strcmp(c.fam_path, "/srv/a/fam") == 0, "%s", c.fam_path);
        SET_OK(&c, "state_dir", "/srv/b/");
        CHECK(strcmp(c.fam_path, "/srv/b/fam") == 0, "%s", c.fam_path);
        SET_OK(&c, "fam", "/dev/shm/x");
        SET_OK(&c, "state_dir", "/srv/c");
        CHECK(strcmp(c.fam_path, "/dev/shm/x") == 0, "%s", c.fam_path);

        /* nodes follow memory and cpus until set */
        SET_OK(&c, "node02.memory", "512M");
        SET_OK(&c, "memory", "1G");
        SET_OK(&c, "cpus", "2");
        CHECK(c.node[0].memory == UINT64_C(1) << 30 && c.node[0].cpus == 2, "node01 follows");
        CHECK(c.node[1].memory == UINT64_C(512) << 20 && c.node[1].cpus == 2, "node02 keeps its memory");
        CHECK(c.node[127].memory == UINT64_C(1) << 30, "node128 follows");
        config_done(&c);
}

static void test_file_good(void) {
        _cleanup_free_ char *dir = tmp_path("etc"), *path = NULL;
        struct fame_config c;
        char want[PATH_MAX * 2];

        mkdir(dir, 0700);
        if (asprintf(&path, "%s/lab.conf", dir) < 0)
                exit(1);
        write_file(path,
                   "# A FAM/E cluster\n"
                   "; another comment\n"
                   "\n"
                   "   [cluster]   \n"
                   "nodes=6\n"
                   "  memory   =   512M  \n"
                   "fam = \"fam file\"\n"
                   "kernel = \"\"\n"
                   "qemu = \"/opt/q \\\"x\\\" \\\\ y\"\n"
                   "overlay = \"\\\\\"\n"
                   "accel = tcg\r\n"
                   "fam_size = 2G\n"
                   "cache_dir = ../cache\n"
                   "\t# indented comment\n"
                   "[node02]\n"
                   "memory = 1G\n"
                   "cpus = 2\n"
                   "[node06]\n"
                   "cpus = 4\n"
                   "[node128]\n"
                   "[node10]\n");
        init(&c);
        SET_OK(&c, "state_dir", "/s");
        capture_start();
        int r = config_load_file(&c, path);
        const char *err = capture_end();
        CHECK(r == 0 && !*err, "r=%d: %s", r, err);
        CHECK(c.nodes == 6 && c.memory == UINT64_C(512) << 20 && c.accel == FAME_ACCEL_TCG, "cluster keys");
        CHECK(c.fam_size == UINT64_C(2) << 30, "fam_size");
        snprintf(want, sizeof want, "%s/fam file", dir);
        CHECK(strcmp(c.fam_path, want) == 0, "fam relative to the file: %s", c.fam_path);
        snprintf(want, sizeof want, "%s/../cache", dir);
        CHECK(strcmp(c.cache_dir, want) == 0, "%s", c.cache_dir);
        CHECK(strcmp(c.kernel, "") == 0, "kernel '%s'", c.kernel);
        CHECK(strcmp(c.qemu, "/opt/q \"x\" \\ y") == 0, "qemu '%s'", c.qemu);
        snprintf(want, sizeof want, "%s/\\", dir);
        CHECK(strcmp(c.overlay, want) == 0, "overlay '%s'", c.overlay);
        CHECK(strcmp(c.state_dir, "/s") == 0, "state_dir from before the file is kept");
        CHECK(c.node[0].memory == UINT64_C(512) << 20 && c.node[0].cpus == 1, "node01 inherits");
        CHECK(c.node[1].memory == UINT64_C(1) << 30 && c.node[1].cpus == 2, "node02");
        CHECK(c.node[5].memory == UINT64_C(512) << 20 && c.node[5].cpus == 4, "node06");
        CHECK(config_check(&c) == 0, "check");

        /* the command line overrides the file */
        SET_OK(&c, "nodes", "2");
        SET_OK(&c, "node02.memory", "256M");
        CHECK(c.nodes == 2 && c.node[1].memory == UINT64_C(256) << 20, "command line wins");
        capture_start();
        r = config_check(&c);
        err = capture_end();
        snprintf(want, sizeof want, "fame: %s:19: [node06] is configured but nodes = 2\n", path);
        CHECK(r == -EINVAL && strcmp(err, want) == 0, "got '%s' want '%s'", err, want);
        config_done(&c);

        /* a relative file name: origins say it as given, paths come from its directory */
        char cwd[PATH_MAX];
        CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
        CHECK(chdir(test_tmpdir()) == 0, "chdir");
        write_file("rel.conf", "[cluster]\nfam = f\n");
        init(&c);
        r = config_load_file(&c, "rel.conf");
        snprintf(want, sizeof want, "%s/f", test_tmpdir());
        CHECK(r == 0 && strcmp(c.fam_path, want) == 0, "%s", c.fam_path);
        _cleanup_free_ char *text = dump(&c, false);
        CHECK(strstr(text, "  # rel.conf:2\n"), "origin as given:\n%s", text);
        config_done(&c);
        CHECK(chdir(cwd) == 0, "chdir back");

        /* an empty file is fine */
        write_file(path, "");
        init(&c);
        CHECK(config_load_file(&c, path) == 0, "empty file");
        config_done(&c);
        /* no newline at the end */
        write_file(path, "[cluster]\nnodes = 3");
        init(&c);
        CHECK(config_load_file(&c, path) == 0 && c.nodes == 3, "no final newline");
        config_done(&c);
}

static void test_file_errors(void) {
        FILE_FAILS("nodes = 4\n", "F:1: 'nodes' comes before any section; put it under [cluster] or [nodeNN]\n");
        FILE_FAILS("# c\n\n[clusters]\nnodes = 4\n",
                   "F:3: unknown section [clusters]; expected [cluster] or [node01] to [node128]\n");
        FILE_FAILS("[node0]\n", "F:1: unknown section [node0]; nodes are [node01] to [node128], with at least two digits\n");
        FILE_FAILS("[node1]\n", "F:1: unknown section [node1]; nodes are [node01] to [node128], with at least two digits\n");
        FILE_FAILS("[node001]\n", "F:1: unknown section [node001]; nodes are [node01] to [node128], with at least two digits\n");
        FILE_FAILS("[node129]\n", "F:1: unknown section [node129]; nodes are [node01] to [node128], with at least two digits\n");
        FILE_FAILS("[nodeXX]\n", "F:1: unknown section [nodeXX]; nodes are [node01] to [node128], with at least two digits\n");
        FILE_FAILS("[cluster\n", "F:1: '[cluster' is not a section header; expected [cluster] or [nodeNN]\n");
        FILE_FAILS("[cluster] x\n", "F:1: '[cluster] x' is not a section header; expected [cluster] or [nodeNN]\n");
        FILE_FAILS("[cluster]\n[cluster]\n", "F:2: section [cluster] appears twice (first at line 1)\n");
        FILE_FAILS("[node05]\ncpus=1\n[node05]\n", "F:3: section [node05] appears twice (first at line 1)\n");
        FILE_FAILS("[cluster]\nnodes\n", "F:2: 'nodes' is not a 'key = value' line, a [section] or a comment\n");
        FILE_FAILS("[cluster]\n = 4\n", "F:2: the key name before '=' is missing\n");
        FILE_FAILS("[cluster]\nnodez = 4\n", "F:2: unknown key 'nodez' in [cluster]; did you mean 'nodes'?\n");
        FILE_FAILS("[cluster]\nnode03.memory = 1G\n", "F:2: unknown key 'node03.memory' in [cluster]; put node keys in a [node03] section\n");
        FILE_FAILS("[node03]\nnodes = 4\n", "F:2: 'nodes' cannot be set per node; [node03] takes memory and cpus\n");
        FILE_FAILS("[node03]\ndisk = 4\n", "F:2: unknown key 'disk' in [node03]; a node section takes memory and cpus\n");
        FILE_FAILS("[node03]\ncpu = 4\n", "F:2: unknown key 'cpu' in [node03]; did you mean 'cpus'?\n");
        FILE_FAILS("[cluster]\nnodes = 2\n\nnodes = 3\n", "F:4: duplicate key 'nodes' in [cluster] (first set at line 2)\n");
        FILE_FAILS("[node03]\ncpus = 2\ncpus = 3\n", "F:3: duplicate key 'cpus' in [node03] (first set at line 2)\n");
        FILE_FAILS("[cluster]\nmemory =\n",
                   "F:2: memory = \"\": expected a size of at least 64M in whole megabytes, such as 256M or 1G\n");
        FILE_FAILS("[cluster]\nstate_dir = \"\"\n", "F:2: state_dir = \"\": expected a directory\n");
        FILE_FAILS("# 1\n# 2\n# 3\n# 4\n# 5\n[cluster]\nnodes = 0\n", "F:7: nodes = 0: expected a number from 1 to 128\n");
        FILE_FAILS("[node07]\nmemory = 1\n",
                   "F:2: memory = 1: expected a size of at least 64M in whole megabytes, such as 256M or 1G\n");
        FILE_FAILS("[cluster]\nkind = debain\n", "F:2: kind = debain: expected diskless or debian\n");
        FILE_FAILS("[cluster]\nfam = \"/x\n", "F:2: fam: the closing \" is missing\n");
        FILE_FAILS("[cluster]\nfam = \"/x\\n\"\n", "F:2: fam: only \\\" and \\\\ may follow a backslash in a quoted value\n");
        FILE_FAILS("[cluster]\nfam = \"/x\" y\n", "F:2: fam: there is text after the closing \"\n");
        FILE_FAILS("[cluster]\nnodes = 4 ; four\n",
                   "F:2: nodes = 4 ; four: expected a number from 1 to 128 (comments go on lines of their own)\n");

        /* every bad line is reported; keys under a bad section are not */
        FILE_FAILS("[cluster]\nnodes = 0\ncpus = 99\n[bogus]\nx = 1\n[node02]\ncpus = 0\n",
                   "F:2: nodes = 0: expected a number from 1 to 128\n"
                   "F:3: cpus = 99: expected a number from 1 to 64\n"
                   "F:4: unknown section [bogus]; expected [cluster] or [node01] to [node128]\n"
                   "F:7: cpus = 0: expected a number from 1 to 64\n");

        /* line length: 4096 characters are fine, 4097 are not */
        char *line = malloc(8192);
        if (!line)
                exit(1);
        memset(line, '#', 4096);
        strcpy(line + 4096, "\n[cluster]\n");
        _cleanup_free_ char *path = tmp_path("long.conf");
        struct fame_config c;
        write_file(path, line);
        init(&c);
        CHECK(config_load_file(&c, path) == 0, "a 4096-character line is fine");
        config_done(&c);
        memset(line, '#', 5000);
        strcpy(line + 5000, "\n[cluster]\nnodes = 0\n");
        FILE_FAILS(line, "F:1: the line is longer than 4096 characters\n"
                         "F:3: nodes = 0: expected a number from 1 to 128\n");
        free(line);

        /* a NUL byte */
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        CHECK(fd >= 0 && write(fd, "[cluster]\nno\0des = 3\n", 21) == 21, "write");
        close(fd);
        init(&c);
        capture_start();
        int r = config_load_file(&c, path);
        const char *err = capture_end();
        CHECK(r == -EINVAL && strstr(err, ":2: the line holds a NUL byte") && count_lines(err) == 1, "%s", err);
        config_done(&c);

        /* too many errors */
        _cleanup_free_ char *many = malloc(4096);
        if (!many)
                exit(1);
        strcpy(many, "[cluster]\n");
        for (int i = 0; i < 30; i++)
                strcat(many, "nodes = 0\n");
        write_file(path, many);
        init(&c);
        capture_start();
        r = config_load_file(&c, path);
        err = capture_end();
        CHECK(r == -EINVAL && count_lines(err) == 21 && strstr(err, ":21: too many errors; stopped reading here\n"), "%s", err);
        config_done(&c);
}

static void test_file_atomic(void) {
        _cleanup_free_ char *path = tmp_path("half.conf");
        struct fame_config c;

        write_file(path, "[cluster]\nnodes = 8\nmemory = 1G\nstate_dir = /elsewhere\n[node02]\ncpus = 4\n[cluster2]\n");
        init(&c);
        SET_OK(&c, "cpus", "2");
        _cleanup_free_ char *before = dump(&c, false), *before_json = dump(&c, true);
        capture_start();
        int r = config_load_file(&c, path);
        const char *err = capture_end();
        _cleanup_free_ char *after = dump(&c, false), *after_json = dump(&c, true);
        CHECK(r == -EINVAL && count_lines(err) == 1, "r=%d %s", r, err);
        CHECK(strcmp(before, after) == 0 && strcmp(before_json, after_json) == 0, "a bad file must change nothing:\n%s\n%s", before, after);
        CHECK(c.nodes == 4 && c.node[1].cpus == 2, "values");
        config_done(&c);
}

static void test_file_unreadable(void) {
        struct fame_config c;
        _cleanup_free_ char *missing = tmp_path("missing.conf");

        init(&c);
        capture_start();
        int r = config_load_file(&c, missing);
        const char *err = capture_end();
        CHECK(r == -ENOENT, "r=%d", r);
        CHECK(count_lines(err) == 1 && strstr(err, "missing.conf") && strstr(err, "No such file or directory"), "%s", err);

        capture_start();
        r = config_load_file(&c, test_tmpdir());
        err = capture_end();
        CHECK(r == -EISDIR, "r=%d", r);
        CHECK(count_lines(err) == 1 && strstr(err, "Is a directory"), "%s", err);
        config_done(&c);
}

/* config_check() says "KEY = VALUE: REASON" with libfame's own reason. */
static void check_geometry(const char *fam_size, const char *book_size, const char *nodes, const char *key, int line) {
        struct fame_config c;
        char prefix[128];

        init(&c);
        if (fam_size)
                set_ok(&c, "fam_size", fam_size, line);
        if (book_size)
                set_ok(&c, "book_size", book_size, line);
        if (nodes)
                set_ok(&c, "nodes", nodes, line);
        capture_start();
        int r = config_check(&c);
        const char *err = capture_end();
        CHECK(r == -EINVAL && count_lines(err) == 1, "line %d: r=%d: %s", line, r, err);

        char value[32];
        if (strcmp(key, "fam_size") == 0)
                format_size_compact(c.fam_size, value, sizeof value);
        else if (strcmp(key, "book_size") == 0)
                format_size_compact(c.book_size, value, sizeof value);
        else
                snprintf(value, sizeof value, "%" PRIu32, c.nodes);
        snprintf(prefix, sizeof prefix, "fame: %s = %s: ", key, value);
        CHECK(strncmp(err, prefix, strlen(prefix)) == 0, "line %d: '%s' does not start with '%s'", line, err, prefix);

        /* the same words as libfame */
        struct fame_create_params p = {
                .total_size = c.fam_size, .book_size = c.book_size, .node_count = c.nodes,
                .nodes_per_enclosure = c.nodes_per_enclosure, .enclosures_per_rack = c.enclosures_per_rack,
        };
        struct fame_geometry g;
        test_capture_log();
        test_clear_log();
        CHECK(fame_geometry_compute(&p, &g) < 0, "line %d: libfame accepts it", line);
        fame_set_log(NULL, NULL);
        /* the reason in libfame's words; the advice after it names the config's keys and
         * `fame up --fam-size` instead of `fame fam create --size` */
        char want[1024], got[1024];
        snprintf(want, sizeof want, "%s%s\n", prefix, test_last_log());
        snprintf(got, sizeof got, "%s", err);
        want[strcspn(want, ";")] = 0;
        got[strcspn(got, ";")] = 0;
        CHECK(strcmp(got, want) == 0, "line %d:\ngot:  %s\nwant: %s", line, err, want);
        CHECK(!strstr(err, "--size") && (strcmp(key, "fam_size") != 0 || strstr(err, "fam_size")),
              "line %d: the advice names the config's keys: %s", line, err);
        config_done(&c);
}
#define CHECK_GEOMETRY(fs, bs, n, key) check_geometry(fs, bs, n, key, __LINE__)

static void test_check(void) {
        struct fame_config c;

        CHECK_GEOMETRY("16M", NULL, NULL, "fam_size");
        CHECK_GEOMETRY("1G", "256M", NULL, "fam_size");
        CHECK_GEOMETRY("64M", "2M", "128", "fam_size");
        CHECK_GEOMETRY("64G", "2M", "1", "book_size");
        CHECK_GEOMETRY("1T", NULL, "1", "book_size");
        CHECK_GEOMETRY("1024T", NULL, "1", "fam_size");
        CHECK_GEOMETRY("4P", "8G", "2", "fam_size");

        /* a fam_size nobody set grows with the nodes (issue 17: fame up -n 40 with 1G's default;
         * the default 16G holds 128 nodes of 8M books, so 1G books here) */
        init(&c);
        SET_OK(&c, "book_size", "1G");
        capture_start();
        CHECK(config_check(&c) < 0, "4 nodes of 1G books do not fit the default 16G");
        (void) capture_end();
        config_size_fam(&c);
        CHECK(c.fam_size == UINT64_C(32) << 30 && config_check(&c) == 0, "4 nodes of 1G books: fam_size %" PRIu64, c.fam_size);
        config_done(&c);
        init(&c);
        SET_OK(&c, "book_size", "1G");
        SET_OK(&c, "nodes", "8");
        config_size_fam(&c);
        CHECK(c.fam_size == UINT64_C(64) << 30 && config_check(&c) == 0, "8 nodes of 1G books: fam_size %" PRIu64, c.fam_size);
        config_done(&c);
        init(&c);
        SET_OK(&c, "nodes", "128");
        config_size_fam(&c);
        CHECK(c.fam_size == UINT64_C(16) << 30 && config_check(&c) == 0, "128 nodes keep 16G: %" PRIu64, c.fam_size);
        config_done(&c);
        init(&c);           /* one that was set stays, and is refused */
        SET_OK(&c, "nodes", "40");
        SET_OK(&c, "fam_size", "1G");
        config_size_fam(&c);
        CHECK(c.fam_size == UINT64_C(1) << 30, "a set fam_size stays: %" PRIu64, c.fam_size);
        capture_start();
        CHECK(config_check(&c) < 0, "40 nodes in a set 1G");
        const char *e40 = capture_end();
        CHECK(strstr(e40, "use fam_size = 2G or more (fame up --fam-size 2G), or leave fam_size unset"), "%s", e40);
        config_done(&c);

        /* the message of the brief */
        init(&c);
        SET_OK(&c, "fam_size", "16M");
        capture_start();
        config_check(&c);
        const char *err = capture_end();
        CHECK(strncmp(err, "fame: fam_size = 16M: FAM size 16M is too small for 4 node(s) ", 62) == 0, "%s", err);
        config_done(&c);

        /* limits that just pass */
        init(&c);
        SET_OK(&c, "fam_size", "64M");
        SET_OK(&c, "book_size", "2M");
        SET_OK(&c, "nodes", "7");
        CHECK(config_check(&c) == 0, "64M with 7 nodes of 2M books fits");
        SET_OK(&c, "book_size", "8G");
        SET_OK(&c, "fam_size", "16T");
        SET_OK(&c, "nodes", "128");
        CHECK(config_check(&c) == 0, "big");
        config_done(&c);

        /* a node beyond nodes */
        init(&c);
        SET_OK(&c, "node07.cpus", "2");
        capture_start();
        int r = config_check(&c);
        err = capture_end();
        CHECK(r == -EINVAL && strcmp(err, "fame: command line: [node07] is configured but nodes = 4\n") == 0, "%s", err);
        SET_OK(&c, "nodes", "7");
        CHECK(config_check(&c) == 0, "7 nodes");
        config_done(&c);

        /* the checker runs in TCG, with at most 64 nodes */
        init(&c);
        SET_OK(&c, "check", "coherence");
        CHECK(config_check(&c) == 0, "check with accel = auto");
        SET_OK(&c, "accel", "tcg");
        CHECK(config_check(&c) == 0, "check with accel = tcg");
        SET_OK(&c, "accel", "kvm");
        capture_start();
        r = config_check(&c);
        err = capture_end();
        CHECK(r == -EINVAL && strcmp(err, "fame: command line: accel = kvm, but check = coherence: the checker runs in TCG: "
                                           "set accel = tcg or auto\n") == 0, "%s", err);
        SET_OK(&c, "accel", "auto");
        SET_OK(&c, "fam_size", "4G");
        SET_OK(&c, "nodes", "64");
        CHECK(config_check(&c) == 0, "64 nodes with the checker");
        SET_OK(&c, "nodes", "65");
        capture_start();
        r = config_check(&c);
        err = capture_end();
        CHECK(r == -EINVAL && strcmp(err, "fame: command line: nodes = 65, but check = coherence follows at most 64 nodes: "
                                           "use nodes = 64 or fewer, or check = off\n") == 0, "%s", err);
        SET_OK(&c, "check", "off");
        CHECK(config_check(&c) == 0, "65 nodes without the checker");
        SET_OK(&c, "accel", "kvm");
        CHECK(config_check(&c) == 0, "kvm without the checker");
        config_done(&c);

        /* from a file: the origin is the line of accel */
        _cleanup_free_ char *path = tmp_path("check.conf");
        write_file(path, "[cluster]\ncheck = coherence\naccel = kvm\n");
        init(&c);
        CHECK(config_load_file(&c, path) == 0, "load check.conf");
        capture_start();
        r = config_check(&c);
        err = capture_end();
        char want[PATH_MAX + 128];
        snprintf(want, sizeof want, "fame: %s:3: accel = kvm, but check = coherence: the checker runs in TCG: set accel = tcg or auto\n", path);
        CHECK(r == -EINVAL && strcmp(err, want) == 0, "%s", err);
        config_done(&c);
}

static bool has_line(const char *text, const char *key, const char *value, const char *origin) {
        char want[1024];
        /* "key<pad> = value<pad>  # origin" */
        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                char k[64], v[512], o[512];
                size_t len = strcspn(l, "\n");
                snprintf(want, sizeof want, "%.*s", (int) len, l);
                if (sscanf(want, "%63s = %511[^#]# %511[^\n]", k, v, o) != 3)
                        continue;
                size_t vl = strlen(v);
                while (vl > 0 && v[vl - 1] == ' ')
                        v[--vl] = 0;
                if (strcmp(k, key) == 0)
                        return strcmp(v, value) == 0 && strcmp(o, origin) == 0;
        }
        return false;
}

/* A FAM made before the default fam_size grew keeps its size when nobody sets one; asking for
 * more is refused with the way out. */
static void test_existing_fam(void) {
        struct fame_config c;
        struct fame_geometry g;
        char path[PATH_MAX];
        struct fame_create_params p = { .total_size = UINT64_C(1) << 30, .created = 0 };

        snprintf(path, sizeof path, "%s/old.fam", test_tmpdir());
        CHECK(fame_file_create(path, &p, 0, NULL) == 0, "create %s", path);
        init(&c);
        SET_OK(&c, "fam", path);
        CHECK(c.fam_size > p.total_size && !c.origin[K_FAM_SIZE], "the default is larger than the old FAM");
        CHECK(config_check(&c) == 0 && fam_ensure(&c) == 0, "an old FAM comes up with the default fam_size");
        CHECK(fame_file_inspect(path, &g) == 0 && g.total_size == p.total_size, "its size stays: %" PRIu64, g.total_size);
        config_done(&c);
        init(&c);
        SET_OK(&c, "fam", path);
        SET_OK(&c, "fam_size", "16G");
        capture_start();
        CHECK(fam_ensure(&c) < 0, "a set fam_size larger than the FAM");
        const char *e = capture_end();
        CHECK(strstr(e, "holds 1 GiB, and fam_size = 16G asks for more; a FAM does not grow in place"), "%s", e);
        config_done(&c);
}

static void test_print(void) {
        _cleanup_free_ char *path = tmp_path("print.conf");
        struct fame_config c;
        char origin[PATH_MAX + 16], want[PATH_MAX * 2];

        write_file(path, "[cluster]\nnodes = 3\nmemory = 1G\nkernel = \"/k with space\"\n[node02]\ncpus = 2\n");
        init(&c);
        CHECK(config_load_file(&c, path) == 0, "load");
        SET_OK(&c, "fam_size", "2G");
        SET_OK(&c, "accel", "tcg");
        SET_OK(&c, "node03.memory", "512M");

        _cleanup_free_ char *text = dump(&c, false);
        CHECK(strncmp(text, "# cluster default\n", 18) == 0, "%s", text);
        CHECK(count_lines(text) == 1 + CONFIG_N_KEYS + 2, "%u lines:\n%s", count_lines(text), text);
        snprintf(want, sizeof want, "%s/.local/state/fame/default", home);
        CHECK(has_line(text, "state_dir", want, "default"), "state_dir:\n%s", text);
        CHECK(has_line(text, "fam_size", "2G", "command line"), "fam_size");
        CHECK(has_line(text, "book_size", "8M", "default"), "book_size");
        snprintf(origin, sizeof origin, "%s:2", path);
        CHECK(has_line(text, "nodes", "3", origin), "nodes");
        snprintf(origin, sizeof origin, "%s:3", path);
        CHECK(has_line(text, "memory", "1G", origin), "memory");
        snprintf(origin, sizeof origin, "%s:4", path);
        CHECK(has_line(text, "kernel", "\"/k with space\"", origin), "kernel quoted");
        CHECK(has_line(text, "overlay", "\"\"", "default"), "overlay");
        CHECK(has_line(text, "accel", "tcg", "command line"), "accel");
        CHECK(has_line(text, "kind", "diskless", "default"), "kind");
        CHECK(has_line(text, "check", "off", "default"), "check");
        CHECK(has_line(text, "qemu", "qemu-system-x86_64", "default"), "qemu");
        CHECK(has_line(text, "ready_timeout", "120", "default") && has_line(text, "down_timeout", "15", "default"), "timeouts");
        CHECK(has_line(text, "nodes_per_enclosure", "10", "default") && has_line(text, "enclosures_per_rack", "4", "default"), "topology");
        CHECK(has_line(text, "cpus", "1", "default"), "cpus");
        snprintf(origin, sizeof origin, "%s:6", path);
        CHECK(has_line(text, "node02.cpus", "2", origin), "node02.cpus");
        CHECK(has_line(text, "node03.memory", "512M", "command line"), "node03.memory");
        CHECK(!strstr(text, "node01"), "node01 is like the cluster");
        /* the documented layout: key padded to 19, " = ", value padded, "  # origin" */
        CHECK(strstr(text, "\nnodes               = 3 "), "padding:\n%s", text);
        CHECK(strstr(text, "\nbook_size           = 8M "), "padding");
        /* every key, in the documented order */
        const char *order[] = { "state_dir", "cache_dir", "fam ", "fam_size", "book_size", "nodes ", "nodes_per_enclosure",
                                "enclosures_per_rack", "memory", "cpus", "accel", "check", "kind", "kernel", "qemu", "overlay",
                                "release", "mirror", "packages", "disk_size", "user", "forward",
                                "ready_timeout", "down_timeout", "node02.cpus", "node03.memory" };
        const char *at = text;
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                char needle[64];
                snprintf(needle, sizeof needle, "\n%s", order[i]);
                const char *p = strstr(at, needle);
                CHECK(p, "'%s' missing or out of order", order[i]);
                if (p)
                        at = p + 1;
        }

        _cleanup_free_ char *js = dump(&c, true);
        json_object *root = json_tokener_parse(js), *keys = NULL, *nodes = NULL, *v;
        CHECK(root && json_object_is_type(root, json_type_object), "JSON:\n%s", js);
        CHECK(json_object_object_get_ex(root, "cluster", &v) && strcmp(json_object_get_string(v), "default") == 0, "cluster");
        CHECK(json_object_object_get_ex(root, "keys", &keys) && json_object_object_length(keys) == CONFIG_N_KEYS, "%d keys", CONFIG_N_KEYS);
        CHECK(json_object_object_get_ex(root, "nodes", &nodes) && json_object_array_length(nodes) == 3, "3 nodes");
        struct { const char *key; json_type type; const char *value; const char *origin; } want_keys[] = {
                { "state_dir", json_type_string, NULL, "default" },
                { "cache_dir", json_type_string, NULL, "default" },
                { "fam", json_type_string, NULL, "default" },
                { "fam_size", json_type_int, "2147483648", "command line" },
                { "book_size", json_type_int, "8388608", "default" },
                { "nodes", json_type_int, "3", NULL },
                { "nodes_per_enclosure", json_type_int, "10", "default" },
                { "enclosures_per_rack", json_type_int, "4", "default" },
                { "memory", json_type_int, "1073741824", NULL },
                { "cpus", json_type_int, "1", "default" },
                { "accel", json_type_string, "tcg", "command line" },
                { "check", json_type_string, "off", "default" },
                { "kind", json_type_string, "diskless", "default" },
                { "kernel", json_type_string, "/k with space", NULL },
                { "qemu", json_type_string, "qemu-system-x86_64", "default" },
                { "overlay", json_type_string, "", "default" },
                { "ready_timeout", json_type_int, "120", "default" },
                { "down_timeout", json_type_int, "15", "default" },
        };
        for (size_t i = 0; keys && i < ELEMENTSOF(want_keys); i++) {
                json_object *e, *val, *org;
                if (!json_object_object_get_ex(keys, want_keys[i].key, &e)) {
                        CHECK(false, "key %s missing", want_keys[i].key);
                        continue;
                }
                CHECK(json_object_object_get_ex(e, "value", &val) && json_object_is_type(val, want_keys[i].type),
                      "%s has the wrong type", want_keys[i].key);
                if (want_keys[i].value)
                        CHECK(strcmp(json_object_get_string(val), want_keys[i].value) == 0, "%s = %s", want_keys[i].key,
                              json_object_get_string(val));
                CHECK(json_object_object_get_ex(e, "origin", &org), "%s origin", want_keys[i].key);
                if (want_keys[i].origin)
                        CHECK(strcmp(json_object_get_string(org), want_keys[i].origin) == 0, "%s origin %s", want_keys[i].key,
                              json_object_get_string(org));
                else
                        CHECK(strncmp(json_object_get_string(org), path, strlen(path)) == 0, "%s origin %s", want_keys[i].key,
                              json_object_get_string(org));
        }
        for (size_t i = 0; nodes && i < 3; i++) {
                json_object *n = json_object_array_get_idx(nodes, i), *name, *mem, *cpus;
                char nm[16];
                snprintf(nm, sizeof nm, "node%02zu", i + 1);
                CHECK(json_object_object_get_ex(n, "name", &name) && strcmp(json_object_get_string(name), nm) == 0, "name");
                CHECK(json_object_object_get_ex(n, "memory", &mem) && json_object_is_type(mem, json_type_int), "memory");
                CHECK(json_object_object_get_ex(n, "cpus", &cpus) && json_object_is_type(cpus, json_type_int), "cpus");
                uint64_t want_mem = i == 2 ? UINT64_C(512) << 20 : UINT64_C(1) << 30;
                CHECK((uint64_t) json_object_get_int64(mem) == want_mem, "%s memory", nm);
                CHECK(json_object_get_int(cpus) == (i == 1 ? 2 : 1), "%s cpus", nm);
        }
        json_object_put(root);
        config_done(&c);

        /* a long path does not push every comment out */
        init(&c);
        SET_OK(&c, "overlay", "/a/very/long/path/that/is/longer/than/forty/characters/for/sure");
        _cleanup_free_ char *t2 = dump(&c, false);
        CHECK(strstr(t2, "\nnodes               = 4                                         # default\n"), "%s", t2);
        config_done(&c);
}

int main(void) {
        snprintf(home, sizeof home, "%s/home", test_tmpdir());
        mkdir(home, 0700);
        setenv("HOME", home, 1);
        unsetenv("XDG_STATE_HOME");
        unsetenv("XDG_CACHE_HOME");
        unsetenv("XDG_CONFIG_HOME");

        test_defaults();
        test_names();
        test_set();
        test_follow();
        test_file_good();
        test_file_errors();
        test_file_atomic();
        test_file_unreadable();
        test_check();
        test_existing_fam();
        test_print();
        return test_exit();
}
