"""Classification metrics for two-class localization (scikit-learn), with bootstrap intervals.

Used by ``rnaloc train`` (per-fold metrics) and ``rnaloc evaluate`` (:mod:`.evaluation`). No torch here.

Calibration: the Brier score is the mean squared difference between the
predicted probability of the second class (``classes[1]``) and the outcome (1 when
the true class is ``classes[1]``, else 0), as scikit-learn's ``brier_score_loss``.
The expected calibration error (ECE) bins that probability into ``ECE_BINS``
equal-width bins [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0] and averages, weighted by
the number of sequences in each bin, the absolute difference between the mean
predicted probability and the observed fraction of ``classes[1]`` in the bin:
ECE = sum over bins of (n_bin / N) * |observed_bin - predicted_bin|. The same bins
draw the reliability diagram of ``rnaloc evaluate --plots``.
"""

import warnings

import numpy as np
import pandas as pd

#: Metric names in the order of every metrics table (brier and ece: lower is better).
METRICS = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "mcc", "auroc", "brier", "ece")

#: Metrics whose paired difference, model minus the length baseline, is reported.
DIFFERENCE_METRICS = ("accuracy", "mcc", "auroc")

#: Equal-width bins of the predicted probability for the ECE and the reliability diagram.
ECE_BINS = 10


def calibration_bins(prob_positive, n_bins=ECE_BINS):
    """Bin index (0 .. n_bins-1) of each probability: [0, 1/n), [1/n, 2/n), ..., [(n-1)/n, 1]."""
    prob = np.asarray(prob_positive, dtype=float)
    return np.clip(np.floor(prob * n_bins).astype(np.int64), 0, n_bins - 1)


def reliability(y_true, prob_positive, n_bins=ECE_BINS):
    """The reliability table: one row per non-empty bin (bin_low, bin_high, n, predicted, observed)."""
    y = np.asarray(y_true, dtype=float)
    prob = np.asarray(prob_positive, dtype=float)
    bins = calibration_bins(prob, n_bins)
    n = np.bincount(bins, minlength=n_bins)
    predicted = np.bincount(bins, weights=prob, minlength=n_bins)
    observed = np.bincount(bins, weights=y, minlength=n_bins)
    keep = n > 0
    edges = np.arange(n_bins + 1) / n_bins
    return pd.DataFrame({
        "bin_low": edges[:-1][keep], "bin_high": edges[1:][keep], "n": n[keep],
        "predicted": predicted[keep] / n[keep], "observed": observed[keep] / n[keep],
    })


def expected_calibration_error(y_true, prob_positive, n_bins=ECE_BINS):
    """ECE over ``n_bins`` equal-width bins (module docstring); NaN for no rows."""
    y = np.asarray(y_true, dtype=float)
    prob = np.asarray(prob_positive, dtype=float)
    if not len(y):
        return float("nan")
    gap = np.bincount(calibration_bins(prob, n_bins), weights=y - prob, minlength=n_bins)
    return float(np.abs(gap).sum() / len(y))


def compute_metrics(y_true, y_pred, prob_positive):
    """Metrics for integer labels ``y_true``/``y_pred`` (0/1) and the probability of class 1.

    AUROC is NaN when ``y_true`` has a single class (it is undefined there).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    prob_positive = np.asarray(prob_positive, dtype=float)
    labels = [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # single-class resamples: sklearn warns, the values are defined
        out = _metrics(y_true, y_pred, prob_positive, labels)
    return {k: float(v) for k, v in out.items()}


def _metrics(y_true, y_pred, prob_positive, labels):
    # scikit-learn is imported where it is used: `rnaloc predict` imports this module for
    # predicted_class, and scikit-learn's import took 0.8 s of its 1.1 s start
    from sklearn.metrics import accuracy_score, brier_score_loss, matthews_corrcoef, precision_recall_fscore_support, roc_auc_score

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
        "brier": brier_score_loss(y_true, prob_positive, pos_label=1) if len(y_true) else float("nan"),
        "ece": expected_calibration_error(y_true, prob_positive),
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
    brier = ((prob - t) ** 2).mean(1)
    # ECE = sum over bins |sum(y - p)| / n: one weighted bincount over (resample, bin) cells
    cells = np.arange(len(idx))[:, None] * ECE_BINS + calibration_bins(prob)
    gap = np.bincount(cells.ravel(), weights=(t - prob).ravel(), minlength=len(idx) * ECE_BINS)
    ece = np.abs(gap.reshape(len(idx), ECE_BINS)).sum(1) / n
    return {
        "accuracy": (tp + tn) / n,
        "macro_f1": (f1_1 + f1_0) / 2,
        "macro_precision": (prec1 + prec0) / 2,
        "macro_recall": (rec1 + rec0) / 2,
        "mcc": mcc,
        "auroc": auroc,
        "brier": brier,
        "ece": ece,
    }


def bootstrap_indices(n_rows, n=1000, seed=0):
    """(n, n_rows) row indices of ``n`` seeded bootstrap resamples; the same for every predictor scored."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_rows, (n, n_rows))


