"""Prediction with an exported ONNX model (the library behind ``rnaloc predict``).

Input: sequence records (embedded on the fly with the model's own encoder by
:func:`rnaloc_tools.embed.embed_chunk`, with the long-sequence policy and
float16 storage of ``rnaloc embed``, so a FASTA and its embeddings NPZ predict
the same) or an embeddings NPZ (its encoder metadata must match the model's).

Streaming: the input is read a chunk at a time (a budget of a few million
nucleotides, fewer for a wide encoder such as RNA-FM); a chunk is embedded in
memory (no temporary file), its sequences sorted by length and batched, run
through ONNX Runtime (CUDA provider when present, CPU otherwise), its rows
written, and the chunk dropped before the next is read. Memory is bounded by the
chunk, not by the file. Rows come out one per input sequence, in input order:
``id  rna_type  prediction  probability_<class>...``; the predictions TSV and
the attention NPZ are renamed into place only when complete.

Prediction rule: the class of highest probability; an exact tie goes to the
model's ``tie_class`` (the class more frequent in its training data), never
silently to the first class. A model trained with ``--max-len N`` sees the first
N positions of longer sequences (as in training); their attention is zero beyond N.
The optional attention NPZ holds, per sequence, one float32 weight per
nucleotide (summing to 1), in the ragged layout of the embeddings NPZ with
``format`` = ``rnaloc-attention``.
"""

import contextlib
import csv
import json
import logging
import os
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import RNA_TYPES
from .errors import InputError, RnalocError
from .formats import ATTENTION_FORMAT, EmbeddingStore, EmbeddingWriter, check_same_encoder
from .formats.sequences import is_npz  # the one sniffer of every tool
from .formats.meta import check_classes, check_rna_type, optional_str, parse_json_object, positive_int
from .model.batching import bucket_batches, pad_batch, pair_cap
from .model.metrics import predicted_class
from .progress import progress

log = logging.getLogger("rnaloc")

PROVIDERS = ("auto", "cuda", "cpu")
DEFAULT_BATCH_SIZE = 64
#: Padded positions per batch at most (a batch of long sequences gets fewer of them).
MAX_TOKENS = 131072
#: Sequences longer than this go through a k-mer model in pieces (:mod:`rnaloc_tools.model.kmer_pieces`).
LONG_NT = 32768
REQUIRED_META = ("rna_type", "classes", "encoder")


def _providers(ort, provider):
    available = ort.get_available_providers()
    if provider == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if provider == "cuda":
        raise RnalocError(
            f"--provider cuda: ONNX Runtime has no CUDA provider here (available: {', '.join(available)}); "
            "install onnxruntime-gpu instead of onnxruntime, or use --provider cpu"
        )
    return ["CPUExecutionProvider"]


