/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fame.h"
#include "testlib.h"

int test_failures;
static char last_log[1024];
static char tmpdir[PATH_MAX];

static void capture(int priority, const char *message, void *userdata) {
        (void) priority;
        (void) userdata;
        snprintf(last_log, sizeof last_log, "%s", message);
        if (getenv("FAME_TEST_VERBOSE"))
                fprintf(stderr, "libfame: %s\n", message);
}

void test_capture_log(void) { fame_set_log(capture, NULL); }
const char *test_last_log(void) { return last_log; }
void test_clear_log(void) { last_log[0] = 0; }

const char *test_tmpdir(void) {
        if (!tmpdir[0]) {
                const char *t = getenv("TMPDIR");
                snprintf(tmpdir, sizeof tmpdir, "%s/fame-test-XXXXXX", t && *t ? t : "/tmp");
                if (!mkdtemp(tmpdir)) {
                        perror("mkdtemp");
                        exit(1);
                }
        }
        return tmpdir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

int test_exit(void) {
        if (tmpdir[0]) {
                if (test_failures == 0)
                        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
                else
                        fprintf(stderr, "kept %s for inspection\n", tmpdir);
        }
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
