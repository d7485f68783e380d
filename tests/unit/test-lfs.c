/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs on the host, against a real Librarian and a FAM file: POSIX operations through the
 * kernel's FUSE, an fsx-style random test against an in-memory model, permissions of another
 * uid, xattrs, statfs, and mmap through libfame-mmap.so landing in the shelf's books in the FAM
 * file; readdir of a directory of 24,000 shelves (a list_shelves reply over 4 MiB, issue 14);
 * another node's changes seen through a mount that caches for 600 s (the Librarian's notices).
 * Needs root and /dev/fuse (skipped otherwise).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fame.h"
#include "librarian-client.h"
#include "librarian-secret.h"

#include "testlib.h"
#include "util.h"

static char dir[512], mnt[600], fam[600], db[600], relay[600], librarian_addr[64];
static pid_t server = -1, lfs = -1;
static char book_size_s[32];

static pid_t spawn(char *const argv[], const char *log, const char *preload) {
        pid_t pid = fork();
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                if (preload) {
                        setenv("LD_PRELOAD", preload, 1);
                        /* under ASan the sanitizer runtime wants to be first: let it be second */
                        setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
                }
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static int run_wait(char *const argv[], const char *log, const char *preload) {
        int status;
        pid_t pid = spawn(argv, log, preload);
        if (pid < 0 || waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool wait_file(const char *path) {
        for (double end = now_seconds() + 10; now_seconds() < end; ) {
                if (access(path, F_OK) == 0)
                        return true;
                struct timespec ts = { 0, 10 * 1000 * 1000 };
                nanosleep(&ts, NULL);   /* waiting for another process to write it */
        }
        return false;
}

static void cleanup(void) {
        if (lfs > 0) {
                umount2(mnt, MNT_DETACH);
                kill(lfs, SIGTERM);
                waitpid(lfs, NULL, 0);
        }
        if (server > 0) {
                kill(server, SIGTERM);
                waitpid(server, NULL, 0);
        }
}

static char *path_in(const char *name) {
        static char buf[8][700];
        static int i;
        i = (i + 1) % 8;
        snprintf(buf[i], sizeof buf[i], "%s/%s", mnt, name);
        return buf[i];
}

static void test_basics(void) {
        char buf[64] = "";
        int fd = open(path_in("a"), O_CREAT | O_WRONLY, 0644);
        CHECK(fd >= 0 && write(fd, "hello\n", 6) == 6, "create+write: %m");
        close(fd);
        fd = open(path_in("a"), O_RDONLY);
        CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 6 && memcmp(buf, "hello\n", 6) == 0, "read back: %s", buf);
        close(fd);
        struct stat st;
        CHECK(stat(path_in("a"), &st) == 0 && st.st_size == 6 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0644,
              "stat: size %lld mode %o", (long long) st.st_size, st.st_mode);
        CHECK(mkdir(path_in("d"), 0755) == 0, "mkdir: %m");
        CHECK(mkdir(path_in("d"), 0755) < 0 && errno == EEXIST, "mkdir twice: EEXIST");
        CHECK(rename(path_in("a"), path_in("d/b")) == 0, "rename into d: %m");
        CHECK(rmdir(path_in("d")) < 0 && errno == ENOTEMPTY, "rmdir non-empty: ENOTEMPTY");
        CHECK(symlink("/lfs/d/b", path_in("l")) == 0, "symlink: %m");
        ssize_t n = readlink(path_in("l"), buf, sizeof buf);
        CHECK(n == 8 && memcmp(buf, "/lfs/d/b", 8) == 0, "readlink");
        fd = open(path_in("c"), O_CREAT | O_WRONLY, 0600);
        close(fd);
        CHECK(rename(path_in("c"), path_in("d/b")) == 0, "rename over an existing file: %m");
        CHECK(stat(path_in("d/b"), &st) == 0 && st.st_size == 0, "replaced");
        CHECK(open(path_in("nope"), O_RDONLY) < 0 && errno == ENOENT, "ENOENT");
        CHECK(unlink(path_in("l")) == 0 && unlink(path_in("d/b")) == 0 && rmdir(path_in("d")) == 0, "cleanup: %m");

        /* unlink of an open file: hidden until the last close (POSIX) */
        fd = open(path_in("open"), O_CREAT | O_RDWR, 0644);
        CHECK(fd >= 0 && write(fd, "x", 1) == 1, "open file");
        CHECK(unlink(path_in("open")) == 0, "unlink while open: %m");
        CHECK(access(path_in("open"), F_OK) < 0, "gone from the name space");
        CHECK(pread(fd, buf, 1, 0) == 1 && buf[0] == 'x', "still readable through the descriptor");
        close(fd);

        /* truncate and fallocate allocate books */
        fd = open(path_in("t"), O_CREAT | O_RDWR, 0644);
        CHECK(ftruncate(fd, 20 << 20) == 0 && fstat(fd, &st) == 0 && st.st_size == 20 << 20, "ftruncate grow");
        CHECK(st.st_blocks == (blkcnt_t) (3 * (8 << 20) / 512), "3 books: %lld blocks", (long long) st.st_blocks);
        CHECK(posix_fallocate(fd, 0, 30 << 20) == 0 && fstat(fd, &st) == 0 && st.st_size == 30 << 20, "fallocate");
        CHECK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 40 << 20) < 0 && errno == EOPNOTSUPP, "fallocate mode: EOPNOTSUPP");
        CHECK(ftruncate(fd, 0) == 0, "ftruncate shrink");
        close(fd);
        unlink(path_in("t"));

        struct statvfs sv;
        CHECK(statvfs(mnt, &sv) == 0 && sv.f_bsize == 4096 && sv.f_blocks == 112 * 2048, "statfs: %llu blocks",
              (unsigned long long) sv.f_blocks);

        /* xattrs: the Librarian's */
        fd = open(path_in("x"), O_CREAT | O_RDWR, 0644);
        close(fd);
        CHECK(getxattr(path_in("x"), "user.LFS.AllocationPolicy", buf, sizeof buf) == 11 && memcmp(buf, "RandomBooks", 11) == 0,
              "get policy");
        CHECK(setxattr(path_in("x"), "user.LFS.AllocationPolicy", "LocalNode", 9, 0) == 0, "set policy: %m");
        CHECK(setxattr(path_in("x"), "user.LFS.AllocationPolicy", "Bogus", 5, 0) < 0 && errno == ENOTSUP, "bad policy");
        CHECK(setxattr(path_in("x"), "user.mine", "v", 1, 0) == 0 && getxattr(path_in("x"), "user.mine", buf, sizeof buf) == 1, "user xattr");
        CHECK(getxattr(path_in("x"), "user.absent", buf, sizeof buf) < 0 && errno == ENODATA, "ENODATA");
        char list[512];
        ssize_t ll = listxattr(path_in("x"), list, sizeof list);
        CHECK(ll > 0 && memmem(list, (size_t) ll, "user.mine", 10), "listxattr");
        CHECK(removexattr(path_in("x"), "user.mine") == 0, "removexattr");
        CHECK(chmod(path_in("x"), 0600) == 0 && stat(path_in("x"), &st) == 0 && (st.st_mode & 0777) == 0600, "chmod");
        CHECK(chown(path_in("x"), 1000, 1000) == 0 && stat(path_in("x"), &st) == 0 && st.st_uid == 1000, "chown");
}

