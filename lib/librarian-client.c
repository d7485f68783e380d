/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Librarian client: the tm-librarian protocol (docs/librarian.md) from a node or the host: the
 * connection (reconnected once when it breaks), requests and replies, and a typed call for each
 * command of librarian-protocol.h.  Shelves mapped from FAM are shelf.c's.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netdb.h>
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

#include "fam_atomic.h"
#include "fame-internal.h"
#include "librarian-client.h"
#include "librarian-secret.h"
#include "proto.h"
#include "fame-constants.h"

#define REPLY_TIMEOUT_MS 60000
#define RESTART_POLL_NS (200 * 1000 * 1000)
/* How long a virtio-serial port's host end is waited for when it is opened, and how often it
 * is looked at meanwhile. */
#define VPORT_CONNECT_MS 2000
#define VPORT_POLL_NS (10 * 1000 * 1000)

struct fame_librarian {
        char *address;
        int fd;
        uint32_t node_id;
        int64_t uid, gid, pid;
        int64_t seq;
        mode_t umask;                   /* read once: umask() cannot be read without changing it */
        double restart_wait;            /* seconds; see librarian_set_restart_wait() */
        bool quiet;                     /* see librarian_set_quiet() */
        enum librarian_command last;
        struct proto_stream in;
        char secret[LIBRARIAN_SECRET_LEN + 1];  /* sent once per connection ("" none) */
        const char *no_secret_why;      /* why none is sent, for a "not authenticated" reply */
        char error[512];
        /* the open handles this connection holds (open_shelf, create_shelf, not yet closed):
         * reclaimed (fame_reclaim_shelf) on every new connection after the first, so that a
         * restarted Librarian still counts them (docs/librarian-protocol.md) */
        struct held_handle { int64_t id, handle; } *held;
        size_t n_held, allocated_held;
        bool connected;                 /* a connection was made before: the next one reclaims */
        char origin[LIBRARIAN_ORIGIN_MAX + 1];  /* librarian_set_origin() */
        unsigned unanswered;            /* requests sent without waiting (librarian_call_nowait()):
                                         * their replies come before the next call's */
        bool reclaiming;
};

void librarian_set_error(struct fame_librarian *l, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(l->error, sizeof l->error, fmt, ap);
        va_end(ap);
}

_public_ const char *fame_librarian_error(const struct fame_librarian *l) {
        return l ? l->error : "no Librarian connection";
}

const char *librarian_address(const struct fame_librarian *l) {
        return l->address;
}

const char *librarian_secret(const struct fame_librarian *l) {
        return l->secret;
}

uint32_t librarian_node(const struct fame_librarian *l) {
        return l->node_id;
}

mode_t librarian_umask(const struct fame_librarian *l) {
        return l->umask;
}

void librarian_set_quiet(struct fame_librarian *l, bool quiet) {
        l->quiet = quiet;
}

bool librarian_quiet(const struct fame_librarian *l) {
        return l && l->quiet;
}

const char *librarian_last_command(const struct fame_librarian *l) {
        return librarian_command_name(l->last);
}

void librarian_set_restart_wait(struct fame_librarian *l, double seconds) {
        l->restart_wait = seconds;
}

bool librarian_transport_error(int r) {
        return r == -ECONNRESET || r == -EPIPE || r == -ECONNABORTED || r == -ECONNREFUSED || r == -ENOTCONN ||
               r == -ETIMEDOUT || r == -EHOSTUNREACH;
}

void librarian_set_caller(struct fame_librarian *l, int64_t uid, int64_t gid, int64_t pid) {
        l->uid = uid;
        l->gid = gid;
        l->pid = pid;
}

void librarian_set_credentials(struct fame_librarian *l, int64_t uid, int64_t gid) {
        l->uid = uid < 0 ? (int64_t) getuid() : uid;
        l->gid = gid < 0 ? (int64_t) getgid() : gid;
}

_public_ uint32_t fame_librarian_node_id(const struct fame_geometry *geo, uint32_t n) {
        struct fame_coord c;

        if (!geo || fame_geometry_coord(geo, n, &c) < 0)
                return 0;
        if (geo->nodes_per_enclosure > 10 || c.enclosure > 8)
                return 0;
        return (c.enclosure - 1) * 10 + c.node_in_enclosure;
}

static int split_address(const char *address, char *host, size_t host_len, char *port, size_t port_len) {
        const char *colon = strrchr(address, ':');

        if (!colon || colon == address || !colon[1] || (size_t) (colon - address) >= host_len ||
            strlen(colon + 1) >= port_len)
                return -EINVAL;
        memcpy(host, address, (size_t) (colon - address));
        host[colon - address] = 0;
        strcpy(port, colon + 1);
        return 0;
}

