/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Minimal test helpers: CHECK() records a failure with file:line and goes on; test_exit()
 * returns 1 if anything failed.  SKIP exits 77 with a reason. */
#ifndef FAME_TESTLIB_H
#define FAME_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>

extern int test_failures;

void test_capture_log(void);
/* The last message libfame logged (empty string if none since test_clear_log()). */
const char *test_last_log(void);
void test_clear_log(void);
/* A fresh private directory under $TMPDIR, removed by test_exit() when all passed. */
const char *test_tmpdir(void);
int test_exit(void);

#define CHECK(cond, ...) do {                                                          \
                if (!(cond)) {                                                         \
                        fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                   \
                        fputc('\n', stderr);                                            \
                        test_failures++;                                                \
                }                                                                      \
        } while (0)

#define SKIP(...) do { fprintf(stderr, "SKIP: " __VA_ARGS__); fputc('\n', stderr); exit(77); } while (0)

#endif
