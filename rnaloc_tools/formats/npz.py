"""The ragged embeddings NPZ.

An ordinary NumPy ``.npz`` (a zip of ``.npy`` members, stored uncompressed) with:

``ids``         (N,) unicode        sequence ids, unique
``offsets``     (N+1,) int64        rows of sequence i are ``embeddings[offsets[i]:offsets[i+1]]``
``embeddings``  (sum of lengths, D) float16, no padding
``meta``        () unicode          JSON: format, encoder, dim, checkpoint_sha256, max_length,
                                    long_policy, tool_version

:class:`EmbeddingWriter` streams: each added matrix goes to a spill file on disk,
so memory is bounded by one batch; closing copies the rows, in the requested
order, into the zip and renames it into place (atomic). :class:`EmbeddingStore`
memory-maps the ``embeddings`` member, so one sequence is read without loading
the rest, and it accepts several shard files as one store.
"""

import array
import json
import mmap
import os
import shutil
import struct
import tempfile
import zipfile

import numpy as np
from numpy.lib import format as npformat

from .. import __version__
from ..errors import InputError, RnalocError
from ..fileio import atomic_path, write_error
from .meta import check_classes, check_rna_type, optional_str, parse_json_object, positive_int
from ..seqs import SeenIds

FORMAT_NAME = "rnaloc-embeddings"
#: Per-position attention/importance that ``predict --attention`` writes: the same
#: ragged layout with D = 1, float32, and ``format`` = "rnaloc-attention".
ATTENTION_FORMAT = "rnaloc-attention"
FORMAT_VERSION = 1
DTYPE = np.dtype("<f2")
#: Metadata keys that must agree between shards, and between a model and its inputs.
ENCODER_KEYS = ("encoder", "dim", "checkpoint_sha256")
#: Bytes an :class:`EmbeddingStore` reads from its memory maps before it releases the mapped pages.
RELEASE_BYTES = 64 << 20


