"""rnaloc export-onnx: model checkpoint (.pt) -> checked ONNX model."""

import os

import click

from ..errors import RnalocError
from ..fileio import check_writable
from ..model.onnx_export import ATOL, export_onnx
from . import tool
from ._util import FiniteFloatRange, InputFile, force_option, output_option, set_threads


@tool("export-onnx")
@click.argument("checkpoint", metavar="MODEL.pt", type=InputFile(allow_dash=False))
@output_option(help="ONNX model to write.")
@click.option("--atol", type=FiniteFloatRange(min=0), default=ATOL, show_default=True,
              help="Largest |ONNX Runtime - PyTorch| accepted on the checked shapes.")
@click.option("-t", "--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPU threads for the PyTorch side of the comparison.")
@force_option
def command(checkpoint, output, atol, threads, force):
    """Export MODEL.pt (from `rnaloc train`) to ONNX with dynamic batch and length.

    The model's metadata (rna_type, classes, encoder, architecture) goes into the
    file; the graph passes onnx.checker and ONNX Runtime is compared with PyTorch
    on several batch shapes, lengths the export never saw included. A model that
    disagrees is not written.

    \b
    Example:
      rnaloc export-onnx lncRNA.pt -o lncRNA.onnx
    """
    if output == "-":
        raise click.BadParameter("an ONNX model cannot be written to stdout; give a file name", param_hint="--output")
    if os.path.exists(output) and not force:
        raise RnalocError(f"{output}: already exists (use --force to overwrite)")
    check_writable(output)
    set_threads(threads)
    export_onnx(checkpoint, output, atol=atol)
