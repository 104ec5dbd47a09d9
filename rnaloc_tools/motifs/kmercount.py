"""Sequence-presence counts of k-mers in bounded memory (the k-mer tables of ``rnaloc motifs``).

Each count is "in how many sequences of a group does this k-mer occur" (a group is a class
and a kind of region: candidate regions or the rest). The caller adds, part by part, the
k-mer codes of each sequence once (unique per sequence); since a sequence never spans two
parts, a code added n times was present in n sequences.

Short k-mers (4^k values at most 4^:data:`DENSE_MAX_K`) are counted in dense arrays in
memory. Longer ones are too many to hold for a large input (their number grows with the
input), so they are counted the way KMC or Jellyfish count on disk: every added code
(k <= 15 fits in 32 bits) is appended to one of P partition files by a hash of the code,
one file per (k, group, partition); then each partition is read back alone and counted
(``np.unique``). A k-mer lands in one partition for every group, so a partition's counts
are complete. P is chosen from the input's size so that a partition holds about
:data:`PARTITION_ENTRIES` codes: memory is bounded by one part of the input plus one
partition; the disk holds 4 bytes per k-mer entry, at most 4 bytes per nucleotide and k
above :data:`DENSE_MAX_K` (20 bytes per nucleotide for k = 11..15, less in practice:
a k-mer counts only inside a region or a rest run, and once per sequence).
"""

import os

import numpy as np

#: k-mers up to this length are counted in memory (4^10 counters of 4 bytes per group: 4 MB).
DENSE_MAX_K = 10
#: Codes per partition file (about), for longer k-mers: 8 MB of uint32 each.
PARTITION_ENTRIES = 1 << 21
_DENSE_SLICE = 1 << 18
#: At most this many partitions per k and group (a partition grows beyond PARTITION_ENTRIES then).
MAX_PARTITIONS = 4096
_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of code * this pick the partition


class PresenceCounts:
    """Counts of k-mer codes per group, for k in ``ks``; ``total`` bounds the codes added per k."""

    def __init__(self, folder, ks, n_groups, total):
        self.folder = folder
        self.n_groups = n_groups
        self.dense = {k: np.zeros((n_groups, 4**k), np.int32) for k in ks if k <= DENSE_MAX_K}
        self.disk = [k for k in ks if k > DENSE_MAX_K]
        parts = 1
        while parts * PARTITION_ENTRIES < total and parts < MAX_PARTITIONS:
            parts *= 2
        self.parts = parts
        self.bits = parts.bit_length() - 1
        self.bytes_written = 0
        self.peak_bytes = 0
        self._on_disk = 0

    def _path(self, k, group, part):
        return os.path.join(self.folder, f"k{k}-g{group}-p{part}.u32")

    def partition(self, codes):
        if self.bits == 0:
            return np.zeros(len(codes), np.int64)
        with np.errstate(over="ignore"):
            return ((codes.astype(np.uint64) * _HASH) >> np.uint64(64 - self.bits)).astype(np.int64)

    def add(self, k, group, codes):
        """Add codes (each once per sequence holding it) to ``group``'s counts of k-mers of length ``k``."""
        if not len(codes):
            return
        if k in self.dense:
            self.dense[k][group] += np.bincount(codes, minlength=4**k).astype(np.int32)
            return
        part = self.partition(codes)
        order = np.argsort(part, kind="stable")
        codes = codes[order].astype(np.uint32)
        bounds = np.searchsorted(part[order], np.arange(self.parts + 1))
        for p in np.flatnonzero(np.diff(bounds)):
            with open(self._path(k, group, p), "ab") as fh:
                codes[bounds[p] : bounds[p + 1]].tofile(fh)
        self.bytes_written += 4 * len(codes)
        self._on_disk += 4 * len(codes)
        self.peak_bytes = max(self.peak_bytes, self._on_disk)

    def counts(self, k):
        """Yield (codes, counts (n, n_groups)) of every code added for ``k``, in parts (one partition
        at a time; codes sorted within a part). Partition files are removed once read."""
        if k in self.dense:
            table = self.dense.pop(k)
            for start in range(0, table.shape[1], _DENSE_SLICE):  # a slice at a time: no int64 copy of it all
                part = table[:, start : start + _DENSE_SLICE]
                codes = np.flatnonzero(part.any(axis=0))
                yield codes + start, part[:, codes].T.astype(np.int64)
            return
        for p in range(self.parts):
            uniq = []
            for g in range(self.n_groups):
                path = self._path(k, g, p)
                if not os.path.exists(path):
                    uniq.append((np.zeros(0, np.int64), np.zeros(0, np.int64)))
                    continue
                values = np.fromfile(path, dtype=np.uint32)
                self._on_disk -= 4 * len(values)
                os.unlink(path)
                u, c = np.unique(values, return_counts=True)
                uniq.append((u.astype(np.int64), c))
                del values
            codes = np.unique(np.concatenate([u for u, _ in uniq]))
            if not len(codes):
                continue
            table = np.zeros((len(codes), self.n_groups), np.int64)
            for g, (u, c) in enumerate(uniq):
                table[np.searchsorted(codes, u), g] = c
            yield codes, table
