# Key share: <filesystem> with the host directory read-only (accessmode squash: the direct
# backend's security_model=none), tag fame-share, at 00:08.0 as with the direct backend.
debug domain-xml --accel kvm --set share=@SRC@
