"""The ragged embeddings NPZ (writer and reader) and sequence input (FASTA / dataset TSV)."""

import gzip
import io
import json
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

from conftest import leftovers, write_npz
from rnaloc_tools.errors import InputError, RnalocError
from rnaloc_tools.formats import EmbeddingStore, EmbeddingWriter, read_records

META = {"encoder": "test", "dim": 8, "checkpoint_sha256": None}


def _mats(n=5, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return {f"id{i}": rng.standard_normal((int(rng.integers(1, 40)), dim)).astype(np.float32) for i in range(n)}


def _write(path, mats, meta=META, order=None):
    return write_npz(path, mats, meta, order)


def test_round_trip_float16_and_meta(tmp_path):
    mats = _mats()
    store = EmbeddingStore(_write(tmp_path / "e.npz", mats))
    assert store.ids == list(mats) and len(store) == 5 and store.dim == 8
    for rid, m in mats.items():
        assert store.length(rid) == len(m)
        got = store.get(rid)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, m.astype(np.float16).astype(np.float32))
    assert store.meta["encoder"] == "test" and store.meta["format"] == "rnaloc-embeddings"
    with np.load(tmp_path / "e.npz") as npz:
        assert npz["embeddings"].dtype == np.float16
        assert npz["offsets"].dtype == np.int64 and npz["offsets"][-1] == sum(len(m) for m in mats.values())
        assert json.loads(str(npz["meta"]))["dim"] == 8
    assert leftovers(tmp_path) == []


def test_set_order_is_the_file_order(tmp_path):
    mats = _mats()
    order = ["id3", "id0", "id4", "id1", "id2"]
    store = EmbeddingStore(_write(tmp_path / "e.npz", mats, order=order))
    assert store.ids == order
    assert [rid for rid, _ in store.items()] == order
    np.testing.assert_array_equal(store["id3"], mats["id3"].astype(np.float16).astype(np.float32))


def test_one_sequence_is_read_without_loading_the_rest(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "big.npz"
    with EmbeddingWriter(path, {"encoder": "test", "dim": 640}) as w:
        for i in range(64):
            w.add(f"s{i}", rng.standard_normal((1000, 640)).astype(np.float32))  # 80 MB of float16 in all
    store = EmbeddingStore(path)
    assert isinstance(store.shards[0].embeddings, np.memmap)
    tracemalloc.start()
    one = store.get("s17")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert one.shape == (1000, 640)
    assert peak < 4 * one.nbytes  # ~2.6 MB, not the 80 MB file


def test_writer_keeps_no_embeddings_in_memory(tmp_path):
    rng = np.random.default_rng(2)
    mat = rng.standard_normal((500, 256)).astype(np.float32)  # 0.5 MB each, 100 of them
    tracemalloc.start()
    with EmbeddingWriter(tmp_path / "e.npz", {"encoder": "test", "dim": 256}) as w:
        base, _ = tracemalloc.get_traced_memory()
        for i in range(100):
            w.add(f"s{i}", mat)
        held, _ = tracemalloc.get_traced_memory()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert held - base < mat.nbytes  # not 100 x 0.5 MB: the rows went to the spill file
    assert peak < 10 * mat.nbytes
    assert EmbeddingStore(tmp_path / "e.npz").length("s99") == 500


def test_several_shards_are_one_store(tmp_path):
    a = _write(tmp_path / "a.npz", _mats(3, seed=1))
    b = _write(tmp_path / "b.npz", {f"other{i}": m for i, m in enumerate(_mats(2, seed=2).values())})
    store = EmbeddingStore([a, b])
    assert store.ids == ["id0", "id1", "id2", "other0", "other1"]
    assert "other1" in store and store.get("other1").shape[1] == 8


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"encoder": "other", "dim": 8, "checkpoint_sha256": None}, "encoder"),
        ({"encoder": "test", "dim": 4, "checkpoint_sha256": None}, "dim"),
        ({"encoder": "test", "dim": 8, "checkpoint_sha256": "abc"}, "checkpoint_sha256"),
    ],
)
def test_mismatched_shards_are_rejected(tmp_path, meta, message):
    a = _write(tmp_path / "a.npz", _mats(2))
    mats = {f"b{i}": np.ones((3, meta["dim"]), np.float32) for i in range(2)}
    b = _write(tmp_path / "b.npz", mats, meta=meta)
    with pytest.raises(InputError, match=message):
        EmbeddingStore([a, b])


def test_duplicate_id_across_shards_is_rejected(tmp_path):
    a = _write(tmp_path / "a.npz", _mats(2))
    b = _write(tmp_path / "b.npz", _mats(2))
    with pytest.raises(InputError, match="another shard"):
        EmbeddingStore([a, b])


def _raw_npz(path, ids, lengths, columns, dim):
    import json

    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    meta = {"format": "rnaloc-embeddings", "encoder": "test", "dim": dim, "checkpoint_sha256": None}
    np.savez(path, ids=np.array(ids), offsets=offsets, embeddings=np.zeros((offsets[-1], columns), np.float16),
             meta=np.array(json.dumps(meta)))
    return path


def test_duplicate_id_inside_one_file_is_named_as_such(tmp_path):
    path = _raw_npz(tmp_path / "d.npz", ["x", "y", "x"], [2, 3, 4], 8, 8)
    with pytest.raises(InputError, match="'x'.*twice in this file"):
        EmbeddingStore(path)


