#!/usr/bin/env python3
"""Merge embeddings NPZ shards (in the order given) into one NPZ with rnaloc_tools' own
reader and writer (streaming, atomic; the shards must share the encoder metadata).

Not needed by rnaloc itself (every reader takes several shard files as one); this is
for tools that want a single file.
"""

import sys

from rnaloc_tools.formats.npz import ENCODER_KEYS, EmbeddingStore, EmbeddingWriter


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: merge_embeddings.py OUTPUT SHARD.npz...")
    output, shards = sys.argv[1], sys.argv[2:]
    store = EmbeddingStore(shards)  # checks encoder agreement and unique ids
    meta = {k: v for k, v in store.meta.items() if k not in ("format", "format_version", "tool_version")}
    missing = [k for k in ENCODER_KEYS if k not in meta]
    if missing:
        sys.exit(f"merge_embeddings: {shards[0]}: metadata lacks {', '.join(missing)}")
    with EmbeddingWriter(output, meta) as writer:
        for rid, matrix in store.items(dtype=store.shards[0].embeddings.dtype):
            writer.add(rid, matrix)
    print(f"merge_embeddings: {len(store)} sequences from {len(shards)} shard(s) into {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