def percentile_interval(values, level=0.95):
    """(low, high) percentile interval of ``values``, NaN resamples (undefined AUROC) left out."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return (np.nan, np.nan)
    alpha = (1 - level) / 2
    return (float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha)))


def paired_differences(y_true, first, second, idx, *, metrics=DIFFERENCE_METRICS, level=0.95):
    """{metric: (value, low, high)} of ``first`` minus ``second`` on the same rows and resamples.

    ``first`` and ``second`` are (predicted class indices, probability of class 1).
    The interval is the percentile interval of the per-resample differences over
    the resamples ``idx`` (paired: both predictors scored on the same resampled rows).
    """
    y_true = np.asarray(y_true)
    (pred_a, prob_a), (pred_b, prob_b) = ((np.asarray(p), np.asarray(q, dtype=float)) for p, q in (first, second))
    point_a, point_b = compute_metrics(y_true, pred_a, prob_a), compute_metrics(y_true, pred_b, prob_b)
    samples_a = resampled_metrics(y_true, pred_a, prob_a, idx)
    samples_b = resampled_metrics(y_true, pred_b, prob_b, idx)
    return {m: (point_a[m] - point_b[m], *percentile_interval(samples_a[m] - samples_b[m], level)) for m in metrics}


def bootstrap_intervals(y_true, y_pred, prob_positive, *, n=1000, seed=0, level=0.95, idx=None):
    """Percentile bootstrap intervals {metric: (low, high)} over ``n`` seeded resamples of the rows.

    ``idx`` (from :func:`bootstrap_indices`) gives the resamples explicitly, so that
    several predictors are scored on the same ones.
    """
    y_true, y_pred, prob = (np.asarray(a) for a in (y_true, y_pred, prob_positive))
    if idx is None:
        idx = bootstrap_indices(len(y_true), n, seed)
    samples = resampled_metrics(y_true, y_pred, prob.astype(float), idx)
    return {name: percentile_interval(samples[name], level) for name in METRICS}


def confusion(y_true, y_pred, classes):
    """The confusion matrix as a DataFrame: rows true class, columns predicted class."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    return pd.DataFrame(matrix, index=list(classes), columns=list(classes))


def summarise_folds(rows):
    """Per-fold metric dicts -> a table with the folds, then ``mean`` and ``sd`` rows.

    Rows with a ``predictor`` key (``model``, ``majority``, ``length``,
    ``model_minus_length``) are summarised per predictor, in the order they first
    appear, and the table starts with a ``predictor`` column.
    """
    table = pd.DataFrame(rows)
    metrics = [m for m in METRICS if m in table.columns]
    parts = []
    groups = table.groupby("predictor", sort=False) if "predictor" in table.columns else [(None, table)]
    for name, part in groups:
        mean = part[metrics].mean()
        sd = part[metrics].std(ddof=1) if len(part) > 1 else part[metrics].std(ddof=0)
        key = {} if name is None else {"predictor": name}
        extra = pd.DataFrame([{**key, "fold": "mean", **mean.to_dict()}, {**key, "fold": "sd", **sd.to_dict()}])
        parts += [part, extra]
    out = pd.concat(parts, ignore_index=True)
    first = [c for c in ("predictor", "fold") if c in out.columns]
    out = out[first + metrics + [c for c in out.columns if c not in first and c not in metrics]]
    for col in out.columns:
        if col not in METRICS and col not in ("fold", "predictor"):
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
