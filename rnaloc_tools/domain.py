"""The applicability domain of a model: how far its training sequences reach.

A model is trusted only on sequences like the ones it learnt from. :func:`fit_domain`
summarises a model's training sequences in a small JSON-able dict, stored in the
ONNX ``metadata_props`` under the key ``domain`` (and in the ``.pt`` checkpoint, so
``export-onnx`` carries it); :func:`assess` says per sequence whether it is inside
(``yes``/``no``, or ``unknown`` for a model without a domain) and why, in words.

Two criteria, each with a nominal out-of-domain rate on sequences drawn like the
training sequences:

* **Length.** The training lengths' percentiles are stored. A sequence shorter
  than the 0.5th percentile or longer than the 99.5th is out of domain
  (nominal rate 1% together: 0.5% each side).

* **Composition.** Each sequence's profile is its 1-, 2- and 3-mer frequencies
  (A/C/G/U k-mers only; k-mers touching an IUPAC code are skipped), each block
  square-root transformed (Hellinger) and scaled by 1/sqrt(3), so two profiles are
  at most sqrt(2) apart. Its *distance* is the mean Euclidean distance to its
  :data:`NEIGHBOURS` nearest training profiles (a stored reference of at most
  :data:`MAX_REFERENCE` training profiles, a seeded subset, 8 bits per value).
  The distances of the training sequences themselves are measured out of
  sample: the training set is cut into :data:`CALIBRATION_FOLDS` folds
  (grouped, e.g. by CD-HIT cluster, when ``groups`` are given, so a sequence's
  near-copies never stand in for it) and each sequence is measured against the
  reference profiles outside its own fold. Short sequences have noisy profiles
  and so larger distances, so the comparison is made within length bands: the
  training sequences are cut into up to :data:`LENGTH_BANDS` bands of similar
  length (at least :data:`MIN_BAND` sequences each), and a new sequence's
  *distance percentile* is the share of its band's training distances at or
  below its own; above the band's 99th percentile it is out of domain (nominal
  rate 1%).

The two criteria together flag at most ~2% of sequences like the training data
(less when they overlap); ``bench/bench_domain_rate.py`` measures the realised rate
in grouped cross-validation. The cut-offs are conformal quantiles (the
ceil((n+1)(1-rate))-th smallest of n values), so a new sequence drawn like the
training ones crosses each with probability at most its rate; a training set too
small for a rate gets its extreme value (the training range) as the cut-off. Everything is per sequence: a sequence's verdict never
depends on the other sequences of a file.
"""

import base64
import json
import math

import numpy as np

DOMAIN_FORMAT = "rnaloc-domain-1"
#: The metadata key (ONNX ``metadata_props`` and checkpoint) holding the JSON domain.
METADATA_KEY = "domain"
KMERS = (1, 2, 3)
NEIGHBOURS = 3
MAX_REFERENCE = 1000
CALIBRATION_FOLDS = 5
#: Nominal out-of-domain rates: each length tail, and composition.
LENGTH_TAIL = 0.005
COMPOSITION_TAIL = 0.01
LENGTH_BANDS = 5
MIN_BAND = 100
LENGTH_PERCENTILES = (0, 0.5, 1, 2.5, 5, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 100)
#: Grid of the stored calibration-distance quantiles (percent), finer in the upper tail.
CALIBRATION_GRID = np.unique(np.round(np.concatenate([np.arange(0, 95, 5.0), np.arange(95, 99, 0.5),
                                                      np.arange(99, 100.05, 0.1)]), 1))
_SCALE = 255.0
IN, OUT, UNKNOWN = "yes", "no", "unknown"

_CODE = np.full(256, 4, dtype=np.int8)
for _i, _b in enumerate(b"ACGU"):
    _CODE[_b] = _i
_CODE[ord("T")] = 3
_DIM = sum(4 ** k for k in KMERS)


def kmer_profile(seq):
    """(84,) float64 profile of one sequence (see the module doc); None without any A/C/G/U."""
    rows, ok = profiles([seq])
    return rows[0] if ok[0] else None


#: Nucleotides whose k-mers are counted at once (bounds the memory of :func:`profiles`).
_BLOCK_NT = 1 << 19


