#!/usr/bin/env python
"""Benchmark: peak RSS of `rnaloc train` on 500 vs 5,000 sequences (it must not grow with the count).

Both runs use 640-d random float16 embeddings (RNA-FM's width) of real
lengths: lengths drawn with a seed from datasets/circRNA/train.tsv.gz and
cut to RNA-FM's 1022 nt, as `rnaloc embed --long truncate` stores them (the
dataset keeps the whole random sequence of the real length). Each
`rnaloc train` runs in its own subprocess, so peak RSS (the child's own VmHWM:
bench/child_peak.py) is that run's alone. Training reads its batches from the NPZ memory map and
releases the pages it read, so the peak should be the same for both counts,
while the embeddings of the larger run are ten times bigger (printed).

The head: the paper's architecture with small widths by default (--hparams),
trained on the first 512 positions of each sequence (--max-len; the NPZ holds
up to 1022 rows each), so one epoch on 5,000 sequences takes a few minutes on
a CPU; the data path, which is what is measured, is the same for any width.
The attention's activations (batch x length^2) set most of the peak; they
depend on the longest batch, not on the number of sequences. --device cuda also
prints each run's wall time on the GPU vs the CPU (run on a GPU machine).

    nice -n 10 python bench/bench_train_rss.py --max-len 128 --threads 1   # ~4 GB of disk

Measured (2-core machine, load average ~20, --max-len 128 --threads 1; peak RSS then read from wait4's
ru_maxrss, which never reads below this script's own RSS at the fork, so these peaks may be overstated):

     sequences  device   positions    NPZ MB   wall s  peak RSS MB
           500     cpu      272974       349    104.1          856
          5000     cpu     2674937      3424    164.0          977
    ratio peak RSS 5000 / 500 sequences (cpu): 1.14 (embeddings 10x larger; target: close to 1)

    python bench/bench_train_rss.py --device cpu,cuda     # on a GPU machine: epoch time CUDA vs CPU too
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from child_peak import run_measured  # wall, CPU, the child's own peak RSS (VmHWM, not ru_maxrss)

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("RNALOC_DATASETS", HERE.parent / "datasets"))
MAX_NT = 1022
DIM = 640
SMALL_HEAD = {"kernels": [3, 5], "filters": 8, "lstm_hidden": 8, "lstm_layers": 1, "attention_heads": 2}


def real_lengths(n, seed):
    from rnaloc_tools.formats.tables import read_dataset

    lengths = read_dataset(DATA / "circRNA" / "train.tsv.gz").df["sequence"].str.len().to_numpy()
    return np.random.default_rng(seed).choice(lengths, size=n, replace=True)


def write_inputs(folder, n, seed):
    """dataset.tsv (random sequences of real lengths, balanced labels) and its random 640-d NPZ; NPZ bytes."""
    from rnaloc_tools.formats import EmbeddingWriter

    rng = np.random.default_rng(seed)
    lengths = real_lengths(n, seed)
    block = rng.standard_normal((4 * MAX_NT, DIM)).astype(np.float16)  # rows cut at random offsets
    labels = np.where(rng.permutation(n) % 2 == 0, "nucleus", "cytoplasm")
    meta = {"encoder": "rna-fm", "dim": DIM, "checkpoint_sha256": "0" * 64, "max_length": MAX_NT,
            "long_policy": "truncate"}
    dataset = folder / f"d{n}.tsv"
    npz = folder / f"e{n}.npz"
    with open(dataset, "w") as fh, EmbeddingWriter(npz, meta) as writer:
        fh.write("id\trna_type\tlabel\tsequence\n")
        for i, (length, label) in enumerate(zip(lengths, labels)):
            seq = "".join(rng.choice(list("ACGU"), size=int(length)))
            fh.write(f"s{i}\tcircRNA\t{label}\t{seq}\n")
            rows = min(int(length), MAX_NT)
            start = int(rng.integers(0, block.shape[0] - rows + 1))
            writer.add(f"s{i}", block[start : start + rows])
    return dataset, npz, int(np.minimum(lengths, MAX_NT).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="500,5000", help="sequence counts, comma-separated (the first is the baseline)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="train --device, comma-separated (cpu,cuda on a GPU machine)")
    parser.add_argument("--hparams", default=json.dumps(SMALL_HEAD), help="train --hparams (default: a narrow head)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-len", type=int, default=512,
                        help="train --max-len: positions trained per sequence, for time (rows past it are never read)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="rnaloc-bench-train-", dir=HERE))
    env = dict(os.environ, RNALOC_NO_PROGRESS="1")
    rows = []
    try:
        for n in counts:
            dataset, npz, positions = write_inputs(tmp, n, args.seed)
            for device in args.device.split(","):
                out = tmp / f"m{n}-{device}.pt"
                cmd = [sys.executable, "-m", "rnaloc_tools", "train", str(dataset), str(npz), "-o", str(out),
                       "--folds", "0", "--epochs", str(args.epochs), "--hparams", args.hparams, "--device", device,
                       "--threads", str(args.threads), "--seed", str(args.seed), "--max-len", str(args.max_len),
                       "--force"]
                wall, _, rss, _ = run_measured(cmd, env)
                rows.append((n, device, positions, npz.stat().st_size, wall, rss))
            npz.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"# rnaloc train --folds 0 --epochs {args.epochs} --max-len {args.max_len} --hparams '{args.hparams}'; "
          f"640-d random float16 "
          f"embeddings of real circRNA lengths (datasets/circRNA/train.tsv.gz, seed {args.seed}, cut to {MAX_NT})")
    print(f"{'sequences':>10}{'device':>8}{'positions':>12}{'NPZ MB':>10}{'wall s':>9}{'peak RSS MB':>13}")
    for n, device, positions, size, wall, rss in rows:
        print(f"{n:>10}{device:>8}{positions:>12}{size / 1e6:>10.0f}{wall:>9.1f}{rss / 1e6:>13.0f}")
    by = {(n, d): (wall, rss) for n, d, _, _, wall, rss in rows}
    base = counts[0]
    for device in args.device.split(","):
        for n in counts[1:]:
            print(f"ratio peak RSS {n} / {base} sequences ({device}): {by[n, device][1] / by[base, device][1]:.2f} "
                  f"(embeddings {n / base:.0f}x larger; target: close to 1)")
    if "cuda" in args.device and "cpu" in args.device:
        for n in counts:
            print(f"wall time {n} sequences, cuda vs cpu: x{by[n, 'cpu'][0] / by[n, 'cuda'][0]:.2f} faster")


if __name__ == "__main__":
    main()
