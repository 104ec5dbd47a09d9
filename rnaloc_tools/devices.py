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


#: Blocks of this many bytes and more are always mapped and unmapped (see :func:`fixed_mmap_threshold`).
MMAP_THRESHOLD = 64 << 10


def fixed_mmap_threshold(threshold=MMAP_THRESHOLD):
    """Fix glibc's mmap threshold for this process: blocks of ``threshold`` bytes and more are then
    always mapped and given back when freed, never kept in the heap.

    By default glibc raises the threshold each time such a block is freed (up to 32 MB); after that
    torch's activations on the CPU, of a new size in almost every batch, come from the heap, which
    fragments and keeps what is freed, so RSS grew with the input: a tiny RNA-FM embedding 4,000
    circRNAs in 250-kb chunks peaked at 369 -> 474 MB and still rising; with the threshold fixed,
    367 -> 411 MB, flat after 2,750. Returns whether it was set (not on a C library without mallopt).
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_mmap_threshold = -3  # glibc's M_MMAP_THRESHOLD
    return bool(mallopt(m_mmap_threshold, int(threshold)))
