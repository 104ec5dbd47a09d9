"""Important regions, k-mer enrichment and merging k-mers into position weight matrices.

The method, step by step (the paper's rule, then a test the paper did not do):

1. A nucleotide is *important* when its attention exceeds a per-sequence
   threshold: the sequence's median by default (RNALoc-LM), or a quantile.
2. Runs of important nucleotides at least ``min_length`` long are the
   candidate regions (written to the regions table). Runs of unimportant
   nucleotides at least ``min_length`` long are the *rest*.
3. For every k from ``k_min`` to ``k_max``, each k-mer is counted once per
   sequence (presence, not occurrences: a repeat inside one sequence counts
   once) in the candidate regions of the foreground sequences (one class),
   and in a background: the *rest* of the same sequences (``rest``), or the
   candidate regions of the sequences of the other class(es)
   (``other-class``). A k-mer counts in a region only when it lies entirely
   inside it; k-mers with letters other than A, C, G, U are skipped.
4. One-sided Fisher exact test (hypergeometric upper tail) on the 2 x 2
   table of sequence counts. Only k-mers found in at least ``min_support``
   sequence sets (foreground plus background) are tested: that total is a
   margin of the table, independent of the test under the null, so the
   filter does not bias the Benjamini-Hochberg correction that follows, over
   every k-mer tested in the run (all k, all classes).
5. Significant k-mers (q <= alpha, enrichment > 1), best first, are merged
   greedily: the best unassigned k-mer seeds a motif, and every other
   significant k-mer that aligns to the seed (shifted by at most
   ``max_shift`` beyond containment, at most ``max_mismatches`` mismatches in
   an overlap of at least ``min(len) - max_shift``) joins it. The motif's
   matrix counts the nucleotides of every foreground site of its k-mers,
   aligned on the seed, with the frame widened to cover all members; edge
   columns carrying under 0.4 bits are trimmed (down to 4 columns at least).
"""

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import false_discovery_control, hypergeom

from ..errors import RnalocError

log = logging.getLogger("rnaloc")

LETTERS = "ACGU"
BACKGROUNDS = ("rest", "other-class")
#: Edge columns of a motif with less information than this (bits) are trimmed.
EDGE_BITS = 0.4
_CODE = np.full(256, -1, dtype=np.int8)
for _i, _c in enumerate(LETTERS):
    _CODE[ord(_c)] = _i
    _CODE[ord(_c.lower())] = _i
_CODE[ord("T")] = _CODE[ord("t")] = 3


@dataclass
class Params:
    """Settings of the motif analysis (the command's options, with the paper's defaults)."""

    threshold: str = "median"  # "median", "mean", or a quantile in (0, 1)
    min_length: int = 5
    k_min: int = 5
    k_max: int = 15
    background: str = "rest"
    min_support: int = 5
    alpha: float = 0.05
    max_motifs: int = 10
    max_shift: int = 2
    max_mismatches: int = 1
    max_cluster_kmers: int = 5000  # significant k-mers considered for merging, per class

    def check(self):
        if not 1 <= self.k_min <= self.k_max <= 15:
            raise RnalocError(f"k-mer lengths must satisfy 1 <= k-min <= k-max <= 15 (got {self.k_min}..{self.k_max})")
        if self.background not in BACKGROUNDS:
            raise RnalocError(f"unknown background {self.background!r} (known: {', '.join(BACKGROUNDS)})")
        if self.min_length < 1:
            raise RnalocError("--min-length must be at least 1")
        if not 0 < self.alpha <= 1:
            raise RnalocError("--alpha must be in (0, 1]")
        threshold_value(np.zeros(1, np.float32), self.threshold)


def parse_threshold(spec):
    """'median', 'mean', or a quantile in (0, 1) (0.5 is the median)."""
    spec = str(spec).strip().lower()
    if spec in ("median", "mean"):
        return spec
    try:
        q = float(spec)
    except ValueError:
        raise RnalocError(f"threshold {spec!r}: give 'median', 'mean' or a quantile between 0 and 1") from None
    if not 0 < q < 1:
        raise RnalocError(f"threshold {spec!r}: a quantile must lie strictly between 0 and 1")
    return q