class OnnxModel:
    """An exported rnaloc model in an ONNX Runtime session, with its metadata."""

    def __init__(self, path, *, provider="auto", threads=None):
        from .fileio import file_sha256
        from .model.runtime import import_onnxruntime

        ort = import_onnxruntime()
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise InputError(self.path, "no such file")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 4  # errors reach the user as one line of ours, not ORT's log
        # ORT caches a memory plan per input shape; batches of new shapes keep coming in a long run,
        # so the cache grew with the input (10k circRNAs 366 MB, 30k 380 MB; without it 316, 317)
        options.enable_mem_pattern = False
        if threads:
            options.intra_op_num_threads = threads
        self._ort, self._options, self._providers = ort, options, _providers(ort, provider)
        self._pieces = False  # not looked at yet
        try:
            self.session = ort.InferenceSession(self.path, options, providers=self._providers)
        except RnalocError:
            raise
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types for bad files
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(self.path, f"not a readable ONNX model ({reason[:200]})") from None
        if provider == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            # onnxruntime-gpu lists CUDA as available without a usable GPU, then runs on the CPU
            raise RnalocError(
                "--provider cuda: ONNX Runtime could not start CUDA (no GPU or NVIDIA driver visible, or "
                "CUDA libraries missing); in a container give it the GPU (docker --gpus all, "
                "apptainer --nv), or use --provider auto or cpu"
            )
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in REQUIRED_META if k not in meta]
        inputs = {i.name for i in self.session.get_inputs()}
        if missing or inputs != {"embeddings", "lengths"}:
            raise InputError(self.path, "not an rnaloc model (made by `rnaloc export-onnx`): its metadata or inputs are missing")
        parsed = {}
        for key, default in (("classes", None), ("max_length", "null")):
            try:
                parsed[key] = json.loads(meta.get(key, default))
            except json.JSONDecodeError as exc:
                raise InputError(self.path, f"corrupt model metadata: {key} is not JSON ({exc})") from None
        classes, self.max_length = parsed["classes"], parsed["max_length"]
        # every value is checked before use: class names reach tables and file names (motif logos)
        self.rna_type = check_rna_type(meta["rna_type"], self.path)
        self.classes = check_classes(classes, self.rna_type, self.path)
        self.encoder = parse_json_object(meta["encoder"], self.path, "model metadata (encoder)")
        self.max_length = positive_int(self.max_length, self.path, "max_length")
        optional_str(self.encoder.get("encoder"), self.path, "encoder.encoder")
        self.meta = dict(meta)
        tie = meta.get("tie_class", self.classes[0])
        self.tie_class = self.classes.index(tie) if tie in self.classes else 0
        self.dim = positive_int(self.encoder.get("dim"), self.path, "encoder.dim", optional=False)
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        if "probabilities" not in outputs or "attention" not in outputs:
            raise InputError(self.path, "not an rnaloc model: its outputs are not 'probabilities' and 'attention'")
        width = outputs["probabilities"][-1] if outputs["probabilities"] else None
        if isinstance(width, int) and width != len(self.classes):
            raise InputError(self.path, f"corrupt model: {width} probability outputs for {len(self.classes)} classes")
        # attention matrices of length^2 cap the batches (bucket_batches' max_pairs). A model exported
        # before the key existed says nothing: only the k-mer architecture is known to be linear, so
        # any other is capped (the cap bounds memory only; a row's result does not depend on its batch)
        quadratic = meta.get("quadratic_in_length")
        self.quadratic = quadratic == "true" if quadratic is not None else meta.get("arch") != "kmer"
        self.sha256 = file_sha256(self.path)
        self.provider = self.session.get_providers()[0]

    @property
    def name(self):
        return os.path.basename(self.path)

    def run(self, x, lengths):
        """(B, L, D) float32, (B,) int64 -> probabilities (B, C), attention (B, L)."""
        return self.session.run(["probabilities", "attention"], {"embeddings": x, "lengths": lengths})

    def make_session(self, model_bytes, single_thread=False):
        """An ONNX Runtime session of another graph with this model's options and providers
        (``single_thread``: one intra-op thread, so how a batch's rows are shared between threads
        cannot change a row's result)."""
        options = self._options
        if single_thread:
            options = self._ort.SessionOptions()
            for name in ("graph_optimization_level", "log_severity_level", "enable_mem_pattern"):
                setattr(options, name, getattr(self._options, name))
            options.intra_op_num_threads = 1
        return self._ort.InferenceSession(model_bytes, options, providers=self._providers)

    @property
    def pieces(self):
        """A :class:`~rnaloc_tools.model.kmer_pieces.KmerPieces` runner for very long sequences, or None
        (not a k-mer model, or its graph cannot be cut); built when first needed."""
        if self._pieces is False:
            from .model.kmer_pieces import KmerPieces

            self._pieces = KmerPieces.build(self.path, self.meta, self.make_session)
        return self._pieces


#: How far a row of probabilities may be from summing to 1 (float32 softmax: ~1e-7).
PROBABILITY_TOLERANCE = 1e-3


def check_probabilities(probs, source, ids):
    """Refuse model outputs that are not probabilities: values outside 0..1, or rows not summing to 1."""
    tol = PROBABILITY_TOLERANCE
    bad = ((probs < -tol) | (probs > 1 + tol)).any(axis=1) | (np.abs(probs.sum(axis=1) - 1) > tol)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(source, f"the model's outputs are not probabilities ({', '.join(f'{v:.4g}' for v in probs[i])}: "
                         "values outside 0..1, or not summing to 1): not a model made by `rnaloc export-onnx`", ids[i])