/* Another uid: the Librarian's permissions. */
static void test_permissions(void) {
        int fd = open(path_in("private"), O_CREAT | O_WRONLY, 0600);
        CHECK(fd >= 0, "create private");
        close(fd);
        pid_t pid = fork();
        if (pid == 0) {
                if (setgid(1001) < 0 || setuid(1001) < 0)
                        _exit(10);
                if (open(path_in("private"), O_RDONLY) >= 0 || errno != EACCES)
                        _exit(1);
                if (truncate(path_in("private"), 100) == 0 || errno != EACCES)
                        _exit(2);
                if (unlink(path_in("private")) == 0 || errno != EACCES)
                        _exit(3);
                int f = open(path_in("mine"), O_CREAT | O_WRONLY, 0644);
                if (f < 0)
                        _exit(4);
                close(f);
                _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "uid 1001 denied root's 0600 file (step %d)", WEXITSTATUS(status));
        struct stat st;
        CHECK(stat(path_in("mine"), &st) == 0 && st.st_uid == 1001 && st.st_gid == 1001, "owned by its creator");
        unlink(path_in("mine"));
        unlink(path_in("private"));
}

/* Who may say what (docs/librarian.md): a process of another uid reaches the Librarian through
 * fame-lfs's relay as itself, whatever uid its requests claim; straight to the port, without
 * the secret, it is refused.  Runs in a child of uid/gid 1001. */
