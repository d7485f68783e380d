/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-lfs's threads beside the FUSE operations: the heartbeat (the node's status every
 * LFS_HEARTBEAT_SECONDS) and the watcher, whose own connection to the Librarian hears of every
 * change another connection makes (docs/lfs.md, "Caching").
 */
#include <errno.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>

#include "lfs.h"
#include "log.h"

#include "lfs-internal.h"

void lfs_soc_status(struct lfs *l, int status) {
        struct sysinfo si;
        int mem = 0;
        if (status && sysinfo(&si) == 0 && si.totalram)
                mem = (int) (100 - (uint64_t) si.freeram * 100 / si.totalram);
        (void) LCALL(l, librarian_update_node_soc_status, status, 0, 0, 0, 0, mem, NULL);
        (void) LCALL(l, librarian_update_node_mc_status, status, NULL);
}

static void *heartbeat(void *userdata) {
        struct lfs *l = userdata;
        pthread_mutex_lock(&l->hb_lock);
        while (!l->stopping) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += LFS_HEARTBEAT_SECONDS;
                pthread_cond_timedwait(&l->hb_cond, &l->hb_lock, &ts);
                if (l->stopping)
                        break;
                pthread_mutex_unlock(&l->hb_lock);
                lfs_soc_status(l, 1);
                pthread_mutex_lock(&l->hb_lock);
        }
        pthread_mutex_unlock(&l->hb_lock);
        return NULL;
}

/* The parent directory of path ("/" for "/x"), in buf. */
static const char *parent_of(const char *path, char *buf, size_t size) {
        const char *slash = strrchr(path, '/');
        size_t n = slash && slash != path ? (size_t) (slash - path) : 1;
        if (n >= size)
                return NULL;
        memcpy(buf, path, n);
        buf[n] = 0;
        return buf;
}

/* A notice: another connection changed these shelves.  What the kernel holds of them and of
 * their directories (attributes, a directory's listing) goes; entries are path names here
 * (libfuse's path interface), so an entry that now names another shelf or none is found out
 * by the attributes asked for again.  Called in the watcher's thread only: never while a FUSE
 * operation waits for it. */
static int on_notice(struct json_object *paths, const char *command, void *userdata) {
        struct lfs *l = userdata;
        char parent[4096];

        if (!paths) {
                /* (re)connected: notices may have been missed; what the kernel cached expires
                 * within cache_timeout, and the books of open files are asked for again */
                __atomic_add_fetch(&l->generation, 1, __ATOMIC_ACQ_REL);
                dircache_drop_all(l->dirs);
                (void) fuse_invalidate_path(l->fuse, "/");
                return 0;
        }
        if (command && strcmp(command, "resize_shelf") == 0)
                __atomic_add_fetch(&l->generation, 1, __ATOMIC_ACQ_REL);
        if (command && strcmp(command, "rename_shelf") == 0)
                dircache_drop_all(l->dirs);
        for (size_t i = 0; i < json_object_array_length(paths); i++) {
                const char *p = json_object_get_string(json_object_array_get_idx(paths, i));
                if (!p || p[0] != '/')
                        continue;
                dircache_drop(l->dirs, p);
                (void) fuse_invalidate_path(l->fuse, p);
                if (strcmp(p, "/") != 0 && parent_of(p, parent, sizeof parent))
                        (void) fuse_invalidate_path(l->fuse, parent);
        }
        log_debug("fame-lfs: notice of %s: %s", command ? command : "a change", json_object_to_json_string(paths));
        return 0;
}

static bool wait_stopping(struct lfs *l, int seconds) {
        struct timespec ts;
        pthread_mutex_lock(&l->hb_lock);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += seconds;
        while (!l->stopping && pthread_cond_timedwait(&l->hb_cond, &l->hb_lock, &ts) == 0)
                ;
        bool stopping = l->stopping;
        pthread_mutex_unlock(&l->hb_lock);
        return stopping;
}

/* The watcher: its own connection to the Librarian, which sends it notices (fame_watch);
 * reconnected a second after it breaks. */
static void *watcher(void *userdata) {
        struct lfs *l = userdata;
        bool logged = false;

        for (;;) {
                struct fame_librarian *w = NULL;
                pthread_mutex_lock(&l->hb_lock);
                bool stopping = l->stopping;
                pthread_mutex_unlock(&l->hb_lock);
                if (stopping)
                        break;
                int r = fame_librarian_connect(l->address, &w);
                if (r >= 0) {
                        if (l->node)
                                fame_librarian_set_node(w, l->node);
                        pthread_mutex_lock(&l->hb_lock);
                        l->watch = l->stopping ? NULL : w;
                        pthread_mutex_unlock(&l->hb_lock);
                        if (l->watch) {
                                r = librarian_watch(w, l->origin, on_notice, l);
                                if (r < 0 && !logged)
                                        log_warning("fame-lfs: %s; what the kernel caches is kept at most %g s until "
                                                    "it is back", fame_librarian_error(w), l->cache_timeout);
                                logged = r < 0;
                        }
                        pthread_mutex_lock(&l->hb_lock);
                        l->watch = NULL;
                        pthread_mutex_unlock(&l->hb_lock);
                        fame_librarian_disconnect(w);
                }
                if (wait_stopping(l, 1))
                        break;
        }
        return NULL;
}

void lfs_threads_start(struct lfs *l) {
        lfs_soc_status(l, 1);
        if (pthread_create(&l->heartbeat, NULL, heartbeat, l) == 0)
                l->heartbeat_started = true;
        if (l->cache_timeout > 0 && pthread_create(&l->watcher, NULL, watcher, l) == 0)
                l->watcher_started = true;
}

void lfs_threads_stop(struct lfs *l) {
        pthread_mutex_lock(&l->hb_lock);
        l->stopping = true;
        pthread_cond_broadcast(&l->hb_cond);
        librarian_shutdown(l->watch);
        pthread_mutex_unlock(&l->hb_lock);
        if (l->heartbeat_started)
                pthread_join(l->heartbeat, NULL);
        if (l->watcher_started)
                pthread_join(l->watcher, NULL);
        lfs_soc_status(l, 0);
}
