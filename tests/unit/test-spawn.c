/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The command builder: argv, clean environment, fd map, capture, time limits, dry run. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spawn.h"
#include "testlib.h"

int main(void) {
        char *out = NULL;
        int r;

        /* Capture and arguments with spaces and quotes arrive intact (no shell). */
        struct cmd *c = cmd_new("printf");
        cmd_arg(c, "%s|%s|%s");
        cmd_arg(c, "a b");
        cmd_arg(c, "it's");
        cmd_argf(c, "n=%d", 42);
        r = cmd_run(c, &out);
        CHECK(r == 0 && out && strcmp(out, "a b|it's|n=42") == 0, "printf: r=%d out='%s'", r, out ? out : "(null)");
        free(out);
        char *s = cmd_to_string(c);
        CHECK(s && strcmp(s, "printf '%s|%s|%s' 'a b' 'it'\\''s' n=42") == 0, "to_string: %s", s);
        free(s);
        CHECK(cmd_argc(c) == 5 && strcmp(cmd_argv(c)[1], "%s|%s|%s") == 0 && cmd_argv(c)[5] == NULL, "argv");
        cmd_free(c);

        /* Exit status, signals, missing programs. */
        c = cmd_new("false");
        CHECK(cmd_run(c, NULL) == 1, "false");
        cmd_free(c);
        c = cmd_new("/no/such/program");
        CHECK(cmd_run(c, NULL) == 127, "missing program is 127");
        cmd_free(c);

        /* Clean environment: LC_ALL=C, allow-listed variables and explicit ones only. */
        setenv("FAME_TEST_SECRET", "leak", 1);
        c = cmd_new("env");
        cmd_setenv(c, "FOO", "bar");
        r = cmd_run(c, &out);
        CHECK(r == 0 && strstr(out, "LC_ALL=C\n") && strstr(out, "FOO=bar\n") && !strstr(out, "FAME_TEST_SECRET"), "env: %s", out);
        free(out);
        cmd_free(c);

        /* fd map: the child's stderr goes to a file; stray fds are closed. */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/err", test_tmpdir());
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int stray = open("/dev/null", O_RDONLY);        /* not CLOEXEC on purpose */
        c = cmd_new("ls");
        cmd_arg(c, "/proc/self/fd");
        cmd_map_fd(c, 2, fd);
        r = cmd_run(c, &out);
        char want[16];
        snprintf(want, sizeof want, "\n%d\n", stray);
        CHECK(r == 0 && !strstr(out, want), "stray fd %d leaked: %s", stray, out);
        free(out);
        cmd_free(c);
        close(stray);
        c = cmd_new("ls");
        cmd_arg(c, "/no/such/dir");
        cmd_map_fd(c, 2, fd);
        CHECK(cmd_run(c, NULL) != 0, "ls fails");
        cmd_free(c);
        close(fd);
        char buf[256] = "";
        fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0 && read(fd, buf, sizeof buf - 1) > 0 && strstr(buf, "/no/such/dir"), "stderr mapped: %s", buf);
        close(fd);

        /* Time limit: the child is killed. */
        c = cmd_new("sleep");
        cmd_arg(c, "30");
        r = cmd_run_timeout(c, 200, &out);
        CHECK(r == -ETIMEDOUT && !out, "timeout: %d", r);
        cmd_free(c);

        /* Async + wait. */
        c = cmd_new("true");
        pid_t pid = cmd_run_async(c);
        CHECK(pid > 0 && wait_pid_timeout(pid, 5000) == 0, "async");
        cmd_free(c);

        /* Dry run records instead of running. */
        snprintf(path, sizeof path, "%s/dry", test_tmpdir());
        cmd_set_dry_run(path);
        c = cmd_new("rm");
        cmd_arg(c, "-rf");
        cmd_arg(c, "/definitely/not");
        CHECK(cmd_run(c, NULL) == 0, "dry run");
        cmd_free(c);
        cmd_set_dry_run(NULL);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        memset(buf, 0, sizeof buf);
        CHECK(fd >= 0 && read(fd, buf, sizeof buf - 1) > 0 && strcmp(buf, "rm -rf /definitely/not\n") == 0, "recorded: %s", buf);
        close(fd);
        return test_exit();
}