static int relay_child(void) {
        struct fame_librarian *l = NULL;
        struct json_object *v = NULL, *m;
        char addr[700];

        if (setgid(1001) < 0 || setuid(1001) < 0)
                return 10;
        unsetenv(LIBRARIAN_SECRET_ENV);
        /* straight to the port: no secret, nothing but "version" */
        if (fame_librarian_connect(librarian_addr, &l) < 0)
                return 11;
        librarian_set_credentials(l, 0, 0);
        if (librarian_list_shelves(l, "/", NULL) != -EACCES || !strstr(fame_librarian_error(l), "not authenticated"))
                return 12;
        fame_librarian_disconnect(l);
        /* the secret is the owner's */
        char path[700];
        snprintf(path, sizeof path, "%s.secrets/host.secret", db);
        if (open(path, O_RDONLY) >= 0 || errno != EACCES)
                return 13;
        /* through the relay: as uid 1001, though it claims uid 0 */
        snprintf(addr, sizeof addr, "unix:%s", relay);
        if (fame_librarian_connect(addr, &l) < 0)
                return 14;
        librarian_set_credentials(l, 0, 0);
        if (librarian_create_shelf(l, "/by-relay", 0100644, &v) < 0)
                return 15;
        json_object_put(v);
        v = NULL;
        if (librarian_fame_stat_shelf(l, "/by-relay", &v) < 0 || !json_object_object_get_ex(v, "uid", &m) ||
            json_object_get_int64(m) != 1001 || !json_object_object_get_ex(v, "gid", &m) || json_object_get_int64(m) != 1001)
                return 16;
        json_object_put(v);
        /* root's 0600 shelf: neither readable nor removable by uid 1001 claiming uid 0 */
        if (librarian_open_shelf(l, "/relay-private", NULL) != -EACCES)
                return 17;
        if (librarian_destroy_shelf(l, "/relay-private", NULL) != -EACCES)
                return 18;
        if (librarian_fame_chown(l, "/by-relay", 0, 0, NULL) != -EPERM)
                return 19;
        fame_librarian_disconnect(l);
        return 0;
}

static void test_relay(void) {
        int fd = open(path_in("relay-private"), O_CREAT | O_WRONLY, 0600);
        CHECK(fd >= 0, "create relay-private");
        close(fd);
        struct stat st;
        CHECK(stat(relay, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0666, "the relay socket %s", relay);
        pid_t pid = fork();
        if (pid == 0)
                _exit(relay_child());
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "uid 1001 through the relay (step %d)", WEXITSTATUS(status));
        CHECK(stat(path_in("by-relay"), &st) == 0 && st.st_uid == 1001, "the relay's shelf belongs to uid 1001");
        CHECK(stat(path_in("relay-private"), &st) == 0, "root's shelf is still there");
        unlink(path_in("by-relay"));
        unlink(path_in("relay-private"));
}

