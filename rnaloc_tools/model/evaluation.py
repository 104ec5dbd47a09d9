"""Scoring a predictions TSV against a labelled dataset, beside trivial baselines (``rnaloc evaluate``).

The predictions and the dataset are joined on ``id``. The model's metrics
(:data:`~.metrics.METRICS`) get seeded percentile-bootstrap 95% intervals. With a
baseline training set (a dataset TSV of the same rna_type, with sequences and both
classes), the majority-class and the length-only baselines (:mod:`.baselines`)
are fitted on it and scored on the same rows, on the same bootstrap resamples,
and the paired difference model minus length (:data:`~.metrics.DIFFERENCE_METRICS`)
gets its own percentile interval: the per-resample differences, so that the
interval accounts for both predictors being scored on the same sequences.

The metrics table (one row per predictor and metric):

    predictor  metric  value  ci95_low  ci95_high

``predictor`` is ``model``, ``majority``, ``length`` or ``model_minus_length``;
each predictor's rows are the metrics, ``n`` and the confusion-matrix cells
(``confusion_true_<class>_predicted_<class>``).
"""

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import CLASSES
from ..errors import InputError
from ..formats import PREDICTION_COLUMNS, read_dataset, read_table
from .baselines import LengthBaseline, MajorityBaseline, baseline_predictions
from .metrics import (
    DIFFERENCE_METRICS,
    METRICS,
    bootstrap_indices,
    bootstrap_intervals,
    compute_metrics,
    confusion,
    paired_differences,
)

log = logging.getLogger("rnaloc")


@dataclass
class Evaluation:
    """What ``rnaloc evaluate`` computed; ``predictors`` maps a name to (predicted class indices, P(classes[1]))."""

    rna_type: str
    classes: tuple
    ids: list
    y_true: np.ndarray
    predictors: dict
    table: pd.DataFrame
    values: dict  # {predictor: {metric: value}}
    differences: dict = field(default_factory=dict)  # {metric: (value, low, high)} model minus length
    baselines: dict = None  # the fitted baselines' parameters and training counts, or None

    @property
    def matrix(self):
        """The model's confusion matrix (rows true class, columns predicted class)."""
        return confusion(self.y_true, self.predictors["model"][0], self.classes)


