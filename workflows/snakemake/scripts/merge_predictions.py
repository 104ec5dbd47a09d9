#!/usr/bin/env python3
"""Merge predictions TSV shards (in the order given) into one table, atomically.

Keeps the first shard's '#' provenance lines, adds one naming the merge, writes the header
row once (every shard's must be the same) and then every shard's rows; ids must be unique.
Run by the Snakefile's python, which has rnaloc_tools (as merge_embeddings.py does).
"""

import sys

from rnaloc_tools.fileio import atomic_output


def read(path):
    comments, header, rows = [], None, []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if header is None and line.startswith("#"):
                comments.append(line)
            elif header is None:
                header = line
            elif line.strip():
                rows.append(line)
    if header is None:
        sys.exit(f"merge_predictions: {path}: no header row")
    return comments, header, rows


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: merge_predictions.py OUTPUT SHARD.tsv...")
    output, shards = sys.argv[1], sys.argv[2:]
    comments, header, _ = read(shards[0])
    seen = set()
    with atomic_output(output) as out:  # temporary file, usual permissions, renamed when complete
        out.writelines(comments)
        out.write(f"#merged from {len(shards)} shard(s) in input order by workflows/snakemake\n")
        out.write(header)
        for path in shards:
            _, shard_header, rows = read(path)
            if shard_header != header:
                sys.exit(f"merge_predictions: {path}: header differs from {shards[0]}'s")
            for row in rows:
                rid = row.split("\t", 1)[0]
                if rid in seen:
                    sys.exit(f"merge_predictions: {path}: id {rid!r} also in an earlier shard")
                seen.add(rid)
                out.write(row)
    print(f"merge_predictions: {len(seen)} rows from {len(shards)} shard(s) into {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
