"""The model checkpoint: hyperparameters, classes, rna_type, encoder metadata and state dict.

Saved with ``torch.save`` and made only of tensors, dicts, lists, strings, numbers
and None, so that ``torch.load(path, weights_only=True)`` reads it (nothing that
unpickles code).
"""

import dataclasses
import io
import os

import torch

from .. import __version__
from ..errors import InputError, unsafe_pickle_problem
from ..fileio import atomic_path, check_regular_file
from .registry import build_model

CHECKPOINT_FORMAT = "rnaloc-checkpoint"
CHECKPOINT_VERSION = 1
REQUIRED = ("arch", "hparams", "classes", "rna_type", "encoder", "state_dict")


def _plain(value):
    """Tuples -> lists, recursively (the checkpoint holds only plain types)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_checkpoint(path, model, hp, *, arch, classes, rna_type, encoder, extra=None):
    """Write the checkpoint atomically."""
    data = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "tool_version": __version__,
        "arch": arch,
        "hparams": _plain(dataclasses.asdict(hp)),
        "classes": list(classes),
        "rna_type": rna_type,
        "encoder": _plain(dict(encoder)),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    data.update(_plain(extra or {}))
    # serialised in memory, then written: torch names the archive's folder after the file it writes,
    # so saving to the temporary file would record its random name (the same model, other bytes), and
    # a full disk would surface as torch's own "inline_container.cc" message instead of ours
    buffer = io.BytesIO()
    torch.save(data, buffer)
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(buffer.getbuffer())


def read_checkpoint(path):
    """The checkpoint dict, read with ``weights_only=True``; a clear error for anything else."""
    path = check_regular_file(path, "checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        problem = unsafe_pickle_problem(exc, "an rnaloc model checkpoint")
        if problem:
            raise InputError(path, problem) from None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"not a readable rnaloc model checkpoint ({reason[:200]})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, "not an rnaloc model checkpoint (written by `rnaloc train`)")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise InputError(path, f"corrupt checkpoint: missing {', '.join(missing)}")
    return data


def load_checkpoint(path):
    """(module in eval mode, hparams, checkpoint dict) from a checkpoint file."""
    data = read_checkpoint(path)
    model, hp = build_model(data["arch"], **data["hparams"])
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as exc:
        raise InputError(path, f"corrupt checkpoint: weights do not fit the architecture ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, hp, data
