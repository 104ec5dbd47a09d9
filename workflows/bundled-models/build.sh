#!/usr/bin/env bash
# Rebuild the bundled default models rnaloc_tools/models/{miRNA,lncRNA,lncRNA-fractionation,circRNA}.onnx
# (+ .json model cards) and the held-out demo sequences test-data/example-{miRNA,lncRNA,circRNA}.{fa,tsv}.
#
#   workflows/bundled-models/build.sh [DATA_DIR] [WORK_DIR] [MODEL...]
#
# Runs from any directory. DATA_DIR: the data tables (default: the repository's datasets/);
# WORK_DIR: scratch (default: the repository's build/bundled-models); MODEL: only these (default: all).
# Writes into the repository (rnaloc_tools/models/, test-data/) unless BUNDLED_OUT / EXAMPLES_OUT
# name other folders (the test that rebuilds the miRNA model does that).
# Needs cd-hit-est (apt-get install cd-hit, or bioconda cd-hit) for the clusters.
# Steps per RNA type: `rnaloc dedup --keep all` (cd-hit-est 80% clusters of train + extra tables, ids
# table|id) -> train_bundled.py (held-out example clusters out; grouped 5-fold CV of the chosen
# configuration beside the majority and length-only baselines; Platt calibration on the out-of-fold
# logits; the fit on all remaining data; a kmer checkpoint) -> `rnaloc export-onnx` (checked against PyTorch).
# The configurations were chosen by bench/cv_select.py; its results are cv-selection.tsv here.
# Deterministic: the same data give the same bytes (single thread, L-BFGS, seeded folds and hold-out).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DATA=$(cd "${1:-$REPO/datasets}" && pwd)
WORK=${2:-$REPO/build/bundled-models}
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)
shift $(( $# > 2 ? 2 : $# ))
ONLY=" ${*:-miRNA lncRNA lncRNA-fractionation circRNA} "
OUT=${BUNDLED_OUT:-$REPO/rnaloc_tools/models}
EXAMPLES=${EXAMPLES_OUT:-$REPO/test-data}
mkdir -p "$OUT" "$EXAMPLES"
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
# the repository's own code, whatever is installed
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
RNALOC=(python -m rnaloc_tools)

# name  rna_type  labels  kmax  C  class_weight  length_weight  extra-table?
CONFIGS="miRNA miRNA rnalocate 4 0.003 balanced 30 no
lncRNA lncRNA rnalocate 7 0.0003 balanced 1 no
lncRNA-fractionation lncRNA fractionation 5 0.001 none 1 no
circRNA circRNA rnalocate 5 0.0001 none 30 yes"

for RNA in miRNA lncRNA circRNA; do
  case "$ONLY" in *" $RNA"[\ -]*) ;; *) continue ;; esac
  if [ ! -s "$WORK/$RNA.dedup.tsv" ]; then
    python - "$DATA" "$RNA" > "$WORK/$RNA.all.tsv" <<'PY'
import sys
import pandas as pd
data, rna = sys.argv[1:]
extra = {"miRNA": "extra-deeplocrna", "lncRNA": "extra-rnalight", "circRNA": "extra-cellcircloc"}[rna]
frames = []
for name in ("train", extra):
    df = pd.read_csv(f"{data}/{rna}/{name}.tsv.gz", sep="\t", comment="#")
    df["id"] = name + "|" + df.id.astype(str)
    frames.append(df[["id", "rna_type", "label", "sequence"]])
pd.concat(frames).to_csv(sys.stdout, sep="\t", index=False)
PY
    "${RNALOC[@]}" dedup "$WORK/$RNA.all.tsv" --keep all -c 0.8 -t "$THREADS" --save-clstr "$WORK/$RNA.clstr" \
      -o "$WORK/$RNA.dedup.tsv" < /dev/null
  fi
done

echo "$CONFIGS" | while read -r NAME RNA LABELS KMAX C CW LW EXTRA; do
  case "$ONLY" in *" $NAME "*) ;; *) continue ;; esac
  FLAGS=()
  [ "$EXTRA" = yes ] && FLAGS+=(--extra)
  [ "$LABELS" = rnalocate ] && FLAGS+=(--examples "$EXAMPLES")
  python "$HERE/train_bundled.py" --data "$DATA" --rna-type "$RNA" --labels "$LABELS" --name "$NAME" \
    --kmax "$KMAX" --C "$C" --class-weight "$CW" --length-weight "$LW" --clusters "$WORK/$RNA.dedup.tsv" "${FLAGS[@]}" \
    --notes "$HERE/model-notes.json" --card "$OUT/$NAME.json" -o "$WORK/$NAME.pt" < /dev/null
  "${RNALOC[@]}" export-onnx "$WORK/$NAME.pt" -o "$OUT/$NAME.onnx" --force < /dev/null
done
