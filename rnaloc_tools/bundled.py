"""The default models shipped inside the package: ``rnaloc_tools/models/<rna_type>.onnx``."""

import importlib.resources

from . import RNA_TYPES
from .errors import RnalocError


def bundled_models():
    """{rna_type: path} of the bundled models that are installed."""
    folder = importlib.resources.files("rnaloc_tools") / "models"
    found = {}
    for rna_type in RNA_TYPES:
        entry = folder / f"{rna_type}.onnx"
        if entry.is_file():
            found[rna_type] = str(entry)
    return found


def bundled_model(rna_type):
    """The path of the bundled ONNX model for ``rna_type``; a clear error when it is missing."""
    if rna_type not in RNA_TYPES:
        raise RnalocError(f"unknown rna_type {rna_type!r} (known: {', '.join(RNA_TYPES)})")
    found = bundled_models()
    if rna_type not in found:
        have = ", ".join(found) or "none"
        raise RnalocError(
            f"no bundled model for {rna_type} in this installation (rnaloc_tools/models/{rna_type}.onnx; "
            f"bundled: {have}): give a model with --model MODEL.onnx"
        )
    return found[rna_type]
