"""Mutation testing with mutmut's mutants, run in one process (issue 16, item 2).

``bench/mutation.sh`` lets mutmut run each mutant in a fresh forked process that imports pytest,
the test modules and their dependencies (torch, onnxruntime) again: on the shared 2-core machine
at load 5-7 that cost 20-30 s per mutant before any test ran (predict.py: 49 of ~350 selected
mutants in 10 minutes). This script takes mutmut's own mutants (``mutmut run``'s generation step:
the same mutation operators, names and ``mutmut show`` diffs) and runs them in ONE Python process:
mutmut's trampolines choose the mutant at every call from ``MUTANT_UNDER_TEST``, so the tests are
rerun in-process (``pytest.main``) once per mutant with that variable set; the imports are paid
once. A mutant is *killed* when a test fails (the first failing test is recorded: which test
killed it), *survived* when every test passes, *timeout* when the tests run past ``--timeout``
seconds (a mutant that loops). The unmutated run must pass first.

    python bench/mutation_inproc.py rnaloc_tools/predict.py:'*Predictor*rows,check_probabilities' \
        --tests "tests/test_golden.py tests/test_predict.py" [-k EXPR] [--mutants NAMES] [--out DIR]

FUNC globs as in bench/mutation.sh (a method: ``*Class*method``); ``--mutants FILE`` runs exactly
the mutants named there (e.g. the survivors of a BEFORE run, rerun with the new tests: AFTER).
Writes DIR/<name>.tsv (mutant, verdict, killing test), DIR/<name>.survivors.txt (their diffs)
and prints one summary line. Run it under ``nice -n 10``.
"""

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

GENERATE = """
import os
from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths
from mutmut.mutation.trampoline import set_mutant_under_test
set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir(); copy_also_copy_files(); setup_source_paths()
create_mutants(1)
"""

RUN = r"""
import os, signal, sys, time
import pytest

class Timeout(BaseException):
    pass

def alarm(signum, frame):
    raise Timeout()

class First:
    def __init__(self):
        self.failed = None
    def pytest_runtest_logreport(self, report):
        if report.failed and self.failed is None:
            self.failed = report.nodeid

signal.signal(signal.SIGALRM, alarm)
names_path, out_path, limit, *args = sys.argv[1:]
names = [n.strip() for n in open(names_path, encoding="utf-8") if n.strip()]
with open(out_path, "w", encoding="utf-8") as out:
    for name in names:
        os.environ["MUTANT_UNDER_TEST"] = name
        first = First()
        started = time.monotonic()
        signal.alarm(int(limit))
        try:
            code = pytest.main(["-x", "-p", "no:cacheprovider", "-p", "no:terminal", *args], plugins=[first])
            verdict = ("killed" if first.failed else "survived") if code in (0, 1) else f"error (pytest exit {int(code)})"
        except Timeout:
            verdict = "timeout"
        finally:
            signal.alarm(0)
        out.write(f"{name}\t{verdict}\t{first.failed or ''}\t{time.monotonic() - started:.1f}\n")
        out.flush()
        if name == "baseline" and verdict != "survived":
            sys.exit(f"the unmutated tests fail ({first.failed}): nothing measured")
"""


def mutant_names(scratch, module):
    """mutmut's names of the mutants of ``module`` (rnaloc_tools/x.py -> rnaloc_tools.x.x_f__mutmut_3)."""
    dotted = module[:-3].replace("/", ".")
    text = (scratch / "mutants" / module).read_text(encoding="utf-8")
    return [f"{dotted}.{m}" for m in dict.fromkeys(re.findall(r"^\s*def (x\S*?__mutmut_\d+)\(", text, re.M))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="MODULE[:FUNC,FUNC...]")
    parser.add_argument("--tests", required=True, help="test files (space-separated)")
    parser.add_argument("-k", dest="k", help="pytest -k expression")
    parser.add_argument("--mutants", help="a file of mutmut names to run (instead of the FUNC globs)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per mutant before it is a timeout")
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "mutation"))
    parser.add_argument("--name", help="output file stem (default: from the spec)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy")
    opts = parser.parse_args()

    module, _, funcs = opts.spec.partition(":")
    dotted = module[:-3].replace("/", ".")
    globs = [f"{dotted}.x*{f}__mutmut_*" for f in funcs.split(",")] if funcs else [f"{dotted}.*"]
    out_dir = Path(opts.out).resolve()  # the runner works in the scratch copy: a relative --out would land there
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = opts.name or re.sub(r"[^\w.-]+", "_", opts.spec)
    scratch = Path(tempfile.mkdtemp(prefix="rnaloc-mutation-"))
    started = time.time()
    load = os.getloadavg()[0]
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        for f in filter(None, files.decode().split("\0")):
            src, dest = REPO / f, scratch / f
            if src.is_file() and not src.is_symlink():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
        also = "".join(f"    {d}\n" for d in ("test-data", "datasets", "tests", "galaxy", "bench", "setup.py", "README.md"))
        (scratch / "setup.cfg").write_text(
            f"[mutmut]\nsource_paths = rnaloc_tools\nonly_mutate = {module}\nalso_copy =\n{also}")
        env = dict(os.environ, PYTHONPATH="", RNALOC_NO_PROGRESS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        subprocess.run([sys.executable, "-c", GENERATE], cwd=scratch, env=env, check=True, capture_output=True)
        names = mutant_names(scratch, module)
        if opts.mutants:
            wanted = [n.strip() for n in open(opts.mutants, encoding="utf-8") if n.strip()]
            missing = sorted(set(wanted) - set(names))
            if missing:
                sys.exit(f"no such mutants: {', '.join(missing[:5])}")
            names = wanted
        else:
            names = [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]
        (scratch / "names.txt").write_text("baseline\n" + "".join(n + "\n" for n in names))
        args = opts.tests.split() + (["-k", opts.k] if opts.k else [])
        env["PYTHONPATH"] = str(scratch / "mutants")
        done = subprocess.run([sys.executable, "-c", RUN, str(scratch / "names.txt"), str(out_dir / f"{stem}.tsv"),
                               str(opts.timeout), *args], cwd=scratch / "mutants", env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            sys.exit(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"runner exit {done.returncode}")
        rows = [line.rstrip("\n").split("\t") for line in open(out_dir / f"{stem}.tsv", encoding="utf-8")][1:]
        counts = {}
        for row in rows:
            counts[row[1]] = counts.get(row[1], 0) + 1
        survivors = [r[0] for r in rows if r[1] == "survived"]
        with open(out_dir / f"{stem}.survivors.txt", "w", encoding="utf-8") as fh:
            for name in survivors:
                shown = subprocess.run(["mutmut", "show", name], cwd=scratch, env=env, capture_output=True, text=True)
                fh.write(f"# {name}\n{shown.stdout}\n")
        killed = counts.get("killed", 0) + counts.get("timeout", 0)
        measured = killed + counts.get("survived", 0)
        score = f"{killed / measured:.1%}" if measured else "-"
        print(f"{opts.spec}: {len(rows)} mutants, {counts.get('killed', 0)} killed, {counts.get('timeout', 0)} timeout, "
              f"{counts.get('survived', 0)} survived, other {len(rows) - measured}, score {score}, "
              f"{time.time() - started:.0f} s, load {load:.1f} -> {os.getloadavg()[0]:.1f}")
    finally:
        if opts.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
