"""How far to trust each call: confidence, applicability domain columns, model identity, the plot.

* ``confidence``: from the calibrated probability of the predicted class *p*:
  ``high`` when p >= 0.9, ``medium`` when 0.7 <= p < 0.9, ``low`` below 0.7
  (:data:`CONFIDENCE_CUTOFFS`). With a calibrated model about 9 in 10 ``high``
  calls are right. It says nothing about whether the sequence is one the model
  knows: read it together with ``in_domain``.
* ``in_domain`` / ``domain_note``: :mod:`rnaloc_tools.domain` against the domain the
  model carries (``unknown`` with the reason for a model without one).
* model identity: bundled or file, name, label source, version, first 12 hex
  digits of the file's sha256, for the ``#`` header lines and the stderr summary.
"""

import json
import os

import numpy as np
import pandas as pd

from .domain import METADATA_KEY, OUT, UNKNOWN, Domain

#: (lowest probability, label), best first; below the last cut-off: "low".
CONFIDENCE_CUTOFFS = ((0.9, "high"), (0.7, "medium"))
TRUST_COLUMNS = ("confidence", "in_domain", "domain_note")
_NO_DOMAIN = "not assessed: the model {name} carries no applicability domain (its export did not record one)"


def confidence(p):
    """high / medium / low for the probability of the predicted class."""
    for cut, label in CONFIDENCE_CUTOFFS:
        if p >= cut:
            return label
    return "low"


def model_domain(model):
    """(:class:`Domain` or None, reason when None) of an :class:`~rnaloc_tools.predict.OnnxModel`; cached."""
    cached = getattr(model, "_trust_domain", None)
    if cached is None:
        text = model.meta.get(METADATA_KEY)
        if not text:
            cached = (None, _NO_DOMAIN.format(name=model.name))
        else:
            try:
                cached = (Domain(text), "")
            except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
                cached = (None, f"the model {model.name}'s applicability domain is unreadable ({exc})")
        model._trust_domain = cached
    return cached


def annotate(frame, model, *, sequences=None, lengths=None, notes=None):
    """Add ``confidence``, ``in_domain`` and ``domain_note`` to a predictions frame of ``model``.

    ``sequences`` (one per row) assess length and composition; ``lengths`` alone the
    length only. ``notes`` (one per row, '' for none) are reasons found elsewhere
    (a forced RNA type): they put the row out of domain and lead its note.
    """
    probs = frame[[f"probability_{c}" for c in model.classes]].to_numpy(dtype=np.float64)
    frame = frame.copy()
    frame["confidence"] = [confidence(p) for p in probs.max(axis=1)]
    domain, reason = model_domain(model)
    n = len(frame)
    if domain is None:
        results = [(UNKNOWN, reason)] * n
    else:
        results = domain.assess(sequences=sequences, lengths=None if sequences is not None else lengths)
    states, texts = [], []
    for i, (state, text) in enumerate(results):
        extra = notes[i] if notes is not None else ""
        if extra:
            state = OUT
            text = f"{extra}; {text}" if text else extra
        states.append(state)
        texts.append(text)
    frame["in_domain"] = states
    frame["domain_note"] = texts
    return frame


def is_bundled(path):
    """Whether ``path`` is one of the models shipped inside the package (in its models folder)."""
    from . import bundled

    real = os.path.realpath(path)
    folders = {os.path.dirname(os.path.realpath(p)) for p in bundled.bundled_models().values()}
    if hasattr(bundled, "_folder"):
        folders.add(os.path.realpath(str(bundled._folder())))
    return os.path.dirname(real) in folders


def model_identity(model, label_source=None):
    """A dict naming the model: kind (bundled/file), name, rna_type, label_source, version, sha256."""
    meta = model.meta
    bundled = is_bundled(model.path)
    source = meta.get("label_source") or label_source
    if source is None and bundled and model.rna_type == "lncRNA":
        source = "fractionation" if "fractionation" in model.name else "rnalocate"
    version = meta.get("model_version") or f"rnaloc-tools {meta.get('tool_version', '?')}"
    return {"kind": "bundled" if bundled else "file", "name": model.name if bundled else model.path,
            "rna_type": model.rna_type, "label_source": source, "version": version, "sha256": model.sha256}


def describe(identity):
    """One line: 'bundled model lncRNA.onnx (lncRNA; label source rnalocate), version ..., sha256 ad20439db2bb'."""
    inside = identity["rna_type"] + (f"; label source {identity['label_source']}" if identity["label_source"] else "")
    kind = "bundled model" if identity["kind"] == "bundled" else "model file"
    return (f"{kind} {identity['name']} ({inside}), version {identity['version']}, "
            f"sha256 {identity['sha256'][:12]}")


