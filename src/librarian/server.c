/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"
#include "fame.h"
#include "lmp.h"
#include "log.h"
#include "macro.h"
#include "proto.h"
#include "server.h"
#include "util.h"

#include "server-internal.h"

#define ZERO_CHUNK (1u << 20)

/* ---------------------------------------------------------------------------------------- */
/* zeroing */

/* Zeroes [offset, offset+len) of the FAM file: punching a hole frees the memory and makes
 * every mapping (QEMU's too) read zeros; where the file system cannot, zeros are written. */
int zero_range(int fd, uint64_t offset, uint64_t len) {
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) len) == 0)
                return 0;
        if (errno != EOPNOTSUPP && errno != ENOSYS)
                return negative_errno();
        static const char zeros[ZERO_CHUNK];
        for (uint64_t done = 0; done < len; ) {
                size_t n = len - done < ZERO_CHUNK ? (size_t) (len - done) : ZERO_CHUNK;
                ssize_t k = pwrite(fd, zeros, n, (off_t) (offset + done));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                done += (uint64_t) k;
        }
        return 0;
}

/* The server wrote [offset, offset+len) of the FAM file itself: the checker, when the cluster
 * runs with it, learns that memory holds those bytes now and no node's copy is current.  Lock-free
 * (check.h): safe from the zeroer and the poll loop at once. */
void host_wrote(struct server *s, uint64_t offset, uint64_t len) {
        if (!s->check)
                return;
        int r = check_host_wrote(s->check, offset, len);
        if (r < 0)
                log_warning("Librarian: the checker could not record the zeroing of [%#llx, +%#llx): %s",
                            (unsigned long long) offset, (unsigned long long) len, strerror(-r));
}

