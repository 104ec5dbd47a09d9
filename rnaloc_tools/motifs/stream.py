"""``rnaloc motifs`` on files of any size: the analysis of :mod:`.discover`, a chunk at a time.

The results are those of the in-memory :func:`rnaloc_tools.motifs.find_motifs` on the
same input, byte for byte; memory is bounded by a chunk (a budget of nucleotides), not by
the input:

- The sequences file is read once: its letters are spooled to a temporary file (one byte
  per nucleotide) with an index id -> offset, so that the attention (read lazily from its
  memory-mapped NPZ) pairs with them by id in any order, over several passes.
- Pass 1, chunk by chunk: thresholds and candidate regions (their rows streamed to a
  temporary file), letter frequencies, flat attention, known-motif counts, and the k-mer
  presence counts: a k-mer counts once per sequence, and sequences never span chunks, so
  each chunk's unique (sequence, k-mer) pairs add up exactly (:mod:`.kmercount`: dense in
  memory for short k, hash partitions on disk for long k).
- The tests, partition by partition: only the rows with p <= alpha are kept (q >= p, so
  no other row can be significant; on disk, their distinct p-values in memory), with the number of
  tests for Benjamini-Hochberg (:func:`.discover.bh_grouped`) and the MEME E-values; then
  the best ``max_cluster_kmers`` significant rows per class, all that merging looks at.
- Merging decides the motifs' k-mers from the k-mer strings alone; one more pass collects
  their sites. A group without a complete site gives no motif and does not count toward
  ``max_motifs``, so a few groups beyond it are collected, and the pass is repeated (for
  the next groups) only when too many come out empty.
"""

import logging
import os
from array import array

import numpy as np
import pandas as pd

from ..formats import write_rows
from .discover import (
    KmerWindows,
    add_enrichment,
    annotate,
    bh_grouped,
    class_sizes,
    encode,
    enrichment,
    fisher_test,
    make_motif,
    motif_frame,
    motif_groups,
    region_windows,
    runs,
    significant_kmers,
    site_counts,
    trim_sites,
)
from .inputs import Sequence, seen_positions
from .kmercount import PresenceCounts
from .known import KnownCounter

log = logging.getLogger("rnaloc")

#: Nucleotides analysed at a time by default (about 120 bytes each while a chunk is analysed).
CHUNK_NT = 500_000
#: Groups collected beyond the motifs still wanted, per class, in one sites pass.
EXTRA_GROUPS = 3


class SequenceIndex:
    """The sequences of a file, read once: letters spooled to ``spool`` (one byte per nucleotide),
    their ids, offsets and lengths in file order, the labels and the RNA types the file names.

    An id is looked up through the attention store's own index when the file holds the store's
    ids in the store's order (:meth:`use_order`: what ``rnaloc predict`` writes), else through a
    dict made here: ~100 bytes per sequence spared in the usual case.

    A context manager: leaving the ``with`` block closes the spool's file descriptor."""

    def __init__(self, records, spool):
        self.ids = []
        self.offsets, self.lengths = array("q"), array("q")
        self.labels = []  # None once a record has no label
        self.rna_types = set()
        self._position, self._rows = None, None
        offset = 0
        with open(spool, "wb") as fh:
            for rec in records:
                data = rec.seq.encode("ascii")
                fh.write(data)
                self.ids.append(rec.id)
                self.offsets.append(offset)
                self.lengths.append(len(data))
                offset += len(data)
                if self.labels is not None:
                    if "label" in rec.extra:
                        self.labels.append(str(rec.extra["label"]))
                    else:
                        self.labels = None
                if rec.extra.get("rna_type"):
                    self.rna_types.add(str(rec.extra["rna_type"]))
        self.total = offset
        self._fd = os.open(spool, os.O_RDONLY)

    def use_order(self, ids, position):
        """Look ids up with ``position(id)`` (their place in ``ids``) when the file holds ``ids``, in order."""
        if self.ids == ids:
            self._position = position

    def _row(self, rid):
        if self._position is not None:
            return self._position(rid)
        if self._rows is None:
            self._rows = {rid: i for i, rid in enumerate(self.ids)}
        return self._rows.get(rid)

    def __len__(self):
        return len(self.ids)

    def length(self, rid):
        i = self._row(rid)
        return None if i is None else self.lengths[i]

    def read(self, rid, n):
        """The first ``n`` letters of sequence ``rid``."""
        return os.pread(self._fd, n, self.offsets[self._row(rid)]).decode("ascii")

    def records(self):
        """The sequences again, in file order (letters only: no labels or other columns)."""
        from ..seqs import Record

        for i, rid in enumerate(self.ids):
            yield Record(rid, os.pread(self._fd, self.lengths[i], self.offsets[i]).decode("ascii"))

    def label_of(self, ids):
        """{id: label} in the order of ``ids`` when every sequence has a label, else None."""
        if self.labels is None:
            return None
        return {rid: self.labels[self._row(rid)] for rid in ids}

    def close(self):
        """Close the spool (once; later calls do nothing)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class StoreSequences:
    """The sequences with their attention and class, a chunk at a time, in the attention's order."""

    def __init__(self, store, index, meta, cls_of, chunk_nt, chunk_records):
        from ..embed import chunk_by_size

        self.store, self.index, self.meta = store, index, meta
        self.ids = store.ids
        self.cls = [cls_of[rid] for rid in self.ids]
        self._chunks = lambda: chunk_by_size(range(len(self.ids)), lambda i: store.length(self.ids[i]), chunk_nt,
                                             chunk_records)

    def __len__(self):
        return len(self.ids)

    def chunks(self):
        for block in self._chunks():
            out = []
            for i in block:
                rid = self.ids[i]
                att = self.store.get(rid, np.float32)[:, 0]
                att = att[: seen_positions(len(att), self.meta)]
                out.append(Sequence(rid, self.index.read(rid, len(att)), att, self.cls[i]))
            self.store.release()  # the mapped pages read for this chunk leave the process's memory
            yield out


