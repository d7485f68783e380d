/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Opening and closing a backend (backend.h): the kind picks the operations. */
#include <errno.h>
#include <stdlib.h>

#include "backend.h"
#include "log.h"

int backend_open(enum fame_backend kind, const char *cluster, const char *libvirt_uri, struct backend **ret) {
        struct backend *be = calloc(1, sizeof *be);
        if (!be)
                return log_error_errno(-ENOMEM, "Out of memory");
        be->ops = kind == FAME_BACKEND_LIBVIRT ? &backend_libvirt_ops : &backend_qemu_ops;
        int r = be->ops->open(cluster, libvirt_uri, &be->data);
        if (r < 0) {
                free(be);
                return r;
        }
        *ret = be;
        return 0;
}

void backend_free(struct backend *be) {
        if (!be)
                return;
        be->ops->close(be->data);
        free(be);
}
