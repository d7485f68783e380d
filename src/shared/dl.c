/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dl.h"
#include "log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int bind_locked(struct dl_lib *lib) {
        char path[4096];
        const char *dir = getenv("FAME_DL_PATH");
        const char *what = lib->soname;

        if (dir && *dir) {
                if (snprintf(path, sizeof path, "%s/%s", dir, lib->soname) >= (int) sizeof path)
                        return log_error_errno(-ENAMETOOLONG, "FAME_DL_PATH is too long");
                what = path;
        }
        /* RTLD_NOW: a missing function is found here, not in the middle of a start */
        void *h = dlopen(what, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                const char *e = dlerror();
                return log_error_errno(-ELIBACC, "Cannot load %s (%s): install the Debian package %s (scripts/install-deps does)",
                                       lib->soname, e ? e : "unknown error", lib->package);
        }
        for (size_t i = 0; i < lib->n_syms; i++) {
                (void) dlerror();
                void *f = dlsym(h, lib->syms[i].name);
                if (!f) {
                        dlclose(h);
                        return log_error_errno(-ELIBBAD, "%s has no %s: it is older than FAM/E needs; upgrade the Debian package %s",
                                               lib->soname, lib->syms[i].name, lib->package);
                }
                /* POSIX: a data pointer from dlsym converts to the function pointer it names */
                memcpy(lib->syms[i].slot, &f, sizeof f);
        }
        return 1;       /* the handle stays open for the life of the process */
}

int dl_bind(struct dl_lib *lib) {
        pthread_mutex_lock(&lock);
        if (lib->state == 0)
                lib->state = bind_locked(lib);
        int r = lib->state;
        pthread_mutex_unlock(&lock);
        return r < 0 ? r : 0;
}
