/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame cp --libs (cluster.h): a host program and the shared libraries it needs that a node
 * lacks.  The host's loader lists the closure (libs.c); the node is asked, through its guest
 * agent and one `ls -d` (argv), which of them it has where its own loader looks
 * (/lib/TRIPLET, /usr/lib/TRIPLET, /lib, /usr/lib, the host's path).  What it lacks goes to
 * /usr/lib/TRIPLET/NAME, a directory the node's loader searches without ld.so.cache (diskless
 * nodes have none) — never over a file that is there, so the node's own libc stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster-state.h"
#include "cluster.h"
#include "libs.h"
#include "log.h"
#include "macro.h"
#include "qmp.h"
#include "util.h"

#define CP_TIMEOUT_MS 60000

static int read_whole(const char *path, char **ret, size_t *ret_len, mode_t *ret_mode) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return log_error_errno(-errno, "Cannot read '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(-EINVAL, "'%s' is not a regular file", path);
        char *data = malloc((size_t) st.st_size + 1);
        if (!data)
                return log_error_errno(-ENOMEM, "Out of memory");
        size_t done = 0;
        while (done < (size_t) st.st_size) {
                ssize_t k = read(fd, data + done, (size_t) st.st_size - done);
                if (k <= 0) {
                        free(data);
                        return log_error_errno(k < 0 ? -errno : -EIO, "Cannot read '%s': %m", path);
                }
                done += (size_t) k;
        }
        *ret = data;
        *ret_len = done;
        *ret_mode = st.st_mode & 07777;
        return 0;
}

/* Runs argv in the node; its exit status (>= 0) or -errno (logged). */
static int node_run(struct qmp *q, const struct node_plan *n, const char *const *argv, struct qga_exec_result *res) {
        int r = qga_exec(q, argv, NULL, 0, CP_TIMEOUT_MS, res);
        if (r < 0) {
                _cleanup_free_ char *why = res->error ? qga_error_reason(res->error) : NULL;
                return log_error_errno(r, "%s: cannot run '%s'%s%s", n->name, argv[0], why ? ": " : "", why ? why : "");
        }
        return res->signal ? 128 + res->signal : res->exit_code;
}

/* Whether line is one of the lines of text. */
static bool has_line(const char *text, const char *line) {
        size_t len = strlen(line);
        for (const char *s = text; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL)
                if (strncmp(s, line, len) == 0 && (s[len] == '\n' || s[len] == 0))
                        return true;
        return false;
}

static int copy_one(struct qmp *q, const struct node_plan *n, const char *from, const char *to, mode_t mode) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        mode_t host_mode = 0;
        int r = read_whole(from, &data, &len, &host_mode);
        if (r < 0)
                return r;
        r = qga_write_file(q, to, data, len, mode ? mode : host_mode, CP_TIMEOUT_MS);
        if (r < 0)
                return log_error_errno(r, "%s: cannot write '%s': %m", n->name, to);
        return 0;
}

static int mkdir_in_node(struct qmp *q, const struct node_plan *n, const char *dir) {
        struct qga_exec_result res = { 0 };
        int r = node_run(q, n, (const char *const[]) { "mkdir", "-p", dir, NULL }, &res);
        if (r > 0)
                log_error("%s: cannot make directory %s: %.*s", n->name, dir, (int) strcspn(res.err ? res.err : "", "\n"), res.err ? res.err : "");
        qga_exec_result_done(&res);
        return r > 0 ? -EIO : r;
}