/* The node's virtio-serial port to its Librarian (vport:PATH): the guest end of a QEMU chardev
 * whose host end connects to the Librarian's socket for this node.  Opened non-blocking (a
 * write while the host end is disconnected would wait for ever); usable once the host end is
 * connected, which is waited for up to VPORT_CONNECT_MS; what an earlier connection left
 * unread is discarded. */
static int dial_vport(const char *path, int *ret_fd, char *err, size_t err_len) {
        int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY), r;
        if (fd < 0) {
                r = negative_errno();
                snprintf(err, err_len, "Cannot open the node's Librarian port %s: %s%s", path, strerror(-r),
                         r == -EBUSY ? " (another process has it open: only fame-lfs uses it)" : "");
                return r;
        }
        for (struct timespec start = { 0 }, now; ; ) {
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                if (poll(&p, 1, 0) > 0 && (p.revents & POLLOUT) && !(p.revents & POLLHUP))
                        break;
                /* POLLHUP while the host end is not connected: a port has no "connected" event
                 * to wait for, so look again shortly */
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (!start.tv_sec)
                        start = now;
                if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >= VPORT_CONNECT_MS) {
                        close(fd);
                        snprintf(err, err_len, "The node's Librarian port %s is not connected on the host "
                                 "(is the Librarian running? fame status shows it)", path);
                        return -ECONNREFUSED;
                }
                struct timespec ts = { 0, VPORT_POLL_NS };
                nanosleep(&ts, NULL);
        }
        char junk[4096];
        while (read(fd, junk, sizeof junk) > 0)
                ;
        *ret_fd = fd;
        return 0;
}

/* Connects to address: "HOST:PORT" (TCP), "unix:PATH" (fame-lfs's relay in a node) or
 * "vport:PATH" (a node's virtio-serial port to its Librarian). */
int librarian_dial(const char *address, int *ret_fd, char *err, size_t err_len) {
        char host[256], port[16];
        struct sockaddr_in sa = { .sin_family = AF_INET };
        char *end = NULL;
        int r;

        if (strncmp(address, "vport:", 6) == 0) {
                if (!address[6]) {
                        snprintf(err, err_len, "Bad Librarian address \"%s\"; use vport:PATH", address);
                        return -EINVAL;
                }
                return dial_vport(address + 6, ret_fd, err, err_len);
        }

        if (strncmp(address, "unix:", 5) == 0) {
                struct sockaddr_un su = { .sun_family = AF_UNIX };
                if (!address[5] || strlen(address + 5) >= sizeof su.sun_path) {
                        snprintf(err, err_len, "Bad Librarian address \"%s\"; use unix:PATH or HOST:PORT", address);
                        return -EINVAL;
                }
                strcpy(su.sun_path, address + 5);
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
                if (connect(fd, (struct sockaddr *) &su, sizeof su) < 0) {
                        r = negative_errno();
                        close(fd);
                        snprintf(err, err_len, "Cannot reach the Librarian through %s: %s%s", address + 5, strerror(-r),
                                 r == -ENOENT || r == -ECONNREFUSED ? " (is fame-lfs running? it relays for this node)" : "");
                        return r;
                }
                *ret_fd = fd;
                return 0;
        }
        if (split_address(address, host, sizeof host, port, sizeof port) < 0) {
                snprintf(err, err_len, "Bad Librarian address \"%s\"; use HOST:PORT, e.g. torms:9093", address);
                return -EINVAL;
        }
        unsigned long p = strtoul(port, &end, 10);
        if (!end || *end || p == 0 || p > 65535) {
                snprintf(err, err_len, "Bad port in Librarian address \"%s\"", address);
                return -EINVAL;
        }
        sa.sin_port = htons((uint16_t) p);
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
                struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai = NULL;
                if (getaddrinfo(host, NULL, &hints, &ai) == 0 && ai) {
                        sa.sin_addr = ((struct sockaddr_in *) ai->ai_addr)->sin_addr;
                        freeaddrinfo(ai);
                } else if (strcmp(host, "torms") == 0) {
                        /* a static binary without NSS in a diskless node */
                        inet_pton(AF_INET, FAME_TORMS_ADDR, &sa.sin_addr);
                } else {
                        snprintf(err, err_len, "Cannot resolve the Librarian host \"%s\"", host);
                        return -EHOSTUNREACH;
                }
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                r = negative_errno();
                close(fd);
                snprintf(err, err_len, "Cannot reach the Librarian at %s: %s%s", address, strerror(-r),
                         r == -ECONNREFUSED ? " (is the cluster up? fame status shows it)" : "");
                return r;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        *ret_fd = fd;
        return 0;
}

