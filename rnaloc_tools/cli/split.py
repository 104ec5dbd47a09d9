"""rnaloc split: stratified, cluster-grouped train/test split and k folds."""

import logging

import click

from ..data.cdhit import DEFAULT_MIN_LENGTH, MIN_IDENTITY
from ..data.split import split
from ..fileio import check_writable
from ..formats import read_dataset, write_table
from . import tool
from ._util import FiniteFloatRange, InputFile, input_argument, output_option, seed_option, threads_option

log = logging.getLogger("rnaloc")


@tool("split")
@input_argument()
@output_option(required=False, help="Dataset TSV to write (default: stdout).")
@click.option("--test-size", type=FiniteFloatRange(0, 0.5), default=0.2, show_default=True,
              help="Test fraction (one of round(1/x) stratified cluster-grouped parts); 0 = no test rows.")
@click.option("-k", "--folds", type=click.IntRange(min=0), default=5, show_default=True,
              help="Cross-validation folds over the training rows (0 = no fold column).")
@seed_option
@click.option("--group-column", default="cluster", show_default=True,
              help="Rows sharing a value here stay together (rnaloc dedup --keep all writes it).")
@click.option("--against", type=InputFile(),
              help="FASTA or dataset TSV (e.g. a benchmark's test set): first drop rows within "
              "--identity of any of its sequences (cd-hit-est-2d, both directions).")
@click.option("-c", "--identity", type=FiniteFloatRange(MIN_IDENTITY, 1.0), default=0.8, show_default=True,
              help="Identity threshold for --against.")
@threads_option
@click.option("--memory", "memory_mb", type=click.IntRange(min=0), default=0, show_default=True,
              help="cd-hit-est-2d memory limit in MB (-M) for --against; 0 = no limit.")
@click.option("--min-length", type=click.IntRange(min=1), default=DEFAULT_MIN_LENGTH, show_default=True,
              help="cd-hit-est-2d -l for --against: sequences this long or shorter are not compared.")
def command(input, output, test_size, folds, seed, group_column, against, identity, threads, memory_mb,
            min_length):
    """Split INPUT (dataset TSV; '-' for stdin) into train/test and k folds.

    Adds `split` (train/test) and `fold` (1..k for training rows, `test` for
    test rows) columns; stratified by label, grouped by cluster, seeded.

    \b
    Examples:
      rnaloc split circ.clusters.tsv --seed 1 -o circ.split.tsv
      rnaloc split mine.tsv --against benchmark-test.fa --test-size 0 -o mine.clean.tsv
    """
    if folds == 1:
        raise click.BadParameter("cross-validation needs 2 or more folds (0 for none)", param_hint="--folds")
    output = output or "-"
    check_writable(output)
    table = read_dataset(input)
    df, stats = split(table, test_size=test_size, folds=folds, seed=seed, group_column=group_column,
                      against=against, identity=identity, threads=threads, memory_mb=memory_mb,
                      min_length=min_length)
    for key, counts in stats.counts.items():
        name = key[0] if key[0] == "test" or len(key) == 1 else f"{key[0]} fold {key[1]}"
        log.info("%s: %d rows (%s)", name, sum(counts.values()),
                 ", ".join(f"{c} {n}" for c, n in counts.items()))
    write_table(df, output, "split", table.header)
