"""rnaloc evaluate: predictions TSV + labelled dataset TSV -> metrics TSV (+ baselines, plots)."""

import logging

import click

from ..fileio import check_writable, make_output_dir
from ..formats import write_table
from ..model.evaluation import evaluate_predictions, summary_line
from . import tool
from ._util import InputFile, OutputFolder, output_option, seed_option

log = logging.getLogger("rnaloc")


@tool("evaluate")
@click.argument("predictions", metavar="PREDICTIONS.tsv", type=InputFile())
@click.argument("dataset", metavar="DATASET.tsv", type=InputFile())
@output_option(required=False, help="Metrics TSV to write [default: stdout].")
@click.option("--baseline-train", metavar="TRAIN.tsv", type=InputFile(), default=None,
              help="Dataset TSV (same rna_type, with sequences, both classes) to fit the baselines on: the majority "
              "class and a logistic regression on log sequence length, scored beside the model on the same rows.")
@click.option("--plots", "plots", metavar="DIR", type=OutputFolder(), default=None,
              help="Folder (made if missing) for roc.png, precision_recall.png and reliability.png: the model and "
              "the baselines on the same axes.")
@click.option("--bootstrap", "n_bootstrap", type=click.IntRange(10, 10000), default=1000, show_default=True,
              help="Bootstrap resamples for the 95% intervals (10 to 10000; each holds an index per row).")
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
    result = evaluate_predictions(predictions, dataset, baseline_train=baseline_train, n_bootstrap=n_bootstrap,
                                  seed=seed)
    log.info("%s", summary_line(result))
    log.info("confusion matrix of the model (rows true, columns predicted):\n%s", result.matrix.to_string())
    if plots is not None:
        from ..model.plots import write_plots

        make_output_dir(plots)  # the plots are committed with the table; a failure removes the new folder
        write_plots(result, plots)
    write_table(result.table, output or "-", "evaluate")
