"""Tab-separated tables: the dataset TSV and the predictions TSV.

Both begin with ``#`` provenance lines (tool, version, command line), then a
header row. Tools keep the ``#`` lines they read, add their own, and pass
columns they do not know through unchanged.

dataset TSV:      id  rna_type  label  sequence  [source cluster fold split ...]
predictions TSV:  id  rna_type  prediction  probability_<class>...
"""

import csv
import io
import itertools
import shutil
from dataclasses import dataclass, field

import pandas as pd

from .. import CLASSES
from ..errors import InputError
from ..fileio import atomic_output, display_name, open_text_input, provenance_lines
from ..seqs import Record, SeenIds, normalize

DATASET_COLUMNS = ("id", "rna_type", "label", "sequence")
PREDICTION_COLUMNS = ("id", "rna_type", "prediction")


@dataclass
class Table:
    """A table and the ``#`` lines that came before its header."""

    df: pd.DataFrame
    header: list = field(default_factory=list)
    source: str = "<table>"

    def records(self):
        """Yield :class:`Record` objects (normalised sequence; other columns in ``extra``)."""
        others = [c for c in self.df.columns if c not in ("id", "sequence")]
        for d in self.df.to_dict("records"):
            yield Record(d["id"], d["sequence"], {c: d[c] for c in others})


def read_table_handle(text, source, require=(), first_line=None):
    """Read a TSV with leading ``#`` lines from a text handle; check required columns.

    ``first_line``: the file line number of the first row (for a block of a longer file)."""
    header, body = [], []
    lines = iter(text)
    for line in lines:
        if line.startswith("#") and not body:
            header.append(line.rstrip("\r\n"))
            continue
        body.append(line)
        break
    body.extend(lines)
    if not body or not body[0].strip():
        raise InputError(source, "empty table: no header row")
    names = [c.strip() for c in body[0].rstrip("\r\n").split("\t")]
    dup = next((c for i, c in enumerate(names) if c in names[:i]), None)
    if dup is not None:  # pandas would rename the second one (label.1) and read the first silently
        raise InputError(source, f"duplicate column {dup!r} in the header", line=len(header) + 1)
    try:
        df = pd.read_csv(
            io.StringIO("".join(body)),
            sep="\t",
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            quoting=csv.QUOTE_NONE,
            comment=None,
        )
    except pd.errors.ParserError as exc:
        fields = body[0].rstrip("\r\n").count("\t") + 1
        for number, line in enumerate(body[1:], start=first_line or len(header) + 2):
            found = line.rstrip("\r\n").count("\t") + 1
            if found > fields:  # name the line of the file, not pandas' line of the text it was given
                raise InputError(source, f"{found} tab-separated fields, but the header has {fields} "
                                 "(a stray or trailing tab?)", line=number) from None
        raise InputError(source, f"malformed TSV ({str(exc).strip().splitlines()[-1]})") from None
    if not isinstance(df.index, pd.RangeIndex):
        # pandas takes the first column as the index when every row has more fields than the
        # header: the columns would shift silently (ids read as sequences), so refuse
        fields = len(df.columns)
        for number, line in enumerate(body[1:], start=first_line or len(header) + 2):
            found = line.rstrip("\r\n").count("\t") + 1
            if found > fields:
                raise InputError(source, f"{found} tab-separated fields, but the header has {fields} "
                                 "(a stray or trailing tab?)", line=number)
        raise InputError(source, f"the rows have more tab-separated fields than the header ({fields})")
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in require if c not in df.columns]
    if missing:
        raise InputError(
            source,
            f"missing column(s) {', '.join(missing)} (the header has: {', '.join(df.columns)})",
        )
    return Table(df, header, source)


def read_table(path, require=()):
    source = display_name(path)
    with open_text_input(path) as text:
        try:
            return read_table_handle(text, source, require)
        except UnicodeDecodeError as exc:
            raise InputError(source, f"not a text file ({exc.reason})") from None


