# The default FAM: 1 GiB, 8 MiB books, 4 nodes.
fam create @TMP@/x.fam --size 1G --uuid 6f1c2b7a-0d4e-4c1b-9a57-3e2f8d9c0b11
fam info @TMP@/x.fam
fam dump @TMP@/x.fam --length 256
fam dump @TMP@/x.fam --offset 0x1000 --length 32