static struct json_object *context(struct fame_librarian *l);
static int receive_on(int fd, struct proto_stream *in, struct json_object **ret);

int librarian_authenticate_fd(int fd, struct proto_stream *in, const char *secret, struct json_object *ctx,
                              char *err, size_t err_len) {
        _cleanup_(json_object_putp) struct json_object *req = json_object_new_object();
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *v;

        err[0] = 0;
        json_object_object_add(req, "command", json_object_new_string(librarian_command_name(LIBRARIAN_CMD_authenticate)));
        json_object_object_add(req, "context", ctx);
        json_object_object_add(req, "secret", json_object_new_string(secret));
        const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        int r = librarian_send_all(fd, text, strlen(text));
        if (r >= 0)
                r = receive_on(fd, in, &reply);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(reply, "errmsg", &v)) {
                struct json_object *en = NULL;
                json_object_object_get_ex(reply, "errno", &en);
                int e = en ? json_object_get_int(en) : 0;
                snprintf(err, err_len, "%s", json_object_get_string(v));
                return e > 0 ? -e : -EACCES;
        }
        return 0;
}

/* The first request of every connection that has a secret. */
static int authenticate(struct fame_librarian *l) {
        char why[512];
        int r = librarian_authenticate_fd(l->fd, &l->in, l->secret, context(l), why, sizeof why);

        if (r < 0 && !why[0])
                librarian_set_error(l, "Lost the Librarian at %s while authenticating: %s", l->address, strerror(-r));
        else if (r == -EACCES)
                librarian_set_error(l, "The Librarian at %s refused this connection's secret: %s", l->address, why);
        else if (r < 0)         /* e.g. "Librarian full", answered before the request was read */
                librarian_set_error(l, "%s", why);
        return r;
}

static int do_connect(struct fame_librarian *l) {
        int fd, r;

        r = librarian_dial(l->address, &fd, l->error, sizeof l->error);
        if (r < 0)
                return r;
        l->fd = fd;
        l->unanswered = 0;              /* went with the old connection */
        proto_stream_done(&l->in);
        proto_stream_init(&l->in);
        proto_stream_set_max(&l->in, PROTO_MAX_REPLY);  /* replies it asked for: large ones too */
        if (l->secret[0]) {
                r = authenticate(l);
                if (r < 0) {
                        close(l->fd);
                        l->fd = -1;
                        return r;
                }
        }
        l->connected = true;
        return 0;
}

/* Whom this connection speaks for, and with what proof (docs/librarian.md, "Who may say what"):
 * $FAME_LIBRARIAN_SECRET_FILE's secret for any address; in a node, for its own Librarian port,
 * the node's secret when this process may read it (root), else fame-lfs's relay. */
static int choose_secret(struct fame_librarian *l, bool default_address) {
        const char *file = getenv(LIBRARIAN_SECRET_ENV);
        int r;

        if (file && *file) {
                r = librarian_secret_read(file, l->secret);
                if (r < 0) {
                        librarian_set_error(l, "Cannot read the Librarian's secret %s (%s): %s%s", file, LIBRARIAN_SECRET_ENV,
                                            r == -EBADMSG ? "it must hold 64 hex digits" : strerror(-r),
                                            r == -EACCES ? "; it is readable by the cluster's owner only" : "");
                        return r;
                }
                return 0;
        }
        if (!default_address)
                return 0;
        r = librarian_secret_read(LIBRARIAN_SECRET_FW_CFG, l->secret);
        if (r >= 0)
                return 0;
        l->secret[0] = 0;
        if (r != -EACCES && r != -EPERM)
                return 0;       /* not in a node, or a node without a secret (librarian_auth = none) */
        if (access(LIBRARIAN_RELAY_SOCKET, F_OK) < 0) {
                l->no_secret_why = "this process may not read the node's secret (" LIBRARIAN_SECRET_FW_CFG
                                   ", root only) and fame-lfs's relay " LIBRARIAN_RELAY_SOCKET " is not there: "
                                   "is /lfs mounted? (fame-lfs --relay)";
                return 0;
        }
        char *a = strdup("unix:" LIBRARIAN_RELAY_SOCKET);
        if (!a)
                return -ENOMEM;
        free(l->address);
        l->address = a;
        return 0;
}

/* The process's umask, from /proc/self/status; changing it briefly to read it would race with
 * other threads creating files. */