def threshold_value(att, spec):
    spec = parse_threshold(spec)
    if spec == "median":
        return float(np.median(att))
    if spec == "mean":
        return float(np.mean(att))
    return float(np.quantile(att, spec))


def runs(mask):
    """(start, end) of the runs of True in a boolean vector."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2]


def long_runs_mask(mask, min_length):
    """``mask`` with runs shorter than ``min_length`` removed."""
    out = np.zeros_like(mask)
    for s, e in zip(*runs(mask)):
        if e - s >= min_length:
            out[s:e] = True
    return out


@dataclass
class Annotated:
    """All sequences concatenated, separated by one invalid position, with their region masks."""

    codes: np.ndarray  # (T,) int8, -1 = not ACGU or separator
    seq_index: np.ndarray  # (T,) int32, -1 at separators
    important: np.ndarray  # (T,) bool: attention > threshold (raw rule)
    region: np.ndarray  # (T,) bool: inside a candidate region (important run >= min_length)
    rest: np.ndarray  # (T,) bool: inside an unimportant run >= min_length
    starts: np.ndarray  # (N,) start of each sequence in the concatenation
    cls: np.ndarray  # (N,) class of each sequence
    regions: list = field(default_factory=list)  # rows for the regions table


def annotate(sequences, params):
    """Threshold each sequence's attention and find its candidate regions."""
    parts_codes, parts_idx, parts_imp, parts_reg, parts_rest, starts, regions = [], [], [], [], [], [], []
    pos = 0
    for i, s in enumerate(sequences):
        att = s.attention
        thr = threshold_value(att, params.threshold)
        imp = att > thr
        reg = long_runs_mask(imp, params.min_length)
        rest = long_runs_mask(~imp, params.min_length)
        for a, b in zip(*runs(reg)):
            regions.append(
                {
                    "id": s.id,
                    "start": int(a),
                    "end": int(b),
                    "class": s.cls,
                    "mean_attention": float(att[a:b].mean()),
                    "max_attention": float(att[a:b].max()),
                    "threshold": thr,
                    "sequence": s.seq[a:b],
                }
            )
        starts.append(pos)
        parts_codes += [_CODE[np.frombuffer(s.seq.encode("ascii"), dtype=np.uint8)], np.array([-1], np.int8)]
        parts_idx += [np.full(len(s.seq), i, np.int32), np.array([-1], np.int32)]
        parts_imp += [imp, [False]]
        parts_reg += [reg, [False]]
        parts_rest += [rest, [False]]
        pos += len(s.seq) + 1
    return Annotated(
        codes=np.concatenate(parts_codes),
        seq_index=np.concatenate(parts_idx),
        important=np.concatenate(parts_imp).astype(bool),
        region=np.concatenate(parts_reg).astype(bool),
        rest=np.concatenate(parts_rest).astype(bool),
        starts=np.asarray(starts, dtype=np.int64),
        cls=np.array([s.cls for s in sequences], dtype=object),
        regions=regions,
    )


def _window_all(mask, k):
    """For each window start i (0..T-k), whether mask[i:i+k] is all True."""
    c = np.concatenate(([0], np.cumsum(mask, dtype=np.int64)))
    return (c[k:] - c[:-k]) == k


def kmer_codes(codes, k):
    """Integer code of the k-mer starting at each position (garbage where a window is invalid)."""
    n = len(codes) - k + 1
    out = np.zeros(max(n, 0), dtype=np.int64)
    c = np.where(codes < 0, 0, codes).astype(np.int64)
    for j in range(k):
        out = out * 4 + c[j : j + n]
    return out


def decode(code, k):
    letters = []
    for _ in range(k):
        letters.append(LETTERS[code % 4])
        code //= 4
    return "".join(reversed(letters))


def encode(kmer):
    code = 0
    for ch in kmer:
        code = code * 4 + LETTERS.index(ch)
    return code


@dataclass
class KmerWindows:
    """Window starts (positions in the concatenation) and codes of k-mers inside regions."""

    pos: np.ndarray
    code: np.ndarray
    seq: np.ndarray


