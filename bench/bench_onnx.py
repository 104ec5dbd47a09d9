"""Benchmark: the RNALoc-LM head in ONNX Runtime vs PyTorch eager, on the same inputs.

Lengths are real: sequence lengths drawn from datasets/ (capped at 1022 nt, the
RNA-FM limit, for the 640-d head; the one-hot head gets the same lengths). Both
back ends see the same length-bucketed batches of random embeddings (speed does not
depend on the values or the weights). Prints sequences/s for each and the ratio.

    python bench/bench_onnx.py                      # CPU, 1 thread, D = 640 and 4
    python bench/bench_onnx.py --threads 4 --device cuda
"""

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnaloc_tools.model import build_model  # noqa: E402
from rnaloc_tools.model.batching import bucket_batches, pad_batch  # noqa: E402
from rnaloc_tools.model.onnx_export import OPSET, _Exported  # noqa: E402

DATA = Path(os.environ.get("RNALOC_DATASETS", Path(__file__).resolve().parents[1] / "datasets"))


def real_lengths(n, cap, seed):
    rng = np.random.default_rng(seed)
    lengths = []
    for rna_type in ("lncRNA", "miRNA", "circRNA"):
        path = DATA / rna_type / "train.tsv.gz"
        if path.exists():
            lengths.extend(pd.read_csv(path, sep="\t", usecols=["sequence"])["sequence"].str.len().tolist())
    if not lengths:
        print(f"note: no data at {DATA}; using lengths uniform in 20..{cap}")
        return rng.integers(20, cap + 1, n)
    return np.minimum(rng.choice(lengths, n, replace=False), cap)


def export(model, dim, path):
    x = torch.randn(2, 37, dim)
    lengths = torch.tensor([37, 21])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Exported(model).eval(), (x, lengths), path, dynamo=False, opset_version=OPSET,
                          input_names=["embeddings", "lengths"], output_names=["probabilities", "attention"],
                          dynamic_axes={"embeddings": {0: "b", 1: "l"}, "lengths": {0: "b"},
                                        "probabilities": {0: "b"}, "attention": {0: "b", 1: "l"}})


def timed(fn, batches, repeats):
    fn(batches[0])  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            fn(batch)
        best = min(best, time.perf_counter() - start)
    return best


def bench(dim, lengths, args, ort):
    torch.manual_seed(0)
    model, _ = build_model("rnaloc", dim=dim, n_classes=2)
    wrapped = _Exported(model).eval()
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((n, dim)).astype(np.float32) for n in lengths]
    batches = [pad_batch([mats[i] for i in b]) for b in bucket_batches(lengths, args.batch_size)]
    device = torch.device(args.device)
    wrapped.to(device)
    torch_batches = [(torch.from_numpy(x).to(device), torch.from_numpy(l).to(device)) for x, l in batches]

    def run_torch(batch):
        with torch.no_grad():
            out = wrapped(*batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "head.onnx")
        export(model.cpu(), dim, path)
        wrapped.to(device)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if args.device == "cuda" else ["CPUExecutionProvider"]
        session = ort.InferenceSession(path, options, providers=providers)

        def run_ort(batch):
            return session.run(["probabilities", "attention"], {"embeddings": batch[0], "lengths": batch[1]})

        # same answers first
        p_ref = np.concatenate([run_torch(b)[0].cpu().numpy() for b in torch_batches])
        p_ort = np.concatenate([run_ort(b)[0] for b in batches])
        diff = float(np.abs(p_ref - p_ort).max())
        t_torch = timed(run_torch, torch_batches, args.repeats)
        t_ort = timed(run_ort, batches, args.repeats)
    n = len(lengths)
    return {"D": dim, "sequences": n, "mean_length": float(np.mean(lengths)), "torch_seq_s": n / t_torch,
            "ort_seq_s": n / t_ort, "ratio": t_torch / t_ort, "max_abs_diff": diff}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=96, help="sequences per run")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best is kept")
    parser.add_argument("--dims", type=int, nargs="+", default=[640, 4])
    parser.add_argument("--cap", type=int, default=1022, help="longest sequence (RNA-FM's limit)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    lengths = real_lengths(args.n, args.cap, args.seed)
    print(f"# head 'rnaloc' (paper defaults), {args.device}, {args.threads} thread(s), batch {args.batch_size}, "
          f"onnxruntime {ort.__version__}, torch {torch.__version__}")
    rows = [bench(dim, lengths, args, ort) for dim in args.dims]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