static mode_t read_umask(void) {
        char line[128];
        unsigned long v = 022;
        FILE *f = fopen("/proc/self/status", "re");
        if (f) {
                while (fgets(line, sizeof line, f))
                        if (sscanf(line, "Umask: %lo", &v) == 1)
                                break;
                fclose(f);
        }
        return (mode_t) v & 0777;
}

static uint32_t default_node(void) {
        const char *s = getenv("FAME_NODE");
        uint32_t node = 0;

        if (s && *s) {
                char *end = NULL;
                unsigned long v = strtoul(s, &end, 10);
                if (end && !*end && v >= 1 && v <= 128)
                        node = (uint32_t) v;
        }
        if (!node) {
                /* in a node: its identity (fw_cfg / kernel command line) */
                uint32_t n = 0;
                char *cluster = NULL;
                if (fame_read_node_identity(&n, &cluster) >= 0 && n)
                        node = n;
                free(cluster);
        }
        return node ? node : 1;
}

_public_ int fame_librarian_connect(const char *address, struct fame_librarian **ret) {
        struct fame_librarian *l = calloc(1, sizeof *l);
        int r;

        if (!l)
                return -ENOMEM;
        if (!address || !*address)
                address = getenv("FAME_LIBRARIAN");
        if (!address || !*address)
                address = FAME_LIBRARIAN_DEFAULT_ADDRESS;
        l->address = strdup(address);
        l->fd = -1;
        l->node_id = default_node();
        l->uid = getuid();
        l->gid = getgid();
        l->umask = read_umask();
        proto_stream_init(&l->in);
        if (!l->address) {
                fame_librarian_disconnect(l);
                return -ENOMEM;
        }
        r = choose_secret(l, strcmp(l->address, FAME_LIBRARIAN_DEFAULT_ADDRESS) == 0);
        if (r >= 0)
                r = do_connect(l);
        if (r < 0) {
                log_err(r, "%s", l->error);
                fame_librarian_disconnect(l);
                return r;
        }
        *ret = l;
        return 0;
}

_public_ void fame_librarian_disconnect(struct fame_librarian *l) {
        if (!l)
                return;
        if (l->fd >= 0)
                close(l->fd);
        proto_stream_done(&l->in);
        explicit_bzero(l->secret, sizeof l->secret);
        free(l->address);
        free(l->held);
        free(l);
}

_public_ int fame_librarian_set_node(struct fame_librarian *l, uint32_t node_id) {
        if (!l || node_id < 1 || node_id > FAME_LIBRARIAN_MAX_NODE)
                return -EINVAL;
        l->node_id = node_id;
        return 0;
}

struct json_object *librarian_params(const char *key, ...) {
        struct json_object *o = json_object_new_object();
        va_list ap;

        va_start(ap, key);
        for (const char *k = key; k; k = va_arg(ap, const char *))
                json_object_object_add(o, k, va_arg(ap, struct json_object *));
        va_end(ap);
        return o;
}

static struct json_object *context(struct fame_librarian *l) {
        struct json_object *c = json_object_new_object();
        char physloc[32];

        /* physloc "rack_enc_node" of the Librarian node id */
        snprintf(physloc, sizeof physloc, "1_%u_%u", (l->node_id - 1) / 10 + 1, (l->node_id - 1) % 10 + 1);
        json_object_object_add(c, "umask", json_object_new_int((int) l->umask));
        json_object_object_add(c, "node_id", json_object_new_int64(l->node_id));
        json_object_object_add(c, "physloc", json_object_new_string(physloc));
        json_object_object_add(c, "seq", json_object_new_int64(++l->seq));
        json_object_object_add(c, "uid", json_object_new_int64(l->uid));
        json_object_object_add(c, "gid", json_object_new_int64(l->gid));
        json_object_object_add(c, "pid", json_object_new_int64(l->pid ? l->pid : getpid()));
        json_object_object_add(c, "tid", json_object_new_int64((int64_t) (uintptr_t) pthread_self()));
        if (l->origin[0])
                json_object_object_add(c, LIBRARIAN_ORIGIN_KEY, json_object_new_string(l->origin));
        return c;
}

/* recv(), or read() when fd is not a socket (a virtio-serial port). */
static ssize_t fd_recv(int fd, void *buf, size_t len) {
        ssize_t n = recv(fd, buf, len, 0);
        return n < 0 && errno == ENOTSOCK ? read(fd, buf, len) : n;
}

/* All of p, also to a non-blocking descriptor (a virtio-serial port): a port whose host end
 * went away (POLLHUP), or that takes nothing for REPLY_TIMEOUT_MS, is a lost connection. */
