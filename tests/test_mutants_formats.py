"""Tests written to kill the mutants of formats/npz.py and formats/tables.py that survived session 3
(issue 16, item 2; bench/mutation-survivors.md, "Session 4: formats/npz.py and formats/tables.py triage"),
and, from "Session 5" on (the end of the file), the survivors of the functions no session had measured:
the NPZ writer, ``EmbeddingStore.length``/``release``, ``read_table``, ``read_dataset``, ``write_table``,
``write_rows``.

Most of those survivors changed or dropped the text of an error, or the file it names: the rule is
that bad input gives ONE line naming the file, the record (or NPZ member) and the problem, exit
code 1, and no output. So each refusal below is checked as the WHOLE line the user sees, through
the command line where a command reaches it (``rnaloc train DATASET NPZ...`` reads every embeddings
NPZ it is given before it trains), and at the library level where no command can (a folder is a
usage error for click first). Every expected line is written by hand.
"""

import errno
import io
import os
import json
import struct
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npformat

from rnaloc_tools.errors import InputError, RnalocError
from rnaloc_tools.formats import EmbeddingStore, check_same_encoder, read_dataset, read_table
from rnaloc_tools.formats import npz as npz_module
from rnaloc_tools.formats.tables import iter_dataset_records

from conftest import leftovers, one_error_line, write_npz

META = {"format": "rnaloc-embeddings", "encoder": "one-hot", "dim": 4}
COMPRESSED = ("is compressed (numpy.savez_compressed): a compressed NPZ is not read (it would be inflated "
              "whole into memory); write it with `rnaloc embed` or numpy.savez")


def _npy(array, shape=None, allow_pickle=False):
    """The bytes of one ``.npy`` member; ``shape``: a header that lies about the data that follows."""
    array = np.asarray(array)
    if shape is None:
        out = io.BytesIO()
        npformat.write_array(out, array, allow_pickle=allow_pickle)
        return out.getvalue()
    out = io.BytesIO()
    npformat.write_array_header_1_0(out, {"descr": npformat.dtype_to_descr(array.dtype), "fortran_order": False,
                                          "shape": shape})
    return out.getvalue() + array.tobytes()


def forge(path, ids=("a",), offsets=(0, 2), meta=META, embeddings=None, *, raw=None, drop=(), deflate=(),
          extra=None, comment=b""):
    """An NPZ made member by member, so that any one member can be wrong.

    ``raw``: {member: bytes} written as they are; ``drop``: members left out; ``deflate``: members
    compressed; ``extra``: a zip extra field given to the ``embeddings`` member; ``comment``: the zip comment.
    """
    if embeddings is None:
        embeddings = np.arange(8, dtype=np.float16).reshape(2, 4)
    members = {
        "ids": _npy(np.array(ids)) if not isinstance(ids, np.ndarray) else _npy(ids, allow_pickle=True),
        "offsets": _npy(np.asarray(offsets, dtype=np.int64) if not isinstance(offsets, np.ndarray) else offsets),
        "meta": _npy(np.array(json.dumps(meta)) if isinstance(meta, dict) else meta),
        "embeddings": _npy(embeddings),
    }
    members.update(raw or {})
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            if name in drop:
                continue
            info = zipfile.ZipInfo(name + ".npy", date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
            if name == "embeddings" and extra is not None:
                info.extra = extra
            zf.writestr(info, data)
        zf.comment = comment
    return path


def _central_entry(data, member):
    """Offset of ``member``'s central directory entry in the zip bytes ``data``."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_len] == member.encode():
            return at
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"no central entry for {member}")


def patch_central(path, member, field_offset, value):
    """Overwrite one 4-byte field of ``member``'s central directory entry (the file's index of members)."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, _central_entry(data, member) + field_offset, value)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.tsv").write_text("id\trna_type\tlabel\tsequence\na\tlncRNA\tnucleus\tACGU\n")
    return tmp_path


def train_error(cli, work, *npz):
    """The one error line of ``rnaloc train d.tsv NPZ... -o m.pt``; nothing may be written."""
    before = sorted(p.name for p in work.iterdir())
    line = one_error_line(cli("train", "d.tsv", *npz, "-o", "m.pt"), "train")
    assert sorted(p.name for p in work.iterdir()) == before and leftovers(work) == []
    return line


# --------------------------------------------------------------------------- NPZ: the file itself


def test_a_missing_npz_is_one_line_naming_it(cli, work):
    assert train_error(cli, work, "nope.npz") == "rnaloc train: error: nope.npz: no such file"


def test_a_device_given_as_npz_is_one_line_naming_it(cli, work):
    assert train_error(cli, work, "/dev/null") == (
        "rnaloc train: error: /dev/null: not a regular file (a folder, device or pipe): not an embeddings NPZ")


def test_a_folder_given_as_npz_is_refused_naming_it(tmp_path):
    # click refuses a folder first (a usage error): the library's own check, for callers without click
    with pytest.raises(InputError) as caught:
        EmbeddingStore(tmp_path)
    assert str(caught.value) == f"{tmp_path}: not a regular file (a folder, device or pipe): not an embeddings NPZ"


def test_a_file_that_is_not_a_zip(cli, work):
    (work / "x.npz").write_bytes(b"hello")
    assert train_error(cli, work, "x.npz") == "rnaloc train: error: x.npz: not an embeddings NPZ (File is not a zip file)"


@pytest.mark.parametrize("member", ["ids", "offsets", "embeddings", "meta"])
def test_a_missing_member_is_named(cli, work, member):
    forge(work / "e.npz", drop=(member,))
    assert train_error(cli, work, "e.npz") == (
        f"rnaloc train: error: e.npz: not an embeddings NPZ: member {member!r} is missing")


@pytest.mark.parametrize("member", ["ids", "offsets", "meta", "embeddings"])
def test_a_compressed_member_is_named(cli, work, member):
    forge(work / "e.npz", deflate=(member,))
    assert train_error(cli, work, "e.npz") == f"rnaloc train: error: e.npz: member {member!r} {COMPRESSED}"


# --------------------------------------------------------------------------- NPZ: a member's .npy header and size


def test_a_corrupt_member_header_is_named(cli, work):
    forge(work / "e.npz", raw={"offsets": b"\x93NUMPX garbage"})
    line = train_error(cli, work, "e.npz")
    # numpy's own words follow in the parentheses
    assert line.startswith("rnaloc train: error: e.npz: corrupt member 'offsets' (the magic string is not correct")
    assert line.endswith(")")


def test_a_pickled_member_is_named_and_not_unpickled(cli, work):
    forge(work / "e.npz", ids=np.array(["a"], dtype=object))
    assert train_error(cli, work, "e.npz") == (
        "rnaloc train: error: e.npz: member 'ids' holds Python objects (a pickle): not read")


def test_a_member_whose_header_lies_about_its_size_is_named(cli, work):
    # a header for 1 id of 1 character (4 bytes of UTF-32) followed by 8 bytes
    forge(work / "e.npz", raw={"ids": _npy(np.array(["a", "b"]), shape=(1,))})
    assert train_error(cli, work, "e.npz") == (
        "rnaloc train: error: e.npz: corrupt member 'ids': its header says 4 bytes of data, the file holds 8")


