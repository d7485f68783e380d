# The checker (fame up --check): every node's QEMU loads FAM/E's TCG plugin with the node's id
# and architecture, its BAR2 address, the FAM and the state directory; x86_64 nodes run under
# TCG even where KVM works.
debug qemu-args --set check=coherence
debug qemu-args --set check=coherence --accel kvm --node 3
# A 16 GiB FAM does not fit SeaBIOS's 32-bit window: BAR2 above RAM, at 16 GiB; with 8 GiB of
# memory (5 GiB of it above 4 GiB) still at 16 GiB, with 32 GiB of memory (29 above) at 48 GiB; 512M at
# 0xc0000000.  aarch64: 0x8000000000 whatever the size.
debug qemu-args --set check=coherence --set fam_size=16G
debug qemu-args --set check=coherence --set fam_size=16G --set memory=8G
debug qemu-args --set check=coherence --set fam_size=16G --set memory=32G
debug qemu-args --set check=coherence --set fam_size=512M
debug qemu-args --set check=coherence --set fam_size=16G --set node02.arch=aarch64 --node 2
# A mixed cluster: node02 is aarch64, whose BAR2 the virt board puts at 0x8000000000.
debug qemu-args --set check=coherence --set node02.arch=aarch64 --node 2
# Commas in paths are doubled (QEMU's option syntax).
debug qemu-args --set check=coherence --set fam=/srv/a,b.fam --set state_dir=/srv/s,t
# What the checker cannot do, and bad values: one line each, before anything starts.
debug qemu-args --set check=coherence --set accel=kvm
debug qemu-args --set check=coherence --set nodes=65 --set fam_size=4G
debug qemu-args --set check=on
up --check --accel kvm
