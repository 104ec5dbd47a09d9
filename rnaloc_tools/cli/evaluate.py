"""rnaloc evaluate: predictions TSV + labelled dataset TSV -> metrics TSV."""

import logging

import click

from ..fileio import check_writable
from ..formats import write_table
from ..model.metrics import evaluate_predictions
from . import tool
from ._util import InputFile, output_option, seed_option

log = logging.getLogger("rnaloc")


@tool("evaluate")
@click.argument("predictions", metavar="PREDICTIONS.tsv", type=InputFile())
@click.argument("dataset", metavar="DATASET.tsv", type=InputFile())
@output_option(required=False, help="Metrics TSV to write [default: stdout].")
@click.option("--bootstrap", "n_bootstrap", type=click.IntRange(10, 10000), default=1000, show_default=True,
              help="Bootstrap resamples for the 95% intervals (10 to 10000; each holds an index per row).")
@seed_option
def command(predictions, dataset, output, n_bootstrap, seed):
    """Score PREDICTIONS.tsv (from `rnaloc predict`) against the labels of DATASET.tsv.

    Joins on id; writes ACC, macro F1, macro precision, macro recall, MCC and
    AUROC with percentile bootstrap 95% intervals (seeded), the count and the
    confusion matrix (one row per cell).

    \b
    Example:
      rnaloc evaluate predictions.tsv test.tsv -o metrics.tsv
    """
    if predictions == "-" and dataset == "-":
        raise click.BadParameter("only one input can be stdin")
    check_writable(output)
    table, matrix, rna_type = evaluate_predictions(predictions, dataset, n_bootstrap=n_bootstrap, seed=seed)
    summary = table.set_index("metric")["value"]
    log.info("%s, %d sequences: accuracy %.3f, macro F1 %.3f, MCC %.3f, AUROC %.3f", rna_type, int(summary["n"]),
             summary["accuracy"], summary["macro_f1"], summary["mcc"], summary["auroc"])
    log.info("confusion matrix (rows true, columns predicted):\n%s", matrix.to_string())
    write_table(table, output or "-", "evaluate")