static void *zeroer(void *userdata) {
        struct server *s = userdata;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                while (!s->quit && s->n_todo == 0)
                        pthread_cond_wait(&s->cond, &s->lock);
                if (s->quit)
                        break;
                struct job j = s->todo[--s->n_todo];
                pthread_mutex_unlock(&s->lock);

                int r = s->fam_fd >= 0 ? zero_range(s->fam_fd, j.offset, s->geo.book_size) : 0;
                if (r >= 0 && s->fam_fd >= 0)
                        host_wrote(s, j.offset, s->geo.book_size);

                pthread_mutex_lock(&s->lock);
                if (r < 0) {
                        /* the book stays ZOMBIE, never handed out unzeroed; tried again later */
                        s->zero_error = r;
                        __atomic_add_fetch(&s->stats.zero_failures, 1, __ATOMIC_RELAXED);
                        if (s->n_failed == s->allocated_failed) {
                                size_t na = s->allocated_failed ? s->allocated_failed * 2 : 64;
                                uint64_t *nf = realloc(s->failed, na * sizeof *nf);
                                if (!nf)
                                        continue;       /* stays in flight until the next start */
                                s->failed = nf;
                                s->allocated_failed = na;
                        }
                        s->failed[s->n_failed++] = j.id;
                        char c = 1;
                        (void) !write(s->wake[1], &c, 1);
                        continue;
                }
                if (s->n_done == s->allocated_done) {
                        size_t na = s->allocated_done ? s->allocated_done * 2 : 64;
                        uint64_t *nd = realloc(s->done, na * sizeof *nd);
                        if (!nd) {
                                s->zero_error = -ENOMEM;
                                continue;
                        }
                        s->done = nd;
                        s->allocated_done = na;
                }
                s->done[s->n_done++] = j.id;
                __atomic_add_fetch(&s->stats.zeroed, 1, __ATOMIC_RELAXED);
                char c = 1;
                (void) !write(s->wake[1], &c, 1);
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

/* Hands newly freed books to the zeroer. */
int queue_zombies(struct server *s) {
        _cleanup_free_ uint64_t *ids = NULL;
        size_t n = 0;
        int r;

        r = engine_take_zombies(s->engine, &ids, &n);
        if (r < 0 || n == 0)
                return r;
        pthread_mutex_lock(&s->lock);
        if (s->n_todo + n > s->allocated_todo) {
                size_t na = (s->n_todo + n) * 2;
                struct job *nt = realloc(s->todo, na * sizeof *nt);
                if (!nt) {
                        pthread_mutex_unlock(&s->lock);
                        return -ENOMEM;
                }
                s->todo = nt;
                s->allocated_todo = na;
        }
        for (size_t i = 0; i < n; i++) {
                uint64_t off = 0;
                if (s->fam_fd >= 0 && engine_book_offset(s->engine, ids[i], &off) < 0) {
                        log_warning("Librarian: book %#llx has no FAM offset; it stays a zombie",
                                    (unsigned long long) ids[i]);
                        continue;
                }
                s->todo[s->n_todo++] = (struct job) { ids[i], s->book_area_offset + off };
        }
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

int collect_zeroed(struct server *s) {
        char buf[256];
        _cleanup_free_ uint64_t *ids = NULL, *failed = NULL;
        size_t n, n_failed;
        int err;

        while (read(s->wake[0], buf, sizeof buf) > 0)
                ;
        pthread_mutex_lock(&s->lock);
        ids = s->done;
        n = s->n_done;
        s->done = NULL;
        s->n_done = s->allocated_done = 0;
        failed = s->failed;
        n_failed = s->n_failed;
        s->failed = NULL;
        s->n_failed = s->allocated_failed = 0;
        err = s->zero_error;
        s->zero_error = 0;
        pthread_mutex_unlock(&s->lock);
        if (err < 0)
                log_error("Librarian: zeroing %zu book(s) in '%s' failed: %s; they stay reserved and are tried again",
                          n_failed, s->opt.fam_path, strerror(-err));
        if (n_failed) {
                engine_release_zombies(s->engine, failed, n_failed);
                s->retry_at = now_seconds() + 1;
        }
        if (n == 0)
                return 0;
        int r = engine_books_zeroed(s->engine, ids, n);
        if (r < 0) {
                __atomic_add_fetch(&s->stats.mark_failures, 1, __ATOMIC_RELAXED);
                log_warning("Librarian: could not mark %zu zeroed books free (%s); trying again", n, strerror(-r));
                s->retry_at = now_seconds() + 1;
        }
        return r;
}

/* A truncation's pending zeroing (engine_pending_tails): the range is zeroed, then its record
 * deleted.  Without a FAM nothing can be zeroed (as for freed books): the record goes. */
void zero_tail(struct server *s, const struct engine_tail *t) {
        int k = 0;

        if (s->fam_fd >= 0) {
                uint64_t off;
                k = engine_book_offset(s->engine, t->book, &off);
                if (k >= 0)
                        k = zero_range(s->fam_fd, s->book_area_offset + off + t->from, t->len);
                if (k >= 0)
                        host_wrote(s, s->book_area_offset + off + t->from, t->len);
        }
        if (k < 0) {
                /* the record stays: the next start tries again (unless the shelf grew over it) */
                log_error("Librarian: zeroing the end of book %#llx failed: %s",
                          (unsigned long long) t->book, strerror(-k));
                return;
        }
        k = engine_tail_zeroed(s->engine, t->shelf, t->book, t->from);
        if (k < 0)
                log_warning("Librarian: the end of book %#llx is zeroed but its record stays (%s); "
                            "it is zeroed again at the next start", (unsigned long long) t->book, strerror(-k));
}

/* Truncations whose zeroing a crash interrupted: redone before anything is served. */
static int redo_tails(struct server *s, char **ret_error) {
        _cleanup_free_ struct engine_tail *t = NULL;
        size_t n = 0;
        int r;

        r = engine_pending_tails(s->engine, &t, &n);
        if (r < 0)
                return set_message(ret_error, "Failed to read the pending zeroings of '%s': %s", s->opt.db_path,
                                   strerror(-r)), r;
        for (size_t i = 0; i < n; i++)
                zero_tail(s, &t[i]);
        if (n)
                log_info("Librarian: redid %zu zeroing(s) of truncated books interrupted by the last stop", n);
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* set-up */

static int open_fam(struct server *s, char **ret_error) {
        struct fame_geometry g;
        int r;

        r = fame_file_inspect(s->opt.fam_path, &g);
        if (r < 0)
                return set_message(ret_error, "Cannot use FAM '%s': %s; check --fam", s->opt.fam_path, strerror(-r)), r;
        if (s->geo.bii_mode != 0)
                return set_message(ret_error, "The database has a PHYSADDR topology, which has no place in a FAM file; "
                               "serve it without --fam"), -EINVAL;
        if (g.book_size != s->geo.book_size)
                return set_message(ret_error, "The database has %llu-byte books but FAM '%s' has %llu-byte books; "
                               "initialise the database from this FAM's topology",
                               (unsigned long long) s->geo.book_size, s->opt.fam_path,
                               (unsigned long long) g.book_size), -EINVAL;
        if (s->geo.nvm_bytes_total > g.books_total * g.book_size)
                return set_message(ret_error, "The database describes %llu bytes of books but FAM '%s' has room for "
                               "%llu; use a larger FAM or a smaller topology",
                               (unsigned long long) s->geo.nvm_bytes_total, s->opt.fam_path,
                               (unsigned long long) (g.books_total * g.book_size)), -EINVAL;
        s->fam_fd = open(s->opt.fam_path, O_RDWR | O_CLOEXEC);
        if (s->fam_fd < 0)
                return r = negative_errno(), set_message(ret_error, "Failed to open FAM '%s': %s", s->opt.fam_path,
                                                     strerror(-r)), r;
        s->book_area_offset = g.book_area_offset;
        s->fam_size = g.total_size;
        return 0;
}

/* The secrets of the main port and of every pinned one, made where missing. */
static int load_secrets(struct server *s, char **ret_error) {
        struct stat st;
        char path[PATH_MAX];
        int r;

        if (s->opt.trust_clients)
                return 0;
        if (s->opt.secrets_dir ? !(s->secrets_dir = strdup(s->opt.secrets_dir))
                               : asprintf(&s->secrets_dir, "%s.secrets", s->opt.db_path) < 0) {
                s->secrets_dir = NULL;
                return -ENOMEM;
        }
        if (mkdir(s->secrets_dir, 0700) < 0 && errno != EEXIST)
                return r = negative_errno(), set_message(ret_error, "Cannot create the secrets directory %s: %s",
                                                         s->secrets_dir, strerror(-r)), r;
        if (stat(s->secrets_dir, &st) < 0)
                return r = negative_errno(), set_message(ret_error, "Cannot use the secrets directory %s: %s",
                                                         s->secrets_dir, strerror(-r)), r;
        if (!S_ISDIR(st.st_mode))
                return set_message(ret_error, "The secrets directory %s is not a directory; give --secrets DIR",
                                   s->secrets_dir), -ENOTDIR;
        if (st.st_mode & 077)
                return set_message(ret_error, "The secrets directory %s is open to other users (mode %03o): "
                                   "chmod 700 %s", s->secrets_dir, (unsigned) (st.st_mode & 0777), s->secrets_dir),
                       -EPERM;
        for (size_t i = 0; i <= s->opt.n_pins; i++) {
                uint32_t node = i ? s->opt.pins[i - 1].node_id : 0;
                r = librarian_secret_path(s->secrets_dir, node, path, sizeof path);
                if (r >= 0)
                        r = librarian_secret_ensure(path, s->secrets[i]);
                if (r < 0) {
                        set_message(ret_error, "Cannot read or make the secret %s: %s%s", path, strerror(-r),
                                    r == -EBADMSG ? " (it must hold 64 hex digits; remove it to make a new one)" : "");
                        return r;
                }
        }
        return 0;
}

const char *server_secrets_dir(const struct server *s) {
        return s->secrets_dir;
}

/* Whether node is in the database's topology. */
static bool node_known(struct engine *e, uint32_t node) {
        const uint32_t *ids;
        size_t n = engine_node_ids(e, &ids);
        for (size_t k = 0; k < n; k++)
                if (ids[k] == node)
                        return true;
        return false;
}

int server_new(const struct server_options *o, struct server **ret, char **ret_error) {
        struct server *s = calloc(1, sizeof *s);
        int r;

        if (!s)
                return -ENOMEM;
        s->opt = *o;
        if (!s->opt.bind)
                s->opt.bind = "127.0.0.1";
        if (!s->opt.max_per_peer)
                s->opt.max_per_peer = SERVER_MAX_PER_PEER;
        if (!(s->opt.idle_timeout > 0))
                s->opt.idle_timeout = SERVER_IDLE_TIMEOUT;
        if (!s->opt.max_output)
                s->opt.max_output = SERVER_MAX_OUTPUT;
        if (s->opt.handle_grace == 0)
                s->opt.handle_grace = SERVER_HANDLE_GRACE;
        s->fam_fd = s->lock_fd = -1;
        s->started = now_seconds();
        s->wake[0] = s->wake[1] = -1;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        /* before engine_open(), which takes the open handles of the database from whoever
         * served it (they wait for their clients to reclaim them) */
        r = librarian_db_lock(o->db_path, &s->lock_fd, ret_error);
        if (r < 0)
                goto fail;
        /* exclusive: no file locks per transaction, the WAL index in heap memory; safe, since
         * the flock above keeps every other Librarian out, and other readers go through us */
        r = engine_open_flags(o->db_path, ENGINE_OPEN_EXCLUSIVE, &s->engine, ret_error);
        if (r < 0)
                goto fail;
        /* one fdatasync per round of the loop, before its replies (server-conn.c) */
        if (engine_set_group_sync(s->engine, true) < 0)
                log_debug("Librarian: no group sync; each commit is synced on its own");
        engine_set_sync_each_change(s->engine, o->sync_each_change);
        engine_get_geometry(s->engine, &s->geo);
        if (o->fam_path) {
                r = open_fam(s, ret_error);
                if (r < 0)
                        goto fail;
        }
        if (o->check_state) {
                if (!o->fam_path) {
                        set_message(ret_error, "--check-state %s: the checker follows a FAM file: give --fam too", o->check_state);
                        r = -EINVAL;
                        goto fail;
                }
                r = check_open(o->check_state, o->fam_path, &s->check);
                if (r < 0) {
                        set_message(ret_error, "Cannot open the checker's state in %s/%s for FAM '%s': %s; start the cluster with fame up --check",
                                    o->check_state, CHECK_DIR, o->fam_path, strerror(-r));
                        goto fail;
                }
        }
        /* after open_fam() and check_open(): the zeroing is told to the checker */
        r = redo_tails(s, ret_error);
        if (r < 0)
                goto fail;
        size_t unclaimed = 0;
        if (s->opt.handle_grace < 0)
                r = engine_drop_unclaimed_handles(s->engine, NULL);
        else
                r = engine_unclaimed_handles(s->engine, &unclaimed);
        if (r < 0) {
                set_message(ret_error, "Failed to read the open handles of '%s': %s", o->db_path, strerror(-r));
                goto fail;
        }
        if (unclaimed) {
                s->unclaimed_until = now_seconds() + s->opt.handle_grace;
                log_info("Librarian: %zu open handle(s) of the previous run wait %.0f s for their clients to reclaim them",
                         unclaimed, s->opt.handle_grace);
        }
        for (size_t i = 0; i < o->n_pins + o->n_sockets; i++) {
                uint32_t node = i < o->n_pins ? o->pins[i].node_id : o->sockets[i - o->n_pins].node_id;
                if (node_known(s->engine, node))
                        continue;
                if (i < o->n_pins)
                        set_message(ret_error, "--node-port %u=%u: node %u is not in the Librarian's topology", node,
                                    o->pins[i].port, node);
                else
                        set_message(ret_error, "--node-socket %u=%s: node %u is not in the Librarian's topology", node,
                                    o->sockets[i - o->n_pins].path, node);
                r = -EINVAL;
                goto fail;
        }
        r = load_secrets(s, ret_error);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        server_free(s);
        return r;
}

static int listen_on(const char *bind_addr, uint16_t port, int *ret_fd, uint16_t *ret_port, char **ret_error) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        socklen_t len = sizeof sa;
        int one = 1, r;

        if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1)
                return set_message(ret_error, "--bind %s: not an IPv4 address", bind_addr), -EINVAL;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                r = negative_errno();
                return set_message(ret_error, "Failed to listen on %s:%u: %s%s", bind_addr, port, strerror(-r),
                               r == -EADDRINUSE ? "; another Librarian may be running, or pick another --port" : ""), r;
        }
        if (listen(fd, 64) < 0 || getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return negative_errno();
        *ret_port = ntohs(sa.sin_port);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int server_write_port(const char *path, uint16_t port, char **ret_error) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%u\n", port);
        int r = write_file_atomic(path, 0644, buf, (size_t) n);
        if (r < 0)
                return set_message(ret_error, "Failed to write '%s': %s", path, strerror(-r)), r;
        return 0;
}

static void http_counters(void *userdata, struct lmp_counters *ret) {
        const struct server *s = userdata;
        double now = now_seconds();
        int64_t sec = (int64_t) now;
        uint64_t recent = 0;
        for (size_t i = 0; i < SERVER_RATE_SECONDS; i++)
                if (s->rate_second[i] > sec - SERVER_RATE_SECONDS && s->rate_second[i] <= sec)
                        recent += s->rate_count[i];
        double span = now - s->started < SERVER_RATE_SECONDS ? now - s->started : SERVER_RATE_SECONDS;
        *ret = (struct lmp_counters) {
                .uptime_s = now - s->started,
                .connections = s->n_clients,
                .requests_total = s->requests,
                .requests_per_second = span > 0 ? (double) recent / span : 0,
        };
}

/* The checker's findings for the management view (docs/check.md has their fields). */
static struct json_object *http_findings(void *userdata) {
        struct server *s = userdata;
        struct check_report rep = { 0 };
        errno = 0;
        if (!s->check)
                return NULL;
        int r = check_read_findings(s->check, &rep);
        if (r < 0) {
                errno = -r;
                return NULL;
        }
        struct json_object *o = json_object_new_object(), *a = json_object_new_array();
        for (size_t i = 0; o && a && i < rep.n; i++) {
                const struct check_finding *f = &rep.f[i];
                struct json_object *x = json_object_new_object();
                json_object_object_add(x, "kind", json_object_new_string(check_kind_name(f->kind)));
                json_object_object_add(x, "what", json_object_new_string(check_kind_words(f->kind)));
                json_object_object_add(x, "a_node", json_object_new_int(f->node_a));
                json_object_object_add(x, "b_node", json_object_new_int(f->node_b));
                json_object_object_add(x, "b_store", json_object_new_boolean(f->b_store));
                json_object_object_add(x, "fam_offset", json_object_new_int64((int64_t) f->fam_offset));
                json_object_object_add(x, "count", json_object_new_int64((int64_t) f->count));
                json_object_object_add(x, "first", json_object_new_double((double) f->first_ns / 1e9));
                json_object_array_add(a, x);
        }
        if (o && a) {
                json_object_object_add(o, "findings", a);
                json_object_object_add(o, "overflow", json_object_new_int64((int64_t) rep.overflow));
        } else {
                json_object_put(o);
                json_object_put(a);
                o = NULL;
                errno = ENOMEM;
        }
        check_report_done(&rep);
        return o;
}

/* The management view (src/lmp): served from this poll loop, so the engine needs no lock. */
static int start_http(struct server *s, char **ret_error) {
        int r;
        /* the node slots, read-only: what each node says of itself */
        if (s->opt.fam_path && (r = fame_open(s->opt.fam_path, FAME_OPEN_RDONLY, &s->fam)) < 0)
                return set_message(ret_error, "Cannot map FAM '%s' for the management view: %s", s->opt.fam_path, strerror(-r)), r;
        struct lmp_options o = { .bind = s->opt.http_bind, .port = s->opt.http_port };
        struct lmp_source src = {
                .views = &engine_views, .engine = s->engine, .fam = s->fam, .cluster = s->opt.cluster_name, .state_dir = s->opt.cluster_state,
                .counters = http_counters, .findings = http_findings, .userdata = s,
        };
        r = lmp_new(&o, &src, &s->lmp, ret_error);
        if (r < 0)
                return r;
        if (s->opt.http_port_file && (r = server_write_port(s->opt.http_port_file, lmp_port(s->lmp), ret_error)) < 0)
                return r;
        return 0;
}

/* A unix socket at path, mode 0600 (its directory's permissions aside): a stale socket there
 * (a killed Librarian's) is replaced, anything else is left alone and refused. */
static int listen_unix(const char *path, struct listener *l, char **ret_error) {
        struct sockaddr_un su = { .sun_family = AF_UNIX };
        struct stat st;
        int r;

        if (!*path || strlen(path) >= sizeof su.sun_path)
                return set_message(ret_error, "--node-socket %s: a socket path must have 1 to %zu bytes; choose a shorter one",
                                   path, sizeof su.sun_path - 1), -ENAMETOOLONG;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return set_message(ret_error, "--node-socket %s: it exists and is not a socket; remove it or choose another path",
                                           path), -EEXIST;
                if (unlink(path) < 0 && errno != ENOENT)
                        return r = negative_errno(), set_message(ret_error, "--node-socket %s: cannot replace the old socket: %s",
                                                                 path, strerror(-r)), r;
        }
        strcpy(su.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        /* the server is single-threaded here: the umask bounds the mode from the start */
        mode_t old = umask(0177);
        r = bind(fd, (struct sockaddr *) &su, sizeof su) < 0 ? negative_errno() : 0;
        umask(old);
        if (r < 0)
                return set_message(ret_error, "--node-socket %s: cannot listen there: %s", path, strerror(-r)), r;
        if (listen(fd, 16) < 0 || stat(path, &st) < 0)
                return negative_errno();
        l->path = path;
        l->dev = st.st_dev;
        l->ino = st.st_ino;
        l->fd = TAKE_FD(fd);
        return 0;
}

int server_start(struct server *s, char **ret_error) {
        int r;

        r = listen_on(s->opt.bind, s->opt.port, &s->listeners[0].fd, &s->listeners[0].port, ret_error);
        if (r < 0)
                return r;
        s->n_listeners = 1;
        s->listeners[0].secret = s->secrets_dir ? s->secrets[0] : NULL;
        for (size_t i = 0; i < s->opt.n_pins; i++) {
                struct listener *l = &s->listeners[s->n_listeners];
                r = listen_on(s->opt.bind, s->opt.pins[i].port, &l->fd, &l->port, ret_error);
                if (r < 0)
                        return r;
                l->pinned = s->opt.pins[i].node_id;
                l->secret = s->secrets_dir ? s->secrets[i + 1] : NULL;
                s->n_listeners++;
        }
        for (size_t i = 0; i < s->opt.n_sockets; i++) {
                struct listener *l = &s->listeners[s->n_listeners];
                r = listen_unix(s->opt.sockets[i].path, l, ret_error);
                if (r < 0)
                        return r;
                /* only the node's QEMU reaches it, from the node's root: no secret */
                l->pinned = s->opt.sockets[i].node_id;
                s->n_listeners++;
                log_info("Librarian: listening for node %u on %s", l->pinned, l->path);
        }
        if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0)
                return negative_errno();
        r = -pthread_create(&s->thread, NULL, zeroer, s);
        if (r < 0)
                return set_message(ret_error, "Failed to start the zeroing thread: %s", strerror(-r)), r;
        s->thread_started = true;
        /* books freed before a crash or stop are zeroed now */
        r = queue_zombies(s);
        if (r < 0)
                return set_message(ret_error, "Failed to read the freed books: %s", strerror(-r)), r;
        if (s->opt.http && (r = start_http(s, ret_error)) < 0)
                return r;
        if (s->opt.port_file && (r = server_write_port(s->opt.port_file, s->listeners[0].port, ret_error)) < 0)
                return r;
        return 0;
}

