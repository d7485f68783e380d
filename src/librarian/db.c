/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian database: schema (librarian-model.md §2, plus FAM/E's columns and indexes) and
 * its creation from a topology (what tm-book-register does).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "engine.h"
#include "macro.h"
#include "topology.h"
#include "util.h"

/*
 * The tables and columns of the original, in its column order, so that its tools (fsck_lfs,
 * tm-lmp) can read the file.  FAM/E adds, at the end of `shelves`, the owner (uid, gid) for
 * access control, `opened_shelves.fame_conn` (the connection a handle belongs to), a UNIQUE index that makes it impossible for a book to be on two shelves,
 * indexes for lookups by parent and name, the table `fame_settings`, and the table
 * `fame_pending_zero` (the ends of books a truncation cut that are not zeroed yet).
 */
const char librarian_db_schema[] =
        "CREATE TABLE globals (schema_version TEXT, book_size_bytes INT, nvm_bytes_total INT,"
        " books_total INT, nodes_total INT);\n"
        "CREATE TABLE FRDnodes (node_id INTEGER PRIMARY KEY, rack INT, enc INT, node INT,"
        " coordinate TEXT, serialNumber TEXT);\n"
        "CREATE TABLE SOCs (node_id INTEGER PRIMARY KEY, MAC TEXT, status INT, coordinate TEXT,"
        " tlsPublicCertificate TEXT, heartbeat INT, cpu_percent INT, rootfs_percent INT,"
        " network_in INT, network_out INT, mem_percent INT);\n"
        "CREATE TABLE FAModules (node_id INT, IG INT, module_size_books INT, rawCID INT,"
        " status INT, coordinate TEXT, memorySize INT);\n"
        "CREATE TABLE books (id INTEGER PRIMARY KEY, intlv_group INT, book_num INT,"
        " allocated INT, attributes INT);\n"
        "CREATE INDEX IDX_books_allocated ON books (allocated, intlv_group);\n"
        "CREATE TABLE shelves (id INTEGER PRIMARY KEY, creator_id INT, size_bytes INT,"
        " book_count INT, ctime INT, mtime INT, name TEXT, mode INT, parent_id INT,"
        " link_count INT, uid INT DEFAULT 0, gid INT DEFAULT 0);\n"
        "CREATE INDEX IDX_shelves_parent ON shelves (parent_id, name);\n"
        "CREATE TABLE books_on_shelves (shelf_id INT, book_id INT, seq_num INT);\n"
        "CREATE UNIQUE INDEX IDX_bos_book ON books_on_shelves (book_id);\n"
        "CREATE UNIQUE INDEX IDX_bos_shelf ON books_on_shelves (shelf_id, seq_num);\n"
        "CREATE TABLE opened_shelves (id INTEGER PRIMARY KEY, shelf_id INT, node_id INT,"
        " pid INT, fame_conn INT DEFAULT 0);\n"
        "CREATE INDEX IDX_opened_shelf ON opened_shelves (shelf_id);\n"
        "CREATE TABLE shelf_xattrs (shelf_id INT, xattr TEXT, value TEXT);\n"
        "CREATE UNIQUE INDEX IDX_xattrs ON shelf_xattrs (shelf_id, xattr);\n"
        "CREATE TABLE links (shelf_id INT, target TEXT, other TEXT);\n"
        "CREATE TABLE fame_settings (name TEXT PRIMARY KEY, value TEXT);\n"
        FAME_PENDING_ZERO_TABLE ";\n";

static int exec_sql(sqlite3 *db, const char *sql, char **ret_error, const char *path) {
        char *msg = NULL;

        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                set_message(ret_error, "Failed to write the Librarian database '%s': %s", path,
                          msg ? msg : sqlite3_errmsg(db));
                sqlite3_free(msg);
                return -EIO;
        }
        return 0;
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, char **ret_error, const char *path) {
        int r = sqlite3_step(st);

        sqlite3_reset(st);
        if (r != SQLITE_DONE) {
                set_message(ret_error, "Failed to write the Librarian database '%s': %s", path,
                          sqlite3_errmsg(db));
                return -EIO;
        }
        return 0;
}

static int fill(sqlite3 *db, const struct topology *t, const char *path, char **ret_error) {
        sqlite3_stmt *st = NULL;
        _cleanup_free_ struct topology_book *books = NULL;
        size_t n_books = 0;
        int r;

#define PREPARE(sql) do {                                                               \
                sqlite3_finalize(st);                                                   \
                if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {         \
                        set_message(ret_error, "Failed to write the Librarian database '%s': %s", \
                                  path, sqlite3_errmsg(db));                            \
                        r = -EIO;                                                       \
                        goto out;                                                       \
                }                                                                       \
        } while (0)
