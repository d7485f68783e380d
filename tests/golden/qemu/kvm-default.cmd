debug qemu-args --accel kvm --node 2
