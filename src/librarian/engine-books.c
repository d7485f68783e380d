/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian's books (engine-internal.h): the books of a shelf, their state changes (FREE
 * -> INUSE -> ZOMBIE -> FREE) and the zombies handed to the zeroer, the allocation policies
 * (user.LFS.AllocationPolicy) that pick free books for a growing shelf, and the commands on
 * books: resize_shelf, list_shelf_books, get_book*, kill_zombie_books.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine-internal.h"
#include "util.h"

const char *const policy_names[] = {
        "RandomBooks", "LocalNode", "LocalEnc", "NonLocal_Enc", "Nearest", "NearestRemote",
        "NearestEnc", "NearestRack", "LZAascending", "LZAdescending", "RequestIG",
};
const size_t n_policy_names = ELEMENTSOF(policy_names);

/* ---------------------------------------------------------------------------------------- */
/* a shelf's books */

static struct json_object *book_json(const struct book *b) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_int64(b->id));
        json_object_object_add(o, "intlv_group", json_object_new_int64(b->intlv_group));
        json_object_object_add(o, "book_num", json_object_new_int64(b->book_num));
        json_object_object_add(o, "allocated", json_object_new_int64(b->allocated));
        json_object_object_add(o, "attributes", json_object_new_int64(b->attributes));
        return o;
}

static void book_from_row(sqlite3_stmt *st, struct book *b) {
        b->id = sqlite3_column_int64(st, 0);
        b->intlv_group = sqlite3_column_int64(st, 1);
        b->book_num = sqlite3_column_int64(st, 2);
        b->allocated = sqlite3_column_int64(st, 3);
        b->attributes = sqlite3_column_int64(st, 4);
}