def test_a_member_shorter_than_the_zip_index_says_is_truncated(cli, work):
    # the .npy header says 2 ids (8 bytes), 4 follow; the zip's index claims the 4 missing bytes
    # (its CRC is that of the real bytes): reading stops short of the header's size
    data = _npy(np.array(["a"]), shape=(2,))
    path = forge(work / "e.npz", ids=("a", "b"), offsets=(0, 1, 2), raw={"ids": data})
    patch_central(path, "ids.npy", 24, len(data) + 4)  # uncompressed size
    assert train_error(cli, work, "e.npz") == "rnaloc train: error: e.npz: truncated member 'ids'"


def test_members_headed_column_major_are_read(tmp_path):
    # writers for column-major languages (e.g. Julia's NPZ.jl) mark every array fortran_order: True;
    # for the 1-D ids and offsets and the 0-D meta it changes nothing
    def column_major(array):
        out = io.BytesIO()
        npformat.write_array_header_1_0(out, {"descr": npformat.dtype_to_descr(array.dtype), "fortran_order": True,
                                              "shape": array.shape})
        return out.getvalue() + array.tobytes()

    path = forge(tmp_path / "e.npz", ids=("a", "b"), offsets=(0, 1, 2), raw={
        "ids": column_major(np.array(["a", "bb"])), "offsets": column_major(np.array([0, 1, 2], np.int64)),
        "meta": column_major(np.array(json.dumps(META)))})
    store = EmbeddingStore(path)
    assert store.ids == ["a", "bb"] and store.get("bb").tolist() == [[4, 5, 6, 7]]


def test_a_member_whose_bytes_do_not_match_their_checksum(cli, work):
    path = forge(work / "e.npz", ids=("abc",), raw={"ids": _npy(np.array(["abc"]))})
    data = path.read_bytes()
    at = data.find("abc".encode("utf-32-le"))
    path.write_bytes(data[:at] + "abd".encode("utf-32-le") + data[at + 12:])  # the id changed, not its CRC-32
    assert train_error(cli, work, "e.npz") == (
        "rnaloc train: error: e.npz: corrupt embeddings NPZ (Bad CRC-32 for file 'ids.npy')")


# --------------------------------------------------------------------------- NPZ: what the members hold


@pytest.mark.parametrize("change, problem", [
    ({"ids": np.array([["a"]])}, "ids must be a list of names"),             # 2-D names
    ({"ids": np.array([7])}, "ids must be a list of names"),                 # numbers
    ({"offsets": np.array([[0, 2]])}, "offsets must be whole numbers"),      # 2-D whole numbers
    ({"offsets": np.array([0.0, 2.0])}, "offsets must be whole numbers"),    # floats
    ({"meta": np.array([json.dumps(META)])}, "meta must be one JSON text"),  # a list of one text
    ({"meta": np.array(1.5)}, "meta must be one JSON text"),                 # a number
])
def test_members_of_the_wrong_kind_are_named(cli, work, change, problem):
    forge(work / "e.npz", **change)
    assert train_error(cli, work, "e.npz") == f"rnaloc train: error: e.npz: corrupt embeddings NPZ: {problem}"


@pytest.mark.parametrize("meta, problem", [
    (np.array("{not json"), "corrupt NPZ meta: not JSON (Expecting property name enclosed in double quotes: "
                            "line 1 column 2 (char 1))"),
    (np.array("[1]"), "corrupt NPZ meta: a JSON object was expected, not list"),
    ({"format": "rnaloc-embeddings", "encoder": "one-hot"}, "corrupt metadata: meta.dim must be a positive whole "
                                                            "number, not None"),
    (dict(META, checkpoint_sha256=1), "corrupt metadata: meta.checkpoint_sha256 must be text, not 1"),
    (dict(META, model=["m"]), "corrupt metadata: meta.model must be text, not ['m']"),
    (dict(META, model_encoder=2), "corrupt metadata: meta.model_encoder must be text, not 2"),
])
def test_bad_metadata_is_named(cli, work, meta, problem):
    forge(work / "e.npz", meta=meta)
    assert train_error(cli, work, "e.npz") == f"rnaloc train: error: e.npz: {problem}"


@pytest.mark.parametrize("ids, offsets", [
    (("a",), (1, 2)),           # does not start at 0 (and never decreases)
    (("a",), (0, 1, 2)),        # one offset too many (and never decreases)
    (("a", "b"), (0, 2, 1)),    # decreasing
])
def test_offsets_that_do_not_match_the_ids(cli, work, ids, offsets):
    forge(work / "e.npz", ids=ids, offsets=offsets)
    assert train_error(cli, work, "e.npz") == (
        "rnaloc train: error: e.npz: corrupt embeddings NPZ: offsets do not match ids")


def test_a_sequence_of_zero_rows_is_refused_naming_it(cli, work):
    # no tool writes one (an empty sequence is refused when read); before, `rnaloc predict` ran the
    # model on it and failed later ("the model gave non-finite probabilities"), after printing rows
    forge(work / "e.npz", ids=("a", "b", "c"), offsets=(0, 2, 2, 2))
    assert train_error(cli, work, "e.npz") == (
        "rnaloc train: error: e.npz: record 'b': corrupt embeddings NPZ: the record has no rows")
    result = cli("predict", "e.npz", "--rna-type", "lncRNA", "-o", "p.tsv")
    assert one_error_line(result, "predict") == (
        "rnaloc predict: error: e.npz: record 'b': corrupt embeddings NPZ: the record has no rows")
    assert not (work / "p.tsv").exists()


def test_an_attention_file_is_named_as_one_in_the_refusals(cli, work):
    """The two formats share their members and their reader: the refusal names what the tool expects."""
    from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore

    (work / "s.fa").write_text(">a\nACGUACGUAG\n>b\nGGCCAAUUGC\n>c\nACGUUUAGCA\n")
    assert cli("predict", "s.fa", "--rna-type", "miRNA", "-o", "p.tsv", "--attention", "att.npz").exit_code == 0
    meta = EmbeddingStore(work / "att.npz", format_name=ATTENTION_FORMAT).meta
    forge(work / "z.npz", ids=("a", "b", "c"), offsets=(0, 10, 10, 20), meta=meta,
          embeddings=np.full((20, meta["dim"]), 0.1, dtype=np.float16))
    forge(work / "x.npz", ids=("a", "b", "c"), offsets=(0, 10, 20, 30), meta=meta, drop=("ids",))
    before = sorted(p.name for p in work.iterdir())
    for npz, problem in [("z.npz", "record 'b': corrupt attention NPZ: the record has no rows"),
                         ("x.npz", "not an attention NPZ: member 'ids' is missing")]:
        line = one_error_line(cli("motifs", npz, "--sequences", "s.fa", "--class-from", "none", "-o", "mot"), "motifs")
        assert line == f"rnaloc motifs: error: {npz}: {problem}"
    assert sorted(p.name for p in work.iterdir()) == before and leftovers(work) == []


# --------------------------------------------------------------------------- NPZ: finding the embeddings' bytes


def _embeddings_header_offset(path):
    with zipfile.ZipFile(path) as zf:
        return zf.getinfo("embeddings.npy").header_offset


def test_an_embeddings_member_without_its_local_header(cli, work):
    path = forge(work / "e.npz")
    data = bytearray(path.read_bytes())
    at = _embeddings_header_offset(path)
    assert data[at:at + 4] == b"PK\x03\x04"
    data[at:at + 4] = b"PK\x09\x09"
    path.write_bytes(bytes(data))
    assert train_error(cli, work, "e.npz") == (
        "rnaloc train: error: e.npz: corrupt embeddings NPZ: the embeddings member cannot be located")


