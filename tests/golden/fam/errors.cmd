# Usage errors: one line each, exit status 2.
fam create @TMP@/e.fam
fam create @TMP@/e.fam --size 1000M
fam create @TMP@/e.fam --size 1G --book-size 3M
fam create @TMP@/e.fam --size 16M
fam create @TMP@/e.fam --size 1T
fam create @TMP@/e.fam --size 1G --nodes 0
fam create @TMP@/e.fam --size lots
fam create @TMP@/e.fam --size 1G --uuid nope
fam create @TMP@/e.fam --size 1G --colour blue
fam info
fam info @TMP@/absent.fam
fam dump @TMP@/absent.fam
fam frobnicate
frobnicate
# Refusal to overwrite: exit status 1, the FAM is unchanged.
fam create @TMP@/e.fam --size 64M --book-size 2M --nodes 1 --uuid 00000000-0000-4000-8000-0000000000ee
fam create @TMP@/e.fam --size 128M --book-size 2M --nodes 1
fam dump @TMP@/e.fam --offset 64M --length 16
fam info @TMP@/e.fam --json
