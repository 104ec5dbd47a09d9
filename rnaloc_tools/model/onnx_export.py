"""Export a checkpoint to ONNX, check it, and compare ONNX Runtime with PyTorch.

The graph: inputs ``embeddings`` (B, L, D) float32 and ``lengths`` (B,) int64,
outputs ``probabilities`` (B, C) and ``attention`` (B, L), batch and length
dynamic. ``metadata_props`` carry what ``predict`` needs (rna_type, classes,
encoder metadata, arch, hyperparameters, tie class, max length, tool version).
The file is written atomically and only after ONNX Runtime agrees with PyTorch
within :data:`ATOL` at several shapes, lengths the export never saw included.
"""

import json
import logging
import warnings

import numpy as np
import torch

from .. import __version__
from ..errors import RnalocError
from ..fileio import atomic_path, file_sha256
from .checkpoint import load_checkpoint
from .runtime import import_onnxruntime  # noqa: F401 - also imported from here

log = logging.getLogger("rnaloc")

OPSET = 17
#: Largest absolute difference allowed between ONNX Runtime and PyTorch (probabilities and attention).
ATOL = 1e-4
#: (lengths of one batch) compared after export; the export itself traces lengths (37, 21).
CHECK_BATCHES = ((1,), (3,), (50, 17, 4), (333, 100, 2, 61), (1000,))
EXPORT_LENGTHS = (37, 21)


class _Exported(torch.nn.Module):
    """The head plus the softmax: (embeddings, lengths) -> (probabilities, attention)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, embeddings, lengths):
        logits, attention = self.model(embeddings, lengths)  # (B, C), (B, L)
        return torch.softmax(logits, dim=1), attention


def metadata(ckpt, source_sha256, model=None):
    """The ``metadata_props`` of the ONNX model: strings, JSON where structured."""
    from ..domain import METADATA_KEY, to_json

    props = {
        "rnaloc_format": "rnaloc-onnx-1",
        "rna_type": ckpt["rna_type"],
        "classes": json.dumps(list(ckpt["classes"])),
        "encoder": json.dumps(ckpt["encoder"], sort_keys=True),
        "arch": ckpt["arch"],
        "hparams": json.dumps(ckpt["hparams"], sort_keys=True),
        "tie_class": str(ckpt.get("tie_class") or ckpt["classes"][0]),
        "class_counts": json.dumps(ckpt.get("class_counts")),
        "max_length": json.dumps(ckpt.get("max_length")),
        "cv_metrics": json.dumps((ckpt.get("training") or {}).get("cv", {}), sort_keys=True),
        "checkpoint_sha256": source_sha256,
        "quadratic_in_length": json.dumps(bool(getattr(model, "quadratic_in_length", False))),
        "tool_version": __version__,
    }
    if ckpt.get("label_source"):  # which label definition the model learnt (bundled models: rnalocate/fractionation)
        props["label_source"] = str(ckpt["label_source"])
    if ckpt.get(METADATA_KEY):  # the applicability domain of the training sequences (rnaloc_tools.domain)
        props[METADATA_KEY] = to_json(ckpt[METADATA_KEY])
    return props


def _inputs(lengths, dim, rng):
    lengths = np.asarray(lengths, dtype=np.int64)
    x = np.zeros((len(lengths), int(lengths.max()), dim), dtype=np.float32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.standard_normal((n, dim)).astype(np.float32)
    return x, lengths


def compare(session, model, dim, batches=CHECK_BATCHES, seed=0):
    """Largest |ONNX Runtime - PyTorch| over the probabilities and attentions of ``batches``."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for lengths in batches:
        x, lens = _inputs(lengths, dim, rng)
        with torch.no_grad():
            p_ref, a_ref = (t.numpy() for t in model(torch.from_numpy(x), torch.from_numpy(lens)))
        p, a = session.run(["probabilities", "attention"], {"embeddings": x, "lengths": lens})
        if p.shape != p_ref.shape or a.shape != a_ref.shape:
            raise RnalocError(f"ONNX output shapes {p.shape}, {a.shape} differ from PyTorch {p_ref.shape}, {a_ref.shape}")
        worst = max(worst, float(np.abs(p - p_ref).max()), float(np.abs(a - a_ref).max()))
    return worst


def export_onnx(checkpoint, output, *, atol=ATOL):
    """``rnaloc export-onnx``: checkpoint -> checked ONNX model (atomic; nothing written on failure)."""
    import onnx

    ort = import_onnxruntime()
    model, hp, ckpt = load_checkpoint(checkpoint)
    wrapped = _Exported(model).eval()
    dim = int(hp.dim)
    x, lens = _inputs(EXPORT_LENGTHS, dim, np.random.default_rng(1))
    with atomic_path(output) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and LSTM batch notes
            torch.onnx.export(
                wrapped, (torch.from_numpy(x), torch.from_numpy(lens)), tmp, dynamo=False, opset_version=OPSET,
                input_names=["embeddings", "lengths"], output_names=["probabilities", "attention"],
                dynamic_axes={"embeddings": {0: "batch", 1: "length"}, "lengths": {0: "batch"},
                              "probabilities": {0: "batch"}, "attention": {0: "batch", 1: "length"}},
            )
        proto = onnx.load(tmp)
        props = metadata(ckpt, file_sha256(checkpoint), model)
        del proto.metadata_props[:]
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name, proto.producer_version = "rnaloc-tools", __version__
        proto.doc_string = f"rnaloc {ckpt['arch']} model for {ckpt['rna_type']} ({', '.join(ckpt['classes'])})"
        try:
            onnx.checker.check_model(proto, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise RnalocError(f"{output}: the exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from None
        onnx.save(proto, tmp)
        session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        worst = compare(session, wrapped, dim)
        if not worst <= atol:  # NaN fails too
            raise RnalocError(
                f"{output}: not written: ONNX Runtime differs from PyTorch by {worst:.3g} (> {atol:g}) "
                f"on lengths {', '.join(str(b) for b in CHECK_BATCHES)}"
            )
    log.info("wrote %s: ONNX Runtime matches PyTorch within %.1e (max |diff| %.2e) at %d shapes",
             output, atol, worst, len(CHECK_BATCHES))
    return worst
