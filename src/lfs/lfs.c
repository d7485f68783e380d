/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "fame.h"
#include "lfs.h"
#include "lfs-internal.h"
#include "librarian-client.h"
#include "relay.h"
#include "log.h"
#include "macro.h"
#include "proto.h"
#include "util.h"

/* The caller of the FUSE request this thread serves (NULL in the daemon's own threads). */
_Thread_local const struct fuse_ctx *caller;

/* Before a Librarian request of the current FUSE operation: the shared connection, acting as
 * the operation's caller (uid, gid, pid on this node). */
struct fame_librarian *lcall_begin(struct lfs *l) {
        const struct fuse_ctx *ctx = caller;

        pthread_mutex_lock(&l->lock);
        librarian_set_caller(l->lib, ctx ? ctx->uid : getuid(), ctx ? ctx->gid : getgid(), ctx && ctx->pid ? ctx->pid : getpid());
        return l->lib;
}

/* After it: a lost Librarian is EIO (the connection resent reads once and retried idempotent
 * changes for up to LFS_RESTART_WAIT_SECONDS). */
int lcall_end(struct lfs *l, int r) {
        if (r < 0) {
                if (librarian_transport_error(r)) {
                        log_error("fame-lfs: %s: %s", librarian_last_command(l->lib), fame_librarian_error(l->lib));
                        r = -EIO;
                } else
                        log_debug("fame-lfs: %s: %s", librarian_last_command(l->lib), fame_librarian_error(l->lib));
        }
        pthread_mutex_unlock(&l->lock);
        return r;
}

int64_t member(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return json_object_get_int64(v);
}

void fill_stat(struct lfs *l, struct json_object *s, struct stat *st) {
        memset(st, 0, sizeof *st);
        st->st_ino = (ino_t) member(s, "id");
        st->st_mode = (mode_t) member(s, "mode");
        st->st_nlink = (nlink_t) member(s, "link_count");
        if (st->st_nlink == 0)
                st->st_nlink = 1;
        st->st_uid = (uid_t) member(s, "uid");
        st->st_gid = (gid_t) member(s, "gid");
        st->st_size = (off_t) member(s, "size_bytes");
        st->st_blksize = 4096;
        st->st_blocks = (blkcnt_t) ((uint64_t) member(s, "book_count") * l->book_size / 512);
        st->st_mtim.tv_sec = st->st_atim.tv_sec = (time_t) member(s, "mtime");
        st->st_ctim.tv_sec = (time_t) member(s, "ctime");
}

static void dircache_fill(struct json_object *record, struct stat *st, void *userdata) {
        fill_stat(userdata, record, st);
}

static void soc_status(struct lfs *l, int status) {
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
                soc_status(l, 1);
                pthread_mutex_lock(&l->hb_lock);
        }
        pthread_mutex_unlock(&l->hb_lock);
        return NULL;
}

/* What the kernel holds of path (another connection changed it) goes: its attributes, its
 * entry in its directory, and the directory's attributes and listing (its readdir cache). */
static void invalidate(struct lfs *l, const char *path) {
        uint64_t parent, ino;
        inodes_find(l->inodes, path, &parent, &ino);
        if (ino)
                (void) fuse_lowlevel_notify_inval_inode(l->se, ino, 0, 0);
        if (parent) {
                const char *name = strrchr(path, '/') + 1;
                (void) fuse_lowlevel_notify_inval_entry(l->se, parent, name, strlen(name));
                (void) fuse_lowlevel_notify_inval_inode(l->se, parent, 0, 0);
        }
}

/* A notice: another connection changed these shelves.  What the kernel and the directory
 * cache hold of them and of their directories (attributes, entries, a directory's listing)
 * goes.  Called in the watcher's thread only: never while a FUSE operation waits for it. */
