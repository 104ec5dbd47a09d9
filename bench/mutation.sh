#!/usr/bin/env bash
# Mutation testing of the critical modules with mutmut (pip install mutmut): small changes are made
# to the code one at a time and the tests that cover the changed function are rerun; a mutant that
# no test notices "survives". Not in CI: hours of CPU for the whole set.
#
#   bench/mutation.sh [MODULE...]      (default: the critical modules below)
#
# Each module runs in a scratch copy of the repository (mutmut writes a mutants/ folder there),
# with the test files that exercise it. Prints, per module, the mutants killed, survived and the
# score, and writes the surviving mutants' diffs to $OUT (default bench/out/mutation/<module>.txt).
# The survivors we accept, each with its reason, are listed in bench/mutation-survivors.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$REPO/bench/out/mutation}
JOBS=${JOBS:-2}
mkdir -p "$OUT"

# module -> the test files that exercise it (a mutant runs only the tests that cover its function)
declare -A TESTS=(
  [rnaloc_tools/predict.py]="tests/test_predict.py tests/test_promises.py tests/test_bundled.py"
  [rnaloc_tools/fileio.py]="tests/test_cli.py tests/test_formats.py tests/test_embed.py"
  [rnaloc_tools/model/metrics.py]="tests/test_evaluate.py"
  [rnaloc_tools/model/onnx_export.py]="tests/test_onnx.py tests/test_promises.py"
  [rnaloc_tools/embed.py]="tests/test_embed.py tests/test_promises.py"
  [rnaloc_tools/formats/*]="tests/test_formats.py tests/test_embed.py tests/test_predict.py"
)
MODULES=("$@")
[ ${#MODULES[@]} -gt 0 ] || MODULES=(rnaloc_tools/model/metrics.py rnaloc_tools/fileio.py "rnaloc_tools/formats/*"
                                     rnaloc_tools/model/onnx_export.py rnaloc_tools/embed.py rnaloc_tools/predict.py)

printf '%-36s %7s %7s %7s %7s %6s\n' module mutants killed survived other score
for module in "${MODULES[@]}"; do
  tests=${TESTS[$module]:-tests}
  scratch=$(mktemp -d)
  git -C "$REPO" ls-files -z | (cd "$REPO" && xargs -0 cp -a --parents -t "$scratch")
  {
    echo "[mutmut]"
    echo "source_paths = rnaloc_tools"
    echo "only_mutate = $module"
    echo "also_copy ="
    for d in test-data datasets tests workflows galaxy bench setup.py README.md; do echo "    $d"; done
    echo "pytest_add_cli_args_test_selection ="
    for t in $tests; do echo "    $t"; done
    echo "pytest_add_cli_args ="
    echo "    -x"
    echo "    -q"
    echo "    -p no:cacheprovider"
    echo "process_isolation = forkserver"
  } > "$scratch/setup.cfg"
  name=$(echo "$module" | tr '/*' '__')
  (cd "$scratch" && RNALOC_NO_PROGRESS=1 OMP_NUM_THREADS=1 PYTHONPATH= timeout "${MUTMUT_TIMEOUT:-7200}" \
      mutmut run --max-children "$JOBS" > "$OUT/$name.log" 2>&1 || true)
  (cd "$scratch" && mutmut results --all true > "$OUT/$name.results" 2>/dev/null || true)
  python3 - "$module" "$OUT/$name.results" <<'PY'
import collections, sys
module, path = sys.argv[1:]
counts = collections.Counter()
for line in open(path, encoding="utf-8"):
    if ":" in line and line.startswith("    "):
        counts[line.rsplit(":", 1)[1].strip()] += 1
total = sum(counts.values())
killed, survived = counts.get("killed", 0), counts.get("survived", 0)
other = total - killed - survived
score = f"{killed / (killed + survived):.1%}" if killed + survived else "-"
print(f"{module:36s} {total:7d} {killed:7d} {survived:7d} {other:7d} {score:>6s}")
PY
  (cd "$scratch" && for m in $(mutmut results 2>/dev/null | awk -F: '/survived/ {print $1}'); do
      mutmut show "$m"; done > "$OUT/$name.survivors.txt" 2>/dev/null || true)
  rm -rf "$scratch"
done
