#!/usr/bin/env python3
"""Cut a FASTA (or .fa.gz) into shards of SIZE records, in order: OUTDIR/shard-00000.fa, ...

Standard library only. Records are copied byte for byte; ids must be unique across the
whole file (checked here, since each shard is checked only on its own downstream).
"""

import argparse
import gzip
import os
import sys


def records(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        record = []
        for line in handle:
            if line.startswith(">"):
                if record:
                    yield record
                record = [line]
            elif record:
                record.append(line)
            elif line.strip():
                sys.exit(f"shard_fasta: {path}: not FASTA (text before the first '>')")
        if record:
            yield record


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("fasta")
    parser.add_argument("outdir")
    parser.add_argument("--size", type=int, default=1000, help="records per shard")
    args = parser.parse_args()
    if args.size < 1:
        sys.exit("shard_fasta: --size must be at least 1")
    os.makedirs(args.outdir, exist_ok=True)
    seen = set()
    shard, count, out = 0, 0, None
    for record in records(args.fasta):
        rid = record[0][1:].split(maxsplit=1)[0] if record[0][1:].strip() else ""
        if not rid:
            sys.exit(f"shard_fasta: {args.fasta}: a record without an id")
        if rid in seen:
            sys.exit(f"shard_fasta: {args.fasta}: duplicate id {rid!r}")
        seen.add(rid)
        if out is None or count == args.size:
            if out is not None:
                out.close()
                shard += 1
            out = open(os.path.join(args.outdir, f"shard-{shard:05d}.fa"), "w", encoding="utf-8")
            count = 0
        out.writelines(line if line.endswith("\n") else line + "\n" for line in record)
        count += 1
    if out is None:
        sys.exit(f"shard_fasta: {args.fasta}: no sequences")
    out.close()
    print(f"shard_fasta: {len(seen)} sequences in {shard + 1} shard(s) of at most {args.size}", file=sys.stderr)


if __name__ == "__main__":
    main()
