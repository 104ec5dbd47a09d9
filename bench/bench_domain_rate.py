"""The applicability domain's realised out-of-domain rate on each RNA type's own training sequences.

For each RNA type's ``datasets/<type>/train.tsv.gz``: cd-hit-est 80%-identity clusters
(``rnaloc dedup``'s library, as the bundled models' CV), then 5-fold cross-validation
stratified by label and grouped by cluster (scikit-learn ``StratifiedGroupKFold``), repeated
with several seeds. Each held-out fold is assessed against the domain fitted on the other
folds (``fit_domain(sequences, groups=clusters)``, as ``rnaloc train`` and the bundled
models do), and the share flagged ``in_domain = no`` is reported, split by reason, beside
the nominal rate (length 0.5% each tail + composition 1%: about 2%, less where they
overlap). The same with a domain fitted without the clusters (``groups=None``) is shown
as the baseline: its calibration lets a sequence's near-copies stand in for it.

    nice -n 10 python bench/bench_domain_rate.py [--data datasets] [--seeds 3] [--types miRNA,lncRNA,circRNA] \
        [--cache build/domain-bench]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from rnaloc_tools.data.dedup import dedup
from rnaloc_tools.domain import COMPOSITION_TAIL, LENGTH_TAIL, Domain, fit_domain
from rnaloc_tools.formats import read_dataset


def rates(seqs, labels, clusters, seed, grouped):
    folds = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
    flagged = np.zeros(len(seqs), dtype=bool)
    by_length = np.zeros(len(seqs), dtype=bool)
    by_comp = np.zeros(len(seqs), dtype=bool)
    for tr, va in folds.split(seqs, labels, clusters):
        domain = Domain(fit_domain([seqs[i] for i in tr], clusters[tr] if grouped else None, seed=seed))
        for i, (state, note) in zip(va, domain.assess([seqs[i] for i in va])):
            flagged[i] = state == "no"
            by_length[i] = " nt is " in note
            by_comp[i] = "composition unlike" in note
    return flagged.mean(), by_length.mean(), by_comp.mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "datasets"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--types", default="miRNA,lncRNA,circRNA")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None,
                    help="folder keeping each type's clusters (<type>.clusters.tsv) between runs (cd-hit-est on "
                    "the lncRNAs takes minutes)")
    args = ap.parse_args()
    nominal = 2 * LENGTH_TAIL + COMPOSITION_TAIL
    print(f"nominal: length {100 * LENGTH_TAIL:g}% each tail + composition {100 * COMPOSITION_TAIL:g}% "
          f"= at most {100 * nominal:g}% out of domain")
    print("rna_type\tn\tclusters\tcalibration\tout_of_domain_%\tby_length_%\tby_composition_%\tper_seed_out_%\tratio_to_nominal")
    for rna_type in args.types.split(","):
        t0 = time.time()
        cached = Path(args.cache) / f"{rna_type}.clusters.tsv" if args.cache else None
        if cached is not None and cached.is_file():
            df = read_dataset(cached).df
        else:
            df, _, _ = dedup(read_dataset(Path(args.data) / rna_type / "train.tsv.gz"), 0.8, keep="all",
                             threads=args.threads)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                df.to_csv(cached, sep="\t", index=False)
        n_clusters = df["cluster"].nunique()
        seqs = list(df["sequence"])
        labels = df["label"].to_numpy()
        clusters = df["cluster"].to_numpy()
        for grouped in (True, False):
            per_seed = [rates(seqs, labels, clusters, seed, grouped) for seed in range(args.seeds)]
            out, length, comp = np.mean(per_seed, axis=0)
            print(f"{rna_type}\t{len(seqs)}\t{n_clusters}\t{'grouped by cluster' if grouped else 'ungrouped (baseline)'}\t"
                  f"{100 * out:.2f}\t{100 * length:.2f}\t{100 * comp:.2f}\t"
                  f"{','.join(f'{100 * r[0]:.2f}' for r in per_seed)}\t{out / nominal:.2f}")
        print(f"# {rna_type}: {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
