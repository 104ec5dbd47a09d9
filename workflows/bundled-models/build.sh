#!/usr/bin/env bash
# Rebuild the bundled default models rnaloc_tools/models/{miRNA,lncRNA,circRNA}.onnx (+ .json cards).
#
#   workflows/bundled-models/build.sh [DATA_DIR] [WORK_DIR]
#
# DATA_DIR: the data tables (default: the repository's datasets/); WORK_DIR: scratch (default build/bundled-models).
# Needs cd-hit-est (apt-get install cd-hit, or bioconda cd-hit) for the grouped cross-validation.
# Steps per RNA type: cd-hit-est 80% clusters of train + extra tables (CV grouping) ->
# train_bundled.py (grouped 5-fold CV of the chosen configuration, then the fit on all the
# chosen data; a kmer checkpoint) -> `rnaloc export-onnx` (checked against PyTorch).
# The configurations were chosen by bench/cv_select.py; its results are cv-selection.tsv here.
# Deterministic: the same data give the same weights, bit for bit (single thread, L-BFGS).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DATA=$(cd "${1:-$REPO/datasets}" && pwd)
WORK=${2:-$REPO/build/bundled-models}
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$WORK"

# rna_type  kmax  C  class_weight  extra-table?
CONFIGS="miRNA 3 0.01 balanced no
lncRNA 7 0.0003 balanced no
circRNA 4 0.0003 none yes"

echo "$CONFIGS" | while read -r RNA KMAX C CW EXTRA; do
  if [ ! -s "$WORK/$RNA.cdhit.clstr" ]; then
    python - "$DATA" "$RNA" > "$WORK/$RNA.fa" <<'PY'
import sys
import pandas as pd
data, rna = sys.argv[1:]
extra = {"miRNA": "extra-deeplocrna", "lncRNA": "extra-rnalight", "circRNA": "extra-cellcircloc"}[rna]
for name in ("train", extra):
    df = pd.read_csv(f"{data}/{rna}/{name}.tsv.gz", sep="\t", comment="#")
    for i, s in zip(df.id, df.sequence):
        print(f">{name}|{i}\n{s.upper().replace('U', 'T')}")
PY
    cd-hit-est -i "$WORK/$RNA.fa" -o "$WORK/$RNA.cdhit" -c 0.8 -n 5 -d 0 -M 0 -T "$THREADS" > "$WORK/$RNA.cdhit.log" < /dev/null
  fi
  EXTRA_FLAG=""
  [ "$EXTRA" = yes ] && EXTRA_FLAG="--extra"
  python "$HERE/train_bundled.py" --data "$DATA" --rna-type "$RNA" --kmax "$KMAX" --C "$C" \
    --class-weight "$CW" $EXTRA_FLAG --clusters "$WORK/$RNA.cdhit.clstr" \
    --card "$REPO/rnaloc_tools/models/$RNA.json" -o "$WORK/$RNA.pt" < /dev/null
  rnaloc export-onnx "$WORK/$RNA.pt" -o "$REPO/rnaloc_tools/models/$RNA.onnx" --force < /dev/null
done
