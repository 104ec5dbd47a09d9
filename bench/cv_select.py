"""Choose the bundled default models by grouped cross-validation on datasets/, beside the baselines.

5-fold stratified cross-validation grouped by cd-hit-est 80%-identity clusters of all
tables of the RNA type (workflows/bundled-models/cvlib.py); the held-out example
clusters (test-data/example-*) are left out first, as in the build. Every candidate is
scored with the majority and length-only baselines fitted on the same training rows of
each fold, and the paired difference candidate minus length is reported (per-fold mean
and sd; cluster-bootstrap 95% interval of the pooled out-of-fold predictions). ECE
before/after Platt calibration (cross-fitted on the out-of-fold logits).

    python bench/cv_select.py --cache /tmp/kmer --rna miRNA --candidates 'lr3_C0.01_bal,hgb5' \
        --out workflows/bundled-models/cv-selection.tsv

--labels fractionation trains and scores on lncRNA/extra-rnalight.tsv (cell fractionation);
--labels cross-rnalocate-to-fractionation trains on train.tsv and scores extra-rnalight.tsv
rows (and cross-fractionation-to-rnalocate the reverse), fold clusters never shared.

The cache holds `rnaloc dedup --keep all` output of train + extra with ids table|id
(RNA.dedup.tsv, written by workflows/bundled-models/build.sh into its work folder) and the
k-mer frequencies (feat/, from bench/kmer_features.py).
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "workflows" / "bundled-models"))
import cvlib  # noqa: E402
from kmer_features import TABLES  # noqa: E402

LABELS = {  # --labels: (scored table, training-pool tables)
    "rnalocate": ("train", ("train",)),
    "rnalocate+extra": ("train", ("train", "extra")),
    "fractionation": ("extra-rnalight", ("extra-rnalight",)),
    "cross-rnalocate-to-fractionation": ("extra-rnalight", ("train",)),
    "cross-fractionation-to-rnalocate": ("train", ("extra-rnalight",)),
}


def load(cache, data, rna, kmax_cache):
    df = cvlib.read_tables(data, rna)
    df["freq"] = list(np.concatenate([np.load(Path(cache) / "feat" / f"{rna}.{name}.k{kmax_cache}.npy")
                                      for name in TABLES[rna]]))
    df = cvlib.attach_clusters(df, Path(cache) / f"{rna}.dedup.tsv")
    held, _ = cvlib.choose_holdout(df, **cvlib.HOLDOUT[rna])
    return df[~df.cluster.isin(set(held))].reset_index(drop=True)


def kmer_block(df, kmax, transform="sqrt"):
    n = sum(4**k for k in range(1, kmax + 1))
    f = np.stack(df.freq.values)[:, :n].astype(np.float64)
    return np.sqrt(f + 1e-6) if transform == "sqrt" else f


def gapped_block(df, max_gap=10):
    """Frequencies of base pairs (x_i, x_{i+d}), d = 2..max_gap: 16 per gap (computable in the graph)."""
    code = {"A": 0, "C": 1, "G": 2, "U": 3}
    rows = []
    for s in df.sequence:
        a = np.array([code.get(c, -1) for c in s])
        row = []
        for d in range(2, max_gap + 1):
            x, y = a[:-d], a[d:]
            ok = (x >= 0) & (y >= 0)
            row.append(np.bincount(x[ok] * 4 + y[ok], minlength=16) / max(ok.sum(), 1))
        rows.append(np.concatenate(row))
    return np.sqrt(np.array(rows) + 1e-6)


def longest_orf(s):
    """Length (nt, stop included) of the longest forward AUG..stop ORF of ``s`` (linear scan of 3 frames)."""
    stops = {"UAA", "UAG", "UGA"}
    best = 0
    for frame in range(3):
        start = None
        for i in range(frame, len(s) - 2, 3):
            codon = s[i:i + 3]
            if start is None and codon == "AUG":
                start = i
            elif start is not None and codon in stops:
                best = max(best, i + 3 - start)
                start = None
    return best


def orf_block(df):
    """Longest forward ORF (AUG..stop) per sequence: log10 nt, fraction of the length, has >= 100 codons,
    and the sequence's stop-codon frequency (not computable in the one-hot graph: research only)."""
    rows = []
    for s in df.sequence:
        best = longest_orf(s)
        stops = sum(s.count(c) for c in ("UAA", "UAG", "UGA")) / max(len(s) - 2, 1)
        rows.append([np.log10(best + 1), best / len(s), float(best >= 300), stops])
    return np.array(rows)


def lr(C, cw, length_weight=None):
    """Standardise, then L2 logistic regression; ``length_weight`` multiplies the last (length) column after
    standardisation, i.e. divides its L2 penalty by length_weight^2 (shippable: the graph's length scale)."""
    steps = [StandardScaler()]
    if length_weight:
        steps.append(FunctionTransformer(lambda X, w=length_weight: np.hstack([X[:, :-1], w * X[:, -1:]])))
    return make_pipeline(*steps, LogisticRegression(C=C, class_weight=cw, max_iter=5000, tol=1e-6))