/* fsx-style: random writes, reads, truncates against a model. */
static void test_fsx(void) {
        enum { MAXLEN = 24 << 20 };
        unsigned char *model = calloc(1, MAXLEN), *buf = malloc(1 << 20);
        size_t len = 0;
        const char *s = getenv("FAME_FSX_SEED");
        unsigned seed = s && *s ? (unsigned) strtoul(s, NULL, 0) : (unsigned) time(NULL);
        int fd = open(path_in("fsx"), O_CREAT | O_RDWR | O_TRUNC, 0644);
        CHECK(fd >= 0 && model && buf, "fsx open");
        fprintf(stderr, "fsx seed %u (FAME_FSX_SEED=%u repeats it)\n", seed, seed);
        srand(seed);
        for (int op = 0; op < 400 && !test_failures; op++) {
                int kind = rand() % 10;
                size_t off = (size_t) rand() % (MAXLEN - (1 << 20)), n = (size_t) rand() % (1 << 20) + 1;
                if (kind < 4) {
                        for (size_t i = 0; i < n; i++)
                                buf[i] = (unsigned char) rand();
                        CHECK(pwrite(fd, buf, n, (off_t) off) == (ssize_t) n, "op %d: pwrite %zu@%zu: %m", op, n, off);
                        memcpy(model + off, buf, n);
                        if (off + n > len)
                                len = off + n;
                } else if (kind < 8) {
                        ssize_t got = pread(fd, buf, n, (off_t) off);
                        size_t want = off >= len ? 0 : (off + n > len ? len - off : n);
                        CHECK(got == (ssize_t) want && memcmp(buf, model + off, want) == 0, "op %d: pread %zu@%zu: %zd, want %zu",
                              op, n, off, got, want);
                } else {
                        size_t nl = (size_t) rand() % MAXLEN;
                        CHECK(ftruncate(fd, (off_t) nl) == 0, "op %d: ftruncate %zu: %m", op, nl);
                        if (nl < len)
                                memset(model + nl, 0, len - nl);
                        len = nl;
                }
                struct stat st;
                CHECK(fstat(fd, &st) == 0 && (size_t) st.st_size == len, "op %d: size %lld, model %zu", op, (long long) st.st_size, len);
        }
        close(fd);
        unlink(path_in("fsx"));
        free(model);
        free(buf);
}

/* The Librarian killed and restarted under a mounted /lfs: fame-lfs reconnects. */
static char serve_port[32], serve_log[700], serve_port_file[700];

static void test_librarian_restart(void) {
        int fd = open(path_in("keep"), O_CREAT | O_RDWR, 0644);
        CHECK(fd >= 0 && pwrite(fd, "before", 6, 0) == 6, "write before the restart");
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        unlink(serve_port_file);
        char *serve[] = { (char *) getenv("FAME_LIBRARIAN_BIN"), "serve", "--db", db, "--fam", fam, "--port", serve_port,
                          "--port-file", serve_port_file, NULL };
        server = spawn(serve, serve_log, NULL);
        CHECK(wait_file(serve_port_file), "the Librarian did not restart; see %s", serve_log);
        struct stat st;
        CHECK(stat(path_in("keep"), &st) == 0 && st.st_size == 6, "stat after the restart: %m");
        char buf[16] = "";
        CHECK(pread(fd, buf, 6, 0) == 6 && memcmp(buf, "before", 6) == 0, "read through a descriptor opened before");
        CHECK(pwrite(fd, "after", 5, 10 << 20) == 5, "a write that grows the file after the restart: %m");
        CHECK(fstat(fd, &st) == 0 && st.st_size == (10 << 20) + 5, "size %lld", (long long) st.st_size);
        /* the handle fame-lfs holds for fd survived the restart: another node cannot shrink the
         * file under it (before, the restart had dropped it and this shrink succeeded) */
        char addr[64];
        struct fame_librarian *other = NULL;
        struct json_object *shelf = NULL, *id = NULL;
        snprintf(addr, sizeof addr, "127.0.0.1:%s", serve_port);
        CHECK(fame_librarian_connect(addr, &other) == 0, "connect as another node");
        if (other) {
                fame_librarian_set_node(other, 2);
                librarian_set_caller(other, 0, 0, 4242);
                librarian_set_quiet(other, true);
                CHECK(librarian_get_shelf(other, "/keep", &shelf) == 0 && json_object_object_get_ex(shelf, "id", &id),
                      "get /keep: %s", fame_librarian_error(other));
                int r = librarian_resize_shelf(other, "/keep", json_object_get_int64(id), 4096, false, NULL);
                CHECK(r == -EMFILE, "another node shrank a file fame-lfs holds open across the restart: %s",
                      r < 0 ? strerror(-r) : "it succeeded");
                json_object_put(shelf);
                fame_librarian_disconnect(other);
        }
        CHECK(fstat(fd, &st) == 0 && st.st_size == (10 << 20) + 5, "size after the refused shrink %lld", (long long) st.st_size);
        close(fd);
        CHECK(unlink(path_in("keep")) == 0, "unlink after the restart: %m");
}

