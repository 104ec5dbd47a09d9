"""Reading and checking the inputs of ``rnaloc motifs``: attention, sequences, classes.

The attention NPZ is the ragged ``rnaloc-attention`` file that ``rnaloc predict
--attention`` writes (one float per nucleotide). Every attention record must
have a sequence of the same id and the same length, and every sequence must
have an attention record; anything else is an error that names the file and
the record. The one allowed difference: the encoder truncated long sequences,
or the model saw only its first positions; then only the positions the model
saw are analysed, and the count is logged (see :func:`_allowed_lengths`).
"""

import logging
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


#: Longest piece each encoder embeds, for attention files whose metadata do not say it.
_ENCODER_LIMITS = {"rna-fm": 1022}


def _allowed_lengths(seq_len, meta):
    """Attention lengths that fit a sequence of ``seq_len`` nt.

    The full length; or, when the encoder truncated long sequences, its limit.
    The limit comes from the metadata (``long_policy`` = ``truncate`` and
    ``max_length``), or, when those are absent, from the encoder named by
    ``model_encoder`` (RNA-FM: 1022 nt), since the policy is then unknown.
    """
    limit = meta.get("max_length")
    if limit and meta.get("long_policy") == "truncate":
        return {min(seq_len, int(limit))}
    allowed = {seq_len}
    if not limit and "long_policy" not in meta:
        enc_limit = _ENCODER_LIMITS.get(meta.get("model_encoder") or meta.get("encoder"))
        if enc_limit and seq_len > enc_limit:
            allowed.add(enc_limit)
    return allowed


def _seen_length(att, meta):
    """How many leading positions the model saw.

    A model trained with a maximum length sees only that many positions (and
    ``rnaloc predict`` writes zero attention beyond them): ``model_max_length``
    in the metadata says how many. Without it every position is analysed
    (zeros cannot be told apart from positions the model saw and gave no
    importance, as the k-mer models do).
    """
    return seen_positions(len(att), meta)


def seen_positions(n, meta):
    """How many of ``n`` attention values the model saw (see :func:`_seen_length`)."""
    limit = meta.get("model_max_length")
    if limit:
        return min(n, int(limit))
    return n


def _first_nonfinite(store):
    """Position (in ``store.ids`` order) of the first record holding NaN or infinite values, or None.

    Scanned in blocks of the memory-mapped values, the pages released after each block."""
    base = 0
    for shard in store.shards:
        values = shard.embeddings
        for start in range(0, len(values), _SCAN_ROWS):
            bad = ~np.isfinite(np.asarray(values[start : start + _SCAN_ROWS])).all(axis=1)
            store.release()
            if bad.any():
                row = start + int(np.argmax(bad))
                return base + int(np.searchsorted(shard.offsets, row, side="right")) - 1
        base += len(shard.ids)
    return None


_SCAN_ROWS = 1 << 22


def check_pairing(store, seq_ids, seq_length, seq_source, meta):
    """Check that attention records and sequences match by id and length; raise on the first problem.

    ``seq_ids``: the sequences' ids in file order; ``seq_length(id)``: a sequence's length (None when
    the file has no such id). Reads no attention beyond a scan for NaN; returns how many sequences
    the model saw only the first positions of (logged).
    """
    where = store.shards[0].path if len(store.shards) == 1 else ", ".join(s.path for s in store.shards)
    ids = store.ids
    for rid in ids:
        if seq_length(rid) is None:
            raise InputError(where, f"attention for a sequence that is not in {seq_source}", rid)
    for rid in seq_ids:
        if rid not in store:
            raise InputError(seq_source, f"sequence has no attention in {where}", rid)
    nonfinite = _first_nonfinite(store)
    shortened = 0
    for i, rid in enumerate(ids):
        if i == nonfinite:
            shard, _ = store._index[rid]
            raise InputError(store.shards[shard].path, "the embedding holds NaN or infinite values", rid)
        n_att, n_seq = store.length(rid), seq_length(rid)
        if n_att not in _allowed_lengths(n_seq, meta):
            raise InputError(
                where,
                f"attention has {n_att} values but the sequence in {seq_source} has {n_seq} nucleotides",
                rid,
            )
        if seen_positions(n_att, meta) < n_seq:
            shortened += 1
    if shortened:
        log.info(
            "%d sequence(s) are longer than the model saw (encoder or model length limit): "
            "only the positions it saw are analysed",
            shortened,
        )
    return shortened


def pair_attention(store, records, seq_source, meta=None):
    """Match attention records to sequences by id and length; yield (record, attention vector).

    The attention is cut to the positions the model saw (see :func:`_seen_length`);
    the sequence is cut to the attention's length by the caller.
    """
    meta = dict(store.meta, **(meta or {}))
    by_id = {}
    for rec in records:
        by_id[rec.id] = rec
    if not by_id:
        raise InputError(seq_source, "empty input: no sequences")
    check_pairing(store, by_id, lambda rid: len(by_id[rid].seq) if rid in by_id else None, seq_source, meta)
    for rid in store.ids:
        att = store.get(rid, np.float32)[:, 0]
        yield by_id[rid], att[: _seen_length(att, meta)]


