/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every verb of the CLI uses (cli.c): one clear line for a usage error or a failed
 * operation, getopt from the verb's option table, the count of positional arguments, and
 * finding a verb in a table.
 * main.c, the help verb and each cmd-*.c use it; it uses only the verb table's types.
 */
#ifndef FAME_CLI_H
#define FAME_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "macro.h"
#include "verbs.h"

/* The next option of argv, as getopt_long() gives it, from v's option table (v->options):
 * its key; -1 after the last option when the number of arguments left is right for the verb
 * (optind is then the first argument); or '?' after printing one clear line for an unknown
 * option, a missing value or a wrong number of arguments.  *first: true before the first call
 * (getopt starts over). */
int verb_getopt(const struct verb *v, int argc, char **argv, bool *first);

/* The key of the --json option, for the verbs that print state or results as JSON. */
#define VERB_JSON 0x7f00
/* verb_getopt(), except that --json (key VERB_JSON) sets *json and is not returned. */
int verb_getopt_json(const struct verb *v, int argc, char **argv, bool *first, bool *json);

/* Checks the number of positional arguments; prints the usage line when it is wrong. */
int verb_check_args(const struct verb *v, int n);

/* The verb called name in a NULL-terminated table, or NULL. */
const struct verb *verb_find(const struct verb *table, const char *name);

/* Prints "fame VERB: message" to stderr; returns -EINVAL for usage errors. */
int cli_usage_error(const struct verb *v, const char *fmt, ...) _printf_(2, 3);

/* Error line for a failed operation (when libfame has not logged it already). */
int cli_fail(int r, const char *fmt, ...) _printf_(2, 3);

#endif
