"""rnaloc curate: an RNALocate-style export -> dataset TSV, with per-step counts."""

import logging
import sys

import click

from .. import RNA_TYPES
from ..data.curate import DEFAULT_MIN_CLASS_SIZE, DEFAULT_SPECIES, curate, default_mapping_table, write_report
from ..fileio import check_writable
from ..formats import write_table
from . import tool
from ._util import InputFile, OutputFile, input_argument, output_option

log = logging.getLogger("rnaloc")


def _show_mapping(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    default_mapping_table().to_csv(sys.stdout, sep="\t", index=False, lineterminator="\n")
    ctx.exit(0)


@tool("curate")
@input_argument("export")
@click.option("--rna-type", type=click.Choice(RNA_TYPES), required=True, help="RNA type to curate.")
@output_option(required=False, help="Dataset TSV to write (default: stdout).")
@click.option("--species", multiple=True, default=DEFAULT_SPECIES, show_default=True,
              help="Species to keep (repeat for several); 'all' keeps every species.")
@click.option("--sequences", type=InputFile(),
              help="FASTA or sequence table (Sequence column plus id/symbol/gene-id columns) giving "
              "sequences by gene symbol or entry id, for RNAs the export has none for.")
@click.option("--mapping", type=InputFile(allow_dash=False),
              help="TSV (term, class[, rna_type]) replacing the default term -> class mapping; "
              "class is one of the RNA type's classes or 'exclude'.")
@click.option("--show-mapping", is_flag=True, expose_value=False, is_eager=True, callback=_show_mapping,
              help="Print the default mapping as a TSV and exit.")
@click.option("--min-class-size", type=click.IntRange(min=0), default=DEFAULT_MIN_CLASS_SIZE, show_default=True,
              help="Drop classes with fewer RNAs than this.")
@click.option("--ignore-unknown", is_flag=True,
              help="Set entries with unknown localization terms aside (still listed) instead of failing.")
@click.option("--strict", is_flag=True,
              help="Also drop RNAs with entries in excluded compartments (e.g. cytosol, exosome).")
@click.option("--report", type=OutputFile(allow_dash=False),
              help="Write the per-step counts here: JSON if the name ends in .json, else TSV.")
def command(export, rna_type, output, species, sequences, mapping, min_class_size, ignore_unknown, strict, report):
    """Curate EXPORT (an RNALocate-style TSV; '-' for stdin) into a dataset TSV.

    Applies the paper's rules: species filter, localization terms mapped to
    the RNA type's two classes (cytosol excluded), entries merged by gene
    symbol, RNAs with a single class kept, RNAs without a sequence dropped,
    small classes dropped. Unknown terms stop the run and are listed.
    Per-step counts go to stderr (and to --report).

    \b
    Examples:
      rnaloc curate rnalocate-circrna-export.tsv --rna-type circRNA --report counts.json -o circ.tsv
      rnaloc curate rnalocate-v2-lncrna-entries.tsv --rna-type lncRNA --sequences lnc.fa -o lnc.tsv
      rnaloc curate --show-mapping > mapping.tsv
    """
    output = output or "-"
    if export == "-" and sequences == "-":
        raise click.BadParameter("the export and the sequences cannot both come from stdin: give one as a file",
                                 param_hint="--sequences")
    if report == "-" and output == "-":
        raise click.BadParameter("the report and the dataset cannot both go to stdout: give -o or a report file",
                                 param_hint="--report")
    check_writable(output)
    if report:
        check_writable(report)
    df, counts = curate(export, rna_type, species=species, mapping=mapping, sequences=sequences,
                        min_class_size=min_class_size, ignore_unknown=ignore_unknown, strict=strict)
    for line in counts.summary():
        log.info("%s", line)
    if report:
        write_report(counts, report)
    write_table(df, output, "curate")
