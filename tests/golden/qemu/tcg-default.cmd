# Default configuration under TCG: multi-threaded TCG with room for a second vCPU.
debug qemu-args --accel tcg
debug qemu-args --accel tcg --node 4
