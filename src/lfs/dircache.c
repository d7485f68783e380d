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

struct slot {
        char *dir;                      /* NULL: free */
        struct json_object *list;       /* the reply, in its order (readdir) */
        struct json_object *by_name;    /* name -> entry (json-c's hash table) */
        double expires;
        uint64_t used;
};

struct dircache {
        pthread_mutex_t lock;
        double timeout;
        uint64_t epoch, clock;
        struct slot slots[DIRCACHE_SLOTS];
};

static double monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void slot_clear(struct slot *s) {
        free(s->dir);
        json_object_put(s->list);
        json_object_put(s->by_name);
        *s = (struct slot) {};
}

struct dircache *dircache_new(double timeout) {
        struct dircache *d = calloc(1, sizeof *d);
        if (!d)
                return NULL;
        pthread_mutex_init(&d->lock, NULL);
        d->timeout = timeout;
        return d;
}

void dircache_free(struct dircache *d) {
        if (!d)
                return;
        for (size_t i = 0; i < DIRCACHE_SLOTS; i++)
                slot_clear(&d->slots[i]);
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
        struct json_object *by_name = json_object_new_object();
        char *copy = strdup(dir);
        if (!by_name || !copy) {
                json_object_put(by_name);
                free(copy);
                return;
        }
        for (size_t i = 2; i < json_object_array_length(list); i++) {
                struct json_object *e = json_object_array_get_idx(list, i), *name = NULL;
                if (json_object_object_get_ex(e, "name", &name) && json_object_is_type(name, json_type_string))
                        json_object_object_add(by_name, json_object_get_string(name), json_object_get(e));
        }
        pthread_mutex_lock(&d->lock);
        if (d->epoch != epoch) {
                pthread_mutex_unlock(&d->lock);
                json_object_put(by_name);
                free(copy);
                return;
        }
        struct slot *s = NULL;
        for (size_t i = 0; i < DIRCACHE_SLOTS; i++) {
                struct slot *t = &d->slots[i];
                if (t->dir && strcmp(t->dir, dir) == 0) {
                        s = t;
                        break;
                }
                if (!s || (s->dir && (!t->dir || t->used < s->used)))
                        s = t;
        }
        slot_clear(s);
        *s = (struct slot) { .dir = copy, .list = json_object_get(list), .by_name = by_name,
                             .expires = monotonic() + d->timeout, .used = ++d->clock };
        pthread_mutex_unlock(&d->lock);
}

struct json_object *dircache_listing(struct dircache *d, const char *dir) {
        pthread_mutex_lock(&d->lock);
        struct slot *s = find(d, dir);
        struct json_object *l = s ? json_object_get(s->list) : NULL;
        pthread_mutex_unlock(&d->lock);
        return l;
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

int dircache_lookup(struct dircache *d, const char *path, struct json_object **ret) {
        char dir[4096];
        const char *name = split(path, dir, sizeof dir);
        if (!name)
                return -ENODATA;
        pthread_mutex_lock(&d->lock);
        struct slot *s = find(d, dir);
        struct json_object *e = NULL;
        int r = !s ? -ENODATA : json_object_object_get_ex(s->by_name, name, &e) ? 1 : 0;
        if (r > 0)
                *ret = json_object_get(e);
        pthread_mutex_unlock(&d->lock);
        return r;
}

static bool below(const char *dir, const char *path) {
        size_t n = strlen(path);
        return strncmp(dir, path, n) == 0 && (dir[n] == 0 || dir[n] == '/' || strcmp(path, "/") == 0);
}

void dircache_drop(struct dircache *d, const char *path) {
        char parent[4096];
        const char *name = split(path, parent, sizeof parent);

        pthread_mutex_lock(&d->lock);
        d->epoch++;
        for (size_t i = 0; i < DIRCACHE_SLOTS; i++) {
                struct slot *s = &d->slots[i];
                if (s->dir && (below(s->dir, path) || (name && strcmp(s->dir, parent) == 0)))
                        slot_clear(s);
        }
        pthread_mutex_unlock(&d->lock);
}

void dircache_drop_all(struct dircache *d) {
        pthread_mutex_lock(&d->lock);
        d->epoch++;
        for (size_t i = 0; i < DIRCACHE_SLOTS; i++)
                slot_clear(&d->slots[i]);
        pthread_mutex_unlock(&d->lock);
}