int librarian_send_all(int fd, const char *p, size_t len) {
        while (len) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n < 0 && errno == ENOTSOCK)
                        n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return negative_errno();
                        struct pollfd w = { .fd = fd, .events = POLLOUT };
                        int k = poll(&w, 1, REPLY_TIMEOUT_MS);
                        if (k < 0 && errno != EINTR)
                                return negative_errno();
                        if (k == 0)
                                return -ETIMEDOUT;
                        if (k > 0 && (w.revents & (POLLHUP | POLLERR)) && !(w.revents & POLLOUT))
                                return -ECONNRESET;
                        continue;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* The next reply that is not an OOB message. */
static int receive_on(int fd, struct proto_stream *in, struct json_object **ret) {
        for (;;) {
                struct json_object *o = proto_next(in);
                if (o) {
                        struct json_object *oob;
                        if (json_object_object_get_ex(o, "OOBmsg", &oob) && json_object_get_boolean(oob)) {
                                json_object_put(o);
                                continue;
                        }
                        *ret = o;
                        return 0;
                }
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, REPLY_TIMEOUT_MS);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        return -ETIMEDOUT;
                char buf[65536];
                ssize_t n = fd_recv(fd, buf, sizeof buf);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -ECONNRESET;
                r = proto_feed(in, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
}

static int receive(struct fame_librarian *l, struct json_object **ret) {
        while (l->unanswered > 0) {
                struct json_object *o = NULL;
                int r = receive_on(l->fd, &l->in, &o);
                if (r < 0)
                        return r;
                l->unanswered--;
                json_object_put(o);     /* nobody waits for it (its failure changes nothing) */
        }
        return receive_on(l->fd, &l->in, ret);
}

static void reclaim_held(struct fame_librarian *l);

static int exchange(struct fame_librarian *l, const char *text, size_t len, struct json_object **ret) {
        int r;

        if (l->fd < 0) {
                bool again = l->connected;
                r = do_connect(l);
                if (r < 0)
                        return r;
                if (again && !l->reclaiming && l->n_held) {
                        /* the Librarian may have restarted: take back our handles first */
                        reclaim_held(l);
                        if (l->fd < 0)
                                return -ECONNRESET;
                }
        }
        r = librarian_send_all(l->fd, text, len);
        if (r >= 0)
                r = receive(l, ret);
        if (r < 0) {
                close(l->fd);
                l->fd = -1;
        }
        return r;
}

/* One request; a request that changes nothing is sent again once on a new connection. */
static int call_once(struct fame_librarian *l, enum librarian_command c, struct json_object *params,
                     struct json_object **ret_value) {
        const char *command = librarian_command_name(c);
        struct json_object *req = json_object_new_object(), *reply = NULL, *v;
        int64_t seq;
        int r;

        json_object_object_add(req, "command", json_object_new_string(command));
        json_object_object_add(req, "context", context(l));
        seq = l->seq;
        if (params) {
                json_object_object_foreach(params, key, val)
                        json_object_object_add(req, key, json_object_get(val));
        }
        const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        size_t len = strlen(text);

        r = exchange(l, text, len, &reply);
        /* the Librarian restarted: once more (not for a reply over PROTO_MAX_REPLY: it would be
         * as large again) */
        if (r < 0 && r != -ETIMEDOUT && r != -EMSGSIZE && librarian_commands[c].resend == LIBRARIAN_RESEND_ONCE)
                r = exchange(l, text, len, &reply);
        json_object_put(req);
        if (r < 0) {
                librarian_set_error(l, "Lost the Librarian at %s during %s: %s", l->address, command, strerror(-r));
                return r;
        }
        if (json_object_object_get_ex(reply, "errmsg", &v)) {
                struct json_object *en = NULL;
                json_object_object_get_ex(reply, "errno", &en);
                int e = en ? json_object_get_int(en) : 0;
                if (e == EACCES && l->no_secret_why && strstr(json_object_get_string(v), "not authenticated"))
                        librarian_set_error(l, "%s; %s", json_object_get_string(v), l->no_secret_why);
                else
                        librarian_set_error(l, "%s", json_object_get_string(v));
                json_object_put(reply);
                return e > 0 ? -e : -EREMOTEIO;
        }
        struct json_object *ctx = NULL, *rseq = NULL;
        if (!json_object_object_get_ex(reply, "value", &v) ||
            !json_object_object_get_ex(reply, "context", &ctx) ||
            !json_object_object_get_ex(ctx, "seq", &rseq)) {
                librarian_set_error(l, "The Librarian's reply to %s has no value or context.seq", command);
                json_object_put(reply);
                return -ERANGE;
        }
        if (json_object_get_int64(rseq) != seq) {
                librarian_set_error(l, "The Librarian answered request %lld with seq %lld", (long long) seq,
                          (long long) json_object_get_int64(rseq));
                json_object_put(reply);
                return -EILSEQ;
        }
        if (ret_value)
                *ret_value = json_object_get(v);
        json_object_put(reply);
        return 0;
}

static void held_remove(struct fame_librarian *l, size_t i) {
        l->held[i] = l->held[--l->n_held];
}

/* On a new connection: every handle held is claimed for it.  One the Librarian no longer has (it
 * did not restart and dropped it with the old connection, or the grace period is over) is
 * forgotten; its close_shelf later closes nothing.  If the connection breaks again, the next one
 * tries again. */
static void reclaim_held(struct fame_librarian *l) {
        char saved[sizeof l->error];
        enum librarian_command last = l->last;

        memcpy(saved, l->error, sizeof saved);
        l->reclaiming = true;
        for (size_t i = 0; i < l->n_held; ) {
                struct json_object *p = librarian_params("id", json_object_new_int64(l->held[i].id),
                                                         "open_handle", json_object_new_int64(l->held[i].handle), NULL);
                int r = p ? call_once(l, LIBRARIAN_CMD_fame_reclaim_shelf, p, NULL) : -ENOMEM;
                json_object_put(p);
                if (r < 0 && (librarian_transport_error(r) || r == -ENOMEM))
                        break;
                if (r < 0) {
                        if (!l->quiet && r != -ENOSYS)
                                log_err(r, "Librarian restarted: handle %lld of shelf %lld is lost: %s",
                                        (long long) l->held[i].handle, (long long) l->held[i].id, l->error);
                        held_remove(l, i);
                        continue;
                }
                i++;
        }
        l->reclaiming = false;
        l->last = last;
        memcpy(l->error, saved, sizeof saved);
}

/* Follows the handles a call opened or closed. */
static void track_handles(struct fame_librarian *l, enum librarian_command c, struct json_object *params,
                          struct json_object *value, int r) {
        struct json_object *id = NULL, *h = NULL;

        if (c == LIBRARIAN_CMD_close_shelf) {
                /* closed or not, it is not ours any more (close_shelf is never resent) */
                if (!json_object_object_get_ex(params, "id", &id) || !json_object_object_get_ex(params, "open_handle", &h))
                        return;
                for (size_t i = 0; i < l->n_held; i++)
                        if (l->held[i].id == json_object_get_int64(id) && l->held[i].handle == json_object_get_int64(h)) {
                                held_remove(l, i);
                                break;
                        }
                return;
        }
        if (r < 0 || (c != LIBRARIAN_CMD_open_shelf && c != LIBRARIAN_CMD_create_shelf) ||
            !json_object_object_get_ex(value, "id", &id) || !json_object_object_get_ex(value, "open_handle", &h) ||
            !json_object_is_type(h, json_type_int))
                return;
        if (l->n_held == l->allocated_held) {
                size_t na = l->allocated_held ? l->allocated_held * 2 : 16;
                struct held_handle *n = realloc(l->held, na * sizeof *n);
                if (!n)
                        return;         /* not reclaimed after a restart: as before */
                l->held = n;
                l->allocated_held = na;
        }
        l->held[l->n_held++] = (struct held_handle) { json_object_get_int64(id), json_object_get_int64(h) };
}

size_t librarian_held_handles(const struct fame_librarian *l) {
        return l ? l->n_held : 0;
}

static double monotonic_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int librarian_call(struct fame_librarian *l, enum librarian_command c, struct json_object *params,
                   struct json_object **ret_value) {
        int r;

        if (!l || (unsigned) c >= LIBRARIAN_N_COMMANDS)
                return -EINVAL;
        struct json_object *value = NULL;
        l->last = c;
        r = call_once(l, c, params, &value);
        if (l->restart_wait > 0 && librarian_commands[c].resend == LIBRARIAN_RESEND_RETRY)
                for (double deadline = monotonic_seconds() + l->restart_wait;
                     librarian_transport_error(r) && monotonic_seconds() < deadline; ) {
                        struct timespec ts = { 0, RESTART_POLL_NS };
                        nanosleep(&ts, NULL);   /* back-off while the Librarian restarts */
                        r = call_once(l, c, params, &value);
                }
        track_handles(l, c, params, value, r);
        if (ret_value)
                *ret_value = value;
        else
                json_object_put(value);
        return r;
}

int librarian_call_nowait(struct fame_librarian *l, enum librarian_command c, struct json_object *params) {
        if (!l || (unsigned) c >= LIBRARIAN_N_COMMANDS)
                return -EINVAL;
        if (l->fd < 0)          /* (re)connecting and reclaiming: the ordinary way */
                return librarian_call(l, c, params, NULL);
        struct json_object *req = json_object_new_object();
        json_object_object_add(req, "command", json_object_new_string(librarian_command_name(c)));
        json_object_object_add(req, "context", context(l));
        if (params) {
                json_object_object_foreach(params, key, val)
                        json_object_object_add(req, key, json_object_get(val));
        }
        const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        l->last = c;
        int r = librarian_send_all(l->fd, text, strlen(text));
        json_object_put(req);
        if (r < 0) {
                librarian_set_error(l, "Lost the Librarian at %s during %s: %s", l->address,
                                    librarian_command_name(c), strerror(-r));
                close(l->fd);
                l->fd = -1;
        } else
                l->unanswered++;
        track_handles(l, c, params, NULL, r);
        return r;
}

/* A request with the command's parameters in the table's order, from values (consumed). */
static int request(struct fame_librarian *l, enum librarian_command c, struct json_object **ret,
                   struct json_object *const *values, size_t n) {
        const struct librarian_command_info *info = &librarian_commands[c];
        _cleanup_(json_object_putp) struct json_object *params = json_object_new_object();
        size_t i;

        for (i = 0; i < n && info->params[i]; i++)
                json_object_object_add(params, info->params[i], values[i]);
        assert(i == n && !info->params[i]);     /* as many values as the table has parameters */
        return librarian_call(l, c, params, ret);
}
/* REQUEST(l, get_shelf, ret, STR(path)): the values in the table's order, counted (sizeof does not
 * evaluate them). */
#define REQUEST(l, name, ret, ...)                                                                  \
        request((l), LIBRARIAN_CMD_##name, (ret), (struct json_object *[]) { __VA_ARGS__ },         \
                sizeof((struct json_object *[]) { __VA_ARGS__ }) / sizeof(struct json_object *))
#define STR(s) json_object_new_string(s)
#define INT(i) json_object_new_int64(i)

int librarian_get_fs_stats(struct fame_librarian *l, struct json_object **ret) {
        return librarian_call(l, LIBRARIAN_CMD_get_fs_stats, NULL, ret);
}

int librarian_get_shelf(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, get_shelf, ret, STR(path));
}

