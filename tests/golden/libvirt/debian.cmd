# Debian nodes: the qcow2 overlay at 00:05.0, the seed as a fw_cfg file, root on /dev/vda,
# sshd forwarded from the host's 127.0.0.1 — under TCG and under KVM.
debug domain-xml --accel tcg --set kind=debian --node 2
debug domain-xml --accel kvm --set kind=debian --node 2
debug domain-xml --accel tcg --set kind=debian --set arch=aarch64 --node 1