def region_windows(ann, k, mask):
    """Windows of length k entirely inside ``mask`` and made of A, C, G, U only."""
    if len(ann.codes) < k:
        return KmerWindows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32))
    ok = _window_all(mask & (ann.codes >= 0), k)
    pos = np.flatnonzero(ok)
    codes = kmer_codes(ann.codes, k)[pos]
    return KmerWindows(pos, codes, ann.seq_index[pos])


def presence(windows, seq_mask):
    """(k-mer codes, number of sequences containing each) among sequences where ``seq_mask`` is True."""
    keep = seq_mask[windows.seq]
    if not keep.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    key = windows.seq[keep].astype(np.int64) * (1 << 30) + windows.code[keep]
    key = np.unique(key)
    return np.unique(key % (1 << 30), return_counts=True)


def _counts_for(codes, counted_codes, counted_n):
    """Counts aligned on ``codes`` (sorted, a superset of ``counted_codes``); 0 where absent."""
    out = np.zeros(len(codes), np.int64)
    if len(counted_codes):
        out[np.searchsorted(codes, counted_codes)] = counted_n
    return out


def fisher_test(codes, a, b, n_fg, n_bg, params):
    """The k-mers present in at least ``min_support`` sequence sets, their counts and one-sided
    Fisher p-values (hypergeometric upper tail): (codes, a, b, p). Element by element, so a
    table may be tested in parts (the streaming count tests partition by partition)."""
    tested = (a + b) >= params.min_support
    codes, a, b = codes[tested], a[tested], b[tested]
    p = np.clip(hypergeom.sf(a - 1, n_fg + n_bg, a + b, n_fg), 0.0, 1.0)
    return codes, a, b, p


def class_sizes(n_per_class, cls, params):
    """(foreground, background) sequence counts of ``cls`` for the test; ``n_per_class``: {class: n}."""
    n_fg = int(n_per_class.get(cls, 0))
    n_bg = n_fg if params.background == "rest" else int(sum(n_per_class.values())) - n_fg
    return n_fg, n_bg


TESTED_COLUMNS = ["k", "code", "class", "support", "n", "background_support", "background_n", "p"]


def tested_frame(k, cls, codes, a, n_fg, b, n_bg, p):
    import pandas as pd

    return pd.DataFrame({"k": k, "code": codes, "class": cls, "support": a, "n": n_fg, "background_support": b,
                         "background_n": n_bg, "p": p})


def enrichment(support, n, background_support, background_n):
    """(support + 0.5) / (n + 1) over the same in the background (arrays or table columns)."""
    return ((support + 0.5) / (n + 1)) / ((background_support + 0.5) / (background_n + 1))


def add_enrichment(df):
    df["enrichment"] = enrichment(df["support"], df["n"], df["background_support"], df["background_n"])
    return df


def test_kmers(ann, params, classes):
    """Fisher/hypergeometric test of every k-mer for every class; returns (table rows, windows by k)."""
    import pandas as pd

    frames, windows_by_k = [], {}
    n_per_class = {c: int((ann.cls == c).sum()) for c in classes}
    for k in range(params.k_min, params.k_max + 1):
        fg_w = region_windows(ann, k, ann.region)
        candidates = []  # k-mers that may turn out significant (q >= p): only their windows are kept
        bg_w = region_windows(ann, k, ann.rest) if params.background == "rest" else fg_w
        for cls in classes:
            in_cls = ann.cls == cls
            n_fg, n_bg = class_sizes(n_per_class, cls, params)
            bg_mask = in_cls if params.background == "rest" else ~in_cls
            if n_fg == 0 or n_bg == 0:
                continue
            fg_codes, fg_n = presence(fg_w, in_cls)
            bg_codes, bg_n = presence(bg_w, bg_mask)
            codes = np.union1d(fg_codes, bg_codes)
            a = _counts_for(codes, fg_codes, fg_n)
            b = _counts_for(codes, bg_codes, bg_n)
            codes, a, b, p = fisher_test(codes, a, b, n_fg, n_bg, params)
            if not len(codes):
                continue
            candidates.append(codes[p <= params.alpha])
            frames.append(tested_frame(k, cls, codes, a, n_fg, b, n_bg, p))
        # the merge step needs the region windows of significant k-mers only (q >= p): holding every
        # window of every k costs ~20 bytes per window and k
        keep = np.isin(fg_w.code, np.concatenate(candidates)) if candidates else np.zeros(len(fg_w.code), bool)
        windows_by_k[k] = KmerWindows(fg_w.pos[keep], fg_w.code[keep], fg_w.seq[keep])
        del fg_w, bg_w
    if not frames:
        return pd.DataFrame(columns=TESTED_COLUMNS + ["q"]), windows_by_k
    df = pd.concat(frames, ignore_index=True)
    df["q"] = false_discovery_control(df["p"].to_numpy(), method="bh")
    return add_enrichment(df), windows_by_k


