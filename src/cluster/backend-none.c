/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The libvirt backend where it is not built in: the node-side fame-static (which cannot link
 * libvirt statically) and the test programs.  Every entry point says so in one line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "backend.h"
#include "log.h"
#include "plan.h"

static int none_open(const char *cluster, const char *libvirt_uri, void **ret_data) {
        (void) libvirt_uri;
        (void) ret_data;
        return log_error_errno(-EOPNOTSUPP, "Cluster '%s' runs on libvirt, which this fame was built without; use the host's fame (build/fame)",
                               cluster ? cluster : "?");
}

const struct backend_ops backend_libvirt_ops = {
        .name = "libvirt",
        .open = none_open,
};

void domain_name(const struct cluster_plan *p, const struct node_plan *n, char *buf, size_t len) {
        snprintf(buf, len, "fame-%s-%s", p->name, n->name);
}

char *domain_xml(const struct cluster_plan *p, const struct node_plan *n, const char *emulator) {
        (void) p;
        (void) n;
        (void) emulator;
        log_error("This fame was built without libvirt; use the host's fame (build/fame)");
        return NULL;
}

int domain_export(const struct cluster_plan *p, const char *dir, void (*wrote)(const char *path, void *userdata), void *userdata) {
        (void) p;
        (void) dir;
        (void) wrote;
        (void) userdata;
        return log_error_errno(-EOPNOTSUPP, "This fame was built without libvirt; use the host's fame (build/fame)");
}