def test_an_embeddings_member_pointing_at_a_short_header_at_the_end(cli, work):
    # the index points the member at the last bytes of the file: a local header signature with
    # fewer than the 30 bytes of a header after it (in the zip comment)
    path = forge(work / "e.npz", comment=b"PK\x03\x04abc")
    patch_central(path, "embeddings.npy", 42, path.stat().st_size - 7)  # relative offset of local header
    assert train_error(cli, work, "e.npz") == (
        "rnaloc train: error: e.npz: corrupt embeddings NPZ: the embeddings member cannot be located")


def test_an_embeddings_member_with_a_large_extra_field_is_read(tmp_path):
    # 40000 bytes of extra field (above 32767: read as a signed 16-bit length it would be negative)
    extra = struct.pack("<HH", 0xCAFE, 39996) + b"\0" * 39996
    path = forge(tmp_path / "e.npz", extra=extra)
    store = EmbeddingStore(path)
    assert store.get("a").tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_locating_the_embeddings_reads_a_bounded_number_of_bytes(tmp_path, monkeypatch):
    # the embeddings member is memory-mapped, never read: finding where its data starts reads the
    # 30 bytes of its local header, not the rest of the file (gigabytes for a real data set)
    path = write_npz(tmp_path / "e.npz", {f"s{i}": np.ones((50, 4)) for i in range(20)},
                     {"encoder": "one-hot", "dim": 4})
    reads = []

    class Spy:
        def __init__(self, fh):
            self.fh = fh

        def read(self, size=-1):
            reads.append(size)
            return self.fh.read(size)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(npz_module, "open", lambda *a, **k: Spy(open(*a, **k)), raising=False)
    store = EmbeddingStore(path)
    assert store.get("s3").shape == (50, 4)
    assert reads and all(size is not None and 0 <= size <= 4096 for size in reads), reads


@pytest.mark.parametrize("change, problem", [
    ({"raw": {"embeddings": b"\x93NUMPX garbage"}}, "corrupt embeddings member (the magic string is not correct"),
    ({"embeddings": np.asfortranarray(np.zeros((2, 4), np.float16))},
     "embeddings member has an unexpected layout (2, 4) float16"),                       # column-major rows
    ({"embeddings": np.zeros(8, np.float16)}, "embeddings member has an unexpected layout (8,) float16"),
    ({"embeddings": np.zeros((2, 4), np.int16)}, "embeddings member has an unexpected layout (2, 4) int16"),
    ({"embeddings": np.zeros((3, 4), np.float16)}, "corrupt embeddings NPZ: row count does not match offsets"),
    ({"embeddings": np.zeros((2, 3), np.float16)}, "corrupt embeddings NPZ: 3 columns, but meta.dim is 4"),
    # the header claims 1000 rows (8000 bytes); 16 bytes and the zip's index follow
    ({"offsets": (0, 1000), "raw": {"embeddings": _npy(np.zeros((2, 4), np.float16), shape=(1000, 4))}},
     "truncated embeddings NPZ"),
    # 100 rows (800 bytes) claimed: fewer than 800 bytes follow, but more than 200
    ({"offsets": (0, 100), "raw": {"embeddings": _npy(np.zeros((2, 4), np.float16), shape=(100, 4))}},
     "truncated embeddings NPZ"),
])
def test_embeddings_member_refusals_are_whole_lines(cli, work, change, problem):
    forge(work / "e.npz", **change)
    line = train_error(cli, work, "e.npz")
    if problem.endswith("not correct"):  # numpy's own words, then the closing parenthesis
        assert line.startswith(f"rnaloc train: error: e.npz: {problem}") and line.endswith(")")
    else:
        assert line == f"rnaloc train: error: e.npz: {problem}"


def test_an_npz_of_no_sequences_is_an_empty_store(tmp_path):
    store = EmbeddingStore(forge(tmp_path / "e.npz", ids=np.array([], dtype="<U1"), offsets=(0,),
                                 embeddings=np.zeros((0, 4), np.float16)))
    assert len(store) == 0 and store.ids == [] and store.dim == 4
    assert store.shards[0].embeddings.shape == (0, 4) and store.shards[0].embeddings.dtype == np.float16


def test_the_rows_are_mapped_from_where_the_data_starts(tmp_path):
    # a version 1.0 header (numpy.save) and the writer's version 2.0 header, after a 40000-byte extra field
    rows = np.arange(24, dtype=np.float16).reshape(6, 4)
    one = EmbeddingStore(forge(tmp_path / "one.npz", ids=("a", "b"), offsets=(0, 1, 6), embeddings=rows))
    assert one.get("a").tolist() == [[0, 1, 2, 3]] and one.get("b").tolist() == rows[1:].tolist()
    two = EmbeddingStore(write_npz(tmp_path / "two.npz", {"a": rows[:1], "b": rows[1:]}, {"encoder": "x", "dim": 4}))
    assert two.get("b").tolist() == rows[1:].tolist() and isinstance(two.shards[0].embeddings, np.memmap)
    # mapped read-only: nothing can write into the input (and a read-only file can be mapped)
    assert not two.shards[0].embeddings.flags.writeable
    # one row in all
    single = EmbeddingStore(forge(tmp_path / "single.npz", offsets=(0, 1), embeddings=rows[5:]))
    assert single.get("a").tolist() == [[20, 21, 22, 23]]


# --------------------------------------------------------------------------- NPZ: several shards


def test_shards_made_differently_name_both_files_and_values(cli, work):
    write_npz(work / "a.npz", {"x": np.ones((1, 4))}, {"encoder": "one-hot", "dim": 4})
    write_npz(work / "b.npz", {"y": np.ones((1, 4))}, {"encoder": "one-hot", "dim": 4, "long_policy": "windows"})
    assert train_error(cli, work, "a.npz", "b.npz") == (
        "rnaloc train: error: b.npz: shard made with long_policy='windows', but a.npz has None")
    write_npz(work / "c.npz", {"y": np.ones((1, 4))}, {"encoder": "rna-fm", "dim": 4})
    assert train_error(cli, work, "a.npz", "c.npz") == (
        "rnaloc train: error: c.npz: shard made with encoder='rna-fm', but a.npz has 'one-hot'")


def test_a_duplicate_id_says_whether_it_is_in_this_file_or_which_other(cli, work):
    write_npz(work / "a.npz", {"x": np.ones((1, 4)), "z": np.ones((1, 4))}, {"encoder": "one-hot", "dim": 4})
    # the second shard repeats its own id (no writer makes one: forged)
    forge(work / "b.npz", ids=("p", "q", "p"), offsets=(0, 1, 2, 3), embeddings=np.zeros((3, 4), np.float16))
    assert train_error(cli, work, "a.npz", "b.npz") == (
        "rnaloc train: error: b.npz: record 'p': duplicate id: twice in this file")
    # an id of a.npz's second row, again in c.npz (and a third shard, so that a wrong index names a file)
    write_npz(work / "c.npz", {"z": np.ones((1, 4))}, {"encoder": "one-hot", "dim": 4})
    write_npz(work / "d.npz", {"w": np.ones((1, 4))}, {"encoder": "one-hot", "dim": 4})
    assert train_error(cli, work, "a.npz", "d.npz", "c.npz") == (
        "rnaloc train: error: c.npz: record 'z': duplicate id: also in another shard (a.npz)")


