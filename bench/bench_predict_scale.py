"""Benchmark: ``rnaloc predict`` at scale, memory and throughput, before and after a change.

Real sequences of datasets/<rna_type>/train.tsv.gz are resampled (with new ids) to
files of 10k, 100k and 1M sequences, and each file is predicted with the bundled
model of its RNA type, each run in its own process: the code of this checkout
("after") and, for comparison, the code of an earlier commit ("before", checked out
in a temporary ``git worktree``; by default the last commit before predict
streamed; ``--before COMMIT`` for another). Printed per run: seconds in
``predict_file`` (after a one-sequence run that does the imports), sequences/s and
the peak RSS of the process (its own VmHWM, see ``PEAK``); then the ratios
RSS(size)/RSS(smallest) of each code and the throughput after/before at each size.

Position check (each "after" predict run; ``--no-check`` skips it): the sequences at
the start, around 90% (positions 899,999-900,001 of a 1M file) and at the end are
predicted alone and together as a small file with the same code and model, and
their rows compared with the large file's: the call and other columns must be
identical and the probabilities within 1.5e-6; one line per sequence is printed.

Then one 2-Mb sequence (real lncRNAs joined) through the lncRNA model, before and
after: its peak RSS. ``--tool-sizes`` adds ``rnaloc embed`` (encoders from
``--embed-encoders``: one-hot; rna-fm-tiny, a random 2-layer 32-d RNA-FM written
here; rna-fm with ``--rnafm-weights``; ``:fp32`` or ``:bf16`` after an RNA-FM name
sets its precision; RNA-FM only up to ``--rnafm-max`` sequences) and ``rnaloc motifs``
(on the attention file and predicted classes of the after code's ``predict``; with the
peak size of its temporary folder, ``tmp_mb``) at those sizes.

The old code holds ~8 KB per sequence, so ``--before-max`` (default 100k) keeps it
from the 1M files. On 2 shared cores a 1M circRNA run takes 5-35 min: run niced.

    nice -n 10 python bench/bench_predict_scale.py                      # circRNA 10k/100k/1M, 2 Mb
    python bench/bench_predict_scale.py --types circRNA,lncRNA,miRNA --sizes 10000,100000
    python bench/bench_predict_scale.py --types lncRNA --before HEAD~1 --before-max 10000 --long 0
    python bench/bench_predict_scale.py --sizes "" --long 0 --tool-sizes 1000,3000   # embed, motifs
    python bench/bench_predict_scale.py --sizes "" --long 0 --before "" --tool-sizes 1000,10000,100000 \
        --tools embed --embed-encoders one-hot,rna-fm-tiny
    nice -n 10 python bench/bench_predict_scale.py --sizes "" --long 0 --tools embed --tool-sizes 1000,10000,3000 \
        --embed-encoders rna-fm-tiny:fp32,rna-fm-tiny:bf16 --before 3702f10   # RNA-FM embed memory: exact vs laddered widths
    nice -n 10 python bench/bench_predict_scale.py --sizes "" --long 0 --tools motifs \
        --tool-sizes 1000,10000,100000 --before d496383 --before-max 10000   # motifs before/after streaming
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from child_peak import PEAK  # the measured process's own peak RSS (VmHWM), printed by every runner

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RNALOC_DATASETS", REPO / "datasets"))
#: main before `predict` streamed (it embedded everything into a temporary NPZ first)
BEFORE = "368ba4f"

RUNNER = PEAK + r"""
import json, logging, sys, time
logging.getLogger("rnaloc").setLevel(logging.WARNING)
from rnaloc_tools.predict import predict_file
fasta, out, rna_type = sys.argv[1:4]
attention = sys.argv[4] if len(sys.argv) > 4 else None
with open(out + ".warm.fa", "w") as fh:  # a one-sequence run first: imports are not throughput
    fh.write(">warm\nACGUACGUACGUACGUACGUACGU\n")