def bh_grouped(values, counts, m):
    """Benjamini-Hochberg q-values of the smallest p-values of ``m`` tests, given as the distinct
    values (sorted) and how many tests have each; one q-value per distinct value.

    scipy's ``false_discovery_control(..., method="bh")`` sorts the p-values, multiplies the one of
    rank j by m / j and takes the running minimum from the largest down. Within a run of equal
    p-values the smallest product is the one of the last rank (m / j only decreases, and rounding
    keeps the order), so the q-value of a distinct value is the minimum of value * m / (its last
    rank) and the q-value of the next larger value: the same operations on the same numbers.
    The streaming count keeps only the tests with p <= alpha (q >= p, so no other can be
    significant): every test left out has p > alpha, so its product exceeds alpha, and a q-value
    at most alpha computed here is scipy's over all m tests (one above alpha stays above).
    Memory: one number per distinct p-value, which depends only on the counts (a, b) of a test.
    """
    last_rank = np.cumsum(counts).astype(np.float64)
    q = values * (m / last_rank)
    np.minimum.accumulate(q[::-1], out=q[::-1])
    return np.clip(q, 0, 1, out=q)


def align(seed, kmer, max_shift, max_mismatches):
    """Offset of ``kmer`` relative to ``seed`` (kmer starts at seed[offset]), or None.

    One of the two may contain the other (anywhere, with at most ``max_mismatches``
    mismatches), or they may overlap with a shift of at most ``max_shift``
    positions beyond containment, then without mismatches.
    """
    ls, lk = len(seed), len(kmer)
    short = min(ls, lk)
    best = None
    for d in range(-max_shift - max(0, lk - ls), max(0, ls - lk) + max_shift + 1):
        lo, hi = max(0, d), min(ls, d + lk)
        overlap = hi - lo
        if overlap < max(short - max_shift, 1):
            continue
        allowed = max_mismatches if overlap == short else 0
        mism = sum(1 for i in range(lo, hi) if seed[i] != kmer[i - d])
        if mism > allowed:
            continue
        key = (short - overlap, mism, abs(d))
        if best is None or key < best[0]:
            best = (key, d)
    return None if best is None else best[1]


@dataclass
class Motif:
    name: str
    cls: str
    seed: str
    members: list  # [(kmer, offset)]
    counts: np.ndarray  # (W, 4) site counts, columns A C G U
    seed_row: dict
    sites: int
    support_any: int = 0

    @property
    def width(self):
        return self.counts.shape[0]


def information(counts):
    """Information content (bits) of each column of a count matrix."""
    freq = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(freq > 0, freq * np.log2(freq), 0.0), axis=1)
    return 2.0 - ent


def motif_frame(members):
    """(lo, width): the frame covering every member k-mer, relative to the seed."""
    lo = min(0, min(d for _, d in members))
    hi = max(max(d + len(m) for m, d in members), max(len(m) for m, _ in members))
    return lo, hi - lo


