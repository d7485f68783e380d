/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame-librarian: the Librarian daemon and its tools.  `fame librarian VERB` runs this binary;
 * it can also be run by itself.
 *
 *   fame-librarian serve --db PATH [--fam FILE] [--port 9093] [--bind 127.0.0.1 [--insecure-remote]]
 *                        [--node-port NODE=PORT]... [--node-socket NODE=PATH]... [--port-file FILE]
 *                        [--check-state DIR]
 *                        [--max-per-peer N] [--idle-timeout SECONDS] [--max-output BYTES]
 *                        [--handle-grace SECONDS] [--sync second|each-change]
 *                        [--secrets DIR | --trust-clients]
 *                        [--http-port PORT [--http-bind ADDR] [--http-port-file FILE]
 *                         [--cluster NAME] [--cluster-state DIR]]
 *   fame-librarian lmp --db PATH [--fam FILE] [--port PORT] [--bind ADDR]   (fame lmp serve)
 *   fame-librarian init --db PATH --topology FILE [--force]
 *   fame-librarian topology --fam FILE [--comment TEXT | --tmcf]
 *   fame-librarian bench [--address HOST:PORT [--server-pid PID]] [--clients LIST] [--seconds S] [--fam-size SIZE]
 *   fame-librarian fsck --db PATH [--fam FILE] [--repair] [--json]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "db.h"
#include "engine.h"
#include "fsck.h"
#include "fame.h"
#include "log.h"
#include "macro.h"
#include "librarian-secret.h"
#include "lmp.h"
#include "server.h"
#include "topology.h"
#include "util.h"
#include "fame-constants.h"

#define streq(a, b) (strcmp((a), (b)) == 0)

static volatile sig_atomic_t stop;

