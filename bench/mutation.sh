#!/usr/bin/env bash
# Mutation testing of the critical modules with mutmut (pip install mutmut): small changes are made
# to the code one at a time and the tests that cover the changed function are rerun; a mutant that
# no test notices "survives". Not in CI: hours of CPU for the whole set.
#
#   bench/mutation.sh [MODULE[:FUNC,FUNC...]...]     (default: the critical modules below, every function)
#
#   bench/mutation.sh rnaloc_tools/model/metrics.py:predicted_class,compute_metrics,_metrics
#   bench/mutation.sh rnaloc_tools/embed.py:window_spans,merge_windows
#
# FUNC is a glob over the function's name (a method: its name or Class*name); only the mutants of
# those functions are run (mutmut's own "mutant name glob", rnaloc_tools.x.x_FUNC__mutmut_*).
# Environment: TESTS overrides the test files for every module given; MUTMUT_TIMEOUT bounds each
# module's run in seconds (default 1800: whatever is not done by then is counted as "other");
# MUTMUT_TIMEOUT_CONSTANT / MUTMUT_TIMEOUT_MULTIPLIER set mutmut's per-mutant wall limit,
# (estimated test time + constant) x multiplier seconds. The defaults (30 s, 15) are set for a loaded
# machine: with the stock 1 s, a mutant whose tests first import torch/onnxruntime in the fork
# (the lazy imports our CLI does) took longer than the limit on a busy 2-core machine and was
# recorded as a "timeout", although the unmutated tests pass; JOBS (default 1) the parallel mutants;
# PYTEST_K a pytest -k expression to leave out tests that fail unmutated (mutmut refuses to start
# when the clean run fails: "failed to collect stats. runner returned 1"; MUTMUT_DEBUG=true shows why);
# KEEP=1 keeps the scratch copy; MUTANTS=FILE runs exactly the mutants named in FILE (one
# mutmut name a line, e.g. the survivors of a BEFORE run, to rerun them with new tests: AFTER).
#
# Each module runs in a scratch copy of the repository (mutmut writes a mutants/ folder there),
# with the test files that exercise it. Prints, per module, the mutants killed, survived and the
# score, and writes the surviving mutants' diffs to $OUT (default bench/out/mutation/<module>.txt).
# The survivors we accept, each with its reason, are listed in bench/mutation-survivors.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$REPO/bench/out/mutation}
JOBS=${JOBS:-1}
mkdir -p "$OUT"

# module -> the test files that exercise it (a mutant runs only the tests that cover its function)
TESTS_OVERRIDE=${TESTS:-}
declare -A TESTS_FOR=(
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
for spec in "${MODULES[@]}"; do
  module=${spec%%:*}
  funcs=; [ "$spec" = "$module" ] || funcs=${spec#*:}
  tests=${TESTS_OVERRIDE:-${TESTS_FOR[$module]:-tests}}
  # mutmut's mutant names: the module's dotted path, then x_FUNC (functions) or xǁClassǁmethod
  dotted=$(echo "${module%.py}" | tr '/' '.')
  globs=()
  if [ -n "$funcs" ]; then
    IFS=, read -ra fs <<< "$funcs"
    for f in "${fs[@]}"; do globs+=("${dotted}.x*${f}__mutmut_*"); done
  fi
  if [ -n "${MUTANTS:-}" ]; then mapfile -t globs < <(grep -v '^ *$' "$MUTANTS"); fi
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
    if [ -n "${PYTEST_K:-}" ]; then echo "    -k"; echo "    $PYTEST_K"; fi
    echo "debug = ${MUTMUT_DEBUG:-false}"
    echo "process_isolation = forkserver"
    echo "timeout_constant = ${MUTMUT_TIMEOUT_CONSTANT:-30}"
    echo "timeout_multiplier = ${MUTMUT_TIMEOUT_MULTIPLIER:-15}"
  } > "$scratch/setup.cfg"
  name=$(echo "$spec" | tr '/*:,' '____')
  started=$(date +%s)
  (cd "$scratch" && RNALOC_NO_PROGRESS=1 OMP_NUM_THREADS=1 PYTHONPATH= MKL_NUM_THREADS=1 \
      timeout "${MUTMUT_TIMEOUT:-1800}" mutmut run --max-children "$JOBS" "${globs[@]}" > "$OUT/$name.log" 2>&1 || true)
  (cd "$scratch" && mutmut results --all true > "$OUT/$name.results" 2>/dev/null || true)
  python3 - "$spec" "$OUT/$name.results" "$(( $(date +%s) - started ))" "${globs[@]}" <<'PY'
import collections, fnmatch, sys
module, path, seconds, *globs = sys.argv[1:]
counts = collections.Counter()
for line in open(path, encoding="utf-8"):
    if ":" in line and line.startswith("    "):
        key, status = (x.strip() for x in line.rsplit(":", 1))
        if not globs or any(fnmatch.fnmatch(key, g) for g in globs):
            counts[status] += 1
total = sum(counts.values())
killed, survived = counts.get("killed", 0), counts.get("survived", 0)
other = total - killed - survived
score = f"{killed / (killed + survived):.1%}" if killed + survived else "-"
print(f"{module:36s} {total:7d} {killed:7d} {survived:7d} {other:7d} {score:>6s}  {seconds}s"
      + (f"  ({dict((k, v) for k, v in counts.items() if k not in ('killed', 'survived'))})" if other else ""))
PY
  (cd "$scratch" && for m in $(mutmut results 2>/dev/null | awk -F: '/survived/ {print $1}' | tr -d ' '); do
      mutmut show "$m"; done > "$OUT/$name.survivors.txt" 2>/dev/null || true)
  if [ -n "${KEEP:-}" ]; then echo "kept $scratch" >&2; else rm -rf "$scratch"; fi
done
