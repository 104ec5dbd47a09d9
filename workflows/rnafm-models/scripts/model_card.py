#!/usr/bin/env python
"""The model card of one RNA-FM model built by workflows/rnafm-models: JSON and a Markdown table.

The card puts the model's cross-validation metrics (mean and sd over the folds,
from `rnaloc train`'s cv_metrics.tsv) beside those of the baselines `train`
scored on the same folds (majority class, length only) and those of the
bundled k-mer model of the same RNA type (from its own card: its folds were
grouped by clusters of train + extra tables, so the comparison is close, not
exact), and records where the model came from: the RNA-FM weights (format,
file, sha256), the long-sequence policy, the training settings and the data.
"""

import argparse
import hashlib
import json
import os

import pandas as pd

from rnaloc_tools.bundled import bundled_models
from rnaloc_tools.fileio import atomic_output
from rnaloc_tools.formats import EmbeddingStore, read_dataset
from rnaloc_tools.model.checkpoint import read_checkpoint

METRICS = ("accuracy", "macro_f1", "mcc", "auroc")
#: The bundled cards' names of the same metrics.
BUNDLED_NAMES = {"accuracy": "cv_ACC", "macro_f1": "cv_macro_F1", "mcc": "cv_MCC", "auroc": "cv_AUROC"}
LABELS = {"model": "RNA-FM + RNALoc-LM head (this model)", "majority": "baseline: majority class",
          "length": "baseline: length only (logistic regression on log length)",
          "bundled": "bundled k-mer model (one-hot, no RNA-FM)"}
#: RNALoc-LM's own results on its independent test sets (Zeng et al. 2025): other sequences, for orientation.
PAPER_TEST = {"lncRNA": {"accuracy": 0.680, "macro_f1": 0.607}, "miRNA": {"accuracy": 0.887, "macro_f1": 0.876},
              "circRNA": {"accuracy": 0.826, "macro_f1": 0.820}}


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def number(value):
    return None if pd.isna(value) else round(float(value), 4)


def cv_rows(metrics_path):
    """{predictor: {metric: [mean, sd]}} from train's cv_metrics.tsv (a file without a predictor column: model)."""
    table = pd.read_csv(metrics_path, sep="\t", comment="#", dtype={"fold": str})
    if "predictor" not in table.columns:
        table["predictor"] = "model"
    out = {}
    for predictor, rows in table.groupby("predictor", sort=False):
        rows = rows.set_index("fold")
        if "mean" not in rows.index or predictor not in ("model", "majority", "length"):
            continue
        out[predictor] = {m: [number(rows.loc["mean", m]), number(rows.loc["sd", m])] for m in METRICS if m in rows}
    return out


def bundled_cv(rna_type):
    onnx = bundled_models().get(rna_type)
    if onnx is None:
        return None, None
    card = os.path.splitext(onnx)[0] + ".json"
    if not os.path.exists(card):
        return None, None
    with open(card, encoding="utf-8") as fh:
        data = json.load(fh)
    cv = data.get("training", {}).get("cv", {})
    values = {m: cv.get(name) for m, name in BUNDLED_NAMES.items() if cv.get(name) is not None}
    return values, data.get("training", {}).get("cv_scheme")


