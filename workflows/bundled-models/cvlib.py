"""Grouped cross-validation, baselines on the same folds, calibration and held-out sets for the bundled models.

Shared by train_bundled.py (the build) and bench/cv_select.py (the model choice), so the
numbers in the model cards and in cv-selection.tsv come from one implementation.

Folds: 5-fold StratifiedGroupKFold over the scored rows, grouped by cd-hit-est 80%-identity
clusters computed on all tables of the RNA type together. A fold trains on the training-pool
rows whose cluster has no scored row in its validation part, so no near-copy of a validation
sequence is ever trained on (an extra table's rows included).

Every candidate is scored beside two baselines fitted on exactly the same training rows of
each fold (rnaloc_tools.model.baselines: majority class, logistic regression on log length);
differences model minus length are paired: per fold (mean, sd) and by a cluster bootstrap of
the pooled out-of-fold predictions (95% interval).

Calibration: Platt scaling (logistic regression on the model's logit) fitted on out-of-fold
logits. Its effect is measured by cross-fitting: fold f's probabilities are calibrated by a
Platt fit on the other folds' out-of-fold logits. ECE as `rnaloc evaluate` computes it
(rnaloc_tools.model.metrics: 10 equal-width bins of the probability of the second class).
"""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, matthews_corrcoef, roc_auc_score
from scipy.stats import rankdata
from sklearn.model_selection import StratifiedGroupKFold

from rnaloc_tools import CLASSES
from rnaloc_tools.model.baselines import fit_baselines
from rnaloc_tools.model.metrics import expected_calibration_error
from rnaloc_tools.seqs import normalize

#: the extra table of each RNA type (its own label source; see datasets/README.md)
EXTRA = {"miRNA": "extra-deeplocrna", "lncRNA": "extra-rnalight", "circRNA": "extra-cellcircloc"}
METRICS = ("ACC", "macro_F1", "MCC", "AUROC", "Brier", "ECE")
N_FOLDS = 5
#: the held-out example sets (test-data/example-RNA.*): 6 clusters per class, sequences in this length range
HOLDOUT = {"miRNA": {}, "lncRNA": {"min_len": 200, "max_len": 3000}, "circRNA": {"min_len": 100, "max_len": 1500}}


def read_tables(data, rna_type):
    """train + extra table of ``rna_type`` (columns table, id, label, sequence, y, length)."""
    classes = list(CLASSES[rna_type])
    frames = []
    for name in ("train", EXTRA[rna_type]):
        path = Path(data) / rna_type / f"{name}.tsv.gz"
        df = pd.read_csv(path, sep="\t", comment="#")
        df["sequence"] = [normalize(s, source=str(path), record=i) for s, i in zip(df.sequence, df.id)]
        df["table"] = name
        frames.append(df[["table", "id", "label", "source", "sequence"]])
    df = pd.concat(frames, ignore_index=True)
    df["key"] = df.table + "|" + df.id.astype(str)
    df["y"] = [classes.index(lab) for lab in df.label]
    df["length"] = df.sequence.str.len()
    return df


def attach_clusters(df, dedup_tsv):
    """Add the ``cluster`` column from `rnaloc dedup --keep all` output whose ids are table|id."""
    clusters = pd.read_csv(dedup_tsv, sep="\t", comment="#", usecols=["id", "cluster"])
    lookup = dict(zip(clusters.id, clusters.cluster))
    missing = [k for k in df.key if k not in lookup]
    if missing:
        raise SystemExit(f"{dedup_tsv}: {len(missing)} rows have no cluster (first: {missing[0]})")
    df["cluster"] = [lookup[k] for k in df.key]
    return df


def choose_holdout(df, per_class=6, seed=0, min_len=None, max_len=None):
    """A fixed, seeded held-out set: ``per_class`` whole clusters per class, drawn among the clusters
    of at most 3 sequences whose train.tsv rows all carry one label. Returns the held-out cluster ids
    (every member, of any table, leaves training) and the example rows (the train.tsv members)."""
    train = df[df.table == "train"]
    stats = df.groupby("cluster").agg(size=("key", "size"))
    labels = train.groupby("cluster").y.agg(["min", "max", "first"])
    length = train.groupby("cluster").length.max()
    ok = labels[(labels["min"] == labels["max"])].join(stats).join(length)
    ok = ok[ok["size"] <= 3]
    if min_len:
        ok = ok[ok.length >= min_len]
    if max_len:
        ok = ok[ok.length <= max_len]
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in (0, 1):
        pool = np.array(sorted(ok.index[ok["first"] == cls]))
        chosen.extend(rng.choice(pool, size=per_class, replace=False).tolist())
    held = df.cluster.isin(set(chosen))
    return sorted(chosen), df[held & (df.table == "train")]


def folds(scored, seed=0):
    """[(fold, scored positions)] of a StratifiedGroupKFold over ``scored`` (a frame with y, cluster)."""
    splitter = StratifiedGroupKFold(N_FOLDS, shuffle=True, random_state=seed)
    return [va for _, va in splitter.split(scored, scored.y, scored.cluster)]