def profiles(sequences):
    """(N, 84) profiles and an (N,) mask of the sequences that have one (any A/C/G/U).

    A block without any k-mer (a sequence shorter than k, or only ambiguity codes there)
    sits at the centre of its simplex. Vectorised over the sequences (a block of about
    half a million nucleotides at a time); each row depends on its own sequence only.
    """
    sequences = list(sequences)
    rows = np.zeros((len(sequences), _DIM))
    ok = np.zeros(len(sequences), dtype=bool)
    start = 0
    while start < len(sequences):
        stop, nt = start, 0
        while stop < len(sequences) and (stop == start or nt + len(sequences[stop]) <= _BLOCK_NT):
            nt += len(sequences[stop])
            stop += 1
        rows[start:stop], ok[start:stop] = _profiles_block(sequences[start:stop])
        start = stop
    return rows, ok


def _profiles_block(sequences):
    n_seq = len(sequences)
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    codes = _CODE[np.frombuffer("".join(sequences).upper().encode("ascii", "replace"), dtype=np.uint8)]
    total = len(codes)
    seq_of = np.repeat(np.arange(n_seq, dtype=np.int64), lengths)
    end_of = np.repeat(np.cumsum(lengths), lengths)  # one past the last position of each position's sequence
    blocks, has = [], np.zeros(n_seq, dtype=bool)
    for k in KMERS:
        n = max(total - k + 1, 0)
        valid = np.arange(n) + k <= end_of[:n]  # the window stays inside its sequence
        index = np.zeros(n, dtype=np.int64)
        for j in range(k):
            part = codes[j: j + n]
            valid &= part < 4
            index = index * 4 + np.minimum(part, 3)
        counts = np.bincount(seq_of[:n][valid] * 4 ** k + index[valid], minlength=n_seq * 4 ** k)
        counts = counts.reshape(n_seq, 4 ** k).astype(np.float64)
        totals = counts.sum(axis=1)
        block = np.full((n_seq, 4 ** k), 0.5 ** k)
        some = totals > 0
        block[some] = np.sqrt(counts[some] / totals[some, None])
        blocks.append(block)
        if k == KMERS[0]:
            has = some
    rows = np.concatenate(blocks, axis=1) / math.sqrt(len(KMERS))
    rows[~has] = 0.0
    return rows, has


def _knn_distance(queries, reference, k=NEIGHBOURS, chunk=1024):
    """Mean Euclidean distance of each query to its k nearest reference rows.

    Squared distances as ``|q|^2 + |r|^2 - 2 q.r``, computed in place in one
    (chunk, reference) buffer, in that order of operations (the same rounding as
    the one-line expression; ``2 q.r`` is exact doubling).
    """
    k = min(k, len(reference))
    out = np.empty(len(queries))
    ref_sq = (reference ** 2).sum(1)
    for start in range(0, len(queries), chunk):
        q = queries[start: start + chunk]
        d2 = np.add.outer((q ** 2).sum(1), ref_sq)
        product = q @ reference.T
        product *= 2.0
        d2 -= product
        np.maximum(d2, 0.0, out=d2)
        d2.partition(k - 1, axis=1)
        out[start: start + chunk] = np.sqrt(d2[:, :k]).mean(1)
    return out


