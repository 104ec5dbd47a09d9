#!/usr/bin/env python
"""Benchmark: RNA-FM embedding the original RNALoc-LM way vs `rnaloc embed`.

Both methods embed the same real sequences (a seeded random sample of circRNA
and lncRNA from the shared data, in file order, normalised: upper case, T -> U;
the original's missing T -> U is a defect we do not copy) with the same
full-size random RNA-FM checkpoint (bench/make_rnafm_checkpoint.py), each in
its own subprocess so that peak RSS (ru_maxrss, from wait4) is per method.

original  RNALoc-LM base.py `pretrained()`: chunks of 50 in file order, each
          padded to its longest (tokens cut at 1024), fp32, the package's own
          forward under no_grad, results stored into a preallocated float64
          N x 1024 x 640 array, saved with np.save.
rnaloc    `rnaloc embed FASTA --weights W -o x.npz`: length-sorted batches packed
          to a token budget, SDPA with a padding mask, inference_mode, ragged
          float16 NPZ written as it goes.

Throughput counts real nucleotides (min(length, 1022) per sequence, the same
number for both) over each process's whole wall time (start-up, model loading,
embedding and writing included).

    python bench/make_rnafm_checkpoint.py bench/RNA-FM_random.pth
    nice -n 10 python bench/bench_embed.py --weights bench/RNA-FM_random.pth --n 200
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("RNALOC_SHARED_DATA", HERE.parent.parent / "shared" / "data"))


def sample(n, seed):
    import numpy as np
    import pandas as pd

    from rnaloc_tools.seqs import normalize

    records = []
    for i, rna_type in enumerate(("circRNA", "lncRNA")):
        df = pd.read_csv(DATA / rna_type / "train.tsv", sep="\t", comment=None)
        k = n // 2 + (n % 2 if i == 0 else 0)
        idx = np.sort(np.random.default_rng(seed + i).choice(len(df), size=k, replace=False))  # file order
        for row in df.iloc[idx].itertuples():
            records.append((row.id, normalize(row.sequence, source=rna_type, record=row.id)))
    return records


def original_worker(fasta, weights, out, threads):
    """RNALoc-LM's method (base.py `pretrained()`), on the given normalised sequences."""
    import argparse as ap

    import numpy as np
    import torch
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    import fm

    torch.set_num_threads(threads)
    with open(fasta) as fh:
        seqs = [(t.split()[0], s) for t, s in SimpleFastaParser(fh)]
    # fm.pretrained.rna_fm_t12(path) as the original; torch >= 2.6 needs the Namespace allowed
    with torch.serialization.safe_globals([ap.Namespace]):
        fm_model, alphabet = fm.pretrained.rna_fm_t12(weights)
    fm_model.eval()
    batch_converter = alphabet.get_batch_converter()
    max_len = fm_model.embed_positions.weight.size(0) - 2
    token_embeddings = np.zeros((len(seqs), max_len, 640))
    chunk_size = 50
    t0 = time.perf_counter()
    for i in range(0, len(seqs), chunk_size):
        data = seqs[i : i + chunk_size]
        _, _, batch_tokens = batch_converter(data)
        if batch_tokens.shape[1] > max_len:
            batch_tokens = batch_tokens[:, :max_len]
        with torch.no_grad():
            results = fm_model(batch_tokens, repr_layers=[12])
        emb = results["representations"][12].cpu().numpy()
        token_embeddings[i : i + chunk_size, : emb.shape[1], :] = emb
    loop = time.perf_counter() - t0
    np.save(out, token_embeddings)
    print(f"loop_seconds={loop:.1f}", file=sys.stderr)