def _validate_dataset(table, labels):
    df = table.df
    if df.empty:
        raise InputError(table.source, "no rows")
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise InputError(table.source, "duplicate id", dup.iloc[0])
    empty_id = df["id"].str.strip() == ""
    if empty_id.any():
        raise InputError(table.source, "empty id", line=int(empty_id.to_numpy().argmax()) + 2 + len(table.header))
    df["sequence"] = [normalize(s, source=table.source, record=i) for i, s in zip(df["id"], df["sequence"])]
    if labels:
        for rid, rna_type, label in zip(df["id"], df["rna_type"], df["label"]):
            if rna_type not in CLASSES:
                raise InputError(
                    table.source, f"unknown rna_type {rna_type!r} (known: {', '.join(CLASSES)})", rid
                )
            if label not in CLASSES[rna_type]:
                raise InputError(
                    table.source,
                    f"label {label!r} is not a class of {rna_type} ({', '.join(CLASSES[rna_type])})",
                    rid,
                )
    return table


def read_dataset_handle(text, source, require=DATASET_COLUMNS, labels=None):
    """Read and validate a dataset TSV: unique ids, normalised sequences, known labels."""
    table = read_table_handle(text, source, require)
    if labels is None:
        labels = "label" in require
    return _validate_dataset(table, labels)


#: Rows parsed at a time by :func:`iter_dataset_records`.
RECORD_BLOCK = 65536


def iter_dataset_records(text, source, require=("id", "sequence"), block=None):
    """Yield :class:`Record` objects from a dataset TSV, ``block`` rows at a time (bounded memory).

    The same checks as :func:`read_dataset_handle` (header, columns, a row with more
    fields than the header, empty and duplicate ids, sequences), made on each block
    as it is read, so a file of millions of rows is never held whole.
    """
    block = block or RECORD_BLOCK
    lines = iter(text)
    n_comments = 0
    head = None
    for line in lines:
        if line.startswith("#"):
            n_comments += 1
            continue
        head = line
        break
    if head is None or not head.strip():
        raise InputError(source, "empty table: no header row")
    seen = SeenIds()
    first_line = n_comments + 2  # file line number of the first row of the block
    rows = 0
    while True:
        body = list(itertools.islice(lines, block))
        if not body:
            break
        table = read_table_handle(itertools.chain([head], body), source, require, first_line=first_line)
        df = table.df
        empty_id = df["id"].str.strip() == ""
        if empty_id.any():
            raise InputError(source, "empty id", line=int(empty_id.to_numpy().argmax()) + first_line)
        others = [c for c in df.columns if c not in ("id", "sequence")]
        for d in df.to_dict("records"):
            rid = d["id"]
            if not seen.add(rid):
                raise InputError(source, "duplicate id", seen.duplicate)
            yield Record(rid, normalize(d["sequence"], source=source, record=rid), {c: d[c] for c in others})
        rows += len(df)
        first_line += len(body)
    if not seen.flush():
        raise InputError(source, "duplicate id", seen.duplicate)
    if not rows:
        if head is not None:
            read_table_handle(iter([head]), source, require)  # missing columns are named first
        raise InputError(source, "no rows")


def read_dataset(path, require=DATASET_COLUMNS, labels=None):
    source = display_name(path)
    with open_text_input(path) as text:
        try:
            return read_dataset_handle(text, source, require, labels)
        except UnicodeDecodeError as exc:
            raise InputError(source, f"not a text file ({exc.reason})") from None


def write_table(df, path, tool, header=(), comments=True, notes=(), body=None):
    """Write ``df`` as TSV with the earlier ``#`` lines, this tool's provenance and its ``notes``
    (more ``#`` lines), atomically. ``comments=False`` writes no ``#`` lines at all.

    ``body``: a file of more rows (:func:`write_rows`, e.g. streamed chunk by chunk while the
    header was not known yet), copied after ``df``'s rows.
    """
    with atomic_output(path, "w") as out:
        for line in (list(header) + provenance_lines(tool) + list(notes)) if comments else ():
            out.write(line + "\n")
        df.to_csv(out, sep="\t", index=False, quoting=csv.QUOTE_NONE, lineterminator="\n")
        if body is not None:
            with open(body, encoding="utf-8", newline="") as rows:
                shutil.copyfileobj(rows, out, 1 << 20)


def write_rows(df, handle):
    """Append ``df``'s rows (no header) to an open TSV ``handle``, as :func:`write_table` writes them."""
    df.to_csv(handle, sep="\t", index=False, header=False, quoting=csv.QUOTE_NONE, lineterminator="\n")
