/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Files written into every node image (image-init.c). */
#ifndef FAME_IMAGE_SCRIPTS_H
#define FAME_IMAGE_SCRIPTS_H

extern const char image_init_script[];          /* /init */
extern const char image_shutdown_script[];      /* /sbin/shutdown */
extern const char image_passwd[];               /* /etc/passwd */
extern const char image_group[];                /* /etc/group */
extern const char image_nsswitch[];             /* /etc/nsswitch.conf */
extern const char image_resolv_conf[];          /* /etc/resolv.conf */

#endif
