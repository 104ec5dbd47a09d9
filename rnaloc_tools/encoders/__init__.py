"""Sequence encoders: RNA sequence -> per-nucleotide embedding matrix (L, D).

Every encoder has a ``name``, a dimension ``dim``, a ``max_len`` (the longest
sequence it takes in one piece; None for no limit) and :meth:`Encoder.meta`,
which is written into every embeddings NPZ, checkpoint and ONNX model so that a
model is never fed embeddings of another encoder.
"""

from abc import ABC, abstractmethod

from ..errors import RnalocError

ENCODER_NAMES = ("rna-fm", "one-hot")


class Encoder(ABC):
    name = None
    dim = None
    max_len = None
    #: Extra tokens each sequence costs in a batch (BOS/EOS for RNA-FM).
    extra_tokens = 0

    def batch_width(self, width):
        """The token width a batch whose longest piece takes ``width`` tokens is padded to (here: ``width``).

        An encoder whose memory grows with the number of distinct batch shapes it
        has seen (RNA-FM on CPU) rounds it up to one of a few fixed widths.
        """
        return width

    def meta(self):
        return {"encoder": self.name, "dim": self.dim, "checkpoint_sha256": None, "max_length": self.max_len}

    @abstractmethod
    def embed(self, seqs):
        """Embed a batch of normalised sequences (each at most ``max_len``).

        Returns one float32 array (len(seq), dim) per sequence. The result for a
        sequence must not depend on the other sequences in the batch.
        """


def get_encoder(name, *, weights=None, device="auto", precision="auto", threads=None):
    """Build the encoder called ``name``."""
    if name == "one-hot":
        from .onehot import OneHotEncoder

        return OneHotEncoder()
    if name == "rna-fm":
        from .rnafm import RnaFmEncoder

        return RnaFmEncoder(weights, device=device, precision=precision, threads=threads)
    raise RnalocError(f"unknown encoder {name!r} (known: {', '.join(ENCODER_NAMES)})")