#define STEP() do { r = step_done(db, st, ret_error, path); if (r < 0) goto out; } while (0)

        PREPARE("INSERT INTO globals VALUES (?, ?, ?, ?, ?)");
        sqlite3_bind_text(st, 1, LIBRARIAN_SCHEMA, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) t->book_size);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) t->nvm_bytes_total);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) t->books_total);
        sqlite3_bind_int64(st, 5, (sqlite3_int64) t->n_nodes);
        STEP();

        PREPARE("INSERT INTO FRDnodes VALUES (?, ?, ?, ?, ?, ?)");
        for (size_t i = 0; i < t->n_nodes; i++) {
                const struct topology_node *n = &t->nodes[i];
                sqlite3_bind_int64(st, 1, n->node_id);
                if (n->rack_name)
                        sqlite3_bind_text(st, 2, n->rack_name, -1, SQLITE_STATIC);
                else
                        sqlite3_bind_int64(st, 2, n->rack);
                sqlite3_bind_int64(st, 3, n->enc);
                sqlite3_bind_int64(st, 4, n->node);
                sqlite3_bind_text(st, 5, n->coordinate, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 6, n->serial, -1, SQLITE_STATIC);
                STEP();
        }

        PREPARE("INSERT INTO SOCs VALUES (?, ?, 0, ?, ?, 0, 0, 0, 0, 0, 0)");
        for (size_t i = 0; i < t->n_nodes; i++) {
                const struct topology_node *n = &t->nodes[i];
                sqlite3_bind_int64(st, 1, n->node_id);
                sqlite3_bind_text(st, 2, n->mac, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, n->soc_coordinate, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, n->tls_certificate, -1, SQLITE_STATIC);
                STEP();
        }

        PREPARE("INSERT INTO FAModules VALUES (?, ?, ?, ?, 0, ?, ?)");
        for (size_t i = 0; i < t->n_nodes; i++) {
                const struct topology_node *n = &t->nodes[i];
                for (size_t m = 0; m < n->n_mcs; m++) {
                        sqlite3_bind_int64(st, 1, n->node_id);
                        sqlite3_bind_int64(st, 2, n->mcs[m].ig);
                        sqlite3_bind_int64(st, 3, (sqlite3_int64) n->mcs[m].module_size_books);
                        sqlite3_bind_int64(st, 4, (sqlite3_int64) n->mcs[m].raw_cid);
                        sqlite3_bind_text(st, 5, n->mcs[m].coordinate, -1, SQLITE_STATIC);
                        sqlite3_bind_int64(st, 6, (sqlite3_int64) n->mcs[m].memory_size);
                        STEP();
                }
        }

        r = topology_books(t, &books, &n_books);
        if (r < 0) {
                set_message(ret_error, "Failed to enumerate the books of the topology: %s", strerror(-r));
                goto out;
        }
        PREPARE("INSERT INTO books VALUES (?, ?, ?, 0, 0)");
        for (size_t i = 0; i < n_books; i++) {
                sqlite3_bind_int64(st, 1, (sqlite3_int64) books[i].id);
                sqlite3_bind_int64(st, 2, books[i].intlv_group);
                sqlite3_bind_int64(st, 3, books[i].book_num);
                STEP();
        }

        {
                time_t now = time(NULL);
                char sql[512];

                snprintf(sql, sizeof sql,
                         "INSERT INTO shelves VALUES (1, 0, 0, 0, %lld, %lld, 'garbage', %d, 0, 0, 0, 0);"
                         "INSERT INTO shelves VALUES (2, 0, 0, 0, %lld, %lld, '.', %d, 2, 3, 0, 0);"
                         "INSERT INTO shelves VALUES (3, 0, 0, 0, %lld, %lld, 'lost+found', %d, 2, 2, 0, 0);",
                         (long long) now, (long long) now, S_IFDIR | 0777,
                         (long long) now, (long long) now, S_IFDIR | 0777,
                         (long long) now, (long long) now, S_IFDIR | 0777);
                r = exec_sql(db, sql, ret_error, path);
        }
out:
        sqlite3_finalize(st);
        return r;
#undef PREPARE
#undef STEP
}