def _run_left(mask):
    """For each position, how many positions from it on are True in a row (0 where False)."""
    starts, ends = runs(mask)
    left = np.zeros(len(mask), np.int32)
    left[mask] = np.repeat(ends, ends - starts) - np.flatnonzero(mask)
    return left


def _chunk_kmers(ann, masks, k_min, k_max):
    """Yield (k, sequence, code, mask number) of every k-mer lying inside one of ``masks`` and made of
    A, C, G, U, each (sequence, code) once per mask: :func:`.discover.region_windows` then
    :func:`.discover.presence`, with the codes of k built from those of k - 1 (one array for all k)."""
    valid = ann.codes >= 0
    letters = np.where(valid, ann.codes, 0).astype(np.int64)
    left = [_run_left(mask & valid) for mask in masks]
    codes = letters.copy()
    for k in range(1, k_max + 1):
        if k > 1:
            codes = codes[:-1]  # codes[i] is the k-mer starting at i (in place: each uses its own slot only)
            codes *= 4
            codes += letters[k - 1 :]
        if k < k_min:
            continue
        for kind, run_left in enumerate(left):
            pos = np.flatnonzero(run_left >= k)  # the window [pos, pos + k) is inside the mask
            key = np.unique(ann.seq_index[pos].astype(np.int64) << 30 | codes[pos])
            del pos
            yield k, key >> 30, key & ((1 << 30) - 1), kind


class StreamResult:
    def __init__(self, motifs, tested, known, regions_rows, background, n_tests, n_sequences, n_regions):
        self.motifs, self.tested, self.known = motifs, tested, known
        self.regions_rows, self.background, self.n_tests = regions_rows, background, n_tests
        self.n_sequences, self.n_regions = n_sequences, n_regions


