/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef FAME_LIBRARIAN_BENCH_H
#define FAME_LIBRARIAN_BENCH_H

/* fame librarian bench [--address HOST:PORT] [--clients 1,8] [--seconds S] [--node N] */
int librarian_bench_main(int argc, char **argv);

#endif
