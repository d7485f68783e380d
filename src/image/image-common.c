/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every kind of node image uses (diskless: image.c, another architecture: image-arch.c,
 * Debian: image-debian.c): struct image's destructor, the node files that go with the node
 * binary, removing a tree, and running a build tool with its output in a log.  It uses no
 * other file of the image builder, so they all depend on it and not on each other.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fame-config.h"
#include "image.h"
#include "image-internal.h"
#include "log.h"
#include "macro.h"
#include "spawn.h"
#include "util.h"

/* ---- struct image and the files that go with the node binary ------------------------------ */

void image_done(struct image *img) {
        if (!img)
                return;
        free(img->kernel);
        free(img->initrd);
        free(img->dir);
        free(img->base);
        free(img->kernel_release);
        free(img->key);
        *img = (struct image) { 0 };
}

/* A preloaded library of the nodes (libfame-mmap.so, libfame-pmem.so) next to the node binary:
 * in a build tree BUILD/lib/NAME, in an installation LIBDIR/NAME; $ENV (a path) wins. */
static int node_library(const char *dir, const char *fame_static, const char *env, const char *name, char **ret) {
        const char *e = env ? getenv(env) : NULL;
        _cleanup_free_ char *path = NULL;
        if (e && *e ? !(path = strdup(e)) : asprintf(&path, "%s/lib/%s", dir, name) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(path, R_OK) < 0 && !(e && *e)) {
                free(path);
                if (asprintf(&path, "%s/../../%s/%s", dir, FAME_LIBDIR, name) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }
        if (access(path, R_OK) < 0)
                return log_error_errno(-ENOENT, "%s is missing next to the node binary %s: rebuild with 'make'", name, fame_static);
        *ret = TAKE_PTR(path);
        return 0;
}

/* fame-lfs, libfame-mmap.so and libfame-pmem.so next to the node binary: a build tree
 * (BUILD/fame-lfs-static, BUILD/lib/) or an installation (LIBEXECDIR/fame/, LIBDIR/);
 * $FAME_NODE_LFS, $FAME_MMAP_SHIM, $FAME_PMEM_SHIM and $FAME_LIBFAME win for nodes of the host's architecture
 * (they name files built for it; env_ok false ignores them). */
int image_lfs_files(const char *fame_static, bool env_ok, struct image_lfs_files *ret) {
        _cleanup_free_ char *dir = path_dirname(fame_static), *lfs = NULL, *mmap_shim = NULL, *pmem_shim = NULL, *libfame = NULL;
        const char *env_lfs = env_ok ? getenv("FAME_NODE_LFS") : NULL;
        int r;
        if (!dir)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (env_lfs && *env_lfs ? !(lfs = strdup(env_lfs)) : asprintf(&lfs, "%s/fame-lfs-static", dir) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(lfs, R_OK) < 0)
                return log_error_errno(-ENOENT, "fame-lfs-static is missing next to the node binary %s: rebuild with 'make'", fame_static);
        if ((r = node_library(dir, fame_static, env_ok ? "FAME_MMAP_SHIM" : NULL, "libfame-mmap.so", &mmap_shim)) < 0 ||
            (r = node_library(dir, fame_static, env_ok ? "FAME_PMEM_SHIM" : NULL, "libfame-pmem.so", &pmem_shim)) < 0 ||
            (r = node_library(dir, fame_static, env_ok ? "FAME_LIBFAME" : NULL, "libfame.so.0", &libfame)) < 0)
                return r;
        *ret = (struct image_lfs_files) { TAKE_PTR(lfs), TAKE_PTR(mmap_shim), TAKE_PTR(pmem_shim), TAKE_PTR(libfame) };
        return 0;
}

void image_lfs_files_done(struct image_lfs_files *f) {
        free(f->lfs);
        free(f->mmap_shim);
        free(f->pmem_shim);
        free(f->libfame);
        *f = (struct image_lfs_files) { 0 };
}

/* ---- programs ------------------------------------------------------------------------- */

/* A program from $PATH, else /usr/sbin or /sbin (mke2fs lives there; users' PATH may lack it). */
char *image_find_program(const char *name) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *dirs = NULL;
        if (asprintf(&dirs, "%s:/usr/sbin:/sbin", path && *path ? path : "/usr/bin:/bin") < 0)
                return NULL;
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char *p = NULL;
                if (!*d || asprintf(&p, "%s/%s", d, name) < 0)
                        continue;
                if (access(p, X_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

/* ---- removing a tree ------------------------------------------------------------------- */

static int rm_rf_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        (void) remove(path);
        return 0;
}

void image_rm_rf(const char *path) {
        (void) nftw(path, rm_rf_one, 64, FTW_DEPTH | FTW_PHYS);
}

/* Removes a tree that may hold files of mmdebstrap's user namespace (built without root):
 * their contents from inside it, then what is left from outside. */
void image_rm_rf_unshared(const char *path, const char *mmdebstrap) {
        if (geteuid() != 0 && mmdebstrap && access(path, F_OK) == 0) {
                _cleanup_cmd_ struct cmd *c = cmd_new(mmdebstrap);
                cmd_args(c, (const char *const[]) { "--unshare-helper", "rm", "-rf", path, NULL });
                cmd_map_fd(c, 0, -1);
                cmd_map_fd(c, 1, -1);
                cmd_map_fd(c, 2, -1);
                (void) cmd_run(c, NULL);
        }
        image_rm_rf(path);
}

/* In `dir` (made here, empty), the directory dir/root for a tree root fills: as root, ours; without
 * root, made by the root of mmdebstrap's user namespace in a dir open to it, so that the tree's
 * top directory is that root's and its owners stay root's.  Logs its errors. */
int image_tree_dir(const char *dir, const char *mmdebstrap, const char *log_path, char **ret_root) {
        _cleanup_free_ char *root = strf("%s/root", dir);
        if (!root)
                return log_error_errno(-ENOMEM, "Out of memory");
        image_rm_rf_unshared(dir, mmdebstrap);
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create '%s': %m", dir);
        if (geteuid() == 0)
                r = mkdir(root, 0755) < 0 ? log_error_errno(-errno, "Cannot create '%s': %m", root) : 0;
        else if (chmod(dir, 0777) < 0)
                r = log_error_errno(-errno, "Cannot chmod '%s': %m", dir);
        else {
                _cleanup_cmd_ struct cmd *c = cmd_new(mmdebstrap);
                cmd_args(c, (const char *const[]) { "--unshare-helper", "mkdir", "-m", "0755", root, NULL });
                r = image_run_quiet(c, "mkdir in mmdebstrap's user namespace", log_path, "is this user in /etc/subuid?");
        }
        if (r < 0)
                return r;
        *ret_root = TAKE_PTR(root);
        return 0;
}

size_t image_count_debs(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;
        while (d && (de = readdir(d))) {
                size_t len = strlen(de->d_name);
                n += len > 4 && strcmp(de->d_name + len - 4, ".deb") == 0;
        }
        if (d)
                closedir(d);
        return n;
}

/* ---- running a tool with its output in a log and its progress on the terminal ---------------- */

static bool muted(const char *const *mute, const char *line) {
        for (; mute && *mute; mute++)
                if (strncmp(line, *mute, strlen(*mute)) == 0)
                        return true;
        return false;
}

int image_run_lines(struct cmd *c, int logfd, int silence_s, void (*fn)(char *line, bool last, void *userdata), void *userdata,
                    bool *ret_silent) {
        int pfd[2];
        if (ret_silent)
                *ret_silent = false;
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return -errno;
        cmd_map_fd(c, 0, -1);
        cmd_map_fd(c, 1, pfd[1]);
        cmd_map_fd(c, 2, pfd[1]);
        _cleanup_free_ char *s = cmd_to_string(c);
        dprintf(logfd, "$ %s\n", s ? s : "?");
        pid_t pid = cmd_run_async(c);
        close(pfd[1]);
        if (pid < 0) {
                close(pfd[0]);
                return pid;
        }
        char buf[8192];
        size_t have = 0;
        for (;;) {
                struct pollfd p = { .fd = pfd[0], .events = POLLIN };
                int k = poll(&p, 1, silence_s > 0 ? silence_s * 1000 : -1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k == 0) {
                        if (ret_silent)
                                *ret_silent = true;
                        (void) kill(pid, SIGKILL);
                        break;
                }
                ssize_t n = read(pfd[0], buf + have, sizeof buf - 1 - have);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (have) {
                                buf[have] = 0;
                                fn(buf, true, userdata);
                        }
                        break;
                }
                (void) write_all(logfd, buf + have, (size_t) n);
                have += (size_t) n;
                buf[have] = 0;
                char *line = buf, *nl;
                while ((nl = strchr(line, '\n'))) {
                        *nl = 0;
                        fn(line, false, userdata);
                        line = nl + 1;
                }
                have = strlen(line);
                memmove(buf, line, have);
                if (have >= sizeof buf - 1)
                        have = 0;       /* an overlong line: drop it */
        }
        close(pfd[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void tool_line(char *line, bool last, void *userdata) {
        struct image_tool_run *t = userdata;
        if (last) {
                snprintf(t->last_error, sizeof t->last_error, "%s", line);
                return;
        }
        if (strncmp(line, "I: ", 3) == 0 && !muted(t->mute, line + 3))
                log_progress("%s: %s", t->what, line + 3);
        else if (strncmp(line, "E: ", 3) == 0 || (!strncmp(line, "W: ", 3) && !*t->last_error))
                snprintf(t->last_error, sizeof t->last_error, "%s", line + 3);
        if (strstr(line, "Failed to fetch") || strstr(line, "apt-get update") ||
            strstr(line, "Could not resolve") || strstr(line, "Connection refused") ||
            strstr(line, "does not have a Release file") || strstr(line, "404  Not Found"))
                t->mirror_failed = true;
        const char *ff = strstr(line, "Failed to fetch ");
        if (ff && !*t->mirror_error) {
                const char *why = strstr(ff, "  ");
                snprintf(t->mirror_error, sizeof t->mirror_error, "%s", why ? why + 2 : ff);
        }
}

int image_run_logged(struct cmd *c, const char *log_path, struct image_tool_run *t) {
        /* NULL: our stderr (reopening /dev/stderr fails in a user namespace: the pipe's owner
         * is not mapped there) */
        _cleanup_close_ int logfd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                                             : fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        if (logfd < 0)
                return log_error_errno(-errno, "Cannot write '%s': %m", log_path ? log_path : "stderr");
        return image_run_lines(c, logfd, 0, tool_line, t, NULL);
}

int image_run_quiet(struct cmd *c, const char *what, const char *log_path, const char *fix) {
        struct image_tool_run t = { .what = what };
        int r = image_run_logged(c, log_path, &t);
        if (r == 0)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Cannot run %s: %m", what);
        t.last_error[strcspn(t.last_error, "\n")] = 0;
        return log_error_errno(-EIO, "%s failed (exit status %d): %s (full output: %s)%s%s", what, r,
                               *t.last_error ? t.last_error : "no message", log_path ? log_path : "above",
                               fix ? "; " : "", fix ? fix : "");
}

char *image_hook_word(const char *s) {
        size_t n = 3;
        for (const char *q = s; *q; q++)
                n += *q == '\'' ? 4 : 1;
        char *out = malloc(n), *o = out;
        if (!out)
                return NULL;
        *o++ = '\'';
        for (; *s; s++)
                if (*s == '\'') {
                        memcpy(o, "'\\''", 4);
                        o += 4;
                } else
                        *o++ = *s;
        *o++ = '\'';
        *o = 0;
        return out;
}

char *image_hook(const char *verb, const char *a, const char *b) {
        _cleanup_free_ char *qa = image_hook_word(a), *qb = image_hook_word(b);
        return qa && qb ? strf("%s %s %s", verb, qa, qb) : NULL;
}
