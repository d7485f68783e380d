# Who may say what (docs/librarian.md): by default each node gets its Librarian secret through
# fw_cfg (opt/org.fame/secret, a file the Librarian made); with librarian_auth = none (HPE's
# clients, which send no secret) there is no secret to give.
debug qemu-args --node 2
debug qemu-args --node 2 --set librarian_auth=none