def test_no_shards_at_all():
    with pytest.raises(RnalocError) as caught:
        EmbeddingStore([])
    assert str(caught.value) == "no embeddings file given"


def test_position_counts_across_shards(tmp_path):
    meta = {"encoder": "one-hot", "dim": 4}
    a = write_npz(tmp_path / "a.npz", {"x": np.ones((1, 4)), "y": np.ones((2, 4))}, meta)
    b = write_npz(tmp_path / "b.npz", {"z": np.ones((1, 4)), "w": np.ones((1, 4))}, meta)
    store = EmbeddingStore([a, b])
    assert [store.position(r) for r in ("x", "y", "z", "w", "nope")] == [0, 1, 2, 3, None]
    assert store.ids == ["x", "y", "z", "w"]


def test_the_mapped_pages_are_released_every_release_bytes_read(tmp_path, monkeypatch):
    # float16, 4 columns: 8 bytes a row. Rows read: 3 (24 bytes), 2 (16: 40 in all), 1 (8: 48 = the bound)
    monkeypatch.setattr(npz_module, "RELEASE_BYTES", 48)
    store = EmbeddingStore(write_npz(tmp_path / "e.npz", {"a": np.ones((3, 4)), "b": np.ones((2, 4)),
                                                          "c": np.ones((1, 4))}, {"encoder": "one-hot", "dim": 4}))
    released = []
    monkeypatch.setattr(store, "release", lambda: (released.append(store._read), setattr(store, "_read", 0)))
    assert store._read == 0
    store.get("a")
    store.get("b")
    assert store._read == 40 and released == []
    store.get("c")
    assert released == [48] and store._read == 0
    store.get("a", rows=2)  # only the rows read count
    assert store._read == 16


def test_check_same_encoder_says_what_each_side_has():
    with pytest.raises(RnalocError) as caught:
        check_same_encoder({"encoder": "one-hot", "dim": 4}, {"encoder": "rna-fm", "dim": 4}, "model m.onnx", "e.npz")
    assert str(caught.value) == ("e.npz was made with encoder='rna-fm', but model m.onnx expects 'one-hot': embed the "
                                 "sequences with the model's own encoder")


# --------------------------------------------------------------------------- tables: what is read as it is


def test_comment_lines_are_kept_as_they_are(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("#note X \t\n#two X\r\nid\tvalue\na\t1\n")
    assert read_table(path).header == ["#note X \t", "#two X"]


@pytest.mark.parametrize("text, columns, rows", [
    ("my id\tid\nx\ty\n", ["my id", "id"], [["x", "y"]]),                       # a space is not a separator
    ('id\tnote\na\t"x"\nb\t"y z" w\n', ["id", "note"], [["a", '"x"'], ["b", '"y z" w']]),  # quotes are text
    ("id\tnote\na,b\tc, d; e\ne,f\tg\n", ["id", "note"], [["a,b", "c, d; e"], ["e,f", "g"]]),  # tabs only
    ("id\tnote\nNA\tnull\n\tNaN\n", ["id", "note"], [["NA", "null"], ["", "NaN"]]),  # no missing values
    ("id\tnote, more\na\tb\n", ["id", "note, more"], [["a", "b"]]),  # a comma in a name: still tabs
])
def test_a_table_is_split_on_tabs_only_and_its_text_kept(tmp_path, text, columns, rows):
    path = tmp_path / "t.tsv"
    path.write_text(text)
    df = read_table(path).df
    assert list(df.columns) == columns and df.values.tolist() == rows


@pytest.mark.parametrize("text, where, problem", [
    # two trailing tabs in the header: two columns without a name
    ("id\tsequence\t\t\na\tAC\t\t\n", ":1", "duplicate column '' in the header"),
    ("id\tX\tX\n", ":1", "duplicate column 'X' in the header"),
    # the first row longer than the header (pandas would take it as an index)
    ("#c\nid\tsequence\na\tAC\tx\n", ":3", "3 tab-separated fields, but the header has 2 (a stray or trailing tab?)"),
    # a later row longer (pandas' parser error), with trailing tabs: they are fields too
    ("id\tsequence\na\tAC\nb\tGU\t\t\n", ":3", "4 tab-separated fields, but the header has 2 (a stray or trailing tab?)"),
    # a header with an empty last column; the longer row is counted against all three
    ("id\tsequence\t\na\tAC\t\nb\tGU\tx\ty\n", ":3",
     "4 tab-separated fields, but the header has 3 (a stray or trailing tab?)"),
    # the first row shorter than the header: the header still counts
    ("id\tsequence\tx\na\tAC\nb\tGU\tx\ty\n", ":3",
     "4 tab-separated fields, but the header has 3 (a stray or trailing tab?)"),
])
def test_table_refusals_are_whole_lines(tmp_path, text, where, problem):
    path = tmp_path / "t.tsv"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert str(caught.value) == f"{path}{where}: {problem}"


def test_a_parser_failure_without_a_longer_row_still_names_the_file(tmp_path, monkeypatch):
    # no input found reaches these two fallbacks (pandas fails, or takes an index, only for a row with
    # more fields than the header, which the line-by-line count finds first): pandas made to fail here
    import pandas as pd

    path = tmp_path / "t.tsv"
    path.write_text("id\tsequence\na\tAC\n")

    def fail(*args, **kwargs):
        raise pd.errors.ParserError("Error tokenizing data.\nC error: first\nC error: the last line\n")

    monkeypatch.setattr(pd, "read_csv", fail)
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert str(caught.value) == f"{path}: malformed TSV (C error: the last line)"
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pd.DataFrame({"id": ["a"], "sequence": ["AC"]}, index=[7]))
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert str(caught.value) == f"{path}: the rows have more tab-separated fields than the header (2)"


@pytest.mark.parametrize("row, problem", [
    ("a\tmiRNA\tintracellular\tAXC", "record 'a': illegal letter(s) 'X' in sequence (allowed: ACGU/T and IUPAC "
                                     "codes RYSWKMBDHVN)"),
    ("a\tmRNA\tintracellular\tAC", "record 'a': unknown rna_type 'mRNA' (known: lncRNA, miRNA, circRNA)"),
    ("a\tmiRNA\tnucleus\tAC", "record 'a': label 'nucleus' is not a class of miRNA (extracellular, intracellular)"),
])
def test_dataset_refusals_name_the_file(tmp_path, row, problem):
    path = tmp_path / "d.tsv"
    path.write_text(f"id\trna_type\tlabel\tsequence\n{row}\n")
    with pytest.raises(InputError) as caught:
        read_dataset(path)
    assert str(caught.value) == f"{path}: {problem}"


# --------------------------------------------------------------------------- tables: streaming records


def test_iter_dataset_records_reads_one_block_at_a_time():
    """The file is read ``block`` rows ahead of the records given out: never whole."""
    read = []

    def lines():
        for line in ["#a\n", "id\tsequence\n"] + [f"r{i}\tACGU\n" for i in range(10)]:
            read.append(line)
            yield line

    records = iter_dataset_records(lines(), "d.tsv", block=3)
    first = next(records)
    assert (first.id, first.seq) == ("r0", "ACGU") and len(read) == 2 + 3
    assert [r.id for r in records] == [f"r{i}" for i in range(1, 10)] and len(read) == 12


