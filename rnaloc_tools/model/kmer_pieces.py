"""A very long sequence through a k-mer model, in pieces (memory bounded by the piece).

The k-mer graph (:mod:`rnaloc_tools.model.kmer`) holds window tables of 4^ceil(k/2)
values per nucleotide: ~3 KB per nucleotide for kmax = 7, so a 2-Mb sequence
would need ~6 GB in one piece. But everything it computes from the sequence is
local:

- the k-mer frequencies are sums over window starts: counted here over
  consecutive pieces of window starts, each read with the kmax - 1 nucleotides
  after it (no window counted twice or missed), exactly as the graph counts them
  (the same one-hot products, in float64: integer counts are exact);
- the probabilities depend on the sequence only through those frequencies and
  its length: the part of the model's own ONNX graph from the frequencies on
  (standardisation, classifier, and anything appended such as calibration) is
  run on them;
- a position's importance before normalisation depends on the frequencies (the
  margin gradient) and on the windows covering it: the model's own graph computes
  it for each piece read with kmax - 1 nucleotides of context on both sides, fed
  the whole sequence's frequencies and length; the pieces are joined and
  normalised to sum 1 as the graph does.

The two sub-graphs are cut out of the ONNX file by the tensors' values, not
their names: on a short random sequence, the tensor equal to the frequencies
computed here and the tensor proportional to the attention (before its
normalisation) are found among all intermediate values. Before use, the pieces
path is checked against the whole graph on a sequence cut into many pieces
(probabilities equal, attention within 1e-6); a model where any step fails is
run whole (:func:`KmerPieces.build` returns None and says why at debug level).
"""

import json
import logging

import numpy as np

log = logging.getLogger("rnaloc")

#: Window starts per piece: a piece of a kmax-7 model holds ~32k x 256 float64 table values (64 MB).
PIECE = 32768
#: Counts (sequences x 4^kmax) and nucleotides per batch of :meth:`KmerPieces.probabilities`.
BATCH_COUNTS = 1 << 21
BATCH_NT = 1 << 18
#: Attention of the pieces path vs the whole graph, checked when the model is loaded.
CHECK_ATOL = 1e-6


def kmer_counts(x, kmin, kmax, piece=PIECE, block=256):
    """Expected k-mer counts (k = kmin..kmax) of one one-hot sequence x (L, 4), concatenated (F,), float64.

    Counted over pieces of ``piece`` window starts, each read with kmax - 1 more
    nucleotides, so memory is bounded by the piece whatever the length. Only windows
    that end inside the sequence count (in the graph the others are products with
    zero padding). A window of A/C/G/U is counted by its code (first base most
    significant, as the graph orders k-mers); a window touching an ambiguity code by
    the product of its one-hot rows (an N adds 1/4 to each of four k-mers), as the
    graph does, ``block`` windows at a time.
    """
    length = len(x)
    counts = [np.zeros(4**k) for k in range(kmin, kmax + 1)]
    for start in range(0, length, piece):
        stop = min(length, start + piece)
        seg = np.asarray(x[start : min(length, stop + kmax - 1)])
        codes, impure = _bases(seg)
        seg = seg.astype(np.float64)
        ambiguous = np.concatenate([[0], np.cumsum(impure)])  # ambiguous bases before each position
        for j, k in enumerate(range(kmin, kmax + 1)):
            m = min(stop - start, len(seg) - k + 1)  # window starts of this piece that end inside the sequence
            if m <= 0:
                continue
            pure = ambiguous[k : k + m] == ambiguous[:m]
            code = np.zeros(m, dtype=np.int64)
            for i in range(k):
                code = code * 4 + codes[i : i + m]
            counts[j] += np.bincount(code[pure], minlength=4**k)
            for first in range(0, int((~pure).sum()), block):
                starts = np.flatnonzero(~pure)[first : first + block]
                prod = seg[starts]  # (B, 4)
                for i in range(1, k):
                    prod = (prod[:, :, None] * seg[starts + i][:, None, :]).reshape(len(starts), -1)
                counts[j] += prod.sum(0)
    return np.concatenate(counts)


