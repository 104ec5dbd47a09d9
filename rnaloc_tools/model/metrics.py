"""Classification metrics for two-class localization (scikit-learn), with bootstrap intervals.

Used by ``rnaloc train`` (per-fold metrics) and ``rnaloc evaluate``. No torch here.
"""

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

#: Metric names in the order of every metrics table.
METRICS = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "mcc", "auroc")


def compute_metrics(y_true, y_pred, prob_positive):
    """Metrics for integer labels ``y_true``/``y_pred`` (0/1) and the probability of class 1.

    AUROC is NaN when ``y_true`` has a single class (it is undefined there).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = [0, 1]
    out = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "macro_precision": precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "macro_recall": recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "mcc": matthews_corrcoef(y_true, y_pred) if len(y_true) else float("nan"),
        "auroc": roc_auc_score(y_true, prob_positive) if len(np.unique(y_true)) == 2 else float("nan"),
    }
    return {k: float(v) for k, v in out.items()}


def bootstrap_intervals(y_true, y_pred, prob_positive, *, n=1000, seed=0, level=0.95):
    """Percentile bootstrap intervals {metric: (low, high)} over ``n`` resamples of the rows."""
    y_true, y_pred, prob = (np.asarray(a) for a in (y_true, y_pred, prob_positive))
    rng = np.random.default_rng(seed)
    samples = {m: [] for m in METRICS}
    size = len(y_true)
    for _ in range(n):
        idx = rng.integers(0, size, size)
        for name, value in compute_metrics(y_true[idx], y_pred[idx], prob[idx]).items():
            samples[name].append(value)
    alpha = (1 - level) / 2
    out = {}
    for name, values in samples.items():
        values = np.asarray(values)
        values = values[~np.isnan(values)]
        out[name] = (
            (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))) if len(values) else (np.nan, np.nan)
        )
    return out


def confusion(y_true, y_pred, classes):
    """The confusion matrix as a DataFrame: rows true class, columns predicted class."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    return pd.DataFrame(matrix, index=list(classes), columns=list(classes))


def summarise_folds(rows):
    """Per-fold metric dicts -> a table with the folds, then ``mean`` and ``sd`` rows."""
    table = pd.DataFrame(rows)
    mean = table[list(METRICS)].mean()
    sd = table[list(METRICS)].std(ddof=1) if len(table) > 1 else table[list(METRICS)].std(ddof=0)
    extra = pd.DataFrame([{"fold": "mean", **mean.to_dict()}, {"fold": "sd", **sd.to_dict()}])
    out = pd.concat([table, extra], ignore_index=True)
    for col in out.columns:
        if col not in METRICS and col != "fold":
            out[col] = out[col].astype("Int64")  # counts stay integers beside the empty mean/sd cells
    return out


def format_metrics(table, digits=4):
    """Round the float columns of a metrics table for writing."""
    return table.round(digits)


def predicted_class(probabilities, tie_class):
    """The class of highest probability; an exact tie goes to ``tie_class``.

    The models record ``tie_class``: the class that was more frequent in their
    training data (the prior), so a tie never falls silently to class 0.
    """
    probs = np.asarray(probabilities)
    pred = probs.argmax(axis=1)
    top = probs.max(axis=1, keepdims=True)
    tied = (probs == top).sum(axis=1) > 1
    pred[tied] = tie_class
    return pred