static bool dir_has(const char *path, const char *name) {
        DIR *d = opendir(path);
        bool found = false;
        for (struct dirent *e; d && (e = readdir(d)); )
                found = found || strcmp(e->d_name, name) == 0;
        if (d)
                closedir(d);
        return found;
}

/* Waits up to 2 s for cond: the mount keeps what it was told for 600 s (--cache-timeout), so only
 * the Librarian's notice can make it true in time. */
#define SEEN_SOON(cond) ({                                                                          \
        bool ok_ = false;                                                                           \
        for (double end_ = now_seconds() + 2; !(ok_ = (cond)) && now_seconds() < end_; ) {          \
                struct timespec ts_ = { 0, 1000 * 1000 };                                           \
                nanosleep(&ts_, NULL);  /* another thread (the mount's watcher) acts */             \
        }                                                                                           \
        ok_;                                                                                        \
})

/* Another node's changes through the Librarian, seen through the mount (docs/lfs.md, "Caching"). */
static void test_notices(void) {
        struct fame_librarian *other = NULL;
        struct json_object *v = NULL, *id = NULL;
        struct stat st;
        int fd;

        CHECK(mkdir(path_in("n"), 0755) == 0, "mkdir n: %m");
        fd = open(path_in("n/a"), O_CREAT | O_WRONLY, 0644);
        CHECK(fd >= 0 && write(fd, "abc", 3) == 3, "create n/a: %m");
        close(fd);
        /* cached: the entry, its attributes, the listing */
        CHECK(stat(path_in("n/a"), &st) == 0 && st.st_size == 3, "stat n/a");
        CHECK(dir_has(path_in("n"), "a") && !dir_has(path_in("n"), "b"), "listing of n");
        CHECK(stat(path_in("n/b"), &st) < 0 && errno == ENOENT, "n/b is not there yet");
        /* the kernel keeps listings (its readdir cache): the mount's own changes show at once */
        fd = open(path_in("n/own"), O_CREAT | O_WRONLY, 0644);
        CHECK(fd >= 0, "create n/own: %m");
        close(fd);
        CHECK(dir_has(path_in("n"), "own"), "n/own in the listing at once");
        CHECK(unlink(path_in("n/own")) == 0 && !dir_has(path_in("n"), "own"), "n/own out of the listing at once");
        /* a name the mount removed itself is known to be missing: looking it up asks nothing (a
         * stopped Librarian answers nothing, so a request would not return) */
        CHECK(kill(server, SIGSTOP) == 0, "stop the Librarian: %m");
        pid_t child = fork();
        if (child == 0)
                _exit(stat(path_in("n/own"), &st) < 0 && errno == ENOENT ? 0 : 1);
        int status = -1;
        for (double end = now_seconds() + 5; child > 0 && waitpid(child, &status, WNOHANG) == 0 && now_seconds() < end; ) {
                struct timespec ts = { 0, 1000 * 1000 };
                nanosleep(&ts, NULL);   /* the child's stat(2), which must not wait for the Librarian */
        }
        bool answered = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        kill(server, SIGCONT);
        if (!answered && child > 0)
                waitpid(child, &status, 0);
        CHECK(answered, "stat of n/own after the mount removed it waited for the Librarian (or did not say ENOENT)");

        CHECK(fame_librarian_connect(librarian_addr, &other) == 0, "connect as another node");
        if (!other)
                return;
        fame_librarian_set_node(other, 2);
        librarian_set_caller(other, 0, 0, 4242);
        /* a new name is there at once (names that are not there are not remembered, unless the
         * mount removed them itself) */
        CHECK(librarian_create_shelf(other, "/n/b", 0100644, &v) == 0, "another node creates /n/b");
        CHECK(stat(path_in("n/b"), &st) == 0, "n/b at once: %m");
        CHECK(SEEN_SOON(dir_has(path_in("n"), "b")), "n/b in the listing of n");
        if (v && json_object_object_get_ex(v, "id", &id))
                (void) librarian_close_shelf(other, json_object_get_int64(id), json_object_get_int64(json_object_object_get(v, "open_handle")), NULL);
        json_object_put(v);
        v = NULL;
        /* attributes the kernel holds: size, mode */
        CHECK(librarian_get_shelf(other, "/n/a", &v) == 0 && json_object_object_get_ex(v, "id", &id), "get /n/a");
        CHECK(librarian_resize_shelf(other, "/n/a", json_object_get_int64(id), 4 << 20, false, NULL) == 0, "another node grows /n/a");
        CHECK(SEEN_SOON(stat(path_in("n/a"), &st) == 0 && st.st_size == 4 << 20), "n/a's new size: %lld", (long long) st.st_size);
        json_object_put(v);
        v = NULL;
        CHECK(librarian_fame_chmod(other, "/n/a", 0600, NULL) == 0, "another node chmods /n/a");
        CHECK(SEEN_SOON(stat(path_in("n/a"), &st) == 0 && (st.st_mode & 0777) == 0600), "n/a's new mode: %o", st.st_mode);
        /* renamed and removed */
        CHECK(librarian_rename_shelf(other, "/n/b", 0, "/n/c", NULL) == 0, "another node renames /n/b");
        CHECK(SEEN_SOON(stat(path_in("n/b"), &st) < 0 && errno == ENOENT), "n/b gone after the rename");
        CHECK(stat(path_in("n/c"), &st) == 0, "n/c there: %m");
        CHECK(SEEN_SOON(dir_has(path_in("n"), "c") && !dir_has(path_in("n"), "b")), "the listing after the rename");
        CHECK(librarian_destroy_shelf(other, "/n/c", NULL) == 0, "another node removes /n/c");
        CHECK(SEEN_SOON(stat(path_in("n/c"), &st) < 0 && errno == ENOENT), "n/c gone");
        CHECK(SEEN_SOON(!dir_has(path_in("n"), "c")), "n/c out of the listing");
        /* a name the mount removed is made again by another node: the notice drops what the
         * mount remembered (that it is missing) */
        CHECK(librarian_create_shelf(other, "/n/own", 0100644, &v) == 0, "another node creates /n/own again");
        CHECK(SEEN_SOON(stat(path_in("n/own"), &st) == 0), "n/own seen again: %m");
        if (v && json_object_object_get_ex(v, "id", &id))
                (void) librarian_close_shelf(other, json_object_get_int64(id), json_object_get_int64(json_object_object_get(v, "open_handle")), NULL);
        json_object_put(v);
        v = NULL;
        CHECK(unlink(path_in("n/own")) == 0, "unlink n/own: %m");
        fame_librarian_disconnect(other);
        CHECK(unlink(path_in("n/a")) == 0 && rmdir(path_in("n")) == 0, "cleanup: %m");
}