def test_columns_that_disagree_with_meta_dim_are_rejected(tmp_path):
    # a model checked against meta.dim would otherwise fail deep inside ONNX Runtime
    path = _raw_npz(tmp_path / "c.npz", ["x", "y"], [2, 3], 7, 8)
    with pytest.raises(InputError, match="7 columns, but meta.dim is 8"):
        EmbeddingStore(path)


def test_corrupt_and_truncated_files_are_rejected(tmp_path):
    good = _write(tmp_path / "good.npz", _mats(4))
    data = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.npz").write_bytes(b"\x00garbage" * 100)
    with zipfile.ZipFile(tmp_path / "nomembers.npz", "w") as zf:
        zf.writestr("ids.npy", b"")
    np.savez(tmp_path / "plain.npz", ids=np.array(["a"]), offsets=np.array([0, 1]), embeddings=np.zeros((1, 8)),
             meta=np.array(json.dumps({"format": "something-else"})))
    for name in ("trunc.npz", "junk.npz", "nomembers.npz", "plain.npz", "missing.npz"):
        with pytest.raises(InputError) as err:
            EmbeddingStore(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)


def test_offsets_that_do_not_match_the_rows_are_rejected(tmp_path):
    meta = np.array(json.dumps({"format": "rnaloc-embeddings", "encoder": "test", "dim": 8}))
    rows = np.zeros((5, 8), np.float16)
    np.savez(tmp_path / "more.npz", ids=np.array(["a", "b"]), offsets=np.array([0, 3, 9]), embeddings=rows, meta=meta)
    np.savez(tmp_path / "down.npz", ids=np.array(["a", "b"]), offsets=np.array([0, 4, 2]), embeddings=rows, meta=meta)
    with pytest.raises(InputError, match="row count"):
        EmbeddingStore(tmp_path / "more.npz")
    with pytest.raises(InputError, match="offsets"):
        EmbeddingStore(tmp_path / "down.npz")


def test_failed_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with EmbeddingWriter(tmp_path / "e.npz", META) as w:
            w.add("a", np.ones((3, 8)))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RnalocError, match="shape"):
        with EmbeddingWriter(tmp_path / "e.npz", META) as w:
            w.add("a", np.ones((3, 5)))
    assert list(tmp_path.iterdir()) == []


def test_empty_store_round_trips(tmp_path):
    store = EmbeddingStore(_write(tmp_path / "e.npz", {}))
    assert store.ids == [] and len(store) == 0


# --- sequences ---------------------------------------------------------------------------

FASTA = ">s1 some description\nacgt\nNRYu\n>s2\nGGUUTT\n"


def test_fasta_normalisation(tmp_path):
    path = tmp_path / "x.fa"
    path.write_text(FASTA)
    records = list(read_records(path))
    assert [(r.id, r.seq) for r in records] == [("s1", "ACGUNRYU"), ("s2", "GGUUUU")]


def test_fasta_from_a_windows_editor(tmp_path):
    # UTF-8 byte-order mark and CRLF line ends, as Notepad may save a FASTA
    path = tmp_path / "bom.fa"
    path.write_bytes(b"\xef\xbb\xbf" + FASTA.replace("\n", "\r\n").encode())
    assert [(r.id, r.seq) for r in read_records(path)] == [("s1", "ACGUNRYU"), ("s2", "GGUUUU")]


def test_gz_and_stdin(tmp_path, monkeypatch):
    gz = tmp_path / "x.fa.gz"
    gz.write_bytes(gzip.compress(FASTA.encode()))
    assert [r.seq for r in read_records(gz)] == ["ACGUNRYU", "GGUUUU"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(FASTA.encode()))))
    assert [r.id for r in read_records("-")] == ["s1", "s2"]


@pytest.mark.parametrize("rows", ["a\tACGU\tGGG\nb\tCCCC\tAAAA\n", "a\tACGU\t\nb\tCCCC\t\n"])
def test_rows_with_more_fields_than_the_header_are_refused(tmp_path, rows):
    # pandas would take the first column as the index: ids read as sequences, silently
    path = tmp_path / "shifted.tsv"
    path.write_text("#made by hand\nid\tsequence\n" + rows)
    with pytest.raises(InputError, match=r"shifted.tsv:3: 3 tab-separated fields, but the header has 2"):
        list(read_records(path))


def test_dataset_tsv_passes_other_columns(test_data):
    records = list(read_records(test_data / "embed-dataset.tsv"))
    assert [r.seq for r in records] == ["UGGAACU", "ACGUN"]
    assert records[0].extra == {"rna_type": "miRNA", "label": "extracellular", "extra": "keep"}


def test_iupac_codes_are_kept(tmp_path):
    path = tmp_path / "x.fa"
    path.write_text(">a\nRYSWKMBDHVNacgtu\n")
    assert next(read_records(path)).seq == "RYSWKMBDHVNACGUU"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty input"),
        (">a\nAC GU\n>a\nAA\n", "duplicate id"),
        (">a\n>b\nACGU\n", "empty sequence"),
        (">a\nAC-GU\n", "illegal letter"),
        ("ACGU\nACGU\n", "not FASTA"),
        ("id\tsequence\na\tACGU\na\tAC\n", "duplicate id"),
        ("name\tseq\na\tACGU\n", "missing column"),
    ],
)
def test_bad_sequence_files(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        list(read_records(path))
    assert str(path) in str(err.value)
