"""predict streams: chunks of a few million nucleotides, rows in input order, a sequence's prediction
the same alone, in a small file or deep in a large one, nothing left behind when interrupted."""

import gzip
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from rnaloc_tools.bundled import bundled_models
from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore, read_records, read_table
from rnaloc_tools.seqs import Record, SeenIds

from conftest import REPO, interruptible, leftovers, one_error_line

pytestmark = pytest.mark.skipif("circRNA" not in bundled_models(), reason="no bundled circRNA model")


@pytest.fixture(scope="module")
def circ(datasets):
    """Real circRNA sequences (the first 400 of the training table)."""
    with gzip.open(datasets / "circRNA" / "train.tsv.gz", "rt") as fh:
        df = pd.read_csv(fh, sep="\t", usecols=["id", "sequence"], dtype=str, nrows=400)
    return [Record(f"c{i}", s.upper().replace("T", "U")) for i, s in zip(df["id"], df["sequence"])]


def _fasta(path, records):
    path.write_text("".join(f">{r.id}\n{r.seq}\n" for r in records))
    return path


def _same_rows(a, b, tol=1.5e-6):
    """Rows equal field by field; probabilities within ``tol`` (a batch's padding changes the order of the
    graph's float sums: at most one unit in the 6th decimal after rounding)."""
    assert list(a) == list(b)
    for rid in a:
        x, y = a[rid].split("\t"), b[rid].split("\t")
        assert len(x) == len(y)
        for u, v in zip(x, y):
            try:
                assert abs(float(u) - float(v)) <= tol, (rid, u, v)
            except ValueError:
                assert u == v, (rid, u, v)


def _rows(path):
    """The data lines of a predictions TSV, by id."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return {line.split("\t", 1)[0]: line for line in lines[1:]}


@pytest.mark.parametrize("attention", [True, False])
def test_a_prediction_is_the_same_alone_in_a_small_file_and_deep_in_a_large_one(cli, circ, tmp_path, attention):
    """With attention the whole graph runs on padded batches (float sums in another order: within
    1.5e-6); without, the frequencies are counted outside the graph and the rows are identical."""
    target = circ[7]
    rng = np.random.default_rng(3)
    # a large file: 4000 resampled sequences (new ids), the target at position 3600; a chunk budget of
    # 20 kb cuts it into ~150 chunks, so the target shares its chunk and its batches with others
    picks = rng.integers(0, len(circ), 4000)
    large = [Record(f"r{j}", circ[i].seq) for j, i in enumerate(picks)]
    large[3600] = target
    files = {"alone": [target], "small": circ[:12], "large": large}
    nt = sum(len(r.seq) for r in large)
    assert nt > 100 * 20000  # the large file spans many chunks
    rows, weights = {}, {}
    for name, records in files.items():
        fasta = _fasta(tmp_path / f"{name}.fa", records)
        out, att = tmp_path / f"{name}.tsv", tmp_path / f"{name}.npz"
        result = cli("predict", fasta, "--rna-type", "circRNA", "--chunk-nt", 20000, "-o", out,
                     *(["--attention", att] if attention else []))
        assert result.exit_code == 0, result.stderr
        rows[name] = _rows(out)
        assert list(rows[name]) == [r.id for r in records]
        if not attention:
            continue
        store = EmbeddingStore(att, ATTENTION_FORMAT)
        assert store.ids == [r.id for r in records]  # input order, across chunks
        weights[name] = store.get(target.id)
    for name in ("small", "large"):
        if attention:
            _same_rows({target.id: rows["alone"][target.id]}, {target.id: rows[name][target.id]})
        else:
            assert rows[name][target.id] == rows["alone"][target.id]
    if not attention:
        return
    # attention: the same up to float rounding (a batch's padding changes the order of sums in the graph)
    np.testing.assert_allclose(weights["alone"], weights["small"], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(weights["alone"], weights["large"], rtol=1e-5, atol=1e-9)


def test_chunk_budget_does_not_change_any_row(cli, circ, tmp_path):
    fasta = _fasta(tmp_path / "in.fa", circ[:150])
    outs = []
    for budget in (1, 5000, 10**9):  # one sequence per chunk, a few, all in one
        out = tmp_path / f"p{budget}.tsv"
        assert cli("predict", fasta, "--rna-type", "circRNA", "--chunk-nt", budget, "-o", out).exit_code == 0
        outs.append(_rows(out))
    _same_rows(outs[0], outs[1])
    _same_rows(outs[0], outs[2])


def test_records_are_read_a_chunk_at_a_time(circ, tmp_path, monkeypatch):
    """The reader is consumed lazily: when a chunk's rows are written, at most one more chunk was read."""
    import rnaloc_tools.formats as formats
    from rnaloc_tools import predict

    pulled = []
    records = [Record(f"s{i}", circ[i % len(circ)].seq) for i in range(600)]

    def lazy(_path):
        for i, rec in enumerate(records):
            pulled.append(i)
            yield rec

    monkeypatch.setattr(formats, "read_records", lazy)
    seen_at_write = []
    real_write = predict.PredictionSink.write

    def write(self, result):
        seen_at_write.append((len(pulled), self.rows + len(result.frame)))
        return real_write(self, result)

    monkeypatch.setattr(predict.PredictionSink, "write", write)
    budget = 30000
    fasta = _fasta(tmp_path / "unused.fa", records[:1])
    sink = predict.predict_file(fasta, tmp_path / "p.tsv", rna_type="circRNA", max_nt=budget)
    assert sink.rows == 600 and len(seen_at_write) > 10
    longest = max(len(r.seq) for r in records)
    for read, written in seen_at_write:
        chunk_records = read - written  # read but not yet written: the next chunk's first record at most
        assert chunk_records <= 1
    assert list(read_table(tmp_path / "p.tsv").df["id"]) == [r.id for r in records]
    assert longest < budget


