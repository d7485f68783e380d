/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one way FAM/E runs other programs: an argv vector (never a shell), a clean environment
 * (LC_ALL=C plus an allow-list), an fd map, and run / run_async / to_string.
 * The child resets signals, closes stray fds, optionally sets PR_SET_PDEATHSIG, execs, and
 * _exit(127)s on failure.
 */
#ifndef FAME_SPAWN_H
#define FAME_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cmd;

struct cmd *cmd_new(const char *program);       /* program: a path or a name looked up in PATH */
void cmd_free(struct cmd *c);                    /* accepts NULL */
void cmd_freep(struct cmd **c);
#define _cleanup_cmd_ __attribute__((cleanup(cmd_freep)))

/* Appends arguments; cmd_argf formats one. Allocation failures are remembered and reported by
 * cmd_run*(), so callers need not check each call. */
void cmd_arg(struct cmd *c, const char *arg);
void cmd_argf(struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cmd_args(struct cmd *c, const char *const *args);   /* NULL-terminated */

/* Environment: the child gets LC_ALL=C, PATH, HOME, TMPDIR, USER (when set) and these. */
void cmd_setenv(struct cmd *c, const char *name, const char *value);

/* fd map: child_fd becomes a copy of parent_fd (-1: /dev/null). 0, 1, 2 default to the
 * parent's unless mapped; everything else is closed. */
void cmd_map_fd(struct cmd *c, int child_fd, int parent_fd);

/* The child dies with the parent (PR_SET_PDEATHSIG SIGKILL). */
void cmd_die_with_parent(struct cmd *c);
/* The child starts a new session (setsid): it survives the terminal and the parent. */
void cmd_new_session(struct cmd *c);
/* The child and what it execs get no transparent huge pages (PR_SET_THP_DISABLE): a guest's
 * RAM is then backed page by page as the guest touches it, not in 2 MiB steps. */
void cmd_no_huge_pages(struct cmd *c);
/* The child starts in dir (exit status 127 if it cannot). */
void cmd_chdir(struct cmd *c, const char *dir);

/* Runs to completion. Returns the exit status (0..255), 128+signal when killed, or -errno when
 * it could not be started.  With ret_out, stdout is captured (NUL-terminated, caller frees). */
int cmd_run(struct cmd *c, char **ret_out);
/* Runs with a time limit (ms); the child is killed (SIGKILL) when it expires: -ETIMEDOUT. */
int cmd_run_timeout(struct cmd *c, int timeout_ms, char **ret_out);

/* Starts it and returns its pid (> 0) or -errno. */
pid_t cmd_run_async(struct cmd *c);

/* "prog 'arg one' arg2" for logs and error messages; the caller frees it. */
char *cmd_to_string(const struct cmd *c);
/* argv as built (NULL-terminated), for golden tests. */
char *const *cmd_argv(const struct cmd *c);
size_t cmd_argc(const struct cmd *c);

/* Test hook: when set, cmd_run*() record "argv joined by spaces" lines to this file instead of
 * running anything, and return 0 with empty output. */
void cmd_set_dry_run(const char *record_path);

/* Waits for pid with a time limit: the exit status as cmd_run(), or -ETIMEDOUT. */
int wait_pid_timeout(pid_t pid, int timeout_ms);

#endif
