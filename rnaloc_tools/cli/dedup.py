"""rnaloc dedup: remove redundant sequences with CD-HIT-EST (adds a `cluster` column)."""

import logging

import click

from ..data.cdhit import DEFAULT_MIN_LENGTH, MIN_IDENTITY
from ..data.dedup import KEEP, dedup
from ..fileio import check_writable
from ..formats import read_dataset, write_table
from . import tool
from ._util import FiniteFloatRange, InputFile, OutputFile, input_argument, output_option, threads_option

log = logging.getLogger("rnaloc")


@tool("dedup")
@input_argument()
@output_option(required=False, help="Dataset TSV to write (default: stdout).")
@click.option("-c", "--identity", type=FiniteFloatRange(MIN_IDENTITY, 1.0), default=0.8, show_default=True,
              help="Sequence identity threshold (cd-hit-est -c); the word size follows CD-HIT's guide.")
@click.option("--keep", type=click.Choice(KEEP), default="representatives", show_default=True,
              help="Keep one representative per cluster, or all rows with their cluster.")
@threads_option
@click.option("--memory", "memory_mb", type=click.IntRange(min=0), default=0, show_default=True,
              help="cd-hit-est memory limit in MB (-M); 0 = no limit.")
@click.option("--strand", type=click.Choice(["both", "plus"]), default="both", show_default=True,
              help="Compare both strands (cd-hit-est's default) or the given strand only (-r 0).")
@click.option("--min-length", type=click.IntRange(min=1), default=DEFAULT_MIN_LENGTH, show_default=True,
              help="cd-hit-est -l: sequences this long or shorter are not clustered (each stays alone).")
@click.option("--clstr", type=InputFile(allow_dash=False),
              help="Use the clusters of this existing cd-hit-est .clstr (names = ids) instead of running it.")
@click.option("--save-clstr", type=OutputFile(allow_dash=False), help="Keep cd-hit-est's .clstr file here.")
def command(input, output, identity, keep, threads, memory_mb, strand, min_length, clstr, save_clstr):
    """Cluster the sequences of INPUT (dataset TSV; '-' for stdin) with cd-hit-est.

    Adds `cluster` (the id of the cluster's representative) and `cluster_size`
    columns, and keeps the representatives (default) or every row. Needs
    cd-hit-est on PATH (`apt-get install cd-hit` or `conda install -c bioconda cd-hit`).

    \b
    Examples:
      rnaloc dedup circ.tsv -o circ.nr80.tsv
      rnaloc curate export.tsv --rna-type circRNA | rnaloc dedup - --keep all -t 4 > circ.clusters.tsv
    """
    output = output or "-"
    check_writable(output)
    if save_clstr:
        check_writable(save_clstr)
    table = read_dataset(input, require=("id", "sequence"))
    df, stats, program = dedup(table, identity, keep=keep, threads=threads, memory_mb=memory_mb,
                               both_strands=strand == "both", min_length=min_length, clstr=clstr,
                               save_clstr=save_clstr)
    log.info("%s", stats.summary(keep, program))
    write_table(df, output, "dedup", table.header)