int librarian_create_shelf(struct fame_librarian *l, const char *path, int64_t mode, struct json_object **ret) {
        return REQUEST(l, create_shelf, ret, STR(path), INT(mode));
}

int librarian_open_shelf(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, open_shelf, ret, STR(path));
}

int librarian_close_shelf_nowait(struct fame_librarian *l, int64_t id, int64_t open_handle) {
        _cleanup_(json_object_putp) struct json_object *params = json_object_new_object();
        json_object_object_add(params, "id", INT(id));
        json_object_object_add(params, "open_handle", INT(open_handle));
        return librarian_call_nowait(l, LIBRARIAN_CMD_close_shelf, params);
}

int librarian_close_shelf(struct fame_librarian *l, int64_t id, int64_t open_handle, struct json_object **ret) {
        return REQUEST(l, close_shelf, ret, INT(id), INT(open_handle));
}

int librarian_list_shelves(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, list_shelves, ret, STR(path));
}

int librarian_list_shelf_books(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, list_shelf_books, ret, STR(path));
}

int librarian_resize_shelf(struct fame_librarian *l, const char *path, int64_t id, int64_t size_bytes,
                           bool zero_enabled, struct json_object **ret) {
        return REQUEST(l, resize_shelf, ret, STR(path), INT(id), INT(size_bytes), json_object_new_boolean(zero_enabled));
}

