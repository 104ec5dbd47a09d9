"""Where torch runs: one device choice shared by embedding (RNA-FM) and training."""

from .errors import RnalocError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device):
    """``auto``: CUDA when torch sees a GPU, else CPU; ``cuda`` without one is a clear error."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RnalocError(
            f"--device cuda: CUDA is not available (torch {torch.__version__}, "
            f"{'no CUDA build' if torch.version.cuda is None else 'no GPU visible'}); use --device cpu or auto"
        )
    if device not in ("cpu", "cuda"):
        raise RnalocError(f"unknown device {device!r} (use auto, cpu or cuda)")
    return device