def test_iter_dataset_records_default_block_is_bounded(monkeypatch):
    from rnaloc_tools.formats import tables

    monkeypatch.setattr(tables, "RECORD_BLOCK", 2)
    read = []

    def lines():
        for line in ["id\tsequence\n"] + [f"r{i}\tAC\n" for i in range(6)]:
            read.append(line)
            yield line

    next(iter_dataset_records(lines(), "d.tsv"))
    assert len(read) == 1 + 2


def test_iter_dataset_records_counts_every_comment_line():
    text = "#one\n#two\n#three\nid\tsequence\na\tAC\n \tGU\n"  # the empty id on line 6
    with pytest.raises(InputError) as caught:
        list(iter_dataset_records(io.StringIO(text), "d.tsv", block=1))
    assert str(caught.value) == "d.tsv:6: empty id"


def test_iter_dataset_records_finds_a_repeat_of_an_old_id_at_the_end(monkeypatch):
    # SeenIds checks a repeat of an id older than its last BLOCK ids only when it flushes (at the end)
    from rnaloc_tools.seqs import SeenIds

    monkeypatch.setattr(SeenIds, "BLOCK", 4)
    text = "id\tsequence\n" + "".join(f"r{i}\tAC\n" for i in range(6)) + "r0\tGU\n"
    with pytest.raises(InputError) as caught:
        list(iter_dataset_records(io.StringIO(text), "d.tsv"))
    assert str(caught.value) == "d.tsv: record 'r0': duplicate id"


# --------------------------------------------------------------------------- Session 5: what no session measured


def tool_error(cli, work, *args):
    """The one error line of ``rnaloc ARGS...`` (args[0] the command); nothing may be written."""
    before = sorted(p.name for p in work.iterdir())
    line = one_error_line(cli(*args), args[0])
    assert sorted(p.name for p in work.iterdir()) == before and leftovers(work) == []
    return line


def test_a_binary_table_or_dataset_is_one_line_naming_it(cli, work):
    (work / "p.tsv").write_bytes(b"id\tprediction\na\t\xff\n")
    assert tool_error(cli, work, "evaluate", "p.tsv", "d.tsv", "-o", "out.tsv") == (
        "rnaloc evaluate: error: p.tsv: not a text file (invalid start byte)")
    (work / "b.tsv").write_bytes(b"id\trna_type\tlabel\tsequence\na\tlncRNA\tnucleus\tAC\xffGU\n")
    assert tool_error(cli, work, "split", "b.tsv", "-o", "out.tsv") == (
        "rnaloc split: error: b.tsv: not a text file (invalid start byte)")


def test_a_dataset_without_a_required_column_names_it(cli, work):
    (work / "m.tsv").write_text("id\trna_type\tsequence\na\tlncRNA\tACGU\n")
    assert tool_error(cli, work, "split", "m.tsv", "-o", "out.tsv") == (
        "rnaloc split: error: m.tsv: missing column(s) label (the header has: id, rna_type, sequence)")
    with pytest.raises(InputError) as caught:
        read_dataset(work / "m.tsv", require=("id", "sequence", "cluster"))
    assert str(caught.value) == f"{work / 'm.tsv'}: missing column(s) cluster (the header has: id, rna_type, sequence)"


def test_members_over_the_zip64_limit_are_written(tmp_path, monkeypatch):
    # every member is opened zip64, so that one over 2 GiB (the offsets of 268M sequences, ids, embeddings)
    # can be written: with the limit made small here, a member opened without it fails when it is closed
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 16)
    mats = {"a": np.arange(8).reshape(2, 4), "bb": np.ones((3, 4)), "c": np.zeros((1, 4))}
    for order in (None, ["c", "a", "bb"]):
        path = write_npz(tmp_path / "e.npz", mats, {"encoder": "one-hot", "dim": 4}, order)
        store = EmbeddingStore(path)
        assert store.ids == (order or list(mats))
        for rid, mat in mats.items():
            assert store.get(rid).tolist() == mat.tolist()


WRITER_META = {"encoder": "one-hot", "dim": 3, "checkpoint_sha256": None}


def _expected_meta(**extra):
    from rnaloc_tools import __version__

    meta = {"format": "rnaloc-embeddings", "format_version": 1, "tool_version": __version__, **WRITER_META}
    meta.update(extra)
    return json.dumps(meta, sort_keys=True)


@pytest.mark.parametrize("order", [None, ["𝔸x", "a", "γγγγ", "bb"]])
def test_the_writer_writes_exactly_these_members(tmp_path, order):
    # ids of 1-4 characters, one outside the BMP (4 bytes of UTF-8, one UTF-32 unit) and one of 2-byte letters
    mats = {"a": np.arange(6).reshape(2, 3), "bb": np.full((1, 3), 0.5), "γγγγ": -np.ones((3, 3)),
            "𝔸x": np.array([[1.0, 2.5, -3.0]])}
    path = write_npz(tmp_path / "e.npz", mats, {"format": "other", **WRITER_META}, order)
    ids = order or list(mats)
    with zipfile.ZipFile(path) as zf:
        assert [(i.filename, i.compress_type) for i in zf.infolist()] == [
            ("ids.npy", zipfile.ZIP_STORED), ("offsets.npy", zipfile.ZIP_STORED), ("meta.npy", zipfile.ZIP_STORED),
            ("embeddings.npy", zipfile.ZIP_STORED)]
    with np.load(path) as npz:
        assert npz["ids"].dtype == np.dtype("<U4") and npz["ids"].tolist() == ids
        lengths = [len(mats[r]) for r in ids]
        assert npz["offsets"].dtype == np.dtype("<i8") and npz["offsets"].tolist() == np.cumsum([0] + lengths).tolist()
        assert npz["meta"].shape == () and str(npz["meta"]) == _expected_meta()  # its own format name wins
        assert npz["embeddings"].dtype == np.dtype("<f2") and npz["embeddings"].shape == (sum(lengths), 3)
        assert npz["embeddings"].tolist() == np.concatenate([mats[r] for r in ids]).tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npz"]


def test_the_writer_stores_the_dtype_asked_little_endian_and_ids_one_wide_at_least(tmp_path):
    path = write_npz(tmp_path / "att.npz", {"a": np.ones((2, 1)), "b": np.zeros((1, 1))},
                     {"dim": 1}, dtype=">f4", format_name="rnaloc-attention")
    with np.load(path) as npz:
        assert npz["ids"].dtype == np.dtype("<U1") and npz["embeddings"].dtype == np.dtype("<f4")
        assert npz["embeddings"].tolist() == [[1.0], [1.0], [0.0]]
        assert json.loads(str(npz["meta"]))["format"] == "rnaloc-attention"
    for order in (None, []):  # no sequences, in the order added or in an order given
        path = write_npz(tmp_path / "none.npz", {}, {"dim": 1}, order)
        with np.load(path) as npz:
            assert npz["ids"].dtype == np.dtype("<U1") and npz["ids"].shape == (0,)
            assert npz["offsets"].dtype == np.dtype("<i8") and npz["offsets"].tolist() == [0]
            assert npz["embeddings"].shape == (0, 1)


def test_the_writer_meta_text_does_not_depend_on_the_order_of_its_keys(tmp_path):
    a = write_npz(tmp_path / "a.npz", {"x": np.ones((1, 3))}, WRITER_META)
    b = write_npz(tmp_path / "b.npz", {"x": np.ones((1, 3))}, dict(reversed(list(WRITER_META.items()))))
    with np.load(a) as one, np.load(b) as two:
        assert str(one["meta"]) == str(two["meta"]) == _expected_meta()


