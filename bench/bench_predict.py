"""Benchmark: end-to-end ``rnaloc predict`` throughput of each bundled model on real sequences.

For every model in rnaloc_tools/models/ (or the ones given with --model), takes the first
--n sequences of datasets/<rna_type>/train.tsv as a FASTA, and times
``predict_file`` (load the model, embed on the fly with its encoder, predict in
length-bucketed batches, write the TSV and the attention NPZ). Prints sequences/s
and nucleotides/s. The interpreter's start-up (~2-4 s of imports) is not counted.

    python bench/bench_predict.py
    python bench/bench_predict.py --model my.onnx --n 500 --threads 2
"""

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnaloc_tools.bundled import bundled_models  # noqa: E402
from rnaloc_tools.predict import OnnxModel, predict_file  # noqa: E402

DATA = Path(os.environ.get("RNALOC_DATASETS", Path(__file__).resolve().parents[1] / "datasets"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="ONNX model(s) instead of the bundled ones")
    parser.add_argument("--n", type=int, default=300, help="sequences per model")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs; the best is kept")
    args = parser.parse_args()
    logging.getLogger("rnaloc").setLevel(logging.WARNING)
    models = args.model or list(bundled_models().values())
    if not models:
        print("no bundled models in rnaloc_tools/models/ (and no --model given): nothing to benchmark")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in models:
            model = OnnxModel(path, provider=args.provider, threads=args.threads)
            table = DATA / model.rna_type / "train.tsv.gz"
            if not table.exists():
                print(f"{path}: no data at {table}: skipped")
                continue
            seqs = pd.read_csv(table, sep="\t", usecols=["id", "sequence"]).head(args.n)
            fasta = os.path.join(tmp, f"{model.rna_type}.fa")
            with open(fasta, "w") as fh:
                fh.writelines(f">{i}\n{s}\n" for i, s in zip(seqs["id"], seqs["sequence"]))
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                predict_file(fasta, os.path.join(tmp, "p.tsv"), model=path, attention_path=os.path.join(tmp, "a.npz"),
                             provider=args.provider, threads=args.threads)
                best = min(best, time.perf_counter() - start)
            nt = int(seqs["sequence"].str.len().sum())
            rows.append({"model": os.path.basename(path), "rna_type": model.rna_type,
                         "encoder": model.encoder.get("encoder"), "arch": model.meta.get("arch"),
                         "provider": model.provider, "sequences": len(seqs), "mean_nt": nt / len(seqs),
                         "seconds": best, "seq_per_s": len(seqs) / best, "nt_per_s": nt / best})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
