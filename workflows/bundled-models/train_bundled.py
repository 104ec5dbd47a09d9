"""Fit one bundled default model (arch "kmer"), calibrated, with its grouped CV beside the baselines.

The model is the kmer architecture of rnaloc_tools.model.kmer: 1..kmax-mer
frequencies computed in the graph from the one-hot input, square-root
transformed, plus the log10 length, standardised with the training data's mean
and sd, then L2-regularised logistic regression. The logistic regression is
fitted by scikit-learn (L-BFGS, deterministic) on exactly the features the torch
module computes, and its weights are copied into the module, so the checkpoint
is an ordinary rnaloc checkpoint that `rnaloc export-onnx` turns into the ONNX file.

Steps (workflows/bundled-models/cvlib.py):
1. The held-out example clusters (a fixed, seeded draw of whole cd-hit-est 80% clusters,
   6 per class) leave the data; with --examples their train.tsv members are written as
   test-data/example-RNA.fa/.tsv. No bundled model trains on any member of these clusters.
2. Grouped 5-fold CV of the configuration, the majority and length-only baselines fitted
   on the same training rows of each fold; paired differences model minus length.
3. Platt scaling on the out-of-fold logits (its effect measured by cross-fitting: ECE and
   Brier before/after); the final (a, b) is folded into the logistic regression's weights
   (a * (w.z + c) + b is again linear), so the ONNX graph's probabilities are calibrated.
4. The fit on all the (not held-out) data; the checkpoint carries the CV results, the
   calibration, the label source, and the applicability domain of the training sequences
   (rnaloc_tools.domain.fit_domain, grouped by cluster), all of which export-onnx puts in
   the ONNX metadata.

    python workflows/bundled-models/train_bundled.py --data datasets --rna-type miRNA \
        --kmax 3 --C 0.01 --class-weight balanced --clusters WORK/miRNA.dedup.tsv -o WORK/miRNA.pt
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from rnaloc_tools import CLASSES
from rnaloc_tools.domain import METADATA_KEY, fit_domain
from rnaloc_tools.encoders.onehot import OneHotEncoder, one_hot
from rnaloc_tools.model import build_model
from rnaloc_tools.model.checkpoint import save_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cvlib  # noqa: E402

#: --labels: (the table that is trained on and scored, human description)
LABELS = {
    "rnalocate": ("train", "RNALocate-derived labels (curated literature; the RNALoc-LM training set, train.tsv)"),
    "fractionation": ("extra-rnalight", "cell-fractionation labels (lncATLAS nuclear/cytoplasmic relative "
                                        "concentration, as used by RNAlight; extra-rnalight.tsv)"),
}


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


def fit_lr(feats, y, C, class_weight, length_weight=1.0):
    """Standardise (the last column, log length, is scaled up by ``length_weight``: its L2 penalty is
    length_weight^2 times weaker), then L2 logistic regression. Returns the model, mean and scale."""
    mean, sd = feats.mean(0), np.maximum(feats.std(0), 1e-3)
    sd[-1] /= length_weight
    lr = LogisticRegression(C=C, class_weight=class_weight, max_iter=5000, tol=1e-6)
    lr.fit((feats - mean) / sd, y)
    return lr, mean, sd


def write_examples(folder, rna, classes, rows):
    """test-data/example-RNA.fa (">id label") and .tsv (id rna_type label source sequence): the train.tsv
    members of the held-out clusters (6 whole cd-hit-est 80% clusters per class, seed 0)."""
    folder = Path(folder)
    with open(folder / f"example-{rna}.fa", "w") as fa:
        for r in rows.itertuples():
            fa.write(f">{r.id} {r.label}\n")
            fa.writelines(r.sequence[i:i + 60] + "\n" for i in range(0, len(r.sequence), 60))
    table = rows.assign(rna_type=rna)[["id", "rna_type", "label", "source", "sequence"]]
    table.to_csv(folder / f"example-{rna}.tsv", sep="\t", index=False)


def verdict(diff):
    """Plain words: does the model beat the length-only baseline on the same folds?"""
    lo_mcc, lo_auc = diff["bootstrap95"]["MCC"][0], diff["bootstrap95"]["AUROC"][0]
    mcc, auc = diff["MCC"][0], diff["AUROC"][0]
    if lo_mcc > 0 and lo_auc > 0:
        return (f"beats the length-only baseline: MCC {mcc:+.3f}, AUROC {auc:+.3f} (95% cluster-bootstrap "
                f"intervals above 0)")
    return (f"does NOT clearly beat the length-only baseline: MCC {mcc:+.3f} "
            f"(95% interval {diff['bootstrap95']['MCC'][0]:+.3f}..{diff['bootstrap95']['MCC'][1]:+.3f}), AUROC "
            f"{auc:+.3f} ({diff['bootstrap95']['AUROC'][0]:+.3f}..{diff['bootstrap95']['AUROC'][1]:+.3f}); "
            "most of what it predicts, sequence length alone predicts as well")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the datasets folder (RNA_TYPE/train.tsv.gz ...; the repository's datasets/)")
    ap.add_argument("--rna-type", required=True, choices=sorted(CLASSES))
    ap.add_argument("--labels", choices=sorted(LABELS), default="rnalocate", help="which label definition to train on")
    ap.add_argument("--name", help="model name (default: the RNA type)")
    ap.add_argument("--kmax", type=int, required=True)
    ap.add_argument("--C", type=float, required=True, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--class-weight", choices=["none", "balanced"], default="none")
    ap.add_argument("--length-weight", type=float, default=1.0,
                    help="multiply the standardised log length by this (a weaker penalty on the length feature)")
    ap.add_argument("--extra", action="store_true", help="also train on the RNA type's extra table")
    ap.add_argument("--clusters", required=True,
                    help="`rnaloc dedup --keep all` output of train + extra, ids table|id (CV grouping, hold-out)")
    ap.add_argument("--examples", help="write the held-out example-RNA.fa/.tsv into this folder")
    ap.add_argument("--card", help="also write a model card (JSON)")
    ap.add_argument("--notes", help="JSON file: {name: {intended_use, limits}} for the card")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rna = args.rna_type
    name = args.name or rna
    classes = list(CLASSES[rna])
    df = cvlib.attach_clusters(cvlib.read_tables(args.data, rna), args.clusters)
    held, examples = cvlib.choose_holdout(df, **cvlib.HOLDOUT[rna])
    if args.examples:
        write_examples(args.examples, rna, classes, examples)
    held_keys = sorted(df.key[df.cluster.isin(set(held))])
    df = df[~df.cluster.isin(set(held))].reset_index(drop=True)
    scored_table = LABELS[args.labels][0]
    tables = {scored_table} | ({cvlib.EXTRA[rna]} if args.extra else set())
    df = df[df.table.isin(tables)].reset_index(drop=True)
    class_weight = None if args.class_weight == "none" else "balanced"

    model, hp = build_model("kmer", dim=4, n_classes=2, kmin=1, kmax=args.kmax)
    model.eval()
    feats = transformed_features(model, df.sequence)

    def fit_predict(tr, va):
        lr, mean, sd = fit_lr(feats[tr], df.y.values[tr], args.C, class_weight, args.length_weight)
        return {"model": lr.predict_proba((feats[va] - mean) / sd)[:, 1]}

    score_mask = (df.table == scored_table).values
    oof = cvlib.grouped_oof(df, score_mask, np.ones(len(df), bool), fit_predict)
    oof["calibrated"] = cvlib.platt_crossfit(oof, "model")
    cv = cvlib.summary(oof, ["calibrated", "model", "length", "majority"])
    a, b = cvlib.platt_fit(cvlib.logit(oof.model.values), oof.y.values)
    print(json.dumps({name: cv}), file=sys.stderr)

    lr, mean, sd = fit_lr(feats, df.y.values, args.C, class_weight, args.length_weight)
    with torch.no_grad():
        model.feature_mean.copy_(torch.from_numpy(mean))
        model.feature_scale.copy_(torch.from_numpy(sd))
        model.scaler_fitted.fill_(1)
        w = torch.from_numpy(a * lr.coef_[0])
        model.classifier.weight.copy_(torch.stack([torch.zeros_like(w), w]))
        model.classifier.bias.copy_(torch.tensor([0.0, a * float(lr.intercept_[0]) + b]))
        model.bias.zero_()

    counts = np.bincount(df.y.values, minlength=2)
    shipped = cv["calibrated"]
    calibration = {
        "method": "Platt scaling: p = sigmoid(a * logit + b), fitted on the grouped-CV out-of-fold logits and "
                  "folded into the logistic regression's weights (inside the ONNX graph)",
        "a": round(a, 6), "b": round(b, 6),
        "ECE_before": cv["model"]["ECE"], "ECE_after": shipped["ECE"],
        "Brier_before": cv["model"]["Brier"], "Brier_after": shipped["Brier"],
        "ECE_definition": "10 equal-width bins of the probability of the second class; sum of bin share x "
                          "|mean probability - fraction of the second class|; after = Platt fitted on the other "
                          "folds' out-of-fold logits (cross-fitted); mean +/- sd over the 5 folds",
    }
    training = {
        "method": "scikit-learn LogisticRegression (L-BFGS) on the module's features, weights copied in, "
                  "then Platt-calibrated",
        "labels": args.labels,
        "label_definition": LABELS[args.labels][1],
        "data": [f"{rna}/{t}.tsv" for t in sorted(tables)],
        "held_out": (f"{len(held)} whole cd-hit-est 80% clusters ({len(examples)} train.tsv sequences: "
                     f"test-data/example-{rna}.*) are not trained on"),
        "held_out_ids": held_keys,
        "C": args.C, "class_weight": args.class_weight, "length_weight": args.length_weight,
        "n_sequences": int(len(df)),
        "class_counts": dict(zip(classes, (int(c) for c in counts))),
        # the shipped (calibrated) model's CV metrics, in the format of `rnaloc train`'s cv metadata
        "cv": {f"cv_{m}": shipped[m] for m in ("ACC", "macro_F1", "MCC", "AUROC", "Brier", "ECE")},
        "cv_scheme": f"5-fold stratified, grouped by cd-hit-est 80% clusters of train + extra tables, scored on "
                     f"{scored_table}.tsv rows; mean +/- sd over folds; baselines fitted on the same training rows",
        "cv_uncalibrated": cv["model"],
        "cv_baselines": {"length": cv["length"], "majority": cv["majority"]},
        "cv_minus_length": {"calibrated": cv["calibrated-minus-length"], "uncalibrated": cv["model-minus-length"]},
        "versus_length": verdict(cv["calibrated-minus-length"]),
        "calibration": calibration,
    }
    save_checkpoint(args.output, model, hp, arch="kmer", classes=classes, rna_type=rna,
                    encoder=OneHotEncoder().meta(),
                    extra={"class_counts": [int(c) for c in counts], "tie_class": classes[int(np.argmax(counts))],
                           "max_length": None,
                           # which label definition (metadata label_source): lncRNA only, the one RNA type with two
                           "label_source": args.labels if rna == "lncRNA" else None, "training": training,
                           # the applicability domain of the training sequences (grouped by cluster)
                           METADATA_KEY: fit_domain(df.sequence, groups=df.cluster.values)})
    if args.card:
        notes = json.loads(Path(args.notes).read_text())[name] if args.notes else {}
        card = {
            "name": name, "rna_type": rna, "label_source": args.labels, "classes": classes, "file": f"{name}.onnx",
            "encoder": "one-hot (A, C, G, U; IUPAC codes as fractions); no RNA-FM weights needed",
            "architecture": {"arch": "kmer", "hparams": {"kmin": 1, "kmax": args.kmax, "hidden": 0,
                                                         "length_feature": True},
                             "features": "sqrt of 1..kmax-mer frequencies + log10 length, standardised",
                             "classifier": "L2 logistic regression, Platt-calibrated"},
            "training": training,
            **notes,
            "reproduce": "workflows/bundled-models/build.sh",
        }
        Path(args.card).write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
