"""rnaloc embed: sequences -> per-nucleotide embeddings (ragged NPZ)."""

import click

from ..embed import embed_records
from ..encoders import get_encoder
from ..fileio import check_writable
from ..formats import read_records
from . import tool
from ._util import encoder_options, input_argument, output_option


@tool("embed")
@input_argument()
@output_option(help="Embeddings NPZ to write (ragged, float16).")
@encoder_options
def command(input, output, encoder, weights, long_policy, toks_per_batch, device, precision, threads):
    """Embed the sequences of INPUT (FASTA or dataset TSV; '-' for stdin; .gz allowed).

    Writes one (length x D) float16 matrix per sequence, in input order, with
    the encoder's metadata, atomically.

    \b
    Examples:
      rnaloc embed seqs.fa --encoder one-hot -o seqs.npz
      rnaloc embed seqs.fa --weights RNA-FM_pretrained.pth --long windows -o seqs.npz
      zcat seqs.fa.gz | rnaloc embed - --encoder one-hot -o seqs.npz
    """
    if output == "-":
        raise click.BadParameter("an NPZ cannot be written to stdout; give a file name", param_hint="--output")
    check_writable(output)
    enc = get_encoder(encoder, weights=weights, device=device, precision=precision, threads=threads)
    embed_records(read_records(input), enc, output, long=long_policy, toks_per_batch=toks_per_batch)
