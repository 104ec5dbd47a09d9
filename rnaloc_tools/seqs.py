"""Sequence records and their normalisation.

Normalisation (DESIGN.md): upper case, T -> U, IUPAC nucleotide codes kept;
any other letter, an empty sequence or a duplicate id is an error that names
the file and the record.
"""

import re
from hashlib import blake2b as _blake2b
from dataclasses import dataclass, field

import numpy as np

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



class SeenIds:
    """The ids seen so far, for duplicate checks over millions of records in bounded memory.

    Each id is kept as a 16-byte BLAKE2b digest (a Python set of a million ids would
    take ~100 MB; this takes 16 MB): the latest ids in a small dict, checked at once,
    older ones in a few sorted NumPy runs, checked a block at a time (vectorised) and
    merged as they grow. So a repeat of a recent id is found when it is added, a
    repeat of an older one at the next :meth:`flush` (every 16384 ids, and at the
    end): call it before trusting that there was none. Two different ids share a
    digest with probability about n^2 / 2^129 (~1e-27 for a million ids).

    >>> seen = SeenIds()
    >>> for rid in ids:
    ...     if not seen.add(rid):
    ...         fail(seen.duplicate)
    >>> if not seen.flush():
    ...     fail(seen.duplicate)
    """

    BLOCK = 1 << 14
    #: Runs are merged up to this many ids: a merge's temporaries (~40 bytes per id) stay small.
    MAX_RUN = 1 << 18

    def __init__(self):
        self._pending = {}  # digest -> id, not yet in a run
        self._runs = []  # (first 8 bytes sorted, last 8 bytes) of older digests, the larger runs first
        self.duplicate = None  # the first repeated id found
        self.count = 0

    def __len__(self):
        return self.count

    def add(self, rid):
        """Record ``rid``; False once a repeated id has been found (:attr:`duplicate`)."""
        digest = _blake2b(rid.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if digest in self._pending:
            self.duplicate = self.duplicate or rid
            return False
        self._pending[digest] = rid
        self.count += 1
        if len(self._pending) >= self.BLOCK:
            self.flush()
        return self.duplicate is None

    def flush(self):
        """Check the pending ids against the older ones; False once a repeated id has been found."""
        if not self._pending:
            return self.duplicate is None
        pairs = np.frombuffer(b"".join(self._pending), dtype="<u8").reshape(-1, 2)
        hi, lo = pairs[:, 0], pairs[:, 1]
        for run_hi, run_lo in self._runs:
            left = np.searchsorted(run_hi, hi, "left")
            right = np.searchsorted(run_hi, hi, "right")
            for j in np.flatnonzero(right > left):  # the first 8 bytes match: compare the rest
                if (run_lo[left[j] : right[j]] == lo[j]).any() and self.duplicate is None:
                    self.duplicate = list(self._pending.values())[int(j)]
        self._pending = {}
        order = np.argsort(hi, kind="stable")
        run = (hi[order], lo[order])
        while self._runs and len(self._runs[-1][0]) <= 2 * len(run[0]) and len(self._runs[-1][0]) < self.MAX_RUN:
            old = self._runs.pop()
            merged_hi, merged_lo = np.concatenate([old[0], run[0]]), np.concatenate([old[1], run[1]])
            order = np.argsort(merged_hi, kind="stable")
            run = (merged_hi[order], merged_lo[order])
        self._runs.append(run)
        return self.duplicate is None
