"""Classification metrics for two-class localization (scikit-learn), with bootstrap intervals.

Used by ``rnaloc train`` (per-fold metrics) and ``rnaloc evaluate``. No torch here.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    matthews_corrcoef,
    precision_recall_fscore_support,
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # single-class resamples: sklearn warns, the values are defined
        out = _metrics(y_true, y_pred, prob_positive, labels)
    return {k: float(v) for k, v in out.items()}


def _metrics(y_true, y_pred, prob_positive, labels):
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1,
        "macro_precision": precision,
        "macro_recall": recall,
        "mcc": matthews_corrcoef(y_true, y_pred) if len(y_true) else float("nan"),
        "auroc": roc_auc_score(y_true, prob_positive) if len(np.unique(y_true)) == 2 else float("nan"),
    }


def resampled_metrics(y_true, y_pred, prob_positive, idx):
    """The metrics of :func:`compute_metrics` for each row of ``idx`` (R, N) resample indices, vectorised.

    scikit-learn costs ~10 ms per resample; the same formulas on the (R,) confusion
    counts and a rank-based AUROC (ties averaged, as in ``roc_auc_score``) take
    milliseconds for a thousand. A test checks them against scikit-learn.
    """
    from scipy.stats import rankdata

    t, p, prob = y_true[idx].astype(bool), y_pred[idx].astype(bool), prob_positive[idx]
    tp, tn = (t & p).sum(1), (~t & ~p).sum(1)
    fp, fn = (~t & p).sum(1), (t & ~p).sum(1)
    n = idx.shape[1]

    def ratio(a, b):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b > 0, a / np.maximum(b, 1), 0.0)

    prec1, prec0 = ratio(tp, tp + fp), ratio(tn, tn + fn)
    rec1, rec0 = ratio(tp, tp + fn), ratio(tn, tn + fp)
    f1_1, f1_0 = ratio(2 * tp, 2 * tp + fp + fn), ratio(2 * tn, 2 * tn + fn + fp)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)).astype(float)
        mcc = np.where(denom > 0, (tp * tn - fp * fn) / np.where(denom > 0, denom, 1), 0.0)
        ranks = rankdata(prob, axis=1)
        n1 = t.sum(1)
        n0 = n - n1
        auroc = ((ranks * t).sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    auroc = np.where((n1 > 0) & (n0 > 0), auroc, np.nan)
    return {
        "accuracy": (tp + tn) / n,
        "macro_f1": (f1_1 + f1_0) / 2,
        "macro_precision": (prec1 + prec0) / 2,
        "macro_recall": (rec1 + rec0) / 2,
        "mcc": mcc,
        "auroc": auroc,
    }


def bootstrap_intervals(y_true, y_pred, prob_positive, *, n=1000, seed=0, level=0.95):
    """Percentile bootstrap intervals {metric: (low, high)} over ``n`` seeded resamples of the rows."""
    y_true, y_pred, prob = (np.asarray(a) for a in (y_true, y_pred, prob_positive))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), (n, len(y_true)))
    samples = resampled_metrics(y_true, y_pred, prob.astype(float), idx)
    alpha = (1 - level) / 2
    out = {}
    for name in METRICS:
        values = samples[name][~np.isnan(samples[name])]
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


def _some(ids, n=3):
    ids = list(ids)
    return ", ".join(repr(i) for i in ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def evaluate_predictions(predictions_path, dataset_path, *, n_bootstrap=1000, seed=0):
    """Join a predictions TSV with a dataset TSV on ``id``; metrics with bootstrap 95% intervals.

    Returns (metrics table, confusion DataFrame, rna_type). Every prediction must
    have a dataset row and every dataset row a prediction, of the same rna_type.
    """
    from .. import CLASSES
    from ..errors import InputError
    from ..formats import PREDICTION_COLUMNS, read_dataset, read_table

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
    joined = d[["id", "rna_type", "label"]].merge(p, on="id", suffixes=("", "_predicted"))
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
    values = compute_metrics(y_true, y_pred, prob)
    intervals = bootstrap_intervals(y_true, y_pred, prob, n=n_bootstrap, seed=seed)
    rows = [{"metric": m, "value": values[m], "ci95_low": intervals[m][0], "ci95_high": intervals[m][1]} for m in METRICS]
    rows = [{**r, "value": round(r["value"], 4), "ci95_low": round(r["ci95_low"], 4), "ci95_high": round(r["ci95_high"], 4)}
            for r in rows]
    rows.append({"metric": "n", "value": len(joined)})
    matrix = confusion(y_true, y_pred, classes)
    for t in classes:
        for q in classes:
            rows.append({"metric": f"confusion_true_{t}_predicted_{q}", "value": int(matrix.loc[t, q])})
    return pd.DataFrame(rows, dtype=object), matrix, rna_type