def _writer_error(tmp_path, body):
    """The message of the RnalocError ``body(writer)`` raises inside ``with EmbeddingWriter``; nothing left."""
    from rnaloc_tools.formats import EmbeddingWriter

    with pytest.raises(RnalocError) as caught:
        with EmbeddingWriter(tmp_path / "e.npz", WRITER_META) as writer:
            writer.add("first", np.ones((1, 3)))
            body(writer)
    assert list(tmp_path.iterdir()) == []
    return str(caught.value).replace(str(tmp_path / "e.npz"), "e.npz")


def test_writer_refusals_are_whole_lines_and_leave_nothing(tmp_path, monkeypatch):
    assert _writer_error(tmp_path, lambda w: w.add("x", np.ones(3))) == (
        "e.npz: embedding of 'x' has shape (3,), expected (L, 3)")
    assert _writer_error(tmp_path, lambda w: w.add("x", np.ones((2, 4)))) == (
        "e.npz: embedding of 'x' has shape (2, 4), expected (L, 3)")
    assert _writer_error(tmp_path, lambda w: w.add("first", np.ones((2, 3)))) == "e.npz: duplicate id 'first'"
    assert _writer_error(tmp_path, lambda w: (w.add("b", np.ones((1, 3))), w.set_order(["first", "c"]))) == (
        "e.npz: internal error: the order does not match the sequences added")
    assert _writer_error(tmp_path, lambda w: (w.add("b", np.ones((1, 3))), w.set_order(["first"]))) == (
        "e.npz: internal error: the order does not match the sequences added")
    assert _writer_error(tmp_path, lambda w: (w.add("b", np.ones((1, 3))), w.set_order(["first", "b", "b"]))) == (
        "e.npz: internal error: the order does not match the sequences added")
    # a repeat of an id older than SeenIds' last BLOCK ids is found when the writer closes
    from rnaloc_tools.seqs import SeenIds

    monkeypatch.setattr(SeenIds, "BLOCK", 2)
    assert _writer_error(tmp_path, lambda w: [w.add(r, np.ones((1, 3))) for r in ("b", "c", "d", "first")]) == (
        "e.npz: duplicate id 'first'")


def test_a_writer_closed_twice_or_aborted_after_closing_changes_nothing(tmp_path):
    from rnaloc_tools.formats import EmbeddingWriter

    writer = EmbeddingWriter(tmp_path / "e.npz", WRITER_META)
    writer.add("a", np.ones((2, 3)))
    assert len(writer) == 1
    writer.close()
    written = (tmp_path / "e.npz").read_bytes()
    writer.close()
    writer.abort()
    assert (tmp_path / "e.npz").read_bytes() == written and sorted(p.name for p in tmp_path.iterdir()) == ["e.npz"]
    writer = EmbeddingWriter(tmp_path / "f.npz", WRITER_META)
    writer.add("a", np.ones((2, 3)))
    writer.abort()
    writer.abort()
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npz"]


def test_the_writer_spills_beside_its_output(tmp_path):
    from rnaloc_tools.formats import EmbeddingWriter

    (tmp_path / "out").mkdir()
    with EmbeddingWriter(tmp_path / "out" / "e.npz", WRITER_META) as writer:
        for spill in (writer._spill, writer._id_spill):  # unlinked at once: /proc names the folder it is in
            assert os.readlink(f"/proc/self/fd/{spill.fileno()}").startswith(f"{tmp_path / 'out'}/")
        writer.add("a", np.ones((1, 3)))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["e.npz"]


class _FullDisk:
    """A spill file on a disk that fills up after ``room`` bytes (``at``: in ``write``, or in ``seek``, where
    a buffered file flushes what it held)."""

    def __init__(self, real, room, at):
        self.real, self.room, self.at = real, room, at

    def _full(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    def write(self, data):
        if self.at == "write" and len(data) > self.room:
            self._full()
        self.room -= len(data)
        return self.real.write(data)

    def seek(self, *args):
        if self.at == "seek" and self.room < 0:
            self._full()
        return self.real.seek(*args)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.mark.parametrize("at, order", [("write", None), ("seek", None), ("seek", ["c", "b", "a"])])
def test_a_full_disk_under_the_spill_files_is_named_and_leaves_nothing(tmp_path, monkeypatch, at, order):
    from rnaloc_tools.formats import EmbeddingWriter

    real = npz_module.tempfile.TemporaryFile
    monkeypatch.setattr(npz_module.tempfile, "TemporaryFile", lambda **kw: _FullDisk(real(**kw), 40, at))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RnalocError) as caught:
        with EmbeddingWriter("e.npz", WRITER_META) as writer:
            writer.add("a", np.ones((2, 3)))  # 12 bytes of float16
            writer.add("b", np.ones((4, 3)))  # 24 more: 36
            writer.add("c", np.ones((1, 3)))  # 6 more: 42, over the 40 there is room for
            writer.set_order(order or ["a", "b", "c"])
    assert str(caught.value) == "no space left on device writing e.npz"
    assert list(tmp_path.iterdir()) == []