def candidates():
    """name -> (feature blocks, model factory). Blocks: kK (1..K-mers, sqrt), len (log10 length; _lenW: its
    standardised column times W, a W^2 times weaker penalty on it),
    gap (gapped pairs), orf (ORF features), rawK (1..K-mers, no transform)."""
    c = {"hgb5": (("raw5",), lambda: HistGradientBoostingClassifier(random_state=0)),
         "hgb4+len": (("raw4", "len"), lambda: HistGradientBoostingClassifier(random_state=0)),
         "hgb3+len+orf": (("raw3", "len", "orf"), lambda: HistGradientBoostingClassifier(random_state=0))}
    for k in range(2, 8):
        for C in (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03):
            for cw in (None, "balanced"):
                base = f"lr{k}_C{C}" + ("_bal" if cw else "")
                c[base] = ((f"k{k}", "len"), lambda C=C, cw=cw: lr(C, cw))
                c[base + "+gap"] = ((f"k{k}", "len", "gap"), lambda C=C, cw=cw: lr(C, cw))
                c[base + "+orf"] = ((f"k{k}", "len", "orf"), lambda C=C, cw=cw: lr(C, cw))
                c[base + "-nolen"] = ((f"k{k}",), lambda C=C, cw=cw: lr(C, cw))
                for w in (10, 30, 100):
                    c[base + f"_len{w}"] = ((f"k{k}", "len"), lambda C=C, cw=cw, w=w: lr(C, cw, w))
    return c


def feature_matrix(df, blocks, cache):
    parts = []
    for b in blocks:
        if b not in cache:
            if b == "len":
                cache[b] = np.log10(df.length.values)[:, None]
            elif b == "gap":
                cache[b] = gapped_block(df)
            elif b == "orf":
                cache[b] = orf_block(df)
            elif b.startswith("raw"):
                cache[b] = kmer_block(df, int(b[3:]), transform="none")
            else:
                cache[b] = kmer_block(df, int(b[1:]))
        parts.append(cache[b])
    return np.hstack(parts)


def evaluate(df, name, spec, labels, cache, seed=0):
    blocks, factory = spec
    X = feature_matrix(df, blocks, cache)
    scored_table, pool_tables = LABELS[labels]
    tables = {cvlib.EXTRA[df.attrs["rna"]] if t == "extra" else t for t in pool_tables}
    score_mask = (df.table == scored_table).values
    pool_mask = df.table.isin(tables).values

    def fit_predict(tr, va):
        model = factory().fit(X[tr], df.y.values[tr])
        return {"model": model.predict_proba(X[va])[:, 1]}

    oof = cvlib.grouped_oof(df, score_mask, pool_mask, fit_predict, seed=seed)
    oof["calibrated"] = cvlib.platt_crossfit(oof, "model")
    return oof


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default="/tmp/kmer")
    ap.add_argument("--data", default=str(HERE.parent / "datasets"))
    ap.add_argument("--rna", required=True)
    ap.add_argument("--candidates", required=True, help="comma-separated names, regex allowed")
    ap.add_argument("--labels", choices=sorted(LABELS), default="rnalocate")
    ap.add_argument("--kmax-cache", type=int, default=6, help="the cached features' kmax")
    ap.add_argument("--out", help="append one row per candidate (TSV)")
    ap.add_argument("--oof", help="folder: write each candidate's out-of-fold predictions")
    args = ap.parse_args()
    df = load(args.cache, args.data, args.rna, args.kmax_cache)
    df.attrs["rna"] = args.rna
    allc = candidates()
    names = [n for pat in args.candidates.split(",") for n in allc if n == pat or re.fullmatch(pat, n)]
    cache = {}
    for name in names:
        t = time.time()
        oof = evaluate(df, name, allc[name], args.labels, cache)
        s = cvlib.summary(oof, ["model", "calibrated", "length", "majority"])
        row = {"rna_type": args.rna, "labels": args.labels, "candidate": name, "n_scored": len(oof)}
        for pred in ("model", "length", "majority"):
            for m in ("ACC", "macro_F1", "MCC", "AUROC"):
                row[f"{pred}_{m}"] = "{:.3f} +/- {:.3f}".format(*s[pred][m])
        d = s["model-minus-length"]
        for m in ("MCC", "AUROC"):
            row[f"diff_{m}"] = "{:+.3f} +/- {:.3f}".format(*d[m])
            row[f"diff_{m}_boot95"] = "{:+.3f}..{:+.3f}".format(*d["bootstrap95"][m])
        row["ECE_before"] = "{:.3f}".format(s["model"]["ECE"][0])
        row["ECE_after"] = "{:.3f}".format(s["calibrated"]["ECE"][0])
        row["calibrated_MCC"] = "{:.3f}".format(s["calibrated"]["MCC"][0])
        row["seconds"] = round(time.time() - t, 1)
        line = pd.DataFrame([row])
        print(line.to_csv(sep="\t", index=False, header=False), end="", flush=True)
        if args.out:
            line.to_csv(args.out, sep="\t", index=False, mode="a", header=not Path(args.out).exists())
        if args.oof:
            Path(args.oof).mkdir(parents=True, exist_ok=True)
            oof.to_csv(Path(args.oof) / f"{args.rna}.{args.labels}.{name}.tsv", sep="\t", index=False)
            (Path(args.oof) / f"{args.rna}.{args.labels}.{name}.json").write_text(json.dumps(s, indent=1))


if __name__ == "__main__":
    main()
