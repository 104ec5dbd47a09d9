"""Stratified, cluster-grouped train/test split and cross-validation folds.

Rows of one cluster (the ``cluster`` column ``rnaloc dedup --keep all`` writes)
always land on the same side and in the same fold (scikit-learn's
``StratifiedGroupKFold``), so near-identical sequences never sit on both sides.
``split``: ``train`` or ``test``; ``fold``: ``1`` .. ``k`` for training rows,
``test`` for test rows. The same input and seed give the same split.

``against``: rows of the input that cd-hit-est-2d finds at the identity
threshold with any sequence of another set (a benchmark's test set) are
dropped first, in both directions (cd-hit-est-2d only reports the shorter
partner of a pair), so the remaining rows can be trained on and evaluated
on that set fairly.
"""

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from ..errors import InputError, RnalocError
from ..fileio import display_name
from ..formats import read_records
from .cdhit import DEFAULT_MIN_LENGTH, check_names, hits_2d

log = logging.getLogger("rnaloc")

TEST_FOLD = "test"


@dataclass
class SplitStats:
    rows: int
    against_dropped: int = 0
    against_examples: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)  # (split, fold) -> {label: n}


def _stratified_group_folds(labels, groups, n_splits, seed, what):
    """Fold index (0 .. n_splits-1) of every row."""
    n_groups = len(set(groups))
    if n_groups < n_splits:
        raise RnalocError(f"cannot make {what}: only {n_groups} cluster(s), fewer than the {n_splits} needed")
    fold = np.empty(len(labels), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            for i, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
                fold[held] = i
        except ValueError as exc:
            raise RnalocError(f"cannot make {what}: {exc}") from None
    for w in caught:
        log.warning("%s: %s", what, w.message)
    return fold


def drop_similar(df, against, identity=0.8, *, threads=None, memory_mb=0, both_strands=True,
                 min_length=DEFAULT_MIN_LENGTH, source="the input"):
    """Drop rows of ``df`` within ``identity`` of any sequence in ``against`` (FASTA or dataset TSV)."""
    other = {r.id: r.seq for r in read_records(against)}
    mine = dict(zip(df["id"], df["sequence"]))
    check_names(other, display_name(against))
    check_names(mine, source)
    opts = dict(threads=threads, memory_mb=memory_mb, both_strands=both_strands, min_length=min_length)
    near = hits_2d(other, mine, identity, **opts)  # rows no longer than their partner
    near.update({mine_id: o for o, mine_id in hits_2d(mine, other, identity, **opts).items()})  # longer rows
    drop = df["id"].isin(near)
    examples = [f"{rid} ~ {near[rid]}" for rid in df.loc[drop, "id"].head(3)]
    if drop.any():
        log.info("--against %s: dropped %d row(s) within %.0f%% identity of it, e.g. %s",
                 display_name(against), drop.sum(), identity * 100, "; ".join(examples))
    else:
        log.info("--against %s: no row within %.0f%% identity of it", display_name(against), identity * 100)
    return df[~drop].copy(), int(drop.sum()), examples


def split(table, *, test_size=0.2, folds=5, seed=0, group_column="cluster", against=None, identity=0.8,
          threads=None, memory_mb=0, both_strands=True, min_length=DEFAULT_MIN_LENGTH):
    """Add ``split`` and ``fold`` columns to a dataset table; returns ``(df, stats)``.

    ``test_size``: the test fraction, realised as one of ``round(1 / test_size)``
    stratified group folds (0 = no test rows). ``folds``: cross-validation folds
    over the training rows (0 = none, no ``fold`` column).
    """
    df = table.df.copy()
    stats = SplitStats(rows=len(df))
    if against is not None:
        df, stats.against_dropped, stats.against_examples = drop_similar(
            df, against, identity, threads=threads, memory_mb=memory_mb, both_strands=both_strands,
            min_length=min_length, source=table.source)
        if df.empty:
            raise InputError(table.source, f"nothing left: every row is within {identity:.0%} identity of {against}")
    if group_column in df.columns:
        groups = df[group_column].to_numpy()
    else:
        log.warning("no %r column: every row is its own group (run `rnaloc dedup --keep all` first "
                    "to keep similar sequences together)", group_column)
        groups = df["id"].to_numpy()
    labels = df["label"].to_numpy()

    is_test = np.zeros(len(df), dtype=bool)
    if test_size > 0:
        n_splits = round(1 / test_size)
        if n_splits < 2:
            raise RnalocError(f"--test-size {test_size} is too large: at most 0.5")
        is_test = _stratified_group_folds(labels, groups, n_splits, seed, "the train/test split") == 0
    df["split"] = np.where(is_test, "test", "train")
    if folds:
        train = ~is_test
        fold = _stratified_group_folds(labels[train], groups[train], folds, seed, f"{folds} folds")
        column = np.full(len(df), TEST_FOLD, dtype=object)
        column[train] = [str(f + 1) for f in fold]
        df["fold"] = column
    by = ["split", "fold"] if folds else ["split"]
    for key, part in df.groupby(by, sort=True):
        stats.counts[key if isinstance(key, tuple) else (key,)] = part["label"].value_counts().sort_index().to_dict()
    return df, stats