/* An ordinary program's mmap (libfame-mmap.so preloaded) lands in the shelf's books. */
static void test_mmap(void) {
        const char *helper = getenv("FAME_LFS_MMAP"), *shim = getenv("FAME_MMAP_SHIM");
        char log[700], books[4096];
        snprintf(log, sizeof log, "%s/mmap.log", dir);
        if (!helper || !shim) {
                CHECK(0, "FAME_LFS_MMAP and FAME_MMAP_SHIM must be set (meson sets them)");
                return;
        }
        char *w[] = { (char *) helper, "write", path_in("m"), "9437184", "through-mmap", NULL };
        CHECK(run_wait(w, log, shim) == 0, "lfs-mmap write; see %s", log);
        char *nw[] = { (char *) helper, "read", path_in("m"), "9437184", "12", NULL };
        CHECK(run_wait(nw, log, NULL) != 0, "without the library the shared mapping is refused");
        int fd = open(path_in("m"), O_RDONLY);
        char b[16] = "";
        CHECK(fd >= 0 && pread(fd, b, 12, 9437184) == 12 && memcmp(b, "through-mmap", 12) == 0, "read(2) sees the store: %s", b);
        ssize_t n = fgetxattr(fd, "user.fame.books", books, sizeof books - 1);
        close(fd);
        CHECK(n > 0, "user.fame.books: %m");
        books[n > 0 ? n : 0] = 0;
        /* "FAMEBOOKS 1 SOURCE BOOK SIZE N OFF0 OFF1 ..." */
        char src[512];
        unsigned long long book, size, off0, off1;
        size_t nb;
        CHECK(sscanf(books, "FAMEBOOKS 1 %511s %llu %llu %zu %llu %llu", src, &book, &size, &nb, &off0, &off1) == 6 && nb == 2,
              "books: %s", books);
        int ff = open(fam, O_RDONLY);
        CHECK(ff >= 0 && pread(ff, b, 12, (off_t) (off1 + 9437184 - book)) == 12 && memcmp(b, "through-mmap", 12) == 0,
              "the bytes are in book 1 of the shelf in the FAM file");
        close(ff);
        unlink(path_in("m"));
}

