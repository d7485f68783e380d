# aarch64 nodes: qemu-system-aarch64 -M virt under multi-threaded TCG with room for a second
# vCPU, "max" with QEMU's cheap pointer authentication, the PL011 console (ttyAMA0), the FAM's
# ivshmem-plain on the virt board's PCIe root (pcie.0) at the same slot.
debug qemu-args --set arch=aarch64
# A mixed cluster: node02 is aarch64, node03 x86_64 — and under KVM only x86_64 nodes use it.
debug qemu-args --set node02.arch=aarch64 --node 2 --accel kvm
debug qemu-args --set arch=aarch64 --set node03.arch=x86_64 --node 3 --accel kvm
# Bad values: one line each.
debug qemu-args --set arch=arm64
debug qemu-args --set node02.arch=riscv64
# A Debian aarch64 node: its overlay of the arm64 base, root on /dev/vda, the PL011 console;
# and in a mixed Debian cluster the x86_64 node keeps the x86_64 base.
debug qemu-args --accel tcg --set kind=debian --set arch=aarch64 --node 1
debug qemu-args --accel tcg --set kind=debian --set node01.arch=aarch64 --node 2
