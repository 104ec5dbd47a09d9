"""Fit one bundled default model (arch "kmer") and write it as an rnaloc checkpoint.

The model is the kmer architecture of rnaloc_tools.model.kmer: 1..kmax-mer
frequencies computed in the graph from the one-hot input, square-root
transformed, standardised with the training data's mean and sd, plus the log10
length, then L2-regularised logistic regression. The logistic regression is
fitted by scikit-learn (L-BFGS, deterministic) on exactly the features the torch
module computes, and its weights are copied into the module, so the checkpoint
is an ordinary rnaloc checkpoint that `rnaloc export-onnx` turns into the ONNX file.

    python workflows/bundled-models/train_bundled.py --data datasets --rna-type miRNA \
        --kmax 3 --C 0.01 --class-weight balanced -o build/miRNA.pt [--clusters miRNA.cdhit.clstr]

With --clusters (cd-hit-est -c 0.8 output on train + extra tables), it first runs
the same 5-fold stratified cross-validation grouped by cluster as bench/cv_select.py
and stores the metrics in the checkpoint (they travel into the ONNX metadata).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from rnaloc_tools import CLASSES
from rnaloc_tools.data.cdhit import cluster_index
from rnaloc_tools.encoders.onehot import OneHotEncoder, one_hot
from rnaloc_tools.model import build_model
from rnaloc_tools.model.checkpoint import save_checkpoint
from rnaloc_tools.seqs import normalize

EXTRA = {"miRNA": "extra-deeplocrna", "lncRNA": "extra-rnalight", "circRNA": "extra-cellcircloc"}


def read_table(data, rna_type, name):
    path = Path(data) / rna_type / f"{name}.tsv.gz"
    df = pd.read_csv(path, sep="\t", comment="#")
    df["table"] = name
    df["sequence"] = [normalize(s, source=str(path), record=i) for s, i in zip(df.sequence, df.id)]
    return df



def transformed_features(model, seqs):
    """(N, F) features before standardisation, computed by the module itself, one sequence at a time."""
    rows = []
    with torch.no_grad():
        for s in seqs:
            x = torch.from_numpy(one_hot(s)).unsqueeze(0)
            lengths = torch.tensor([len(s)])
            freqs, _, _ = model.raw_features(x, lengths)
            rows.append(model._transform(freqs, lengths))
    return torch.cat(rows, 0).double().numpy()


def fit_lr(feats, y, C, class_weight):
    mean, sd = feats.mean(0), np.maximum(feats.std(0), 1e-3)
    lr = LogisticRegression(C=C, class_weight=class_weight, max_iter=5000, tol=1e-6)
    lr.fit((feats - mean) / sd, y)
    return lr, mean, sd


def cross_validate(df, feats, C, class_weight, bias, seed=0):
    """Grouped stratified 5-fold CV on train.tsv rows; extra rows train only when not in a validation cluster."""
    train = df[df.table == "train"]
    folds = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
    rows = []
    for tr, va in folds.split(train, train.y, train.cluster):
        tr_idx, va_idx = train.index[tr], train.index[va]
        extra = df.index[(df.table != "train") & ~df.cluster.isin(set(df.cluster[va_idx]))]
        tr_idx = np.concatenate([tr_idx, extra])
        lr, mean, sd = fit_lr(feats[tr_idx], df.y.values[tr_idx], C, class_weight)
        margin = lr.decision_function((feats[va_idx] - mean) / sd) + bias
        p = 1 / (1 + np.exp(-margin))
        y = df.y.values[va_idx]
        pred = (margin > 0).astype(int)
        rows.append(dict(ACC=accuracy_score(y, pred), macro_F1=f1_score(y, pred, average="macro"),
                         MCC=matthews_corrcoef(y, pred), AUROC=roc_auc_score(y, p)))
    m = pd.DataFrame(rows)
    return {f"cv_{c}": [round(float(m[c].mean()), 4), round(float(m[c].std(ddof=1)), 4)] for c in m}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the datasets folder (RNA_TYPE/train.tsv.gz ...; the repository's datasets/)")
    ap.add_argument("--rna-type", required=True, choices=sorted(CLASSES))
    ap.add_argument("--kmax", type=int, required=True)
    ap.add_argument("--C", type=float, required=True, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--class-weight", choices=["none", "balanced"], default="none")
    ap.add_argument("--extra", action="store_true", help="also train on the RNA type's extra table")
    ap.add_argument("--bias", type=float, default=0.0, help="added to the logit of the second class")
    ap.add_argument("--clusters", help="cd-hit-est .clstr of train + extra (enables the grouped CV)")
    ap.add_argument("--card", help="also write a model card (JSON): data, hyperparameters, CV metrics")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rna = args.rna_type
    classes = list(CLASSES[rna])
    names = ["train"] + ([EXTRA[rna]] if args.extra or args.clusters else [])
    df = pd.concat([read_table(args.data, rna, n) for n in names], ignore_index=True)
    df["y"] = [classes.index(lab) for lab in df.label]
    class_weight = None if args.class_weight == "none" else "balanced"

    model, hp = build_model("kmer", dim=4, n_classes=2, kmin=1, kmax=args.kmax)
    model.eval()
    feats = transformed_features(model, df.sequence)

    cv = {}
    if args.clusters:
        clusters = cluster_index(args.clusters)
        df["cluster"] = [clusters[f"{t}|{i}"] for t, i in zip(df.table, df.id)]
        cv_df = df if args.extra else df[df.table == "train"]
        cv = cross_validate(cv_df, feats[cv_df.index], args.C, class_weight, args.bias)
        print(json.dumps({rna: cv}), file=sys.stderr)

    fit_rows = df.index if args.extra else df.index[df.table == "train"]
    lr, mean, sd = fit_lr(feats[fit_rows], df.y.values[fit_rows], args.C, class_weight)
    with torch.no_grad():
        model.feature_mean.copy_(torch.from_numpy(mean))
        model.feature_scale.copy_(torch.from_numpy(sd))
        model.scaler_fitted.fill_(1)
        w = torch.from_numpy(lr.coef_[0])
        model.classifier.weight.copy_(torch.stack([torch.zeros_like(w), w]))
        model.classifier.bias.copy_(torch.tensor([0.0, float(lr.intercept_[0])]))
        model.bias.copy_(torch.tensor([0.0, args.bias]))

    counts = np.bincount(df.y.values[fit_rows], minlength=2)
    training = {
        "method": "scikit-learn LogisticRegression (L-BFGS) on the module's features, weights copied in",
        "data": [f"{rna}/{n}.tsv" for n in (names if args.extra else ["train"])],
        "C": args.C, "class_weight": args.class_weight, "decision_bias": args.bias,
        "n_sequences": int(len(fit_rows)),
        "cv": cv,
        "cv_scheme": "5-fold stratified, grouped by cd-hit-est 80% clusters, scored on train.tsv rows" if cv else None,
    }
    save_checkpoint(args.output, model, hp, arch="kmer", classes=classes, rna_type=rna,
                    encoder=OneHotEncoder().meta(),
                    extra={"class_counts": [int(c) for c in counts], "tie_class": classes[int(np.argmax(counts))],
                           "max_length": None, "training": training})
    if args.card:
        card = {
            "rna_type": rna, "classes": classes, "file": f"{rna}.onnx",
            "encoder": "one-hot (A, C, G, U; IUPAC codes as fractions); no RNA-FM weights needed",
            "architecture": {"arch": "kmer", "hparams": {"kmin": 1, "kmax": args.kmax, "hidden": 0,
                                                         "length_feature": True},
                             "features": "sqrt of 1..kmax-mer frequencies + log10 length, standardised",
                             "classifier": "L2 logistic regression"},
            "training": {**training, "class_counts": dict(zip(classes, (int(c) for c in counts)))},
            "reproduce": "workflows/bundled-models/build.sh",
        }
        Path(args.card).write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