/* The books of a shelf in seq order; also checks the seq progression 1..n. */
int shelf_books(struct engine *e, const struct shelf *s, struct book **ret, size_t *ret_n,
                bool check_seq) {
        static const char sql[] =
                "SELECT b.id, b.intlv_group, b.book_num, b.allocated, b.attributes, s.seq_num"
                " FROM books_on_shelves s JOIN books b ON b.id = s.book_id"
                " WHERE s.shelf_id = ? ORDER BY s.seq_num";
        sqlite3_stmt *st;
        struct book *v = NULL;
        size_t n = 0, allocated = 0;
        int r;

        r = engine_stmt(e, sql, &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, s->id);
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 16;
                        struct book *nv = realloc(v, allocated * sizeof *v);
                        if (!nv) {
                                free(v);
                                sqlite3_reset(st);
                                return engine_fail(e, ENOMEM, "Out of memory");
                        }
                        v = nv;
                }
                book_from_row(st, &v[n]);
                if (check_seq && sqlite3_column_int64(st, 5) != (int64_t) n + 1) {
                        free(v);
                        sqlite3_reset(st);
                        return engine_fail(e, EBADFD, "Corrupt BOS sequence progression for %s", s->name);
                }
                n++;
        }
        sqlite3_reset(st);
        if (r != SQLITE_DONE) {
                free(v);
                return engine_dbfail(e, "shelf books");
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int64_t books_for(const struct engine *e, int64_t size) {
        return (int64_t) (((uint64_t) size + e->geo.book_size - 1) / e->geo.book_size);
}

/* ---------------------------------------------------------------------------------------- */
/* state changes and zombies */

static int book_state(struct engine *e, int64_t id, int64_t *ret) {
        return engine_query_int(e, "SELECT allocated FROM books WHERE id = ?", -1, ret, 1, id);
}

int book_set_state(struct engine *e, int64_t id, int64_t to) {
        int64_t from;
        int k;

        k = book_state(e, id, &from);
        if (k < 0)
                return k;
        if (from == to)
                return 0;
        bool legal = (from == BOOK_FREE && to == BOOK_INUSE) ||
                     (from == BOOK_INUSE && to == BOOK_ZOMBIE) ||
                     (from == BOOK_ZOMBIE && to == BOOK_FREE);
        if (!legal)
                return engine_fail(e, EUCLEAN, "Book allocation %lld -> %lld", (long long) from, (long long) to);
        /* a book leaving its shelf is zeroed whole: a pending zeroing of its end no longer applies
         * (and must never reach the shelf it goes to next) */
        if (to == BOOK_ZOMBIE && (k = engine_exec(e, "DELETE FROM fame_pending_zero WHERE book_id = ?", 1, id)) < 0)
                return k;
        return engine_exec(e, "UPDATE books SET allocated = ? WHERE id = ?", 2, to, id);
}

int engine_pending_tails(struct engine *e, struct engine_tail **ret, size_t *ret_n) {
        /* still the end of that place of that shelf, and still beyond the shelf's size */
        static const char stale[] =
                "DELETE FROM fame_pending_zero WHERE offset < 0 OR length <= 0 OR offset + length > ?1 OR NOT EXISTS"
                " (SELECT 1 FROM books_on_shelves b JOIN shelves s ON s.id = b.shelf_id"
                "  WHERE b.shelf_id = fame_pending_zero.shelf_id AND b.book_id = fame_pending_zero.book_id"
                "  AND b.seq_num = fame_pending_zero.seq_num"
                "  AND s.size_bytes <= (b.seq_num - 1) * ?1 + fame_pending_zero.offset)";
        static const char sql[] = "SELECT shelf_id, book_id, offset, length FROM fame_pending_zero ORDER BY rowid";
        struct engine_tail *t = NULL;
        size_t n = 0;
        sqlite3_stmt *st;
        int k, s;

        k = engine_exec(e, stale, 1, (int64_t) e->geo.book_size);
        if (k < 0)
                return -EIO;
        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return -EIO;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                struct engine_tail *nt = realloc(t, (n + 1) * sizeof *nt);
                if (!nt) {
                        sqlite3_reset(st);
                        free(t);
                        return -ENOMEM;
                }
                t = nt;
                t[n++] = (struct engine_tail) {
                        (uint64_t) sqlite3_column_int64(st, 0), (uint64_t) sqlite3_column_int64(st, 1),
                        (uint64_t) sqlite3_column_int64(st, 2), (uint64_t) sqlite3_column_int64(st, 3) };
        }
        sqlite3_reset(st);
        if (s != SQLITE_DONE) {
                free(t);
                return -EIO;
        }
        *ret = t;
        *ret_n = n;
        return 0;
}

int engine_tail_zeroed(struct engine *e, uint64_t shelf, uint64_t book, uint64_t from) {
        return engine_exec(e, "DELETE FROM fame_pending_zero WHERE shelf_id = ? AND book_id = ? AND offset = ?", 3,
                           (int64_t) shelf, (int64_t) book, (int64_t) from) < 0 ? -EIO : 0;
}

static bool inflight_has(const struct engine *e, uint64_t id) {
        for (size_t i = 0; i < e->n_inflight; i++)
                if (e->inflight[i] == id)
                        return true;
        return false;
}

