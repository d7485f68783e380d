fam create @TMP@/y.fam --size 256M --book-size 2M --nodes 3 --uuid 00000000-0000-4000-8000-000000000001 --json
fam info @TMP@/y.fam --json