static int usage_error(const char *verb, const char *fmt, ...) _printf_(2, 3);
static int usage_error(const char *verb, const char *fmt, ...) {
        char buf[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        /* "lmp serve" is fame lmp serve; the rest are fame librarian VERB */
        if (strncmp(verb, "lmp ", 4) == 0)
                log_error("%s: %s; see fame help lmp", verb, buf);
        else
                log_error("librarian %s: %s; see fame help librarian", verb, buf);
        return 2;
}

static int parse_port(const char *s, uint16_t *ret) {
        uint32_t v;
        int r = parse_uint32(s, 0, 65535, &v);
        if (r < 0)
                return r;
        *ret = (uint16_t) v;
        return 0;
}

static int verb_serve(int argc, char **argv) {
        static const struct option opts[] = {
                { "db", required_argument, NULL, 'd' },
                { "fam", required_argument, NULL, 'f' },
                { "port", required_argument, NULL, 'p' },
                { "bind", required_argument, NULL, 'b' },
                { "node-port", required_argument, NULL, 'n' },
                { "node-socket", required_argument, NULL, 'U' },
                { "port-file", required_argument, NULL, 'P' },
                { "check-state", required_argument, NULL, 'C' },
                { "insecure-remote", no_argument, NULL, 'I' },
                { "secrets", required_argument, NULL, 'S' },
                { "trust-clients", no_argument, NULL, 't' },
                { "max-per-peer", required_argument, NULL, 'M' },
                { "idle-timeout", required_argument, NULL, 'T' },
                { "max-output", required_argument, NULL, 'O' },
                { "handle-grace", required_argument, NULL, 'G' },
                { "sync", required_argument, NULL, 'Y' },
                /* the management view (docs/lmp.md) */
                { "http-port", required_argument, NULL, 'h' },
                { "http-bind", required_argument, NULL, 'H' },
                { "http-port-file", required_argument, NULL, 'F' },
                { "cluster", required_argument, NULL, 'c' },
                { "cluster-state", required_argument, NULL, 's' },
                {}
        };
        struct server_options o = { .port = FAME_LIBRARIAN_PORT };
        bool insecure_remote = false;
        struct server *s = NULL;
        _cleanup_free_ char *err = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'd': o.db_path = optarg; break;
                case 'f': o.fam_path = optarg; break;
                case 'b': o.bind = optarg; break;
                case 'P': o.port_file = optarg; break;
                case 'C': o.check_state = optarg; break;
                case 'I': insecure_remote = true; break;
                case 'S': o.secrets_dir = optarg; break;
                case 't': o.trust_clients = true; break;
                case 'H': o.http_bind = optarg; break;
                case 'F': o.http_port_file = optarg; break;
                case 'c': o.cluster_name = optarg; break;
                case 's': o.cluster_state = optarg; break;
                case 'h':
                        if (parse_port(optarg, &o.http_port) < 0)
                                return usage_error("serve", "--http-port %s: not a port number (0-65535; 0: any free one)", optarg);
                        o.http = true;
                        break;
                case 'Y':
                        if (streq(optarg, "each-change"))
                                o.sync_each_change = true;
                        else if (!streq(optarg, "second"))
                                return usage_error("serve", "--sync %s: use \"second\" (the default: commits reach the disk "
                                                   "within a second) or \"each-change\" (every change before its reply)", optarg);
                        break;
                case 'G': {
                        char *end = NULL;
                        errno = 0;
                        double g = strtod(optarg, &end);
                        if (errno || !end || end == optarg || *end || !(g >= 0) || g > 86400)
                                return usage_error("serve", "--handle-grace %s: seconds, 0-86400", optarg);
                        /* 0: the previous run's handles are dropped at once */
                        o.handle_grace = g > 0 ? g : -1;
                        break;
                }
                case 'p':
                        if (parse_port(optarg, &o.port) < 0)
                                return usage_error("serve", "--port %s: not a port number (0-65535)", optarg);
                        break;
                case 'n': {
                        const char *eq = strchr(optarg, '=');
                        char id[16];
                        uint32_t node;
                        if (o.n_pins == SERVER_MAX_PINS || !eq)
                                return usage_error("serve", "--node-port %s: use NODE=PORT", optarg);
                        /* argv stays as given (ps shows it whole) */
                        snprintf(id, sizeof id, "%.*s", (int) (eq - optarg < 15 ? eq - optarg : 15), optarg);
                        if (parse_uint32(id, 1, 80, &node) < 0 || parse_port(eq + 1, &o.pins[o.n_pins].port) < 0)
                                return usage_error("serve", "--node-port %s: use NODE=PORT with NODE 1-%d", optarg, FAME_LIBRARIAN_MAX_NODE);
                        o.pins[o.n_pins++].node_id = node;
                        break;
                }
                case 'U': {
                        const char *eq = strchr(optarg, '=');
                        char id[16];
                        uint32_t node;
                        if (o.n_sockets == SERVER_MAX_PINS || !eq || !eq[1])
                                return usage_error("serve", "--node-socket %s: use NODE=PATH", optarg);
                        snprintf(id, sizeof id, "%.*s", (int) (eq - optarg < 15 ? eq - optarg : 15), optarg);
                        if (parse_uint32(id, 1, FAME_LIBRARIAN_MAX_NODE, &node) < 0)
                                return usage_error("serve", "--node-socket %s: use NODE=PATH with NODE 1-%d", optarg,
                                                   FAME_LIBRARIAN_MAX_NODE);
                        o.sockets[o.n_sockets].node_id = node;
                        o.sockets[o.n_sockets++].path = eq + 1;
                        break;
                }
                /* the limits of docs/librarian.md, "Limits and fairness" */
                case 'M': {
                        uint32_t v;
                        if (parse_uint32(optarg, 1, SERVER_MAX_CLIENTS, &v) < 0)
                                return usage_error("serve", "--max-per-peer %s: use a number of connections from 1 to %u",
                                                   optarg, (unsigned) SERVER_MAX_CLIENTS);
                        o.max_per_peer = v;
                        break;
                }
                case 'T': {
                        char *end = NULL;
                        errno = 0;
                        double v = strtod(optarg, &end);
                        if (errno || !end || end == optarg || *end || !(v >= 0.1 && v <= 86400))
                                return usage_error("serve", "--idle-timeout %s: use a number of seconds from 0.1 to 86400",
                                                   optarg);
                        o.idle_timeout = v;
                        break;
                }
                case 'O': {
                        uint64_t v;
                        if (parse_size(optarg, &v) < 0 || v < (4u << 10) || v > (UINT64_C(1) << 30))
                                return usage_error("serve", "--max-output %s: use a size from 4K to 1G, e.g. 256K", optarg);
                        o.max_output = (size_t) v;
                        break;
                }
                default:
                        return 2;
                }
        if (optind < argc)
                return usage_error("serve", "unexpected argument '%s'", argv[optind]);
        if (!o.db_path)
                return usage_error("serve", "%s", "--db PATH is required");
        if (!o.http && (o.http_bind || o.http_port_file || o.cluster_name || o.cluster_state))
                return usage_error("serve", "%s", "--http-bind, --http-port-file, --cluster and --cluster-state need --http-port");
        /* Who may say what (docs/librarian.md).  With --trust-clients a request's node, uid and
         * gid are what it says: beyond loopback that is anyone on the network. */
        struct in_addr a;
        bool loopback = !o.bind || (inet_pton(AF_INET, o.bind, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127);
        if (!loopback && o.trust_clients && !insecure_remote)
                return usage_error("serve", "--bind %s with --trust-clients: the Librarian then authenticates no caller, so "
                                   "anyone who reaches %s could act as any node and uid; bind 127.0.0.1, drop "
                                   "--trust-clients, or add --insecure-remote on a network you trust",
                                   o.bind, o.bind);
        if (!loopback && !o.trust_clients)
                log_warning("Librarian: --bind %s: the secrets that authenticate callers cross the network in clear text; "
                            "use it on a network you trust", o.bind);
        if (o.secrets_dir && o.trust_clients)
                return usage_error("serve", "%s", "--secrets and --trust-clients: choose one (the second believes every caller)");

        sigset_t orig;
        stop_signals_setup(&stop, &orig);
        /* one descriptor per client: the soft limit (often 1,024) up to the hard one */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        log_warning("Librarian: could not raise the descriptor limit: %m");
        }

        r = server_new(&o, &s, &err);
        if (r >= 0)
                r = server_start(s, &err);
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                server_free(s);
                return 1;
        }
        fprintf(stderr, "fame-librarian: serving '%s' on %s:%u%s%s%s (pid %d)\n", o.db_path,
                o.bind ? o.bind : "127.0.0.1", server_port(s), o.fam_path ? ", FAM " : ", no FAM: freed books are not zeroed",
                o.fam_path ? o.fam_path : "", o.check_state ? ", with the checker" : "", (int) getpid());
        if (server_http_port(s))
                fprintf(stderr, "fame-librarian: the management view is at http://%s:%u/\n",
                        o.http_bind ? o.http_bind : "127.0.0.1", server_http_port(s));
        if (server_secrets_dir(s))
                fprintf(stderr, "fame-librarian: callers authenticate with the secrets in %s (libfame: %s=%s/host.secret)\n",
                        server_secrets_dir(s), LIBRARIAN_SECRET_ENV, server_secrets_dir(s));
        else if (!loopback)
                fprintf(stderr, "fame-librarian: WARNING: serving %s without authentication (--trust-clients --insecure-remote): "
                        "every host that reaches it may act as any node and any uid, root included\n", o.bind);
        else
                fprintf(stderr, "fame-librarian: --trust-clients: every caller is believed (HPE's original clients); "
                        "any local user may act as any node and uid\n");
        r = server_run(s, &stop, &orig);
        server_free(s);
        return r < 0 ? 1 : 0;
}