def batch_frequencies(mats, kmin, kmax, block=256):
    """The model's frequencies (N, F) float32 of several one-hot sequences (L_i, 4), counted together.

    The same counts as :func:`kmer_counts` (so the same frequencies, divided as the
    graph divides them), for a batch at once: the sequences are laid end to end and
    each window start gets the key sequence * 4^k + code, built from the key of
    length k - 1 (one step per k); a window counts when it ends inside its sequence.
    Memory is a few int64 values per nucleotide plus (N, 4^kmax) counts: callers
    bound both.
    """
    lengths = np.array([len(m) for m in mats], dtype=np.int64)
    n_seq, total = len(mats), int(lengths.sum())
    x = np.concatenate(mats) if total else np.zeros((0, 4), dtype=np.float32)
    codes, impure = _bases(x)
    codes = np.concatenate([codes, np.zeros(kmax, dtype=np.int64)])
    ends = np.repeat(np.cumsum(lengths), lengths)  # where each position's sequence ends
    room = ends - np.arange(total)  # nucleotides from each position to the end of its sequence
    clean = room
    if impure.any():  # nucleotides from each position to the first ambiguous one (or the end)
        stops = np.flatnonzero(impure)
        after = np.searchsorted(stops, np.arange(total))
        first = np.append(stops, total)[after]
        clean = np.minimum(first, ends) - np.arange(total)
    key = np.repeat(np.arange(n_seq, dtype=np.int64), lengths)
    parts = []
    for k in range(1, kmax + 1):
        key = key * 4 + codes[k - 1 : k - 1 + total]  # sequence * 4^k + the code of the window starting here
        if k < kmin:
            continue
        counts = np.bincount(key[clean >= k], minlength=n_seq * 4**k).reshape(n_seq, 4**k)
        mixed = np.flatnonzero((room >= k) & (clean < k))
        if len(mixed):  # windows touching an ambiguity code: the product of their one-hot rows
            counts = counts.astype(np.float64)
            for first in range(0, len(mixed), block):
                starts = mixed[first : first + block]
                prod = np.asarray(x[starts], dtype=np.float64)  # (B, 4)
                for i in range(1, k):
                    prod = (prod[:, :, None] * np.asarray(x[starts + i], dtype=np.float64)[:, None, :]
                            ).reshape(len(starts), -1)
                seqs, first_rows = np.unique(key[starts] >> (2 * k), return_index=True)  # starts are sorted
                counts[seqs] += np.add.reduceat(prod, first_rows, axis=0)
        windows = np.maximum(lengths - (k - 1), 1).astype(np.float32)[:, None]
        parts.append(counts.astype(np.float32) / windows)  # integer counts < 2^24: exact in float32
    return np.concatenate(parts, 1)


def _bases(x):
    """Each row's base (0-3 for A, C, G, U) and whether it is ambiguous: not exactly one of the four
    one-hot rows (an IUPAC code's fractions, or anything else)."""
    x = np.asarray(x)
    if x.dtype == np.float16 and x.ndim == 2 and x.shape[1] == 4:  # a row is 8 bytes: look it up as one integer
        rows = np.eye(4, dtype=np.float16).view(np.uint64)[:, 0]
        order = np.argsort(rows)
        keys = np.ascontiguousarray(x).view(np.uint64)[:, 0]
        at = np.minimum(np.searchsorted(rows[order], keys), 3)
        return order[at].astype(np.int64), rows[order][at] != keys
    match = (x[:, None, :] == np.eye(4, dtype=x.dtype)).all(-1)  # (L, 4)
    return match.argmax(1).astype(np.int64), ~match.any(1)


def frequencies(x, kmin, kmax, piece=PIECE):
    """The model's frequencies (1, F) float32: count / number of windows, as the graph divides them."""
    length = len(x)
    counts = kmer_counts(x, kmin, kmax, piece).astype(np.float32)
    parts, offset = [], 0
    for k in range(kmin, kmax + 1):
        n = np.float32(max(length - (k - 1), 1))
        parts.append(counts[offset : offset + 4**k] / n)
        offset += 4**k
    return np.concatenate(parts)[None, :]