int librarian_db_lock(const char *path, int *ret_fd, char **ret_error) {
        _cleanup_free_ char *lock = NULL;
        char pid[32] = "";
        int fd, r;

        if (asprintf(&lock, "%s.lock", path) < 0)
                return -ENOMEM;
        fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                r = negative_errno();
                set_message(ret_error, "Failed to open the lock file '%s': %s", lock, strerror(-r));
                return r;
        }
        while ((r = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
                ;
        if (r < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : negative_errno();
                if (r == -EBUSY) {
                        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
                        pid[n > 0 ? n : 0] = 0;
                        pid[strcspn(pid, "\n")] = 0;
                        set_message(ret_error, "The Librarian database '%s' is in use by another Librarian "
                                  "(pid %s, lock '%s'); stop that one first (fame down, or kill %s)",
                                  path, *pid ? pid : "?", lock, *pid ? pid : "it");
                } else
                        set_message(ret_error, "Failed to lock '%s': %s", lock, strerror(-r));
                close(fd);
                return r;
        }
        int len = snprintf(pid, sizeof pid, "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t) len, 0) != len) {
                r = negative_errno();
                set_message(ret_error, "Failed to write the pid into '%s': %s", lock, strerror(-r));
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int librarian_db_create(const char *path, const struct topology *t, bool force, char **ret_error) {
        _cleanup_free_ char *tmp = NULL;
        sqlite3 *db = NULL;
        struct stat st;
        int r;

        if (stat(path, &st) == 0 && !force) {
                set_message(ret_error, "The Librarian database '%s' already exists; use --force to "
                          "replace it (every shelf in it is lost)", path);
                return -EEXIST;
        }
        if (asprintf(&tmp, "%s.new-XXXXXX", path) < 0)
                return -ENOMEM;
        {
                int fd = mkstemp(tmp);
                if (fd < 0) {
                        r = negative_errno();
                        set_message(ret_error, "Failed to create '%s': %s", tmp, strerror(-r));
                        return r;
                }
                close(fd);
        }
        if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
                set_message(ret_error, "Failed to open '%s' with SQLite: %s", tmp,
                          db ? sqlite3_errmsg(db) : "out of memory");
                r = -EIO;
                goto fail;
        }
        r = exec_sql(db, "PRAGMA journal_mode=DELETE; BEGIN;", ret_error, path);
        if (r >= 0)
                r = exec_sql(db, librarian_db_schema, ret_error, path);
        if (r >= 0)
                r = fill(db, t, path, ret_error);
        if (r >= 0)
                r = exec_sql(db, "COMMIT; PRAGMA journal_mode=WAL;", ret_error, path);
        if (r < 0)
                goto fail;
        if (sqlite3_close(db) != SQLITE_OK) {
                db = NULL;
                set_message(ret_error, "Failed to close '%s'", tmp);
                r = -EIO;
                goto fail;
        }
        db = NULL;
        /* the old database's -wal and -shm would be replayed into the new one */
        r = sqlite_files_unlink_journal(path);
        if (r < 0) {
                set_message(ret_error, "Failed to remove the old journal (-wal, -shm) of '%s': %s; "
                          "remove them by hand", path, strerror(-r));
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                set_message(ret_error, "Failed to rename '%s' to '%s': %s", tmp, path, strerror(-r));
                goto fail;
        }
        return 0;
fail:
        if (db)
                sqlite3_close(db);
        unlink(tmp);
        (void) sqlite_files_unlink_journal(tmp);
        return r;
}

/*
 * The server's VFS: the default one, except that the writes to a WAL file are gathered and
 * reach the file as one write.  SQLite writes each WAL frame as two writes (a 24-byte header,
 * then the page), so a transaction that changes 5 pages cost 10 pwrite() calls; now it costs
 * one.  Gathered bytes are written before anything that could look at the file: a read, a sync,
 * a truncation, its size, a file control and its close.  Committed frames become visible to
 * other connections only after the commit's sync (synchronous=FULL, which the engine sets:
 * sqlite3WalFrames syncs before it publishes the new wal-index header), so no reader ever
 * misses a gathered write, and a kill -9 loses only frames of a transaction that had not
 * committed.
 */
struct gather_file {
        sqlite3_file base;
        sqlite3_file *real;
        bool is_wal;
        bool defer;             /* group sync: a commit's sync waits for librarian_db_sync() */
        bool written;           /* written since the last sync */
        bool sync_pending;      /* a deferred sync */
        unsigned char *buf;
        size_t len, cap;
        sqlite3_int64 off;      /* file offset of buf[0] */
};

#define GATHER_MAX (4u << 20)   /* larger runs are written as they come */
#define GATHER_CHUNK (64u << 10)        /* one write of a gathered run (see gather_flush()) */

static sqlite3_vfs gather_vfs;

static int gather_flush(struct gather_file *g) {
        int r;

        if (g->len == 0)
                return SQLITE_OK;
        /* SQLite's unix VFS writes at most 128 KiB per call (seekAndWriteFd() masks the length
         * with 0x1ffff: a larger write is cut short, and a multiple of 128 KiB is SQLITE_FULL),
         * so a long run goes out in pieces below that */
        r = SQLITE_OK;
        for (size_t done = 0; done < g->len && r == SQLITE_OK; ) {
                size_t n = g->len - done < GATHER_CHUNK ? g->len - done : GATHER_CHUNK;
                r = g->real->pMethods->xWrite(g->real, g->buf + done, (int) n, g->off + (sqlite3_int64) done);
                done += n;
        }
        g->len = 0;
        return r;
}

static int gather_close(sqlite3_file *f) {
        struct gather_file *g = (struct gather_file *) f;
        int r = gather_flush(g), k;

        if (r == SQLITE_OK && g->sync_pending)
                r = g->real->pMethods->xSync(g->real, SQLITE_SYNC_NORMAL);

        k = g->real->pMethods->xClose(g->real);
        free(g->buf);
        g->buf = NULL;
        g->cap = 0;
        return r != SQLITE_OK ? r : k;
}

static int gather_read(sqlite3_file *f, void *p, int amt, sqlite3_int64 off) {
        struct gather_file *g = (struct gather_file *) f;
        int r = gather_flush(g);

        return r != SQLITE_OK ? r : g->real->pMethods->xRead(g->real, p, amt, off);
}

static int gather_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off) {
        struct gather_file *g = (struct gather_file *) f;
        int r;

        if (!g->is_wal || amt <= 0)
                return g->real->pMethods->xWrite(g->real, p, amt, off);
        g->written = true;
        if (g->len > 0 && (off != g->off + (sqlite3_int64) g->len || g->len + (size_t) amt > GATHER_MAX)) {
                r = gather_flush(g);
                if (r != SQLITE_OK)
                        return r;
        }
        if ((size_t) amt > GATHER_MAX)
                return g->real->pMethods->xWrite(g->real, p, amt, off);
        if (g->len + (size_t) amt > g->cap) {
                size_t cap = g->cap ? g->cap : 64 * 1024;
                while (cap < g->len + (size_t) amt)
                        cap *= 2;
                unsigned char *n = realloc(g->buf, cap);
                if (!n) {
                        r = gather_flush(g);
                        return r != SQLITE_OK ? r : g->real->pMethods->xWrite(g->real, p, amt, off);
                }
                g->buf = n;
                g->cap = cap;
        }
        g->written = true;
        if (g->len == 0)
                g->off = off;
        memcpy(g->buf + g->len, p, (size_t) amt);
        g->len += (size_t) amt;
        return SQLITE_OK;
}

static int gather_truncate(sqlite3_file *f, sqlite3_int64 size) {
        struct gather_file *g = (struct gather_file *) f;
        int r = gather_flush(g);

        return r != SQLITE_OK ? r : g->real->pMethods->xTruncate(g->real, size);
}

/*
 * A sync that follows writes is a commit's (or the header's of a restarted WAL): with group sync
 * it is only noted, and librarian_db_sync() makes it before any reply goes out.  A sync with no
 * write before it (a checkpoint's, before it copies frames into the database) is always made.
 */
static int gather_sync(sqlite3_file *f, int flags) {
        struct gather_file *g = (struct gather_file *) f;
        int r = gather_flush(g);

        if (r != SQLITE_OK)
                return r;
        if (g->is_wal && g->defer && g->written) {
                g->written = false;
                g->sync_pending = true;
                return SQLITE_OK;
        }
        r = g->real->pMethods->xSync(g->real, flags);
        if (r == SQLITE_OK)
                g->written = g->sync_pending = false;
        return r;
}

static int gather_file_size(sqlite3_file *f, sqlite3_int64 *ret) {
        struct gather_file *g = (struct gather_file *) f;
        int r = gather_flush(g);

        return r != SQLITE_OK ? r : g->real->pMethods->xFileSize(g->real, ret);
}

static int gather_lock(sqlite3_file *f, int l) {
        struct gather_file *g = (struct gather_file *) f;
        return g->real->pMethods->xLock(g->real, l);
}

static int gather_unlock(sqlite3_file *f, int l) {
        struct gather_file *g = (struct gather_file *) f;
        return g->real->pMethods->xUnlock(g->real, l);
}

static int gather_check_reserved(sqlite3_file *f, int *ret) {
        struct gather_file *g = (struct gather_file *) f;
        return g->real->pMethods->xCheckReservedLock(g->real, ret);
}

static int gather_file_control(sqlite3_file *f, int op, void *arg) {
        struct gather_file *g = (struct gather_file *) f;
        int r = gather_flush(g);

        if (r != SQLITE_OK)
                return r;
        r = g->real->pMethods->xFileControl(g->real, op, arg);
        if (op == SQLITE_FCNTL_VFSNAME && r == SQLITE_OK)
                *(char **) arg = sqlite3_mprintf("fame-gather/%z", *(char **) arg);
        return r;
}

static int gather_sector_size(sqlite3_file *f) {
        struct gather_file *g = (struct gather_file *) f;
        return g->real->pMethods->xSectorSize(g->real);
}

static int gather_device_characteristics(sqlite3_file *f) {
        struct gather_file *g = (struct gather_file *) f;
        return g->real->pMethods->xDeviceCharacteristics(g->real);
}

static int gather_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **ret) {
        struct gather_file *g = (struct gather_file *) f;
        return g->real->pMethods->xShmMap(g->real, region, size, extend, ret);
}