def _npy_header(fp, shape, dtype):
    npformat.write_array_header_2_0(
        fp, {"descr": npformat.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    )


def _write_member(zf, name, array):
    with zf.open(name + ".npy", "w", force_zip64=True) as fp:
        npformat.write_array(fp, np.asarray(array), allow_pickle=False)


class EmbeddingWriter:
    """Write a ragged embeddings NPZ, streaming, atomically.

    >>> with EmbeddingWriter("x.npz", {"encoder": "one-hot", "dim": 4}) as w:
    ...     w.add("seq1", matrix)          # (L, D) array, any float dtype
    ...     w.set_order(["seq1", ...])     # optional: the order of the file

    Matrices and ids go to spill files beside the output as they are added; memory
    holds 24 bytes per sequence (its row count and a digest of its id), so millions
    of sequences written in their final order (no :meth:`set_order`) cost a few
    tens of MB. :meth:`set_order` with another order reads the ids back into a dict.
    """

    def __init__(self, path, meta, *, dtype=DTYPE, format_name=FORMAT_NAME):
        self.path = os.fspath(path)
        self.meta = dict(meta)
        self.dim = int(self.meta["dim"])
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.format_name = format_name
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            self._spill = tempfile.TemporaryFile(dir=folder, prefix=".rnaloc-spill-")
            self._id_spill = tempfile.TemporaryFile(dir=folder, prefix=".rnaloc-spill-")
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._rows = array.array("q")  # rows of each sequence, in the order added
        self._seen = SeenIds()
        self._id_width = 1  # longest id, in characters
        self._order = None
        self._closed = False

    def add(self, rid, matrix):
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise RnalocError(f"{self.path}: embedding of {rid!r} has shape {matrix.shape}, expected (L, {self.dim})")
        if not self._seen.add(rid):
            raise RnalocError(f"{self.path}: duplicate id {self._seen.duplicate!r}")
        encoded = rid.encode("utf-8", "surrogatepass")
        try:
            self._spill.write(np.ascontiguousarray(matrix, dtype=self.dtype).tobytes())
            self._id_spill.write(struct.pack("<I", len(encoded)) + encoded)
        except OSError as exc:  # the spill files sit beside the output: a full disk is the output's
            raise write_error(self.path, exc) from None
        self._id_width = max(self._id_width, len(rid))
        self._rows.append(matrix.shape[0])

    def set_order(self, ids):
        """Write the sequences in this order (default: the order they were added)."""
        self._order = list(ids)

    def __len__(self):
        return len(self._rows)

    def _added_ids(self):
        """The ids in the order they were added, read back from the spill file."""
        self._id_spill.seek(0)
        read = self._id_spill.read
        for _ in range(len(self._rows)):
            (size,) = struct.unpack("<I", read(4))
            yield read(size).decode("utf-8", "surrogatepass")

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            if not self._seen.flush():
                raise RnalocError(f"{self.path}: duplicate id {self._seen.duplicate!r}")
            row_bytes = self.dim * self.dtype.itemsize
            if self._order is None:
                position = None  # the order added: one sequential copy
                lengths = np.frombuffer(self._rows, dtype=np.int64) if len(self._rows) else np.zeros(0, np.int64)
                width = self._id_width
            else:
                position = {rid: i for i, rid in enumerate(self._added_ids())}
                if len(self._order) != len(position) or set(self._order) != set(position):
                    raise RnalocError(f"{self.path}: internal error: the order does not match the sequences added")
                rows = np.frombuffer(self._rows, dtype=np.int64)
                starts = np.concatenate([[0], np.cumsum(rows)[:-1]]) * row_bytes
                lengths = rows[[position[r] for r in self._order]]
                width = max([len(r) for r in self._order], default=1)
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            meta = {"format_version": FORMAT_VERSION, "tool_version": __version__}
            meta.update(self.meta)
            meta["format"] = self.format_name
            ids = self._added_ids() if position is None else iter(self._order)
            with zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                with zf.open("ids.npy", "w", force_zip64=True) as fp:
                    id_dtype = np.dtype(f"<U{width}")
                    _npy_header(fp, (len(lengths),), id_dtype)
                    for rid in ids:
                        fp.write(rid.encode("utf-32-le").ljust(id_dtype.itemsize, b"\0"))
                _write_member(zf, "offsets", offsets)
                _write_member(zf, "meta", np.array(json.dumps(meta, sort_keys=True)))
                with zf.open("embeddings.npy", "w", force_zip64=True) as fp:
                    _npy_header(fp, (int(offsets[-1]), self.dim), self.dtype)
                    if position is None:
                        self._spill.seek(0)
                        shutil.copyfileobj(self._spill, fp, 1 << 20)
                    else:
                        for rid, n in zip(self._order, lengths):
                            self._spill.seek(int(starts[position[rid]]))
                            fp.write(self._spill.read(int(n) * row_bytes))
        except BaseException as exc:
            self._close_spills()
            # raises: an OSError (e.g. the spill files' last bytes flushed onto a full disk) as
            # fileio.write_error's line naming the output, anything else as it is
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._close_spills()
        self._atomic.__exit__(None, None, None)

    def _close_spills(self):
        """Discard the spill files; closing flushes their buffers, which on a full disk fails: the bytes are
        not wanted, and the error being handled (or about to be reported) must not be replaced by that one."""
        for spill in (self._spill, self._id_spill):
            try:
                spill.close()
            except OSError:
                pass

    def abort(self):
        if self._closed:
            return
        self._closed = True
        self._close_spills()
        exc = RnalocError("aborted")
        self._atomic.__exit__(RnalocError, exc, None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            try:
                self.abort()
            except RnalocError:
                pass
        return False


def _member_data_offset(path, zf, name):
    """Byte offset of an uncompressed member's data in the zip file, or None."""
    info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        return info.header_offset + 30 + name_len + extra_len


#: Small members read whole: ids, offsets, meta. ``embeddings`` is memory-mapped, never read whole.
_SMALL_MEMBERS = ("ids", "offsets", "meta")


def _read_stored_member(path, zf, name):
    """A small member (ids, offsets, meta) read after checking it cannot exhaust memory.

    A compressed (deflated) member is refused: a small file could inflate to
    gigabytes, and its rows could not be read one sequence at a time. The
    ``.npy`` header's shape must match the member's real size before anything
    is allocated; object arrays (pickles) are refused.
    """
    info = zf.getinfo(name + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise InputError(path, f"member {name!r} is compressed (numpy.savez_compressed): a compressed NPZ is "
                         "not read (it would be inflated whole into memory); write it with `rnaloc embed` or "
                         "numpy.savez")
    with zf.open(info) as fp:
        try:
            version = npformat.read_magic(fp)
            reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            shape, fortran, dtype = reader(fp)
        except ValueError as exc:
            raise InputError(path, f"corrupt member {name!r} ({exc})") from None
        if dtype.hasobject:
            raise InputError(path, f"member {name!r} holds Python objects (a pickle): not read")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        size = count * dtype.itemsize
        if size != info.file_size - fp.tell():
            raise InputError(path, f"corrupt member {name!r}: its header says {size} bytes of data, the file holds "
                             f"{info.file_size - fp.tell()}")
        data = fp.read(size)
    if len(data) != size:
        raise InputError(path, f"truncated member {name!r}")
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def _check_meta(meta, path, format_name):
    """Check the types of the metadata every reader relies on."""
    if meta.get("format") != format_name:
        raise InputError(path, f"not an {format_name} NPZ (meta.format is {meta.get('format')!r})")
    meta["dim"] = positive_int(meta.get("dim"), path, "meta.dim", optional=False)
    for key in ("max_length", "model_max_length"):
        positive_int(meta.get(key), path, f"meta.{key}")
    for key in ("encoder", "long_policy", "checkpoint_sha256", "model", "model_encoder", "model_sha256"):
        optional_str(meta.get(key), path, f"meta.{key}")
    if meta.get("rna_type") is not None:
        check_rna_type(meta["rna_type"], path)
    if meta.get("classes") is not None:
        meta["classes"] = list(check_classes(meta["classes"], meta.get("rna_type"), path))
    return meta


class _Shard:
    def __init__(self, path, format_name=FORMAT_NAME):
        self.path = os.fspath(path)
        # what the reader expects, named in its refusals (the two formats share their members)
        self.kind = "attention NPZ" if format_name == ATTENTION_FORMAT else "embeddings NPZ"
        if not os.path.exists(self.path):
            raise InputError(self.path, "no such file")
        if not os.path.isfile(self.path):
            raise InputError(self.path, f"not a regular file (a folder, device or pipe): not an {self.kind}")
        try:
            zf = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(self.path, f"not an {self.kind} ({exc})") from None
        with zf:
            names = set(zf.namelist())
            for key in ("ids", "offsets", "embeddings", "meta"):
                if key + ".npy" not in names:
                    raise InputError(self.path, f"not an {self.kind}: member {key!r} is missing")
            try:
                ids, offsets, meta = (_read_stored_member(self.path, zf, k) for k in _SMALL_MEMBERS)
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise InputError(self.path, f"corrupt {self.kind} ({exc})") from None
            if ids.ndim != 1 or ids.dtype.kind not in "US":
                raise InputError(self.path, f"corrupt {self.kind}: ids must be a list of names")
            if offsets.ndim != 1 or offsets.dtype.kind not in "iu":
                raise InputError(self.path, f"corrupt {self.kind}: offsets must be whole numbers")
            if meta.ndim != 0 or meta.dtype.kind not in "US":
                raise InputError(self.path, f"corrupt {self.kind}: meta must be one JSON text")
            self.ids = ids.astype(str).tolist()
            self.offsets = offsets.astype(np.int64)
            self.meta = _check_meta(parse_json_object(str(meta[()]), self.path, "NPZ meta"), self.path, format_name)
            if (len(self.offsets) != len(self.ids) + 1 or (np.diff(self.offsets) < 0).any()
                    or (len(self.offsets) and self.offsets[0] != 0)):
                raise InputError(self.path, f"corrupt {self.kind}: offsets do not match ids")
            empty = np.flatnonzero(np.diff(self.offsets) == 0)
            if len(empty):  # no tool writes one (an empty sequence is refused where it is read)
                raise InputError(self.path, f"corrupt {self.kind}: the record has no rows", self.ids[int(empty[0])])
            if zf.getinfo("embeddings.npy").compress_type != zipfile.ZIP_STORED:
                raise InputError(self.path, "member 'embeddings' is compressed (numpy.savez_compressed): a "
                                 "compressed NPZ is not read (it would be inflated whole into memory); write it "
                                 "with `rnaloc embed` or numpy.savez")
            start = _member_data_offset(self.path, zf, "embeddings.npy")
        if start is None:
            raise InputError(self.path, f"corrupt {self.kind}: the embeddings member cannot be located")
        self.embeddings = self._map(start)

    def _map(self, start):
        with open(self.path, "rb") as fh:
            fh.seek(start)
            try:
                version = npformat.read_magic(fh)
                reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
                shape, fortran, dtype = reader(fh)
            except ValueError as exc:
                raise InputError(self.path, f"corrupt embeddings member ({exc})") from None
            data = fh.tell()
        if fortran or len(shape) != 2 or dtype.kind != "f":
            raise InputError(self.path, f"embeddings member has an unexpected layout {shape} {dtype}")
        if shape[0] != self.offsets[-1]:
            raise InputError(self.path, f"corrupt {self.kind}: row count does not match offsets")
        if shape[1] != self.meta["dim"]:
            raise InputError(self.path, f"corrupt {self.kind}: {shape[1]} columns, but meta.dim is {self.meta['dim']}")
        if shape[0] == 0:
            return np.zeros(shape, dtype=dtype)
        if os.path.getsize(self.path) < data + shape[0] * shape[1] * dtype.itemsize:
            raise InputError(self.path, f"truncated {self.kind}")
        return np.memmap(self.path, dtype=dtype, mode="r", offset=data, shape=tuple(shape))


class EmbeddingStore:
    """Read one or several embeddings NPZ shards as one id -> (L, D) mapping."""

    def __init__(self, paths, format_name=FORMAT_NAME):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.shards = [_Shard(p, format_name) for p in paths]
        if not self.shards:
            raise RnalocError("no embeddings file given")
        first = self.shards[0]
        for shard in self.shards[1:]:
            for key in ENCODER_KEYS + ("long_policy",):
                if shard.meta.get(key) != first.meta.get(key):
                    raise InputError(
                        shard.path,
                        f"shard made with {key}={shard.meta.get(key)!r}, but {first.path} has {first.meta.get(key)!r}",
                    )
        self.meta = dict(first.meta)
        self._read = 0  # bytes read from the memory maps since the last release()
        self._index = {}
        self._base = np.cumsum([0] + [len(shard.ids) for shard in self.shards]).tolist()
        for s, shard in enumerate(self.shards):
            for i, rid in enumerate(shard.ids):
                if rid in self._index:
                    where = "twice in this file" if self._index[rid][0] == s else f"also in another shard ({self.shards[self._index[rid][0]].path})"
                    raise InputError(shard.path, f"duplicate id: {where}", rid)
                self._index[rid] = (s, i)

    @property
    def dim(self):
        return int(self.meta["dim"])

    @property
    def ids(self):
        return [rid for shard in self.shards for rid in shard.ids]

    def __len__(self):
        return len(self._index)

    def __contains__(self, rid):
        return rid in self._index

    def position(self, rid):
        """Where ``rid`` is in :attr:`ids` (None when it is not in the store)."""
        at = self._index.get(rid)
        return None if at is None else self._base[at[0]] + at[1]

    def length(self, rid):
        s, i = self._index[rid]
        off = self.shards[s].offsets
        return int(off[i + 1] - off[i])

    def get(self, rid, dtype=np.float32, rows=None):
        """The (L, D) matrix of one sequence (read from disk, not the whole file); its first ``rows`` rows if given.

        The shards are memory maps: every :data:`RELEASE_BYTES` read, the pages
        read so far are released from this process (they stay in the page
        cache), so reading a whole large file, sequence by sequence, does not
        make the process's resident memory grow to the file's size.
        """
        try:
            s, i = self._index[rid]
        except KeyError:
            raise RnalocError(f"id {rid!r} is not in the embeddings") from None
        shard = self.shards[s]
        start, end = shard.offsets[i], shard.offsets[i + 1]
        if rows is not None:
            end = min(end, start + int(rows))
        matrix = np.array(shard.embeddings[start:end], dtype=dtype)
        self._read += matrix.shape[0] * shard.embeddings.shape[1] * shard.embeddings.dtype.itemsize
        if self._read >= RELEASE_BYTES:
            self.release()
        if not np.isfinite(matrix).all():  # NaN/inf would train a NaN model, or predict NaN, with exit 0
            raise InputError(shard.path, "the embedding holds NaN or infinite values", rid)
        return matrix

    def release(self):
        """Drop the mapped pages read so far from this process's resident memory (not from the page cache)."""
        self._read = 0
        for shard in self.shards:
            mm = getattr(shard.embeddings, "_mmap", None)  # numpy.memmap's own mmap object
            if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
                mm.madvise(mmap.MADV_DONTNEED)

    __getitem__ = get

    def items(self, dtype=np.float32):
        for rid in self.ids:
            yield rid, self.get(rid, dtype)


def check_same_encoder(expected, actual, what_expected, what_actual):
    """Raise when two metadata dicts name different encoders (DESIGN: checked from metadata)."""
    for key in ENCODER_KEYS:
        if expected.get(key) != actual.get(key):
            raise RnalocError(
                f"{what_actual} was made with {key}={actual.get(key)!r}, but {what_expected} expects "
                f"{expected.get(key)!r}: embed the sequences with the model's own encoder"
            )