def _mapped_kb(path):
    """Resident kB of the mappings of ``path`` in this process (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps", encoding="utf-8") as fh:
        for line in fh:
            first = line.split(None, 5)
            if len(first) >= 5 and "-" in first[0] and not first[0].endswith(":"):
                inside = len(first) == 6 and first[5].strip() == str(path)
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


def test_release_drops_the_mapped_pages_of_every_shard(tmp_path):
    meta = {"encoder": "test", "dim": 512}
    rng = np.random.default_rng(0)
    paths = [write_npz(tmp_path / f"{n}.npz", {f"{n}{i}": rng.standard_normal((512, 512)) for i in range(4)}, meta)
             for n in ("a", "b")]  # 2 MB of float16 each
    store = EmbeddingStore(paths + [write_npz(tmp_path / "none.npz", {}, meta)])  # no rows: nothing mapped
    for rid in store.ids:
        assert store.length(rid) == 512
        store.get(rid)
    assert store._read == 8 * 512 * 512 * 2
    assert all(_mapped_kb(p) > 1024 for p in paths)
    store.release()
    assert store._read == 0 and [_mapped_kb(p) for p in paths] == [0, 0]
    assert store.get("b3").shape == (512, 512) and _mapped_kb(paths[1]) > 256  # still readable after


def _table_with_body(folder):
    """write_table's df, header and notes, and a body of rows written by write_rows (a non-ASCII id, a bare
    carriage return inside a value, quotes and commas: all text, written as they are)."""
    import pandas as pd

    from rnaloc_tools.formats import write_rows

    body = folder / "rows.tmp"
    with open(body, "w", encoding="utf-8", newline="") as fh:
        write_rows(pd.DataFrame({"id": ["γ", "d"], "note": ["r\rs", '"q" 1,2']}), fh)
        write_rows(pd.DataFrame({"id": ["e"], "note": ["t"]}, index=[7]), fh)
    return pd.DataFrame({"id": ["a", "b"], "note": ['"x"', "c,d e"]}), body


def test_write_rows_and_write_table_write_these_bytes(tmp_path):
    from rnaloc_tools import __version__
    from rnaloc_tools.fileio import provenance_lines
    from rnaloc_tools.formats import write_table

    df, body = _table_with_body(tmp_path)
    rows = 'γ\tr\rs\nd\t"q" 1,2\ne\tt\n'
    assert body.read_bytes() == rows.encode("utf-8")
    path = tmp_path / "t.tsv"
    write_table(df, path, "motifs", header=["#earlier"], notes=["#note: n", "#two"], body=body)
    (provenance,) = provenance_lines("motifs")
    assert provenance.startswith(f"#rnaloc motifs {__version__}: ")
    assert path.read_bytes() == (f'#earlier\n{provenance}\n#note: n\n#two\nid\tnote\na\t"x"\nb\tc,d e\n'
                                 + rows).encode("utf-8")
    write_table(df, path, "motifs", header=["#earlier"], comments=False, body=body)
    assert path.read_bytes() == ('id\tnote\na\t"x"\nb\tc,d e\n' + rows).encode("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.tmp", "t.tsv"]


def test_write_table_writes_utf8_whatever_the_locale(tmp_path):
    import subprocess
    import sys

    # the C locale without Python's UTF-8 mode: the locale's encoding is ASCII there (no test module is
    # imported in the child: only the package, pandas and the bytes to write)
    script = ("import pathlib, sys; import pandas as pd; from rnaloc_tools.formats import write_rows, write_table\n"
              "folder = pathlib.Path(sys.argv[1]); body = folder / 'rows.tmp'\n"
              "with open(body, 'w', encoding='utf-8', newline='') as fh:\n"
              "    write_rows(pd.DataFrame({'id': ['\\u03b3'], 'note': ['r\\rs']}), fh)\n"
              "write_table(pd.DataFrame({'id': ['a'], 'note': ['\\u00e9']}), folder / 't.tsv', 'x', comments=False, "
              "body=body)\n")
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "t.tsv").read_bytes() == "id\tnote\na\té\nγ\tr\rs\n".encode("utf-8")


@pytest.mark.parametrize("failing", [1, 2])
def test_a_spill_file_that_cannot_be_made_is_named_and_leaves_nothing(tmp_path, monkeypatch, failing):
    from rnaloc_tools.formats import EmbeddingWriter

    real, made = npz_module.tempfile.TemporaryFile, []

    def temporary_file(**kw):
        made.append(kw)
        if len(made) == failing:
            raise OSError(errno.ENOSPC, "No space left on device", kw.get("dir"))
        return real(**kw)

    monkeypatch.setattr(npz_module.tempfile, "TemporaryFile", temporary_file)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RnalocError) as caught:
        EmbeddingWriter("e.npz", WRITER_META)
    assert str(caught.value) == "no space left on device writing e.npz"
    assert len(made) == failing and list(tmp_path.iterdir()) == []


def test_items_yields_every_sequence_in_file_order_as_float32_or_the_dtype_asked(tmp_path):
    mats = {"b": np.full((2, 3), 0.5), "a": np.ones((1, 3))}
    store = EmbeddingStore(write_npz(tmp_path / "e.npz", mats, WRITER_META))
    for dtype, items in ((np.float32, store.items()), (np.float64, store.items(np.float64))):
        got = list(items)
        assert [rid for rid, _ in got] == ["b", "a"] and all(m.dtype == dtype for _, m in got)
        assert [m.tolist() for _, m in got] == [mats["b"].tolist(), mats["a"].tolist()]


@pytest.mark.parametrize("text, error", [
    (">a\nAC\n>b\nGU\n", None),
    ("id\tsequence\na\tAC\n", None),
    ("hello\n", "not FASTA (no line starting with '>') nor a dataset TSV (no tab-separated header)"),  # sniffing
    (">a\nAC\n>a\nGU\n", "record 'a': duplicate id"),  # while reading
])
@pytest.mark.parametrize("path", ["s.txt", "-"])
def test_read_records_closes_its_file_on_every_way_out_but_never_stdin(tmp_path, monkeypatch, text, error, path):
    from rnaloc_tools.formats import sequences

    opened = []

    def open_binary_input(name):
        opened.append(io.BytesIO(text.encode()))
        return opened[-1]

    monkeypatch.setattr(sequences, "open_binary_input", open_binary_input)
    source = "<stdin>" if path == "-" else path
    if error is None:
        assert [r.id for r in sequences.read_records(path, source)] == ["a"] + (["b"] if ">b" in text else [])
    else:
        with pytest.raises(InputError) as caught:
            list(sequences.read_records(path, source))
        assert str(caught.value) == f"{source}: {error}"
    assert len(opened) == 1 and opened[0].closed == (path != "-")


# --------------------------------------------------------------------------- Session 5: formats/meta.py
# The checks of metadata read from files (NPZ ``meta``, ONNX ``metadata_props``): every value they accept
# is returned as it is to be used, and every refusal is the whole line, naming the file, written by hand.


def _refusal(call, *args, **kwargs):
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    assert caught.value.source == "m.npz" and caught.value.record is None
    return str(caught.value)


@pytest.mark.parametrize("text, what, line", [
    ("[1]", None, "m.npz: corrupt metadata: a JSON object was expected, not list"),
    ('"dim"', "NPZ meta", "m.npz: corrupt NPZ meta: a JSON object was expected, not str"),
    ("x", None, "m.npz: corrupt metadata: not JSON (Expecting value: line 1 column 1 (char 0))"),
    (None, "model metadata", "m.npz: corrupt model metadata: not JSON (the JSON object must be str, bytes or "
                             "bytearray, not NoneType)"),                                       # a TypeError
    (b"\xff", None, "m.npz: corrupt metadata: not JSON ('utf-8' codec can't decode byte 0xff in position 0: "
                    "invalid start byte)"),                             # a ValueError that is not a JSONDecodeError
])
def test_parse_json_object_refuses_anything_but_a_json_object_in_one_line(text, what, line):
    from rnaloc_tools.formats.meta import parse_json_object

    kwargs = {} if what is None else {"what": what}
    assert _refusal(parse_json_object, text, "m.npz", **kwargs) == line


def test_parse_json_object_returns_the_object():
    from rnaloc_tools.formats.meta import parse_json_object

    assert parse_json_object('{"dim": 4, "encoder": {"k": [1]}}', "m.npz") == {"dim": 4, "encoder": {"k": [1]}}


def test_positive_int_returns_an_int_or_none_only_where_optional():
    from rnaloc_tools.formats.meta import positive_int

    assert positive_int(None, "m.npz", "meta.max_length") is None  # optional by default
    assert positive_int(None, "m.npz", "meta.max_length", optional=True) is None
    for value, expected in ((1, 1), (7, 7), (np.int64(3), 3), (np.uint8(255), 255)):
        got = positive_int(value, "m.npz", "meta.dim", optional=False)
        assert got == expected and type(got) is int


@pytest.mark.parametrize("value, optional, shown", [
    (None, False, "None"), (0, True, "0"), (-1, True, "-1"), (True, True, "True"), (np.bool_(True), True, repr(np.bool_(True))),
    ("2", True, "'2'"), (2.0, True, "2.0"), (np.float32(2), True, repr(np.float32(2))), ([2], True, "[2]"),
])
def test_positive_int_refuses_anything_but_a_positive_whole_number(value, optional, shown):
    from rnaloc_tools.formats.meta import positive_int

    line = _refusal(positive_int, value, "m.npz", "meta.dim", optional=optional)
    assert line == f"m.npz: corrupt metadata: meta.dim must be a positive whole number, not {shown}"


def test_optional_str_returns_text_or_none_and_refuses_the_rest():
    from rnaloc_tools.formats.meta import optional_str

    assert optional_str(None, "m.npz", "meta.model") is None
    assert optional_str("", "m.npz", "meta.model") == "" and optional_str("a b", "m.npz", "meta.model") == "a b"
    for value, shown in ((1, "1"), (b"x", "b'x'"), (["m"], "['m']"), (False, "False")):
        assert _refusal(optional_str, value, "m.npz", "meta.model") == \
            f"m.npz: corrupt metadata: meta.model must be text, not {shown}"


def test_check_rna_type_returns_a_known_type_and_names_the_others():
    from rnaloc_tools.formats.meta import check_rna_type

    for rna_type in ("lncRNA", "miRNA", "circRNA"):
        assert check_rna_type(rna_type, "m.npz") == rna_type
    for value, shown in (("mirna", "'mirna'"), (None, "None"), ("../lncRNA", "'../lncRNA'")):
        assert _refusal(check_rna_type, value, "m.npz") == \
            f"m.npz: corrupt metadata: unknown rna_type {shown} (known: lncRNA, miRNA, circRNA)"


def test_check_classes_returns_them_as_a_tuple_in_their_order():
    from rnaloc_tools.formats.meta import check_classes

    assert check_classes(["cytoplasm", "nucleus"], "lncRNA", "m.npz") == ("cytoplasm", "nucleus")
    assert check_classes(("extracellular", "intracellular"), "miRNA", "m.npz") == ("extracellular", "intracellular")
    assert type(check_classes(["nucleus", "cytoplasm"], "circRNA", "m.npz")) is tuple


@pytest.mark.parametrize("classes, rna_type, problem", [
    ("nucleus", "lncRNA", "classes must be a list of names, not 'nucleus'"),
    ({"nucleus": 1, "cytoplasm": 2}, "lncRNA", "classes must be a list of names, not {'nucleus': 1, 'cytoplasm': 2}"),
    (["nucleus", 2], "lncRNA", "classes must be a list of names, not ['nucleus', 2]"),
    ([None], "lncRNA", "classes must be a list of names, not [None]"),
    (["nucleus", "cytoplasm"], "mRNA", "unknown rna_type 'mRNA' (known: lncRNA, miRNA, circRNA)"),
    (["nucleus", "cytoplasm"], None, "unknown rna_type None (known: lncRNA, miRNA, circRNA)"),
    (["nucleus"], "lncRNA", "the classes of lncRNA are nucleus, cytoplasm, not 'nucleus'"),
    (["nucleus", "nucleus"], "lncRNA", "the classes of lncRNA are nucleus, cytoplasm, not 'nucleus', 'nucleus'"),
    (["nucleus", "cytoplasm", "nucleus"], "lncRNA",
     "the classes of lncRNA are nucleus, cytoplasm, not 'nucleus', 'cytoplasm', 'nucleus'"),
    (["nucleus", "cytoplasm"], "miRNA", "the classes of miRNA are extracellular, intracellular, not 'nucleus', 'cytoplasm'"),
    (["a", "b", "c", "d", "e"], "lncRNA", "the classes of lncRNA are nucleus, cytoplasm, not 'a', 'b', 'c', 'd'"),
    ([], "circRNA", "the classes of circRNA are nucleus, cytoplasm, not "),
])
def test_check_classes_refusals_are_whole_lines(classes, rna_type, problem):
    from rnaloc_tools.formats.meta import check_classes

    assert _refusal(check_classes, classes, rna_type, "m.npz") == f"m.npz: corrupt metadata: {problem}"


def test_check_classes_refusals_are_cut_at_300_and_400_characters():
    from rnaloc_tools.formats.meta import check_classes

    names = ["x" * 100, 5] * 3  # not all names: the list is shown, cut to 300 characters
    text = "corrupt metadata: classes must be a list of names, not [" + ", ".join(["'" + "x" * 100 + "'", "5"] * 3) + "]"
    assert len(text) > 300
    assert _refusal(check_classes, names, "lncRNA", "m.npz") == "m.npz: " + text[:300]
    long = ["n" * 200, "c" * 200]  # the shown names, cut to 400 characters
    text = f"corrupt metadata: the classes of lncRNA are nucleus, cytoplasm, not '{'n' * 200}', '{'c' * 200}'"
    assert len(text) > 400
    assert _refusal(check_classes, long, "lncRNA", "m.npz") == "m.npz: " + text[:400]


# --------------------------------------------------------------------------- Session 5: formats/sequences.py triage


def _pipe_finisher(w):
    """``finish(tail)``: write ``tail`` and close the pipe's writing end, once (by the test or a safety timer)."""
    import threading

    lock, state = threading.Lock(), {"open": True}

    def finish(tail):
        with lock:
            if not state["open"]:
                return False
            os.write(w, tail)
            os.close(w)
            state["open"] = False
            return True

    return finish