def load_model(model=None, rna_type=None, *, provider="auto", threads=None, label_source=None):
    """An :class:`OnnxModel` from a path, or the bundled model of ``rna_type`` trained on ``label_source``
    labels (None: the default, RNALocate; "fractionation" exists for lncRNA)."""
    if isinstance(model, OnnxModel):
        return model
    if model is None:
        from .bundled import LABEL_SOURCES, bundled_model_path

        if rna_type is None:
            raise RnalocError("give a model (--model MODEL.onnx) or an rna_type for the bundled model (--rna-type)")
        model = bundled_model_path(rna_type, label_source or LABEL_SOURCES[0])
    loaded = OnnxModel(model, provider=provider, threads=threads)
    if rna_type is not None and loaded.rna_type != rna_type:
        raise RnalocError(f"{loaded.path}: the model predicts {loaded.rna_type}, not {rna_type}")
    return loaded


class Predictor:
    """One model (and, for sequence input, its encoder): a chunk of sequences -> its rows.

    :meth:`predict_chunk` takes a list of records (or ``ids`` and their stored
    matrices with :meth:`predict_matrices`) and returns a :class:`ChunkResult`:
    the rows as a DataFrame in the order given (``id rna_type prediction
    probability_<class>...``), the probabilities and, when asked, the attention.
    Nothing in a row depends on the other sequences of the chunk, so callers may
    cut the input anywhere: :func:`predict_stream` cuts it into chunks of a few
    million nucleotides, writes each chunk's rows and drops it. A caller adding
    per-row columns or routing rows to several models works on these per-chunk
    frames.
    """

    def __init__(self, model, *, encoder=None, long_policy="truncate", toks_per_batch=None,
                 batch_size=DEFAULT_BATCH_SIZE, source="the input"):
        self.model = model
        self.encoder = encoder
        self.long_policy = long_policy
        self.toks_per_batch = toks_per_batch
        self.batch_size = batch_size
        self.source = source
        self.cropped = 0  # sequences longer than the model's max_length, seen so far
        self.embed_stats = None
        if encoder is not None:
            from .embed import EmbedStats

            check_same_encoder(model.encoder, encoder.meta(), f"model {model.name}", f"encoder {encoder.name}")
            self.embed_stats = EmbedStats()

    @property
    def columns(self):
        return ["id", "rna_type", "prediction"] + [f"probability_{c}" for c in self.model.classes]

    @property
    def label(self):
        return self.model.rna_type

    def chunk_nt(self, max_nt=None):
        """Nucleotides per chunk for this model's encoder (see :func:`rnaloc_tools.embed.chunk_nt`)."""
        from .embed import chunk_nt

        return chunk_nt(self.encoder if self.encoder is not None else _Dim(self.model.dim), max_nt)

    def embedding_meta(self):
        """The embedding metadata of sequences this predictor embeds (encoder, long-sequence policy)."""
        from .embed import long_policy_name

        meta = self.encoder.meta()
        max_len = self.encoder.max_len
        meta["long_policy"] = long_policy_name(self.encoder, self.long_policy, (max_len // 4) if max_len else 0)
        return meta

    def attention_meta(self, embedding_meta):
        model = self.model
        return {"dim": 1, "rna_type": model.rna_type, "classes": list(model.classes), "model": model.name,
                "model_sha256": model.sha256, "model_encoder": model.encoder.get("encoder"),
                # which positions the model saw: the encoder's limit and policy, and the model's crop
                "long_policy": embedding_meta.get("long_policy"), "max_length": embedding_meta.get("max_length"),
                "model_max_length": model.max_length}

    def predict_chunk(self, records, attention=False):
        """Embed ``records`` with the encoder and predict them: a :class:`ChunkResult` in their order."""
        from .embed import embed_chunk

        # float16, as `rnaloc embed` stores them: a FASTA and its embeddings NPZ predict the same
        mats = embed_chunk(records, self.encoder, long=self.long_policy, toks_per_batch=self.toks_per_batch,
                           stats=self.embed_stats, dtype=np.float16)
        return self.predict_matrices([r.id for r in records], mats, attention=attention)

    def predict_matrices(self, ids, mats, attention=False):
        """Predict (L_i, D) matrices: a :class:`ChunkResult` in the order of ``ids``."""
        model = self.model
        full = np.array([m.shape[0] for m in mats], dtype=np.int64)
        used = np.minimum(full, model.max_length) if model.max_length else full
        self.cropped += int((used < full).sum())
        probs = np.zeros((len(ids), len(model.classes)), dtype=np.float32)
        weights = [None] * len(ids) if attention else None
        batched = np.arange(len(ids))
        if len(ids) and not attention and model.pieces is not None:
            # a k-mer model without attention: its frequencies counted here, its own graph from them on
            # (the same probabilities; the graph's window tables cost ~4^ceil(kmax/2) values per nucleotide)
            try:
                probs[:] = model.pieces.probabilities([m[:n] for m, n in zip(mats, used)])
            except Exception as exc:  # noqa: BLE001 - ORT raises its own types
                raise self._failure(exc, len(ids), used.max(), ids[0]) from None
            batched = batched[:0]
        elif len(ids) and used.max() > LONG_NT and model.pieces is not None:
            # a k-mer model takes a very long sequence in pieces: memory bounded by the piece, same result
            for i in np.flatnonzero(used > LONG_NT):
                try:
                    probs[i], att = model.pieces.run(mats[i][: used[i]])
                except Exception as exc:  # noqa: BLE001 - ORT raises its own types
                    raise self._failure(exc, 1, used[i], ids[i]) from None
                if attention:
                    weights[i] = np.zeros((full[i], 1), dtype=np.float32)
                    weights[i][: used[i], 0] = att
            batched = np.flatnonzero(used <= LONG_NT)
        for sub in bucket_batches(used[batched], self.batch_size, max_tokens=MAX_TOKENS,
                                  max_pairs=pair_cap(model.quadratic)):
            batch = batched[sub]
            x, lengths = pad_batch([mats[i][: used[i]] for i in batch])
            try:
                p, att = model.run(x, lengths)
            except Exception as exc:  # noqa: BLE001 - ORT raises its own types (out of memory, mostly)
                raise self._failure(exc, len(batch), used[batch].max(), ids[batch[0]]) from None
            probs[batch] = p
            if attention:
                for row, i in enumerate(batch):
                    w = np.zeros((full[i], 1), dtype=np.float32)
                    w[: used[i], 0] = att[row, : used[i]]
                    weights[i] = w
        if not np.isfinite(probs).all():
            bad = ids[int(np.flatnonzero(~np.isfinite(probs).all(axis=1))[0])]
            raise InputError(self.source, "the model gave non-finite probabilities (corrupt embeddings?)", bad)
        check_probabilities(probs, model.path, ids)
        return ChunkResult(self.rows(ids, probs), probs, weights)

    def _failure(self, exc, n, positions, rid):
        model = self.model
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        hint = (" (a model trained without --max-len needs memory growing with the square of the length)"
                if model.quadratic and not model.max_length else "")
        return InputError(self.source, f"ONNX Runtime failed on a batch of {n} sequence(s) of up to "
                          f"{int(positions)} positions{hint}: {reason}", rid)

    def rows(self, ids, probs):
        """The predictions DataFrame of ``ids`` and their probabilities (N, C)."""
        model = self.model
        frame = pd.DataFrame({"id": list(ids), "rna_type": model.rna_type,
                              "prediction": [model.classes[c] for c in predicted_class(probs, model.tie_class)]})
        for c, name in enumerate(model.classes):
            frame[f"probability_{name}"] = probs[:, c]
        return frame

    def log_cropped(self):
        if self.cropped:
            log.info("%d sequences are longer than the model's %d positions: it sees their first %d (as in training)",
                     self.cropped, self.model.max_length, self.model.max_length)


@dataclass
class _Dim:
    dim: int


@dataclass
class ChunkResult:
    """The predictions of one chunk: rows (DataFrame), probabilities (N, C), attention (N arrays (L, 1)) or None."""

    frame: pd.DataFrame
    probs: np.ndarray
    attention: list = None


def store_chunks(store, max_nt):
    """Lists of ids of an :class:`EmbeddingStore`, in its order, of at most ``max_nt`` rows each."""
    from .embed import chunk_by_size

    return chunk_by_size(store.ids, store.length, max_nt)


class PredictionSink:
    """Where predicted chunks go: the predictions TSV (streamed, renamed into place at the end)
    and the optional attention NPZ (streamed). Use as a context manager: on an exception
    (Ctrl-C included) neither file is left behind."""

    def __init__(self, output, columns, attention_path=None, attention_meta=None, header=(), notes=(), comments=True):
        self.output = output
        self.columns = list(columns)
        self.attention_path = attention_path
        self.attention_meta = attention_meta
        self.header = list(header)
        self.notes = list(notes)  # '#' lines after the provenance (the model identity)
        self.comments = comments  # False: no '#' lines at all (--no-header)
        self.counts = {}
        self.rows = 0

    def __enter__(self):
        from .fileio import atomic_output, provenance_lines

        self._stack = contextlib.ExitStack()
        self._stack.__enter__()
        try:
            self._out = self._stack.enter_context(atomic_output(self.output, "w"))
            self._writer = None
            if self.attention_path is not None:
                self._writer = self._stack.enter_context(
                    EmbeddingWriter(self.attention_path, self.attention_meta, dtype=np.float32,
                                    format_name=ATTENTION_FORMAT))
            for line in (self.header + provenance_lines("predict") + self.notes) if self.comments else ():
                self._out.write(line + "\n")
            self._out.write("\t".join(self.columns) + "\n")
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def write(self, result):
        """Append one chunk's rows (and attention) in the order given."""
        frame = result.frame.reindex(columns=self.columns)
        prob_cols = [c for c in self.columns if c.startswith("probability_")]
        frame[prob_cols] = frame[prob_cols].round(6)
        frame.to_csv(self._out, sep="\t", index=False, header=False, quoting=csv.QUOTE_NONE, lineterminator="\n")
        for name, n in frame["prediction"].value_counts(sort=False).items():
            self.counts[name] = self.counts.get(name, 0) + int(n)
        self.rows += len(frame)
        if self._writer is not None:
            for rid, weights in zip(result.frame["id"], result.attention):
                self._writer.add(rid, weights)

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)


def predict_stream(chunks, predictor, output, *, attention_path=None, embedding_meta=None, source="the input",
                   notes=(), comments=True):
    """Predict an iterable of chunks (lists of records, or of ids for a store) and stream the rows
    to ``output`` (and the attention to ``attention_path``). Returns the sink (counts, rows).
    ``notes``: ``#`` lines after the provenance; ``comments=False``: no ``#`` lines."""
    bar = progress(desc=f"predict ({predictor.label})", unit="seq")
    meta = predictor.attention_meta(embedding_meta or {}) if attention_path is not None else None
    try:
        with PredictionSink(output, predictor.columns, attention_path, meta, notes=notes, comments=comments) as sink:
            for chunk in chunks:
                sink.write(chunk(attention_path is not None) if callable(chunk) else
                           predictor.predict_chunk(chunk, attention=attention_path is not None))
                bar.update(sink.rows - bar.n)
            if not sink.rows:
                raise InputError(source, "no sequences")
    finally:
        bar.close()
    predictor.log_cropped()
    return sink


def predict_store(store, model, *, attention_path=None, batch_size=DEFAULT_BATCH_SIZE, source="embeddings"):
    """Predict every sequence of an :class:`EmbeddingStore`; returns the predictions DataFrame (in memory)."""
    check_same_encoder(model.encoder, store.meta, f"model {model.name}", source)
    if not store.ids:
        raise InputError(source, "no sequences")
    predictor = Predictor(model, batch_size=batch_size, source=source)
    return _collect(predictor, _store_chunk_calls(store, predictor), attention_path, store.meta)


def _store_chunk_calls(store, predictor):
    for ids in store_chunks(store, predictor.chunk_nt()):
        yield lambda attention, ids=ids: predictor.predict_matrices(ids, [store.get(r, np.float16) for r in ids],
                                                                    attention=attention)


def _collect(predictor, chunks, attention_path, embedding_meta):
    """Predict chunks into one DataFrame (the library's in-memory form), attention streamed to a file."""
    frames = []
    writer = None
    if attention_path is not None:
        writer = EmbeddingWriter(attention_path, predictor.attention_meta(embedding_meta), dtype=np.float32,
                                 format_name=ATTENTION_FORMAT)
    with writer if writer is not None else contextlib.nullcontext():
        for chunk in chunks:
            result = chunk(writer is not None) if callable(chunk) else predictor.predict_chunk(chunk, writer is not None)
            frames.append(result.frame)
            if writer is not None:
                for rid, weights in zip(result.frame["id"], result.attention):
                    writer.add(rid, weights)
        if not frames:  # raised inside the writer's block: no attention file is left behind either
            raise InputError(predictor.source, "no sequences")
    predictor.log_cropped()
    return pd.concat(frames, ignore_index=True)


def make_predictor(model, *, batch_size=DEFAULT_BATCH_SIZE, weights=None, long_policy="truncate",
                   toks_per_batch=None, device="auto", precision="auto", threads=None, source="the input"):
    """A :class:`Predictor` for sequence input: the model (loaded, with its ONNX Runtime provider) and
    its own encoder (on ``device``)."""
    from .encoders import get_encoder

    encoder = get_encoder(model.encoder["encoder"], weights=weights, device=device, precision=precision, threads=threads)
    return Predictor(model, encoder=encoder, long_policy=long_policy, toks_per_batch=toks_per_batch,
                     batch_size=batch_size, source=source)


def predict_records(records, model=None, attention_path=None, *, rna_type=None, provider="auto",
                    batch_size=DEFAULT_BATCH_SIZE, weights=None, long_policy="truncate", toks_per_batch=None,
                    device="auto", precision="auto", threads=None, source="the input", max_nt=None):
    """Embed ``records`` with the model's own encoder and predict them (library entry point).

    ``model`` is an ONNX path or :class:`OnnxModel`; None takes the bundled model of
    ``rna_type``. Returns the predictions DataFrame in input order (in memory: for
    files of any size use :func:`predict_file`, which streams); writes the
    attention NPZ when ``attention_path`` is given.
    """
    from .embed import chunk_records

    model = load_model(model, rna_type, provider=provider, threads=threads)
    predictor = make_predictor(model, weights=weights, long_policy=long_policy, toks_per_batch=toks_per_batch,
                               device=device, precision=precision, threads=threads, batch_size=batch_size,
                               source=source)
    frame = _collect(predictor, chunk_records(records, predictor.chunk_nt(max_nt)), attention_path,
                     predictor.embedding_meta())
    _log_embedding(predictor)
    return frame


def _log_embedding(predictor):
    from .embed import log_long_sequences

    stats = predictor.embed_stats
    log_long_sequences(stats, predictor.encoder.max_len)
    log.debug("embedded %d sequences (%d nt) with %s", stats.sequences, stats.nucleotides, predictor.encoder.name)




def onehot_sequences(mats):
    """The sequences behind one-hot matrices (an IUPAC code comes back as N), for the domain check."""
    out = []
    for x in mats:
        x = np.asarray(x, dtype=np.float32)
        letters = np.full(len(x), ord("N"), dtype=np.uint8)
        exact = (x.max(axis=1) == 1.0) & (x.sum(axis=1) == 1.0)
        letters[exact] = np.frombuffer(b"ACGU", dtype=np.uint8)[x[exact].argmax(axis=1)]
        out.append(letters.tobytes().decode("ascii"))
    return out


class TrustedPredictor:
    """A :class:`Predictor` whose rows also carry ``confidence``, ``in_domain`` and ``domain_note``
    (:mod:`rnaloc_tools.trust`), and which checks each record's own ``rna_type`` against the
    model (:func:`rnaloc_tools.routing.route_one_model`; ``force_type`` predicts a mismatch anyway,
    flagged). Every chunk's rows are counted in ``tally``."""

    def __init__(self, predictor, tally, *, force_type=False):
        self.predictor = predictor
        self.tally = tally
        self.force_type = force_type

    def __getattr__(self, name):  # model, label, chunk_nt, embedding_meta, attention_meta, log_cropped, ...
        return getattr(self.predictor, name)

    @property
    def columns(self):
        from .trust import TRUST_COLUMNS

        return self.predictor.columns + list(TRUST_COLUMNS)

    def _annotated(self, result, **kwargs):
        from .trust import annotate

        result.frame = annotate(result.frame, self.predictor.model, **kwargs)
        self.tally.add(result.frame)
        return result

    def predict_chunk(self, records, attention=False):
        from .routing import route_one_model

        model, source = self.predictor.model, self.predictor.source
        notes = [route_one_model(r, model.rna_type, source, self.force_type) for r in records]
        result = self.predictor.predict_chunk(records, attention=attention)
        return self._annotated(result, sequences=[r.seq for r in records], notes=notes)

    def predict_matrices(self, ids, mats, attention=False):
        result = self.predictor.predict_matrices(ids, mats, attention=attention)
        if self.predictor.model.encoder.get("encoder") == "one-hot":  # the sequence can be read back
            return self._annotated(result, sequences=onehot_sequences(mats))
        return self._annotated(result, lengths=[m.shape[0] for m in mats])


class RoutedPredictor:
    """Each record to the :class:`TrustedPredictor` of its own ``rna_type``; a chunk's rows come
    back in its order with the probability columns of every type in ``predictors``
    (empty where a class is not the row's); with ``all_columns``, of every RNA type the package
    predicts, so that tables of different inputs have the same columns."""

    def __init__(self, predictors, source, all_columns=False):
        from .routing import class_columns
        from .trust import TRUST_COLUMNS

        self.predictors = predictors  # {rna_type: TrustedPredictor}
        self.source = source
        types = RNA_TYPES if all_columns else predictors
        self.columns = ["id", "rna_type", "prediction", *class_columns(types), *TRUST_COLUMNS]
        self.label = "+".join(predictors)

    def chunk_nt(self, max_nt=None):
        return min(p.chunk_nt(max_nt) for p in self.predictors.values())

    def predict_chunk(self, records, attention=False):
        from .routing import route_by_type

        types = [route_by_type(r, self.source) for r in records]
        frames = []
        for rna_type in dict.fromkeys(types):
            rows = [i for i, t in enumerate(types) if t == rna_type]
            frame = self.predictors[rna_type].predict_chunk([records[i] for i in rows]).frame
            frame.index = rows
            frames.append(frame)
        frame = pd.concat(frames).sort_index().reindex(columns=self.columns).reset_index(drop=True)
        return ChunkResult(frame, None, None)

    def log_cropped(self):
        for p in self.predictors.values():
            p.log_cropped()


def _types_present(path, source):
    """Routed mode, first pass: the RNA types of a dataset TSV, in order of appearance; every row's
    type is checked here, before any model runs."""
    from .formats import read_records
    from .routing import route_by_type

    seen = {}
    for record in read_records(path, source=source):
        seen.setdefault(route_by_type(record, source), None)
    return list(seen)


def predict_file(input, output, *, model=None, rna_type=None, label_source=None, force_type=False, header=True,
                 all_columns=False, plot_path=None, attention_path=None, provider="auto", batch_size=DEFAULT_BATCH_SIZE, threads=None,
                 max_nt=None, **encoding):
    """``rnaloc predict``: FASTA, dataset TSV or embeddings NPZ -> predictions TSV (+ attention NPZ, plot).

    With ``model`` or ``rna_type`` (any case), one model predicts every record (a TSV row
    of another ``rna_type`` is an error, or with ``force_type`` predicted and flagged).
    With neither, a dataset TSV's rows go each to the bundled model of its own
    ``rna_type`` (:class:`~rnaloc_tools.routing.NoRnaType`, a usage error, when the
    input has no types); its probability columns are those of the types present, or
    with ``all_columns`` of every RNA type. Every row gets ``confidence``, ``in_domain`` and ``domain_note``
    (:mod:`rnaloc_tools.trust`); ``#`` lines after the provenance name the model(s)
    (``header=False``: no ``#`` lines); ``plot_path`` draws the predicted classes'
    probabilities in and out of the domain.

    Streams: the input is read, embedded and predicted a chunk of at most ``max_nt``
    nucleotides at a time (default :data:`rnaloc_tools.embed.DEFAULT_CHUNK_NT`, fewer
    for a wide encoder), and each chunk's rows are written before the next is read;
    the TSV (and the attention NPZ) is renamed into place at the end. A routed table
    is read twice (its types first; stdin is kept in a temporary file for that).
    Returns the :class:`PredictionSink` (rows written, counts per class).
    """
    from .embed import chunk_records
    from .fileio import check_writable, display_name, is_stdio
    from .formats import read_records
    from .routing import NO_TYPE_HINT, NoRnaType, canonical_rna_type
    from .trust import Tally, describe, header_lines, model_identity, plot_probabilities

    check_writable(output)
    for extra in (attention_path, plot_path):
        if extra is not None:
            check_writable(extra)
    if rna_type is not None:
        given, rna_type = rna_type, canonical_rna_type(rna_type)
        if rna_type is None:
            raise RnalocError(f"unknown rna_type {given!r} (known: {', '.join(RNA_TYPES)})")
    source = display_name(input)
    tally = Tally(keep_points=plot_path is not None)
    with contextlib.ExitStack() as stack:
        if model is None and rna_type is None:  # each row by its own type
            if attention_path is not None:
                raise RnalocError("--attention needs one model (--rna-type or --model): the attention of several "
                                  "models cannot share one NPZ")
            if is_npz(input):
                raise NoRnaType(NO_TYPE_HINT)
            path = stack.enter_context(_spooled(input)) if is_stdio(input) else input
            used = [_load(None, t, label_source, provider, threads) for t in _types_present(path, source)]
            predictor = RoutedPredictor(
                {m.rna_type: TrustedPredictor(make_predictor(m, batch_size=batch_size,
                                                             threads=threads, source=source, **encoding), tally)
                 for m in used}, source, all_columns=all_columns)
            reading = read_records(path, source=source)
        else:
            loaded = _load(model, rna_type, label_source, provider, threads)
            used = [loaded]
            path = input
            if is_npz(input):
                reading = None
                store = EmbeddingStore(input)
                check_same_encoder(loaded.encoder, store.meta, f"model {loaded.name}", source)
                predictor = TrustedPredictor(Predictor(loaded, batch_size=batch_size, source=source), tally,
                                             force_type=force_type)
            else:
                predictor = TrustedPredictor(make_predictor(loaded, batch_size=batch_size,
                                                            threads=threads, source=source, **encoding), tally,
                                             force_type=force_type)
                reading = read_records(input)
        identities = [model_identity(m, label_source if m.rna_type == "lncRNA" else None) for m in used]
        notes = header_lines(identities)
        if reading is None:
            sink = predict_stream(_store_chunk_calls(store, predictor), predictor, output, attention_path=attention_path,
                                  embedding_meta=store.meta, source=source, notes=notes, comments=header)
        else:
            chunks = chunk_records(reading, predictor.chunk_nt(max_nt))
            sink = predict_stream(chunks, predictor, output, attention_path=attention_path,
                                  embedding_meta=None if attention_path is None else predictor.embedding_meta(),
                                  source=source, notes=notes, comments=header)
            for p in getattr(predictor, "predictors", {"": predictor}).values():
                _log_embedding(p)
    for m, identity in zip(used, identities):
        counts = {c: tally.predictions.get((m.rna_type, c), 0) for c in m.classes}
        log.info("%s: %d sequences predicted with %s (%s encoder, %s): %s", m.rna_type, tally.rows_of(m.rna_type),
                 describe(identity), m.encoder.get("encoder"), m.provider,
                 ", ".join(f"{c} {n}" for c, n in counts.items()))
    if tally.out or tally.unknown:
        log.warning("%s", tally.summary())
    else:
        log.info("%s", tally.summary())
    if plot_path is not None:
        plot_probabilities(tally.points(), plot_path)
    return sink


def _load(model, rna_type, label_source, provider, threads):
    """:func:`load_model`, passing the label source (bundled lncRNA models) only where one is chosen."""
    chosen = {"label_source": label_source} if label_source and model is None and rna_type == "lncRNA" else {}
    return load_model(model, rna_type, provider=provider, threads=threads, **chosen)


@contextlib.contextmanager
def _spooled(input):
    """stdin copied to a temporary file (a routed table is read twice); removed afterwards."""
    import shutil

    from .fileio import open_binary_input, temporary_folder

    with temporary_folder("rnaloc-predict-") as tmp:
        path = os.path.join(tmp, "stdin")
        with open(path, "wb") as dst:  # stdin itself stays open
            shutil.copyfileobj(open_binary_input(input), dst, 1 << 20)
        yield path
