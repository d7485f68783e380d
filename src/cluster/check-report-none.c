/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * `fame check report` where SQLite is not built in: the node-side fame-static.  The checker's
 * state and the Librarian's database are on the host; it says so in one line.
 */
#include <errno.h>

#include "check-report.h"
#include "log.h"

int cluster_check_report(const struct fame_config *c, const char *node, struct cluster_check_report *ret) {
        (void) c;
        (void) node;
        *ret = (struct cluster_check_report) { 0 };
        return log_error_errno(-EOPNOTSUPP, "fame check report runs on the host, where the checker's state is: use the host's fame (build/fame)");
}

void cluster_check_report_done(struct cluster_check_report *r) {
        (void) r;
}