def test_sigint_in_the_middle_leaves_nothing(circ, tmp_path):
    records = [Record(f"s{i}", circ[i % len(circ)].seq) for i in range(30000)]
    fasta = _fasta(tmp_path / "in.fa", records)
    work = tmp_path / "out"
    work.mkdir()
    out, att = work / "p.tsv", work / "a.npz"
    env = dict(os.environ, PYTHONPATH=str(REPO), RNALOC_NO_PROGRESS="1")
    proc = subprocess.Popen([sys.executable, "-m", "rnaloc_tools", "predict", str(fasta), "--rna-type", "circRNA",
                             "--chunk-nt", "20000", "-o", str(out), "--attention", str(att)],
                            env=env, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    deadline = time.time() + 120
    part = []
    while time.time() < deadline and proc.poll() is None:  # wait until rows are being written
        part = [p for p in work.iterdir() if p.name.startswith(".p.tsv.") and p.stat().st_size > 20000]
        if part:
            break
        time.sleep(0.05)
    assert part and proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert list(work.iterdir()) == []  # no TSV, no NPZ, no temporary or spill file


def test_a_duplicate_id_far_apart_is_found(cli, circ, tmp_path, monkeypatch):
    monkeypatch.setattr(SeenIds, "BLOCK", 16)  # the first occurrence is in an older run
    records = [Record(f"s{i}", circ[i].seq) for i in range(100)] + [Record("s3", circ[0].seq)]
    fasta = _fasta(tmp_path / "in.fa", records)
    result = cli("predict", fasta, "--rna-type", "circRNA", "--chunk-nt", 5000, "-o", tmp_path / "p.tsv")
    line = one_error_line(result, "predict")
    assert "in.fa: record 's3'" in line and "duplicate id" in line
    assert not (tmp_path / "p.tsv").exists() and leftovers(tmp_path) == []


def test_seen_ids_finds_every_repeat():
    seen = SeenIds()
    ids = [f"id{i}" for i in range(200000)]
    assert all(seen.add(i) for i in ids) and seen.flush() and len(seen) == 200000
    seen.add("id5")  # in an older run: found when the pending block is checked
    assert not seen.flush() and seen.duplicate == "id5"
    recent = SeenIds()
    recent.add("a")
    assert not recent.add("a") and recent.duplicate == "a"


def test_stored_embeddings_stream_too(cli, circ, tmp_path):
    fasta = _fasta(tmp_path / "in.fa", circ[:60])
    npz = tmp_path / "e.npz"
    assert cli("embed", fasta, "--encoder", "one-hot", "-o", npz).exit_code == 0
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    assert cli("predict", npz, "--rna-type", "circRNA", "--chunk-nt", 3000, "-o", a).exit_code == 0
    assert cli("predict", fasta, "--rna-type", "circRNA", "-o", b).exit_code == 0
    _same_rows(_rows(a), _rows(b))


# --- one very long sequence: a k-mer model in pieces ------------------------------------------


def test_kmer_counts_in_pieces_equal_the_whole_sequence_count():
    import torch

    from rnaloc_tools.encoders.onehot import one_hot
    from rnaloc_tools.model import kmer
    from rnaloc_tools.model.kmer_pieces import kmer_counts

    rng = np.random.default_rng(5)
    seq = "".join(rng.choice(list("ACGU"), 3001))
    x = one_hot(seq)
    whole, _ = kmer.kmer_counts(torch.from_numpy(x)[None], 1, 7)
    whole = torch.cat(whole, 1)[0].double().numpy()
    for piece in (1, 7, 64, 1000, 5000):  # boundaries everywhere, and one piece
        np.testing.assert_array_equal(kmer_counts(x, 1, 7, piece), whole)
    iupac = one_hot(seq[:500] + "NRYB" + seq[500:900] + "N" * 300 + seq[:50])  # ambiguity codes: fractions
    whole, _ = kmer.kmer_counts(torch.from_numpy(iupac)[None], 2, 5)
    np.testing.assert_allclose(kmer_counts(iupac, 2, 5, 33), torch.cat(whole, 1)[0].double().numpy(), rtol=1e-6)


@pytest.mark.parametrize("rna_type", ["circRNA", "lncRNA"])
def test_a_long_sequence_in_pieces_equals_the_whole_graph(rna_type, tmp_path):
    from rnaloc_tools.encoders.onehot import one_hot
    from rnaloc_tools.predict import LONG_NT, load_model, predict_file

    model = load_model(rna_type=rna_type)
    assert model.pieces is not None  # the bundled k-mer graphs can be cut
    rng = np.random.default_rng(6)
    seq = "".join(rng.choice(list("ACGU"), 3 * LONG_NT + 123))  # four pieces
    x = one_hot(seq)
    probs, attention = model.pieces.run(x)
    p, a = model.run(x[None], np.array([len(seq)], dtype=np.int64))  # the whole graph in one piece
    np.testing.assert_array_equal(probs, p[0])
    np.testing.assert_allclose(attention, a[0], rtol=1e-5, atol=1e-9)
    # and through predict: the long sequence beside short ones, rows as the whole graph gives them
    fasta = tmp_path / "in.fa"
    fasta.write_text(f">short\nACGUACGUAGCUAGCUAGCUAGC\n>long\n{seq}\n")
    predict_file(fasta, tmp_path / "p.tsv", rna_type=rna_type, attention_path=tmp_path / "a.npz")
    row = read_table(tmp_path / "p.tsv").df.set_index("id").loc["long"]
    assert float(row[f"probability_{model.classes[0]}"]) == pytest.approx(float(p[0, 0]), abs=5e-7)
    stored = EmbeddingStore(tmp_path / "a.npz", ATTENTION_FORMAT).get("long")[:, 0]
    np.testing.assert_allclose(stored, a[0], rtol=1e-5, atol=1e-9)


def test_batched_kmer_frequencies_equal_the_graphs():
    """Many sequences counted together (keys built k by k, windows kept inside their own sequence)
    give each sequence's frequencies as the graph's own torch code computes them alone."""
    import torch

    from rnaloc_tools.encoders.onehot import one_hot
    from rnaloc_tools.model import kmer
    from rnaloc_tools.model.kmer_pieces import batch_frequencies

    rng = np.random.default_rng(8)
    pure = ["".join(rng.choice(list("ACGU"), n)) for n in (1, 2, 6, 7, 8, 50, 999, 3001)]
    iupac = ["NNNN", "ACGUNRYACGU" * 20, "".join(rng.choice(list("ACGUNRYSWKMBDHV"), 700))]
    seqs = pure + iupac + pure[::-1]
    mats = [one_hot(s).astype(np.float16) for s in seqs]  # as predict embeds them

    def graph(x):
        xt = torch.from_numpy(np.asarray(x, dtype=np.float32))[None]
        counts, _ = kmer.kmer_counts(xt, 1, 7)
        return torch.cat([c / max(len(x) - (k - 1), 1) for k, c in zip(range(1, 8), counts)], 1)[0].numpy()

    got = batch_frequencies(mats, 1, 7)
    assert got.shape == (len(seqs), kmer.n_features(1, 7)) and got.dtype == np.float32
    for i, (seq, x) in enumerate(zip(seqs, mats)):
        if seq in iupac:  # the graph multiplies fractions in float32, this count in float64
            np.testing.assert_allclose(got[i], graph(x), rtol=1e-6, atol=1e-9)
        else:
            np.testing.assert_array_equal(got[i], graph(x))
    np.testing.assert_array_equal(batch_frequencies(mats[2:5], 3, 5), got[2:5, 4 + 16 : 4 + 16 + 64 + 256 + 1024])


@pytest.mark.parametrize("rna_type", ["miRNA", "circRNA", "lncRNA"])
def test_without_attention_a_kmer_model_runs_from_counted_frequencies(rna_type, datasets, monkeypatch):
    """No attention asked: the frequencies are counted outside the graph (the graph's window tables
    are never built), with the whole graph's probabilities, and a row is bitwise the same alone
    or among others."""
    from rnaloc_tools.predict import load_model, make_predictor

    with gzip.open(datasets / rna_type / "train.tsv.gz", "rt") as fh:
        seqs = pd.read_csv(fh, sep="\t", usecols=["sequence"], dtype=str, nrows=40)["sequence"].tolist()
    records = [Record(f"s{i}", s.upper().replace("T", "U")) for i, s in enumerate(seqs)]
    records += [Record("n", "ACGNNRYU" * 9), Record("one", "A"), Record("two", "GU")]
    model = load_model(rna_type=rna_type)
    assert model.pieces is not None
    predictor = make_predictor(model)
    whole = predictor.predict_chunk(records, attention=True).probs  # the whole graph, padded batches
    monkeypatch.setattr(model, "run", lambda *a: pytest.fail("the whole graph ran without attention"))
    fast = predictor.predict_chunk(records).probs
    # the whole graph sums window products in float32 and its batches change a product's last bit
    np.testing.assert_allclose(fast, whole, rtol=0, atol=3e-7)
    alone = np.concatenate([predictor.predict_chunk([r]).probs for r in records])
    np.testing.assert_array_equal(fast, alone)
    np.testing.assert_array_equal(predictor.predict_chunk(records[::-1]).probs, fast[::-1])


def test_a_model_whose_graph_cannot_be_cut_runs_whole(monkeypatch):
    from rnaloc_tools.model.kmer_pieces import KmerPieces
    from rnaloc_tools.predict import load_model

    model = load_model(rna_type="circRNA")
    monkeypatch.setattr(KmerPieces, "run", lambda self, x, piece=None: (np.zeros(2, np.float32), np.zeros(len(x))))
    assert model.pieces is None  # the check against the whole graph fails: not used


# --- a dataset TSV is read a block of rows at a time ------------------------------------------


def _tsv(path, rows, comments=("#made by hand",)):
    path.write_text("".join(c + "\n" for c in comments) + "id\trna_type\tsequence\n"
                    + "".join("\t".join(r) + "\n" for r in rows))
    return path


def test_tsv_blocks_give_the_records_and_errors_of_the_whole_table(tmp_path, monkeypatch):
    import rnaloc_tools.formats.tables as tables
    from rnaloc_tools.formats import read_dataset

    monkeypatch.setattr(tables, "RECORD_BLOCK", 7)
    rows = [(f"s{i}", "circRNA", "ACGT" * (i + 1)) for i in range(50)]
    path = _tsv(tmp_path / "t.tsv", rows)
    streamed = list(read_records(path))
    whole = read_dataset(path, require=("id", "sequence"))
    assert [(r.id, r.seq, r.extra) for r in streamed] == [(r.id, r.seq, r.extra) for r in whole.records()]

    def error(rows):
        with pytest.raises(Exception) as info:
            list(read_records(_tsv(tmp_path / "bad.tsv", rows)))
        return str(info.value)

    assert "record 's3'" in error(rows[:40] + [("s3", "circRNA", "ACGU")]) and "duplicate id" in error(rows + [rows[3]])
    blank = rows[:30] + [("", "circRNA", "ACGU")] + rows[30:]
    assert "bad.tsv:33:" in error(blank) and "empty id" in error(blank)  # 1 '#' line + header + 30 rows
    stray = rows[:20] + [("s99", "circRNA", "ACGU\t")] + rows[20:]
    assert "bad.tsv:23:" in error(stray) and "fields" in error(stray)
    assert "illegal letter" in error(rows[:45] + [("x", "circRNA", "ACGUZ")])
    assert "no rows" in error([])


def test_a_large_tsv_streams_through_predict(cli, circ, tmp_path, monkeypatch):
    import rnaloc_tools.formats.tables as tables

    monkeypatch.setattr(tables, "RECORD_BLOCK", 16)
    rows = [(f"t{i}", "circRNA", circ[i % len(circ)].seq) for i in range(120)]
    path = _tsv(tmp_path / "in.tsv", rows)
    fasta = _fasta(tmp_path / "in.fa", [Record(r[0], r[2]) for r in rows])
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    assert cli("predict", path, "--rna-type", "circRNA", "--chunk-nt", 20000, "-o", a).exit_code == 0
    assert cli("predict", fasta, "--rna-type", "circRNA", "-o", b).exit_code == 0
    _same_rows(_rows(a), _rows(b))
    assert list(_rows(a)) == [r[0] for r in rows]
