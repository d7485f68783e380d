/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* When the cluster verbs call the checker (cluster-check.h, cluster.h). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "check.h"
#include "cluster-check.h"
#include "cluster.h"
#include "log.h"

int cluster_check_prepare(const struct cluster_plan *p) {
        if (p->check == FAME_CHECK_OFF)
                return check_remove(p->state_dir);
        return check_create(p->state_dir, p->fam_path, p->fam_size, p->nodes);
}

int cluster_check_stopped(const struct cluster_plan *p, const bool *which, const bool *crash,
                          uint64_t restored[FAME_MAX_NODES]) {
        struct check *c = NULL;
        int r = 0;

        if (restored)
                memset(restored, 0, FAME_MAX_NODES * sizeof *restored);
        if (p->check == FAME_CHECK_OFF)
                return 0;
        r = check_open(p->state_dir, p->fam_path, &c);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < p->nodes && r >= 0; i++) {
                if (!which[i])
                        continue;
                uint64_t n = 0;
                int k = check_node_stopped(c, p->node[i].id, crash && crash[i], &n);
                if (k < 0)
                        r = k;
                else if (restored)
                        restored[i] = n;
        }
        check_close(c);
        return r;
}

int cluster_check_node_findings(const struct cluster_plan *p, uint64_t ret[FAME_MAX_NODES]) {
        struct check_report rep = { 0 };
        struct check *c = NULL;

        memset(ret, 0, FAME_MAX_NODES * sizeof *ret);
        if (p->check == FAME_CHECK_OFF || !check_exists(p->state_dir) || check_open(p->state_dir, p->fam_path, &c) < 0)
                return 0;
        int r = check_read_findings(c, &rep);
        if (r >= 0)
                for (uint32_t i = 0; i < p->nodes && i < CHECK_MAX_NODES; i++)
                        ret[i] = rep.node_findings[i];
        check_report_done(&rep);
        check_close(c);
        return r < 0 ? 0 : 1;
}

int cluster_check_host_wrote(const char *state_dir, const char *fam_path, const struct fam_range *ranges, size_t n) {
        struct check *c = NULL;
        int r;

        if (!state_dir || !check_exists(state_dir))
                return 0;
        r = check_open(state_dir, fam_path, &c);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = check_host_wrote(c, ranges[i].offset, ranges[i].len);
        check_close(c);
        return r;
}
