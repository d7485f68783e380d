/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internals of the Debian image builder (image-debian.c): the files FAM/E adds to the root. */
#ifndef FAME_IMAGE_DEBIAN_H
#define FAME_IMAGE_DEBIAN_H

#include <sys/types.h>

struct debian_file {
        const char *path;       /* inside the root, no leading '/' */
        mode_t mode;            /* regular file permissions; 0 for a symlink */
        const char *content;    /* regular file contents */
        const char *target;     /* symlink target */
};

/* NULL-terminated tables (debian-files.c). */
extern const struct debian_file debian_files[];          /* added to every base image */
extern const struct debian_file debian_setup_files[];    /* in the root before packages install */

/* dpkg path-exclude patterns: documentation, and drivers for hardware QEMU does not emulate. */
extern const char *const debian_dpkg_excludes[];

/* What every Debian node gets, with `kernel` ("linux-image-amd64", "linux-image-arm64") and the
 * extra packages (commas or spaces) after it, comma-separated; NULL when out of memory. */
char *image_debian_package_list(const char *kernel, const char *extra);

#endif
