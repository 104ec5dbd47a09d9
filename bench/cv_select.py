"""Choose the bundled default models by grouped cross-validation on datasets/.

5-fold stratified cross-validation grouped by cd-hit-est 80%-identity clusters
(computed on train.tsv and the extra table of each RNA type together, so that an
extra row in a validation row's cluster never enters training). Metrics are
computed on train.tsv rows only; extra rows can only be added to the training folds.

    python bench/cv_select.py --cache /tmp/kmer --rna miRNA --candidates lr5,hgb5 \
        --out workflows/bundled-models/cv-selection.tsv

The cache holds the cd-hit-est clusters (RNA.cdhit.clstr, from workflows/bundled-models/build.sh in the
workflow) and the k-mer frequencies (feat/, from bench/kmer_features.py).
"""

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rnaloc_tools import CLASSES
from rnaloc_tools.data.cdhit import cluster_index

sys.path.insert(0, str(Path(__file__).parent))
from kmer_features import TABLES  # noqa: E402



def load(cache, data, rna, kmax_cache=6, train_only=False):
    frames = []
    for name in TABLES[rna][:1] if train_only else TABLES[rna]:
        df = pd.read_csv(Path(data) / rna / f"{name}.tsv.gz", sep="\t", comment="#")
        df["table"] = name
        df["freq"] = list(np.load(Path(cache) / "feat" / f"{rna}.{name}.k{kmax_cache}.npy"))
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    clusters = cluster_index(Path(cache) / f"{rna}.cdhit.clstr")
    df["cluster"] = [clusters[f"{t}|{i}"] for t, i in zip(df.table, df.id)]
    df["y"] = (df.label == CLASSES[rna][1]).astype(int)
    df["length"] = df.sequence.str.len()
    return df


def features(df, kmax, transform="sqrt", length=True):
    n = sum(4**k for k in range(1, kmax + 1))
    f = np.stack(df.freq.values)[:, :n].astype(np.float64)
    if transform == "sqrt":
        f = np.sqrt(f + 1e-6)
    if length:
        f = np.hstack([f, np.log10(df.length.values)[:, None]])
    return f


def candidates():
    c = {}
    c["hgb5"] = dict(kmax=5, transform="none", length=False, model=lambda: HistGradientBoostingClassifier(random_state=0))
    for k in (2, 3, 4, 5, 6, 7, 8):
        for C in (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1):
            for cw in (None, "balanced"):
                name = f"lr{k}_C{C}" + ("_bal" if cw else "")
                c[name] = dict(kmax=k, model=lambda C=C, cw=cw: make_pipeline(
                    StandardScaler(), LogisticRegression(C=C, class_weight=cw, max_iter=3000)))
    for k in (4, 5, 6):
        for alpha in (1.0, 10.0, 30.0):
            c[f"mlp{k}_a{alpha}"] = dict(kmax=k, model=lambda a=alpha: make_pipeline(
                StandardScaler(), MLPClassifier((64,), alpha=a, max_iter=300, early_stopping=False, random_state=0)))
    return c


def metrics(y, p, thr=0.5):
    pred = (p >= thr).astype(int)
    return dict(acc=accuracy_score(y, pred), f1=f1_score(y, pred, average="macro"),
                mcc=matthews_corrcoef(y, pred), auroc=roc_auc_score(y, p))


def run(df, spec, extra, seed=0, split="grouped"):
    train = df[df.table == "train"]
    folds = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
    if split == "random":  # every row its own group: near-identical rows may straddle folds
        train = train.assign(cluster=np.arange(len(train)))
    X = features(df, spec["kmax"], spec.get("transform", "sqrt"), spec.get("length", True))
    rows, oof = [], np.zeros(len(train))
    for fold, (tr, va) in enumerate(folds.split(train, train.y, train.cluster)):
        tr_idx = train.index[tr]
        va_idx = train.index[va]
        if extra:
            val_clusters = set(df.cluster[va_idx])
            ex = df.index[(df.table != "train") & ~df.cluster.isin(val_clusters)]
            tr_idx = np.concatenate([tr_idx, ex])
        model = spec["model"]()
        model.fit(X[tr_idx], df.y.values[tr_idx])
        p = model.predict_proba(X[va_idx])[:, 1]
        oof[va] = p
        rows.append(metrics(df.y.values[va_idx], p))
    return pd.DataFrame(rows), oof


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="/tmp/kmer")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "datasets"))
    ap.add_argument("--rna", required=True)
    ap.add_argument("--candidates", required=True, help="comma-separated names, regex allowed")
    ap.add_argument("--extra", choices=["no", "yes", "both"], default="no")
    ap.add_argument("--kmax-cache", type=int, default=6, help="the cached features' kmax")
    ap.add_argument("--split", choices=["grouped", "random"], default="grouped")
    ap.add_argument("--out")
    args = ap.parse_args()
    df = load(args.cache, args.data, args.rna, args.kmax_cache, train_only=args.extra == "no")
    allc = candidates()
    names = [n for pat in args.candidates.split(",") for n in allc if re.fullmatch(pat, n)]
    for name in names:
        for extra in {"no": [False], "yes": [True], "both": [False, True]}[args.extra]:
            t = time.time()
            m, _ = run(df, allc[name], extra, split=args.split)
            row = {"rna_type": args.rna, "candidate": name, "extra": "yes" if extra else "no", "split": args.split}
            for col in m:
                row[f"{col}_mean"] = round(m[col].mean(), 4)
                row[f"{col}_sd"] = round(m[col].std(ddof=1), 4)
            row["seconds"] = round(time.time() - t, 1)
            line = pd.DataFrame([row])
            print(line.to_csv(sep="\t", index=False, header=False), end="", flush=True)
            if args.out:
                line.to_csv(args.out, sep="\t", index=False, mode="a", header=not Path(args.out).exists())


if __name__ == "__main__":
    main()
