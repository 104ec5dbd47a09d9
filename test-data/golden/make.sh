#!/usr/bin/env bash
# Regenerate the golden predictions: each bundled model on its held-out example sequences
# (test-data/example-<rna_type>.fa; never trained on, see the model cards' held_out_ids).
# Run this only when a bundled model is rebuilt on purpose, and say so in the commit.
set -euo pipefail
cd "$(dirname "$0")/../.."
for spec in miRNA:rnalocate:miRNA lncRNA:rnalocate:lncRNA lncRNA:fractionation:lncRNA-fractionation circRNA:rnalocate:circRNA; do
  IFS=: read -r rna source name <<< "$spec"
  args=(--rna-type "$rna")
  [ "$rna" = lncRNA ] && args+=(--label-source "$source")
  rnaloc predict "test-data/example-$rna.fa" "${args[@]}" --no-header -o "test-data/golden/$name.tsv"
done
