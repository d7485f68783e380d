# The default cluster's node01 under TCG, as libvirt gets it: type qemu, one vCPU of two (so
# that multi-threaded TCG emits real host atomics), the 32 MiB translation cache, node identity
# in fw_cfg, a pty console logged to console.log, the guest agent channel, QEMU as fame's user,
# and through <qemu:commandline> the file-backed FAM at 00:10.0 and both networks.
debug domain-xml --accel tcg
debug domain-xml --accel tcg --node 3 --set forward=9000,8080:18080
# An aarch64 node: arch aarch64 on the virt board, no ACPI (libvirt wants UEFI for it there;
# guest-shutdown powers off through PSCI), qemu-system-aarch64, and QEMU's cheap pointer
# authentication as a -global of the max CPU.
debug domain-xml --accel tcg --set node02.arch=aarch64 --node 2
# the translation cache: key tb_size (docs/config.md)
debug domain-xml --accel tcg --set tb_size=16
