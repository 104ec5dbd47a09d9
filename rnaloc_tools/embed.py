"""Embedding a sequence set into a ragged NPZ (the library behind ``rnaloc embed``).

Sequences are read in chunks (a budget of nucleotides, smaller for a wide
encoder); inside a chunk they are sorted by length and packed into batches by a
token budget (esm ``extract.py``), and the chunk's results are streamed to the
NPZ writer in input order, so memory is bounded by one chunk, not by the input.
``rnaloc predict`` embeds the same chunks with :func:`embed_chunk`. An encoder
may pad a batch to a wider width than its longest piece
(:meth:`~rnaloc_tools.encoders.Encoder.batch_width`: RNA-FM rounds it up to a
multiple of 64, so that torch's CPU memory does not grow with every new batch
shape); the token budget counts that width.

Sequences longer than the encoder's limit follow an explicit policy:
``truncate`` keeps the first ``max_len`` nucleotides (as the paper did) and
``windows`` embeds overlapping windows of at most ``max_len`` nucleotides that
cover the whole sequence and averages the overlaps, giving one row per
nucleotide. Either way the count is logged; nothing is dropped silently.
"""

import logging
from dataclasses import dataclass

import numpy as np

from .formats import EmbeddingWriter
from .progress import progress

log = logging.getLogger("rnaloc")

LONG_POLICIES = ("truncate", "windows")
#: Token budget of one batch when neither the caller nor the encoder names one.
DEFAULT_TOKS_PER_BATCH = 16384


def window_spans(length, size, overlap):
    """(start, end) windows of at most ``size`` covering ``range(length)``, overlapping by >= ``overlap``."""
    if length <= size:
        return [(0, length)]
    stride = max(1, size - overlap)
    starts = list(range(0, length - size, stride)) + [length - size]
    return [(s, s + size) for s in starts]


def merge_windows(length, parts):
    """Average overlapping window embeddings [(start, end, matrix)] into one (length, D) matrix."""
    dim = parts[0][2].shape[1]
    total = np.zeros((length, dim), dtype=np.float64)
    count = np.zeros((length, 1), dtype=np.float64)
    for start, end, mat in parts:
        total[start:end] += mat
        count[start:end] += 1
    return (total / count).astype(np.float32)


#: Largest share of padding in a batch: a piece that would take a batch past it starts a new one.
MAX_PADDING = 0.125


def pack_batches(pieces, toks_per_batch, extra_tokens=0, max_padding=MAX_PADDING, batch_width=None):
    """Group pieces (objects with ``.seq``) into batches of at most ``toks_per_batch`` padded tokens.

    Pieces are sorted by length, longest first, and a batch is closed when the
    next piece would exceed the budget or make padding more than ``max_padding``
    of the batch's tokens: in a large file neighbouring lengths are close and
    batches fill the budget, but in a small or sparse one (a 946-nt sequence
    next to a 506-nt one) padded positions would otherwise cost as much as real
    ones. A piece longer than the budget gets a batch of its own.

    ``batch_width`` (an encoder's :meth:`~rnaloc_tools.encoders.Encoder.batch_width`):
    the width the encoder pads a batch to, given its longest piece; the budget
    counts that width, while the padding limit counts the longest piece only (the
    encoder's rounding is a bounded, separate cost, and counting it would split
    every batch of short pieces).
    """
    batch_width = batch_width or (lambda width: width)
    batch, width, real = [], 0, 0
    for piece in sorted(pieces, key=lambda p: len(p.seq), reverse=True):
        need = len(piece.seq) + extra_tokens
        if batch:
            padded = max(width, need) * (len(batch) + 1)
            if batch_width(max(width, need)) * (len(batch) + 1) > toks_per_batch or \
                    padded - (real + need) > max_padding * padded:
                yield batch
                batch, width, real = [], 0, 0
        batch.append(piece)
        width = max(width, need)
        real += need
    if batch:
        yield batch


@dataclass
class _Piece:
    rid: str
    start: int
    end: int
    seq: str


@dataclass
class EmbedStats:
    sequences: int = 0
    nucleotides: int = 0
    truncated: int = 0
    windowed: int = 0


def long_policy_name(encoder, policy, overlap):
    if encoder.max_len is None:
        return "none"
    return "truncate" if policy == "truncate" else f"windows:{encoder.max_len}/{overlap}"


def resolve_toks_per_batch(encoder, toks_per_batch=None):
    """The token budget: the caller's, else the encoder's default for its device, else 16384."""
    if toks_per_batch:
        return int(toks_per_batch)
    return int(getattr(encoder, "default_toks_per_batch", None) or DEFAULT_TOKS_PER_BATCH)


#: Nucleotides per chunk of records at most (a longer record is a chunk of its own).
DEFAULT_CHUNK_NT = 2_000_000
#: Records per chunk at most (bounds the per-record overhead of a chunk of very short sequences).
DEFAULT_CHUNK_RECORDS = 65536
#: Bytes of float32 embeddings one chunk may hold: caps the chunk of a wide encoder (RNA-FM, 640-d).
CHUNK_BYTES = 256 << 20


