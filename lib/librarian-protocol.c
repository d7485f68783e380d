/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Librarian protocol's command table (librarian-protocol.h), made from LIBRARIAN_COMMANDS:
 * shared by libfame's client and the Librarian.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "librarian-protocol.h"

#define UNPAREN_(...) __VA_ARGS__

const struct librarian_command_info librarian_commands[LIBRARIAN_N_COMMANDS] = {
#define INFO_(name, access, resend, notice, params) \
        [LIBRARIAN_CMD_##name] = { #name, LIBRARIAN_##access, LIBRARIAN_RESEND_##resend, LIBRARIAN_##notice, \
                                   { UNPAREN_ params } },
        LIBRARIAN_COMMANDS(INFO_)
#undef INFO_
};

int librarian_command_from_name(const char *name) {
        for (size_t i = 0; i < LIBRARIAN_N_COMMANDS; i++)
                if (strcmp(librarian_commands[i].name, name) == 0)
                        return (int) i;
        return -ENOSYS;
}
