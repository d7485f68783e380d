/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Files FAM/E adds to the Debian root file system of kind=debian images (docs/debian.md).  They
 * are part of the image key: editing them here builds a new base image.
 *
 * At every boot, fame-setup.service (before the network, sshd and the getty) reads the node's
 * seed — a tar archive the host passes through fw_cfg opt/org.fame/seed, rewritten by every
 * `fame up` — and applies it:
 *   every boot:  hostname, the FAM/E block of /etc/hosts, /etc/ssh/ssh_known_hosts, network
 *                configuration (in /run/systemd/network), group fam may map FAM;
 *   first boot:  machine-id, SSH host key, the user account with its SSH keys and sudo rule;
 *                ldconfig (fame-ldconfig.service, off the critical path).
 * The work is done by `fame node setup` (src/fame/cmd-node-setup.c).
 * First-boot work is marked by /var/lib/fame/setup-done, so what users change inside a node
 * survives later boots and `fame up` runs (`fame up --reset` starts from the base again).
 */
#include <stddef.h>

#include "fame-constants.h"
#include "image-debian.h"

#define SETUP_UNIT \
"[Unit]\n" \
"Description=FAM/E node setup (hostname, hosts, keys, network) from the fw_cfg seed\n" \
"DefaultDependencies=no\n" \
"After=local-fs.target systemd-remount-fs.service\n" \
"Before=sysinit.target systemd-networkd.service ssh.service serial-getty@ttyS0.service serial-getty@ttyAMA0.service systemd-logind.service\n" \
"Wants=local-fs.target\n" \
"\n" \
"[Service]\n" \
"Type=oneshot\n" \
"RemainAfterExit=yes\n" \
"ExecStart=/usr/local/bin/fame node setup\n" \
"StandardOutput=journal+console\n" \
"\n" \
"[Install]\n" \
"WantedBy=sysinit.target\n"

/* Writes this boot's nonce into the node's FAM slot: the host's sign that the FAM is mapped
 * and its header valid. */
#define NODE_UNIT \
"[Unit]\n" \
"Description=FAM/E: join the FAM (node slot, boot nonce)\n" \
"After=fame-setup.service\n" \
"\n" \
"[Service]\n" \
"Type=oneshot\n" \
"RemainAfterExit=yes\n" \
"ExecStart=/usr/local/bin/fame node join\n" \
"StandardOutput=journal+console\n" \
"\n" \
"[Install]\n" \
"WantedBy=multi-user.target\n"

/* libfame is in /usr/local/lib/TRIPLET, which needs ld.so.cache: once, at first boot,
 * beside the boot rather than before sshd (ldconfig takes seconds under TCG). */
#define LDCONFIG_UNIT \
"[Unit]\n" \
"Description=FAM/E: ldconfig for libfame (first boot)\n" \
"ConditionPathExists=!/var/lib/fame/ldconfig-done\n" \
"After=fame-setup.service\n" \
"\n" \
"[Service]\n" \
"Type=oneshot\n" \
"ExecStart=/sbin/ldconfig\n" \
"ExecStart=/usr/bin/touch /var/lib/fame/ldconfig-done\n" \
"\n" \
"[Install]\n" \
"WantedBy=multi-user.target\n"

/* /lfs: the Librarian's shelves (fame-lfs, docs/lfs.md); before sshd, so that a user who logs
 * in finds it; retried until the network reaches torms. */
#define LFS_UNIT \
"[Unit]\n" \
"Description=FAM/E: the Librarian's shelves at /lfs\n" \
"After=fame-node.service systemd-networkd.service\n" \
"Before=ssh.service\n" \
"StartLimitIntervalSec=0\n" \
"\n" \
"[Service]\n" \
"Type=forking\n" \
"ExecStartPre=/bin/mkdir -p /lfs\n" \
"ExecStart=/usr/local/sbin/fame-lfs --relay /run/fame/librarian.sock /lfs\n" \
"ExecStop=/bin/umount -l /lfs\n" \
"Restart=on-failure\n" \
"RestartSec=1\n" \
"\n" \
"[Install]\n" \
"WantedBy=multi-user.target\n"

/* /share: the host directory of key share, read-only (virtio 9p).  Only when the node has a
 * 9p device (virtio device id 9): without key share nothing is loaded and nothing fails. */