predict_file(out + ".warm.fa", out, rna_type=rna_type)
start = time.perf_counter()
predict_file(fasta, out, rna_type=rna_type, attention_path=attention)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": peak_mb()}))
"""


#: `rnaloc embed` (one-hot) and `rnaloc motifs` on an attention file, for --tool-sizes
TOOL_RUNNERS = {
    "embed": PEAK + r"""
import json, logging, sys, time
logging.getLogger("rnaloc").setLevel(logging.WARNING)
from rnaloc_tools.embed import embed_records
from rnaloc_tools.encoders import get_encoder
from rnaloc_tools.formats import read_records
fasta, out, encoder = sys.argv[1:4]
weights = sys.argv[4] if len(sys.argv) > 4 else None
precision = sys.argv[5] if len(sys.argv) > 5 else "auto"
encoder = get_encoder(encoder, weights=weights, device="cpu", precision=precision)  # loaded before the clock starts
start = time.perf_counter()
embed_records(read_records(fasta), encoder, out)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": peak_mb()}))
""",
    "motifs": PEAK + r"""
import json, logging, os, sys, tempfile, threading, time
logging.getLogger("rnaloc").setLevel(logging.WARNING)
from rnaloc_tools.motifs import Outputs, run_motifs
fasta, out, attention, predictions = sys.argv[1:5]
tempfile.tempdir = out + ".tmp"  # the temporary folder's size is sampled: peak temporary disk
os.makedirs(tempfile.tempdir, exist_ok=True)
peak, done = [0], threading.Event()
def sample():
    while not done.wait(0.5):
        size = 0
        for root, _, names in os.walk(tempfile.tempdir):
            for name in names:
                try:
                    size += os.path.getsize(os.path.join(root, name))
                except OSError:
                    pass
        peak[0] = max(peak[0], size)
threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
run_motifs([attention], fasta, Outputs(motifs=out, regions=out + ".regions.tsv", meme=out + ".meme"),
           predictions=predictions)
seconds = time.perf_counter() - start
done.set()
print(json.dumps({"seconds": seconds, "tmp_mb": peak[0] / 1e6, "peak_mb": peak_mb()}))
""",
}


#: each of the given records predicted alone (a file of one), then all of them as one small file
ALONE_RUNNER = r"""
import json, logging, sys
logging.getLogger("rnaloc").setLevel(logging.WARNING)
from rnaloc_tools.formats import read_records
from rnaloc_tools.predict import predict_file
fasta, out, rna_type = sys.argv[1:4]

def rows(path):
    lines = [line.rstrip("\n") for line in open(path) if not line.startswith("#")]
    return lines[0], {line.split("\t", 1)[0]: line for line in lines[1:]}

alone = {}
for i, record in enumerate(read_records(fasta)):
    with open(f"{out}.{i}.fa", "w") as fh:
        fh.write(f">{record.id}\n{record.seq}\n")
    predict_file(f"{out}.{i}.fa", out, rna_type=rna_type)
    header, got = rows(out)
    alone.update(got)
