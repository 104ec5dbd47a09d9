"""Reading and checking the inputs of ``rnaloc motifs``: attention, sequences, classes.

The attention NPZ is the ragged ``rnaloc-attention`` file that ``rnaloc predict
--attention`` writes (one float per nucleotide). Every attention record must
have a sequence of the same id and the same length, and every sequence must
have an attention record; anything else is an error that names the file and
the record. The one allowed difference: when the attention file says its model
truncated long sequences (``long_policy`` = ``truncate`` with ``max_length``),
a longer sequence is cut to the attention's length, and the count is logged.
"""

import logging
import os
from dataclasses import dataclass

import numpy as np

from .. import CLASSES
from ..errors import InputError, RnalocError
from ..fileio import display_name
from ..formats import ATTENTION_FORMAT, EmbeddingStore, read_records, read_table

log = logging.getLogger("rnaloc")

#: How each sequence gets its class (the foreground of the enrichment tests).
CLASS_SOURCES = ("auto", "prediction", "label", "none")
#: The class of every sequence when classes are not used.
ALL = "all"


@dataclass
class Sequence:
    """One sequence with its per-nucleotide attention and its class."""

    id: str
    seq: str
    attention: np.ndarray  # (L,) float32
    cls: str


@dataclass
class MotifInput:
    sequences: list
    rna_type: str  # may be None when nothing says
    classes: tuple  # class names in model order (or ("all",))
    class_source: str  # "prediction", "label" or "none"
    meta: dict


def read_attention(paths):
    """An :class:`EmbeddingStore` on attention NPZ shards, checked to hold one value per nucleotide."""
    store = EmbeddingStore(list(paths), format_name=ATTENTION_FORMAT)
    if store.dim != 1:
        raise InputError(store.shards[0].path, f"attention must have one value per nucleotide (dim 1), not {store.dim}")
    if len(store) == 0:
        raise InputError(store.shards[0].path, "empty input: no sequences in the attention file")
    return store


def _expected_length(seq_len, meta):
    if meta.get("long_policy") == "truncate" and meta.get("max_length"):
        return min(seq_len, int(meta["max_length"]))
    return seq_len


def pair_attention(store, records, seq_source):
    """Match attention records to sequences by id and length; yield (record, attention vector)."""
    by_id = {}
    for rec in records:
        by_id[rec.id] = rec
    if not by_id:
        raise InputError(seq_source, "empty input: no sequences")
    where = store.shards[0].path if len(store.shards) == 1 else ", ".join(s.path for s in store.shards)
    for rid in store.ids:
        if rid not in by_id:
            raise InputError(where, f"attention for a sequence that is not in {seq_source}", rid)
    ids = set(store.ids)
    for rid in by_id:
        if rid not in ids:
            raise InputError(seq_source, f"sequence has no attention in {where}", rid)
    truncated = 0
    for rid in store.ids:
        rec = by_id[rid]
        att = store.get(rid, np.float32)[:, 0]
        expected = _expected_length(len(rec.seq), store.meta)
        if len(att) != expected:
            raise InputError(
                where,
                f"attention has {len(att)} values but the sequence in {seq_source} has {len(rec.seq)} nucleotides",
                rid,
            )
        if not np.isfinite(att).all():
            raise InputError(where, "attention contains NaN or infinite values", rid)
        if expected < len(rec.seq):
            truncated += 1
        yield rec, att
    if truncated:
        log.info(
            "%d sequence(s) longer than the model's %s nt were truncated by the model: their tails are not analysed",
            truncated,
            store.meta.get("max_length"),
        )


def _predicted_classes(path, ids):
    table = read_table(path, require=("id", "prediction"))
    source = table.source
    if table.df.empty:
        raise InputError(source, "empty input: no predictions")
    dup = table.df["id"][table.df["id"].duplicated()]
    if len(dup):
        raise InputError(source, "duplicate id", dup.iloc[0])
    pred = dict(zip(table.df["id"], table.df["prediction"]))
    for rid in ids:
        if rid not in pred:
            raise InputError(source, "no prediction for this sequence", rid)
    rna_types = set(table.df["rna_type"]) if "rna_type" in table.df.columns else set()
    return pred, rna_types


def load_inputs(attention_paths, sequences_path, predictions_path=None, class_from="auto"):
    """Read attention, sequences and classes; return a checked :class:`MotifInput`.

    ``class_from``: ``prediction`` (the ``prediction`` column of the predictions
    TSV), ``label`` (the ``label`` column of a dataset TSV), ``none`` (one group,
    ``all``), or ``auto`` (prediction when a predictions TSV is given, else label
    when the sequences have one, else none).
    """
    if class_from not in CLASS_SOURCES:
        raise RnalocError(f"unknown class source {class_from!r} (known: {', '.join(CLASS_SOURCES)})")
    store = read_attention(attention_paths)
    seq_source = display_name(sequences_path)
    records = list(read_records(sequences_path))
    pairs = list(pair_attention(store, records, seq_source))
    meta = dict(store.meta)

    has_label = all("label" in rec.extra for rec, _ in pairs)
    if class_from == "auto":
        class_from = "prediction" if predictions_path else ("label" if has_label else "none")
    if class_from == "prediction" and not predictions_path:
        raise RnalocError("classes from predictions need a predictions TSV (--predictions)")
    if class_from == "label" and not has_label:
        raise InputError(seq_source, "no 'label' column: give a dataset TSV, or --predictions, or --class-from none")

    rna_type = meta.get("rna_type")
    seq_types = {str(rec.extra["rna_type"]) for rec, _ in pairs if rec.extra.get("rna_type")}
    if rna_type is None and len(seq_types) == 1:
        rna_type = seq_types.pop()
    elif rna_type is not None and seq_types and seq_types != {rna_type}:
        raise InputError(
            seq_source, f"rna_type {', '.join(sorted(seq_types))} does not match the attention's model ({rna_type})"
        )
    if class_from == "prediction":
        pred, pred_types = _predicted_classes(predictions_path, [rec.id for rec, _ in pairs])
        if rna_type and pred_types and pred_types != {rna_type}:
            raise InputError(
                display_name(predictions_path),
                f"rna_type {', '.join(sorted(pred_types))} does not match the attention's model ({rna_type})",
            )
        cls_of = {rid: pred[rid] for rid in (rec.id for rec, _ in pairs)}
    elif class_from == "label":
        cls_of = {rec.id: str(rec.extra["label"]) for rec, _ in pairs}
    else:
        cls_of = {rec.id: ALL for rec, _ in pairs}

    if class_from == "none":
        classes = (ALL,)
    elif meta.get("classes"):
        classes = tuple(meta["classes"])
    elif rna_type in CLASSES:
        classes = CLASSES[rna_type]
    else:
        classes = tuple(sorted(set(cls_of.values())))
    source = display_name(predictions_path) if class_from == "prediction" else seq_source
    for rid, cls in cls_of.items():
        if cls not in classes:
            raise InputError(source, f"class {cls!r} is not one of the model's classes ({', '.join(classes)})", rid)

    sequences = [Sequence(rec.id, rec.seq[: len(att)], att, cls_of[rec.id]) for rec, att in pairs]
    return MotifInput(sequences, rna_type, classes, class_from, meta)


def attention_label(paths):
    return ", ".join(os.path.basename(os.fspath(p)) for p in paths)
