"""Figures of ``rnaloc evaluate --plots``: ROC, precision-recall and reliability diagram.

The model and the baselines are drawn on the same axes, so that a reader sees at
once what the model adds over sequence length and over always guessing the more
frequent class. The "positive" class of every figure is the RNA type's second
class (``cytoplasm`` for lncRNA and circRNA, ``intracellular`` for miRNA), as in
the AUROC of the metrics table. Matplotlib with the Agg back end (no display
needed); PNG files written atomically, without a timestamp (same input, same bytes).
"""

import numpy as np

from .metrics import ECE_BINS, reliability

#: The figures, by file name, in the order they are written.
PLOT_FILES = ("roc.png", "precision_recall.png", "reliability.png")

_STYLE = {
    "model": {"color": "C0", "linestyle": "-", "linewidth": 2.2, "label": "model"},
    "length": {"color": "C1", "linestyle": "-", "linewidth": 1.6, "label": "length only (logistic regression on log length)"},
    "majority": {"color": "0.45", "linestyle": "--", "linewidth": 1.4, "label": "majority class (training prior)"},
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path):
    """Write ``fig`` to ``path`` as PNG, atomically, without the Software/date metadata."""
    from ..fileio import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})


def _title(evaluation, what):
    n1 = int(evaluation.y_true.sum())
    n0 = len(evaluation.y_true) - n1
    c0, c1 = evaluation.classes
    return f"{evaluation.rna_type}: {what}\n{len(evaluation.y_true)} sequences ({n1} {c1}, {n0} {c0})"


def _finish(fig, ax, path, legend_loc, **legend):
    """Grid, legend, layout; write the PNG and free the figure."""
    ax.grid(alpha=0.3)
    ax.legend(loc=legend_loc, fontsize="small", **legend)
    fig.tight_layout()
    save_png(fig, path)
    _pyplot().close(fig)


def _order(evaluation):
    return [name for name in ("model", "length", "majority") if name in evaluation.predictors]


def plot_roc(evaluation, path):
    from sklearn.metrics import roc_curve

    plt = _pyplot()
    c0, c1 = evaluation.classes
    fig, ax = plt.subplots(figsize=(6, 5.6))
    for name in _order(evaluation):
        _, prob = evaluation.predictors[name]
        fpr, tpr, _ = roc_curve(evaluation.y_true, prob, pos_label=1)
        style = dict(_STYLE[name])
        style["label"] += f"  AUROC {evaluation.values[name]['auroc']:.3f}"
        ax.plot(fpr, tpr, **style)
    if "majority" not in evaluation.predictors:
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="chance")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal",
           xlabel=f"false positive rate ({c0} RNAs called {c1})",
           ylabel=f"true positive rate ({c1} RNAs called {c1})", title=_title(evaluation, "ROC curve"))
    _finish(fig, ax, path, "lower right")


def plot_precision_recall(evaluation, path):
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    c0, c1 = evaluation.classes
    prevalence = float(evaluation.y_true.mean())
    fig, ax = plt.subplots(figsize=(6, 5.6))
    for name in _order(evaluation):
        _, prob = evaluation.predictors[name]
        style = dict(_STYLE[name])
        if name == "majority":  # one score for every sequence: a single point, precision = prevalence
            ax.axhline(prevalence, **{**style, "label": style["label"] + f"  precision {prevalence:.3f}"})
            continue
        precision, recall, _ = precision_recall_curve(evaluation.y_true, prob, pos_label=1)
        ap = average_precision_score(evaluation.y_true, prob, pos_label=1)
        style["label"] += f"  AP {ap:.3f}"
        ax.step(recall, precision, where="post", **style)
    if "majority" not in evaluation.predictors:
        ax.axhline(prevalence, color="0.6", linestyle=":", linewidth=1, label=f"share of {c1} ({prevalence:.3f})")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.04), xlabel=f"recall (share of {c1} RNAs called {c1})",
           ylabel=f"precision (share of {c1} calls that are right)", title=_title(evaluation, "precision-recall"))
    _finish(fig, ax, path, "lower left")


def plot_reliability(evaluation, path, n_bins=ECE_BINS):
    plt = _pyplot()
    c0, c1 = evaluation.classes
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="perfectly calibrated")
    edges = np.arange(n_bins + 1) / n_bins
    total = len(evaluation.y_true)
    for name in _order(evaluation):
        _, prob = evaluation.predictors[name]
        table = reliability(evaluation.y_true, prob, n_bins)
        style = dict(_STYLE[name])
        v = evaluation.values[name]
        style["label"] += f"  ECE {v['ece']:.3f}, Brier {v['brier']:.3f}"
        ax.plot(table["predicted"], table["observed"], **{**style, "linewidth": style["linewidth"] * 0.6})
        # marker area grows with the sequences in the bin: a bin of two sequences should not look like one of 100
        ax.scatter(table["predicted"], table["observed"], s=12 + 220 * table["n"] / total, color=style["color"],
                   edgecolor="white", linewidth=0.6, zorder=3)
        if name != "majority":  # the majority baseline puts every sequence in one bin: nothing to show
            counts = np.histogram(prob, bins=edges)[0]
            hist.stairs(counts, edges, color=style["color"], linestyle=style["linestyle"], linewidth=style["linewidth"])
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), ylabel=f"observed fraction {c1}",
           title=_title(evaluation, "reliability diagram"))
    hist.set(xlabel=f"predicted probability of {c1} ({n_bins} equal-width bins)", ylabel="sequences per bin")
    hist.grid(alpha=0.3)
    _finish(fig, ax, path, "upper left", title="marker area: sequences in the bin", title_fontsize="small")


def write_plots(evaluation, folder):
    """Write :data:`PLOT_FILES` into ``folder`` (which must exist); returns their paths."""
    import os

    paths = [os.path.join(folder, name) for name in PLOT_FILES]
    for plot, path in zip((plot_roc, plot_precision_recall, plot_reliability), paths):
        plot(evaluation, path)
    return paths
