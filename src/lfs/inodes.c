/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "inodes.h"

#define ROOT_INO 1      /* FUSE_ROOT_ID */

struct inode {
        uint64_t ino;
        uint64_t parent;                /* 0: no name (removed, or replaced by another shelf) */
        char *name;
        int64_t id;                     /* the shelf's, 0: unknown */
        uint64_t nlookup;               /* the kernel's references */
        unsigned children;              /* inodes whose parent this is */
        unsigned open;                  /* file handles */
        bool hidden;
        struct inode *ino_next, *name_next;
};

struct inodes {
        pthread_mutex_t lock;
        uint64_t next;
        struct inode **by_ino, **by_name;
        size_t buckets;                 /* of each table, a power of 2 */
        size_t n;
        struct inode root;
};

static size_t hash_ino(uint64_t ino) {
        ino *= 0x9e3779b97f4a7c15ULL;
        return (size_t) (ino ^ (ino >> 29));
}

static size_t hash_name(uint64_t parent, const char *name) {
        uint64_t h = 0xcbf29ce484222325ULL ^ hash_ino(parent);
        for (const unsigned char *p = (const unsigned char *) name; *p; p++)
                h = (h ^ *p) * 0x100000001b3ULL;
        return (size_t) (h ^ (h >> 31));
}

static struct inode *find_ino(struct inodes *t, uint64_t ino) {
        if (ino == ROOT_INO)
                return &t->root;
        for (struct inode *i = t->by_ino[hash_ino(ino) & (t->buckets - 1)]; i; i = i->ino_next)
                if (i->ino == ino)
                        return i;
        return NULL;
}

static struct inode *find_name(struct inodes *t, uint64_t parent, const char *name) {
        for (struct inode *i = t->by_name[hash_name(parent, name) & (t->buckets - 1)]; i; i = i->name_next)
                if (i->parent == parent && strcmp(i->name, name) == 0)
                        return i;
        return NULL;
}

static void link_name(struct inodes *t, struct inode *i) {
        struct inode **b = &t->by_name[hash_name(i->parent, i->name) & (t->buckets - 1)];
        i->name_next = *b;
        *b = i;
}

static void link_ino(struct inodes *t, struct inode *i) {
        struct inode **b = &t->by_ino[hash_ino(i->ino) & (t->buckets - 1)];
        i->ino_next = *b;
        *b = i;
}

static void maybe_free(struct inodes *t, struct inode *i);

/* i loses its name (and stops holding its parent). */
static void unlink_name(struct inodes *t, struct inode *i) {
        if (!i->parent)
                return;
        for (struct inode **p = &t->by_name[hash_name(i->parent, i->name) & (t->buckets - 1)]; *p; p = &(*p)->name_next)
                if (*p == i) {
                        *p = i->name_next;
                        break;
                }
        struct inode *parent = find_ino(t, i->parent);
        i->parent = 0;
        free(i->name);
        i->name = NULL;
        if (parent) {
                parent->children--;
                maybe_free(t, parent);
        }
}

static void maybe_free(struct inodes *t, struct inode *i) {
        if (i == &t->root || i->nlookup || i->children || i->open)
                return;
        unlink_name(t, i);
        for (struct inode **p = &t->by_ino[hash_ino(i->ino) & (t->buckets - 1)]; *p; p = &(*p)->ino_next)
                if (*p == i) {
                        *p = i->ino_next;
                        break;
                }
        t->n--;
        free(i);
}

static int grow(struct inodes *t) {
        size_t buckets = t->buckets * 2;
        struct inode **by_ino = calloc(buckets, sizeof *by_ino), **by_name = calloc(buckets, sizeof *by_name);
        if (!by_ino || !by_name) {
                free(by_ino);
                free(by_name);
                return -ENOMEM;
        }
        struct inode **old_ino = t->by_ino, **old_name = t->by_name;
        size_t old = t->buckets;
        t->by_ino = by_ino;
        t->by_name = by_name;
        t->buckets = buckets;
        for (size_t b = 0; b < old; b++)
                for (struct inode *i = old_ino[b], *next; i; i = next) {
                        next = i->ino_next;
                        link_ino(t, i);
                }
        for (size_t b = 0; b < old; b++)
                for (struct inode *i = old_name[b], *next; i; i = next) {
                        next = i->name_next;
                        link_name(t, i);
                }
        free(old_ino);
        free(old_name);
        return 0;
}

struct inodes *inodes_new(void) {
        struct inodes *t = calloc(1, sizeof *t);
        if (!t)
                return NULL;
        t->buckets = 1024;
        t->by_ino = calloc(t->buckets, sizeof *t->by_ino);
        t->by_name = calloc(t->buckets, sizeof *t->by_name);
        if (!t->by_ino || !t->by_name) {
                inodes_free(t);
                return NULL;
        }
        pthread_mutex_init(&t->lock, NULL);
        t->root.ino = ROOT_INO;
        t->root.nlookup = 1;
        t->next = ROOT_INO + 1;
        return t;
}

void inodes_free(struct inodes *t) {
        if (!t)
                return;
        for (size_t b = 0; t->by_ino && b < t->buckets; b++)
                for (struct inode *i = t->by_ino[b], *next; i; i = next) {
                        next = i->ino_next;
                        free(i->name);
                        free(i);
                }
        free(t->by_ino);
        free(t->by_name);
        pthread_mutex_destroy(&t->lock);
        free(t);
}