int librarian_rename_shelf(struct fame_librarian *l, const char *path, int64_t id, const char *newpath,
                           struct json_object **ret) {
        return REQUEST(l, rename_shelf, ret, STR(path), INT(id), STR(newpath));
}

int librarian_destroy_shelf(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, destroy_shelf, ret, STR(path));
}

int librarian_get_xattr(struct fame_librarian *l, const char *path, const char *xattr, struct json_object **ret) {
        return REQUEST(l, get_xattr, ret, STR(path), STR(xattr));
}

int librarian_list_xattrs(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, list_xattrs, ret, STR(path));
}

int librarian_set_xattr(struct fame_librarian *l, const char *path, const char *xattr, const char *value,
                        size_t len, struct json_object **ret) {
        return REQUEST(l, set_xattr, ret, STR(path), STR(xattr), json_object_new_string_len(value, (int) len));
}

int librarian_remove_xattr(struct fame_librarian *l, const char *path, const char *xattr, struct json_object **ret) {
        return REQUEST(l, remove_xattr, ret, STR(path), STR(xattr));
}

int librarian_set_am_time(struct fame_librarian *l, const char *path, int64_t atime, int64_t mtime,
                          struct json_object **ret) {
        return REQUEST(l, set_am_time, ret, STR(path), INT(atime), INT(mtime));
}