def site_counts(ann, windows_by_k, seq_mask, members):
    """(letter counts (W, 4) of the sites, sequences with a member k-mer) of one motif in ``ann``.

    Sites are the frames (widened to all members) of member k-mers in the candidate regions of
    the sequences in ``seq_mask``, each frame once; frames reaching past a sequence's end or
    over a letter other than A, C, G, U are dropped. Sums over parts of the input (whole
    sequences each) give the counts of the whole input.
    """
    lo, width = motif_frame(members)
    frames, seqs_with = [], []
    for kmer, d in members:
        w = windows_by_k[len(kmer)]
        hit = (w.code == encode(kmer)) & seq_mask[w.seq]
        seqs_with.append(w.seq[hit])
        frames.append(w.pos[hit].astype(np.int64) - d + lo)
    counts = np.zeros((width, 4), np.int64)
    starts = np.unique(np.concatenate(frames))  # each frame once
    n_seqs = len(np.unique(np.concatenate(seqs_with)))
    if not len(starts):
        return counts, 0
    starts = starts[(starts >= 0) & (starts + width <= len(ann.codes))]
    idx = starts[:, None] + np.arange(width)[None, :]
    sites = ann.codes[idx]
    sites = sites[(sites >= 0).all(axis=1)]  # inside one sequence, A/C/G/U only
    if len(sites):
        counts = np.stack([(sites == i).sum(axis=0) for i in range(4)], axis=1).astype(np.int64)
    return counts, n_seqs


def trim_sites(counts, min_width):
    """The count matrix with low-information edge columns trimmed; None when there is no site."""
    if not counts[0].sum():
        return None
    info = information(counts)
    a, b = 0, len(counts)
    while b - a > min_width and info[a] < EDGE_BITS:
        a += 1
    while b - a > min_width and info[b - 1] < EDGE_BITS:
        b -= 1
    return counts[a:b]


def significant_kmers(tested, params, cls, n_significant=None):
    """The significant k-mers of ``cls`` to merge, best first: (table records, k-mer strings).

    ``n_significant``: how many there are, when ``tested`` holds only the best of them.
    """
    sig = tested[(tested["q"] <= params.alpha) & (tested["enrichment"] > 1)]
    rows = sig[sig["class"] == cls].sort_values(["p", "k", "support"], ascending=[True, False, False])
    total = len(rows) if n_significant is None else n_significant
    if total > params.max_cluster_kmers:
        log.info("%s: merging the best %d of %d significant k-mers", cls, params.max_cluster_kmers, total)
        rows = rows.iloc[: params.max_cluster_kmers]
    records = rows.to_dict("records")
    return records, [decode(int(r["code"]), int(r["k"])) for r in records]


def motif_groups(kmers, params):
    """Greedy grouping, lazily: (seed index, members [(kmer, offset)]) in order.

    The best unassigned k-mer seeds a group and every later unassigned k-mer aligning to it
    joins. Groups depend on the k-mer strings only, never on their sites.
    """
    assigned = np.zeros(len(kmers), bool)
    for i, seed in enumerate(kmers):
        if assigned[i]:
            continue
        members = []
        for j in range(i, len(kmers)):
            if assigned[j]:
                continue
            d = 0 if j == i else align(seed, kmers[j], params.max_shift, params.max_mismatches)
            if d is not None:
                members.append((kmers[j], d))
                assigned[j] = True
        yield i, members


def make_motif(cls, n, seed, members, counts, seed_row, support_any):
    return Motif(name=f"{cls}-{n}", cls=cls, seed=seed, members=members, counts=counts, seed_row=seed_row,
                 sites=int(counts[0].sum()), support_any=support_any)


def merge_kmers(ann, tested, windows_by_k, params, classes):
    """Greedy merging of significant k-mers into motifs (PWMs), per class (all sequences in memory).

    A group whose k-mers have no complete site gives no motif and does not count toward
    ``max_motifs``.
    """
    motifs = []
    if tested.empty:
        return motifs
    for cls in classes:
        records, kmers = significant_kmers(tested, params, cls)
        seq_mask = ann.cls == cls
        found, groups = 0, motif_groups(kmers, params)
        while found < params.max_motifs:
            i, members = next(groups, (None, None))
            if members is None:
                break
            counts, support_any = site_counts(ann, windows_by_k, seq_mask, members)
            counts = trim_sites(counts, min(4, len(kmers[i])))
            if counts is None:
                continue
            found += 1
            motifs.append(make_motif(cls, found, kmers[i], members, counts, records[i], support_any))
    return motifs