def _some(ids, n=3):
    ids = list(ids)
    return ", ".join(repr(i) for i in ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def read_scored_rows(predictions_path, dataset_path):
    """Join predictions and labels on ``id``: (joined frame, rna_type, classes, y_true, y_pred, P(classes[1])).

    Every prediction must have a dataset row and every dataset row a prediction,
    of the same rna_type; probabilities must be numbers from 0 to 1.
    """
    preds = read_table(predictions_path, require=PREDICTION_COLUMNS)
    data = read_dataset(dataset_path)
    p, d = preds.df, data.df
    if p.empty:
        raise InputError(preds.source, "no predictions")
    dup = p["id"][p["id"].duplicated()]
    if len(dup):
        raise InputError(preds.source, "duplicate id", dup.iloc[0])
    types = sorted(set(p["rna_type"]))
    if len(types) != 1 or types[0] not in CLASSES:
        raise InputError(preds.source, f"expected predictions of one known rna_type, found {', '.join(types)}")
    rna_type = types[0]
    classes = CLASSES[rna_type]
    prob_cols = [f"probability_{c}" for c in classes]
    missing_cols = [c for c in prob_cols if c not in p.columns]
    if missing_cols:
        raise InputError(preds.source, f"missing column(s) {', '.join(missing_cols)} for {rna_type}")
    unknown = p.loc[~p["prediction"].isin(classes), "id"]
    if len(unknown):
        bad = p.set_index("id").loc[unknown.iloc[0], "prediction"]
        raise InputError(preds.source, f"prediction {bad!r} is not a class of {rna_type} ({', '.join(classes)})", unknown.iloc[0])
    not_in_data = sorted(set(p["id"]) - set(d["id"]))
    if not_in_data:
        raise InputError(data.source, f"{len(not_in_data)} predicted id(s) not found in the dataset: {_some(not_in_data)}")
    predicted_ids = set(p["id"])
    not_predicted = [r for r in d["id"] if r not in predicted_ids]
    if not_predicted:
        raise InputError(preds.source, f"{len(not_predicted)} dataset id(s) have no prediction: {_some(not_predicted)}")
    joined = d[["id", "rna_type", "label", "sequence"]].merge(p, on="id", suffixes=("", "_predicted"))
    wrong = joined.loc[joined["rna_type"] != joined["rna_type_predicted"]]
    if len(wrong):
        row = wrong.iloc[0]
        raise InputError(data.source, f"rna_type {row['rna_type']} in the dataset but {row['rna_type_predicted']} in the predictions", row["id"])
    try:
        prob = joined[prob_cols[1]].astype(float).to_numpy()
    except ValueError as exc:
        raise InputError(preds.source, f"column {prob_cols[1]} is not numeric ({exc})") from None
    invalid = ~(np.isfinite(prob) & (prob >= 0) & (prob <= 1))
    if invalid.any():
        i = int(np.flatnonzero(invalid)[0])
        raise InputError(preds.source, f"{prob_cols[1]} {joined[prob_cols[1]].iloc[i]!r} is not a probability "
                         "(a number from 0 to 1)", joined["id"].iloc[i])
    y_true = joined["label"].map(classes.index).to_numpy()
    y_pred = joined["prediction"].map(classes.index).to_numpy()
    return joined, rna_type, classes, y_true, y_pred, prob


def read_baseline_train(path, rna_type):
    """The baseline training set: (sequence lengths, class indices, table) of a dataset TSV of ``rna_type``.

    Refused, naming the file: another rna_type, no ``sequence`` column (or empty
    sequences), a single class.
    """
    table = read_dataset(path)  # needs id, rna_type, label, sequence; sequences checked, labels of their rna_type
    df = table.df
    other = df.loc[df["rna_type"] != rna_type]
    if len(other):
        found = ", ".join(sorted(set(other["rna_type"])))
        raise InputError(table.source, f"the baseline training set has rna_type {found}, but the predictions are "
                         f"{rna_type}: give training rows of {rna_type} only", other["id"].iloc[0])
    classes = CLASSES[rna_type]
    present = sorted(set(df["label"]), key=classes.index)
    if len(present) < 2:
        raise InputError(table.source, f"only one class ({', '.join(present)}) in the baseline training set: the "
                         f"length baseline needs both {' and '.join(classes)}")
    return df["sequence"].str.len().to_numpy(), df["label"].map(classes.index).to_numpy(), table


def _rows(name, values, intervals, y_true, y_pred, classes):
    rows = [{"predictor": name, "metric": m, "value": round(values[m], 4), "ci95_low": round(intervals[m][0], 4),
             "ci95_high": round(intervals[m][1], 4)} for m in METRICS]
    rows.append({"predictor": name, "metric": "n", "value": len(y_true)})
    matrix = confusion(y_true, y_pred, classes)
    for t in classes:
        for q in classes:
            rows.append({"predictor": name, "metric": f"confusion_true_{t}_predicted_{q}", "value": int(matrix.loc[t, q])})
    return rows


def evaluate_predictions(predictions_path, dataset_path, *, baseline_train=None, n_bootstrap=1000, seed=0):
    """Score predictions against labels (and, with ``baseline_train``, the two baselines): an :class:`Evaluation`."""
    joined, rna_type, classes, y_true, y_pred, prob = read_scored_rows(predictions_path, dataset_path)
    predictors = {"model": (y_pred, prob)}
    baselines = None
    if baseline_train is not None:
        lengths, labels, table = read_baseline_train(baseline_train, rna_type)
        fitted = {"majority": MajorityBaseline.fit(labels, classes), "length": LengthBaseline.fit(lengths, labels, classes)}
        for name, (probs, pred) in baseline_predictions(fitted, joined["sequence"].str.len().to_numpy()).items():
            predictors[name] = (pred, probs[:, 1])
        seen_ids = set(table.df["id"])
        seen_seqs = set(table.df["sequence"])
        overlap = int(sum(i in seen_ids or s in seen_seqs for i, s in zip(joined["id"], joined["sequence"])))
        if overlap:
            log.warning("%d of the %d scored sequences are also in the baseline training set %s (same id or "
                        "sequence): the baselines are scored on rows they were fitted on", overlap, len(joined),
                        table.source)
        baselines = {"train": table.source, "n_train": len(labels),
                     "class_counts": [int(c) for c in np.bincount(labels, minlength=len(classes))],
                     "overlap": overlap, **{name: b.to_dict() for name, b in fitted.items()}}
    idx = bootstrap_indices(len(y_true), n_bootstrap, seed)  # one set of resamples, shared by every predictor
    rows, values = [], {}
    for name, (pred, p) in predictors.items():
        values[name] = compute_metrics(y_true, pred, p)
        rows += _rows(name, values[name], bootstrap_intervals(y_true, pred, p, idx=idx), y_true, pred, classes)
    differences = {}
    if "length" in predictors:
        differences = paired_differences(y_true, predictors["model"], predictors["length"], idx)
        rows += [{"predictor": "model_minus_length", "metric": m, "value": round(v, 4), "ci95_low": round(lo, 4),
                  "ci95_high": round(hi, 4)} for m, (v, lo, hi) in differences.items()]
    table = pd.DataFrame(rows, columns=["predictor", "metric", "value", "ci95_low", "ci95_high"], dtype=object)
    return Evaluation(rna_type, classes, list(joined["id"]), y_true, predictors, table, values, differences, baselines)


def _signed(value, low, high):
    return f"{value:+.3f} (95% CI {low:+.3f} to {high:+.3f})"


def summary_line(evaluation):
    """The one-line stderr summary: the model's metrics and, with baselines, what it adds over length."""
    v = evaluation.values["model"]
    line = (f"{evaluation.rna_type}, {len(evaluation.y_true)} sequences: accuracy {v['accuracy']:.3f}, macro F1 "
            f"{v['macro_f1']:.3f}, MCC {v['mcc']:.3f}, AUROC {v['auroc']:.3f}, Brier {v['brier']:.3f}, ECE {v['ece']:.3f}")
    if evaluation.differences:
        d = evaluation.differences
        parts = ", ".join(f"{label} {_signed(*d[m])}" for m, label in zip(DIFFERENCE_METRICS, ("accuracy", "MCC", "AUROC")))
        line += f"; model minus the length-only baseline: {parts}"
        length = evaluation.values["length"]
        line += f" (length alone: accuracy {length['accuracy']:.3f}, MCC {length['mcc']:.3f}, AUROC {length['auroc']:.3f})"
    return line
