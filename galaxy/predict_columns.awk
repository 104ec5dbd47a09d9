# rnaloc predict's routed output (bundled models by each row's rna_type) with the probability
# columns of every bundled class, in one fixed order, empty where a class does not apply.
# The command line writes only the classes present in the file; Galaxy splits large inputs
# into tasks whose outputs are concatenated, so every task must write the same columns.
# A column this script does not know stops it: a new output column must be added here.
BEGIN {
    FS = OFS = "\t"
    n = split("id rna_type prediction probability_nucleus probability_cytoplasm " \
              "probability_extracellular probability_intracellular confidence in_domain domain_note", want, " ")
    for (j = 1; j <= n; j++) known[want[j]] = 1
}
/^#/ && !header { print; next }
!header {
    header = 1
    for (i = 1; i <= NF; i++) {
        if (!($i in known)) {
            print "rnaloc predict (Galaxy): unexpected column '" $i "' in the predictions" > "/dev/stderr"
            exit 1
        }
        col[$i] = i
    }
    for (j = 1; j <= n; j++) printf "%s%s", want[j], (j < n ? OFS : "\n")
    next
}
{
    for (j = 1; j <= n; j++) printf "%s%s", (want[j] in col ? $(col[want[j]]) : ""), (j < n ? OFS : "\n")
}
