# Bad backend and URI values, and libvirt connections FAM/E cannot use: one line each, saying
# what is expected (test:///default is libvirt's built-in test driver: a real connection, of
# the wrong kind).
debug domain-xml --set backend=virtualbox
debug domain-xml --set libvirt_uri=system
debug domain-xml --node 9
up --backend nope
up --backend libvirt --set libvirt_uri=qemu+ssh://lab.example/system
up --backend libvirt --set libvirt_uri=test:///default