predict_file(fasta, out, rna_type=rna_type)
print(json.dumps({"header": header, "alone": alone, "small": rows(out)[1]}))
"""


def resample(rna_type, n, seed=0):
    """The real training sequences of ``rna_type`` and ``n`` indices into them drawn with replacement."""
    seqs = pd.read_csv(DATA / rna_type / "train.tsv.gz", sep="\t", usecols=["sequence"])["sequence"].tolist()
    return seqs, np.random.default_rng(seed).integers(0, len(seqs), n)


def check_positions(n):
    """Where the position check looks in a file of ``n``: the first, around 90% (900,000 of 1M), the last."""
    deep = n * 9 // 10
    return sorted({0, max(0, deep - 1), deep, min(n - 1, deep + 1), n - 1})


def position_check(code_dir, rna_type, n, large_tsv, tmp, seed=0):
    """Sequences at :func:`check_positions` of the file of ``n`` predicted alone and in a small file with the
    same code and model: their rows against the large file's (same call and columns, probabilities within
    1.5e-6). Prints one line per sequence; returns the largest probability difference and whether every
    call and other column was identical."""
    seqs, picks = resample(rna_type, n, seed)
    positions = check_positions(n)
    wanted = {f"r{j}": j for j in positions}
    large = {}
    with open(large_tsv) as fh:
        for line in fh:
            rid = line.split("\t", 1)[0]
            if rid in wanted:
                large[rid] = line.rstrip("\n")
    fasta = tmp / "positions.fa"
    fasta.write_text("".join(f">r{j}\n{seqs[picks[j]]}\n" for j in positions))
    env = dict(os.environ, PYTHONPATH=str(code_dir), RNALOC_NO_PROGRESS="1")
    proc = subprocess.run([sys.executable, "-c", ALONE_RUNNER, str(fasta), str(tmp / "alone.tsv"), rna_type],
                          env=env, cwd=str(code_dir), capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"position check failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        return float("nan"), False
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    columns = got["header"].split("\t")
    worst, same = 0.0, True
    print(f"position check ({rna_type}, {n:,} sequences): alone / in a small file of {len(positions)} / in the large file")
    for rid, j in wanted.items():
        rows = [dict(zip(columns, got[where][rid].split("\t"))) for where in ("alone", "small")]
        rows.append(dict(zip(columns, large[rid].split("\t"))))
        probs = [c for c in columns if c.startswith("probability_")]
        diff = max(abs(float(r[c]) - float(rows[0][c])) for r in rows[1:] for c in probs)
        others = all(r[c] == rows[0][c] for r in rows[1:] for c in columns if c not in probs)
        worst, same = max(worst, diff), same and others
        print(f"  position {j:>9,} ({rid}, {len(seqs[picks[j]])} nt): {rows[0]['prediction']}, "
              f"{' '.join(rows[0][c] for c in probs)}; calls and other columns "
              f"{'identical' if others else 'DIFFER'}; max |probability difference| {diff:.1e}"
              f"{'' if diff <= 1.5e-6 else ' (over 1.5e-6)'}")
    return worst, same


def write_fasta(path, rna_type, n, seed=0):
    """``n`` sequences drawn with replacement from the real training table, ids r0..r{n-1}; total nt."""
    seqs, picks = resample(rna_type, n, seed)
    total = 0
    with open(path, "w") as fh:
        for start in range(0, n, 100000):
            part = picks[start : start + 100000]
            fh.write("".join(f">r{start + j}\n{seqs[i]}\n" for j, i in enumerate(part)))
            total += sum(len(seqs[i]) for i in part)
    return total


def write_long(path, length, seed=0):
    """One sequence of ``length`` nt: real lncRNAs joined end to end (resampled), cut to length."""
    seqs = pd.read_csv(DATA / "lncRNA" / "train.tsv.gz", sep="\t", usecols=["sequence"])["sequence"].tolist()
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < length:
        s = seqs[int(rng.integers(0, len(seqs)))]
        parts.append(s)
        total += len(s)
    seq = "".join(parts)[:length]
    with open(path, "w") as fh:
        fh.write(">long\n")
        fh.writelines(seq[i : i + 80] + "\n" for i in range(0, len(seq), 80))


def run_measured(code_dir, fasta, rna_type, out, runner=RUNNER, extra=()):
    """Run ``runner`` (predict_file by default) in a fresh process with ``code_dir`` first on the path,
    arguments FASTA, OUT, ``rna_type``: seconds, peak RSS (MB, the process's own VmHWM: see ``child_peak``)."""
    env = dict(os.environ, PYTHONPATH=str(code_dir), RNALOC_NO_PROGRESS="1")
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        proc = subprocess.Popen([sys.executable, "-c", runner, str(fasta), str(out), str(rna_type), *map(str, extra)],
                                env=env,
                                stdout=so, stderr=se, cwd=str(code_dir))
        proc.wait()
        so.seek(0)
        se.seek(0)
        stdout, stderr = so.read(), se.read()
    if proc.returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or ["?"]
        return {"seconds": float("nan"), "rss_mb": float("nan"), "error": tail[0][:200]}
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"seconds": result["seconds"], "rss_mb": result["peak_mb"], "tmp_mb": result.get("tmp_mb", float("nan"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--types", default="circRNA", help="RNA types, comma-separated (circRNA,lncRNA,miRNA)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="sequences per file, comma-separated")
    parser.add_argument("--before", default=BEFORE, help="git commit of the 'before' code ('' to skip)")
    parser.add_argument("--before-max", type=int, default=100000, help="largest file given to the before code")
    parser.add_argument("--long", type=int, default=2_000_000, help="length of the one long sequence (0: skip)")
    parser.add_argument("--tool-sizes", default="",
                        help="also `embed` (one-hot) and `motifs` (on the after code's attention file) of the first "
                        "RNA type at these sizes, comma-separated (e.g. 1000,10000)")
    parser.add_argument("--tools", default="embed,motifs", help="which of embed,motifs --tool-sizes runs")
    parser.add_argument("--embed-encoders", default="one-hot",
                        help="encoders of the embed runs, comma-separated: one-hot, rna-fm-tiny (a random 2-layer "
                        "32-d RNA-FM written here), rna-fm (needs --rnafm-weights); an RNA-FM name may end in "
                        ":fp32 or :bf16 (--precision; default auto)")
    parser.add_argument("--rnafm-weights", default=None, help="RNA-FM weights for --embed-encoders rna-fm")
    parser.add_argument("--rnafm-max", type=int, default=10000, help="largest --tool-sizes file given to RNA-FM")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the position check (sequences at the start, around 90%% and at the end of each "
                        "predicted file predicted alone and in a small file, against the large file's rows)")
    parser.add_argument("--work", default=None, help="folder for the generated files (default: a temporary one)")
    args = parser.parse_args()
    types = [t for t in args.types.split(",") if t]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows, checks = [], []
    with tempfile.TemporaryDirectory(dir=args.work, prefix="rnaloc-scale-") as tmp:
        tmp = Path(tmp)
        encoders = {}
        for name in [e for e in args.embed_encoders.split(",") if e]:
            base, _, precision = name.partition(":")
            if name == "one-hot":
                encoders[name] = ("one-hot",)
            elif base == "rna-fm-tiny" and precision in ("", "fp32", "bf16"):
                from rnaloc_tools.encoders.rnafm import write_random_checkpoint

                tiny = tmp / "RNA-FM_tiny.pth"
                if not tiny.exists():
                    write_random_checkpoint(tiny, seed=0)
                encoders[name] = ("rna-fm", tiny, precision or "auto")
            elif base == "rna-fm" and args.rnafm_weights and precision in ("", "fp32", "bf16"):
                encoders[name] = ("rna-fm", args.rnafm_weights, precision or "auto")
            else:
                parser.error(f"--embed-encoders: {name!r} is not one-hot, rna-fm-tiny or rna-fm with --rnafm-weights")
        codes = {"after": REPO}
        if args.before:
            before = tmp / "before"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before), args.before],
                           check=True, capture_output=True)
            codes = {"before": before, "after": REPO}
        try:
            for rna_type in types:
                for n in sizes:
                    fasta = tmp / f"{rna_type}-{n}.fa"
                    nt = write_fasta(fasta, rna_type, n)
                    for code, folder in codes.items():
                        if code == "before" and n > args.before_max:
                            continue
                        result = run_measured(folder, fasta, rna_type, tmp / "p.tsv")
                        rows.append({"tool": "predict", "rna_type": rna_type, "sequences": n, "mean_nt": nt / n,
                                     "code": code,
                                     "seconds": result["seconds"], "seq_per_s": n / result["seconds"],
                                     "peak_rss_mb": result["rss_mb"], "error": result.get("error", "")})
                        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1,
                                                                 float_format=lambda v: f"{v:.4g}"), flush=True)
                        if code == "after" and not args.no_check and not result.get("error"):
                            worst, same = position_check(folder, rna_type, n, tmp / "p.tsv", tmp)
                            checks.append(f"{rna_type} {n}: max |probability difference| {worst:.1e}, calls and "
                                          f"other columns {'identical' if same else 'DIFFER'}")
                    fasta.unlink()
            for n in [int(v) for v in args.tool_sizes.split(",") if v]:
                fasta = tmp / f"tool-{n}.fa"
                nt = write_fasta(fasta, types[0], n)
                attention = tmp / f"tool-{n}.npz"
                tools = [t for t in args.tools.split(",") if t]
                if "motifs" in tools:
                    run_measured(REPO, fasta, types[0], tmp / "p.tsv", extra=[attention])
                runs = [("motifs", TOOL_RUNNERS["motifs"], attention, (tmp / "p.tsv",))] if "motifs" in tools \
                    else []
                if "embed" in tools:
                    runs += [(f"embed:{name}", TOOL_RUNNERS["embed"], spec[0], spec[1:])
                             for name, spec in encoders.items() if spec[0] != "rna-fm" or n <= args.rnafm_max]
                for tool, runner, third, extra in runs:
                    for code, folder in codes.items():
                        if code == "before" and n > args.before_max:
                            continue
                        result = run_measured(folder, fasta, third, tmp / "tool.out", runner, extra)
                        (tmp / "tool.out").unlink(missing_ok=True)
                        rows.append({"tool": tool, "rna_type": types[0], "sequences": n, "mean_nt": nt / n,
                                     "code": code, "seconds": result["seconds"], "seq_per_s": n / result["seconds"],
                                     "peak_rss_mb": result["rss_mb"], "tmp_mb": result.get("tmp_mb", float("nan")),
                                     "error": result.get("error", "")})
                        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=False,
                                                                 float_format=lambda v: f"{v:.4g}"), flush=True)
                fasta.unlink()
                attention.unlink(missing_ok=True)
            if args.long:
                fasta = tmp / "long.fa"
                write_long(fasta, args.long)
                for code, folder in codes.items():
                    result = run_measured(folder, fasta, "lncRNA", tmp / "p.tsv")
                    rows.append({"tool": "predict", "rna_type": "lncRNA", "sequences": 1, "mean_nt": args.long,
                                 "code": code,
                                 "seconds": result["seconds"], "seq_per_s": 1 / result["seconds"],
                                 "peak_rss_mb": result["rss_mb"], "error": result.get("error", "")})
                    print(pd.DataFrame(rows[-1:]).to_string(index=False, header=False,
                                                             float_format=lambda v: f"{v:.4g}"), flush=True)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tmp / "before")],
                               capture_output=True)
    table = pd.DataFrame(rows)
    print("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print()
    many = table[table["sequences"] > 1]
    for (tool, rna_type, code), group in many.groupby(["tool", "rna_type", "code"], sort=False):
        group = group.set_index("sequences")
        if len(group) > 1:
            small = group.index.min()
            print(f"{tool} {rna_type} {code}: " + ", ".join(
                f"RSS({large})/RSS({small}) = {group.loc[large, 'peak_rss_mb'] / group.loc[small, 'peak_rss_mb']:.3f}"
                for large in sorted(group.index) if large != small))
    for line in checks:
        print(f"position check {line}")
    if "before" in set(many["code"]):
        for (tool, rna_type, n), group in many.groupby(["tool", "rna_type", "sequences"], sort=False):
            group = group.set_index("code")
            if {"before", "after"} <= set(group.index):
                print(f"{tool} {rna_type} {n}: throughput after/before = "
                      f"{group.loc['after', 'seq_per_s'] / group.loc['before', 'seq_per_s']:.3f}, "
                      f"RSS after/before = {group.loc['after', 'peak_rss_mb'] / group.loc['before', 'peak_rss_mb']:.3f}")


if __name__ == "__main__":
    main()