def grouped_oof(df, score_mask, pool_mask, fit_predict, seed=0):
    """Out-of-fold predictions for the scored rows.

    ``fit_predict(train_index, val_index) -> {predictor: probability of the second class}``; the
    length and majority baselines are added for the same rows. Returns a frame of the scored rows
    with columns fold and one per predictor."""
    scored = df[score_mask]
    out = scored[["key", "y", "cluster"]].copy()
    out["fold"] = -1
    classes = (0, 1)
    for f, va in enumerate(folds(scored, seed)):
        va_idx = scored.index[va]
        val_clusters = set(df.cluster[va_idx])
        tr_idx = df.index[pool_mask & ~df.cluster.isin(val_clusters)]
        out.loc[va_idx, "fold"] = f
        preds = fit_predict(tr_idx, va_idx)
        base = fit_baselines(df.length.values[tr_idx], df.y.values[tr_idx], classes)
        preds["majority"] = base["majority"].predict_proba(len(va_idx))[:, 1]
        preds["length"] = base["length"].predict_proba(df.length.values[va_idx])[:, 1]
        for name, p in preds.items():
            out.loc[va_idx, name] = p
    return out


def metrics(y, p, threshold=0.5):
    """ACC, macro F1, MCC (prediction: p > threshold), AUROC, Brier, ECE."""
    pred = (np.asarray(p) > threshold).astype(int)
    one_class = len(set(y)) < 2
    return {"ACC": accuracy_score(y, pred), "macro_F1": f1_score(y, pred, average="macro", labels=[0, 1]),
            "MCC": matthews_corrcoef(y, pred), "AUROC": np.nan if one_class else roc_auc_score(y, p),
            "Brier": brier_score_loss(y, p), "ECE": expected_calibration_error(y, p)}


def logit(p):
    p = np.clip(np.asarray(p, float), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def platt_fit(logits, y):
    """(a, b) of p = sigmoid(a * logit + b), fitted by (unpenalised) maximum likelihood."""
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(np.asarray(logits)[:, None], y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def platt_crossfit(oof, column):
    """Fold f calibrated by Platt scaling fitted on the other folds' out-of-fold logits."""
    z = logit(oof[column].values)
    out = np.zeros(len(oof))
    for f in sorted(oof.fold.unique()):
        m = (oof.fold == f).values
        a, b = platt_fit(z[~m], oof.y.values[~m])
        out[m] = 1 / (1 + np.exp(-(a * z[m] + b)))
    return out


def fold_table(oof, predictors):
    """Per fold and predictor: the metrics (long frame)."""
    rows = []
    for f in sorted(oof.fold.unique()):
        part = oof[oof.fold == f]
        for name in predictors:
            rows.append({"fold": f, "predictor": name, **metrics(part.y.values, part[name].values)})
    return pd.DataFrame(rows)


def _fast(y, p):
    """ACC, MCC (p > 0.5) and AUROC (rank formula) without scikit-learn's input checks (bootstrap loop)."""
    pred = p > 0.5
    tp, tn = np.sum(pred & (y == 1)), np.sum(~pred & (y == 0))
    fp, fn = np.sum(pred & (y == 0)), np.sum(~pred & (y == 1))
    den = np.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    mcc = (tp * tn - fp * fn) / den if den else 0.0
    ranks = rankdata(p)
    n1 = y.sum()
    auc = (ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1))
    return np.array([(tp + tn) / len(y), mcc, auc])


def cluster_bootstrap_diff(oof, a, b, n=1000, seed=0):
    """95% intervals of metric(a) - metric(b) (ACC, MCC, AUROC) on the pooled out-of-fold predictions,
    resampling whole clusters (paired: the same resample for both predictors)."""
    rng = np.random.default_rng(seed)
    members = list(oof.groupby("cluster").indices.values())
    y, pa, pb = oof.y.values.astype(int), oof[a].values, oof[b].values
    diffs = []
    for _ in range(n):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        if 0 < y[idx].sum() < len(idx):
            diffs.append(_fast(y[idx], pa[idx]) - _fast(y[idx], pb[idx]))
    lo, hi = np.percentile(np.array(diffs), [2.5, 97.5], axis=0)
    return {k: [round(float(lo[i]), 4), round(float(hi[i]), 4)] for i, k in enumerate(("ACC", "MCC", "AUROC"))}


def summary(oof, predictors, reference="length"):
    """{predictor: {metric: [mean, sd]}} over folds, plus paired differences against ``reference``:
    {"<p>-minus-length": {metric: [mean, sd over folds], "bootstrap95": {...}}}."""
    table = fold_table(oof, predictors)
    out = {}
    for name in predictors:
        part = table[table.predictor == name]
        out[name] = {m: [round(float(part[m].mean()), 4), round(float(part[m].std(ddof=1)), 4)] for m in METRICS}
    ref = table[table.predictor == reference].set_index("fold")
    for name in predictors:
        if name in (reference, "majority"):
            continue
        mine = table[table.predictor == name].set_index("fold")
        diff = {m: [round(float((mine[m] - ref[m]).mean()), 4), round(float((mine[m] - ref[m]).std(ddof=1)), 4)]
                for m in ("ACC", "MCC", "AUROC")}
        diff["bootstrap95"] = cluster_bootstrap_diff(oof, name, reference)
        out[f"{name}-minus-{reference}"] = diff
    return out