static int on_notice(struct json_object *paths, const char *command, void *userdata) {
        struct lfs *l = userdata;

        if (!paths) {
                /* (re)connected: notices may have been missed; what the kernel cached expires
                 * within cache_timeout (its listings too: op_opendir()), and the books of open
                 * files are asked for again */
                __atomic_add_fetch(&l->generation, 1, __ATOMIC_ACQ_REL);
                dircache_drop_all(l->dirs);
                (void) fuse_lowlevel_notify_inval_inode(l->se, FUSE_ROOT_ID, 0, 0);
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
                invalidate(l, p);
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

static void op_init(void *userdata, struct fuse_conn_info *conn) {
        struct lfs *l = userdata;
        (void) conn;
        soc_status(l, 1);
        if (pthread_create(&l->heartbeat, NULL, heartbeat, l) == 0)
                l->heartbeat_started = true;
        if (l->cache_timeout > 0 && pthread_create(&l->watcher, NULL, watcher, l) == 0)
                l->watcher_started = true;
}

static void op_destroy(void *userdata) {
        struct lfs *l = userdata;
        pthread_mutex_lock(&l->hb_lock);
        l->stopping = true;
        pthread_cond_broadcast(&l->hb_cond);
        librarian_shutdown(l->watch);
        pthread_mutex_unlock(&l->hb_lock);
        if (l->heartbeat_started)
                pthread_join(l->heartbeat, NULL);
        if (l->watcher_started)
                pthread_join(l->watcher, NULL);
        soc_status(l, 0);
}

/* "vport:/dev/vportNpM" for the node's port named FAME_LIBRARIAN_VPORT_NAME, found in sysfs
 * (the kernel makes the device node; udev's /dev/virtio-ports/ link may come later): 0, or
 * -ENOENT when the node has no such port. */
static int find_vport(char *buf, size_t size) {
        DIR *d = opendir("/sys/class/virtio-ports");
        int r = -ENOENT;
        for (struct dirent *e; d && r < 0 && (e = readdir(d)); ) {
                char path[512], name[128] = "";
                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
                FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                if (fgets(name, sizeof name, f) && (name[strcspn(name, "\n")] = 0, strcmp(name, FAME_LIBRARIAN_VPORT_NAME) == 0)) {
                        snprintf(buf, size, "vport:/dev/%s", e->d_name);
                        r = 0;
                }
                fclose(f);
        }
        if (d)
                closedir(d);
        return r;
}

static int prepare(struct lfs *l, const struct lfs_options *o) {
        struct json_object *stats = NULL;
        int r;

        r = fame_open(o->fam, FAME_OPEN_NOREGISTER | FAME_OPEN_LAZY, &l->fam);
        if (r < 0)
                return log_error_errno(r, "fame-lfs: cannot map FAM%s%s: %m", o->fam ? " " : "", o->fam ? o->fam : "");
        /* in a node whose QEMU carries the Librarian's virtio-serial port, the mount's own
         * requests take it (a few times faster than TCP through slirp); its watcher and the
         * relay for other users stay on TCP (a port has one user) */
        char port[300];
        if (!o->librarian && find_vport(port, sizeof port) == 0) {
                r = fame_librarian_connect(port, &l->lib);
                if (r < 0)
                        log_warning("fame-lfs: the Librarian's port %s did not answer (%s): using the network", port + 6,
                                    strerror(-r));
                else
                        l->via_port = true;
        }
        r = l->lib ? 0 : fame_librarian_connect(o->librarian, &l->lib);
        if (r < 0)
                return log_error_errno(r, "fame-lfs: cannot reach the Librarian%s%s: %m", o->librarian ? " at " : "",
                                       o->librarian ? o->librarian : "");
        l->node = o->node ? o->node : fame_librarian_node_id(fame_get_geometry(l->fam), fame_node_id(l->fam));
        if (l->node)
                fame_librarian_set_node(l->lib, l->node);
        /* A restarted Librarian is waited for, and the open files' handles survive it: the
         * connection reclaims every handle it holds (fame_reclaim_shelf) as soon as it reconnects,
         * before the request that reconnected, and the heartbeat reconnects an idle mount within
         * the Librarian's grace period (docs/librarian-protocol.md, "Open handles"). */
        librarian_set_restart_wait(l->lib, LFS_RESTART_WAIT_SECONDS);
        uint64_t tag[2];
        if (getrandom(tag, sizeof tag, 0) != sizeof tag)
                return log_error_errno(-EIO, "fame-lfs: no random numbers for this mount's tag: %m");
        snprintf(l->origin, sizeof l->origin, "%016" PRIx64 "%016" PRIx64, tag[0], tag[1]);
        if (o->cache_timeout > 0)
                librarian_set_origin(l->lib, l->origin);
        r = librarian_get_fs_stats(l->lib, &stats);
        l->stats = stats;
        if (r < 0)
                return log_error_errno(r, "fame-lfs: the Librarian at %s: %s", librarian_address(l->lib),
                                       fame_librarian_error(l->lib));
        l->book_size = (uint64_t) member(stats, "book_size_bytes");
        const struct fame_geometry *geo = fame_get_geometry(l->fam);
        if (member(stats, "BIImode") != 0 || l->book_size != geo->book_size)
                return log_error_errno(-EINVAL, "fame-lfs: the Librarian at %s serves another FAM (book size %" PRIu64 ", this FAM's %" PRIu64 ")",
                                       librarian_address(l->lib), l->book_size, geo->book_size);
        l->book_area = geo->book_area_offset;
        /* what the mmap shim opens: BAR2's resource2 in a node, the FAM file on the host */
        const char *src = fame_source_path(l->fam);
        l->bounce = strcmp(fame_source_kind(l->fam), "pci") == 0;
        if (strcmp(fame_source_kind(l->fam), "pci") == 0 && !strstr(src, "resource2")) {
                l->source_buf = strf("%s/resource2", src);
                if (!l->source_buf)
                        return -ENOMEM;
                src = l->source_buf;
        }
        l->source = src;
        return 0;
}

int lfs_run(const struct lfs_options *o) {
        struct lfs l = { .lock = PTHREAD_MUTEX_INITIALIZER, .hb_lock = PTHREAD_MUTEX_INITIALIZER,
                         .hb_cond = PTHREAD_COND_INITIALIZER };
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        struct fuse_session *se = NULL;
        struct relay *relay = NULL;
        int r;

        l.cache_timeout = o->cache_timeout;
        l.address = o->librarian;
        l.inodes = inodes_new();
        if (!l.inodes || (l.cache_timeout > 0 && !(l.dirs = dircache_new(l.cache_timeout, dircache_fill, &l)))) {
                r = log_error_errno(-ENOMEM, "fame-lfs: out of memory");
                goto out;
        }
        /* write(2) goes through buffers of up to 1 MiB that libfuse allocates for each request:
         * from the heap, kept, rather than mapped and faulted in every time (read(2) is
         * answered from FAM itself) */
        mallopt(M_MMAP_THRESHOLD, 4 << 20);
        mallopt(M_TRIM_THRESHOLD, 64 << 20);
        r = prepare(&l, o);
        if (r < 0)
                goto out;
        log_info("fame-lfs: the Librarian at %s", librarian_address(l.lib));
        fuse_opt_add_arg(&args, "fame-lfs");
        fuse_opt_add_arg(&args, "-o");
        /* caching, the kernel checks permissions against the attributes it holds (the
         * Librarian still checks every change) */
        fuse_opt_add_arg(&args, getuid() == 0 ? "fsname=lfs,subtype=fame,allow_other,noatime" : "fsname=lfs,subtype=fame,noatime");
        if (l.cache_timeout > 0) {
                fuse_opt_add_arg(&args, "-o");
                fuse_opt_add_arg(&args, "default_permissions");
        }
        if (o->debug)
                fuse_opt_add_arg(&args, "-d");
        struct fuse_lowlevel_ops ops = lfs_ops;
        ops.init = op_init;
        ops.destroy = op_destroy;
        se = fuse_session_new(&args, &ops, sizeof ops, &l);
        if (!se) {
                r = log_error_errno(-EINVAL, "fame-lfs: fuse_session_new failed");
                goto out;
        }
        l.se = se;
        if (fuse_session_mount(se, o->mountpoint) != 0) {
                r = log_error_errno(-EIO, "fame-lfs: cannot mount %s (is /dev/fuse there and the fuse module loaded?)", o->mountpoint);
                goto out_destroy;
        }
        /* the relay's socket exists before this process counts as started (a Debian node's
         * fame-lfs.service is Type=forking): a caller then never finds it missing */
        if (o->relay) {
                if (strncmp(librarian_address(l.lib), "unix:", 5) == 0) {
                        r = log_error_errno(-EINVAL, "fame-lfs: --relay: this fame-lfs reaches the Librarian through "
                                            "%s itself; run it as root", librarian_address(l.lib));
                        goto out_unmount;
                }
                /* the relay's own connections go over TCP, as the node (the port has one user:
                 * this mount's connection): what a connection there would use */
                struct fame_librarian *tcp = NULL;
                if (l.via_port && (r = fame_librarian_connect(o->librarian, &tcp)) < 0) {
                        log_error_errno(r, "fame-lfs: --relay: cannot reach the Librarian over TCP for the relay: %m");
                        goto out_unmount;
                }
                const struct fame_librarian *up = tcp ? tcp : l.lib;
                r = relay_listen(o->relay, librarian_address(up), librarian_secret(up), &relay);
                fame_librarian_disconnect(tcp);
                if (r < 0)
                        goto out_unmount;
        }
        if (fuse_set_signal_handlers(se) != 0) {
                r = -EIO;
                goto out_unmount;
        }
        if (!o->foreground && fuse_daemonize(0) != 0) {
                r = -EIO;
                goto out_signals;
        }
        /* serving after daemonising: the relay's threads must live in the daemon */
        if (relay) {
                r = relay_run(relay);
                if (r < 0)
                        goto out_signals;
        }
        if (o->ready_file)
                (void) write_file_atomic(o->ready_file, 0644, "ready\n", 6);
        struct fuse_loop_config *cfg = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(cfg, 0);
        fuse_loop_cfg_set_max_threads(cfg, 16);
        r = fuse_session_loop_mt(se, cfg) == 0 ? 0 : -EIO;
        fuse_loop_cfg_destroy(cfg);
out_signals:
        fuse_remove_signal_handlers(se);
out_unmount:
        relay_stop(relay);
        fuse_session_unmount(se);
out_destroy:
        fuse_session_destroy(se);
out:
        fuse_opt_free_args(&args);
        fame_librarian_disconnect(l.lib);
        fame_close(l.fam);
        json_object_put(l.stats);
        free(l.source_buf);
        dircache_free(l.dirs);
        inodes_free(l.inodes);
        return r;
}
