# Commas in paths (issue 16 #16): inside QEMU option strings (KEY=VALUE,...) every path is
# escaped with ',' doubled — the FAM's mem-path, the chardev sockets and console log, the
# private segment's sockets, the Debian overlay and seed, fame's path in guestfwd — while
# -kernel, -initrd and -pidfile, whole arguments, keep them as they are (-pidfile below).
debug qemu-args --set fam=/srv/a,b.fam --set state_dir=/srv/s,t --set forward=9000
debug qemu-args --set kind=debian --set fam=/srv/a,b.fam --set state_dir=/srv/s,t --node 2
