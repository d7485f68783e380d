/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "spawn.h"

struct fdmap { int child, parent; };

struct cmd {
        char **argv;
        size_t argc, cap;
        char **env;
        size_t envc;
        struct fdmap fds[16];
        size_t nfds;
        bool pdeathsig, setsid, no_thp;
        bool oom;
        char *cwd;
};

static char *dry_run_path;

void cmd_set_dry_run(const char *record_path) {
        free(dry_run_path);
        dry_run_path = record_path ? strdup(record_path) : NULL;
}

struct cmd *cmd_new(const char *program) {
        struct cmd *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        cmd_arg(c, program);
        return c;
}

void cmd_free(struct cmd *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->argc; i++)
                free(c->argv[i]);
        free(c->argv);
        for (size_t i = 0; i < c->envc; i++)
                free(c->env[i]);
        free(c->env);
        free(c->cwd);
        free(c);
}

void cmd_freep(struct cmd **c) {
        cmd_free(*c);
}

static void push(struct cmd *c, char *s) {
        if (!s) {
                c->oom = true;
                return;
        }
        if (c->argc + 2 > c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                char **n = realloc(c->argv, cap * sizeof *n);
                if (!n) {
                        free(s);
                        c->oom = true;
                        return;
                }
                c->argv = n;
                c->cap = cap;
        }
        c->argv[c->argc++] = s;
        c->argv[c->argc] = NULL;
}

void cmd_arg(struct cmd *c, const char *arg) {
        if (c)
                push(c, strdup(arg ? arg : ""));
}

void cmd_argf(struct cmd *c, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        if (!c)
                return;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        push(c, s);
}

void cmd_args(struct cmd *c, const char *const *args) {
        for (; args && *args; args++)
                cmd_arg(c, *args);
}

void cmd_setenv(struct cmd *c, const char *name, const char *value) {
        char *s = NULL, **n;
        if (!c)
                return;
        if (asprintf(&s, "%s=%s", name, value) < 0 || !(n = realloc(c->env, (c->envc + 2) * sizeof *n))) {
                free(s);
                c->oom = true;
                return;
        }
        c->env = n;
        c->env[c->envc++] = s;
        c->env[c->envc] = NULL;
}

void cmd_map_fd(struct cmd *c, int child_fd, int parent_fd) {
        if (!c)
                return;
        if (c->nfds >= ELEMENTSOF(c->fds)) {
                c->oom = true;
                return;
        }
        c->fds[c->nfds++] = (struct fdmap) { child_fd, parent_fd };
}

void cmd_die_with_parent(struct cmd *c) { if (c) c->pdeathsig = true; }
void cmd_new_session(struct cmd *c) { if (c) c->setsid = true; }
void cmd_no_huge_pages(struct cmd *c) { if (c) c->no_thp = true; }

void cmd_chdir(struct cmd *c, const char *dir) {
        if (!c)
                return;
        free(c->cwd);
        c->cwd = strdup(dir);
        if (!c->cwd)
                c->oom = true;
}
char *const *cmd_argv(const struct cmd *c) { return c ? c->argv : NULL; }
size_t cmd_argc(const struct cmd *c) { return c ? c->argc : 0; }

static bool needs_quotes(const char *s) {
        if (!*s)
                return true;
        for (; *s; s++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *s))
                        return true;
        return false;
}

char *cmd_to_string(const struct cmd *c) {
        size_t len = 1;
        for (size_t i = 0; i < c->argc; i++)
                len += strlen(c->argv[i]) * 4 + 3;
        char *out = malloc(len), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < c->argc; i++) {
                const char *a = c->argv[i];
                if (i)
                        *p++ = ' ';
                if (!needs_quotes(a)) {
                        p = stpcpy(p, a);
                        continue;
                }
                *p++ = '\'';
                for (; *a; a++) {
                        if (*a == '\'')
                                p = stpcpy(p, "'\\''");
                        else
                                *p++ = *a;
                }
                *p++ = '\'';
        }
        *p = 0;
        return out;
}

