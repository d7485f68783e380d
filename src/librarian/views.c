/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine's read-only views as the management view takes them (src/lmp/lmp.h): outside the
 * engine's own sources, which know nothing of HTTP (the fuzz target builds them alone).
 */
#include "engine.h"
#include "lmp.h"

const struct lmp_views engine_views = {
        .summary = engine_view_summary,
        .nodes = engine_view_nodes,
        .shelves = engine_view_shelves,
        .shelf = engine_view_shelf,
        .fam_map = engine_view_fam_map,
        .generation = engine_generation,
        .tm_global = engine_lmp_global,
        .tm_nodes = engine_lmp_nodes,
        .tm_interleave_groups = engine_lmp_interleave_groups,
        .tm_allocated = engine_lmp_allocated,
        .tm_active = engine_lmp_active,
        .tm_directory = engine_lmp_directory,
        .tm_shelf = engine_lmp_shelf,
        .tm_books = engine_lmp_books,
};