#define SHARE_UNIT \
"[Unit]\n" \
"Description=FAM/E: the host's shared directory at /share (key share)\n" \
"After=fame-setup.service systemd-udevd.service\n" \
"Before=fame-node.service ssh.service\n" \
"\n" \
"[Service]\n" \
"Type=oneshot\n" \
"RemainAfterExit=yes\n" \
"ExecStart=/usr/local/sbin/fame-share\n" \
"StandardOutput=journal+console\n" \
"\n" \
"[Install]\n" \
"WantedBy=multi-user.target\n"

#define SHARE_SCRIPT \
"#!/bin/sh\n" \
"# FAM/E: mounts the host directory of key share at /share, read-only (fame-share.service).\n" \
"for d in /sys/bus/virtio/devices/*; do\n" \
"        [ \"$(cat \"$d/device\" 2>/dev/null)\" = 0x0009 ] || continue\n" \
"        modprobe -q 9pnet_virtio && modprobe -q 9p || { echo 'fame-share: no 9p modules'; exit 0; }\n" \
"        mkdir -p /share\n" \
"        mountpoint -q /share && exit 0\n" \
"        mount -t 9p -o trans=virtio,version=9p2000.L,ro " FAME_SHARE_TAG " /share ||\n" \
"                echo 'fame-share: cannot mount /share (9p tag " FAME_SHARE_TAG ")'\n" \
"        exit 0\n" \
"done\n"

/* Every process maps /lfs files from FAM (lib/mmap-shim.c), and libpmem's flushes are seen by
 * the coherence checker (lib/pmem-shim.c).  image-debian.c copies both, in this order, and
 * writes the node's multiarch triplet (x86_64-linux-gnu, aarch64-linux-gnu) for @TRIPLET@. */
#define LD_SO_PRELOAD \
"/usr/local/lib/@TRIPLET@/libfame-mmap.so\n" \
"/usr/local/lib/@TRIPLET@/libfame-pmem.so\n"

#define GETTY_AUTOLOGIN \
"# The serial console (fame console) logs in as root: only the cluster's owner can reach it.\n" \
"[Service]\n" \
"ExecStart=\n" \
"ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 - $TERM\n"

#define SSHD_CONF \
"# FAM/E: keys only, one host key (made by fame up, per node), no DNS lookups.\n" \
"HostKey /etc/ssh/ssh_host_ed25519_key\n" \
"PasswordAuthentication no\n" \
"KbdInteractiveAuthentication no\n" \
"UseDNS no\n"

#define MODPROBE_CONF \
"# FAM/E: devices of QEMU's pc machine that nodes do not use (faster boot under TCG).\n" \
"blacklist floppy\n" \
"blacklist pcspkr\n" \
"blacklist ata_piix\n" \
"blacklist ata_generic\n" \
"blacklist piix4_smbus\n" \
"blacklist joydev\n" \
"blacklist psmouse\n" \
"blacklist serio_raw\n"

#define JOURNALD_CONF \
"[Journal]\n" \
"# FAM/E: the console is the log host tools read (fame logs).\n" \
"ForwardToConsole=no\n" \
"SystemMaxUse=32M\n"

#define INITRAMFS_CONF \
"# FAM/E: a small initrd holding only what a node's root disk needs (see hooks/fame).\n" \
"MODULES=list\n" \
"COMPRESS=gzip\n"

#define INITRAMFS_HOOK \
"#!/bin/sh\n" \
"# FAM/E: the modules that mount a node's root disk (virtio-blk, ext4).\n" \
"[ \"$1\" = prereqs ] && exit 0\n" \
". /usr/share/initramfs-tools/hook-functions\n" \
"for m in virtio_pci virtio_blk ext4 crc32c_generic; do\n" \
"        force_load \"$m\"\n" \
"done\n"

#define WANTS(target, unit, to) { "etc/systemd/system/" target ".wants/" unit, 0, NULL, to }
#define MASK(unit) { "etc/systemd/system/" unit, 0, NULL, "/dev/null" }

