/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The checker's part in the cluster verbs (docs/check.md): `fame up` makes STATE/check for a plan
 * with the checker and removes it for one without; kill, down and start tell the checker which
 * nodes stopped and how (power loss or not); status reads the findings per node.  The checker
 * itself is src/check (check.h); this file only decides when to call it.
 */
#ifndef FAME_CLUSTER_CHECK_H
#define FAME_CLUSTER_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "fame-constants.h"
#include "plan.h"

/* `fame up`: STATE/check made anew for a plan with the checker, once the FAM file has its final
 * size and before the Librarian and the nodes start; removed for a plan without it.  Logs why
 * it fails. */
int cluster_check_prepare(const struct cluster_plan *p);

/* The nodes with which[id - 1] set are gone (their QEMU no longer runs); crash[id - 1]: by power
 * loss (NULL: none).  restored[id - 1] (may be NULL) gets the lines put back for crashed nodes.
 * 1 when the checker was told, 0 when the plan has no checker or the checker's host side is not
 * implemented (a warning), or a negative errno (logged). */
int cluster_check_stopped(const struct cluster_plan *p, const bool *which, const bool *crash,
                          uint64_t restored[FAME_MAX_NODES]);

/* `fame status`: the distinct findings that involve each node (index id - 1).  1 and ret, or 0
 * (nothing logged) when the plan has no checker or they cannot be read. */
int cluster_check_node_findings(const struct cluster_plan *p, uint64_t ret[FAME_MAX_NODES]);

#endif