static int gather_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
        struct gather_file *g = (struct gather_file *) f;
        return g->real->pMethods->xShmLock(g->real, offset, n, flags);
}

static void gather_shm_barrier(sqlite3_file *f) {
        struct gather_file *g = (struct gather_file *) f;
        g->real->pMethods->xShmBarrier(g->real);
}

static int gather_shm_unmap(sqlite3_file *f, int delete) {
        struct gather_file *g = (struct gather_file *) f;
        return g->real->pMethods->xShmUnmap(g->real, delete);
}

static int gather_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **ret) {
        struct gather_file *g = (struct gather_file *) f;
        int r = gather_flush(g);

        return r != SQLITE_OK ? r : g->real->pMethods->xFetch(g->real, off, amt, ret);
}

static int gather_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) {
        struct gather_file *g = (struct gather_file *) f;
        return g->real->pMethods->xUnfetch(g->real, off, p);
}

static const sqlite3_io_methods gather_methods = {
        .iVersion = 3,
        .xClose = gather_close,
        .xRead = gather_read,
        .xWrite = gather_write,
        .xTruncate = gather_truncate,
        .xSync = gather_sync,
        .xFileSize = gather_file_size,
        .xLock = gather_lock,
        .xUnlock = gather_unlock,
        .xCheckReservedLock = gather_check_reserved,
        .xFileControl = gather_file_control,
        .xSectorSize = gather_sector_size,
        .xDeviceCharacteristics = gather_device_characteristics,
        .xShmMap = gather_shm_map,
        .xShmLock = gather_shm_lock,
        .xShmBarrier = gather_shm_barrier,
        .xShmUnmap = gather_shm_unmap,
        .xFetch = gather_fetch,
        .xUnfetch = gather_unfetch,
};

