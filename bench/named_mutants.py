"""The six mutations an audit of the test suite found unnoticed (issue 16), each applied alone to a
scratch copy of the repository, with the test that must now catch it.

    python bench/named_mutants.py            # prints one line per mutation: caught (by which test) or SURVIVED

A mutation whose code pattern is no longer in the source is reported as such (the code changed:
update the pattern), never silently skipped. Exit status 1 when any mutation survives or is missing.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (name, file, regex, replacement, tests that must fail)
MUTATIONS = [
    ("predict ignores the model's tie class (ties to class 0)",
     "rnaloc_tools/predict.py", r"predicted_class\(([^,()]+), ([\w.]+)\.tie_class\)", r"predicted_class(\1, 0)",
     ["tests/test_promises.py::test_an_exact_tie_is_called_as_the_recorded_training_majority"]),
    ("export-onnx always records classes[0] as the tie class",
     "rnaloc_tools/model/onnx_export.py", r'"tie_class": str\(ckpt\.get\("tie_class"\) or ckpt\["classes"\]\[0\]\)',
     '"tie_class": str(ckpt["classes"][0])',
     ["tests/test_promises.py::test_an_exact_tie_is_called_as_the_recorded_training_majority"]),
    ("predict ignores the model's --max-len crop",
     "rnaloc_tools/predict.py", r"np\.minimum\(([\w.]+), ([\w.]+)\.max_length\) if \2\.max_length else \1", r"\1",
     ["tests/test_promises.py::test_a_max_len_model_predicts_long_sequences_as_their_first_n_nucleotides"]),
    ("atomic_path writes straight to the destination (no temporary file, no rename)",
     "rnaloc_tools/fileio.py", r"with _fresh_file_beside\(path\) as tmp:", "with contextlib.nullcontext(path) as tmp:",
     ["tests/test_promises.py::test_a_failed_overwrite_on_a_full_disk_keeps_the_previous_file",
      "tests/test_embed.py::test_sigint_leaves_no_partial_npz"]),
    ("--long windows keeps the last window instead of averaging the overlaps",
     "rnaloc_tools/embed.py", r"total\[start:end\] \+= mat\n(\s+)count\[start:end\] \+= 1",
     r"total[start:end] = mat\n\1count[start:end] = 1",
     ["tests/test_promises.py::test_window_averaging_at_every_position_of_a_3000_nt_sequence"]),
    ("the models' classes swapped where predict reads them",
     "rnaloc_tools/predict.py", r"self\.classes = check_classes\(([^\n]*)\)\n",
     r"self.classes = tuple(reversed(check_classes(\1)))\n",
     ["tests/test_golden.py"]),
]


def run(name, rel, pattern, replacement, tests):
    with tempfile.TemporaryDirectory(prefix="rnaloc-mutant-") as tmp:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        for f in filter(None, files.decode().split("\0")):
            dest = Path(tmp) / f
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = REPO / f
            if src.is_symlink():
                dest.symlink_to(src.readlink())
            elif src.is_file():
                shutil.copy2(src, dest)
        absent = [t for t in tests if not (Path(tmp) / t.split("::")[0]).is_file()]
        if absent:
            return "MISSING", f"no such test file: {', '.join(absent)}"
        path = Path(tmp) / rel
        source = path.read_text()
        mutated, n = re.subn(pattern, replacement, source, count=1)
        if not n:
            return "MISSING", f"pattern not found in {rel}: the code changed, update the mutation"
        path.write_text(mutated)
        env = dict(os.environ, PYTHONPATH=tmp, RNALOC_NO_PROGRESS="1")
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                              cwd=tmp, capture_output=True, text=True, env=env)
        if done.returncode == 0:
            return "SURVIVED", "every test passed"
        if done.returncode != 1:  # 2-5: interrupted, internal error, usage error, no tests collected
            return "BROKEN", f"pytest exit {done.returncode}: {done.stdout.strip().splitlines()[-1:]}"
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        return "caught", (failed[0] if failed else done.stdout.strip().splitlines()[-1])[:300]


def main(mutations=MUTATIONS):
    """Run each mutation; 1 when any is not caught (survived, missing or broken)."""
    bad = 0
    for name, rel, pattern, replacement, tests in mutations:
        status, detail = run(name, rel, pattern, replacement, tests)
        bad += status != "caught"
        print(f"{status:8s} {name}\n         {detail}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