#define LARGE_DIR 24000

/* Directory /large with LARGE_DIR shelves, written into the database before the Librarian
 * starts (one transaction, as LARGE_DIR create_shelf requests would leave it). */
static void add_large_dir(void) {
        char sql[1024];
        sqlite3 *d = NULL;

        CHECK(sqlite3_open(db, &d) == SQLITE_OK, "open %s", db);
        snprintf(sql, sizeof sql,
                 "BEGIN;"
                 "INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime, name, mode, parent_id,"
                 " link_count, uid, gid) VALUES (1, 0, 0, 1700000000, 1700000000, 'large', %d, 2, 2, 0, 0);"
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
                 "INSERT INTO shelves (creator_id, size_bytes, book_count, ctime, mtime, name, mode, parent_id,"
                 " link_count, uid, gid) SELECT 1, 0, 0, 1700000000, 1700000000, printf('shelf-%%06d', i), %d,"
                 " (SELECT id FROM shelves WHERE parent_id = 2 AND name = 'large'), 1, 0, 0 FROM n;"
                 "COMMIT;",
                 S_IFDIR | 0755, LARGE_DIR, S_IFREG | 0644);
        CHECK(sqlite3_exec(d, sql, NULL, NULL, NULL) == SQLITE_OK, "/large: %s", sqlite3_errmsg(d));
        sqlite3_close(d);
}

/* ls /lfs/large: every entry, through one list_shelves reply of about 5 MiB. */
static void test_large_dir(void) {
        DIR *d = opendir(path_in("large"));
        size_t n = 0, shelves = 0;
        CHECK(d, "opendir large: %m");
        if (!d)
                return;
        double t0 = now_seconds();
        for (struct dirent *e; (e = readdir(d)); n++)
                shelves += strncmp(e->d_name, "shelf-", 6) == 0;
        double t = now_seconds() - t0;
        closedir(d);
        CHECK(n == LARGE_DIR + 2 && shelves == LARGE_DIR, "readdir large: %zu entries, %zu shelves", n, shelves);
        printf("readdir of %d shelves: %.3f s, %.2f us per shelf\n", LARGE_DIR, t, t / LARGE_DIR * 1e6);
}