def run_measured(cmd, env=None):
    """Run cmd; return (wall seconds, peak RSS bytes of that process, stderr)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    err_chunks = []
    # read stderr fully before reaping, so wait4 gets this child's own rusage
    err_chunks.append(proc.stderr.read())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = "".join(err_chunks)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{err}")
    return wall, usage.ru_maxrss * 1024, err


def main():
    parser = argparse.ArgumentParser(description="RNA-FM embedding: original RNALoc-LM method vs rnaloc embed")
    parser.add_argument("--weights", default=str(HERE / "RNA-FM_random.pth"), help="full-size RNA-FM checkpoint")
    parser.add_argument("--n", type=int, default=200, help="sequences (half circRNA, half lncRNA)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads for both methods")
    parser.add_argument("--precision", default="fp32", help="rnaloc embed --precision, comma-separated (fp32 as the original; e.g. fp32,bf16)")
    parser.add_argument("--toks-per-batch", type=int, default=None)
    parser.add_argument("--skip-original", action="store_true")
    parser.add_argument("--worker", nargs=3, metavar=("FASTA", "WEIGHTS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return original_worker(*args.worker, threads=args.threads)
    if not os.path.exists(args.weights):
        raise SystemExit(f"{args.weights}: missing; make it with bench/make_rnafm_checkpoint.py {args.weights}")

    records = sample(args.n, args.seed)
    nucleotides = sum(min(len(s), 1022) for _, s in records)
    tmp = Path(tempfile.mkdtemp(prefix="rnaloc-bench-", dir=HERE))
    try:
        fasta = tmp / "sample.fa"
        with open(fasta, "w") as fh:
            fh.writelines(f">{rid}\n{seq}\n" for rid, seq in records)
        env = dict(os.environ, RNALOC_NO_PROGRESS="1", OMP_NUM_THREADS=str(args.threads))
        rows = {}
        if not args.skip_original:
            out = tmp / "original.npy"
            wall, rss, err = run_measured(
                [sys.executable, __file__, "--threads", str(args.threads), "--worker", str(fasta), args.weights,
                 str(out)], env)
            rows["original"] = (wall, rss, out.stat().st_size)
            out.unlink()
        for precision in args.precision.split(","):
            out = tmp / "rnaloc.npz"
            cmd = [sys.executable, "-m", "rnaloc_tools", "embed", str(fasta), "--encoder", "rna-fm", "--weights",
                   args.weights, "--device", "cpu", "--precision", precision, "--threads", str(args.threads),
                   "-o", str(out)]
            if args.toks_per_batch:
                cmd += ["--toks-per-batch", str(args.toks_per_batch)]
            wall, rss, err = run_measured(cmd, env)
            rows[f"rnaloc ({precision})"] = (wall, rss, out.stat().st_size)
            out.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lengths = sorted(len(s) for _, s in records)
    print(f"# {len(records)} sequences ({args.n // 2 + args.n % 2} circRNA + {args.n // 2} lncRNA, seed {args.seed}); "
          f"lengths {lengths[0]}..{lengths[-1]}, median {lengths[len(lengths) // 2]}; "
          f"{nucleotides} nucleotides embedded (<= 1022 per sequence)")
    print(f"# checkpoint {args.weights} ({os.path.getsize(args.weights) / 1e6:.0f} MB); torch threads {args.threads}; "
          f"CPU {os.cpu_count()} cores")
    print(f"{'method':<16}{'wall s':>10}{'tokens/s':>12}{'peak RSS MB':>14}{'stored MB':>12}")
    for name, (wall, rss, size) in rows.items():
        print(f"{name:<16}{wall:>10.1f}{nucleotides / wall:>12.1f}{rss / 1e6:>14.0f}{size / 1e6:>12.1f}")
    if "original" in rows:
        ow, orss, osize = rows["original"]
        for name, (wall, rss, size) in rows.items():
            if name == "original":
                continue
            print(f"ratios {name} vs original: throughput x{ow / wall:.2f} (target >= 4), "
                  f"peak RSS 1/{orss / rss:.1f} (target >= 1/5), bytes 1/{osize / size:.1f} (target >= 1/8)")


if __name__ == "__main__":
    main()