int engine_take_zombies(struct engine *e, uint64_t **ret_ids, size_t *ret_n) {
        static const char sql[] =
                "SELECT id FROM books WHERE allocated = 2 AND id NOT IN (SELECT book_id FROM books_on_shelves)"
                " ORDER BY id";
        sqlite3_stmt *st;
        uint64_t *v = NULL;
        size_t n = 0, allocated = 0;
        int r;

        /* only after a request that took books off shelves (and at start, and to retry) */
        if (!e->zombies_dirty) {
                *ret_ids = NULL;
                *ret_n = 0;
                return 0;
        }
        if (engine_stmt(e, sql, &st) < 0)
                return -EIO;
        e->zombies_dirty = false;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
                uint64_t id = (uint64_t) sqlite3_column_int64(st, 0);
                if (inflight_has(e, id))
                        continue;
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 16;
                        uint64_t *nv = realloc(v, allocated * sizeof *v);
                        if (!nv) {
                                free(v);
                                                sqlite3_reset(st);
                                e->zombies_dirty = true;
                                return -ENOMEM;
                        }
                        v = nv;
                }
                v[n++] = id;
        }
        sqlite3_reset(st);
        if (r != SQLITE_DONE) {
                free(v);
                e->zombies_dirty = true;
                return -EIO;
        }
        if (e->n_inflight + n > e->allocated_inflight) {
                size_t na = (e->n_inflight + n) * 2;
                uint64_t *ni = realloc(e->inflight, na * sizeof *ni);
                if (!ni) {
                        free(v);
                        e->zombies_dirty = true;
                        return -ENOMEM;
                }
                e->inflight = ni;
                e->allocated_inflight = na;
        }
        if (n)
                memcpy(e->inflight + e->n_inflight, v, n * sizeof *v);
        e->n_inflight += n;
        *ret_ids = v;
        *ret_n = n;
        return 0;
}

void engine_release_zombies(struct engine *e, const uint64_t *ids, size_t n) {
        if (n)
                e->zombies_dirty = true;
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < e->n_inflight; j++)
                        if (e->inflight[j] == ids[i]) {
                                e->inflight[j] = e->inflight[--e->n_inflight];
                                break;
                        }
}

