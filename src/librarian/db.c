/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian database: schema (librarian-model.md §2, plus FAM/E's columns and indexes) and
 * its creation from a topology (what tm-book-register does).
 */
#include <errno.h>
#include <fcntl.h>
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
