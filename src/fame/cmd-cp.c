/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fame cp: host files into running nodes through their guest agents; with --libs, a program
 * with the shared libraries it needs that the node lacks (cluster.h, guest-libs.c).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cluster.h"
#include "config.h"
#include "util.h"
#include "verbs.h"

enum { O_LIBS = 0x100 };

/* --all: in the description, not under Options */
const struct verb_options cp_options = {
        .list = (const struct verb_option[]) {
                { "all", 'a', NULL, NULL, VERB_OPT_SHORT },
                { "libs", O_LIBS, NULL, "also copy the shared libraries the program needs that the node\n"
                                        "lacks, into its /usr/lib/TRIPLET (described above)" },
                { "quiet", 'q', NULL, "--libs: no line per file copied", VERB_OPT_SHORT },
                { "json", VERB_JSON, NULL, "--libs: print every file as JSON: node, from, to, copied" },
                { .group = &cluster_options },
                {}
        },
};

struct cp_report {
        bool quiet;
        json_object *files;             /* --json: the array, else NULL */
};

static void report_file(void *userdata, const char *node, const char *from, const char *to, bool copied) {
        struct cp_report *rep = userdata;
        if (rep->files) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "node", json_object_new_string(node));
                json_object_object_add(o, "from", json_object_new_string(from));
                json_object_object_add(o, "to", json_object_new_string(to));
                json_object_object_add(o, "copied", json_object_new_boolean(copied));
                json_object_array_add(rep->files, o);
        } else if (copied && !rep->quiet)
                printf("%s: %s -> %s\n", node, from, to);
}

/* fame cp [--libs] HOSTFILE NODE:PATH | fame cp [--libs] --all HOSTFILE PATH */
int cmd_cp(const struct verb *v, int argc, char **argv) {
        struct cluster_opts o = { 0 };
        bool first = true, all = false, libs = false, json = false;
        struct cp_report rep = { 0 };
        struct fame_config c;
        int ch, r;

        while ((ch = verb_getopt_json(v, argc, argv, &first, &json)) != -1) {
                r = cluster_opt(v, ch, &o);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (ch == 'a')
                        all = true;
                else if (ch == O_LIBS)
                        libs = true;
                else if (ch == 'q')
                        rep.quiet = true;
                else
                        return -EINVAL;
        }
        if ((json || rep.quiet) && !libs)
                return cli_usage_error(v, "%s goes with --libs (plain fame cp prints nothing)", json ? "--json" : "--quiet");
        const char *src = argv[optind], *dst = argv[optind + 1];
        _cleanup_free_ char *node = NULL;
        const char *path = dst;
        if (!all) {
                const char *colon = strchr(dst, ':');
                if (!colon || colon[1] != '/')
                        return cli_usage_error(v, "'%s' is not NODE:/PATH (or use --all HOSTFILE /PATH)", dst);
                node = strndup(dst, (size_t) (colon - dst));
                path = colon + 1;
        } else if (dst[0] != '/')
                return cli_usage_error(v, "'%s' is not an absolute path in the nodes", dst);
        r = load_config(&o, NULL, &c);
        if (r < 0)
                return r;
        if (!libs) {
                r = cluster_cp(&c, src, node, path);
                config_done(&c);
                return r < 0 ? r : 0;
        }
        if (json)
                rep.files = json_object_new_array();
        r = cluster_cp_libs(&c, src, node, path, report_file, &rep);
        config_done(&c);
        if (r >= 0 && rep.files)
                puts(json_object_to_json_string_ext(rep.files, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
        json_object_put(rep.files);
        return r < 0 ? r : 0;
}
