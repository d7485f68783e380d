# The checker (fame up --check) under libvirt: a TCG domain (type qemu) whose QEMU loads FAM/E's
# plugin, given through <qemu:commandline> as the direct backend gives it.
debug domain-xml --accel kvm --set check=coherence
# A 16 GiB FAM: BAR2 at 16 GiB (above RAM: SeaBIOS's 64-bit window), plus the node's memory.
debug domain-xml --accel tcg --set check=coherence --set fam_size=16G
# A mixed cluster's aarch64 node: BAR2 at 0x8000000000.
debug domain-xml --accel tcg --set check=coherence --set node02.arch=aarch64 --node 2
# Commas in paths (issue 16 #16): doubled in <qemu:commandline>'s option strings; libvirt
# escapes its own elements.
debug domain-xml --accel tcg --set check=coherence --set fam=/srv/a,b.fam --set state_dir=/srv/s,t