const struct debian_file debian_files[] = {
        { "etc/systemd/system/fame-setup.service", 0644, SETUP_UNIT, NULL },
        { "etc/systemd/system/fame-node.service", 0644, NODE_UNIT, NULL },
        { "etc/systemd/system/fame-ldconfig.service", 0644, LDCONFIG_UNIT, NULL },
        { "etc/systemd/system/fame-lfs.service", 0644, LFS_UNIT, NULL },
        { "etc/ld.so.preload", 0644, LD_SO_PRELOAD, NULL },
        { "etc/systemd/system/fame-share.service", 0644, SHARE_UNIT, NULL },
        { "usr/local/sbin/fame-share", 0755, SHARE_SCRIPT, NULL },
        WANTS("multi-user.target", "fame-share.service", "/etc/systemd/system/fame-share.service"),
        WANTS("multi-user.target", "fame-lfs.service", "/etc/systemd/system/fame-lfs.service"),
        WANTS("sysinit.target", "fame-setup.service", "/etc/systemd/system/fame-setup.service"),
        WANTS("multi-user.target", "fame-node.service", "/etc/systemd/system/fame-node.service"),
        WANTS("multi-user.target", "fame-ldconfig.service", "/etc/systemd/system/fame-ldconfig.service"),
        WANTS("multi-user.target", "systemd-networkd.service", "/lib/systemd/system/systemd-networkd.service"),
        WANTS("sockets.target", "systemd-networkd.socket", "/lib/systemd/system/systemd-networkd.socket"),
        /* the serial console: ttyS0 on x86_64 nodes, the PL011 ttyAMA0 on aarch64 ones */
        { "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf", 0644, GETTY_AUTOLOGIN, NULL },
        { "etc/systemd/system/serial-getty@ttyAMA0.service.d/autologin.conf", 0644, GETTY_AUTOLOGIN, NULL },
        { "etc/ssh/sshd_config.d/fame.conf", 0644, SSHD_CONF, NULL },
        { "etc/modprobe.d/fame.conf", 0644, MODPROBE_CONF, NULL },
        { "etc/systemd/journald.conf.d/fame.conf", 0644, JOURNALD_CONF, NULL },
        /* Units a node does not need, each costing boot time under TCG. */
        MASK("apt-daily.timer"),
        MASK("apt-daily-upgrade.timer"),
        MASK("dpkg-db-backup.timer"),
        MASK("fstrim.timer"),
        MASK("e2scrub_all.timer"),
        MASK("e2scrub_reap.service"),
        MASK("getty@tty1.service"),
        MASK("systemd-networkd-wait-online.service"),
        MASK("modprobe@drm.service"),
        MASK("modprobe@dm_mod.service"),
        MASK("modprobe@efi_pstore.service"),
        MASK("sys-kernel-debug.mount"),
        MASK("sys-kernel-tracing.mount"),
        MASK("dev-hugepages.mount"),
        { NULL, 0, NULL, NULL }
};

/* Put into the root before any package is installed (mmdebstrap setup hook), so that the
 * kernel package's initrd is built small. */
const struct debian_file debian_setup_files[] = {
        { "etc/initramfs-tools/conf.d/fame", 0644, INITRAMFS_CONF, NULL },
        { "etc/initramfs-tools/hooks/fame", 0755, INITRAMFS_HOOK, NULL },
        { NULL, 0, NULL, NULL }
};

/* Not needed in a VM node: documentation and drivers for hardware QEMU does not emulate. */
const char *const debian_dpkg_excludes[] = {
        "/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
        "/lib/modules/*/kernel/sound/*", "/lib/modules/*/kernel/drivers/gpu/*",
        "/lib/modules/*/kernel/drivers/media/*", "/lib/modules/*/kernel/drivers/net/wireless/*",
        "/lib/modules/*/kernel/drivers/net/ethernet/*", "/lib/modules/*/kernel/drivers/infiniband/*",
        "/lib/modules/*/kernel/drivers/staging/*", "/lib/modules/*/kernel/drivers/bluetooth/*",
        "/lib/modules/*/kernel/drivers/isdn/*", "/lib/modules/*/kernel/drivers/iio/*",
        "/lib/modules/*/kernel/drivers/mtd/*", "/lib/modules/*/kernel/drivers/nfc/*",
        "/lib/modules/*/kernel/net/wireless/*", "/lib/modules/*/kernel/net/bluetooth/*", NULL,
};
