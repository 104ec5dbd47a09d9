#!/usr/bin/env python
"""One RNA type's training table for workflows/rnafm-models: all of it, or a seeded class-stratified subset.

    prepare.py datasets/miRNA/train.tsv.gz out/miRNA/dataset.tsv [--n 40] [--seed 0]

The table is read and validated by rnaloc's own reader (ids, labels, sequences
normalised) and written with rnaloc's provenance header. --n N keeps
round(N * share) rows of each class (at least one each), chosen with the seed,
in the table's order.
"""

import argparse

import numpy as np

from rnaloc_tools.formats.tables import read_dataset, write_table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table")
    parser.add_argument("output")
    parser.add_argument("--n", type=int, default=0, help="rows to keep (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    df = read_dataset(args.table).df
    if args.n and args.n < len(df):
        rng = np.random.default_rng(args.seed)
        keep = []
        for _, rows in df.groupby("label", sort=True):
            k = max(1, round(args.n * len(rows) / len(df)))
            keep.extend(rng.choice(rows.index.to_numpy(), size=min(k, len(rows)), replace=False))
        df = df.loc[sorted(keep)]
    write_table(df, args.output, "rnafm-models prepare")


if __name__ == "__main__":
    main()
