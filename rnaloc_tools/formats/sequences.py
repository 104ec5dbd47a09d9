"""Reading sequence sets: FASTA, or the dataset TSV, recognised from the content."""

import codecs
import io

from Bio.SeqIO.FastaIO import SimpleFastaParser

from ..errors import InputError
from ..fileio import display_name, is_stdio, open_binary_input
from ..seqs import Record, SeenIds, normalize
from .tables import read_dataset_handle


def sniff_format(handle, source):
    """'fasta' or 'tsv' from the first significant byte of a peekable binary handle."""
    head = handle.peek(65536)[:65536]
    if head.startswith(codecs.BOM_UTF8):  # a byte-order mark, as some Windows editors write
        head = head[len(codecs.BOM_UTF8):]
    if not head.strip():
        raise InputError(source, "empty input: no sequences")
    for line in head.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(b">"):
            return "fasta"
        if stripped.startswith(b"#"):
            continue
        if b"\t" in stripped:
            return "tsv"
        break
    raise InputError(
        source, "not FASTA (no line starting with '>') nor a dataset TSV (no tab-separated header)"
    )


def read_fasta_handle(text, source):
    """Yield normalised :class:`Record` objects from a FASTA text handle."""
    seen = SeenIds()  # bounded memory for millions of records
    first = True
    for title, seq in SimpleFastaParser(text):
        first = False
        rid = title.split(None, 1)[0] if title.strip() else ""
        if not rid:
            raise InputError(source, "FASTA header without an id", title)
        if not seen.add(rid):
            raise InputError(source, "duplicate id", seen.duplicate)
        yield Record(rid, normalize(seq, source=source, record=rid))
    if first:
        raise InputError(source, "empty input: no sequences")
    if not seen.flush():
        raise InputError(source, "duplicate id", seen.duplicate)


def read_records(path):
    """Yield :class:`Record` objects from FASTA or a dataset TSV (path, ``-`` or ``.gz``).

    The format is recognised from the content, so pipes work without a flag.
    """
    source = display_name(path)
    handle = open_binary_input(path)
    fmt = sniff_format(handle, source)
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="strict")
    try:
        if fmt == "fasta":
            yield from read_fasta_handle(text, source)
        else:
            dataset = read_dataset_handle(text, source, require=("id", "sequence"))
            yield from dataset.records()
    except UnicodeDecodeError as exc:
        raise InputError(source, f"not a text file ({exc.reason})") from None
    finally:
        if is_stdio(path):
            text.detach()  # leave stdin open for whoever reads it next
        else:
            text.close()
