# Under KVM: type kvm, host-passthrough CPU, no TCG features, all vCPUs online.
debug domain-xml --accel kvm --set cpus=2
