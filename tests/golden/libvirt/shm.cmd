# A FAM in /dev/shm is libvirt's own <shmem> device (ivshmem-plain at 00:10.0); only the
# networks remain in <qemu:commandline>.  A FAM elsewhere under /dev/shm (a subdirectory) cannot
# be a <shmem> name and stays file-backed.
debug domain-xml --accel tcg --set fam=/dev/shm/fame-lab --set fam_size=256M
debug domain-xml --accel tcg --set fam=/dev/shm/lab/fam