static int gather_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *ret_flags) {
        sqlite3_vfs *parent = vfs->pAppData;
        struct gather_file *g = (struct gather_file *) f;
        int r;

        *g = (struct gather_file) { .real = (sqlite3_file *) (g + 1), .is_wal = flags & SQLITE_OPEN_WAL };
        memset(g->real, 0, (size_t) parent->szOsFile);
        r = parent->xOpen(parent, name, g->real, flags, ret_flags);
        /* the real file's methods must exist (iVersion 3) for the forwarding above */
        if (r == SQLITE_OK && g->real->pMethods && g->real->pMethods->iVersion < 3) {
                g->real->pMethods->xClose(g->real);
                r = SQLITE_CANTOPEN;
        } else if (r != SQLITE_OK && g->real->pMethods)
                g->real->pMethods->xClose(g->real);     /* a failed open may leave methods to close */
        g->base.pMethods = r == SQLITE_OK && g->real->pMethods ? &gather_methods : NULL;
        return r;
}

static int gather_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
        sqlite3_vfs *parent = vfs->pAppData;
        return parent->xDelete(parent, name, sync_dir);
}

static int gather_access(sqlite3_vfs *vfs, const char *name, int flags, int *ret) {
        sqlite3_vfs *parent = vfs->pAppData;
        return parent->xAccess(parent, name, flags, ret);
}