int engine_books_zeroed(struct engine *e, const uint64_t *ids, size_t n) {
        int r = 0;

        if (sqlite3_exec(e->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
                r = -EBUSY;
        if (r == 0 && __atomic_load_n(&e->fail_zeroed, __ATOMIC_RELAXED))
                r = -EBUSY;
        for (size_t i = 0; i < n && r == 0; i++)
                if (engine_exec(e, "UPDATE books SET allocated = 0 WHERE id = ? AND allocated = 2"
                                " AND id NOT IN (SELECT book_id FROM books_on_shelves)", 1, (int64_t) ids[i]) < 0)
                        r = -EIO;
        if (r == 0 && sqlite3_exec(e->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                r = -EBUSY;
        if (r < 0)
                sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
        /* on failure they are handed out (and zeroed) again later */
        engine_release_zombies(e, ids, n);
        return r;
}

/* ---------------------------------------------------------------------------------------- */
/* allocation policies */

bool policy_known(const char *p) {
        for (size_t i = 0; i < ELEMENTSOF(policy_names); i++)
                if (streq_(p, policy_names[i]))
                        return true;
        return false;
}

struct idlist {
        int64_t *v;
        size_t n, allocated;
};

static int idlist_add(struct idlist *l, int64_t id) {
        if (l->n == l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 16;
                int64_t *nv = realloc(l->v, na * sizeof *nv);
                if (!nv)
                        return -ENOMEM;
                l->v = nv;
                l->allocated = na;
        }
        l->v[l->n++] = id;
        return 0;
}

enum tier { TIER_LOCAL, TIER_ENC, TIER_OTHER };

/* The tier of an IG relative to the caller.  A PHYSADDR topology is one enclosure. */
static enum tier ig_tier(const struct engine *e, const struct req *r, uint32_t ig) {
        if ((int64_t) ig + 1 == r->node_id)
                return TIER_LOCAL;
        if (e->geo.bii_mode == 1)
                return TIER_ENC;
        const struct node_info *n = engine_find_node(e, (int64_t) ig + 1);
        if (n && n->enc == r->enc)
                return TIER_ENC;
        return TIER_OTHER;
}

enum { ORDER_RANDOM, ORDER_ASC, ORDER_DESC };

static bool idlist_has(const struct idlist *l, int64_t id) {
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i] == id)
                        return true;
        return false;
}

/* Appends up to `want` free books of any IG, each the first free book at or after a random id
 * (wrapping around): O(want × log books), where shuffling every free book cost O(books) per
 * request, so requests grew slower as the pool grew. */
static int take_random(struct engine *e, size_t want, struct idlist *out) {
        static uint64_t rng;
        int64_t lo, hi, id;
        int k;

        if (!rng)
                rng = (uint64_t) now_seconds() * 1000003u ^ (uint64_t) getpid() << 32 ^ 0x9e3779b97f4a7c15u;
        if ((k = engine_query_int(e, "SELECT MIN(id) FROM books", -1, &lo, 0)) < 0 ||
            (k = engine_query_int(e, "SELECT MAX(id) FROM books", -1, &hi, 0)) < 0)
                return k;
        if (lo < 0 || hi < lo)
                return 0;
        for (size_t i = 0; i < want; i++) {
                int64_t start = lo + (int64_t) (xorshift64(&rng) % (uint64_t) (hi - lo + 1)), at = start;
                bool wrapped = false;
                for (;;) {
                        k = engine_query_int(e, "SELECT id FROM books WHERE allocated = 0 AND id >= ? ORDER BY id LIMIT 1",
                                             -1, &id, 1, at);
                        if (k < 0)
                                return k;
                        if (id >= 0 && (wrapped && id >= start))
                                id = -1;        /* around once: no free book left */
                        if (id < 0 && !wrapped) {
                                wrapped = true;
                                at = lo;
                                continue;
                        }
                        if (id < 0 || !idlist_has(out, id))
                                break;
                        at = id + 1;    /* taken by this request already */
                }
                if (id < 0)
                        return 0;
                if (idlist_add(out, id) < 0)
                        return engine_fail(e, ENOMEM, "Out of memory");
        }
        return 0;
}

/* Appends up to `want` free books of the IGs whose tier is in tiers (bitmask), shuffled or by
 * ascending/descending id. */
static int take_free(struct engine *e, const struct req *r, unsigned tiers, int order, size_t want,
                     struct idlist *out) {
        static const char *const sqls[] = {
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY random()",
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY id",
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY id DESC",
        };
        /* every tier: no filtering, so SQLite need not sort (or shuffle) more than it hands out */
        static const char *const limited[] = {
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY random() LIMIT ?",
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY id LIMIT ?",
                "SELECT id, intlv_group FROM books WHERE allocated = 0 ORDER BY id DESC LIMIT ?",
        };
        bool all = tiers == ((1u << TIER_LOCAL) | (1u << TIER_ENC) | (1u << TIER_OTHER));
        sqlite3_stmt *st;
        int s;

        if (want == 0)
                return 0;
        if (all && order == ORDER_RANDOM)
                return take_random(e, want, out);
        s = engine_stmt(e, all ? limited[order] : sqls[order], &st);
        if (s < 0)
                return s;
        if (all)
                sqlite3_bind_int64(st, 1, (int64_t) want);
        size_t target = out->n + want;
        while (out->n < target && (s = sqlite3_step(st)) == SQLITE_ROW) {
                uint32_t ig = (uint32_t) sqlite3_column_int64(st, 1) & 0xFFFF;
                if (!(tiers & (1u << ig_tier(e, r, ig))))
                        continue;
                if (idlist_add(out, sqlite3_column_int64(st, 0)) < 0) {
                        sqlite3_reset(st);
                        return engine_fail(e, ENOMEM, "Out of memory");
                }
        }
        sqlite3_reset(st);
        return 0;
}

#define T(x) (1u << (x))

static int request_ig(struct engine *e, const struct shelf *s, size_t want, struct idlist *out) {
        _cleanup_free_ char *req = NULL, *pos_s = NULL;
        size_t req_len = 0;
        int k;

        if ((k = xattr_get(e, s->id, "user.LFS.InterleaveRequest", &req, &req_len)) < 0 ||
            (k = xattr_get(e, s->id, "user.LFS.InterleaveRequestPos", &pos_s, NULL)) < 0)
                return k;
        if (!req || req_len == 0)
                return engine_fail(e, ERANGE, "RequestIG policy requires prior setting of user.LFS.InterleaveRequest on %s",
                                   s->name);
        char *end = NULL;
        long pos = pos_s ? strtol(pos_s, &end, 10) : 0;
        if (!pos_s || !end || *end || pos < 0 || (size_t) pos >= req_len)
                pos = 0;
        for (size_t i = 0; i < want; i++) {
                int64_t id;
                uint32_t ig = (unsigned char) req[pos];
                k = engine_query_int(e, "SELECT id FROM books WHERE allocated = 0 AND (intlv_group & 65535) = ?"
                                     " AND id NOT IN (SELECT value FROM temp_taken) ORDER BY id LIMIT 1",
                                     -1, &id, 1, (int64_t) ig);
                if (k < 0)
                        return k;
                if (id < 0)
                        return engine_fail(e, ENOSPC, "Not enough books remaining in IG %u", ig);
                if ((k = engine_exec(e, "INSERT INTO temp_taken VALUES (?)", 1, id)) < 0 || (k = idlist_add(out, id)) < 0)
                        return k;
                pos = (long) (((size_t) pos + 1) % req_len);
        }
        char buf[32];
        snprintf(buf, sizeof buf, "%ld", pos);
        return xattr_set(e, s->id, "user.LFS.InterleaveRequestPos", buf, strlen(buf));
}

static int pick_books(struct engine *e, const struct req *r, const struct shelf *s, size_t want,
                      struct idlist *out) {
        _cleanup_free_ char *policy = NULL;
        int k;

        k = xattr_get(e, s->id, "user.LFS.AllocationPolicy", &policy, NULL);
        if (k < 0)
                return k;
        if (!policy || !policy_known(policy))
                return engine_fail(e, EINVAL, "Unknown policy \"%s\"", policy ? policy : "None");
        if (e->geo.bii_mode == 0 && e->n_igs != e->n_nodes)
                return engine_fail(e, EMFILE, "IG:node != 1:1");

        if (streq_(policy, "RandomBooks"))
                return take_free(e, r, T(TIER_LOCAL) | T(TIER_ENC) | T(TIER_OTHER), ORDER_RANDOM, want, out);
        if (streq_(policy, "LocalNode"))
                return take_free(e, r, T(TIER_LOCAL), ORDER_ASC, want, out);
        if (streq_(policy, "LocalEnc"))
                return take_free(e, r, T(TIER_LOCAL) | T(TIER_ENC), ORDER_RANDOM, want, out);
        if (streq_(policy, "NonLocal_Enc"))
                return take_free(e, r, T(TIER_ENC), ORDER_RANDOM, want, out);
        if (streq_(policy, "NearestRack"))
                return take_free(e, r, T(TIER_OTHER), ORDER_RANDOM, want, out);
        if (streq_(policy, "LZAascending"))
                return take_free(e, r, T(TIER_LOCAL) | T(TIER_ENC) | T(TIER_OTHER), ORDER_ASC, want, out);
        if (streq_(policy, "LZAdescending"))
                return take_free(e, r, T(TIER_LOCAL) | T(TIER_ENC) | T(TIER_OTHER), ORDER_DESC, want, out);
        if (streq_(policy, "RequestIG"))
                return request_ig(e, s, want, out);

        bool local = !streq_(policy, "NearestRemote");
        bool other = streq_(policy, "Nearest") || streq_(policy, "NearestRemote");
        size_t start = out->n;
        if (local && (k = take_free(e, r, T(TIER_LOCAL), ORDER_ASC, want, out)) < 0)
                return k;
        k = take_free(e, r, T(TIER_ENC), ORDER_RANDOM, want - (out->n - start), out);
        if (k < 0)
                return k;
        if (other && (k = take_free(e, r, T(TIER_OTHER), ORDER_RANDOM, want - (out->n - start), out)) < 0)
                return k;
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* commands */

int cmd_list_shelf_books(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        _cleanup_free_ struct book *books = NULL;
        size_t n;
        int k;

        if ((k = req_existing_path(e, r, &res)) < 0 ||
            (k = shelf_check_access(e, r, &res.shelf, MAY_READ, "list the books of")) < 0 ||
            (k = shelf_books(e, &res.shelf, &books, &n, false)) < 0)
                return k;
        struct json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, book_json(&books[i]));
        *ret = a;
        return 0;
}

int cmd_resize_shelf(struct engine *e, struct req *r, struct json_object **ret) {
        struct resolved res;
        const char *path;
        int64_t id, size, count;
        struct json_object *zv = req_param(r, "zero_enabled");
        _cleanup_free_ struct book *books = NULL;
        size_t n;
        int k;

        if ((k = req_str(e, r, "path", &path)) < 0 || (k = req_int(e, r, "id", &id)) < 0 ||
            (k = req_int(e, r, "size_bytes", &size)) < 0)
                return k;
        if (!zv || !json_object_is_type(zv, json_type_boolean))
                return engine_fail(e, EINVAL, "resize_shelf: parameter \"zero_enabled\" must be true or false");
        k = path_resolve_existing(e, path, &res);
        if (k < 0)
                return k;
        if (res.shelf.id != id)
                return engine_fail(e, ENOENT, "no such shelf %s with id %lld", res.name, (long long) id);
        if (size < 0)
                return engine_fail(e, EINVAL, "Bad size");
        if (!S_ISREG((mode_t) res.shelf.mode) && !S_ISBLK((mode_t) res.shelf.mode))
                return engine_fail(e, shelf_is_dir(&res.shelf) ? EISDIR : EINVAL, "Cannot resize \"%s\": not a regular file",
                                   res.name);
        k = shelf_check_access(e, r, &res.shelf, MAY_WRITE, "resize");
        if (k < 0)
                return k;
        if (res.shelf.book_count != books_for(e, res.shelf.size_bytes))
                return engine_fail(e, EBADF, "%s size metadata mismatch", res.name);
        k = shelf_books(e, &res.shelf, &books, &n, true);
        if (k < 0)
                return k;
        if ((int64_t) n != res.shelf.book_count)
                return engine_fail(e, EREMOTEIO, "%s book count mismatch", res.name);

        *ret = json_object_new_object();
        json_object_object_add(*ret, "z_shelf_path", NULL);
        if (size == res.shelf.size_bytes)
                return 0;
        int64_t new_count = books_for(e, size);
        if (size < res.shelf.size_bytes) {
                k = engine_query_int(e, "SELECT COUNT(*) FROM opened_shelves WHERE shelf_id = ? AND NOT (node_id = ? AND pid = ?)",
                                     0, &count, 3, res.shelf.id, r->node_id, r->pid);
                if (k < 0)
                        return k;
                if (count > 0)
                        return engine_fail(e, EMFILE, "Cannot shrink multiply-opened shelf");
        }
        if (new_count > (int64_t) n) {
                struct idlist got = {};
                size_t want = (size_t) new_count - n;
                if ((k = engine_exec(e, "DELETE FROM temp_taken", 0)) < 0 || (k = pick_books(e, r, &res.shelf, want, &got)) < 0) {
                        free(got.v);
                        return k;
                }
                if (got.n < want) {
                        free(got.v);
                        return engine_fail(e, ENOSPC, "out of space for \"%s\" (%zu more books wanted)", res.name, want);
                }
                for (size_t i = 0; i < got.n; i++)
                        if ((k = book_set_state(e, got.v[i], BOOK_INUSE)) < 0 ||
                            (k = engine_exec(e, "INSERT INTO books_on_shelves VALUES (?, ?, ?)", 3, res.shelf.id,
                                             got.v[i], (int64_t) (n + i + 1))) < 0) {
                                free(got.v);
                                return k;
                        }
                free(got.v);
        } else if (new_count < (int64_t) n) {
                for (int64_t i = (int64_t) n - 1; i >= new_count; i--)
                        if ((k = engine_exec(e, "DELETE FROM books_on_shelves WHERE book_id = ?", 1, books[i].id)) < 0 ||
                            (k = book_set_state(e, books[i].id, BOOK_ZOMBIE)) < 0)
                                return k;
                e->zombies_dirty = true;
        }
        /* a shrink that ends inside the last kept book: the rest of what was in it must read zero
         * if the shelf grows again */
        uint64_t bs = e->geo.book_size, within = (uint64_t) size % bs;
        if (size < res.shelf.size_bytes && new_count > 0 && within) {
                uint64_t old_end = (uint64_t) res.shelf.size_bytes - (uint64_t) (new_count - 1) * bs;
                e->tail_book = (uint64_t) books[new_count - 1].id;
                e->tail_from = within;
                e->tail_len = (old_end < bs ? old_end : bs) - within;
                e->tail_shelf = (uint64_t) res.shelf.id;
                /* durable with the truncation: a crash before the zeroing is redone at the start */
                k = engine_exec(e, "INSERT INTO fame_pending_zero (shelf_id, book_id, seq_num, offset, length)"
                                " VALUES (?, ?, ?, ?, ?)", 5, res.shelf.id, books[new_count - 1].id, new_count,
                                (int64_t) e->tail_from, (int64_t) e->tail_len);
                if (k < 0)
                        return k;
        }
        return engine_exec(e, "UPDATE shelves SET size_bytes = ?, book_count = ?, mtime = ? WHERE id = ?", 4,
                           size, new_count, engine_now(e), res.shelf.id);
}

int cmd_get_book(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT id, intlv_group, book_num, allocated, attributes FROM books WHERE id = ?";
        int64_t id;
        int k;

        k = req_int(e, r, "id", &id);
        if (k < 0)
                return k;
        sqlite3_stmt *st;
        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, id);
        int s = sqlite3_step(st);
        struct book b;
        if (s == SQLITE_ROW)
                book_from_row(st, &b);
        sqlite3_reset(st);
        if (s != SQLITE_ROW && s != SQLITE_DONE)
                return engine_dbfail(e, "get book");
        *ret = s == SQLITE_ROW ? book_json(&b) : NULL;
        return 0;
}

static int books_query(struct engine *e, sqlite3_stmt *st, struct json_object **ret) {
        struct json_object *a = json_object_new_array();
        int s;

        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                struct book b;
                book_from_row(st, &b);
                json_object_array_add(a, book_json(&b));
        }
        sqlite3_reset(st);
        *ret = a;
        return s == SQLITE_DONE ? 0 : engine_dbfail(e, "books");
}

