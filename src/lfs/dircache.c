/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dircache.h"

/* Listings kept at once; the least recently used goes first. */
#define DIRCACHE_SLOTS 64
/* Attributes of single paths kept at once (those not in a kept listing). */
#define DIRCACHE_ATTRS 256

struct attr {
        char *path;                     /* NULL: free */
        struct stat st;
        bool missing;                   /* this mount removed path (st unused) */
        double expires;
        uint64_t used;
};

struct slot {
        char *dir;                      /* NULL: free */
        struct dircache_entry *entries; /* in the reply's order (readdir) */
        size_t n;
        struct json_object *by_name;    /* name -> index in entries (json-c's hash table) */
        char *names;                    /* the entries' names, one after another */
        double expires;
        uint64_t used;
};

struct dircache {
        pthread_mutex_t lock;
        double timeout;
        dircache_stat_fn fill;
        void *userdata;
        uint64_t epoch, clock;
        struct slot slots[DIRCACHE_SLOTS];
        struct attr attrs[DIRCACHE_ATTRS];
};

static double monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void slot_clear(struct slot *s) {
        free(s->dir);
        free(s->entries);
        free(s->names);
        json_object_put(s->by_name);
        *s = (struct slot) {};
}

struct dircache *dircache_new(double timeout, dircache_stat_fn fill, void *userdata) {
        struct dircache *d = calloc(1, sizeof *d);
        if (!d)
                return NULL;
        pthread_mutex_init(&d->lock, NULL);
        d->timeout = timeout;
        d->fill = fill;
        d->userdata = userdata;
        return d;
}

static void attr_clear(struct attr *a) {
        free(a->path);
        *a = (struct attr) {};
}

void dircache_free(struct dircache *d) {
        if (!d)
                return;
        for (size_t i = 0; i < DIRCACHE_SLOTS; i++)
                slot_clear(&d->slots[i]);
        for (size_t i = 0; i < DIRCACHE_ATTRS; i++)
                attr_clear(&d->attrs[i]);
        pthread_mutex_destroy(&d->lock);
        free(d);
}

uint64_t dircache_epoch(struct dircache *d) {
        pthread_mutex_lock(&d->lock);
        uint64_t e = d->epoch;
        pthread_mutex_unlock(&d->lock);
        return e;
}

/* The slot keeping dir and not expired (with the lock held), or NULL. */
static struct slot *find(struct dircache *d, const char *dir) {
        double now = monotonic();
        for (size_t i = 0; i < DIRCACHE_SLOTS; i++) {
                struct slot *s = &d->slots[i];
                if (!s->dir || strcmp(s->dir, dir) != 0)
                        continue;
                if (now >= s->expires) {
                        slot_clear(s);
                        return NULL;
                }
                s->used = ++d->clock;
                return s;
        }
        return NULL;
}

void dircache_put(struct dircache *d, const char *dir, struct json_object *list, uint64_t epoch) {
        if (!json_object_is_type(list, json_type_array))
                return;
        size_t n = json_object_array_length(list), len = 0, k = 0;
        n = n > 2 ? n - 2 : 0;
        for (size_t i = 0; i < n; i++) {
                struct json_object *name = NULL;
                if (json_object_object_get_ex(json_object_array_get_idx(list, i + 2), "name", &name))
                        len += strlen(json_object_get_string(name)) + 1;
        }
        struct slot s = { .dir = strdup(dir), .entries = calloc(n ? n : 1, sizeof *s.entries),
                          .names = malloc(len ? len : 1), .by_name = json_object_new_object() };
        if (!s.dir || !s.entries || !s.names || !s.by_name) {
                slot_clear(&s);
                return;
        }
        char *p = s.names;
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(list, i + 2), *name = NULL;
                if (!json_object_object_get_ex(e, "name", &name) || !json_object_is_type(name, json_type_string))
                        continue;
                size_t l = strlen(json_object_get_string(name)) + 1;
                memcpy(p, json_object_get_string(name), l);
                s.entries[k].name = p;
                d->fill(e, &s.entries[k].st, d->userdata);
                json_object_object_add(s.by_name, p, json_object_new_int64((int64_t) k));
                p += l;
                k++;
        }
        s.n = k;
        pthread_mutex_lock(&d->lock);
        if (d->epoch != epoch) {
                pthread_mutex_unlock(&d->lock);
                slot_clear(&s);
                return;
        }
        struct slot *t = NULL;
        for (size_t i = 0; i < DIRCACHE_SLOTS; i++) {
                struct slot *u = &d->slots[i];
                if (u->dir && strcmp(u->dir, dir) == 0) {
                        t = u;
                        break;
                }
                if (!t || (t->dir && (!u->dir || u->used < t->used)))
                        t = u;
        }
        slot_clear(t);
        *t = s;
        t->expires = monotonic() + d->timeout;
        t->used = ++d->clock;
        pthread_mutex_unlock(&d->lock);
}

int dircache_has(struct dircache *d, const char *dir) {
        pthread_mutex_lock(&d->lock);
        bool kept = find(d, dir);
        pthread_mutex_unlock(&d->lock);
        return kept;
}

int dircache_each(struct dircache *d, const char *dir, void (*fn)(const struct dircache_entry *e, void *userdata),
                  void *userdata) {
        pthread_mutex_lock(&d->lock);
        struct slot *s = find(d, dir);
        for (size_t i = 0; s && i < s->n; i++)
                fn(&s->entries[i], userdata);
        pthread_mutex_unlock(&d->lock);
        return s ? 1 : 0;
}