int librarian_mkdir(struct fame_librarian *l, const char *path, int64_t mode, struct json_object **ret) {
        return REQUEST(l, mkdir, ret, STR(path), INT(mode));
}

int librarian_rmdir(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, rmdir, ret, STR(path));
}

int librarian_symlink(struct fame_librarian *l, const char *path, const char *target, struct json_object **ret) {
        return REQUEST(l, symlink, ret, STR(path), STR(target));
}

int librarian_readlink(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, readlink, ret, STR(path));
}

int librarian_update_node_soc_status(struct fame_librarian *l, int64_t status, int64_t cpu_percent,
                                     int64_t rootfs_percent, int64_t network_in, int64_t network_out,
                                     int64_t mem_percent, struct json_object **ret) {
        return REQUEST(l, update_node_soc_status, ret, INT(status), INT(cpu_percent), INT(rootfs_percent),
                       INT(network_in), INT(network_out), INT(mem_percent));
}

int librarian_update_node_mc_status(struct fame_librarian *l, int64_t status, struct json_object **ret) {
        return REQUEST(l, update_node_mc_status, ret, INT(status));
}

int librarian_fame_stat_shelf(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, fame_stat_shelf, ret, STR(path));
}

int librarian_fame_access(struct fame_librarian *l, const char *path, int64_t mode, struct json_object **ret) {
        return REQUEST(l, fame_access, ret, STR(path), INT(mode));
}

int librarian_fame_chmod(struct fame_librarian *l, const char *path, int64_t mode, struct json_object **ret) {
        return REQUEST(l, fame_chmod, ret, STR(path), INT(mode));
}

int librarian_fame_chown(struct fame_librarian *l, const char *path, int64_t uid, int64_t gid,
                         struct json_object **ret) {
        return REQUEST(l, fame_chown, ret, STR(path), INT(uid), INT(gid));
}

int librarian_fame_list_dir(struct fame_librarian *l, const char *path, struct json_object **ret) {
        return REQUEST(l, fame_list_dir, ret, STR(path));
}

void librarian_set_origin(struct fame_librarian *l, const char *origin) {
        snprintf(l->origin, sizeof l->origin, "%s", origin ? origin : "");
}

int librarian_watch(struct fame_librarian *l, const char *origin, librarian_notice_fn fn, void *userdata) {
        int r = REQUEST(l, fame_watch, NULL, STR(origin ? origin : ""));
        if (r < 0)
                return r;
        if (fn(NULL, NULL, userdata) < 0)       /* watching: whatever was missed before, now */
                return -ECANCELED;
        for (;;) {
                struct json_object *o = proto_next(&l->in), *oob, *paths;
                if (o) {
                        if (json_object_object_get_ex(o, "OOBmsg", &oob) &&
                            json_object_object_get_ex(oob, LIBRARIAN_NOTICE_KEY, &paths) &&
                            json_object_is_type(paths, json_type_array)) {
                                struct json_object *by = NULL;
                                json_object_object_get_ex(oob, "command", &by);
                                r = fn(paths, json_object_get_string(by), userdata);
                        }
                        json_object_put(o);     /* anything else (send_OOB's messages): not ours */
                        if (r < 0)
                                return r;
                        continue;
                }
                char buf[65536];
                ssize_t n = fd_recv(l->fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? negative_errno() : -ECONNRESET;
                        librarian_set_error(l, "Lost the Librarian at %s while watching: %s", l->address, strerror(-r));
                        return r;       /* the descriptor stays until the disconnect */
                }
                r = proto_feed(&l->in, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
}

void librarian_shutdown(struct fame_librarian *l) {
        int fd = l ? __atomic_load_n(&l->fd, __ATOMIC_ACQUIRE) : -1;
        if (fd >= 0)
                shutdown(fd, SHUT_RDWR);
}

int librarian_fame_reclaim_shelf(struct fame_librarian *l, int64_t id, int64_t open_handle, struct json_object **ret) {
        return REQUEST(l, fame_reclaim_shelf, ret, INT(id), INT(open_handle));
}
