#!/bin/bash
# A private libvirtd for tests: `libvirtd-sandbox.sh start DIR` runs Debian's monolithic libvirtd
# (and the virtlogd it needs) in a mount namespace of its own, where DIR's subdirectories stand in
# for /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt: the
# machine's own libvirt configuration and state are neither read nor changed.  Clients reach it as
#   qemu:///system?socket=DIR/run/libvirt-sock
# (printed on stdout).  `libvirtd-sandbox.sh stop DIR` stops both daemons.
# qemu.conf: cgroup_controllers = [ ] keeps QEMU inside this sandbox's cgroup (libvirtd cannot
# create cgroups here); seccomp_sandbox = 0 lets QEMU start the relays of the nodes' host
# services (guestfwd cmd:), which QEMU's spawn=deny sandbox forbids (docs/libvirt.md).
set -eu
cmd=${1:?start|stop|inner}
dir=${2:?directory}

case "$cmd" in
start)
        for d in etc run lib log cache; do mkdir -p "$dir/$d"; done
        [ -e "$dir/etc/qemu.conf" ] || {
                cp -a /etc/libvirt/. "$dir/etc/"
                rm -rf "$dir/etc/qemu" "$dir/etc/storage"
                printf 'cgroup_controllers = [ ]\nseccomp_sandbox = 0\n' >> "$dir/etc/qemu.conf"
        }
        unshare --mount --propagation private -- "$0" inner "$dir" > "$dir/daemon.log" 2>&1 &
        for _ in $(seq 1 300); do
                [ -S "$dir/run/libvirt-sock" ] && { echo "qemu:///system?socket=$dir/run/libvirt-sock"; exit 0; }
                kill -0 $! 2> /dev/null || break
                sleep 0.1       # waiting for another process to bind its socket
        done
        echo "libvirtd did not start; see $dir/daemon.log" >&2
        cat "$dir/daemon.log" >&2
        exit 1
        ;;
inner)
        mount --bind "$dir/etc" /etc/libvirt
        mkdir -p /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt
        mount --bind "$dir/run" /run/libvirt
        mount --bind "$dir/lib" /var/lib/libvirt
        mount --bind "$dir/log" /var/log/libvirt
        mount --bind "$dir/cache" /var/cache/libvirt
        virtlogd -d -p /run/libvirt/virtlogd.pid
        exec libvirtd -p /run/libvirt/libvirtd.pid
        ;;
stop)
        # A daemon that exited but was not reaped yet (its parent is gone) counts as stopped.
        alive() { local st; st=$(ps -o stat= -p "$1" 2> /dev/null) && [ "${st#Z}" = "$st" ]; }
        for name in libvirtd virtlogd; do
                pidfile="$dir/run/$name.pid"
                [ -f "$pidfile" ] || { echo "$name: no pid file $pidfile: nothing to stop (was the sandbox started?)" >&2; exit 1; }
                pid=$(cat "$pidfile")
                kill "$pid" 2> /dev/null || true
                for _ in $(seq 1 100); do
                        alive "$pid" || break
                        sleep 0.1       # waiting for another process to exit
                done
                alive "$pid" && kill -9 "$pid" 2> /dev/null
                alive "$pid" && { echo "$name (pid $pid) does not stop" >&2; exit 1; }
        done
        exit 0
        ;;
esac