def stream_motifs(source, classes, params, known_motifs, rna_type, tmp, regions_columns, format_rows):
    """Find motifs in ``source`` (a :class:`StoreSequences`) chunk by chunk; temporary files in ``tmp``.

    Returns a :class:`StreamResult`: what :func:`rnaloc_tools.motifs.find_motifs` finds, with the
    test rows of p <= alpha only and the regions rows in a file (``format_rows`` formats a chunk's).
    """
    from .known import motifs_for
    from .writers import frequencies

    n_per_class = {c: 0 for c in classes}
    for c in source.cls:
        n_per_class[c] += 1
    present = [c for c in classes if n_per_class[c]]
    cls_index = {c: i for i, c in enumerate(present)}
    rest = params.background == "rest"
    n_groups = len(present) * (2 if rest else 1)
    ks = list(range(params.k_min, params.k_max + 1))
    counts = PresenceCounts(tmp, ks, n_groups, source.index.total)
    known = KnownCounter(present, motifs_for(rna_type, known_motifs)) if known_motifs else None
    letters = np.zeros(4, np.int64)
    n_regions, flat, first_flat = 0, 0, None
    regions_rows = os.path.join(tmp, "regions.rows")
    with open(regions_rows, "w", encoding="utf-8", newline="") as rows_out:
        for chunk in source.chunks():
            ann = annotate(chunk, params)
            if ann.regions:
                write_rows(format_rows(pd.DataFrame(ann.regions, columns=regions_columns)), rows_out)
                n_regions += len(ann.regions)
            for s in chunk:
                if not (s.attention > s.attention.min()).any():
                    flat += 1
                    first_flat = first_flat or s.id
            letters += np.bincount(ann.codes[ann.codes >= 0], minlength=4)
            if known is not None:
                known.add(ann)
            seq_group = np.array([cls_index[s.cls] for s in chunk], np.int64) * (2 if rest else 1)
            masks = (ann.region, ann.rest) if rest else (ann.region,)
            for k, seq, code, kind in _chunk_kmers(ann, masks, params.k_min, params.k_max):
                group = seq_group[seq] + kind
                for g in np.unique(group):
                    counts.add(k, int(g), code[group == g])
            del ann, chunk
    n_seq = len(source)
    log.info(
        "%d sequences (%s), %d candidate regions of >= %d important nt",
        n_seq, ", ".join(f"{c}: {n_per_class[c]}" for c in present), n_regions, params.min_length,
    )
    if flat:
        log.warning(
            "%d of %d sequences have flat attention (no position above the others, e.g. %s): they have no "
            "important positions", flat, n_seq, first_flat,
        )
    if counts.disk:
        log.info("k-mer presence entries (k = %d..%d) spooled to %s: %.1f MB (%.2f bytes per nucleotide), "
                 "%.1f MB at most at a time", counts.disk[0], counts.disk[-1], tmp, counts.bytes_written / 1e6,
                 counts.bytes_written / max(source.index.total, 1), counts.peak_bytes / 1e6)

    tested, n_tests, n_sig = _test(counts, ks, present, n_per_class, params, rest, tmp)
    log.info("%d k-mers tested (k = %d..%d), %d significant at q <= %g", n_tests, params.k_min, params.k_max,
             sum(n_sig.values()), params.alpha)
    motifs = _merge(source, tested, params, present, n_sig) if n_tests else []
    return StreamResult(motifs, tested, known.table() if known is not None else pd.DataFrame(), regions_rows,
                        frequencies(letters), n_tests, n_seq, n_regions)


#: k-mers tested at a time (the hypergeometric test's arrays are a few times this many floats).
_TEST_ROWS = 1 << 17


def _slices(pieces):
    for codes, table in pieces:
        for start in range(0, len(codes), _TEST_ROWS):
            yield codes[start : start + _TEST_ROWS], table[start : start + _TEST_ROWS]


#: A test row kept on disk between the tests and the selection of the k-mers to merge.
_ROW = np.dtype([("k", "i1"), ("ci", "i2"), ("code", "i8"), ("a", "i8"), ("b", "i8"), ("p", "f8")])
#: Rows read back at a time.
_ROWS_AT_ONCE = 1 << 18


class _DistinctCounts:
    """Distinct values and how often each was added, kept compact as values are added."""

    def __init__(self):
        self.values, self.counts = np.zeros(0), np.zeros(0, np.int64)
        self.pending, self.n_pending = [], 0

    def add(self, values):
        u, c = np.unique(values, return_counts=True)
        self.pending.append((u, c))
        self.n_pending += len(u)
        if self.n_pending > max(len(self.values), 1 << 16):
            self._compact()

    def _compact(self):
        values = np.concatenate([self.values] + [u for u, _ in self.pending])
        counts = np.concatenate([self.counts] + [c for _, c in self.pending])
        self.values, inverse = np.unique(values, return_inverse=True)
        self.counts = np.bincount(inverse, weights=counts, minlength=len(self.values)).astype(np.int64)
        self.pending, self.n_pending = [], 0

    def result(self):
        self._compact()
        return self.values, self.counts


