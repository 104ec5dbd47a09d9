"""Prediction with an exported ONNX model (the library behind ``rnaloc predict``).

Input: sequence records (embedded on the fly with the model's own encoder,
through :func:`rnaloc_tools.embed.embed_records` into a temporary NPZ, so the
long-sequence policy and float16 storage are exactly those of ``rnaloc embed``)
or an embeddings NPZ (its encoder metadata must match the model's). Sequences
are sorted by length and batched, run through ONNX Runtime (CUDA provider when
present, CPU otherwise), and reported one row per input sequence, in input
order: ``id  rna_type  prediction  probability_<class>...``.

Prediction rule: the class of highest probability; an exact tie goes to the
model's ``tie_class`` (the class more frequent in its training data), never
silently to the first class. A model trained with ``--max-len N`` sees the first
N positions of longer sequences (as in training); their attention is zero beyond N.
The optional attention NPZ holds, per sequence, one float32 weight per
nucleotide (summing to 1), in the ragged layout of the embeddings NPZ with
``format`` = ``rnaloc-attention``.
"""

import json
import logging
import os
import tempfile

import numpy as np
import pandas as pd

from .errors import InputError, RnalocError
from .formats import ATTENTION_FORMAT, EmbeddingStore, EmbeddingWriter, check_same_encoder
from .model.batching import bucket_batches, pad_batch, pair_cap
from .model.metrics import predicted_class
from .progress import progress

log = logging.getLogger("rnaloc")

PROVIDERS = ("auto", "cuda", "cpu")
DEFAULT_BATCH_SIZE = 64
#: Padded positions per batch at most (a batch of long sequences gets fewer of them).
MAX_TOKENS = 131072
REQUIRED_META = ("rna_type", "classes", "encoder")