def _predicted_classes(predictions, ids):
    """{id: predicted class} and the RNA types, from a predictions TSV path or DataFrame."""
    if isinstance(predictions, pd.DataFrame):
        df, source = predictions, "the predictions"
    else:
        table = read_table(predictions, require=("id", "prediction"))
        df, source = table.df, table.source
    if df.empty:
        raise InputError(source, "empty input: no predictions")
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise InputError(source, "duplicate id", dup.iloc[0])
    pred = dict(zip(df["id"], df["prediction"]))
    for rid in ids:
        if rid not in pred:
            raise InputError(source, "no prediction for this sequence", rid)
    rna_types = set(df["rna_type"]) if "rna_type" in df.columns else set()
    return pred, rna_types


def load_inputs(attention_paths, sequences_path, predictions_path=None, class_from="auto", records=None,
                extra_meta=None):
    """Read attention, sequences and classes; return a checked :class:`MotifInput`.

    ``class_from``: ``prediction`` (the ``prediction`` column of the predictions
    TSV), ``label`` (the ``label`` column of a dataset TSV), ``none`` (one group,
    ``all``), or ``auto`` (prediction when a predictions TSV is given, else label
    when the sequences have one, else none).
    """
    check_class_source(class_from)
    store = read_attention(attention_paths)
    seq_source = display_name(sequences_path)
    records = list(read_records(sequences_path)) if records is None else records
    pairs = list(pair_attention(store, records, seq_source, extra_meta))
    meta = dict(store.meta, **(extra_meta or {}))

    has_label = all("label" in rec.extra for rec, _ in pairs)
    seq_types = {str(rec.extra["rna_type"]) for rec, _ in pairs if rec.extra.get("rna_type")}
    labels = {rec.id: str(rec.extra["label"]) for rec, _ in pairs} if has_label else None
    rna_type, classes, class_from, cls_of = assign_classes(
        meta, [rec.id for rec, _ in pairs], labels, seq_types, predictions_path, class_from, seq_source)
    sequences = [Sequence(rec.id, rec.seq[: len(att)], att, cls_of[rec.id]) for rec, att in pairs]
    return MotifInput(sequences, rna_type, classes, class_from, meta)


def check_class_source(class_from):
    if class_from not in CLASS_SOURCES:
        raise RnalocError(f"unknown class source {class_from!r} (known: {', '.join(CLASS_SOURCES)})")


def assign_classes(meta, ids, labels, seq_types, predictions_path, class_from, seq_source):
    """Each sequence's class: (rna_type, classes, class source, {id: class}).

    ``ids``: the sequences, in the attention's order; ``labels``: {id: label} when every
    sequence has one, else None; ``seq_types``: the RNA types the sequences file names.
    """
    has_label = labels is not None
    if class_from == "auto":
        class_from = "prediction" if predictions_path is not None else ("label" if has_label else "none")
    if class_from == "prediction" and predictions_path is None:
        raise RnalocError("classes from predictions need a predictions TSV (--predictions)")
    if class_from == "label" and not has_label:
        raise InputError(seq_source, "no 'label' column: give a dataset TSV, or --predictions, or --class-from none")

    rna_type = meta.get("rna_type")
    if rna_type is None and len(seq_types) == 1:
        rna_type = seq_types.pop()
    elif rna_type is not None and seq_types and seq_types != {rna_type}:
        raise InputError(
            seq_source, f"rna_type {', '.join(sorted(seq_types))} does not match the attention's model ({rna_type})"
        )
    if class_from == "prediction":
        pred, pred_types = _predicted_classes(predictions_path, ids)
        if rna_type and pred_types and pred_types != {rna_type}:
            raise InputError(
                "the predictions" if isinstance(predictions_path, pd.DataFrame) else display_name(predictions_path),
                f"rna_type {', '.join(sorted(pred_types))} does not match the attention's model ({rna_type})",
            )
        cls_of = {rid: pred[rid] for rid in ids}
    elif class_from == "label":
        cls_of = labels
    else:
        cls_of = dict.fromkeys(ids, ALL)

    if class_from == "none":
        classes = (ALL,)
    elif meta.get("classes"):
        classes = tuple(meta["classes"])
    elif rna_type in CLASSES:
        classes = CLASSES[rna_type]
    else:
        classes = tuple(sorted(set(cls_of.values())))
    if class_from != "prediction":
        source = seq_source
    elif isinstance(predictions_path, pd.DataFrame):
        source = "the predictions"
    else:
        source = display_name(predictions_path)
    for rid, cls in cls_of.items():
        if cls not in classes:
            raise InputError(source, f"class {cls!r} is not one of the model's classes ({', '.join(classes)})", rid)

    return rna_type, classes, class_from, cls_of


def attention_label(paths):
    return ", ".join(os.path.basename(os.fspath(p)) for p in paths)
