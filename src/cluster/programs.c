/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where FAM/E's other programs are (programs.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "programs.h"

/* A file of FAM/E next to this fame (build tree) or installed beside it: $ENV if set, else the
 * first of candidates (appended to this fame's directory: "/name" or "-suffix/name") that
 * access() allows with mode.  0 and its path, or -ENOENT and the path of $ENV or of the first
 * candidate (where it should have been), or -ENOMEM. */
static int find_beside(const char *env_name, const char *const *candidates, size_t n, int mode, char **ret) {
        const char *env = getenv(env_name);
        char self[PATH_MAX], *slash, *path = NULL, *first = NULL;

        *ret = NULL;
        if (env && *env) {
                *ret = strdup(env);
                return !*ret ? -ENOMEM : access(env, mode) == 0 ? 0 : -ENOENT;
        }
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0)
                return -ENOENT;
        self[k] = 0;
        slash = strrchr(self, '/');
        if (!slash)
                return -ENOENT;
        *slash = 0;
        for (size_t i = 0; i < n; i++) {
                if (asprintf(&path, "%s%s", self, candidates[i]) < 0) {
                        free(first);
                        return -ENOMEM;
                }
                if (access(path, mode) == 0) {
                        free(first);
                        *ret = path;
                        return 0;
                }
                if (first)
                        free(path);
                else
                        first = path;
        }
        *ret = first;
        return -ENOENT;
}

/* A program: $ENV as it is, else find_beside(); its path, or NULL. */
static char *find_companion(const char *env_name, const char *const *candidates, size_t n) {
        const char *env = getenv(env_name);
        char *path = NULL;
        if (env && *env)
                return strdup(env);
        if (find_beside(env_name, candidates, n, X_OK, &path) < 0) {
                free(path);
                return NULL;
        }
        return path;
}

char *program_self(void) {
        char self[PATH_MAX];
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0)
                return strdup("fame");
        self[k] = 0;
        return strdup(self);
}

char *program_node_binary(void) {
        static const char *const candidates[] = { "/fame-static", "/../../fame-static", "/../libexec/fame/fame-static" };
        return find_companion("FAME_NODE_BINARY", candidates, ELEMENTSOF(candidates));
}

char *program_node_binary_aarch64(void) {
        static const char *const candidates[] = { "-aarch64/fame-static", "/../libexec/fame/aarch64/fame-static" };
        return find_companion("FAME_NODE_BINARY_AARCH64", candidates, ELEMENTSOF(candidates));
}

/* fame-librarian next to this fame (build tree) or in PREFIX/libexec/fame; $FAME_LIBRARIAN_BINARY wins. */
char *cluster_librarian_binary(void) {
        static const char *const candidates[] = { "/fame-librarian", "/../libexec/fame/fame-librarian" };
        return find_companion("FAME_LIBRARIAN_BINARY", candidates, ELEMENTSOF(candidates));
}

/* fame-lfs next to this fame (build tree) or in PREFIX/sbin; $FAME_LFS_BINARY wins. */
char *program_lfs_binary(void) {
        static const char *const candidates[] = { "/fame-lfs", "/../sbin/fame-lfs" };
        return find_companion("FAME_LFS_BINARY", candidates, ELEMENTSOF(candidates));
}

/* fame-check.so: the build tree's src/check/ beside this fame, or PREFIX/libexec/fame. */
int program_check_plugin(char **ret) {
        static const char *const candidates[] = { "/src/check/fame-check.so", "/../libexec/fame/fame-check.so" };
        return find_beside("FAME_CHECK_PLUGIN", candidates, ELEMENTSOF(candidates), R_OK, ret);
}
