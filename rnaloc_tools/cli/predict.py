"""rnaloc predict: sequences or embeddings -> localization predictions (TSV) and attention (NPZ)."""

import click

from .. import RNA_TYPES
from ..bundled import LABEL_SOURCES
from ..embed import DEFAULT_CHUNK_NT
from ..predict import DEFAULT_BATCH_SIZE, PROVIDERS, predict_file
from ..routing import NoRnaType, canonical_rna_type
from . import tool
from ._util import InputFile, OutputFile, encoding_options, input_argument, output_option


def _rna_type(ctx, param, value):
    """--rna-type in any case (mirna, LNCRNA) -> the package's spelling."""
    if value is None:
        return None
    canonical = canonical_rna_type(value)
    if canonical is None:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(RNA_TYPES)} (any case)")
    return canonical


@tool("predict")
@input_argument()
@click.option("-m", "--model", type=InputFile(allow_dash=False), default=None,
              help="ONNX model from `rnaloc export-onnx` (default: the bundled model of --rna-type).")
@click.option("--rna-type", default=None, callback=_rna_type, metavar="[" + "|".join(RNA_TYPES) + "]",
              help="Use the bundled default model of this RNA type (or check that --model predicts it). "
              "Without --rna-type and --model, each row of a dataset TSV goes to the bundled model of its "
              "own rna_type.")
@click.option("--label-source", type=click.Choice(LABEL_SOURCES), default=None,
              help="lncRNA only: the bundled model trained on RNALocate labels (curated literature; "
                   "default) or on cell-fractionation labels (lncATLAS, as in RNAlight).")
@click.option("--force-type", is_flag=True,
              help="Predict dataset TSV rows of another rna_type with the chosen model anyway "
              "(flagged in_domain = no, with a note) instead of stopping.")
@output_option(required=False, help="Predictions TSV to write [default: stdout].")
@click.option("--no-header", is_flag=True,
              help="Write no '#' lines (provenance, model identity) before the column names.")
@click.option("--all-columns", is_flag=True,
              help="Without --rna-type and --model: write the probability columns of every RNA type "
              "(empty where a class does not apply), not only of the types in INPUT, so that the tables of "
              "several inputs (e.g. the parts of a split file) have the same columns.")
@click.option("--plot", "plot_path", type=OutputFile(allow_dash=False), default=None,
              help="Also draw the predicted classes' probabilities, in and out of the applicability domain (PNG).")
@click.option("--attention", "attention_path", type=OutputFile(), default=None,
              help="Also write per-nucleotide attention (NPZ, for `rnaloc motifs`).")
@click.option("--provider", type=click.Choice(PROVIDERS), default="auto", show_default=True,
              help="ONNX Runtime provider (auto: CUDA when onnxruntime-gpu has it, else CPU).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="Sequences per batch (sorted by length).")
@click.option("--chunk-nt", type=click.IntRange(min=1), default=DEFAULT_CHUNK_NT, show_default=True,
              help="Nucleotides read, embedded and predicted at a time (fewer for RNA-FM models): memory is "
              "bounded by this, not by the input's size.")
@encoding_options
def command(input, model, rna_type, label_source, force_type, output, no_header, all_columns, plot_path, attention_path, provider, batch_size,
            chunk_nt, weights, long_policy, toks_per_batch, device, precision, threads):
    """Predict the localization of the sequences in INPUT.

    INPUT is FASTA or a dataset TSV ('-' for stdin, .gz allowed), embedded on the
    fly with the model's own encoder, or an embeddings NPZ from `rnaloc embed`
    made with that encoder. Writes one row per sequence, in input order:
    id, rna_type, prediction, probability_<class>..., confidence (high: p >= 0.9,
    medium: p >= 0.7, low), in_domain (yes/no/unknown: is the sequence like the
    model's training sequences in length and composition?) and domain_note (why
    not). A tie goes to the class that was more frequent in the model's training
    data. The '#' lines name the model and its sha256; read the table with
    pandas.read_csv(path, sep="\\t", comment="#"). The input is streamed a chunk
    at a time (--chunk-nt), so a file of millions of sequences needs no more
    memory than a small one; the outputs appear, complete, at the end.

    \b
    Examples:
      rnaloc predict my.fa --rna-type lncRNA
      rnaloc predict my.fa --rna-type lncRNA --label-source fractionation
      rnaloc predict mixed-dataset.tsv -o predictions.tsv      # each row by its rna_type
      rnaloc predict my.fa --model lncRNA.onnx -o predictions.tsv --attention attention.npz --plot p.png
      rnaloc predict my.npz --model lncRNA.onnx --provider cpu > predictions.tsv
    """
    if attention_path == "-":
        raise click.BadParameter("an NPZ cannot be written to stdout; give a file name", param_hint="--attention")
    if plot_path == "-":
        raise click.BadParameter("a PNG cannot be written to stdout; give a file name", param_hint="--plot")
    if model is None and rna_type is None and attention_path is not None:
        raise click.UsageError("--attention needs one model: give --rna-type or --model")
    if label_source is not None and model is not None:
        raise click.UsageError("--label-source chooses a bundled model; it does not apply with --model")
    if label_source is not None and rna_type not in (None, "lncRNA"):
        raise click.UsageError(f"--label-source applies to lncRNA only (the bundled {rna_type} model has one "
                               "label definition)")
    if all_columns and (model is not None or rna_type is not None):
        raise click.UsageError("--all-columns applies to a table routed by its rna_type column (no --rna-type, "
                               "no --model): one model writes its own classes' columns")
    if force_type and model is None and rna_type is None:
        raise click.UsageError("--force-type needs a model to force: give --rna-type or --model")
    try:
        predict_file(input, output or "-", model=model, rna_type=rna_type, label_source=label_source,
                     force_type=force_type,
                     header=not no_header, all_columns=all_columns, plot_path=plot_path, attention_path=attention_path, provider=provider,
                     batch_size=batch_size, max_nt=chunk_nt, threads=threads, weights=weights, long_policy=long_policy,
                     toks_per_batch=toks_per_batch, device=device, precision=precision)
    except NoRnaType as exc:
        raise click.UsageError(str(exc)) from None