def chunk_nt(encoder, max_nt=None):
    """Nucleotides per chunk for ``encoder``: ``max_nt`` (default 2M), fewer for a wide encoder."""
    return max(1, min(max_nt or DEFAULT_CHUNK_NT, CHUNK_BYTES // (4 * int(encoder.dim))))


def chunk_records(records, max_nt=DEFAULT_CHUNK_NT, max_records=DEFAULT_CHUNK_RECORDS):
    """Group an iterable of records into lists in input order, each of at most ``max_nt``
    nucleotides and ``max_records`` records (a record longer than ``max_nt`` alone).

    Only one chunk is held at a time: memory is bounded by the chunk, not by the input.
    """
    return chunk_by_size(records, lambda rec: len(rec.seq), max_nt, max_records)


def chunk_by_size(items, size, max_total, max_items=None):
    """Group ``items`` into lists in input order, each of total ``size(item)`` at most ``max_total``
    and at most ``max_items`` items (an item larger than ``max_total`` alone)."""
    block, total = [], 0
    for item in items:
        n = size(item)
        if block and (total + n > max_total or (max_items is not None and len(block) >= max_items)):
            yield block
            block, total = [], 0
        block.append(item)
        total += n
    if block:
        yield block


def embed_chunk(block, encoder, *, long="truncate", toks_per_batch=None, overlap=None, stats=None, dtype=None):
    """Embed a list of records; the (L, D) float32 matrices (``dtype`` if given) in the order of ``block``.

    Sequences longer than the encoder's limit are truncated or embedded in windows
    (``long``, see the module doc); inside the chunk, pieces are sorted by length and
    packed into batches of ``toks_per_batch`` tokens. ``stats`` (an :class:`EmbedStats`)
    is updated when given.
    """
    toks_per_batch = resolve_toks_per_batch(encoder, toks_per_batch)
    if long not in LONG_POLICIES:
        raise ValueError(f"long policy must be one of {LONG_POLICIES}")
    max_len = encoder.max_len
    if overlap is None:
        overlap = (max_len // 4) if max_len else 0
    stats = stats if stats is not None else EmbedStats()
    pieces, windowed = [], {}
    for k, rec in enumerate(block):
        n = len(rec.seq)
        stats.sequences += 1
        stats.nucleotides += n
        if max_len is None or n <= max_len:
            pieces.append(_Piece(k, 0, n, rec.seq))
        elif long == "truncate":
            stats.truncated += 1
            pieces.append(_Piece(k, 0, max_len, rec.seq[:max_len]))
        else:
            stats.windowed += 1
            spans = window_spans(n, max_len, overlap)
            windowed[k] = []
            pieces.extend(_Piece(k, s, e, rec.seq[s:e]) for s, e in spans)
    out = [None] * len(block)
    # the width the encoder pads a batch to (RNA-FM: a few fixed widths), counted in the budget
    batch_width = getattr(encoder, "batch_width", None)
    for batch in pack_batches(pieces, toks_per_batch, encoder.extra_tokens, batch_width=batch_width):
        for piece, mat in zip(batch, encoder.embed([p.seq for p in batch])):
            if piece.rid in windowed:
                windowed[piece.rid].append((piece.start, piece.end, mat))
            else:
                out[piece.rid] = mat if dtype is None else mat.astype(dtype)
    for k, parts in windowed.items():
        merged = merge_windows(len(block[k].seq), parts)
        out[k] = merged if dtype is None else merged.astype(dtype)
    return out


def embed_records(records, encoder, output, *, long="truncate", toks_per_batch=None, max_nt=None, overlap=None):
    """Embed ``records`` (iterable of :class:`~rnaloc_tools.seqs.Record`) into the NPZ ``output``.

    Records are read a chunk at a time (:func:`chunk_records`, :func:`chunk_nt`), embedded
    (:func:`embed_chunk`) and written in input order, so memory is bounded by one chunk.
    ``toks_per_batch`` None: the encoder's default for its device (see :func:`resolve_toks_per_batch`).
    """
    if long not in LONG_POLICIES:
        raise ValueError(f"long policy must be one of {LONG_POLICIES}")
    max_len = encoder.max_len
    if overlap is None:
        overlap = (max_len // 4) if max_len else 0
    meta = encoder.meta()
    meta["long_policy"] = long_policy_name(encoder, long, overlap)
    stats = EmbedStats()
    bar = progress(desc=f"embed ({encoder.name})", unit="seq")
    with EmbeddingWriter(output, meta) as writer:
        for block in chunk_records(records, chunk_nt(encoder, max_nt)):
            # in the file's dtype (float16) already: half the memory, the same bytes written; and no name
            # holds the matrices past this chunk, so the next chunk's are not in memory beside them
            for rec, mat in zip(block, embed_chunk(block, encoder, long=long, toks_per_batch=toks_per_batch,
                                                   overlap=overlap, stats=stats, dtype=writer.dtype)):
                writer.add(rec.id, mat)
            bar.update(len(block))
    bar.close()
    log_long_sequences(stats, max_len)
    log.info("embedded %d sequences (%d nt) with %s into %s", stats.sequences, stats.nucleotides, encoder.name, output)
    return stats


def log_long_sequences(stats, max_len):
    """Say how many sequences were longer than the encoder's limit and what was done with them."""
    if stats.truncated:
        log.warning(
            "%d of %d sequences were longer than %d nt and were truncated to their first %d nt "
            "(--long truncate); use --long windows to embed them whole",
            stats.truncated, stats.sequences, max_len, max_len,
        )
    if stats.windowed:
        log.info(
            "%d of %d sequences were longer than %d nt and were embedded in overlapping windows (--long windows)",
            stats.windowed, stats.sequences, max_len,
        )
