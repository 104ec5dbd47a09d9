"""Which model predicts which record: one model for all, or each row by its own ``rna_type``.

``rnaloc predict`` has two modes:

* **one model** (``--model`` or ``--rna-type``): every record goes to it. A dataset
  TSV row whose ``rna_type`` names another type is an error naming the record,
  unless ``force`` (``--force-type``): then it is predicted all the same and its
  ``domain_note`` says so (and ``in_domain`` is ``no``).
* **routed** (neither): a dataset TSV with an ``rna_type`` column; each row goes to
  the bundled model of its own type. FASTA (no types) is a usage error.

RNA-type names are matched case-insensitively (``mirna``, ``LNCRNA``).
"""

from . import CLASSES, RNA_TYPES
from .errors import InputError

_BY_LOWER = {t.lower(): t for t in RNA_TYPES}

#: The usage message for a FASTA (or a table without an rna_type column) without a model.
NO_TYPE_HINT = ("say which RNA type the sequences are: --rna-type lncRNA|miRNA|circRNA (the bundled model), "
                "--model MODEL.onnx, or a dataset TSV with an rna_type column (each row then goes to "
                "the bundled model of its own type)")


class NoRnaType(Exception):
    """Routing needs an ``rna_type`` per record and the input has none (a usage error)."""


def canonical_rna_type(name):
    """The RNA type spelt as the package spells it (``mirna`` -> ``miRNA``); None if unknown."""
    if name is None:
        return None
    return _BY_LOWER.get(str(name).strip().lower())


def record_rna_type(record):
    """The ``rna_type`` a record brings (dataset TSV), stripped; None for FASTA records or an empty cell."""
    value = record.extra.get("rna_type") if record.extra else None
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def force_note(given, model_type):
    return f"input rna_type {given} predicted with the {model_type} model (--force-type)"


def route_one_model(record, model_type, source, force=False):
    """One-model mode: '' when the record may go to the model, a domain note when forced; raises otherwise."""
    given = record_rna_type(record)
    if given is None or canonical_rna_type(given) == model_type:
        return ""
    if force:
        return force_note(given, model_type)
    raise InputError(source, f"rna_type {given!r} but the model predicts {model_type}: leave out --rna-type/--model "
                     "to predict each row with the bundled model of its own type, or give --force-type", record.id)


def route_by_type(record, source):
    """Routed mode: the canonical type of the record's own ``rna_type``; raises for a missing or unknown one."""
    if record.extra is None or "rna_type" not in record.extra:
        raise NoRnaType(NO_TYPE_HINT)
    given = record_rna_type(record)
    if given is None:
        raise InputError(source, "empty rna_type: each row needs one (or give --rna-type for all)", record.id)
    rna_type = canonical_rna_type(given)
    if rna_type is None:
        raise InputError(source, f"unknown rna_type {given!r} (known: {', '.join(RNA_TYPES)})", record.id)
    return rna_type


def class_columns(rna_types):
    """``probability_<class>`` columns of the classes of ``rna_types`` (package order, each once)."""
    present = set(rna_types)
    columns = []
    for rna_type in RNA_TYPES:
        if rna_type in present:
            for c in CLASSES[rna_type]:
                if f"probability_{c}" not in columns:
                    columns.append(f"probability_{c}")
    return columns
