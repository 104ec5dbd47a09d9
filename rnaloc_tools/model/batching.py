"""Length-bucketed batches (numpy only, shared by training and prediction)."""

import numpy as np

#: Batch size x length^2 at most, for architectures whose attention matrices grow with the
#: square of the length (their module has ``quadratic_in_length = True``).
MAX_PAIRS = 1 << 24


def pair_cap(quadratic):
    return MAX_PAIRS if quadratic else None


def bucket_batches(lengths, batch_size, *, max_tokens=None, max_pairs=None, rng=None, pool=50):
    """Split indices 0..N-1 into batches of similar length, to keep padding low.

    Without ``rng`` (prediction): indices sorted by length, longest first, cut into
    batches of at most ``batch_size`` sequences and ``max_tokens`` padded positions.
    With ``rng`` (training): indices are shuffled, sorted by length within pools of
    ``pool`` batches, cut, and the batches shuffled, so every epoch differs while
    padding stays low; the result depends only on the rng's state.
    ``max_pairs`` caps batch size x length^2 (the attention matrices); a sequence
    over a cap gets a batch of its own.
    """
    lengths = np.asarray(lengths)
    if rng is None:
        order = np.argsort(-lengths, kind="stable")
        return list(_cut(order, lengths, batch_size, max_tokens, max_pairs))
    perm = rng.permutation(len(lengths))
    batches = []
    span = batch_size * pool
    for start in range(0, len(perm), span):
        chunk = perm[start : start + span]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(_cut(chunk, lengths, batch_size, max_tokens, max_pairs))
    return [batches[i] for i in rng.permutation(len(batches))]


def _cut(order, lengths, batch_size, max_tokens, max_pairs=None):
    batch, width = [], 0
    for i in order:
        need = max(width, int(lengths[i]))
        full = len(batch) >= batch_size
        full = full or (max_tokens and need * (len(batch) + 1) > max_tokens)
        full = full or (max_pairs and need * need * (len(batch) + 1) > max_pairs)
        if batch and full:
            yield np.array(batch)
            batch, need = [], int(lengths[i])
        batch.append(i)
        width = need
    if batch:
        yield np.array(batch)


def pad_batch(matrices, dtype=np.float32):
    """Stack (L_i, D) matrices into (B, max L, D) zeros-padded and the lengths (B,) int64."""
    lengths = np.array([m.shape[0] for m in matrices], dtype=np.int64)
    out = np.zeros((len(matrices), int(lengths.max()), matrices[0].shape[1]), dtype=dtype)
    for i, m in enumerate(matrices):
        out[i, : m.shape[0]] = m
    return out, lengths
