#!/usr/bin/env bash
# The whole pipeline on real data: the miRNA training table of the repository's datasets/, with the
# paper's head (TextCNN + BiLSTM + attention) on one-hot embeddings.
#
#   workflows/examples/mirna-chain.sh [DATA_DIR] [WORK_DIR]
#
# dedup (cd-hit-est 80% clusters, all rows kept) -> split (cluster-grouped, stratified
# 20% test + 5 folds) -> embed (one-hot) -> train (5-fold CV, then the final model) ->
# export-onnx -> predict (held-out test rows, with attention) -> evaluate (beside the majority-class
# and length-only baselines, with ROC, precision-recall and reliability plots) -> motifs.
# About 15 minutes on 2 CPU cores (train is most of it). Needs cd-hit-est.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# Paths are resolved before the script changes into WORK_DIR, so it runs from any folder.
DATA=$(cd "${1:-$HERE/../../datasets}" && pwd)
WORK=${2:-mirna-chain}
mkdir -p "$WORK" && cd "$WORK"
export RNALOC_NO_PROGRESS=1

# one cd-hit-est thread: with several, cd-hit-est can assign a few borderline sequences to other
# clusters from run to run, and the split (so every number below) would change with them
rnaloc dedup "$DATA/miRNA/train.tsv.gz" --keep all -t 1 -o mi.clusters.tsv
rnaloc split mi.clusters.tsv --seed 1 -o mi.split.tsv
rnaloc embed mi.split.tsv --encoder one-hot -o mi.npz
rnaloc train mi.split.tsv mi.npz -o mi.pt --seed 1 --force
rnaloc export-onnx mi.pt -o mi.onnx
# the held-out rows (and, for the baselines, the training rows): the header and '#' lines, then the
# rows whose split column is "test" (or "train")
python3 - <<'PY'
from rnaloc_tools.formats import read_table, write_table
table = read_table("mi.split.tsv")
write_table(table.df[table.df["split"] == "test"], "mi.test.tsv", "split-test", table.header)
write_table(table.df[table.df["split"] == "train"], "mi.train.tsv", "split-train", table.header)
PY
rnaloc predict mi.test.tsv --model mi.onnx --attention mi.attention.npz -o mi.predictions.tsv
# the model beside the majority-class and length-only baselines fitted on the same training rows
rnaloc evaluate mi.predictions.tsv mi.test.tsv --baseline-train mi.train.tsv --plots plots -o mi.metrics.tsv
rnaloc motifs mi.attention.npz --sequences mi.test.tsv --predictions mi.predictions.tsv -o motifs
cat mi.metrics.tsv