static int verb_init(int argc, char **argv) {
        static const struct option opts[] = {
                { "db", required_argument, NULL, 'd' },
                { "topology", required_argument, NULL, 't' },
                { "force", no_argument, NULL, 'F' },
                {}
        };
        const char *db = NULL, *topo = NULL;
        bool force = false;
        struct topology *t = NULL;
        _cleanup_free_ char *err = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'd': db = optarg; break;
                case 't': topo = optarg; break;
                case 'F': force = true; break;
                default: return 2;
                }
        if (optind < argc)
                return usage_error("init", "unexpected argument '%s'", argv[optind]);
        if (!db || !topo)
                return usage_error("init", "%s", "--db PATH and --topology FILE are required");
        r = topology_parse_file(topo, &t, &err);
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                return 1;
        }
        free(err);
        err = NULL;
        /* not under a running Librarian */
        _cleanup_close_ int lock_fd = -1;
        r = librarian_db_lock(db, &lock_fd, &err);
        if (r >= 0)
                r = librarian_db_create(db, t, force, &err);
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                topology_free(t);
                return 1;
        }
        printf("Librarian database '%s': %zu nodes, %llu books of %llu MiB (%s mode)\n", db, t->n_nodes,
               (unsigned long long) t->books_total, (unsigned long long) (t->book_size >> 20),
               t->mode == TOPOLOGY_LZA ? "LZA" : "PHYSADDR");
        topology_free(t);
        return 0;
}

/* libfame's error messages (it never prints): the last one, for a one-line error */
static void keep_message(int priority, const char *message, void *userdata) {
        if (priority <= LOG_ERR)
                snprintf(userdata, 512, "%s", message);
}