def header_lines(identities):
    """The ``#model:`` header lines of a predictions TSV, one per model used."""
    return [f"#model: {describe(i)}" for i in identities]


def predicted_probability(frame):
    """(N,) probability of each row's predicted class."""
    p = np.full(len(frame), np.nan)
    for cls in set(frame["prediction"]):
        rows = (frame["prediction"] == cls).to_numpy()
        p[rows] = frame.loc[rows, f"probability_{cls}"].astype(float).to_numpy()
    return p


class Tally:
    """Counts of the trust columns over the chunks of a run (and, for the plot, each row's
    predicted-class probability, verdict and type: a few bytes per row)."""

    def __init__(self, keep_points=False):
        self.n = 0
        self.out = 0
        self.unknown = 0
        self.reasons = {}
        self.confidence = {"high": 0, "medium": 0, "low": 0}
        self.predictions = {}  # (rna_type, class) -> rows
        self.keep_points = keep_points
        self._points = []

    def add(self, frame):
        self.n += len(frame)
        self.out += int((frame["in_domain"] == OUT).sum())
        unknown = frame["in_domain"] == UNKNOWN
        self.unknown += int(unknown.sum())
        for reason in frame.loc[unknown, "domain_note"].unique()[:5]:
            if len(self.reasons) < 5:
                self.reasons.setdefault(reason, None)
        for label, count in frame["confidence"].value_counts().items():
            self.confidence[label] += int(count)
        for key, count in frame.groupby(["rna_type", "prediction"], sort=False).size().items():
            self.predictions[key] = self.predictions.get(key, 0) + int(count)
        if self.keep_points:
            self._points.append(pd.DataFrame({"rna_type": frame["rna_type"].astype("category"),
                                              "probability": predicted_probability(frame).astype(np.float32),
                                              "in_domain": frame["in_domain"].astype("category")}))

    def rows_of(self, rna_type):
        return sum(n for (t, _), n in self.predictions.items() if t == rna_type)

    def summary(self):
        """One line for stderr: out-of-domain and unassessed rows, confidence counts."""
        parts = [f"{self.out} of {self.n} sequences out of the model's applicability domain "
                 "(in_domain = no; see domain_note)"]
        if self.unknown:
            reasons = list(self.reasons)
            shown = reasons[0] + (" (and other reasons)" if len(reasons) > 1 else "")
            parts.append(f"{self.unknown} not assessed (in_domain = unknown: {shown})")
        parts.append("confidence " + ", ".join(f"{c} {n}" for c, n in self.confidence.items()))
        return "; ".join(parts)

    def points(self):
        if not self._points:
            return pd.DataFrame({"rna_type": [], "probability": [], "in_domain": []})
        return pd.concat(self._points, ignore_index=True)


def plot_probabilities(points, path):
    """PNG: the distribution of the predicted classes' probabilities, in/out of domain, one panel per rna_type.

    ``points``: a frame with ``rna_type``, ``probability`` (of the predicted class) and ``in_domain``
    (:meth:`Tally.points`)."""
    from matplotlib.ticker import MaxNLocator

    from .model.plots import _pyplot, save_png

    plt = _pyplot()
    p = points["probability"].to_numpy(dtype=np.float64)
    types = list(dict.fromkeys(points["rna_type"].astype(str))) or ["no sequences"]
    fig, axes = plt.subplots(1, len(types), figsize=(5.5 * len(types), 4), squeeze=False)
    bins = np.linspace(min(0.5, float(p.min()) if len(p) else 0.5), 1.0, 26)
    colours = {"yes": "#1f77b4", "no": "#d62728", "unknown": "#7f7f7f"}
    for ax, rna_type in zip(axes[0], types):
        rows = (points["rna_type"].astype(str) == rna_type).to_numpy()
        data, labels, cols = [], [], []
        for state, name in (("yes", "in domain"), ("no", "out of domain"), ("unknown", "domain unknown")):
            sel = rows & (points["in_domain"].astype(str) == state).to_numpy()
            if sel.any():
                data.append(p[sel])
                labels.append(f"{name} ({int(sel.sum())})")
                cols.append(colours[state])
        if data:
            ax.hist(data, bins=bins, stacked=True, color=cols, label=labels, edgecolor="white", linewidth=0.5)
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(0, 0.9))
        for cut, label in CONFIDENCE_CUTOFFS:
            ax.axvline(cut, color="black", linestyle=":", linewidth=1)
            ax.text(cut, 1.0, f" {label} >= {cut:g}", transform=ax.get_xaxis_transform(), va="top", fontsize="small")
        ax.set(xlabel="probability of the predicted class", ylabel="sequences",
               title=f"{rna_type}: {int(rows.sum())} predictions")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
