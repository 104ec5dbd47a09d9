#!/usr/bin/env python3
"""Merge predictions TSV shards (in the order given) into one table, atomically.

Keeps the first shard's '#' provenance lines, adds one naming the merge, writes the header
row once (every shard's must be the same) and then every shard's rows; ids must be unique.
Standard library only.
"""

import os
import sys
import tempfile


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
    folder = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".merge-", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600: give the result the usual permissions
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"merge_predictions: {len(seen)} rows from {len(shards)} shard(s) into {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