static int verb_topology(int argc, char **argv) {
        static const struct option opts[] = {
                { "fam", required_argument, NULL, 'f' },
                { "comment", required_argument, NULL, 'c' },
                { "tmcf", no_argument, NULL, 't' },
                {}
        };
        const char *fam = NULL, *comment = NULL;
        bool tmcf = false;
        struct fame_geometry geo;
        _cleanup_free_ char *err = NULL, *ini = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'f': fam = optarg; break;
                case 'c': comment = optarg; break;
                case 't': tmcf = true; break;
                default: return 2;
                }
        if (optind < argc)
                return usage_error("topology", "unexpected argument '%s'", argv[optind]);
        if (!fam)
                return usage_error("topology", "%s", "--fam FILE is required");
        char why[512] = "";
        fame_set_log(keep_message, why);
        r = fame_file_inspect(fam, &geo);
        fame_set_log(NULL, NULL);
        if (r < 0) {
                if (*why)
                        log_error("%s", why);
                else
                        log_error("Cannot read FAM '%s': %s", fam, strerror(-r));
                return 1;
        }
        if (tmcf && comment)
                return usage_error("topology", "%s", "--comment and --tmcf: JSON has no comments; drop --comment");
        r = tmcf ? topology_tmcf_for_geometry(&geo, &ini, &err) : topology_ini_for_geometry(&geo, comment ? comment : fam, &ini, &err);
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                return 1;
        }
        fputs(ini, stdout);
        return 0;
}

/* Exit status: 0 clean (notes allowed), 1 problems found (repaired or not), 2 could not check. */
static int verb_fsck(int argc, char **argv) {
        static const struct option opts[] = {
                { "db", required_argument, NULL, 'd' },
                { "fam", required_argument, NULL, 'f' },
                { "repair", no_argument, NULL, 'r' },
                { "json", no_argument, NULL, 'j' },
                {}
        };
        struct fsck_options o = {};
        struct fsck_result res;
        bool json = false;
        _cleanup_free_ char *err = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'd': o.db_path = optarg; break;
                case 'f': o.fam_path = optarg; break;
                case 'r': o.repair = true; break;
                case 'j': json = true; break;
                default: return 2;
                }
        if (optind < argc)
                return usage_error("fsck", "unexpected argument '%s'", argv[optind]);
        if (!o.db_path)
                return usage_error("fsck", "%s", "--db PATH is required");
        r = librarian_fsck(&o, &res, &err);
        if (r < 0) {
                log_error("%s", err ? err : strerror(-r));
                return 2;
        }
        if (json) {
                struct json_object *top = json_object_new_object(), *list = json_object_new_array();
                json_object_object_add(top, "db", json_object_new_string(o.db_path));
                json_object_object_add(top, "clean", json_object_new_boolean(res.n_problems == 0));
                json_object_object_add(top, "problems", json_object_new_int64((int64_t) res.n_problems));
                json_object_object_add(top, "repaired", json_object_new_int64((int64_t) res.n_repaired));
                json_object_object_add(top, "server_pid", json_object_new_int(res.server_pid));
                for (size_t i = 0; i < res.n; i++) {
                        const struct fsck_problem *p = &res.p[i];
                        struct json_object *e = json_object_new_object();
                        json_object_object_add(e, "check", json_object_new_string(p->check));
                        json_object_object_add(e, "object", json_object_new_string(p->object));
                        json_object_object_add(e, "message", json_object_new_string(p->message));
                        json_object_object_add(e, "note", json_object_new_boolean(p->note));
                        json_object_object_add(e, "repairable", json_object_new_boolean(p->repairable));
                        json_object_object_add(e, "repair", p->repair ? json_object_new_string(p->repair) : NULL);
                        json_object_array_add(list, e);
                }
                json_object_object_add(top, "findings", list);
                puts(json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(top);
        } else {
                for (size_t i = 0; i < res.n; i++) {
                        const struct fsck_problem *p = &res.p[i];
                        printf("%s%s: %s", p->note ? "note: " : "", p->object, p->message);
                        if (p->repair)
                                printf(" [repaired: %s]", p->repair);
                        else if (o.repair && !p->note)
                                printf(" [not repaired]");
                        putchar('\n');
                }
                size_t left = res.n_problems - res.n_repaired, repairable = 0;
                for (size_t i = 0; i < res.n; i++)
                        repairable += !res.p[i].note && res.p[i].repairable;
                if (res.n_problems == 0)
                        printf("%s: clean\n", o.db_path);
                else if (o.repair)
                        printf("%s: %zu problems, %zu repaired, %zu left\n", o.db_path, res.n_problems, res.n_repaired, left);
                else
                        printf("%s: %zu problems (%zu repairable with --repair)\n", o.db_path, res.n_problems,
                               repairable);
                if (res.server_pid && !o.repair)
                        printf("A Librarian (pid %d) serves this database: what changes under it may show as problems\n",
                               (int) res.server_pid);
        }
        r = res.n_problems ? 1 : 0;
        fsck_result_done(&res);
        return r;
}

