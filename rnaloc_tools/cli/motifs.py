"""rnaloc motifs: attention -> important regions, enriched motifs, MEME file, logos, known motifs."""

import os

import click

from .. import RNA_TYPES
from ..motifs import (
    BACKGROUNDS,
    CLASS_SOURCES,
    Outputs,
    Params,
    parse_threshold,
    run_motifs,
)
from ..motifs.stream import CHUNK_NT
from . import tool
from ._util import FiniteFloatRange, InputFile, OutputFile, OutputFolder, encoding_options

_path = OutputFile()


def _threshold(ctx, param, value):
    from ..errors import RnalocError

    try:
        parse_threshold(value)
    except RnalocError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _k_range(ctx, param, value):
    try:
        lo, _, hi = value.partition("-")
        lo, hi = int(lo), int(hi or lo)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give MIN-MAX, e.g. 5-15") from None
    if not 1 <= lo <= hi <= 15:
        raise click.BadParameter(f"{value!r}: lengths must satisfy 1 <= MIN <= MAX <= 15")
    return lo, hi


@tool("motifs")
@click.argument("inputs", metavar="ATTENTION.npz... | SEQUENCES", nargs=-1, type=InputFile())
@click.option("-s", "--sequences", type=InputFile(),
              help="The sequences the attention belongs to: FASTA or dataset TSV ('-' for stdin; .gz allowed).")
@click.option("-m", "--model", type=InputFile(allow_dash=False),
              help="Run this ONNX model on the sequences first, instead of reading attention files.")
@click.option("--rna-type", type=click.Choice(RNA_TYPES),
              help="Run the bundled model of this RNA type on the sequences first (or check --model's type).")
@click.option("-p", "--predictions", type=InputFile(), help="Predictions TSV from `rnaloc predict` (gives each sequence its class).")
@click.option("--class-from", type=click.Choice(CLASS_SOURCES), default="auto", show_default=True,
              help="Each sequence's class: the predicted class (--predictions), the dataset's label column, or none "
              "(one group). auto: prediction if --predictions is given, else label if the sequences have one, else none.")
@click.option("-o", "--outdir", type=OutputFolder(file_okay=False),
              help="Folder for motifs.tsv, motifs.meme, logos/, regions.tsv and known_motifs.tsv (created).")
@click.option("--motifs", "motifs_out", type=_path, help="motifs.tsv here instead ('-' for stdout).")
@click.option("--meme", type=_path, help="MEME motif file here instead.")
@click.option("--logos", type=OutputFolder(file_okay=False), help="Folder of sequence logos (PNG) here instead.")
@click.option("--regions", type=_path, help="Important regions TSV here instead.")
@click.option("--known", "known_out", type=_path, help="Known-motif table here instead.")
@click.option("--threshold", default="median", show_default=True, callback=_threshold,
              help="A nucleotide is important when its attention exceeds this, per sequence: median (the paper), "
              "mean, or a quantile such as 0.75.")
@click.option("--min-length", type=click.IntRange(min=1), default=5, show_default=True,
              help="Shortest run of important nucleotides kept as a candidate region.")
@click.option("-k", "--k", "k_range", default="5-15", show_default=True, callback=_k_range,
              help="k-mer lengths tested, MIN-MAX (at most 15).")
@click.option("--background", type=click.Choice(BACKGROUNDS), default="rest", show_default=True,
              help="rest: the unimportant runs of the same sequences (does the attention prefer the k-mer?); "
              "other-class: the candidate regions of the other class's sequences (which attended k-mers differ "
              "between the classes? this also finds k-mers that differ between the classes anywhere).")
@click.option("--min-support", type=click.IntRange(min=1), default=5, show_default=True,
              help="Test only k-mers present in at least this many sequence sets (foreground + background).")
@click.option("--alpha", type=FiniteFloatRange(0, 1, min_open=True), default=0.05, show_default=True,
              help="Benjamini-Hochberg q-value cut-off for significant k-mers.")
@click.option("--max-motifs", type=click.IntRange(min=1), default=10, show_default=True, help="Most motifs per class.")
@click.option("--max-shift", type=click.IntRange(min=0), default=2, show_default=True,
              help="Merging: how far k-mers may be shifted against the motif's seed.")
@click.option("--max-mismatches", type=click.IntRange(min=0), default=1, show_default=True,
              help="Merging: mismatches allowed when one k-mer contains the other.")
@click.option("--known-motifs", type=InputFile(allow_dash=False),
              help="TSV of motifs to check (columns name, iupac [, rna_type, class, reference]) instead of the "
              "built-in localization motifs.")
