# The Librarian topology fame up writes for a FAM (short form: 10 nodes per enclosure)
fam create @TMP@/a.fam --size 1G --nodes 4 --uuid 11111111-2222-4333-8444-555555555555
librarian topology --fam @TMP@/a.fam --comment cluster-a
# long form: 4 nodes per enclosure, node ids 1-4 and 11-14
fam create @TMP@/b.fam --size 2G --nodes 8 --nodes-per-enclosure 4 --uuid 11111111-2222-4333-8444-555555555555
librarian topology --fam @TMP@/b.fam --comment cluster-b
# cannot be expressed: 12 nodes per enclosure
fam create @TMP@/c.fam --size 1G --nodes 12 --nodes-per-enclosure 12 --uuid 11111111-2222-4333-8444-555555555555
librarian topology --fam @TMP@/c.fam
librarian topology
librarian init --db @TMP@/x.db --topology @TMP@/missing.ini