def _encode(matrix):
    q = np.clip(np.rint(matrix * _SCALE), 0, 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def _decode(text, rows):
    q = np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(rows, _DIM)
    return q.astype(np.float64) / _SCALE


def _calibration_folds(n, groups, seed):
    """Fold number (0..F-1) of each training sequence, whole groups together."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.permutation(n) % CALIBRATION_FOLDS
    names, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    group_fold = rng.permutation(len(names)) % CALIBRATION_FOLDS
    return group_fold[inverse]


def _upper_bound(values, rate):
    """The conformal upper bound: the ceil((n+1)(1-rate))-th smallest value, so that a new value
    exchangeable with ``values`` exceeds it with probability at most ``rate`` (at most the
    largest value: with fewer than 1/rate values the bound is the training maximum)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    k = min(len(ordered), math.ceil((len(ordered) + 1) * (1 - rate)))
    return float(ordered[k - 1])


def _lower_bound(values, rate):
    """The conformal lower bound: the floor((n+1) rate)-th smallest value (at least the minimum)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    k = max(1, math.floor((len(ordered) + 1) * rate))
    return float(ordered[k - 1])


def _band_edges(lengths):
    """Lower length edges of the bands after the first: about equal counts, at least MIN_BAND each,
    never cutting between equal lengths."""
    ordered = np.sort(lengths)
    n = len(ordered)
    bands = max(1, min(LENGTH_BANDS, n // MIN_BAND))
    target = n / bands
    edges, start = [], 0
    for b in range(1, bands):
        cut = max(int(round(b * target)), start + MIN_BAND)
        while 0 < cut < n and ordered[cut] == ordered[cut - 1]:
            cut += 1
        if cut >= n or n - cut < MIN_BAND:
            break
        edges.append(float(ordered[cut]))
        start = cut
    return edges


def fit_domain(sequences, groups=None, *, seed=0):
    """The applicability domain of a model trained on ``sequences`` (a JSON-able dict).

    ``groups`` (optional, one per sequence, e.g. CD-HIT cluster ids) keep near-copies
    in one calibration fold, so the calibration distances are those of sequences
    unlike anything else in the reference, as new sequences are.
    """
    sequences = list(sequences)
    if len(sequences) < 2 * CALIBRATION_FOLDS:
        raise ValueError(f"an applicability domain needs at least {2 * CALIBRATION_FOLDS} training sequences")
    if groups is not None and len(groups) != len(sequences):
        raise ValueError("one group per sequence")
    lengths = np.array([len(s) for s in sequences], dtype=np.float64)
    quantiles = np.percentile(lengths, LENGTH_PERCENTILES)
    prof, ok = profiles(sequences)
    prof, kept = prof[ok], np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    ref_index = np.sort(rng.permutation(len(prof))[:MAX_REFERENCE])
    encoded = _encode(prof[ref_index])
    reference = _decode(encoded, len(ref_index))  # measure against what is stored
    folds = _calibration_folds(len(sequences), groups, seed)[kept]
    ref_folds = folds[ref_index]
    calibration = np.empty(len(prof))
    for f in range(CALIBRATION_FOLDS):
        rows = folds == f
        if rows.any():
            calibration[rows] = _knn_distance(prof[rows], reference[ref_folds != f])
    kept_lengths = lengths[kept]
    edges = _band_edges(kept_lengths)
    band_of = np.searchsorted(edges, kept_lengths, side="right")
    bands = []
    for b in range(len(edges) + 1):
        dist = calibration[band_of == b]
        bands.append({
            "n": int(len(dist)),
            "min_length": float(kept_lengths[band_of == b].min()),
            "max_length": float(kept_lengths[band_of == b].max()),
            "distances": [round(float(v), 6) for v in np.quantile(dist, CALIBRATION_GRID / 100.0)],
            "cutoff": _upper_bound(dist, COMPOSITION_TAIL),
        })
    return {
        "format": DOMAIN_FORMAT,
        "n_sequences": len(sequences),
        "length": {
            "percentiles": [float(p) for p in LENGTH_PERCENTILES],
            "values": [float(v) for v in quantiles],
            "low": _lower_bound(lengths, LENGTH_TAIL),
            "high": _upper_bound(lengths, LENGTH_TAIL),
            "tail_rate": LENGTH_TAIL,
        },
        "composition": {
            "profile": "sqrt 1,2,3-mer frequencies / sqrt(3)",
            "kmers": list(KMERS),
            "neighbours": NEIGHBOURS,
            "reference_rows": int(len(ref_index)),
            "reference": encoded,
            "calibration_folds": CALIBRATION_FOLDS,
            "grouped": groups is not None,
            "band_edges": edges,
            "percentiles": [float(g) for g in CALIBRATION_GRID],
            "bands": bands,
            "tail_rate": COMPOSITION_TAIL,
        },
    }


def to_json(domain):
    return json.dumps(domain, sort_keys=True, separators=(",", ":"))


def _nt(n):
    return f"{int(round(n)):,} nt"


def _pct(rate):
    return f"{100 * rate:g}%"


class Domain:
    """A parsed domain dict, ready to assess sequences."""

    def __init__(self, domain):
        if isinstance(domain, str):
            domain = json.loads(domain)
        if not isinstance(domain, dict) or domain.get("format") != DOMAIN_FORMAT:
            raise ValueError(f"not an rnaloc applicability domain (format {DOMAIN_FORMAT})")
        self.data = domain
        length, comp = domain["length"], domain["composition"]
        self.low, self.high = float(length["low"]), float(length["high"])
        self.length_tail = float(length["tail_rate"])
        self.reference = _decode(comp["reference"], int(comp["reference_rows"]))
        self.neighbours = int(comp["neighbours"])
        self.edges = np.asarray(comp["band_edges"], dtype=np.float64)
        self.grid_pct = np.asarray(comp["percentiles"], dtype=np.float64)
        self.bands = [(np.asarray(b["distances"], dtype=np.float64), float(b["cutoff"])) for b in comp["bands"]]
        self.cutoffs = np.array([cutoff for _, cutoff in self.bands])  # per band, for assessing many at once
        self.comp_tail = float(comp["tail_rate"])

    def band(self, n):
        return int(np.searchsorted(self.edges, n, side="right"))

    def percentile(self, distance, n):
        """Distance percentile among the (out-of-sample) distances of the training sequences
        in the length band of ``n``."""
        grid, _ = self.bands[self.band(n)]
        if distance > grid[-1]:
            return 100.0
        # the right edge of a run of equal quantiles: the share at or below
        return float(np.interp(distance, grid, self.grid_pct))

    def length_note(self, n):
        if n < self.low:
            return (f"length {_nt(n)} is below the shortest {_pct(self.length_tail)} of this model's "
                    f"training sequences (under {_nt(self.low)})")
        if n > self.high:
            return (f"length {_nt(n)} is above the longest {_pct(self.length_tail)} of this model's "
                    f"training sequences (over {_nt(self.high)})")
        return None

    def distances(self, sequences, block=2048):
        """Composition distance of each sequence (NaN without any A/C/G/U); ``block`` sequences at a
        time, so memory stays small whatever the number of sequences."""
        dist = np.full(len(sequences), np.nan)
        for start in range(0, len(sequences), block):
            prof, ok = profiles(sequences[start: start + block])
            if ok.any():
                part = dist[start: start + block]
                part[ok] = _knn_distance(prof[ok], self.reference, self.neighbours)
        return dist

    def assess(self, sequences=None, lengths=None):
        """Per sequence: (in_domain, note). ``lengths`` alone (embeddings without sequences)
        assesses the length only; the composition is then not assessed."""
        if sequences is not None:
            sequences = list(sequences)
            lengths = [len(s) for s in sequences]
            dist = self.distances(sequences)
        else:
            lengths = list(lengths)
            dist = None
        # vectorised over the sequences: the band of each length and whether its distance is past the band's cut-off
        n_arr = np.asarray(lengths, dtype=np.float64)
        bands = np.searchsorted(self.edges, n_arr, side="right")
        long_or_short = (n_arr < self.low) | (n_arr > self.high)
        comp_out = np.zeros(len(lengths), dtype=bool) if dist is None else dist > self.cutoffs[bands]  # NaN: False
        # without sequences, the composition is never assessed, so no row is plain
        plain = np.zeros(len(lengths), dtype=bool) if dist is None else ~long_or_short & ~comp_out & ~np.isnan(dist)
        results = []
        for i, n in enumerate(lengths):
            if plain[i]:  # the usual case: in the domain, nothing to say
                results.append((IN, ""))
                continue
            notes = []
            state = IN
            note = self.length_note(n)
            if note:
                notes.append(note)
                state = OUT
            if dist is None:
                notes.append("composition not assessed (embeddings input, no sequences)")
                state = OUT if state == OUT else UNKNOWN
            elif np.isnan(dist[i]):
                notes.append("composition not assessed (no A/C/G/U in the sequence)")
                state = OUT if state == OUT else UNKNOWN
            elif comp_out[i]:
                pct = self.percentile(dist[i], n)
                shown = f"{min(pct, 99.9):.1f}" if pct < 100 else "100, beyond every training sequence"
                notes.append(f"composition unlike the training sequences of similar length (distance percentile {shown})")
                state = OUT
            results.append((state, "; ".join(notes)))
        return results


def no_domain(reason, n):
    """``n`` results for a model that carries no domain."""
    return [(UNKNOWN, reason)] * n


def assess(domain, sequences=None, lengths=None):
    """Per sequence (in_domain, note) against ``domain`` (dict, JSON text or :class:`Domain`)."""
    if not isinstance(domain, Domain):
        domain = Domain(domain)
    return domain.assess(sequences=sequences, lengths=lengths)
