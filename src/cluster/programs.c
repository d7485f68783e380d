/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where FAM/E's other programs are (programs.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "programs.h"

/* A program of FAM/E next to this fame (build tree) or installed beside it: $ENV if set, else
 * the first of candidates (appended to this fame's directory: "/name" or "-suffix/name") that is executable. */
static char *find_companion(const char *env_name, const char *const *candidates, size_t n) {
        const char *env = getenv(env_name);
        char self[PATH_MAX], *slash, *path = NULL;
        if (env && *env)
                return strdup(env);
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0)
                return NULL;
        self[k] = 0;
        slash = strrchr(self, '/');
        if (!slash)
                return NULL;
        *slash = 0;
        for (size_t i = 0; i < n; i++) {
                free(path);
                if (asprintf(&path, "%s%s", self, candidates[i]) < 0)
                        return NULL;
                if (access(path, X_OK) == 0)
                        return path;
        }
        free(path);
        return NULL;
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
