help
fam --help
help fam create
help fam create --man
help bench fam
help nosuchverb

