# 24 nodes, 4 per enclosure, 2 enclosures per rack: 6 enclosures in 3 racks.
fam create @TMP@/t.fam --size 8G --book-size 16M --nodes 24 --nodes-per-enclosure 4 --enclosures-per-rack 2 --uuid 00000000-0000-4000-8000-000000000024
fam info @TMP@/t.fam
