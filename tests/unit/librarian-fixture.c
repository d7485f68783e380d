/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "fame.h"
#include "librarian-fixture.h"
#include "testlib.h"
#include "topology.h"

int librarian_fixture(uint64_t size, uint32_t nodes, char *fam, size_t fam_len, char *db, size_t db_len,
                      struct fame_geometry *ret_geo) {
        struct fame_create_params params = { .total_size = size, .node_count = nodes };
        struct topology *t = NULL;
        char *ini = NULL, *err = NULL;
        int failures = test_failures;

        snprintf(fam, fam_len, "%s/fam", test_tmpdir());
        snprintf(db, db_len, "%s/librarian.db", test_tmpdir());
        CHECK(fame_file_create(fam, &params, 0, ret_geo) == 0, "fame_file_create");
        CHECK(topology_ini_for_geometry(ret_geo, "test", &ini, &err) == 0, "ini: %s", err ? err : "");
        CHECK(ini && topology_parse(ini, strlen(ini), "test", &t, &err) == 0, "parse: %s", err ? err : "");
        CHECK(t && librarian_db_create(db, t, false, &err) == 0, "db: %s", err ? err : "");
        if (t)
                CHECK(librarian_db_create(db, t, false, NULL) == -EEXIST, "no overwrite without force");
        topology_free(t);
        free(ini);
        free(err);
        return test_failures == failures ? 0 : -1;
}
