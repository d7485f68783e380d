# Key share: the host directory as a read-only virtio 9p export (tag fame-share) at 00:08.0,
# which nodes mount at /share; x86_64 and aarch64 (the virt board's PCIe root) alike.
debug qemu-args --accel tcg --set share=@SRC@
debug qemu-args --accel tcg --set share=@SRC@ --set node02.arch=aarch64 --node 2
# not a directory: one error, before any node starts
debug qemu-args --accel tcg --set share=@SRC@/share.cmd
debug qemu-args --accel tcg --set share=@TMP@/none
