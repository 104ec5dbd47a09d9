"""Cache 1..kmax-mer frequencies of the datasets/ tables (research helper for cv_select.py).

Uses the kmer architecture's own in-graph counting (rnaloc_tools.model.kmer), so the
features studied are exactly those the bundled models compute.

    python bench/kmer_features.py DATA_DIR CACHE_DIR [--kmax 6]
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnaloc_tools.encoders.onehot import one_hot
from rnaloc_tools.model.kmer import kmer_counts

TABLES = {
    "miRNA": ["train", "extra-deeplocrna"],
    "lncRNA": ["train", "extra-rnalight"],
    "circRNA": ["train", "extra-cellcircloc"],
}


def frequencies(seq, kmax):
    x = torch.from_numpy(one_hot(seq.upper().replace("T", "U"))).unsqueeze(0)
    with torch.no_grad():
        counts, _ = kmer_counts(x, 1, kmax)
    n = len(seq)
    return np.concatenate([(c[0] / max(n - k + 1, 1)).numpy() for k, c in zip(range(1, kmax + 1), counts)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("cache")
    ap.add_argument("--kmax", type=int, default=6)
    ap.add_argument("--rna", action="append", help="only these RNA types (repeatable)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for rna, names in TABLES.items():
        if args.rna and rna not in args.rna:
            continue
        for name in names:
            out = cache / f"{rna}.{name}.k{args.kmax}.npy"
            if out.exists():
                continue
            df = pd.read_csv(Path(args.data) / rna / f"{name}.tsv.gz", sep="\t", comment="#")
            feats = np.stack([frequencies(s, args.kmax) for s in df.sequence]).astype(np.float32)
            np.save(out, feats)
            print(rna, name, feats.shape, flush=True)


if __name__ == "__main__":
    main()