int inodes_path(struct inodes *t, uint64_t ino, const char *name, char **ret) {
        size_t len = name ? strlen(name) + 1 : 0;
        int r = 0;

        pthread_mutex_lock(&t->lock);
        struct inode *i = find_ino(t, ino);
        /* the length first, then the names from the end */
        for (struct inode *p = i; p && p != &t->root; p = find_ino(t, p->parent)) {
                if (!p->parent) {
                        i = NULL;
                        break;
                }
                len += strlen(p->name) + 1;
        }
        if (!i) {
                r = -ENOENT;
                goto out;
        }
        char *s = malloc(len + 2);
        if (!s) {
                r = -ENOMEM;
                goto out;
        }
        size_t at = len;
        s[at] = 0;
        if (name) {
                at -= strlen(name);
                memcpy(s + at, name, strlen(name));
                s[--at] = '/';
        }
        for (struct inode *p = i; p != &t->root; p = find_ino(t, p->parent)) {
                size_t n = strlen(p->name);
                at -= n;
                memcpy(s + at, p->name, n);
                s[--at] = '/';
        }
        if (len == 0)
                strcpy(s, "/");
        *ret = s;
out:
        pthread_mutex_unlock(&t->lock);
        return r;
}

int inodes_add(struct inodes *t, uint64_t parent, const char *name, int64_t id, uint64_t *ret) {
        int r = 0;

        pthread_mutex_lock(&t->lock);
        struct inode *p = find_ino(t, parent), *i = find_name(t, parent, name);
        if (!p) {
                r = -ENOENT;
                goto out;
        }
        if (i && id && i->id && i->id != id) {
                /* another shelf by that name now (another node's change): a new inode */
                unlink_name(t, i);
                i = NULL;
        }
        if (!i) {
                if (t->n >= t->buckets && grow(t) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                i = calloc(1, sizeof *i);
                if (!i || !(i->name = strdup(name))) {
                        free(i);
                        r = -ENOMEM;
                        goto out;
                }
                i->ino = t->next++;
                i->parent = parent;
                p->children++;
                link_ino(t, i);
                link_name(t, i);
                t->n++;
        }
        if (id)
                i->id = id;
        i->nlookup++;
        *ret = i->ino;
out:
        pthread_mutex_unlock(&t->lock);
        return r;
}

void inodes_forget(struct inodes *t, uint64_t ino, uint64_t n) {
        pthread_mutex_lock(&t->lock);
        struct inode *i = find_ino(t, ino);
        if (i && i != &t->root) {
                i->nlookup = i->nlookup > n ? i->nlookup - n : 0;
                maybe_free(t, i);
        }
        pthread_mutex_unlock(&t->lock);
}

void inodes_remove(struct inodes *t, uint64_t parent, const char *name) {
        pthread_mutex_lock(&t->lock);
        struct inode *i = find_name(t, parent, name);
        if (i) {
                unlink_name(t, i);
                maybe_free(t, i);
        }
        pthread_mutex_unlock(&t->lock);
}

void inodes_remove_ino(struct inodes *t, uint64_t ino) {
        pthread_mutex_lock(&t->lock);
        struct inode *i = find_ino(t, ino);
        if (i && i != &t->root) {
                unlink_name(t, i);
                maybe_free(t, i);
        }
        pthread_mutex_unlock(&t->lock);
}

void inodes_move(struct inodes *t, uint64_t parent, const char *name, uint64_t newparent, const char *newname, bool hide) {
        pthread_mutex_lock(&t->lock);
        struct inode *i = find_name(t, parent, name), *old = find_name(t, newparent, newname), *np = find_ino(t, newparent);
        char *copy = strdup(newname);
        if (old && old != i) {
                unlink_name(t, old);
                maybe_free(t, old);
        }
        if (i && i != old) {
                /* the new parent is held before the old one is let go (it may be the same) */
                if (np && copy) {
                        np->children++;
                        unlink_name(t, i);
                        i->parent = newparent;
                        i->name = copy;
                        copy = NULL;
                        link_name(t, i);
                } else {
                        unlink_name(t, i);
                        maybe_free(t, i);
                }
                if (hide)
                        i->hidden = true;
        }
        free(copy);
        pthread_mutex_unlock(&t->lock);
}

unsigned inodes_open_count(struct inodes *t, uint64_t parent, const char *name, uint64_t *ret_ino) {
        pthread_mutex_lock(&t->lock);
        struct inode *i = find_name(t, parent, name);
        unsigned n = i ? i->open : 0;
        *ret_ino = i ? i->ino : 0;
        pthread_mutex_unlock(&t->lock);
        return n;
}

unsigned inodes_open(struct inodes *t, uint64_t ino, int delta, bool *ret_hidden) {
        unsigned n = 0;
        bool hidden = false;

        pthread_mutex_lock(&t->lock);
        struct inode *i = find_ino(t, ino);
        if (i) {
                if (delta > 0)
                        i->open++;
                else if (i->open)
                        i->open--;
                n = i->open;
                hidden = i->hidden;
        }
        pthread_mutex_unlock(&t->lock);
        if (ret_hidden)
                *ret_hidden = hidden;
        return n;
}

void inodes_find(struct inodes *t, const char *path, uint64_t *ret_parent, uint64_t *ret_ino) {
        uint64_t parent = 0, ino = ROOT_INO;
        char name[256];

        pthread_mutex_lock(&t->lock);
        for (const char *p = path; ino && *p; ) {
                while (*p == '/')
                        p++;
                size_t n = strcspn(p, "/");
                if (n == 0)
                        break;
                parent = ino;
                if (n >= sizeof name) {
                        ino = 0;
                        break;
                }
                memcpy(name, p, n);
                name[n] = 0;
                struct inode *i = find_name(t, parent, name);
                ino = i ? i->ino : 0;
                p += n;
                /* a parent the table does not know: neither is known */
                if (!ino && p[strspn(p, "/")])
                        parent = 0;
        }
        pthread_mutex_unlock(&t->lock);
        *ret_parent = parent;
        *ret_ino = ino;
}