/* The program and its missing libraries into one node. */
static int cp_node(const struct cluster *cl, const struct node_plan *n, const char *host_path, const char *node_path,
                   const struct lib_list *libs, cluster_cp_report_fn report, void *userdata) {
        const char *t = libs_triplet(n->arch);
        char dir[64];
        snprintf(dir, sizeof dir, "/usr/lib/%s", t);
        struct qmp *q = NULL;
        int r = cluster_require_running(cl, n);
        if (r < 0)
                return r;
        r = cluster_agent(cl, n, 5000, &q);
        if (r < 0)
                return log_error_errno(r, "%s: its guest agent does not answer (is it still booting? see 'fame status')", n->name);

        /* Where the node's loader would find each library (five places a library), or the loader. */
        size_t n_args = 3 + libs->n * 5 + 1, k = 0;
        _cleanup_free_ const char **argv = calloc(n_args, sizeof *argv);
        _cleanup_free_ char *paths = calloc(libs->n * 4, PATH_MAX);
        if (!argv || !paths) {
                qmp_close(q);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        argv[k++] = "ls";
        argv[k++] = "-d";
        argv[k++] = "--";
        for (size_t i = 0; i < libs->n; i++) {
                argv[k++] = libs->v[i].path;
                if (libs->v[i].loader)
                        continue;
                static const char *const dirs[] = { "/lib/", "/usr/lib/" };
                for (size_t f = 0; f < 4; f++) {
                        char *p = paths + (i * 4 + f) * PATH_MAX;
                        /* /lib/TRIPLET/NAME, /usr/lib/TRIPLET/NAME, /lib/NAME, /usr/lib/NAME */
                        snprintf(p, PATH_MAX, "%s%s%s%s", dirs[f % 2], f < 2 ? t : "", f < 2 ? "/" : "", libs->v[i].name);
                        argv[k++] = p;
                }
        }
        struct qga_exec_result found = { 0 };
        if (libs->n > 0) {
                r = node_run(q, n, argv, &found);      /* exit status 1 when one is missing */
                if (r < 0)
                        goto out;
        }

        bool made_dir = false;
        for (size_t i = 0; i < libs->n; i++) {
                const struct lib_entry *l = &libs->v[i];
                bool present = has_line(found.out, l->path);
                for (size_t f = 0; f < 4 && !present && !l->loader; f++)
                        present = has_line(found.out, paths + (i * 4 + f) * PATH_MAX);
                char to[PATH_MAX];
                snprintf(to, sizeof to, "%s/%s", dir, l->name);
                if (present) {
                        if (report)
                                report(userdata, n->name, l->path, l->loader ? l->path : to, false);
                        continue;
                }
                if (l->loader) {
                        /* a node without the program's loader: it goes where PT_INTERP names it */
                        _cleanup_free_ char *d = strdup(l->path);
                        r = d ? mkdir_in_node(q, n, dirname(d)) : log_error_errno(-ENOMEM, "Out of memory");
                        if (r >= 0)
                                r = copy_one(q, n, l->path, l->path, 0755);
                } else {
                        r = made_dir ? 0 : mkdir_in_node(q, n, dir);
                        made_dir = true;
                        if (r >= 0)
                                r = copy_one(q, n, l->path, to, 0);
                }
                if (r < 0)
                        goto out;
                if (report)
                        report(userdata, n->name, l->path, l->loader ? l->path : to, true);
        }
        /* the program last: once it is there, it runs */
        r = copy_one(q, n, host_path, node_path, 0);
        if (r >= 0 && report)
                report(userdata, n->name, host_path, node_path, true);
out:
        qga_exec_result_done(&found);
        qmp_close(q);
        return r;
}

int cluster_cp_libs(const struct fame_config *c, const char *host_path, const char *node, const char *node_path,
                    cluster_cp_report_fn report, void *userdata) {
        _cleanup_(cluster_done) struct cluster cl = CLUSTER_INIT;
        _cleanup_(lib_list_done) struct lib_list libs = {};
        struct elf_program e;
        int r = elf_program_read(host_path, &e);
        if (r < 0)
                return r;
        r = cluster_load(&cl, c);
        if (r < 0)
                return r;
        uint32_t first, last;
        r = cluster_node_range(&cl.plan, node, &first, &last);
        if (r < 0)
                return r;
        /* every node's architecture before anything is copied */
        for (uint32_t id = first; id <= last; id++) {
                const struct node_plan *n = &cl.plan.node[id - 1];
                if (!e.known_arch || e.arch != n->arch)
                        return log_error_errno(-ENOEXEC, "'%s' is an %s program, and %s is an %s node: build it for %s (or copy it to a node of its architecture)",
                                               host_path, e.arch_name, n->name, arch_to_string(n->arch), arch_to_string(n->arch));
        }
        r = libs_closure(host_path, &e, &libs);
        if (r < 0)
                return r;
        for (uint32_t id = first; id <= last; id++) {
                r = cp_node(&cl, &cl.plan.node[id - 1], host_path, node_path, &libs, report, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}