static void append_env(char ***envp, size_t *n, const char *name) {
        const char *v = getenv(name);
        char *s;
        if (!v || asprintf(&s, "%s=%s", name, v) < 0)
                return;
        (*envp)[(*n)++] = s;
}

/* In the child: everything here must be async-signal-safe-ish (we are single-threaded callers
 * in practice, but keep to simple calls). */
static void __attribute__((noreturn)) child(struct cmd *c, char **envp, int out_fd) {
        sigset_t all;

        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (int s = 1; s < NSIG; s++)
                if (s != SIGKILL && s != SIGSTOP)
                        signal(s, SIG_DFL);
        if (c->setsid)
                setsid();
        if (c->no_thp)
                (void) prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);   /* inherited across execve */
        if (c->pdeathsig && prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                _exit(127);
        if (c->cwd && chdir(c->cwd) < 0)
                _exit(127);

        /* Move parent fds out of the way first, then place them. */
        int src[16 + 1], dst[16 + 1];
        size_t n = 0;
        for (size_t i = 0; i < c->nfds; i++) {
                int fd = c->fds[i].parent;
                if (fd < 0)
                        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                else
                        fd = fcntl(fd, F_DUPFD_CLOEXEC, 100);
                if (fd < 0)
                        _exit(127);
                src[n] = fd;
                dst[n++] = c->fds[i].child;
        }
        if (out_fd >= 0) {
                src[n] = fcntl(out_fd, F_DUPFD_CLOEXEC, 100);
                dst[n++] = STDOUT_FILENO;
        }
        for (size_t i = 0; i < n; i++)
                if (dup2(src[i], dst[i]) < 0)
                        _exit(127);
        /* Close everything else (dup2 cleared CLOEXEC on the targets). */
        int keep_max = 2;
        for (size_t i = 0; i < n; i++)
                if (dst[i] > keep_max)
                        keep_max = dst[i];
        DIR *d = opendir("/proc/self/fd");
        if (d) {
                int dfd = dirfd(d);
                struct dirent *de;
                while ((de = readdir(d))) {
                        int fd = atoi(de->d_name);
                        if (de->d_name[0] == '.' || fd == dfd)
                                continue;
                        bool keep = fd <= 2;
                        for (size_t i = 0; i < n; i++)
                                keep = keep || fd == dst[i];
                        if (!keep)
                                close(fd);
                }
                closedir(d);
        }
        if (strchr(c->argv[0], '/'))
                execve(c->argv[0], c->argv, envp);
        else
                execvpe(c->argv[0], c->argv, envp);
        _exit(127);
}

static char **build_env(const struct cmd *c) {
        static const char *const allow[] = { "PATH", "HOME", "TMPDIR", "USER", "LOGNAME", "TERM", "FAME_DEBUG" };
        char **envp = calloc(ELEMENTSOF(allow) + c->envc + 2, sizeof *envp);
        size_t n = 0;
        if (!envp)
                return NULL;
        envp[n++] = strdup("LC_ALL=C");
        for (size_t i = 0; i < ELEMENTSOF(allow); i++) {
                bool overridden = false;
                for (size_t k = 0; k < c->envc; k++)
                        overridden = overridden || (strncmp(c->env[k], allow[i], strlen(allow[i])) == 0 && c->env[k][strlen(allow[i])] == '=');
                if (!overridden)
                        append_env(&envp, &n, allow[i]);
        }
        for (size_t k = 0; k < c->envc; k++)
                envp[n++] = strdup(c->env[k]);
        envp[n] = NULL;
        return envp;
}

static void free_env(char **envp) {
        for (size_t i = 0; envp && envp[i]; i++)
                free(envp[i]);
        free(envp);
}

static int record_dry_run(const struct cmd *c) {
        FILE *f = fopen(dry_run_path, "ae");
        if (!f)
                return -errno;
        for (size_t i = 0; i < c->argc; i++)
                fprintf(f, "%s%s", i ? " " : "", c->argv[i]);
        fputc('\n', f);
        fclose(f);
        return 0;
}

