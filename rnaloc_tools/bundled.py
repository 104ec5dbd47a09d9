"""The default models shipped inside the package: ``rnaloc_tools/models/<name>.onnx``.

One model per RNA type, trained on RNALocate-derived labels (``label_source`` "rnalocate"),
and for lncRNA a second one trained on cell-fractionation labels (lncATLAS, as used by
RNAlight; ``label_source`` "fractionation"): ``lncRNA-fractionation.onnx``. Each has a
model card beside it (``<name>.json``).
"""

import importlib.resources

from . import RNA_TYPES
from .errors import RnalocError

#: the label definitions a bundled model can be trained on; the first is the default
LABEL_SOURCES = ("rnalocate", "fractionation")
#: (rna_type, label_source) -> model name, for the label sources other than the default
_OTHER = {("lncRNA", "fractionation"): "lncRNA-fractionation"}


def _folder():
    return importlib.resources.files("rnaloc_tools") / "models"


def model_name(rna_type, label_source="rnalocate"):
    """The bundled model's name (file stem) for ``rna_type`` and ``label_source``; an error for a
    combination that has none (fractionation labels exist for lncRNA only)."""
    if rna_type not in RNA_TYPES:
        raise RnalocError(f"unknown rna_type {rna_type!r} (known: {', '.join(RNA_TYPES)})")
    if label_source not in LABEL_SOURCES:
        raise RnalocError(f"unknown label source {label_source!r} (known: {', '.join(LABEL_SOURCES)})")
    if label_source == LABEL_SOURCES[0]:
        return rna_type
    if (rna_type, label_source) not in _OTHER:
        have = ", ".join(sorted({t for t, s in _OTHER if s == label_source}))
        raise RnalocError(f"there is no bundled {rna_type} model for {label_source} labels "
                          f"(label source {label_source} exists for: {have})")
    return _OTHER[(rna_type, label_source)]


def bundled_models():
    """{rna_type: path} of the installed bundled models for the default label source (RNALocate)."""
    found = {}
    for rna_type in RNA_TYPES:
        entry = _folder() / f"{rna_type}.onnx"
        if entry.is_file():
            found[rna_type] = str(entry)
    return found


def bundled_model_path(rna_type, label_source="rnalocate"):
    """The path of the bundled ONNX model for ``rna_type`` trained on ``label_source`` labels;
    a clear error when there is none or it is not installed."""
    name = model_name(rna_type, label_source)
    entry = _folder() / f"{name}.onnx"
    if not entry.is_file():
        have = ", ".join(sorted(p.name for p in _folder().iterdir() if p.name.endswith(".onnx"))) or "none"
        raise RnalocError(
            f"no bundled model {name} in this installation (rnaloc_tools/models/{name}.onnx; "
            f"bundled: {have}): give a model with --model MODEL.onnx"
        )
    return str(entry)


def bundled_model(rna_type):
    """The bundled model of ``rna_type`` for the default label source (see :func:`bundled_model_path`)."""
    return bundled_model_path(rna_type)