int main(void) {
        const char *librarian = getenv("FAME_LIBRARIAN_BIN"), *lfs_bin = getenv("FAME_LFS_BIN");
        char port_file[700], ready[700], log[700], port[32] = "", addr[64], *topo = NULL;
        struct fame_create_params params = { .total_size = UINT64_C(1) << 30, .node_count = 4 };
        struct fame_geometry geo;

        if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) < 0)
                SKIP("needs root and /dev/fuse to mount fame-lfs");
        if (!librarian || !lfs_bin)
                SKIP("FAME_LIBRARIAN_BIN and FAME_LFS_BIN are not set (run through meson test)");
        snprintf(dir, sizeof dir, "%s", test_tmpdir());
        snprintf(mnt, sizeof mnt, "%s/mnt", dir);
        snprintf(fam, sizeof fam, "%s/fam", dir);
        snprintf(db, sizeof db, "%s/db", dir);
        snprintf(port_file, sizeof port_file, "%s/port", dir);
        snprintf(ready, sizeof ready, "%s/ready", dir);
        snprintf(log, sizeof log, "%s/log", dir);
        snprintf(relay, sizeof relay, "%s/run/librarian.sock", dir);
        mkdir(mnt, 0755);
        chmod(dir, 0755);       /* other uids must reach the mount point */
        atexit(cleanup);
        CHECK(fame_file_create(fam, &params, 0, &geo) == 0, "fam");
        snprintf(book_size_s, sizeof book_size_s, "%llu", (unsigned long long) geo.book_size);
        if (asprintf(&topo, "%s/topology.ini", dir) < 0)
                return 1;
        FILE *f = fopen(topo, "w");
        CHECK(f && fprintf(f, "[global]\nnode_count = 4\nbook_size_bytes = 8M\nnvm_size_per_node = 28B\n") > 0, "topology");
        if (f)
                fclose(f);
        char *init[] = { (char *) librarian, "init", "--db", db, "--topology", topo, NULL };
        CHECK(run_wait(init, log, NULL) == 0, "librarian init; see %s", log);
        add_large_dir();
        char *serve[] = { (char *) librarian, "serve", "--db", db, "--fam", fam, "--port", "0", "--port-file", port_file, NULL };
        server = spawn(serve, log, NULL);
        snprintf(serve_log, sizeof serve_log, "%s", log);
        snprintf(serve_port_file, sizeof serve_port_file, "%s", port_file);
        CHECK(wait_file(port_file), "the Librarian did not start; see %s", log);
        size_t plen = 0;
        char *p = read_file(port_file, 64, &plen);
        snprintf(port, sizeof port, "%s", p ? p : "");
        free(p);
        port[strcspn(port, "\n")] = 0;
        snprintf(addr, sizeof addr, "127.0.0.1:%s", port);
        snprintf(librarian_addr, sizeof librarian_addr, "%s", addr);
        snprintf(serve_port, sizeof serve_port, "%s", port);
        /* fame-lfs (root, like a node's) authenticates with the Librarian's secret */
        char secret[700];
        snprintf(secret, sizeof secret, "%s.secrets/host.secret", db);
        setenv(LIBRARIAN_SECRET_ENV, secret, 1);
        char *mount_argv[] = { (char *) lfs_bin, "--foreground", "--fam", fam, "--librarian", addr, "--node", "1",
                               "--ready-file", ready, "--relay", relay, "--cache-timeout", "600", mnt, NULL };
        lfs = spawn(mount_argv, log, NULL);
        CHECK(wait_file(ready), "fame-lfs did not mount; see %s", log);
        if (test_failures)
                return test_exit();
        test_basics();
        test_permissions();
        test_relay();
        test_notices();
        test_fsx();
        test_librarian_restart();
        test_mmap();
        test_large_dir();
        free(topo);
        return test_exit();
}