class KmerPieces:
    """Run one long sequence through a k-mer ONNX model in pieces: :meth:`run` (x, L) -> (probs, attention)."""

    def __init__(self, kmin, kmax, probs_session, score_session, freqs_name, score_name, piece=PIECE):
        self.kmin, self.kmax = kmin, kmax
        self.probs_session = probs_session
        self.score_session = score_session
        self.freqs_name = freqs_name
        self.score_name = score_name
        self.piece = piece

    @classmethod
    def build(cls, onnx_path, meta, make_session, piece=PIECE):
        """The pieces runner of a k-mer model, or None (with the reason at debug level) when it cannot be cut."""
        if meta.get("arch") != "kmer":
            return None
        try:
            hp = json.loads(meta.get("hparams", "{}"))
            kmin, kmax = int(hp["kmin"]), int(hp["kmax"])
            runner = cls._cut(onnx_path, kmin, kmax, make_session, piece)
        except Exception as exc:  # noqa: BLE001 - any failure means: run the model whole
            log.debug("%s: long sequences run whole (the k-mer graph could not be cut into pieces: %s)",
                      onnx_path, exc)
            return None
        return runner

    @classmethod
    def _cut(cls, onnx_path, kmin, kmax, make_session, piece):
        import onnx
        from onnx import helper, shape_inference, utils

        proto = shape_inference.infer_shapes(onnx.load(onnx_path))
        rng = np.random.default_rng(0)
        probe_len = 61
        x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, probe_len)][None]  # (1, L, 4)
        lengths = np.array([probe_len], dtype=np.int64)
        # every float intermediate as an output: find the two tensors by their values
        probe = onnx.ModelProto()
        probe.CopyFrom(proto)
        known = {o.name for o in probe.graph.output}
        for info in proto.graph.value_info:
            if info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and info.name not in known:
                probe.graph.output.append(helper.make_tensor_value_info(info.name, onnx.TensorProto.FLOAT, None))
        session = make_session(probe.SerializeToString())
        names = [o.name for o in session.get_outputs()]
        values = dict(zip(names, session.run(names, {"embeddings": x, "lengths": lengths})))
        freqs = frequencies(x[0], kmin, kmax)
        attention = values["attention"]
        freqs_name, scores = None, []
        for name, value in values.items():
            if name in ("probabilities", "attention"):
                continue
            if freqs_name is None and value.shape == freqs.shape and np.array_equal(value, freqs):
                freqs_name = name
            elif (value.shape == attention.shape and (value >= 0).all() and value.sum() > 0
                  and abs(float(value.sum()) - 1) > 1e-3
                  and np.allclose(value / value.sum(), attention, rtol=1e-5, atol=1e-8)):
                scores.append(name)  # e.g. the score before and after its ReLU: the check below decides
        if freqs_name is None or not scores:
            raise ValueError("the frequency or importance tensor was not found")
        extract = utils.Extractor(proto)
        # one thread: a small product, and a row's last bit must not depend on how rows are shared out
        probs_session = make_session(extract.extract_model([freqs_name, "lengths"], ["probabilities"]).SerializeToString(),
                                     single_thread=True)
        reasons = []
        for score_name in scores:
            score_model = extract.extract_model(["embeddings", "lengths", freqs_name], [score_name])
            runner = cls(kmin, kmax, probs_session, make_session(score_model.SerializeToString()), freqs_name,
                         score_name, piece)
            try:
                runner._check(session)
            except ValueError as exc:
                reasons.append(str(exc))
                continue
            return runner
        raise ValueError("; ".join(reasons))

    def _check(self, whole_session):
        """The pieces path on a sequence cut into many pieces agrees with the whole graph."""
        rng = np.random.default_rng(1)
        length = 997
        x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, length)]
        probs, attention = self.run(x, piece=64)
        p, a = whole_session.run(["probabilities", "attention"],
                                 {"embeddings": x[None], "lengths": np.array([length], dtype=np.int64)})
        if not np.array_equal(probs, p[0]) or not np.allclose(attention, a[0], rtol=0, atol=CHECK_ATOL):
            raise ValueError(f"the pieces path differs from the whole graph (probabilities by "
                             f"{float(np.abs(probs - p[0]).max()):.2g}, attention by {float(np.abs(attention - a[0]).max()):.2g})")
        # the batched counts (:meth:`probabilities`): sequences shorter than kmax, one, and over a piece
        seqs = [x, x[:1], x[: self.kmax - 1], x[:20], x[:64]]
        batched = self.probabilities(seqs, piece=64)
        whole = np.concatenate([whole_session.run(["probabilities"], {"embeddings": s[None],
                                                                      "lengths": np.array([len(s)], dtype=np.int64)})[0]
                                for s in seqs])
        if not np.allclose(batched, whole, rtol=0, atol=CHECK_ATOL):
            raise ValueError(f"the batched frequencies path differs from the whole graph (probabilities by "
                             f"{float(np.abs(batched - whole).max()):.2g})")

    def probabilities(self, mats, piece=None):
        """Probabilities (N, C) float32 of one-hot sequences (L_i, 4): their frequencies counted here
        (:func:`batch_frequencies`; a sequence over a piece by :func:`frequencies`, in pieces) and the
        model's own graph from the frequencies on. No attention: the fast path of a prediction
        without it. Batches hold at most :data:`BATCH_COUNTS` counts and :data:`BATCH_NT` nucleotides."""
        piece = piece or self.piece
        lengths = np.array([len(m) for m in mats], dtype=np.int64)
        probs = [None] * len(mats)
        rows = max(1, BATCH_COUNTS // 4**self.kmax)
        batch, nt = [], 0
        for i in range(len(mats) + 1):
            last = i == len(mats)
            if batch and (last or len(batch) == rows or nt + lengths[i] > BATCH_NT or lengths[i] > piece):
                freqs = batch_frequencies([mats[j] for j in batch], self.kmin, self.kmax)
                self._probabilities(freqs, lengths[batch], batch, probs)
                batch, nt = [], 0
            if last:
                break
            if lengths[i] > piece:  # one very long sequence: counted piece by piece
                self._probabilities(frequencies(mats[i], self.kmin, self.kmax, piece), lengths[i : i + 1],
                                    [i], probs)
            else:
                batch.append(i)
                nt += int(lengths[i])
        return np.stack(probs) if probs else np.zeros((0, 0), dtype=np.float32)

    def _probabilities(self, freqs, lengths, rows, out):
        # ONNX Runtime's matrix product takes rows in blocks of 4 and a short last block another way,
        # which can change its last bit: padded to whole blocks, a row's result does not depend on
        # how many others share its batch (measured bitwise, alone vs in batches of 2..300)
        pad = -len(freqs) % 4
        if pad:
            freqs = np.concatenate([freqs, np.repeat(freqs[:1], pad, 0)])
            lengths = np.concatenate([lengths, np.repeat(lengths[:1], pad)])
        (p,) = self.probs_session.run(["probabilities"], {self.freqs_name: freqs, "lengths": lengths})
        for row, i in enumerate(rows):
            out[i] = p[row]

    def run(self, x, piece=None):
        """x (L, 4) one-hot (any float dtype) -> probabilities (C,) float32, attention (L,) float32."""
        piece = piece or self.piece
        length = len(x)
        lengths = np.array([length], dtype=np.int64)
        freqs = frequencies(x, self.kmin, self.kmax, piece)
        (probs,) = self.probs_session.run(["probabilities"], {self.freqs_name: freqs, "lengths": lengths})
        context = self.kmax - 1
        push = np.empty(length, dtype=np.float32)
        for start in range(0, length, piece):
            stop = min(length, start + piece)
            lo, hi = max(0, start - context), min(length, stop + context)
            seg = np.asarray(x[lo:hi], dtype=np.float32)[None]
            (score,) = self.score_session.run([self.score_name], {"embeddings": seg, "lengths": lengths,
                                                                  self.freqs_name: freqs})
            push[start:stop] = score[0, start - lo : stop - lo]
        total = push.sum(dtype=np.float32)
        attention = push / total if total > 0 else np.full(length, 1 / length, dtype=np.float32)
        return probs[0], attention.astype(np.float32)
