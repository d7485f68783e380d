/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef FAME_ACCEL_H
#define FAME_ACCEL_H

#include <stdbool.h>

#include "config.h"

/*
 * KVM is used only when a test guest actually runs under it.  /dev/kvm can exist while guests
 * hang (no nested virtualisation) — and a guest that only runs a few real-mode instructions
 * still works there, so the probe boots the node kernel itself, without a root filesystem:
 * with panic=-1 and -no-reboot, a working KVM gets to the "cannot mount root" panic and QEMU
 * exits within a second or two; a broken one hangs and the probe gives up after 6 s.
 * The answer is cached per host boot (and kernel) in CACHE_DIR/kvm-probe.
 */
int accel_probe_kvm(const char *qemu, const char *kernel, const char *cache_dir, bool *ret_works, char **ret_why);

/* auto -> kvm or tcg; kvm -> kvm or an error saying why not; tcg -> tcg. */
int accel_resolve(enum fame_accel want, const char *qemu, const char *kernel, const char *cache_dir, enum fame_accel *ret);

#endif
