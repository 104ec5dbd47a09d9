#!/usr/bin/env python
"""Benchmark: RNA-FM embedding the original RNALoc-LM way vs `rnaloc embed`.

Sample: N/3 sequences from each RNA type's training table
(datasets/{miRNA,lncRNA,circRNA}/train.tsv), chosen at random with a
seed, then shuffled together into one FASTA (a user's file is not sorted by
length), normalised (upper case, T -> U; the original's missing T -> U is a
defect we do not copy). Both methods embed that same file with the same
full-size random RNA-FM checkpoint (bench/make_rnafm_checkpoint.py), each in
its own subprocess so that peak RSS (the child's own VmHWM: bench/child_peak.py) is per method, and
both keep the first 1022 nt of a longer sequence.

original  RNALoc-LM base.py `pretrained()`: chunks of 50 in file order, each
          padded to its longest (BOS + at most 1022 nt + EOS = 1024 tokens),
          fp32, the package's own forward under no_grad, results stored into a
          preallocated float64 N x 1024 x 640 array, saved with np.save.
rnaloc    `rnaloc embed FASTA --weights W -o x.npz`: length-sorted batches packed
          to a token budget, SDPA with a padding mask, inference_mode, ragged
          float16 NPZ written as it goes.

Throughput counts real nucleotides (min(length, 1022) per sequence, the same
number for both) over each process's whole wall time (start-up, model loading,
embedding and writing included). Bytes: the original stores 1024 x 640 float64
(5,242,880 B) per sequence, rnaloc L x 640 float16, so the ratio is about
4096 / (mean stored length), whatever the speed.

    python bench/make_rnafm_checkpoint.py bench/RNA-FM_random.pth
    nice -n 5 python bench/bench_embed.py --weights bench/RNA-FM_random.pth --n 90 --precision fp32,bf16

On a GPU, ``--device cuda`` measures rnaloc's own throughput instead (in process, model loaded
once per precision): tokens/s for fp32, fp16 and bf16, with --long truncate and windows, against
the ~3.5 M tokens/s that RNA-FM's FLOPs allow on an H100:

    python bench/bench_embed.py --weights bench/RNA-FM_random.pth --device cuda --n 300
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from child_peak import run_measured  # wall, CPU, the child's own peak RSS (VmHWM, not ru_maxrss)

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("RNALOC_DATASETS", HERE.parent / "datasets"))


RNA_TYPES = ("miRNA", "lncRNA", "circRNA")
MAX_NT = 1022  # RNA-FM's limit: 1024 positions with BOS and EOS


def sample(n, seed):
    """n // 3 random sequences of each RNA type's training table, shuffled together: [(id, rna_type, seq)]."""
    import numpy as np

    from rnaloc_tools.formats.tables import read_dataset

    rng = np.random.default_rng(seed)
    records = []
    for rna_type in RNA_TYPES:
        df = read_dataset(DATA / rna_type / "train.tsv.gz").df  # validated, normalised (upper case, T -> U)
        idx = rng.choice(len(df), size=n // len(RNA_TYPES), replace=False)
        records.extend((rid, rna_type, seq) for rid, seq in zip(df["id"].iloc[idx], df["sequence"].iloc[idx]))
    order = rng.permutation(len(records))  # one file, in no particular order of type or length
    return [records[i] for i in order]


def original_worker(fasta, weights, out, threads):
    """RNALoc-LM's method (base.py `pretrained()`), on the given normalised sequences."""
    import argparse as ap

    import numpy as np
    import torch
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    import fm

    torch.set_num_threads(threads)
    with open(fasta) as fh:  # both methods keep the first 1022 nt (the original cut tokens at 1024)
        seqs = [(t.split()[0], s[:MAX_NT]) for t, s in SimpleFastaParser(fh)]
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


def describe(records):
    """Lines describing the sample: per type, count and mean length (raw and as embedded, <= 1022 nt)."""
    lines = []
    for rna_type in RNA_TYPES + ("all",):
        lengths = [len(s) for _, t, s in records if rna_type in ("all", t)]
        stored = [min(n, MAX_NT) for n in lengths]
        lines.append(f"#   {rna_type:<8} n={len(lengths):<4} mean length {sum(lengths) / len(lengths):7.1f} nt, "
                     f"embedded (<= {MAX_NT}) {sum(stored) / len(stored):6.1f} nt, "
                     f"range {min(lengths)}..{max(lengths)}, longer than {MAX_NT}: {sum(n > MAX_NT for n in lengths)}")
    return lines


def model_flops(widths, layers=12, dim=640, ffn=5120):
    """Forward FLOPs of RNA-FM over padded batches [(batch size, padded width)]: GEMMs + attention."""
    per_token = 2 * (4 * dim * dim + 2 * dim * ffn) * layers  # q, k, v, out, fc1, fc2
    return sum(b * t * per_token + b * 4 * t * t * dim * layers for b, t in widths)


def work_ratio(records, toks_per_batch):
    """FLOPs of the original's padded chunks over rnaloc's length-sorted batches, and rnaloc's padding overhead."""
    from types import SimpleNamespace

    from rnaloc_tools.embed import pack_batches

    lengths = [min(len(s), MAX_NT) + 2 for _, _, s in records]
    original = [(len(lengths[i:i + 50]), max(lengths[i:i + 50])) for i in range(0, len(lengths), 50)]
    pieces = [SimpleNamespace(seq="N" * (n - 2)) for n in lengths]
    ours = [(len(b), max(len(p.seq) for p in b) + 2) for b in pack_batches(pieces, toks_per_batch, 2)]
    unpadded = [(1, n) for n in lengths]
    return model_flops(original) / model_flops(ours), model_flops(ours) / model_flops(unpadded), model_flops(original)


#: Tokens/s RNA-FM's FLOPs allow on an H100 (dense fp16/bf16 ~989 TFLOP/s over ~228 MFLOP per token at
#: 1024 tokens, GEMMs and attention; see model_flops): the reference for --device cuda.
H100_TOKENS_PER_S = 3.5e6


def device_bench(records, weights, device, precisions, toks_per_batch, long_policies):
    """In-process throughput of rnaloc's embedding on one device: tokens/s per precision and long policy.

    The model is loaded once per precision and warmed up on one batch; the clock
    covers embed_records (batching, forward passes, copying to the host, writing
    the NPZ), with the device synchronised before it stops. Tokens count BOS/EOS
    and, for windows, every window (overlaps included), so tokens/s is what the
    model did; nucleotides/s is what the user gets.
    """
    import logging

    import torch

    from rnaloc_tools.embed import embed_records, pack_batches, window_spans

    logging.getLogger("rnaloc").setLevel(logging.ERROR)  # the per-run 'truncated' notes would split the table
    from rnaloc_tools.encoders.rnafm import RnaFmEncoder
    from rnaloc_tools.seqs import Record

    recs = [Record(rid, seq) for rid, _, seq in records]
    nucleotides = {"truncate": sum(min(len(r.seq), MAX_NT) for r in recs), "windows": sum(len(r.seq) for r in recs)}
    pieces = {"truncate": [r.seq[:MAX_NT] for r in recs],
              "windows": [r.seq[s:e] for r in recs for s, e in window_spans(len(r.seq), MAX_NT, MAX_NT // 4)]}
    print(f"# device {device}" + (f" ({torch.cuda.get_device_name(0)})" if device == "cuda" else "")
          + f"; weights {weights}; reference: ~{H100_TOKENS_PER_S / 1e6:.1f} M tokens/s, the FLOP bound of an H100")
    print(f"{'precision':<10}{'--long':<10}{'pieces':>8}{'tokens':>10}{'seconds':>9}{'tokens/s':>12}{'nt/s':>11}"
          f"{'TFLOP/s':>9}{'of H100 bound':>15}")
    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        for precision in precisions:
            enc = RnaFmEncoder(weights, device=device, precision=precision)
            budget = toks_per_batch or enc.default_toks_per_batch
            enc.embed(sorted(pieces["truncate"], key=len)[-4:])  # warm-up (kernels, allocator)
            for long in long_policies:
                seqs = pieces[long]
                from types import SimpleNamespace

                widths = [(len(b), max(len(p.seq) for p in b) + 2)
                          for b in pack_batches([SimpleNamespace(seq=x) for x in seqs], budget, 2)]
                tokens = sum(len(x) + 2 for x in seqs)
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                embed_records(iter(recs), enc, os.path.join(tmp, "x.npz"), long=long, toks_per_batch=budget)
                if device == "cuda":
                    torch.cuda.synchronize()
                secs = time.perf_counter() - t0
                flops = model_flops(widths, layers=enc.layers, dim=enc.dim, ffn=int(enc.model.args.ffn_embed_dim))
                print(f"{precision:<10}{long:<10}{len(seqs):>8}{tokens:>10}{secs:>9.2f}{tokens / secs:>12,.0f}"
                      f"{nucleotides[long] / secs:>11,.0f}{flops / secs / 1e12:>9.1f}"
                      f"{tokens / secs / H100_TOKENS_PER_S:>14.1%}")
            del enc
            if device == "cuda":
                torch.cuda.empty_cache()


def main():
    parser = argparse.ArgumentParser(description="RNA-FM embedding: original RNALoc-LM method vs rnaloc embed")
    parser.add_argument("--weights", default=str(HERE / "RNA-FM_random.pth"), help="full-size RNA-FM checkpoint")
    parser.add_argument("--n", type=int, default=90,
                        help="sequences, a multiple of 3: n/3 each of miRNA, lncRNA, circRNA (train.tsv)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random choice and of the shuffle")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads for both methods")
    parser.add_argument("--precision", default="fp32",
                        help="rnaloc embed --precision, comma-separated (fp32 as the original; e.g. fp32,bf16)")
    parser.add_argument("--toks-per-batch", type=int, default=None, help="rnaloc embed --toks-per-batch (default: its own)")
    parser.add_argument("--skip-original", action="store_true")
    parser.add_argument("--sample-only", action="store_true", help="describe the sample and stop")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="instead of the comparison: rnaloc's own throughput on this device, in process, for "
                        "each --precision (cuda: fp32,fp16,bf16 by default) and --long truncate and windows, "
                        "against the ~3.5 M tokens/s FLOP bound of an H100")
    parser.add_argument("--worker", nargs=3, metavar=("FASTA", "WEIGHTS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return original_worker(*args.worker, threads=args.threads)
    if args.device:
        if not os.path.exists(args.weights):
            raise SystemExit(f"{args.weights}: missing; make it with bench/make_rnafm_checkpoint.py {args.weights}")
        import torch

        torch.set_num_threads(args.threads)
        precisions = args.precision.split(",") if args.precision != "fp32" or args.device == "cpu" else ["fp32", "fp16", "bf16"]
        records = sample(args.n, args.seed)
        print("\n".join(describe(records)))
        return device_bench(records, args.weights, args.device, precisions, args.toks_per_batch, ("truncate", "windows"))
    if args.n < len(RNA_TYPES) or args.n % len(RNA_TYPES):
        parser.error(f"--n must be a positive multiple of {len(RNA_TYPES)} (equal numbers of each RNA type)")
    records = sample(args.n, args.seed)
    nucleotides = sum(min(len(s), MAX_NT) for _, _, s in records)
    mean_stored = nucleotides / len(records)
    head = [f"# {len(records)} sequences: {args.n // 3} each of {', '.join(RNA_TYPES)} (train.tsv), seeded random "
            f"choice and shuffle (seed {args.seed}); normalised (T -> U); {nucleotides} nucleotides embedded"]
    head += describe(records)
    if args.sample_only:
        print("\n".join(head))
        return
    if not os.path.exists(args.weights):
        raise SystemExit(f"{args.weights}: missing; make it with bench/make_rnafm_checkpoint.py {args.weights}")

    loads = [os.getloadavg()[0]]
    tmp = Path(tempfile.mkdtemp(prefix="rnaloc-bench-", dir=HERE))
    try:
        fasta = tmp / "sample.fa"
        with open(fasta, "w") as fh:
            fh.writelines(f">{rid}\n{seq}\n" for rid, _, seq in records)
        env = dict(os.environ, RNALOC_NO_PROGRESS="1", OMP_NUM_THREADS=str(args.threads))
        rows = {}
        if not args.skip_original:
            out = tmp / "original.npy"
            *measured, err = run_measured(
                [sys.executable, __file__, "--threads", str(args.threads), "--worker", str(fasta), args.weights,
                 str(out)], env)
            rows["original"] = (*measured, out.stat().st_size)
            out.unlink()
            loads.append(os.getloadavg()[0])
        for precision in args.precision.split(","):
            out = tmp / "rnaloc.npz"
            cmd = [sys.executable, "-m", "rnaloc_tools", "embed", str(fasta), "--encoder", "rna-fm", "--weights",
                   args.weights, "--device", "cpu", "--precision", precision, "--threads", str(args.threads),
                   "-o", str(out)]
            if args.toks_per_batch:
                cmd += ["--toks-per-batch", str(args.toks_per_batch)]
            *measured, err = run_measured(cmd, env)
            rows[f"rnaloc ({precision})"] = (*measured, out.stat().st_size)
            out.unlink()
            loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("\n".join(head))
    print(f"# checkpoint {args.weights} ({os.path.getsize(args.weights) / 1e6:.0f} MB); torch threads {args.threads}; "
          f"CPU {os.cpu_count()} cores; 1-min load average before/after each method: "
          f"{' / '.join(f'{x:.1f}' for x in loads)}")
    print(f"{'method':<16}{'wall s':>9}{'CPU s':>9}{'tokens/s':>11}{'peak RSS MB':>13}{'stored MB':>11}")
    for name, (wall, cpu, rss, size) in rows.items():
        print(f"{name:<16}{wall:>9.1f}{cpu:>9.1f}{nucleotides / wall:>11.1f}{rss / 1e6:>13.0f}{size / 1e6:>11.1f}")
    if "original" in rows:
        ow, ocpu, orss, osize = rows["original"]
        for name, (wall, cpu, rss, size) in rows.items():
            if name == "original":
                continue
            print(f"ratios {name} vs original: throughput x{ow / wall:.2f} (CPU time x{ocpu / cpu:.2f}; target >= 4), "
                  f"peak RSS 1/{orss / rss:.1f} (target >= 1/5), bytes 1/{osize / size:.1f} (target >= 1/8)")
        ratio, overhead, flops = work_ratio(records, args.toks_per_batch or 4096)
        print(f"# work: the original's padded chunks cost {flops / 1e12:.1f} TFLOP, {ratio:.2f}x the FLOPs of rnaloc's "
              f"length-sorted batches (whose padding adds {100 * (overhead - 1):.1f}%): the throughput ratio at equal "
              f"FLOP rate; more comes only from a faster FLOP rate (SDPA vs explicit attention, bf16)")
        print(f"# bytes: the original stores 1024 x 640 float64 per sequence, rnaloc L x 640 float16, so the ratio "
              f"is ~4096 / mean stored length = 4096 / {mean_stored:.1f} = {4096 / mean_stored:.2f} on this sample")


if __name__ == "__main__":
    main()
