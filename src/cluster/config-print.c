/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `fame config`: every key, its value and where it came from, as text or JSON (config_print()). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"
#include "fame.h"
#include "log.h"
#include "util.h"

/* A string as the file would take it back: quoted when empty or holding white space. */
static char *quote(const char *s) {
        bool need = !*s || s[0] == '"';
        size_t n = 0;
        char *q, *o;

        for (const char *p = s; *p; p++) {
                need = need || isspace((unsigned char) *p);
                n += (*p == '"' || *p == '\\') ? 2 : 1;
        }
        if (!need)
                return strdup(s);
        q = o = malloc(n + 3);
        if (!q)
                return NULL;
        *o++ = '"';
        for (const char *p = s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        *o++ = '\\';
                *o++ = *p;
        }
        *o++ = '"';
        *o = 0;
        return q;
}

/* Non-string values as text (sizes compact: "1G"). */
const char *config_value_text(const struct fame_config *c, int k, char *buf, size_t len) {
        switch (config_keys[k].type) {
        case T_FAM_SIZE:
        case T_BOOK_SIZE:
        case T_MEMORY:
        case T_DISK_SIZE:
                return format_size_compact(*CONFIG_FIELD(c, k, const uint64_t), buf, len);
        case T_UINT:
                snprintf(buf, len, "%" PRIu32, *CONFIG_FIELD(c, k, const uint32_t));
                return buf;
        case T_ENUM:
                return enum_to_name(config_keys[k].names, *CONFIG_FIELD(c, k, const int));
        default:
                return *CONFIG_FIELD(c, k, char *const);
        }
}


const char *config_origin_text(const char *o) {
        return o ? o : "default";
}

/* The origin of a node key: its own, else that of the cluster key it follows. */
static const char *node_origin_text(const struct fame_config *c, size_t i, int w) {
        return config_origin_text(c->node_origin[i][w] ? c->node_origin[i][w] :
                           c->origin[w == NODE_MEMORY ? K_MEMORY : w == NODE_ARCH ? K_ARCH : K_CPUS]);
}

#define PRINT_KEY_WIDTH 19      /* strlen("enclosures_per_rack") */
#define PRINT_VALUE_WIDTH_MAX 40

static int print_text(const struct fame_config *c, FILE *f) {
        char *text[_K_MAX] = { 0 };
        char buf[64];
        int width = 0, r = 0;

        for (int k = 0; k < _K_MAX; k++) {
                text[k] = config_is_string_key(k) ? quote(config_value_text(c, k, buf, sizeof buf)) : strdup(config_value_text(c, k, buf, sizeof buf));
                if (!text[k]) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        goto out;
                }
                if ((int) strlen(text[k]) > width)
                        width = (int) strlen(text[k]);
        }
        if (width > PRINT_VALUE_WIDTH_MAX)
                width = PRINT_VALUE_WIDTH_MAX;

        fprintf(f, "# cluster %s\n", c->name);
        for (int k = 0; k < _K_MAX; k++)
                fprintf(f, "%-*s = %-*s  # %s\n", PRINT_KEY_WIDTH, config_keys[k].name, width, text[k], config_origin_text(c->origin[k]));
        for (size_t i = 0; i < FAME_MAX_NODES; i++)
                for (int w = 0; w < CONFIG_N_NODE_KEYS; w++) {
                        char key[32];
                        if (!c->node_origin[i][w])
                                continue;
                        snprintf(key, sizeof key, "node%02zu.%s", i + 1, config_node_keys[w]);
                        if (w == NODE_MEMORY)
                                format_size_compact(c->node[i].memory, buf, sizeof buf);
                        else if (w == NODE_ARCH)
                                snprintf(buf, sizeof buf, "%s", arch_to_string(c->node[i].arch));
                        else
                                snprintf(buf, sizeof buf, "%" PRIu32, c->node[i].cpus);
                        fprintf(f, "%-*s = %-*s  # %s\n", PRINT_KEY_WIDTH, key, width, buf, c->node_origin[i][w]);
                }
out:
        for (int k = 0; k < _K_MAX; k++)
                free(text[k]);
        return r;
}

static json_object *json_value(const struct fame_config *c, int k) {
        switch (config_keys[k].type) {
        case T_FAM_SIZE:
        case T_BOOK_SIZE:
        case T_MEMORY:
        case T_DISK_SIZE:
                return json_object_new_uint64(*CONFIG_FIELD(c, k, const uint64_t));
        case T_UINT:
                return json_object_new_uint64(*CONFIG_FIELD(c, k, const uint32_t));
        default: {
                char buf[64];
                return json_object_new_string(config_value_text(c, k, buf, sizeof buf));
        }
        }
}

/* json-c returns 0 on success from its add functions (< 0 on allocation failure). */
static int json_add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int print_json(const struct fame_config *c, FILE *f) {
        json_object *root = json_object_new_object(), *jkeys = json_object_new_object(), *nodes = json_object_new_array();
        int r = 0;

        if (!root || !jkeys || !nodes) {
                json_object_put(root);
                json_object_put(jkeys);
                json_object_put(nodes);
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        r |= json_add(root, "cluster", json_object_new_string(c->name));
        r |= json_add(root, "keys", jkeys);
        r |= json_add(root, "nodes", nodes);
        for (int k = 0; k < _K_MAX && r == 0; k++) {
                json_object *e = json_object_new_object();
                r |= json_add(jkeys, config_keys[k].name, e);
                if (r == 0) {
                        r |= json_add(e, "value", json_value(c, k));
                        r |= json_add(e, "origin", json_object_new_string(config_origin_text(c->origin[k])));
                }
        }
        for (size_t i = 0; i < c->nodes && i < FAME_MAX_NODES && r == 0; i++) {
                json_object *n = json_object_new_object(), *o = json_object_new_object();
                char name[16];

                snprintf(name, sizeof name, "node%02zu", i + 1);
                if (!n || !o || json_object_array_add(nodes, n) < 0) {
                        json_object_put(n);
                        json_object_put(o);
                        r = -ENOMEM;
                        break;
                }
                r |= json_add(n, "name", json_object_new_string(name));
                r |= json_add(n, "memory", json_object_new_uint64(c->node[i].memory));
                r |= json_add(n, "cpus", json_object_new_uint64(c->node[i].cpus));
                r |= json_add(n, "arch", json_object_new_string(arch_to_string(c->node[i].arch)));
                r |= json_add(n, "origin", o);
                if (r == 0) {
                        r |= json_add(o, "memory", json_object_new_string(node_origin_text(c, i, NODE_MEMORY)));
                        r |= json_add(o, "cpus", json_object_new_string(node_origin_text(c, i, NODE_CPUS)));
                        r |= json_add(o, "arch", json_object_new_string(node_origin_text(c, i, NODE_ARCH)));
                }
        }
        if (r == 0)
                fprintf(f, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
        return r < 0 ? log_error_errno(-ENOMEM, "Out of memory") : 0;
}

int config_print(const struct fame_config *c, FILE *f, bool json) {
        int r = json ? print_json(c, f) : print_text(c, f);

        if (r < 0)
                return r;
        if (fflush(f) != 0 || ferror(f))
                return log_error_errno(errno > 0 ? -errno : -EIO, "Failed to write the configuration: %m");
        return 0;
}
