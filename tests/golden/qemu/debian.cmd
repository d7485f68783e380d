# A Debian node: its qcow2 overlay and fw_cfg seed, root on /dev/vda, hostname and machine-id
# on the kernel command line, sshd forwarded from 127.0.0.1, host services at torms (restricted
# user network), the private segment.
debug qemu-args --accel tcg --set kind=debian --set forward=9000,8080:18080 --node 2
debug qemu-args --set forward=9093