int cmd_get_book_all(struct engine *e, struct req *r, struct json_object **ret) {
        sqlite3_stmt *st;
        int k;
        (void) r;

        k = engine_stmt(e, "SELECT id, intlv_group, book_num, allocated, attributes FROM books ORDER BY id", &st);
        if (k < 0)
                return k;
        return books_query(e, st, ret);
}

static int cmp_book_id(const void *a, const void *b) {
        struct json_object *const *x = a, *const *y = b, *ix = NULL, *iy = NULL;
        json_object_object_get_ex(*x, "id", &ix);
        json_object_object_get_ex(*y, "id", &iy);
        int64_t u = json_object_get_int64(ix), v = json_object_get_int64(iy);
        return u < v ? -1 : u > v;
}

int cmd_get_book_ig(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] = "SELECT id, intlv_group, book_num, allocated, attributes FROM books"
                " WHERE intlv_group = ? AND allocated < 3 ORDER BY id LIMIT ?";
        struct json_object *igs = req_param(r, "intlv_group");

        if (!igs || !json_object_is_type(igs, json_type_array))
                return engine_fail(e, EINVAL, "get_book_ig: parameter \"intlv_group\" must be an array of interleave groups");
        struct json_object *a = json_object_new_array();
        int64_t left = 9999;
        for (size_t i = 0; i < json_object_array_length(igs) && left > 0; i++) {
                struct json_object *g = json_object_array_get_idx(igs, i);
                if (!json_object_is_type(g, json_type_int)) {
                        json_object_put(a);
                        return engine_fail(e, EINVAL, "get_book_ig: interleave groups must be integers");
                }
                sqlite3_stmt *st;
                int k = engine_stmt(e, sql, &st);
                if (k < 0) {
                        json_object_put(a);
                        return k;
                }
                sqlite3_bind_int64(st, 1, json_object_get_int64(g));
                sqlite3_bind_int64(st, 2, left);
                int s;
                while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                        struct book b;
                        book_from_row(st, &b);
                        json_object_array_add(a, book_json(&b));
                        left--;
                }
                sqlite3_reset(st);
                if (s != SQLITE_DONE) {
                        json_object_put(a);
                        return engine_dbfail(e, librarian_command_name(r->cmd));
                }
        }
        /* ascending over all requested groups */
        json_object_array_sort(a, cmp_book_id);
        *ret = a;
        return 0;
}

