"""rnaloc evaluate: predictions TSV + labelled dataset TSV -> metrics TSV (+ baselines, plots)."""

import logging
import os

import click

from ..errors import RnalocError
from ..fileio import check_writable
from ..formats import write_table
from ..model.evaluation import evaluate_predictions, summary_line
from ._util import output_option, seed_option

log = logging.getLogger("rnaloc")


def _check_plot_folder(folder):
    """The --plots folder: an existing writable folder, or one to make in an existing writable folder."""
    folder = os.path.abspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise RnalocError(f"{folder}: cannot write the plots: it is a file, not a folder")
    probe = folder if os.path.isdir(folder) else os.path.dirname(folder)
    if not os.path.isdir(probe):
        raise RnalocError(f"{folder}: cannot write the plots: folder {probe} does not exist")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RnalocError(f"{folder}: cannot write the plots: folder {probe} is not writable")


@click.command(name="evaluate")
@click.argument("predictions", metavar="PREDICTIONS.tsv", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("dataset", metavar="DATASET.tsv", type=click.Path(dir_okay=False, allow_dash=True))
@output_option(required=False, help="Metrics TSV to write [default: stdout].")
@click.option("--baseline-train", metavar="TRAIN.tsv", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Dataset TSV (same rna_type, with sequences, both classes) to fit the baselines on: the majority "
              "class and a logistic regression on log sequence length, scored beside the model on the same rows.")
@click.option("--plots", "plots", metavar="DIR", type=click.Path(), default=None,
              help="Folder (made if missing) for roc.png, precision_recall.png and reliability.png: the model and "
              "the baselines on the same axes.")
@click.option("--bootstrap", "n_bootstrap", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Bootstrap resamples for the 95% intervals.")
@seed_option
def command(predictions, dataset, output, baseline_train, plots, n_bootstrap, seed):
    """Score PREDICTIONS.tsv (from `rnaloc predict`) against the labels of DATASET.tsv.

    Joins on id; writes ACC, macro F1, macro precision, macro recall, MCC, AUROC,
    the Brier score and the expected calibration error (ECE: 10 equal-width bins
    of the predicted probability of the second class) with percentile bootstrap
    95% intervals (seeded), the count and the confusion matrix (one row per cell),
    under a `predictor` column.

    With --baseline-train, the majority-class and the length-only baselines are
    fitted on TRAIN.tsv and scored on the same rows and bootstrap resamples
    (predictor `majority`, `length`), and `model_minus_length` rows give the paired
    difference in accuracy, MCC and AUROC with its 95% interval: what the
    model's sequence features add over length alone.

    \b
    Examples:
      rnaloc evaluate predictions.tsv test.tsv -o metrics.tsv
      rnaloc evaluate predictions.tsv test.tsv --baseline-train train.tsv --plots plots/ -o metrics.tsv
    """
    if [predictions, dataset, baseline_train].count("-") > 1:
        raise click.BadParameter("only one input can be stdin")
    check_writable(output)
    if plots is not None:
        _check_plot_folder(plots)
    result = evaluate_predictions(predictions, dataset, baseline_train=baseline_train, n_bootstrap=n_bootstrap,
                                  seed=seed)
    log.info("%s", summary_line(result))
    log.info("confusion matrix of the model (rows true, columns predicted):\n%s", result.matrix.to_string())
    if plots is not None:
        from ..model.plots import write_plots

        made = not os.path.isdir(plots)
        os.makedirs(plots, exist_ok=True)
        try:
            write_plots(result, plots)
        except BaseException:
            if made:
                for name in os.listdir(plots):  # only what this run wrote: the folder was new
                    os.unlink(os.path.join(plots, name))
                os.rmdir(plots)
            raise
    write_table(result.table, output or "-", "evaluate")