def fmt(pair):
    if not pair or pair[0] is None:
        return "n/a"
    return f"{pair[0]:.3f} +/- {pair[1]:.3f}" if pair[1] is not None else f"{pair[0]:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rna-type", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--embeddings", default=None, help="the embeddings NPZ (weights provenance)")
    parser.add_argument("--long", default="truncate")
    parser.add_argument("--subset", type=int, default=0)
    parser.add_argument("--cluster", default="True")
    parser.add_argument("--identity", type=float, default=0.8)
    parser.add_argument("--json", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args()

    ckpt = read_checkpoint(args.checkpoint)
    df = read_dataset(args.dataset).df
    training = dict(ckpt.get("training", {}))
    cv = cv_rows(args.metrics)
    bundled, bundled_scheme = bundled_cv(args.rna_type)
    weights = {}
    if args.embeddings:
        meta = EmbeddingStore(args.embeddings).meta
        weights = {k: meta.get(k) for k in ("weights_format", "weights_file", "checkpoint_sha256", "layers",
                                            "precision", "long_policy", "max_length")}
    grouped = args.cluster == "True" and "cluster" in df.columns
    card = {
        "rna_type": args.rna_type,
        "classes": list(ckpt["classes"]),
        "file": os.path.basename(args.onnx),
        "onnx_sha256": sha256(args.onnx),
        "encoder": {**ckpt.get("encoder", {}), **{k: v for k, v in weights.items() if v is not None}},
        "architecture": {"arch": ckpt["arch"], "hparams": ckpt["hparams"]},
        "training": {
            "data": f"datasets/{args.rna_type}/train.tsv.gz"
                    + (f" (a seeded subset of {len(df)} rows: a test build, not a model to use)" if args.subset else ""),
            "n_sequences": int(len(df)),
            "class_counts": {c: int((df["label"] == c).sum()) for c in ckpt["classes"]},
            "long_sequences": args.long,
            "cv_scheme": (f"{training.get('folds')}-fold stratified, grouped by cd-hit-est {args.identity:g} clusters "
                          f"({df['cluster'].nunique()} clusters)" if grouped else
                          f"{training.get('folds')}-fold stratified"),
            "settings": {k: training.get(k) for k in ("epochs", "patience", "batch_size", "lr", "weight_decay", "loss",
                                                     "max_len", "seed", "device")},
        },
        "cv": cv,
        "bundled_kmer_model_cv": {"cv": bundled, "cv_scheme": bundled_scheme,
                                  "note": "its own folds (grouped by clusters of train + extra tables): close to, "
                                          "not the same as, this model's folds"} if bundled else None,
        "paper_independent_test": {"metrics": PAPER_TEST.get(args.rna_type),
                                   "note": "RNALoc-LM's RNA-FM model on its independent test set (other sequences)"},
        "reproduce": "snakemake -s workflows/rnafm-models/Snakefile --config weights=... (see its README)",
    }
    with atomic_output(args.json, "w") as out:
        json.dump(card, out, indent=1)
        out.write("\n")

    lines = [f"# RNA-FM model card: {args.rna_type}", "",
             f"Classes: {', '.join(card['classes'])}. Trained on {card['training']['data']}: {len(df)} sequences "
             f"({', '.join(f'{c} {n}' for c, n in card['training']['class_counts'].items())}). Long sequences: "
             f"`--long {args.long}`; the head trains on the first {training.get('max_len')} positions.",
             f"RNA-FM weights: {card['encoder'].get('weights_format', '?')} `{card['encoder'].get('weights_file', '?')}` "
             f"(sha256 {str(card['encoder'].get('checkpoint_sha256'))[:16]}...).", "",
             f"Cross-validation ({card['training']['cv_scheme']}), mean +/- sd over folds:", "",
             "| predictor | ACC | macro F1 | MCC | AUROC |", "|---|---|---|---|---|"]
    for key in ("model", "majority", "length"):
        if key in cv:
            lines.append(f"| {LABELS[key]} | " + " | ".join(fmt(cv[key].get(m)) for m in METRICS) + " |")
    if bundled:
        lines.append(f"| {LABELS['bundled']} (its own folds) | " + " | ".join(fmt(bundled.get(m)) for m in METRICS) + " |")
    paper = PAPER_TEST.get(args.rna_type)
    if paper:
        lines += ["", f"For orientation, the paper's RNA-FM model on its independent test set (other sequences): "
                      f"ACC {paper['accuracy']:.3f}, macro F1 {paper['macro_f1']:.3f}."]
    with atomic_output(args.markdown, "w") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