int cmd_get_book_info_all(struct engine *e, struct req *r, struct json_object **ret) {
        static const char sql[] =
                "SELECT b.id, b.allocated, b.attributes, b.intlv_group, s.shelf_id, s.seq_num, sh.creator_id,"
                " sh.size_bytes, sh.book_count, sh.ctime, sh.mtime, sh.name FROM books b"
                " LEFT JOIN books_on_shelves s ON s.book_id = b.id LEFT JOIN shelves sh ON sh.id = s.shelf_id"
                " WHERE b.intlv_group = ? ORDER BY b.id";
        static const char *const names[] = { "id", "allocated", "attributes", "intlv_group", "shelf_id",
                                             "seq_num", "creator_id", "size_bytes", "book_count", "ctime",
                                             "mtime", "name" };
        int64_t ig;
        int k;

        k = req_int(e, r, "intlv_group", &ig);
        if (k < 0)
                return k;
        sqlite3_stmt *st;
        k = engine_stmt(e, sql, &st);
        if (k < 0)
                return k;
        sqlite3_bind_int64(st, 1, ig);
        struct json_object *a = json_object_new_array();
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
                struct json_object *o = json_object_new_object();
                for (int c = 0; c < (int) ELEMENTSOF(names); c++) {
                        struct json_object *v = NULL;
                        if (sqlite3_column_type(st, c) == SQLITE_INTEGER)
                                v = json_object_new_int64(sqlite3_column_int64(st, c));
                        else if (sqlite3_column_type(st, c) == SQLITE_TEXT)
                                v = json_object_new_string((const char *) sqlite3_column_text(st, c));
                        json_object_object_add(o, names[c], v);
                }
                json_object_array_add(a, o);
        }
        sqlite3_reset(st);
        *ret = a;
        return s == SQLITE_DONE ? 0 : engine_dbfail(e, librarian_command_name(r->cmd));
}

int cmd_kill_zombie_books(struct engine *e, struct req *r, struct json_object **ret) {
        (void) e; (void) r;
        *ret = NULL;
        return 0;
}

int engine_book_offset(const struct engine *e, uint64_t book_id, uint64_t *ret_offset) {
        if (e->geo.bii_mode != 0 || (book_id & ((UINT64_C(1) << 33) - 1)) || (book_id >> 53))
                return -EINVAL;
        uint32_t ig = (uint32_t) (book_id >> 46) & 0x7F;
        uint64_t num = (book_id >> 33) & 0x1FFF;
        const struct ig_info *g = engine_find_ig(e, ig);
        if (!g || num >= g->books)
                return -EINVAL;
        *ret_offset = (g->start + num) * e->geo.book_size;
        return 0;
}
