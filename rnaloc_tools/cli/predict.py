"""rnaloc predict: sequences or embeddings -> localization predictions (TSV) and attention (NPZ)."""

import click

from .. import RNA_TYPES
from ..bundled import LABEL_SOURCES
from ..embed import DEFAULT_CHUNK_NT
from ..predict import DEFAULT_BATCH_SIZE, PROVIDERS, predict_file
from ._util import encoding_options, input_argument, output_option


@click.command(name="predict")
@input_argument()
@click.option("-m", "--model", type=click.Path(dir_okay=False), default=None,
              help="ONNX model from `rnaloc export-onnx` (default: the bundled model of --rna-type).")
@click.option("--rna-type", type=click.Choice(RNA_TYPES), default=None,
              help="Use the bundled default model of this RNA type (or check that --model predicts it).")
@click.option("--label-source", type=click.Choice(LABEL_SOURCES), default=None,
              help="lncRNA only: the bundled model trained on RNALocate labels (curated literature; "
                   "default) or on cell-fractionation labels (lncATLAS, as in RNAlight).")
@output_option(required=False, help="Predictions TSV to write [default: stdout].")
@click.option("--attention", "attention_path", type=click.Path(dir_okay=False), default=None,
              help="Also write per-nucleotide attention (NPZ, for `rnaloc motifs`).")
@click.option("--provider", type=click.Choice(PROVIDERS), default="auto", show_default=True,
              help="ONNX Runtime provider (auto: CUDA when onnxruntime-gpu has it, else CPU).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True,
              help="Sequences per batch (sorted by length).")
@click.option("--chunk-nt", type=click.IntRange(min=1), default=DEFAULT_CHUNK_NT, show_default=True,
              help="Nucleotides read, embedded and predicted at a time (fewer for RNA-FM models): memory is "
              "bounded by this, not by the input's size.")
@encoding_options
def command(input, model, rna_type, label_source, output, attention_path, provider, batch_size, chunk_nt, weights,
            long_policy, toks_per_batch, device, precision, threads):
    """Predict the localization of the sequences in INPUT.

    INPUT is FASTA or a dataset TSV ('-' for stdin, .gz allowed), embedded on the
    fly with the model's own encoder, or an embeddings NPZ from `rnaloc embed`
    made with that encoder. Writes one row per sequence, in input order:
    id, rna_type, prediction, probability_<class>... A tie goes to the class that
    was more frequent in the model's training data. The input is streamed a chunk
    at a time (--chunk-nt), so a file of millions of sequences needs no more
    memory than a small one; the outputs appear, complete, at the end.

    \b
    Examples:
      rnaloc predict my.fa --rna-type lncRNA
      rnaloc predict my.fa --rna-type lncRNA --label-source fractionation
      rnaloc predict my.fa --model lncRNA.onnx -o predictions.tsv --attention attention.npz
      rnaloc predict my.npz --model lncRNA.onnx --provider cpu > predictions.tsv
    """
    if model is None and rna_type is None:
        raise click.UsageError("give --model MODEL.onnx, or --rna-type for the bundled model")
    if label_source is not None and model is not None:
        raise click.UsageError("--label-source chooses a bundled model; it does not apply with --model")
    if label_source is not None and rna_type not in (None, "lncRNA"):
        raise click.UsageError(f"--label-source applies to lncRNA only (the bundled {rna_type} model has one "
                               "label definition)")
    if attention_path == "-":
        raise click.BadParameter("an NPZ cannot be written to stdout; give a file name", param_hint="--attention")
    predict_file(input, output or "-", model=model, rna_type=rna_type, label_source=label_source,
                 attention_path=attention_path, provider=provider, batch_size=batch_size, max_nt=chunk_nt,
                 threads=threads, weights=weights, long_policy=long_policy, toks_per_batch=toks_per_batch,
                 device=device, precision=precision)