def _test(counts, ks, present, n_per_class, params, rest, tmp):
    """Test every k-mer, partition by partition; return (the rows to merge, the number of tests, the
    number of significant rows per class).

    A row with p <= alpha goes to a file (35 bytes); the distinct p-values and how many rows have
    each stay in memory, for the q-values (:func:`.discover.bh_grouped`, over every test). Then the
    file is read back in blocks, keeping per class the best ``max_cluster_kmers`` significant rows
    in the order the in-memory table's stable sort gives them (p, longer k, larger support, then the
    table's order: k, class, code), which is all :func:`.discover.significant_kmers` takes from it.
    """
    n_tests, p_values = 0, _DistinctCounts()
    sizes = [class_sizes(n_per_class, cls, params) for cls in present]
    spill = os.path.join(tmp, "tests.bin")
    with open(spill, "wb") as out:
        for k in ks:
            for codes, table in _slices(counts.counts(k)):
                region = table[:, 0::2] if rest else table
                region_all = region.sum(axis=1)
                for ci, (n_fg, n_bg) in enumerate(sizes):
                    if n_fg == 0 or n_bg == 0:
                        continue
                    a = region[:, ci]
                    b = table[:, 2 * ci + 1] if rest else region_all - a
                    found = (a + b) > 0
                    c, a, b, p = fisher_test(codes[found], a[found], b[found], n_fg, n_bg, params)
                    n_tests += len(c)
                    keep = p <= params.alpha
                    rows = np.zeros(int(keep.sum()), _ROW)
                    rows["k"], rows["ci"], rows["code"] = k, ci, c[keep]
                    rows["a"], rows["b"], rows["p"] = a[keep], b[keep], p[keep]
                    rows.tofile(out)
                    p_values.add(rows["p"])
    ps, p_counts = p_values.result()
    q_sorted = bh_grouped(ps, p_counts, n_tests)
    n_fg = np.array([f for f, _ in sizes], np.int64)
    n_bg = np.array([b for _, b in sizes], np.int64)
    best = [np.zeros(0, _ROW) for _ in present]
    n_sig = [0] * len(present)
    with open(spill, "rb") as rows_in:
        while True:
            rows = np.fromfile(rows_in, dtype=_ROW, count=_ROWS_AT_ONCE)
            if not len(rows):
                break
            q = q_sorted[np.searchsorted(ps, rows["p"], side="left")]
            sig = (q <= params.alpha) & (enrichment(rows["a"], n_fg[rows["ci"]], rows["b"], n_bg[rows["ci"]]) > 1)
            for ci in range(len(present)):
                mine = rows[sig & (rows["ci"] == ci)]
                n_sig[ci] += len(mine)
                both = np.concatenate([best[ci], mine])
                order = np.lexsort((both["code"], -both["a"], -both["k"].astype(np.int64), both["p"]))
                best[ci] = both[order[: params.max_cluster_kmers]]
    os.unlink(spill)
    rows = np.concatenate(best)
    rows = rows[np.lexsort((rows["code"], rows["ci"], rows["k"]))]  # the in-memory table's order
    q = q_sorted[np.searchsorted(ps, rows["p"], side="left")]
    del ps, q_sorted
    df = pd.DataFrame({
        "k": rows["k"].astype(np.int64), "code": rows["code"], "class": [present[i] for i in rows["ci"]],
        "support": rows["a"], "n": n_fg[rows["ci"]], "background_support": rows["b"], "background_n": n_bg[rows["ci"]],
        "p": rows["p"], "q": q,
    })
    return add_enrichment(df), n_tests, dict(zip(present, n_sig))


def _merge(source, tested, params, present, n_sig):
    """:func:`.discover.merge_kmers`, with the sites collected in passes over the chunks."""
    state = {}
    for cls in present:
        records, kmers = significant_kmers(tested, params, cls, n_sig[cls])
        state[cls] = {"records": records, "kmers": kmers, "groups": motif_groups(kmers, params), "motifs": [],
                      "done": not kmers}
    while True:
        batch = []
        for cls in present:
            st = state[cls]
            if st["done"]:
                continue
            want = params.max_motifs - len(st["motifs"]) + EXTRA_GROUPS
            taken = []
            for _ in range(want):
                i, members = next(st["groups"], (None, None))
                if members is None:
                    st["done"] = True
                    break
                taken.append((i, members))
            batch += [(cls, i, members) for i, members in taken]
        if not batch:
            break
        sites = _collect_sites(source, batch, params)
        for (cls, i, members), (site_letters, support_any) in zip(batch, sites):
            st = state[cls]
            if len(st["motifs"]) >= params.max_motifs:
                st["done"] = True
                continue
            site_letters = trim_sites(site_letters, min(4, len(st["kmers"][i])))
            if site_letters is None:
                continue
            st["motifs"].append(make_motif(cls, len(st["motifs"]) + 1, st["kmers"][i], members, site_letters,
                                           st["records"][i], support_any))
        for cls in present:
            if len(state[cls]["motifs"]) >= params.max_motifs:
                state[cls]["done"] = True
    return [m for cls in present for m in state[cls]["motifs"]]


def _collect_sites(source, batch, params):
    """One pass over the chunks: the site letter counts and sequence counts of each group in ``batch``."""
    codes_by_k = {}
    for _, _, members in batch:
        for kmer, _ in members:
            codes_by_k.setdefault(len(kmer), set()).add(encode(kmer))
    wanted = {k: np.array(sorted(v), np.int64) for k, v in codes_by_k.items()}
    totals = [(np.zeros((motif_frame(members)[1], 4), np.int64), 0) for _, _, members in batch]
    for chunk in source.chunks():
        ann = annotate(chunk, params)
        windows = {}
        for k, codes in wanted.items():
            w = region_windows(ann, k, ann.region)
            keep = np.isin(w.code, codes)
            windows[k] = KmerWindows(w.pos[keep], w.code[keep], w.seq[keep])
        for n, (cls, _, members) in enumerate(batch):
            letters, seqs = site_counts(ann, windows, ann.cls == cls, members)
            totals[n] = (totals[n][0] + letters, totals[n][1] + seqs)
    return totals