static int gather_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
        sqlite3_vfs *parent = vfs->pAppData;
        return parent->xFullPathname(parent, name, n, out);
}

static int gather_randomness(sqlite3_vfs *vfs, int n, char *out) {
        sqlite3_vfs *parent = vfs->pAppData;
        return parent->xRandomness(parent, n, out);
}

static int gather_sleep(sqlite3_vfs *vfs, int us) {
        sqlite3_vfs *parent = vfs->pAppData;
        return parent->xSleep(parent, us);
}

static int gather_current_time(sqlite3_vfs *vfs, double *ret) {
        sqlite3_vfs *parent = vfs->pAppData;
        return parent->xCurrentTime(parent, ret);
}

static int gather_last_error(sqlite3_vfs *vfs, int n, char *out) {
        sqlite3_vfs *parent = vfs->pAppData;
        return parent->xGetLastError ? parent->xGetLastError(parent, n, out) : 0;
}

static int gather_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *ret) {
        sqlite3_vfs *parent = vfs->pAppData;
        return parent->xCurrentTimeInt64(parent, ret);
}

static void gather_register(void) {
        sqlite3_vfs *parent = sqlite3_vfs_find(NULL);

        if (!parent || parent->iVersion < 2 || !parent->xCurrentTimeInt64)
                return;
        gather_vfs = (sqlite3_vfs) {
                .iVersion = 2,
                .szOsFile = (int) sizeof(struct gather_file) + parent->szOsFile,
                .mxPathname = parent->mxPathname,
                .zName = "fame-gather",
                .pAppData = parent,
                .xOpen = gather_open,
                .xDelete = gather_delete,
                .xAccess = gather_access,
                .xFullPathname = gather_full_pathname,
                .xRandomness = gather_randomness,
                .xSleep = gather_sleep,
                .xCurrentTime = gather_current_time,
                .xGetLastError = gather_last_error,
                .xCurrentTimeInt64 = gather_current_time64,
        };
        if (sqlite3_vfs_register(&gather_vfs, 0) != SQLITE_OK)
                gather_vfs.zName = NULL;
}

const char *librarian_db_vfs(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        pthread_once(&once, gather_register);
        return gather_vfs.zName;
}

/* The server's connection's WAL, if it is one of ours (it exists once the database was read). */
static struct gather_file *gather_wal(sqlite3 *db) {
        sqlite3_file *f = NULL;

        if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK || !f ||
            f->pMethods != &gather_methods)
                return NULL;
        return ((struct gather_file *) f)->is_wal ? (struct gather_file *) f : NULL;
}

int librarian_db_group_sync(sqlite3 *db, bool on) {
        struct gather_file *g = gather_wal(db);

        if (!g)
                return -EOPNOTSUPP;
        if (!on && g->sync_pending && g->real->pMethods->xSync(g->real, SQLITE_SYNC_NORMAL) != SQLITE_OK)
                return -EIO;
        g->defer = on;
        if (!on)
                g->sync_pending = false;
        return 0;
}

bool librarian_db_sync_pending(sqlite3 *db) {
        struct gather_file *g = gather_wal(db);
        return g && g->sync_pending;
}

void librarian_db_sync_later(sqlite3 *db) {
        struct gather_file *g = gather_wal(db);

        if (g && g->sync_pending) {
                g->sync_pending = false;
                g->written = true;      /* the next commit's sync is made */
        }
}

bool librarian_db_unsynced(sqlite3 *db) {
        struct gather_file *g = gather_wal(db);
        return g && (g->written || g->sync_pending);
}

int librarian_db_sync_now(sqlite3 *db) {
        struct gather_file *g = gather_wal(db);

        if (!g || !(g->written || g->sync_pending))
                return 0;
        if (gather_flush(g) != SQLITE_OK || g->real->pMethods->xSync(g->real, SQLITE_SYNC_NORMAL) != SQLITE_OK)
                return -EIO;
        g->written = g->sync_pending = false;
        return 0;
}

int librarian_db_sync(sqlite3 *db) {
        struct gather_file *g = gather_wal(db);

        if (!g || !g->sync_pending)
                return 0;
        if (g->real->pMethods->xSync(g->real, SQLITE_SYNC_NORMAL) != SQLITE_OK)
                return -EIO;
        g->sync_pending = false;
        return 0;
}
