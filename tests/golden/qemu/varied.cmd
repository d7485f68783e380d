debug qemu-args -c lab --config @SRC@/varied.conf --accel tcg --node 11
debug qemu-args -c lab --config @SRC@/varied.conf --accel kvm --node 12
debug qemu-args -c lab --config @SRC@/varied.conf --set nodes=2 --node 3