static pid_t start(struct cmd *c, int out_fd) {
        if (!c || c->oom)
                return -ENOMEM;
        char **envp = build_env(c);
        if (!envp)
                return -ENOMEM;
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                free_env(envp);
                return r;
        }
        if (pid == 0)
                child(c, envp, out_fd);
        free_env(envp);
        return pid;
}

pid_t cmd_run_async(struct cmd *c) {
        if (dry_run_path) {
                int r = record_dry_run(c);
                return r < 0 ? r : 0;
        }
        return start(c, -1);
}

static int status_to_result(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return -EIO;
}

static long long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wait_pid_timeout(pid_t pid, int timeout_ms) {
        /* pidfd lets us wait with a deadline without signals or polling. */
        long long deadline = now_ms() + timeout_ms;
        int pfd = (int) syscall(434 /* SYS_pidfd_open */, pid, 0);
        int status;

        for (;;) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid) {
                        if (pfd >= 0)
                                close(pfd);
                        return status_to_result(status);
                }
                if (w < 0 && errno != EINTR) {
                        int r = -errno;
                        if (pfd >= 0)
                                close(pfd);
                        return r;
                }
                long long left = timeout_ms < 0 ? 1000 : deadline - now_ms();
                if (left <= 0) {
                        if (pfd >= 0)
                                close(pfd);
                        return -ETIMEDOUT;
                }
                if (pfd >= 0) {
                        struct pollfd p = { .fd = pfd, .events = POLLIN };
                        (void) poll(&p, 1, (int) (left > 1000 ? 1000 : left));
                } else {
                        struct timespec ts = { 0, 10 * 1000 * 1000 };
                        nanosleep(&ts, NULL);   /* no pidfd (old kernel): poll the child */
                }
        }
}

int cmd_run_timeout(struct cmd *c, int timeout_ms, char **ret_out) {
        int pipefd[2] = { -1, -1 };
        char *buf = NULL;
        size_t len = 0, cap = 0;
        int r;

        if (ret_out)
                *ret_out = NULL;
        if (dry_run_path) {
                r = record_dry_run(c);
                if (r >= 0 && ret_out)
                        *ret_out = strdup("");
                return r;
        }
        if (ret_out && pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = start(c, pipefd[1]);
        if (pipefd[1] >= 0)
                close(pipefd[1]);
        if (pid < 0) {
                if (pipefd[0] >= 0)
                        close(pipefd[0]);
                return pid;
        }
        long long deadline = now_ms() + timeout_ms;
        if (pipefd[0] >= 0) {
                for (;;) {
                        long long left = timeout_ms < 0 ? -1 : deadline - now_ms();
                        if (timeout_ms >= 0 && left <= 0)
                                break;
                        struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
                        int n = poll(&p, 1, (int) left);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break;
                        if (len + 4097 > cap) {
                                cap = cap ? cap * 2 : 8192;
                                char *nb = realloc(buf, cap);
                                if (!nb)
                                        break;
                                buf = nb;
                        }
                        ssize_t k = read(pipefd[0], buf + len, cap - len - 1);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                break;
                        len += (size_t) k;
                }
                close(pipefd[0]);
        }
        long long left = timeout_ms < 0 ? -1 : deadline - now_ms();
        r = wait_pid_timeout(pid, timeout_ms < 0 ? -1 : (int) (left > 0 ? left : 0));
        if (r == -ETIMEDOUT) {
                kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
        }
        if (ret_out && r >= 0) {
                if (!buf)
                        buf = calloc(1, 1);
                else
                        buf[len] = 0;
                *ret_out = buf;
                buf = NULL;
        }
        free(buf);
        return r;
}

int cmd_run(struct cmd *c, char **ret_out) {
        return cmd_run_timeout(c, -1, ret_out);
}
