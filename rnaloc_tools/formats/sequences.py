"""Reading sequence sets: FASTA, or the dataset TSV, recognised from the content."""

import codecs
import io
import os

from Bio.SeqIO.FastaIO import SimpleFastaParser

from ..errors import InputError
from ..fileio import display_name, is_stdio, open_binary_input
from ..seqs import Record, SeenIds, normalize
from .tables import iter_dataset_records


#: Bytes read at a time while sniffing; a first significant line longer than _MAX_FIRST_LINE is not a header.
_CHUNK = 1 << 16
_MAX_FIRST_LINE = 1 << 20


class _Replay(io.RawIOBase):
    """The bytes a sniffer read, then the rest of the stream: nothing is lost, however much was read."""

    def __init__(self, head, rest):
        self._head = bytes(head)
        self._pos = 0
        self._rest = rest

    def readable(self):
        return True

    def readinto(self, buffer):
        if self._pos < len(self._head):
            n = min(len(buffer), len(self._head) - self._pos)
            buffer[:n] = self._head[self._pos : self._pos + n]
            self._pos += n
            return n
        data = self._rest.read1(len(buffer)) if hasattr(self._rest, "read1") else self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def sniff(handle, source):
    """('fasta' or 'tsv', a binary stream that still holds every byte) from a binary handle.

    The one sniffer of every tool that takes FASTA or a dataset TSV: ``#``
    lines at the top (provenance) are skipped however many there are (no
    fixed-size window), then the first significant line decides: ``>`` is
    FASTA, a tab-separated header is a TSV.
    """
    head = bytearray()
    first = True
    in_comment = False  # inside a '#' line longer than one chunk
    fmt = None
    seen_text = False
    while True:
        line = handle.readline(_CHUNK)
        if not line:
            break
        head += line
        complete = line.endswith(b"\n")
        if in_comment:
            in_comment = not complete
            continue
        if first and line.startswith(codecs.BOM_UTF8):  # a byte-order mark, as some Windows editors write
            line = line[len(codecs.BOM_UTF8):]
        first = False
        stripped = line.strip()
        if not stripped:
            continue
        seen_text = True
        if stripped.startswith(b">"):
            fmt = "fasta"
            break
        if stripped.startswith(b"#"):
            in_comment = not complete
            continue
        while not complete and b"\t" not in line and len(line) < _MAX_FIRST_LINE:
            more = handle.readline(_CHUNK)
            if not more:
                break
            head += more
            line += more
            complete = more.endswith(b"\n")
        if b"\t" in line:
            fmt = "tsv"
        break
    if fmt is None:
        if not seen_text:
            raise InputError(source, "empty input: no sequences")
        raise InputError(
            source, "not FASTA (no line starting with '>') nor a dataset TSV (no tab-separated header)"
        )
    return fmt, io.BufferedReader(_Replay(head, handle), buffer_size=_CHUNK)


def is_npz(path):
    """Whether ``path`` is an NPZ (a zip: embeddings or attention) rather than FASTA or a TSV.

    Part of the one sniffer: tools that take sequences or embeddings (predict)
    ask this first, then :func:`sniff` for text."""
    if is_stdio(path) or not os.path.isfile(path):
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


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


def read_records(path, source=None):
    """Yield :class:`Record` objects from FASTA or a dataset TSV (path, ``-`` or ``.gz``).

    The format is recognised from the content, so pipes work without a flag. ``source``
    names the input in errors (default: the path; e.g. ``<stdin>`` for a copy of stdin).
    """
    source = source or display_name(path)
    handle = open_binary_input(path)
    try:
        fmt, stream = sniff(handle, source)
    except BaseException:
        if not is_stdio(path):
            handle.close()
        raise
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict")
    try:
        if fmt == "fasta":
            yield from read_fasta_handle(text, source)
        else:
            yield from iter_dataset_records(text, source, require=("id", "sequence"))
    except UnicodeDecodeError as exc:
        raise InputError(source, f"not a text file ({exc.reason})") from None
    finally:
        text.detach()  # the replay stream; stdin stays open for whoever reads it next
        if not is_stdio(path):
            handle.close()