@click.option("--no-known", is_flag=True, help="Skip the known-motif check.")
@click.option("--provider", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True,
              help="With --model/--rna-type: ONNX Runtime provider.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="With --model/--rna-type: sequences per batch.")
@click.option("--chunk-nt", type=click.IntRange(min=1), default=CHUNK_NT, show_default=True,
              help="Nucleotides analysed at a time: memory is bounded by this, not by the input.")
@click.option("--tmp-dir", type=click.Path(exists=True, file_okay=False, writable=True),
              help="Folder for the temporary files (k-mer counts, the sequences' letters: up to ~20 bytes per "
              "nucleotide; default $TMPDIR).")
@encoding_options
def command(inputs, sequences, model, rna_type, predictions, class_from, outdir, motifs_out, meme, logos, regions, known_out,
            threshold, min_length, k_range, background, min_support, alpha, max_motifs, max_shift, max_mismatches,
            known_motifs, no_known, provider, batch_size, chunk_nt, tmp_dir, weights, long_policy, toks_per_batch, device, precision,
            threads):
    """Find the motifs a model attends to: from attention NPZ files that `rnaloc predict --attention` wrote
    (with --sequences), or by running a model (--model or --rna-type) on SEQUENCES.

    A nucleotide is important when its attention exceeds its sequence's median
    (RNALoc-LM's rule; see --threshold); runs of at least --min-length important
    nucleotides are candidate regions. k-mers (k = 5..15) found in the candidate
    regions of more sequences than in the background are tested per class
    (one-sided Fisher exact test on sequence counts, Benjamini-Hochberg over all
    k-mers tested) and similar significant k-mers are merged into motifs.
    Known localization motifs (lncRNA AGCCC, RCCUCCC; miRNA AGUGUU and variants;
    circRNA GAUGAA) are counted inside and outside important regions.

    \b
    Outputs (in --outdir, or each where its option says):
      motifs.tsv        motif, class, consensus, support, enrichment, p, q ...
      motifs.meme       MEME minimal motif format (Tomtom, FIMO; ALPHABET= ACGU)
      logos/<motif>.png sequence logos (information content)
      regions.tsv       important regions: id, start (0-based), end, class, mean attention
      known_motifs.tsv  known motifs in important vs other regions, with tests

    \b
    Examples:
      rnaloc predict seqs.fa --attention att.npz -o pred.tsv
      rnaloc motifs att.npz --sequences seqs.fa --predictions pred.tsv -o motifs/
      rnaloc motifs att.npz --sequences dataset.tsv --class-from label -o motifs/
      rnaloc motifs att.npz -s seqs.fa --class-from none --motifs - | less
      rnaloc motifs --rna-type miRNA seqs.fa -o motifs/

    \b
    Classes: with --predictions (or a model run here) each sequence belongs to
    its predicted class; with a dataset TSV, --class-from label uses its label.
    """
    direct = model is not None or rna_type is not None
    attention = list(inputs)
    if direct:
        if sequences is None:
            if len(inputs) != 1:
                raise click.UsageError("with --model/--rna-type give one SEQUENCES file (or --sequences)")
            sequences, attention = inputs[0], []
        elif inputs:
            raise click.UsageError("with --model/--rna-type the attention comes from the model: give no NPZ files")
    elif not inputs:
        raise click.UsageError("give attention NPZ files (with --sequences), or --model/--rna-type and SEQUENCES")
    elif sequences is None:
        raise click.UsageError("--sequences is required with attention NPZ files")
    if "-" in attention:
        raise click.BadParameter("attention NPZ files cannot be read from stdin", param_hint="ATTENTION")
    on_stdout = [name for name, path in (("--motifs", motifs_out), ("--meme", meme), ("--regions", regions),
                                         ("--known", known_out)) if path == "-"]
    if len(on_stdout) > 1:
        raise click.UsageError(f"{' and '.join(on_stdout)} would all go to stdout, mixed: send at most one there")
    if not any([outdir, motifs_out, meme, logos, regions, known_out]):
        motifs_out = "-"  # text output defaults to stdout
    if outdir:
        parent = os.path.dirname(os.path.abspath(outdir))
        if not os.path.isdir(parent):
            raise click.BadParameter(f"{outdir}: folder {parent} does not exist", param_hint="--outdir")
        outputs = Outputs.in_folder(outdir, motifs=motifs_out, meme=meme, logos=logos, regions=regions, known=known_out)
    else:
        outputs = Outputs(motifs=motifs_out, meme=meme, logos=logos, regions=regions, known=known_out)
    params = Params(
        threshold=threshold, min_length=min_length, k_min=k_range[0], k_max=k_range[1], background=background,
        min_support=min_support, alpha=alpha, max_motifs=max_motifs, max_shift=max_shift,
        max_mismatches=max_mismatches,
    )
    predict_options = {
        "provider": provider, "batch_size": batch_size, "weights": weights, "long_policy": long_policy,
        "toks_per_batch": toks_per_batch, "device": device, "precision": precision, "threads": threads,
    }
    run_motifs(
        attention, sequences, outputs, predictions=predictions, class_from=class_from, params=params,
        known_motifs_path=known_motifs, use_known=not no_known, model=model, rna_type=rna_type,
        predict_options=predict_options, chunk_nt=chunk_nt, tmp_dir=tmp_dir,
    )
