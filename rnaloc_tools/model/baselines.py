"""Trivial baselines a localization model must beat: the majority class and sequence length.

A model is only worth its sequence features if it does better than predictors that
ignore the sequence. Two are scored wherever a model is scored (``rnaloc train``
on the same cross-validation folds, ``rnaloc evaluate --baseline-train``, the
bundled models' cross-validation and model cards):

``majority``
    Always the most frequent class of the training set; its probabilities are the
    training class frequencies (the same for every sequence, so its AUROC is 0.5
    and its Brier score is that of the prior).
``length``
    A logistic regression (scikit-learn, L2 with ``C=1``, unweighted maximum
    likelihood, so its probabilities are calibrated on the training set) on one
    feature: the natural log of the sequence length, standardised on the training
    set. On RNALocate's miRNAs this alone separates precursors (intracellular) from
    mature miRNAs (extracellular).

Both take class indices (0..C-1, in the order of ``classes``) or class names, and
return probabilities (N, C) in the order of ``classes``; an exact tie of
probabilities goes to the training set's most frequent class, as the models do.

    >>> length = LengthBaseline.fit([22, 23, 80, 95], ["extracellular"] * 2 + ["intracellular"] * 2,
    ...                             ("extracellular", "intracellular"))
    >>> length.predict([21, 90]).tolist()
    [0, 1]

No Click and no torch here.
"""

from dataclasses import dataclass

import numpy as np

from .metrics import predicted_class

#: The predictors of every metrics table that has baselines, in this order.
PREDICTORS = ("model", "majority", "length")


def encode_labels(labels, classes):
    """Class names or indices -> int indices into ``classes``; an unknown label is a ValueError."""
    labels = np.asarray(labels)
    classes = tuple(classes)
    if labels.dtype.kind in "iu":
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"class index out of range 0..{len(classes) - 1}")
        return labels.astype(np.int64)
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        return np.array([lookup[str(label)] for label in labels], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not one of {', '.join(classes)}") from None


def _counts(labels, classes):
    y = encode_labels(labels, classes)
    if len(y) == 0:
        raise ValueError("no training rows")
    counts = np.bincount(y, minlength=len(classes))
    present = [c for c, n in zip(classes, counts) if n]
    if len(present) < 2:
        raise ValueError(f"only one class ({', '.join(present)}) in the training labels: a baseline needs "
                         f"both {' and '.join(classes)}")
    return y, counts


def _log_lengths(lengths):
    x = np.asarray(lengths, dtype=float).reshape(-1)
    if len(x) and not (np.isfinite(x).all() and (x >= 1).all()):
        raise ValueError("sequence lengths must be finite and at least 1")
    return np.log(x)


@dataclass
class MajorityBaseline:
    """The most frequent training class for every sequence; probabilities = training class frequencies."""

    classes: tuple
    prior: np.ndarray  # (C,) training class frequencies

    @classmethod
    def fit(cls, labels, classes):
        classes = tuple(classes)
        _, counts = _counts(labels, classes)
        return cls(classes, counts / counts.sum())

    @property
    def tie_class(self):
        """Index of the most frequent training class (the first one on an exact tie)."""
        return int(np.argmax(self.prior))

    def predict_proba(self, n):
        """(n, C) probabilities; ``n`` is a count or anything with a length (e.g. the lengths)."""
        n = n if isinstance(n, (int, np.integer)) else len(n)
        return np.tile(self.prior, (n, 1))

    def predict(self, n):
        n = n if isinstance(n, (int, np.integer)) else len(n)
        return np.full(n, self.tie_class, dtype=np.int64)

    def to_dict(self):
        return {"predictor": "majority", "classes": list(self.classes),
                "prior": [round(float(p), 6) for p in self.prior]}


@dataclass
class LengthBaseline:
    """Logistic regression on the standardised log length of the sequence."""

    classes: tuple
    model: object  # the fitted sklearn LogisticRegression
    mean: float  # of log length on the training set
    scale: float  # standard deviation of log length on the training set (1 when constant)
    tie_class: int  # the most frequent training class

    @classmethod
    def fit(cls, lengths, labels, classes, *, class_weight=None):
        """Fit on training ``lengths`` (nt) and ``labels``; both classes must be present."""
        from sklearn.linear_model import LogisticRegression

        classes = tuple(classes)
        y, counts = _counts(labels, classes)
        x = _log_lengths(lengths)
        if len(x) != len(y):
            raise ValueError(f"{len(x)} lengths but {len(y)} labels")
        mean = float(x.mean())
        scale = float(x.std()) or 1.0
        model = LogisticRegression(C=1.0, class_weight=class_weight, solver="lbfgs")
        model.fit(((x - mean) / scale)[:, None], y)
        return cls(classes, model, mean, scale, int(np.argmax(counts)))

    def predict_proba(self, lengths):
        """(N, C) probabilities, columns in the order of ``classes``."""
        x = (_log_lengths(lengths) - self.mean) / self.scale
        probs = np.zeros((len(x), len(self.classes)))
        if len(x):
            probs[:, self.model.classes_] = self.model.predict_proba(x[:, None])
        return probs

    def predict(self, lengths):
        return predicted_class(self.predict_proba(lengths), self.tie_class)

    def to_dict(self):
        """The fitted parameters, JSON-able (for model cards and reports)."""
        return {
            "predictor": "length",
            "classes": list(self.classes),
            "feature": "natural log of the sequence length, standardised",
            "log_length_mean": round(self.mean, 6),
            "log_length_sd": round(self.scale, 6),
            "coef": [round(float(c), 6) for c in np.ravel(self.model.coef_)],
            "intercept": [round(float(c), 6) for c in np.ravel(self.model.intercept_)],
        }


def majority_proba(train_labels, classes, n):
    """(n, C) majority-baseline probabilities: the class frequencies of ``train_labels``."""
    return MajorityBaseline.fit(train_labels, classes).predict_proba(n)


def fit_baselines(train_lengths, train_labels, classes):
    """{"majority": MajorityBaseline, "length": LengthBaseline}, fitted on one training set."""
    return {
        "majority": MajorityBaseline.fit(train_labels, classes),
        "length": LengthBaseline.fit(train_lengths, train_labels, classes),
    }


def baseline_predictions(baselines, lengths):
    """{name: (probabilities (N, C), predicted class indices (N,))} of fitted baselines on ``lengths``."""
    out = {}
    for name, baseline in baselines.items():
        probs = baseline.predict_proba(lengths)
        out[name] = (probs, predicted_class(probs, baseline.tie_class))
    return out
