"""Sequence records and their normalisation.

Normalisation (DESIGN.md): upper case, T -> U, IUPAC nucleotide codes kept;
any other letter, an empty sequence or a duplicate id is an error that names
the file and the record.
"""

import re
from dataclasses import dataclass, field

from .errors import InputError

#: Unambiguous bases and the IUPAC ambiguity codes for nucleotides.
BASES = "ACGU"
IUPAC_CODES = "RYSWKMBDHVN"
ALPHABET = frozenset(BASES + IUPAC_CODES)
_SPACE = re.compile(r"\s+")


@dataclass
class Record:
    """One sequence: its id, its normalised sequence, and any other columns."""

    id: str
    seq: str
    extra: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.seq)


def normalize(seq, *, source, record):
    """Upper-case, T -> U, whitespace removed; reject empty and non-IUPAC sequences."""
    s = _SPACE.sub("", seq).upper().replace("T", "U")
    if not s:
        raise InputError(source, "empty sequence", record)
    bad = set(s) - ALPHABET
    if bad:
        letters = "".join(sorted(bad))
        raise InputError(
            source,
            f"illegal letter(s) {letters!r} in sequence (allowed: {BASES}/T and IUPAC codes {IUPAC_CODES})",
            record,
        )
    return s