/* path's directory ("/" for "/x") into buf and its last component, or NULL for "/". */
static const char *split(const char *path, char *buf, size_t size) {
        const char *slash = strrchr(path, '/');
        if (!slash || !slash[1])
                return NULL;
        size_t n = slash == path ? 1 : (size_t) (slash - path);
        if (n >= size)
                return NULL;
        memcpy(buf, path, n);
        buf[n] = 0;
        return slash + 1;
}

/* Keeps path's attributes, or that it is missing (st NULL), with the lock held. */
static void put_attr_locked(struct dircache *d, char *copy, const struct stat *st) {
        const char *path = copy;
        struct attr *t = NULL;
        for (size_t i = 0; i < DIRCACHE_ATTRS; i++) {
                struct attr *u = &d->attrs[i];
                if (u->path && strcmp(u->path, path) == 0) {
                        t = u;
                        break;
                }
                if (!t || (t->path && (!u->path || u->used < t->used)))
                        t = u;
        }
        attr_clear(t);
        *t = (struct attr) { .path = copy, .st = st ? *st : (struct stat) {}, .missing = !st,
                             .expires = monotonic() + d->timeout, .used = ++d->clock };
}

void dircache_put_attr(struct dircache *d, const char *path, const struct stat *st, uint64_t epoch) {
        char *copy = strdup(path);
        if (!copy)
                return;
        pthread_mutex_lock(&d->lock);
        if (d->epoch != epoch)
                free(copy);
        else
                put_attr_locked(d, copy, st);
        pthread_mutex_unlock(&d->lock);
}

/* The kept attributes of path itself (with the lock held), or NULL. */
static struct attr *find_attr(struct dircache *d, const char *path) {
        for (size_t i = 0; i < DIRCACHE_ATTRS; i++) {
                struct attr *a = &d->attrs[i];
                if (!a->path || strcmp(a->path, path) != 0)
                        continue;
                if (monotonic() >= a->expires) {
                        attr_clear(a);
                        return NULL;
                }
                a->used = ++d->clock;
                return a;
        }
        return NULL;
}

int dircache_lookup(struct dircache *d, const char *path, struct stat *ret) {
        char dir[4096];
        const char *name = split(path, dir, sizeof dir);
        pthread_mutex_lock(&d->lock);
        struct attr *a = find_attr(d, path);
        if (a) {
                int known = a->missing ? -ENOENT : 1;
                if (!a->missing)
                        *ret = a->st;
                pthread_mutex_unlock(&d->lock);
                return known;
        }
        if (!name) {
                pthread_mutex_unlock(&d->lock);
                return -ENODATA;
        }
        struct slot *s = find(d, dir);
        struct json_object *e = NULL;
        int r = !s ? -ENODATA : json_object_object_get_ex(s->by_name, name, &e) ? 1 : 0;
        if (r > 0)
                *ret = s->entries[json_object_get_int64(e)].st;
        pthread_mutex_unlock(&d->lock);
        return r;
}

static bool below(const char *dir, const char *path) {
        size_t n = strlen(path);
        return strncmp(dir, path, n) == 0 && (dir[n] == 0 || dir[n] == '/' || strcmp(path, "/") == 0);
}

/* With the lock held. */
static void drop_locked(struct dircache *d, const char *path, bool parent_attrs) {
        char parent[4096];
        const char *name = split(path, parent, sizeof parent);

        d->epoch++;
        for (size_t i = 0; i < DIRCACHE_SLOTS; i++) {
                struct slot *s = &d->slots[i];
                if (s->dir && (below(s->dir, path) || (name && strcmp(s->dir, parent) == 0)))
                        slot_clear(s);
        }
        /* the path's own attributes, those below it, its directory's (mtime, links) */
        for (size_t i = 0; i < DIRCACHE_ATTRS; i++) {
                struct attr *a = &d->attrs[i];
                if (a->path && (below(a->path, path) || (parent_attrs && name && strcmp(a->path, parent) == 0)))
                        attr_clear(a);
        }
}

static void drop(struct dircache *d, const char *path, bool parent_attrs) {
        pthread_mutex_lock(&d->lock);
        drop_locked(d, path, parent_attrs);
        pthread_mutex_unlock(&d->lock);
}

void dircache_drop(struct dircache *d, const char *path) {
        drop(d, path, true);
}

void dircache_drop_entry(struct dircache *d, const char *path) {
        drop(d, path, false);
}

void dircache_removed(struct dircache *d, const char *path, uint64_t epoch) {
        char *copy = strdup(path);
        pthread_mutex_lock(&d->lock);
        bool unchanged = d->epoch == epoch;
        drop_locked(d, path, false);
        if (copy && unchanged) {
                put_attr_locked(d, copy, NULL);
                copy = NULL;
        }
        pthread_mutex_unlock(&d->lock);
        free(copy);
}

void dircache_drop_all(struct dircache *d) {
        pthread_mutex_lock(&d->lock);
        d->epoch++;
        for (size_t i = 0; i < DIRCACHE_SLOTS; i++)
                slot_clear(&d->slots[i]);
        for (size_t i = 0; i < DIRCACHE_ATTRS; i++)
                attr_clear(&d->attrs[i]);
        pthread_mutex_unlock(&d->lock);
}
