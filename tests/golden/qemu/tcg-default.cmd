# Default configuration under TCG: multi-threaded TCG with room for a second vCPU.
debug qemu-args --accel tcg
debug qemu-args --accel tcg --node 4
# the translation cache: key tb_size (docs/config.md)
debug qemu-args --accel tcg --set tb_size=16