class _WarningsOnly(logging.Filter):
    def filter(self, record):
        return record.levelno > logging.INFO


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
        from .model.onnx_export import import_onnxruntime

        ort = import_onnxruntime()
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise InputError(self.path, "no such file")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 4  # errors reach the user as one line of ours, not ORT's log
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(self.path, options, providers=_providers(ort, provider))
        except RnalocError:
            raise
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types for bad files
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(self.path, f"not a readable ONNX model ({reason[:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in REQUIRED_META if k not in meta]
        inputs = {i.name for i in self.session.get_inputs()}
        if missing or inputs != {"embeddings", "lengths"}:
            raise InputError(self.path, "not an rnaloc model (made by `rnaloc export-onnx`): its metadata or inputs are missing")
        try:
            self.classes = tuple(json.loads(meta["classes"]))
            self.encoder = json.loads(meta["encoder"])
            self.max_length = json.loads(meta.get("max_length", "null"))
        except json.JSONDecodeError as exc:
            raise InputError(self.path, f"corrupt model metadata ({exc})") from None
        self.rna_type = meta["rna_type"]
        self.meta = dict(meta)
        tie = meta.get("tie_class", self.classes[0])
        self.tie_class = self.classes.index(tie) if tie in self.classes else 0
        self.dim = int(self.encoder["dim"])
        self.quadratic = meta.get("quadratic_in_length", "false") == "true"
        self.sha256 = file_sha256(self.path)
        self.provider = self.session.get_providers()[0]

    @property
    def name(self):
        return os.path.basename(self.path)

    def run(self, x, lengths):
        """(B, L, D) float32, (B,) int64 -> probabilities (B, C), attention (B, L)."""
        return self.session.run(["probabilities", "attention"], {"embeddings": x, "lengths": lengths})


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


def predict_store(store, model, *, attention_path=None, batch_size=DEFAULT_BATCH_SIZE, source="embeddings"):
    """Predict every sequence of an :class:`EmbeddingStore`; returns the predictions DataFrame."""
    check_same_encoder(model.encoder, store.meta, f"model {model.name}", source)
    ids = store.ids
    if not ids:
        raise InputError(source, "no sequences")
    full = np.array([store.length(r) for r in ids], dtype=np.int64)
    used = np.minimum(full, model.max_length) if model.max_length else full
    cropped = int((used < full).sum())
    if cropped:
        log.info("%d sequences are longer than the model's %d positions: it sees their first %d (as in training)",
                 cropped, model.max_length, model.max_length)
    probs = np.zeros((len(ids), len(model.classes)), dtype=np.float32)
    writer = None
    if attention_path is not None:
        meta = {"dim": 1, "rna_type": model.rna_type, "classes": list(model.classes), "model": model.name,
                "model_sha256": model.sha256, "model_encoder": model.encoder.get("encoder"),
                # which positions the model saw: the encoder's limit and policy, and the model's crop
                "long_policy": store.meta.get("long_policy"), "max_length": store.meta.get("max_length"),
                "model_max_length": model.max_length}
        writer = EmbeddingWriter(attention_path, meta, dtype=np.float32, format_name=ATTENTION_FORMAT)
    bar = progress(total=len(ids), desc=f"predict ({model.rna_type})", unit="seq")
    try:
        for batch in bucket_batches(used, batch_size, max_tokens=MAX_TOKENS, max_pairs=pair_cap(model.quadratic)):
            x, lengths = pad_batch([store.get(ids[i])[: used[i]] for i in batch])
            try:
                p, attention = model.run(x, lengths)
            except Exception as exc:  # noqa: BLE001 - ORT raises its own types (out of memory, mostly)
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                hint = (" (a model trained without --max-len needs memory growing with the square of the length)"
                        if model.quadratic and not model.max_length else "")
                raise InputError(source, f"ONNX Runtime failed on a batch of {len(batch)} sequence(s) of up to "
                                 f"{int(used[batch].max())} positions{hint}: {reason}", ids[batch[0]]) from None
            probs[batch] = p
            if writer is not None:
                for row, i in enumerate(batch):
                    weights = np.zeros((full[i], 1), dtype=np.float32)
                    weights[: used[i], 0] = attention[row, : used[i]]
                    writer.add(ids[i], weights)
            bar.update(len(batch))
        if writer is not None:
            writer.set_order(ids)
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
    if not np.isfinite(probs).all():
        bad = ids[int(np.flatnonzero(~np.isfinite(probs).all(axis=1))[0])]
        raise InputError(source, "the model gave non-finite probabilities (corrupt embeddings?)", bad)
    frame = pd.DataFrame({"id": ids, "rna_type": model.rna_type,
                          "prediction": [model.classes[c] for c in predicted_class(probs, model.tie_class)]})
    for c, name in enumerate(model.classes):
        frame[f"probability_{name}"] = probs[:, c]
    return frame


def predict_records(records, model=None, attention_path=None, *, rna_type=None, provider="auto",
                    batch_size=DEFAULT_BATCH_SIZE, weights=None, long_policy="truncate", toks_per_batch=None,
                    device="auto", precision="auto", threads=None, source="the input"):
    """Embed ``records`` with the model's own encoder and predict them (library entry point).

    ``model`` is an ONNX path or :class:`OnnxModel`; None takes the bundled model of
    ``rna_type``. Returns the predictions DataFrame in input order; writes the
    attention NPZ when ``attention_path`` is given.
    """
    from .embed import embed_records
    from .encoders import get_encoder

    model = load_model(model, rna_type, provider=provider, threads=threads)
    encoder = get_encoder(model.encoder["encoder"], weights=weights, device=device, precision=precision, threads=threads)
    check_same_encoder(model.encoder, encoder.meta(), f"model {model.name}", f"encoder {encoder.name}")
    with tempfile.TemporaryDirectory(prefix="rnaloc-predict-") as tmp:
        npz = os.path.join(tmp, "embeddings.npz")
        quiet = _WarningsOnly()  # embed's "embedded ... into <temporary file>" is noise here; warnings stay
        log.addFilter(quiet)
        try:
            stats = embed_records(records, encoder, npz, long=long_policy,
                                  toks_per_batch=toks_per_batch)
        finally:
            log.removeFilter(quiet)
        log.debug("embedded %d sequences (%d nt) with %s", stats.sequences, stats.nucleotides, encoder.name)
        store = EmbeddingStore(npz)
        try:
            return predict_store(store, model, attention_path=attention_path, batch_size=batch_size, source=source)
        finally:
            for shard in store.shards:  # release the memory map before the folder goes
                shard.embeddings = None


def is_npz(path):
    if path == "-" or not os.path.isfile(path):
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def predict_file(input, output, *, model=None, rna_type=None, attention_path=None, provider="auto",
                 batch_size=DEFAULT_BATCH_SIZE, threads=None, label_source=None, **encoding):
    """``rnaloc predict``: FASTA, dataset TSV or embeddings NPZ -> predictions TSV (+ attention NPZ)."""
    from .fileio import check_writable, display_name
    from .formats import read_records, write_table

    check_writable(output)
    if attention_path is not None:
        check_writable(attention_path)
    loaded = load_model(model, rna_type, provider=provider, threads=threads, label_source=label_source)
    if is_npz(input):
        frame = predict_store(EmbeddingStore(input), loaded, attention_path=attention_path, batch_size=batch_size,
                              source=display_name(input))
    else:
        frame = predict_records(read_records(input), loaded, attention_path, provider=provider, batch_size=batch_size,
                                threads=threads, source=display_name(input), **encoding)
    counts = frame["prediction"].value_counts()
    log.info("predicted %d sequences with %s (%s, %s encoder, %s): %s", len(frame), loaded.name, loaded.rna_type,
             loaded.encoder.get("encoder"), loaded.provider, ", ".join(f"{c} {counts.get(c, 0)}" for c in loaded.classes))
    out = frame.copy()
    prob_cols = [c for c in out.columns if c.startswith("probability_")]
    out[prob_cols] = out[prob_cols].round(6)
    write_table(out, output, "predict")
    return frame
