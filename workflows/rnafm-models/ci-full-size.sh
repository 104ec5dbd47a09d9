#!/usr/bin/env bash
# CI: workflows/rnafm-models with a FULL-SIZE random RNA-FM checkpoint (12 layers, 640-d, 20 heads,
# ~400 MB; bench/make_rnafm_checkpoint.py) on 10 lncRNAs (most longer than 1022 nt, so every
# embedding batch is at RNA-FM's full length): embed, the paper's head (640-d, 2-fold CV, one
# epoch), ONNX export and the card. Prints the peak RSS of the largest job and fails above
# LIMIT_GB (default 8): the real build runs these same steps, with more sequences, on this
# kind of machine (24 GB) without running out of memory.
#
#   bash workflows/rnafm-models/ci-full-size.sh [WORK_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)
LIMIT_GB=${LIMIT_GB:-8}
export RNALOC_NO_PROGRESS=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

[ -s "$WORK/RNA-FM_random.pth" ] || python "$REPO/bench/make_rnafm_checkpoint.py" "$WORK/RNA-FM_random.pth"
cat > "$WORK/config.yaml" <<YAML
weights: '$WORK/RNA-FM_random.pth'
outdir: '$WORK/out'
rna_types: [lncRNA]
subset: 10
folds: 2
epochs: 1
patience: 1
threads: 2
device: cpu
precision: fp32
rnaloc: '$(command -v python) -m rnaloc_tools'
python: '$(command -v python)'
YAML
python - "$HERE/Snakefile" "$WORK" "$LIMIT_GB" <<'PY'
import resource, subprocess, sys, time
snakefile, work, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
t0 = time.time()
subprocess.run([sys.executable, "-m", "snakemake", "-s", snakefile, "--configfile", f"{work}/config.yaml",
                "--cores", "2", "--directory", work, "--quiet"], check=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
peak = usage.ru_maxrss / 2**20  # GiB, the largest single job
print(f"rnafm-models, full-size RNA-FM, 10 lncRNAs: {time.time() - t0:.0f} s wall, "
      f"{usage.ru_utime + usage.ru_stime:.0f} s CPU; peak RSS of the largest job {peak:.2f} GiB (limit {limit:g} GiB)")
for step in ("embed", "train"):
    print(open(f"{work}/out/logs/lncRNA/{step}.log").read().strip())
sys.exit(0 if peak < limit else f"peak RSS {peak:.2f} GiB is over {limit:g} GiB")
PY
cat "$WORK/out/models/lncRNA.card.md"
