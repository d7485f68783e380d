/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame shelf ls|create|mkdir|resize|rm|info|mv|fill|checksum: the Librarian's shelves, from
 * the host (through the cluster's Librarian port) or inside a node (torms:9093).
 * fame librarian VERB: runs fame-librarian.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cluster.h"
#include "config.h"
#include "fame.h"
#include "librarian-client.h"
#include "log.h"
#include "plan.h"
#include "proto.h"
#include "util.h"
#include "verbs.h"

/* libfame internal (lib/fame-internal.h): this node's id from $FAME_NODE, fw_cfg or the kernel
 * command line. */
int fame_read_node_identity(uint32_t *ret_node, char **ret_cluster);

enum { SHELF_ADDRESS = 0x300, SHELF_NODE, SHELF_JSON };
const struct verb_options shelf_options = {
        .intro = "Where the Librarian is: --address HOST:PORT, else $FAME_LIBRARIAN, else inside a node\n"
                 "torms:9093, else (on the host) the Librarian `fame up` started for the cluster.\n\n",
        .heading = "Common options",
        .list = (const struct verb_option[]) {
                { "address", SHELF_ADDRESS, "HOST:PORT", "the Librarian to talk to" },
                { "node", SHELF_NODE, "N", "on the host: act as node N (default 1); inside a node the\n"
                                           "node's own id is used and the Librarian accepts no other" },
                { "json", SHELF_JSON, NULL, "machine-readable output" },
                /* the cluster options, in the shelf verbs' words */
                { "cluster", .help = "on the host: the cluster (default \"default\")", .flags = VERB_OPT_SEE },
                { "config", .flags = VERB_OPT_SEE | VERB_OPT_JOIN },
                { "set", .help = "as for the cluster verbs", .flags = VERB_OPT_SEE },
                { .group = &cluster_options, .flags = VERB_OPT_UNLISTED },
                {}
        },
};

struct shelf_opts {
        struct cluster_opts cluster;
        const char *address;
        uint32_t node;          /* FAM/E node number (host: which node to act as) */
        bool json;
};

struct shelf_ctx {
        struct fame_librarian *lib;
        struct fame_geometry geo;
        bool have_geo;
        char *fam_path;         /* host: the cluster's FAM file */
        char *state_dir;        /* host: the cluster's state directory (its checker) */
};

static void ctx_done(struct shelf_ctx *x) {
        fame_librarian_disconnect(x->lib);
        free(x->fam_path);
        free(x->state_dir);
}

/* 1 handled, 0 not a shelf option, <0 error */
static int shelf_opt(const struct verb *v, int ch, struct shelf_opts *o) {
        int r = cluster_opt(v, ch, &o->cluster);
        if (r != 0)
                return r;
        switch (ch) {
        case SHELF_ADDRESS:
                o->address = optarg;
                return 1;
        case SHELF_NODE:
                if (parse_uint32(optarg, 1, FAME_MAX_NODES, &o->node) < 0)
                        return cli_usage_error(v, "--node '%s' is not a node number (1-%u)", optarg, FAME_MAX_NODES);
                return 1;
        case SHELF_JSON:
                o->json = true;
                return 1;
        }
        return 0;
}

static bool in_node(uint32_t *ret_node) {
        char *cluster = NULL;
        uint32_t n = 0;
        if (fame_read_node_identity(&n, &cluster) < 0)
                n = 0;
        free(cluster);
        *ret_node = n;
        return n > 0 && access("/sys/bus/pci/devices", F_OK) == 0 && !getenv("FAME_PATH");
}

/*
 * Connects: --address, else $FAME_LIBRARIAN, else inside a node torms:9093, else the cluster's
 * Librarian on 127.0.0.1 (from its cluster.json).  The node identity: --node, else this node,
 * else node 1; turned into the Librarian's node id with the FAM's geometry.
 */
static int shelf_connect(const struct verb *v, const struct shelf_opts *o, struct shelf_ctx *x) {
        char address[64];
        const char *addr = o->address;
        uint32_t node = 0;
        int r;

        *x = (struct shelf_ctx) {};
        bool node_side = in_node(&node);
        if (o->node)
                node = o->node;
        if (!addr) {
                const char *env = getenv("FAME_LIBRARIAN");
                if (env && *env)
                        addr = env;
        }
        if (node_side) {
                struct fame *fam = NULL;
                if (fame_open(NULL, FAME_OPEN_RDONLY | FAME_OPEN_LAZY, &fam) >= 0) {
                        x->geo = *fame_get_geometry(fam);
                        x->have_geo = true;
                        fame_close(fam);
                }
        } else {
                struct fame_config c;
                struct cluster_plan p;
                r = load_config(&o->cluster, NULL, &c);
                if (r < 0)
                        return r;
                r = plan_load(c.state_dir, &p);
                if (r < 0 && !addr) {
                        log_error_errno(r, "Cluster '%s' has never been started, so it has no Librarian; start it with 'fame up', or give --address HOST:PORT",
                                        c.name);
                        config_done(&c);
                        return r;
                }
                const char *fam_path = r >= 0 ? p.fam_path : c.fam_path;
                if (fame_file_inspect(fam_path, &x->geo) >= 0) {
                        x->have_geo = true;
                        x->fam_path = strdup(fam_path);
                        x->state_dir = strdup(r >= 0 ? p.state_dir : c.state_dir);
                }
                if (!addr) {
                        if (!p.librarian_port) {
                                log_error("Cluster '%s' runs no Librarian (see 'fame status'); restart it with 'fame up'", c.name);
                                plan_done(&p);
                                config_done(&c);
                                return -ENOENT;
                        }
                        snprintf(address, sizeof address, "127.0.0.1:%u", p.librarian_port);
                        addr = address;
                        /* the cluster's host port wants the owner's secret (docs/librarian.md) */
                        plan_use_host_secret(&p);
                }
                if (r >= 0)
                        plan_done(&p);
                config_done(&c);
        }
        r = fame_librarian_connect(addr, &x->lib);
        if (r < 0)
                return r;       /* libfame logged why */
        uint32_t lnode = node ? node : 1;
        if (x->have_geo) {
                lnode = fame_librarian_node_id(&x->geo, node ? node : 1);
                if (!lnode)
                        return cli_usage_error(v, "node %" PRIu32 " has no place in the Librarian's topology", node);
        }
        fame_librarian_set_node(x->lib, lnode);
        return 0;
}

/* A request's result r; a failure is said with the Librarian's reason: "WHAT: reason". */
static int said(struct shelf_ctx *x, const char *what, int r) {
        if (r < 0)
                log_error("%s: %s", what, fame_librarian_error(x->lib));
        return r;
}

static int64_t member(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return json_object_get_int64(v);
}

static const char *member_str(struct json_object *o, const char *key) {
        struct json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return json_object_get_string(v);
}

static void mode_string(int64_t mode, char buf[11]) {
        static const char rwx[] = "rwxrwxrwx";
        buf[0] = S_ISDIR(mode) ? 'd' : S_ISLNK(mode) ? 'l' : S_ISBLK(mode) ? 'b' : '-';
        for (int i = 0; i < 9; i++)
                buf[1 + i] = (mode & (0400 >> i)) ? rwx[i] : '-';
        buf[10] = 0;
}

static void print_json_obj(struct json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Common front: options, positional count, connection.  extra_fn handles the verb's own
 * options. */
static int front(const struct verb *v, int argc, char **argv, struct shelf_opts *o, struct shelf_ctx *x,
                 int (*extra_fn)(const struct verb *, int, void *), void *ud) {
        bool first = true;
        int ch, r;

        *o = (struct shelf_opts) {};
        while ((ch = verb_getopt(v, argc, argv, &first)) != -1) {
                r = shelf_opt(v, ch, o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (!extra_fn || (r = extra_fn(v, ch, ud)) <= 0)
                        return r < 0 ? r : -EINVAL;
        }
        return shelf_connect(v, o, x);
}

int cmd_shelf_ls(const struct verb *v, int argc, char **argv) {
        struct shelf_opts o;
        struct shelf_ctx x = {};
        _cleanup_(json_object_putp) struct json_object *list = NULL;
        int r = front(v, argc, argv, &o, &x, NULL, NULL);
        if (r < 0)
                goto out;
        const char *path = optind < argc ? argv[optind] : "/";
        r = said(&x, path, librarian_list_shelves(x.lib, path, &list));
        if (r < 0)
                goto out;
        if (o.json) {
                struct json_object *a = json_object_new_array();
                for (size_t i = 2; i < json_object_array_length(list); i++)
                        json_object_array_add(a, json_object_get(json_object_array_get_idx(list, i)));
                print_json_obj(a);
                json_object_put(a);
                goto out;
        }
        printf("%-10s %6s %12s %6s  %s\n", "MODE", "NODE", "SIZE", "BOOKS", "NAME");
        struct json_object *self = json_object_array_get_idx(list, 0);
        bool dir = S_ISDIR(member(self, "mode"));
        for (size_t i = dir ? 2 : 0; i < (dir ? json_object_array_length(list) : 1); i++) {
                struct json_object *s = json_object_array_get_idx(list, i);
                char m[11], sz[32];
                mode_string(member(s, "mode"), m);
                printf("%-10s %6" PRId64 " %12s %6" PRId64 "  %s\n", m, member(s, "creator_id"),
                       format_bytes((uint64_t) member(s, "size_bytes"), sz, sizeof sz), member(s, "book_count"),
                       dir ? member_str(s, "name") : path);
        }
out:
        ctx_done(&x);
        return r;
}

/* The help shows -s, -m and -p, but they never worked: getopt is not given them. */
const struct verb_options shelf_create_options = {
        .list = (const struct verb_option[]) {
                { "size", 's', "SIZE", "bytes (K, M, G, T suffixes); rounded up to whole books", VERB_OPT_SHORT },
                { "mode", 'm', "MODE", "octal permission bits (default 0644, minus the umask)", VERB_OPT_SHORT },
                { "policy", 'p', "POLICY", "allocation policy: RandomBooks (default), LocalNode,\n"
                                           "LocalEnc, NonLocal_Enc, Nearest, NearestRemote, NearestEnc,\n"
                                           "NearestRack, LZAascending, LZAdescending, RequestIG", VERB_OPT_SHORT },
                { .group = &shelf_options },
                {}
        },
};

struct create_extra {
        uint64_t size;
        bool have_size;
        uint32_t mode;
        const char *policy;
};

static int create_extra_fn(const struct verb *v, int ch, void *ud) {
        struct create_extra *e = ud;
        switch (ch) {
        case 's':
                if (parse_size(optarg, &e->size) < 0)
                        return cli_usage_error(v, "--size '%s' is not a size (e.g. 64M)", optarg);
                e->have_size = true;
                return 1;
        case 'm': {
                char *end = NULL;
                unsigned long m = strtoul(optarg, &end, 8);
                if (!end || *end || m > 07777)
                        return cli_usage_error(v, "--mode '%s' is not an octal mode (e.g. 0640)", optarg);
                e->mode = (uint32_t) m;
                return 1;
        }
        case 'p':
                e->policy = optarg;
                return 1;
        }
        return 0;
}

static int resize_to(struct shelf_ctx *x, const char *path, int64_t id, uint64_t size) {
        return said(x, path, librarian_resize_shelf(x->lib, path, id, (int64_t) size, false, NULL));
}

static int print_info(struct shelf_ctx *x, const char *path, bool json);

int cmd_shelf_create(const struct verb *v, int argc, char **argv) {
        struct create_extra e = { .mode = 0644 };
        struct shelf_opts o;
        struct shelf_ctx x = {};
        struct fame_shelf *s = NULL;
        int r = front(v, argc, argv, &o, &x, create_extra_fn, &e);
        if (r < 0)
                goto out;
        const char *path = argv[optind];
        /* libfame's shelf calls, without a FAM (nothing is mapped here); their errors are said
         * here, with the path */
        librarian_set_quiet(x.lib, true);
        r = fame_shelf_open(NULL, x.lib, path, FAME_SHELF_CREATE | FAME_SHELF_EXCL | FAME_SHELF_MODE_EXACT, e.mode, &s);
        if (r == -EEXIST) {
                r = log_error_errno(r, "%s: already exists (resize it with 'fame shelf resize')", path);
                goto out;
        }
        if (r < 0) {
                said(&x, path, r);
                goto out;
        }
        if (e.policy)
                r = said(&x, path, librarian_set_xattr(x.lib, path, "user.LFS.AllocationPolicy", e.policy,
                                                       strlen(e.policy), NULL));
        if (r >= 0 && e.have_size)
                r = said(&x, path, fame_shelf_resize(s, e.size));
        int k = said(&x, path, fame_shelf_close(s));
        if (r >= 0 && k < 0)
                r = k;
        if (r < 0) {
                /* nothing half-made: a shelf that could not be sized is removed again */
                (void) librarian_destroy_shelf(x.lib, path, NULL);
                goto out;
        }
        r = print_info(&x, path, o.json);
out:
        ctx_done(&x);
        return r;
}

int cmd_shelf_mkdir(const struct verb *v, int argc, char **argv) {
        struct shelf_opts o;
        struct shelf_ctx x = {};
        int r = front(v, argc, argv, &o, &x, NULL, NULL);
        if (r >= 0) {
                const char *path = argv[optind];
                if (librarian_get_shelf(x.lib, path, NULL) >= 0)
                        r = log_error_errno(-EEXIST, "%s: already exists", path);
                else
                        r = said(&x, path, librarian_mkdir(x.lib, path, S_IFDIR | 0777, NULL));
        }
        ctx_done(&x);
        return r;
}

/* front(), then the shelf named by the first argument. */
static int shelf_front(const struct verb *v, int argc, char **argv, struct shelf_opts *o, struct shelf_ctx *x,
                       struct json_object **ret_shelf) {
        int r = front(v, argc, argv, o, x, NULL, NULL);
        if (r < 0)
                return r;
        return said(x, argv[optind], librarian_get_shelf(x->lib, argv[optind], ret_shelf));
}

int cmd_shelf_resize(const struct verb *v, int argc, char **argv) {
        struct shelf_opts o;
        struct shelf_ctx x = {};
        _cleanup_(json_object_putp) struct json_object *shelf = NULL;
        uint64_t size;
        int r = shelf_front(v, argc, argv, &o, &x, &shelf);
        if (r >= 0 && parse_size(argv[optind + 1], &size) < 0)
                r = cli_usage_error(v, "SIZE '%s' is not a size (e.g. 64M)", argv[optind + 1]);
        if (r >= 0)
                r = resize_to(&x, argv[optind], member(shelf, "id"), size);
        if (r >= 0)
                r = print_info(&x, argv[optind], o.json);
        ctx_done(&x);
        return r;
}

int cmd_shelf_rm(const struct verb *v, int argc, char **argv) {
        struct shelf_opts o;
        struct shelf_ctx x = {};
        _cleanup_(json_object_putp) struct json_object *shelf = NULL;
        int r = shelf_front(v, argc, argv, &o, &x, &shelf);
        if (r >= 0)
                r = said(&x, argv[optind], S_ISDIR(member(shelf, "mode")) ? librarian_rmdir(x.lib, argv[optind], NULL) :
                                                                             librarian_destroy_shelf(x.lib, argv[optind], NULL));
        ctx_done(&x);
        return r;
}

int cmd_shelf_mv(const struct verb *v, int argc, char **argv) {
        struct shelf_opts o;
        struct shelf_ctx x = {};
        _cleanup_(json_object_putp) struct json_object *shelf = NULL;
        int r = shelf_front(v, argc, argv, &o, &x, &shelf);
        if (r < 0)
                goto out;
        const char *path = argv[optind], *newpath = argv[optind + 1];
        if (r >= 0)
                r = said(&x, path, librarian_rename_shelf(x.lib, path, member(shelf, "id"), newpath, NULL));
out:
        ctx_done(&x);
        return r;
}

/* Books and their FAM offsets (igstart from books_per_IG, then the book area). */
static int print_info(struct shelf_ctx *x, const char *path, bool json) {
        _cleanup_(json_object_putp) struct json_object *shelf = NULL, *books = NULL, *stats = NULL, *policy = NULL;
        int r;

        r = said(x, path, librarian_fame_stat_shelf(x->lib, path, &shelf));
        if (r >= 0)
                r = said(x, path, librarian_list_shelf_books(x->lib, path, &books));
        if (r >= 0)
                r = said(x, path, librarian_get_fs_stats(x->lib, &stats));
        if (r < 0)
                return r;
        if (S_ISREG(member(shelf, "mode")))
                (void) librarian_get_xattr(x->lib, path, "user.LFS.AllocationPolicy", &policy);
        uint64_t book = (uint64_t) member(stats, "book_size_bytes"), igbooks[128], igstart[128];
        librarian_igstart(stats, igbooks, igstart);
        bool offsets = x->have_geo && member(stats, "BIImode") == 0 && x->geo.book_size == book;
        struct json_object *out = json_object_get(shelf), *blist = json_object_new_array();
        json_object_object_del(out, "bos");
        json_object_object_del(out, "open_handle");
        json_object_object_add(out, "path", json_object_new_string(path));
        struct json_object *pv = NULL;
        if (policy && json_object_object_get_ex(policy, "value", &pv) && pv)
                json_object_object_add(out, "policy", json_object_new_string(json_object_get_string(pv)));
        for (size_t i = 0; i < json_object_array_length(books); i++) {
                struct json_object *b = json_object_array_get_idx(books, i), *jb = json_object_new_object();
                uint64_t ig = (uint64_t) member(b, "intlv_group") & 0xFFFF, num = (uint64_t) member(b, "book_num");
                json_object_object_add(jb, "index", json_object_new_int64((int64_t) i));
                json_object_object_add(jb, "id", json_object_new_int64(member(b, "id")));
                json_object_object_add(jb, "intlv_group", json_object_new_int64((int64_t) ig));
                json_object_object_add(jb, "book_num", json_object_new_int64((int64_t) num));
                if (offsets && ig < 128)
                        json_object_object_add(jb, "fam_offset",
                                               json_object_new_int64((int64_t) (x->geo.book_area_offset + (igstart[ig] + num) * book)));
                json_object_array_add(blist, jb);
        }
        json_object_object_add(out, "books", blist);
        if (json) {
                print_json_obj(out);
        } else {
                char m[11], sz[32], bs[32];
                mode_string(member(out, "mode"), m);
                printf("shelf     %s (id %" PRId64 ")\n", path, member(out, "id"));
                printf("size      %s (%" PRId64 " bytes), %" PRId64 " book%s of %s\n",
                       format_bytes((uint64_t) member(out, "size_bytes"), sz, sizeof sz), member(out, "size_bytes"),
                       member(out, "book_count"), member(out, "book_count") == 1 ? "" : "s", format_bytes(book, bs, sizeof bs));
                printf("mode      %s  owner %" PRId64 ":%" PRId64 "  created by node %" PRId64 "\n", m, member(out, "uid"),
                       member(out, "gid"), member(out, "creator_id"));
                if (json_object_object_get_ex(out, "policy", &pv))
                        printf("policy    %s\n", json_object_get_string(pv));
                if (json_object_array_length(blist)) {
                        printf("%6s %4s %6s  %-18s  %s\n", "BOOK", "IG", "NUM", "LZA", "FAM OFFSET");
                        for (size_t i = 0; i < json_object_array_length(blist); i++) {
                                struct json_object *b = json_object_array_get_idx(blist, i), *off = NULL;
                                char offs[32] = "-";
                                if (json_object_object_get_ex(b, "fam_offset", &off))
                                        snprintf(offs, sizeof offs, "0x%" PRIx64, (uint64_t) json_object_get_int64(off));
                                printf("%6zu %4" PRId64 " %6" PRId64 "  0x%016" PRIx64 "  %s\n", i, member(b, "intlv_group"),
                                       member(b, "book_num"), (uint64_t) member(b, "id"), offs);
                        }
                }
        }
        json_object_put(out);
        return 0;
}

int cmd_shelf_info(const struct verb *v, int argc, char **argv) {
        struct shelf_opts o;
        struct shelf_ctx x = {};
        int r = front(v, argc, argv, &o, &x, NULL, NULL);
        if (r >= 0)
                r = print_info(&x, argv[optind], o.json);
        ctx_done(&x);
        return r;
}

/* On the host, the bytes 0..size of shelf s were written into the cluster's FAM file: its checker
 * (a cluster started with --check) learns of it, book by book.  Inside a node: nothing (the
 * node's QEMU shows the checker every store). */
static int host_wrote(const struct shelf_ctx *x, const struct fame_shelf *s, uint64_t size) {
        uint64_t n = fame_shelf_book_count(s), book = x->geo.book_size;
        if (!x->state_dir || !x->fam_path || !n || !book)
                return 0;
        _cleanup_free_ struct fam_range *ranges = calloc(n, sizeof *ranges);
        if (!ranges)
                return log_error_errno(-ENOMEM, "Out of memory");
        size_t k = 0;
        for (uint64_t i = 0; i < n && i * book < size; i++) {
                int64_t off = fame_shelf_book_offset(s, i);
                if (off < 0)
                        return log_error_errno((int) off, "Cannot find book %" PRIu64 " of the shelf in FAM: %m", i);
                ranges[k++] = (struct fam_range) { (uint64_t) off, size - i * book < book ? size - i * book : book };
        }
        return cluster_check_host_wrote(x->state_dir, x->fam_path, ranges, k);
}

/* Maps the shelf (fame_shelf_map) and fills or checksums its bytes 0..size. */
static int shelf_bytes(const struct verb *v, int argc, char **argv, bool fill) {
        struct shelf_opts o;
        struct shelf_ctx x = {};
        struct fame *fam = NULL;
        struct fame_shelf *s = NULL;
        uint64_t seed = 0;
        int r = front(v, argc, argv, &o, &x, NULL, NULL);
        if (r < 0)
                goto out;
        if (fill && parse_size(argv[optind + 1], &seed) < 0) {
                r = cli_usage_error(v, "SEED '%s' is not a number", argv[optind + 1]);
                goto out;
        }
        r = fame_open(x.fam_path, FAME_OPEN_LAZY | (fill ? 0 : FAME_OPEN_NOREGISTER), &fam);
        if (r < 0)
                goto out;
        r = fame_shelf_open(fam, x.lib, argv[optind], 0, 0, &s);
        if (r < 0)
                goto out;
        uint64_t size = fame_shelf_size(s);
        uint8_t *p = size ? fame_shelf_map(s, NULL) : NULL;
        if (size && !p) {
                r = log_error_errno(negative_errno(), "Cannot map shelf %s: %m", argv[optind]);
                goto out;
        }
        if (fill) {
                uint64_t st = seed | 1;
                for (uint64_t i = 0; i < size; i++)
                        p[i] = (uint8_t) xorshift64(&st);
                fame_persist(p, size);
                r = host_wrote(&x, s, size);
                if (r < 0)
                        goto out;
        } else if (size)
                fame_invalidate(p, size);       /* read FAM, not lines this node cached before */
        printf("%016" PRIx64 "\n", fnv1a64(p, size));
out:
        fame_shelf_close(s);
        fame_close(fam);
        ctx_done(&x);
        return r;
}

int cmd_shelf_fill(const struct verb *v, int argc, char **argv) {
        return shelf_bytes(v, argc, argv, true);
}

int cmd_shelf_checksum(const struct verb *v, int argc, char **argv) {
        return shelf_bytes(v, argc, argv, false);
}

/* fame librarian fsck without --db: the cluster's database (-c/--cluster NAME, else the default
 * cluster) and its FAM, as `fame up` placed them: from its saved plan, else its configuration.
 * Appends --db and --fam to args (n used of them), drops -c NAME. */
static int fsck_defaults(const struct verb *v, char **args, int *n, char **ret_db, char **ret_fam) {
        struct cluster_opts co = {};
        struct fame_config c;
        struct cluster_plan p;
        int k = 2;

        for (int i = 2; i < *n; i++) {
                if (!strcmp(args[i], "--db") || strncmp(args[i], "--db=", 5) == 0)
                        return 0;
                if ((!strcmp(args[i], "-c") || !strcmp(args[i], "--cluster")) && i + 1 < *n)
                        co.cluster = args[++i];
                else if (strncmp(args[i], "--cluster=", 10) == 0)
                        co.cluster = args[i] + 10;
                else
                        args[k++] = args[i];
        }
        *n = k;
        int r = load_config(&co, NULL, &c);
        if (r < 0)
                return cli_usage_error(v, "fsck: no --db PATH and no cluster configuration");
        if (plan_load(c.state_dir, &p) >= 0 && p.librarian_dir) {
                *ret_db = strf("%s/librarian.db", p.librarian_dir);
                *ret_fam = p.fam_path ? strdup(p.fam_path) : NULL;
                plan_done(&p);
        } else {
                *ret_db = strf("%s/librarian/librarian.db", c.state_dir);
                *ret_fam = c.fam_path ? strdup(c.fam_path) : NULL;
        }
        config_done(&c);
        if (!*ret_db)
                return -ENOMEM;
        args[(*n)++] = (char *) "--db";
        args[(*n)++] = *ret_db;
        if (*ret_fam && access(*ret_fam, R_OK) == 0 && access(*ret_db, F_OK) == 0) {
                args[(*n)++] = (char *) "--fam";
                args[(*n)++] = *ret_fam;
        }
        return 0;
}

/* fame librarian VERB ARGS: runs fame-librarian VERB ARGS. */
/* Runs fame-librarian [VERB] ARGS: argv[1..] after verb (NULL: argv[1] is the verb). */
static int exec_librarian(const struct verb *v, const char *verb, int argc, char **argv) {
        _cleanup_free_ char *bin = cluster_librarian_binary();
        _cleanup_free_ char *db = NULL, *fam = NULL;
        if (!bin)
                return cli_fail(-ENOENT, "Cannot find fame-librarian next to fame; rebuild with 'make' or set FAME_LIBRARIAN_BINARY");
        char **args = calloc((size_t) argc + 6, sizeof *args);
        if (!args)
                return -ENOMEM;
        int n = 0;
        args[n++] = bin;
        if (verb)
                args[n++] = (char *) verb;
        for (int i = 1; i < argc; i++)
                args[n++] = argv[i];
        if (!verb && !strcmp(argv[1], "fsck")) {
                int r = fsck_defaults(v, args, &n, &db, &fam);
                if (r != 0) {
                        free(args);
                        return r;
                }
        }
        args[n] = NULL;
        fflush(stdout);
        execv(bin, args);
        int r = negative_errno();
        free(args);
        return cli_fail(r, "Cannot run %s: %s", bin, strerror(-r));
}

int cmd_librarian(const struct verb *v, int argc, char **argv) {
        if (argc < 2)
                return cli_usage_error(v, "which one: serve, init, topology, bench or fsck?");
        return exec_librarian(v, NULL, argc, argv);
}

/* fame lmp serve ARGS: runs fame-librarian lmp ARGS (docs/lmp.md). */
int cmd_lmp_serve(const struct verb *v, int argc, char **argv) {
        return exec_librarian(v, "lmp", argc, argv);
}