/* fame lmp serve: the management view of a database by hand, without a Librarian port (docs/lmp.md).
 * The database of a running Librarian is locked by it: its own view is served by fame up. */
static int verb_lmp(int argc, char **argv) {
        static const struct option opts[] = {
                { "db", required_argument, NULL, 'd' },
                { "fam", required_argument, NULL, 'f' },
                { "port", required_argument, NULL, 'p' },
                { "bind", required_argument, NULL, 'b' },
                { "port-file", required_argument, NULL, 'P' },
                {}
        };
        const char *db = NULL, *fam_path = NULL, *port_file = NULL;
        struct lmp_options lo = { .port = FAME_LMP_PORT };
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'd': db = optarg; break;
                case 'f': fam_path = optarg; break;
                case 'b': lo.bind = optarg; break;
                case 'P': port_file = optarg; break;
                case 'p':
                        if (parse_port(optarg, &lo.port) < 0)
                                return usage_error("lmp serve", "--port %s: not a port number (0-65535; 0: any free one)", optarg);
                        break;
                default:
                        return 2;
                }
        if (optind < argc)
                return usage_error("lmp serve", "unexpected argument '%s'", argv[optind]);
        if (!db)
                return usage_error("lmp serve", "%s", "--db PATH is required");
        if (access(db, R_OK) < 0)
                return log_error("lmp serve: cannot read the database '%s': %m; give a Librarian database (fame status --json shows the cluster's)", db), 1;

        _cleanup_free_ char *err = NULL;
        _cleanup_close_ int lock_fd = -1;
        struct engine *e = NULL;
        struct fame *fam = NULL;
        struct lmp *l = NULL;
        /* a Librarian serving this database holds it (and its lock) for itself */
        int r = librarian_db_lock(db, &lock_fd, &err);
        if (r < 0) {
                log_error("lmp serve: %s%s", err ? err : strerror(-r),
                          r == -EBUSY ? "; a running cluster's Librarian serves this view itself: 'fame status' shows its address" : "");
                return 1;
        }
        free(err);
        err = NULL;
        r = engine_open(db, &e, &err);
        if (r < 0) {
                log_error("lmp serve: %s", err ? err : strerror(-r));
                return 1;
        }
        if (fam_path && (r = fame_open(fam_path, FAME_OPEN_RDONLY, &fam)) < 0) {
                log_error("lmp serve: cannot map FAM '%s': %s", fam_path, strerror(-r));
                engine_free(e);
                return 1;
        }
        struct lmp_source src = { .views = &engine_views, .engine = e, .fam = fam };
        r = lmp_new(&lo, &src, &l, &err);
        if (r >= 0 && port_file)
                r = server_write_port(port_file, lmp_port(l), &err);
        if (r < 0) {
                log_error("lmp serve: %s", err ? err : strerror(-r));
                lmp_free(l);
                fame_close(fam);
                engine_free(e);
                return 1;
        }
        sigset_t orig;
        stop_signals_setup(&stop, &orig);
        fprintf(stderr, "fame lmp: serving '%s' at http://%s:%u/ (pid %d)\n", db, lo.bind ? lo.bind : "127.0.0.1", lmp_port(l),
                (int) getpid());
        while (!stop) {
                struct pollfd pfd = { .fd = lmp_poll_fd(l), .events = POLLIN };
                int ms = lmp_timeout_ms(l);
                struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
                if (ppoll(&pfd, 1, ms >= 0 ? &ts : NULL, &orig) < 0 && errno != EINTR) {
                        log_error("lmp serve: poll failed: %m");
                        break;
                }
                lmp_run(l);
        }
        lmp_free(l);
        fame_close(fam);
        engine_free(e);
        return 0;
}

int main(int argc, char **argv) {
        const char *verb = argc > 1 ? argv[1] : NULL;

        if (!verb || streq(verb, "--help") || streq(verb, "-h")) {
                fprintf(stderr, "usage: fame librarian serve|init|topology|bench|fsck ...; see fame help librarian\n");
                return verb ? 0 : 2;
        }
        argv[1] = argv[0];
        argc--;
        argv++;
        if (streq(verb, "serve"))
                return verb_serve(argc, argv);
        if (streq(verb, "init"))
                return verb_init(argc, argv);
        if (streq(verb, "topology"))
                return verb_topology(argc, argv);
        if (streq(verb, "bench"))
                return librarian_bench_main(argc, argv);
        if (streq(verb, "fsck"))
                return verb_fsck(argc, argv);
        if (streq(verb, "lmp"))
                return verb_lmp(argc, argv);
        log_error("librarian: unknown verb '%s'; use serve, init, topology, bench, fsck or lmp", verb);
        return 2;
}