uint16_t server_http_port(const struct server *s) {
        return s->lmp ? lmp_port(s->lmp) : 0;
}

uint16_t server_port(const struct server *s) {
        return s->n_listeners ? s->listeners[0].port : 0;
}

uint16_t server_pin_port(const struct server *s, size_t i) {
        return i < s->opt.n_pins && i + 1 < s->n_listeners ? s->listeners[i + 1].port : 0;
}

void server_set_fail_marks(struct server *s, bool on) {
        engine_set_fail_zeroed(s->engine, on);
}

void server_zeroing_stats(const struct server *s, struct server_zeroing *ret) {
        *ret = (struct server_zeroing) {
                .zeroed = __atomic_load_n(&s->stats.zeroed, __ATOMIC_RELAXED),
                .zero_failures = __atomic_load_n(&s->stats.zero_failures, __ATOMIC_RELAXED),
                .mark_failures = __atomic_load_n(&s->stats.mark_failures, __ATOMIC_RELAXED),
        };
}

void server_free(struct server *s) {
        if (!s)
                return;
        if (s->thread_started) {
                pthread_mutex_lock(&s->lock);
                s->quit = true;
                pthread_cond_signal(&s->cond);
                pthread_mutex_unlock(&s->lock);
                pthread_join(s->thread, NULL);
                /* what the zeroer finished is recorded; the rest is redone at the next start */
                if (s->n_done)
                        collect_zeroed(s);
        }
        for (size_t i = 0; i < s->n_clients; i++)
                client_free(s->clients[i]);
        for (size_t i = 0; i < s->n_listeners; i++) {
                struct listener *l = &s->listeners[i];
                struct stat st;
                if (l->fd >= 0)
                        close(l->fd);
                /* a newer Librarian's socket there stays */
                if (l->path && lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
                        (void) unlink(l->path);
        }
        if (s->wake[0] >= 0)
                close(s->wake[0]);
        if (s->wake[1] >= 0)
                close(s->wake[1]);
        lmp_free(s->lmp);
        fame_close(s->fam);
        if (s->fam_fd >= 0)
                close(s->fam_fd);
        if (s->check)
                check_close(s->check);
        engine_free(s->engine);
        if (s->lock_fd >= 0)
                close(s->lock_fd);
        free(s->secrets_dir);
        explicit_bzero(s->secrets, sizeof s->secrets);
        free(s->todo);
        free(s->done);
        free(s->failed);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
}