@pytest.mark.parametrize("head, tail, first, rest", [
    (b">a\nAC\n>b\nGU\n>c\n", b"GG\n", ["a", "b"], ["c"]),
    (b"#provenance\nid\tsequence\na\tAC\nb\tGU\n", b"c\tGG\n", ["a", "b"], ["c"]),
])
def test_read_records_from_a_pipe_yields_each_record_before_the_writer_closes_it(monkeypatch, head, tail, first, rest):
    """``rnaloc predict -`` behind a slow producer: the records already written are read as they come; none
    waits for a full buffer (64 KiB) or for the end of the input (the sniffer's replay reads with ``read1``).
    A TSV is read a block of rows at a time (``RECORD_BLOCK``, made 2 here): a block, not the whole input."""
    import threading

    from rnaloc_tools.formats import sequences, tables

    monkeypatch.setattr(tables, "RECORD_BLOCK", 2)

    r, w = os.pipe()
    reader = os.fdopen(r, "rb")  # what stdin is on a pipe: a BufferedReader
    monkeypatch.setattr(sequences, "open_binary_input", lambda name: reader)
    finish = _pipe_finisher(w)
    safety = threading.Timer(10, finish, [b""])  # a reader that waits for the end gets it after 10 s
    safety.start()
    try:
        os.write(w, head)
        records = sequences.read_records("-", "<stdin>")
        got = [next(records).id for _ in first]
        assert finish(tail), "the first records were read only after the writer had closed the pipe"
        assert got == first and [rec.id for rec in records] == rest
    finally:
        safety.cancel()
        finish(b"")
        reader.close()


def test_sniff_replays_every_byte_of_a_raw_handle_without_read1(tmp_path):
    """A raw binary handle (``io.FileIO``: no ``read1``) is replayed with ``read``, one buffer at a time."""
    from rnaloc_tools.formats.sequences import _CHUNK, sniff

    data = b">a\n" + b"ACGU" * (_CHUNK // 2) + b"\n>b\nGG\n"  # more than one buffer after the sniffed line
    (tmp_path / "t.fa").write_bytes(data)
    with io.FileIO(tmp_path / "t.fa") as raw:
        assert not hasattr(raw, "read1")
        fmt, stream = sniff(raw, "t.fa")
        lines = list(io.TextIOWrapper(stream, encoding="utf-8"))  # line by line, as read_records reads
        assert fmt == "fasta" and "".join(lines) == data.decode() and len(lines) == 4
