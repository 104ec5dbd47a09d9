"""One-hot encoding: channels A, C, G, U; IUPAC codes as the matching fractions."""

import numpy as np

from . import Encoder

_IUPAC = {
    "A": "A", "C": "C", "G": "G", "U": "U",
    "R": "AG", "Y": "CU", "S": "CG", "W": "AU", "K": "GU", "M": "AC",
    "B": "CGU", "D": "AGU", "H": "ACU", "V": "ACG", "N": "ACGU",
}  # fmt: skip


def _table():
    table = np.zeros((256, 4), dtype=np.float32)
    for code, bases in _IUPAC.items():
        for b in bases:
            table[ord(code), "ACGU".index(b)] = 1.0 / len(bases)
    return table


ONE_HOT_TABLE = _table()


def one_hot(seq):
    """(len(seq), 4) float32 for a normalised sequence."""
    codes = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
    return ONE_HOT_TABLE[codes]


class OneHotEncoder(Encoder):
    name = "one-hot"
    dim = 4
    max_len = None

    def embed(self, seqs):
        return [one_hot(s) for s in seqs]
