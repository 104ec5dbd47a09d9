"""Tests written to kill the mutants of ``predict.py`` that survived their module's tests (issue 16,
item 2, session 5): ``predict_file``, ``predict_records``, ``make_predictor``, ``predict_store``,
``_collect``, the ``__init__`` of ``Predictor``/``PredictionSink``/``RoutedPredictor``,
``OnnxModel.run`` and ``OnnxModel.make_session``.

As in tests/test_mutants.py and tests/test_mutants_runtime.py, every expectation is worked out by
hand (in the comments), from fakes whose outputs follow visibly from their inputs, or from the
files the run wrote, never from the function under test. bench/mutation-survivors.md ("Session 5:
predict") lists which mutants each test kills and the survivors accepted with their reason.
"""

import logging

import numpy as np
import pytest

from rnaloc_tools.errors import InputError, RnalocError

from test_mutants import _FakeEncoder, _FakeModel
from test_mutants_runtime import _open, _records, rnaloc_log  # noqa: F401 - rnaloc_log: a fixture


class _Model(_FakeModel):
    """test_mutants' fake model (p(second class) = the mean of column 0 over the positions it is
    given, attention = column 1 over those positions / its sum) with the fake encoder's metadata."""

    encoder = {"encoder": "fake", "dim": 2, "checkpoint_sha256": None}
    sha256 = "cd" * 32

    def __init__(self, fail_on=None, **kw):
        super().__init__(**kw)
        self.fail_on = fail_on  # a batch of this length fails, as ONNX Runtime out of memory would

    def run(self, x, lengths):
        if self.fail_on in lengths.tolist():
            raise RuntimeError("out of memory")
        return super().run(x, lengths)


def _patch_loading(monkeypatch, model, encoder):
    """predict.load_model and encoders.get_encoder replaced: they record what they were asked."""
    import rnaloc_tools.encoders as encoders
    import rnaloc_tools.predict as predict

    asked = {}

    def load_model(path, rna_type=None, **kw):
        asked["load_model"] = (path, rna_type, kw)
        return model

    def get_encoder(name, **kw):
        asked["get_encoder"] = (name, kw)
        return encoder

    monkeypatch.setattr(predict, "load_model", load_model)
    monkeypatch.setattr(encoders, "get_encoder", get_encoder)
    return asked


# --------------------------------------------------------------------------- predict_records, make_predictor, _collect


def test_predict_records_passes_every_option_to_the_model_the_encoder_and_the_predictor(tmp_path, monkeypatch,
                                                                                        rnaloc_log):
    from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore
    from rnaloc_tools.predict import predict_records

    model, encoder = _Model(max_length=5, tie_class=1), _FakeEncoder(max_len=4)
    asked = _patch_loading(monkeypatch, model, encoder)
    # the fake encoder's rows: (code of the base, position); only A (0) and C (1) so that column 0's
    # mean is a probability. p(intracellular) = mean of the codes the model sees:
    #   a CCA 2/3; b CCCAAA whole through windows of 4 (overlap 4 // 4 = 1): 6 rows, the model's crop 5:
    #   CCCAA 3/5; c AC 1/2, a tie -> tie class 1 (intracellular)
    records = _records("a", "CCA", "b", "CCCAAA", "c", "AC")
    att = tmp_path / "a.npz"
    frame = predict_records(records, "m.onnx", att, rna_type="miRNA", provider="cpu", batch_size=1, weights="w.pt",
                            long_policy="windows", toks_per_batch=6, device="cpu", precision="fp32", threads=3,
                            source="in.fa", max_nt=5)
    assert asked["load_model"] == ("m.onnx", "miRNA", {"provider": "cpu", "threads": 3})
    assert asked["get_encoder"] == ("fake", {"weights": "w.pt", "device": "cpu", "precision": "fp32", "threads": 3})
    assert frame.index.tolist() == [0, 1, 2]  # one frame, numbered afresh (not 0, 0, 0 of each chunk)
    assert frame["id"].tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(frame["probability_intracellular"], [2 / 3, 3 / 5, 1 / 2], rtol=1e-6)
    assert frame["prediction"].tolist() == ["intracellular", "intracellular", "intracellular"]
    # max_nt 5: chunks [a] [b] [c] (3 + 6 > 5, b alone, 6 + 2 > 5); b in its two windows of 4, the
    # last one ending at the end: CCCA (0-4), CAAA (2-6); 6 tokens a batch (4 nt + the encoder's 2):
    # one window a batch; batch_size 1: every model run holds one sequence
    assert encoder.batches == [["CCA"], ["CCCA"], ["CAAA"], ["AC"]]
    assert model.batches == [[3], [5], [2]]
    # the attention NPZ: every sequence in order, with the encoder's policy and the model's crop
    store = EmbeddingStore(att, ATTENTION_FORMAT)
    assert store.ids == ["a", "b", "c"]
    assert store.meta["long_policy"] == "windows:4/1" and store.meta["model_max_length"] == 5
    assert store.meta["model_sha256"] == "cd" * 32 and store.meta["max_length"] == 4
    np.testing.assert_allclose(store.get("a")[:, 0], [0, 1 / 3, 2 / 3], rtol=1e-6)  # positions 0, 1, 2 / 3
    assert store.get("b").shape == (6, 1) and store.get("b")[5, 0] == 0  # the 6th position was cropped
    with np.load(att) as npz:  # float32, as the module doc says (not float64, not float16)
        assert npz["embeddings"].dtype == np.dtype("<f4")
    # what the user is told: one sequence windowed; one cropped by the model
    assert [r.getMessage() for r in rnaloc_log.records] == [
        "1 sequences are longer than the model's 5 positions: it sees their first 5 (as in training)",
        "1 of 3 sequences were longer than 4 nt and were embedded in overlapping windows (--long windows)"]


def test_predict_records_defaults_and_its_errors_name_the_source(tmp_path, monkeypatch, rnaloc_log):
    from rnaloc_tools.predict import make_predictor, predict_records

    model, encoder = _Model(), _FakeEncoder(max_len=3)
    asked = _patch_loading(monkeypatch, model, encoder)
    logging.getLogger("rnaloc").setLevel(logging.DEBUG)  # (the fixture puts the level back)
    # the default policy truncates: CCAC is cut to CCA (p 2/3); AC is whole (1/2, a tie: tie class 0)
    frame = predict_records(_records("a", "CCAC", "b", "AC"), rna_type="miRNA")
    assert asked["load_model"] == (None, "miRNA", {"provider": "auto", "threads": None})
    assert asked["get_encoder"] == ("fake", {"weights": None, "device": "auto", "precision": "auto", "threads": None})
    np.testing.assert_allclose(frame["probability_intracellular"], [2 / 3, 1 / 2], rtol=1e-6)
    assert frame["prediction"].tolist() == ["intracellular", "extracellular"]
    assert [(r.levelno, r.getMessage()) for r in rnaloc_log.records] == [
        (logging.WARNING, "1 of 2 sequences were longer than 3 nt and were truncated to their first 3 nt "
                          "(--long truncate); use --long windows to embed them whole"),
        (logging.DEBUG, "embedded 2 sequences (6 nt) with fake")]  # 4 + 2 nt read (3 + 2 embedded)
    assert encoder.batches == [["CCA", "AC"]]  # one chunk, one batch (no token budget by default), longest first
    assert model.batches == [[3, 2]]  # one run: the default batch of 64 sequences
    # batch_size reaches the predictor: one sequence a run (the two in one chunk)
    model = _Model()
    _patch_loading(monkeypatch, model, _FakeEncoder(max_len=3))
    predict_records(_records("a", "CA", "b", "CC"), rna_type="miRNA", batch_size=1)
    assert model.batches == [[2], [2]]
    # the default source names the input in a failure
    _patch_loading(monkeypatch, _Model(fail_on=2), _FakeEncoder(max_len=3))
    with pytest.raises(InputError) as err:
        predict_records(_records("a", "CA"), rna_type="miRNA")
    assert str(err.value) == ("the input: record 'a': ONNX Runtime failed on a batch of 1 sequence(s) "
                              "of up to 2 positions: out of memory")
    # no records: the documented error, and no attention file left behind (before the fix: pandas'
    # "No objects to concatenate", after an empty attention NPZ had been committed)
    with pytest.raises(InputError) as err:
        predict_records([], "m.onnx", tmp_path / "a.npz", source="in.fa")
    assert str(err.value) == "in.fa: no sequences" and list(tmp_path.iterdir()) == []
    asked = _patch_loading(monkeypatch, model, encoder)
    predictor = make_predictor(model)
    assert asked["get_encoder"] == ("fake", {"weights": None, "device": "auto", "precision": "auto", "threads": None})
    assert (predictor.long_policy, predictor.toks_per_batch, predictor.batch_size, predictor.source) == (
        "truncate", None, 64, "the input")
    assert predictor.encoder is encoder and predictor.model is model


# --------------------------------------------------------------------------- predict_store, _store_chunk_calls


def _store(tmp_path, mats, name="e.npz", **meta):
    from conftest import write_npz

    from rnaloc_tools.formats import EmbeddingStore

    meta = {"encoder": "fake", "dim": 2, "checkpoint_sha256": None, "long_policy": "truncate", "max_length": 4, **meta}
    return EmbeddingStore(write_npz(tmp_path / name, mats, meta))


def test_predict_store_reads_float16_rows_in_the_store_order_in_batches_of_the_size_asked(tmp_path, monkeypatch,
                                                                                        rnaloc_log):
    from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore
    from rnaloc_tools.predict import predict_store

    # column 0: 0.1 is not a float16 value (float16 0.1 = 0.0999755859375): the NPZ stores float16 (as
    # `rnaloc embed` does), and the model is given those stored values -> p(intracellular) = that value
    mats = {"x": np.array([[0.1, 1], [0.1, 3]], dtype=np.float32), "y": np.array([[1, 2]], dtype=np.float32),
            "z": np.array([[0.5, 1], [0.25, 1], [0, 2]], dtype=np.float32)}
    store = _store(tmp_path, mats)
    model = _Model(max_length=2)
    att = tmp_path / "a.npz"
    frame = predict_store(store, model, attention_path=att, batch_size=2, source="in.npz")
    assert frame["id"].tolist() == ["x", "y", "z"] and frame.index.tolist() == [0, 1, 2]
    p16 = float(np.float16(0.1))
    np.testing.assert_array_equal(frame["probability_intracellular"], np.float32([p16, 1, 0.375]))  # z cropped to 2
    assert frame["prediction"].tolist() == ["extracellular", "intracellular", "extracellular"]
    assert sorted(map(sorted, model.batches)) == [[1], [2, 2]]  # 3 sequences in batches of at most 2
    assert [r.getMessage() for r in rnaloc_log.records] == [
        "1 sequences are longer than the model's 2 positions: it sees their first 2 (as in training)"]
    weights = EmbeddingStore(att, ATTENTION_FORMAT)
    assert weights.ids == ["x", "y", "z"] and weights.meta["long_policy"] == "truncate"
    assert weights.meta["max_length"] == 4 and weights.meta["model_max_length"] == 2
    np.testing.assert_allclose(weights.get("x")[:, 0], [0.25, 0.75])  # column 1: 1, 3 over their sum 4
    np.testing.assert_allclose(weights.get("z")[:, 0], [0.5, 0.5, 0])  # 1, 1 over 2; the cropped third 0
    # the default batch: every sequence in one run; the default source
    model = _Model(fail_on=3)
    with pytest.raises(InputError) as err:
        predict_store(store, model)
    assert str(err.value) == ("embeddings: record 'z': ONNX Runtime failed on a batch of 3 sequence(s) "
                              "of up to 3 positions: out of memory")


def test_predict_store_refuses_another_encoder_and_an_empty_store_naming_them(tmp_path):
    from rnaloc_tools.predict import predict_store

    other = _store(tmp_path, {"x": np.ones((1, 2), dtype=np.float32)}, encoder="one-hot")
    with pytest.raises(RnalocError) as err:
        predict_store(other, _Model(), source="in.npz")
    assert str(err.value) == ("in.npz was made with encoder='one-hot', but model fake.onnx expects 'fake': "
                              "embed the sequences with the model's own encoder")
    empty = _store(tmp_path, {}, name="empty.npz")
    with pytest.raises(InputError) as err:
        predict_store(empty, _Model(), attention_path=tmp_path / "a.npz")
    assert str(err.value) == "embeddings: no sequences"
    assert not (tmp_path / "a.npz").exists()


# --------------------------------------------------------------------------- the constructors


def test_predictor_defaults_and_its_encoder_check_names_both(monkeypatch):
    from rnaloc_tools.embed import EmbedStats
    from rnaloc_tools.predict import Predictor

    bare = Predictor(_Model())
    assert (bare.long_policy, bare.toks_per_batch, bare.batch_size, bare.source) == ("truncate", None, 64, "the input")
    assert bare.cropped == 0 and bare.encoder is None
    encoder = _FakeEncoder()
    with_encoder = Predictor(_Model(), encoder=encoder, long_policy="windows", toks_per_batch=9, batch_size=3,
                             source="in.fa")
    assert (with_encoder.long_policy, with_encoder.toks_per_batch, with_encoder.batch_size, with_encoder.source) == (
        "windows", 9, 3, "in.fa")
    assert with_encoder.encoder is encoder and isinstance(with_encoder.embed_stats, EmbedStats)
    assert with_encoder.embed_stats.sequences == 0 and with_encoder.cropped == 0
    monkeypatch.setattr(encoder, "meta", lambda: {"encoder": "fake", "dim": 3, "checkpoint_sha256": None})
    with pytest.raises(RnalocError) as err:
        Predictor(_Model(), encoder=encoder)
    assert str(err.value) == ("encoder fake was made with dim=3, but model fake.onnx expects 2: "
                              "embed the sequences with the model's own encoder")


def test_routed_predictor_columns_label_and_source():
    from rnaloc_tools.predict import RoutedPredictor

    trust = ["confidence", "in_domain", "domain_note"]
    predictors = {"miRNA": "p1", "circRNA": "p2"}
    routed = RoutedPredictor(predictors, "in.tsv")
    assert routed.predictors is predictors and routed.source == "in.tsv" and routed.label == "miRNA+circRNA"
    # the classes of the types present, in the package's type order (lncRNA, miRNA, circRNA), each once
    assert routed.columns == ["id", "rna_type", "prediction", "probability_extracellular",
                              "probability_intracellular", "probability_nucleus", "probability_cytoplasm", *trust]
    # all_columns: every type's classes (lncRNA's nucleus/cytoplasm first), whatever is present
    wide = RoutedPredictor({"miRNA": "p1"}, "in.tsv", all_columns=True)
    assert wide.label == "miRNA" and wide.columns == [
        "id", "rna_type", "prediction", "probability_nucleus", "probability_cytoplasm",
        "probability_extracellular", "probability_intracellular", *trust]


# --------------------------------------------------------------------------- OnnxModel.run, OnnxModel.make_session


class _RunGraph:
    """A session that, like ONNX Runtime, returns the outputs asked by name (all of them, in the
    graph's order, for None) and refuses inputs it does not have; its graph has a third output."""

    def __init__(self):
        from test_mutants_runtime import _Graph

        self.graph = _Graph(outputs={"probabilities": ["batch", 2], "attention": ["batch", "length"],
                                     "logits": ["batch", 2]})

    def __getattr__(self, name):
        return getattr(self.graph, name)

    def run(self, names, feeds):
        x, lengths = feeds["embeddings"], feeds["lengths"]  # a KeyError for any other input name
        assert sorted(feeds) == ["embeddings", "lengths"]
        outputs = {"probabilities": x[:, 0, :2], "attention": x[:, :, 0], "logits": lengths}
        return [outputs[n] for n in (names if names is not None else outputs)]


def test_onnx_model_run_asks_for_its_two_outputs_by_name_with_its_two_inputs(tmp_path, monkeypatch):
    _, _, load = _open(tmp_path, monkeypatch, graph=_RunGraph())
    model = load()
    x, lengths = np.arange(12, dtype=np.float32).reshape(2, 3, 2), np.array([3, 1])
    probs, attention = model.run(x, lengths)  # a third output of the graph is not returned
    assert probs.tolist() == [[0, 1], [6, 7]] and attention.tolist() == [[0, 2, 4], [6, 8, 10]]


def test_onnx_model_make_session_shares_its_options_or_copies_them_for_one_thread(tmp_path, monkeypatch):
    import onnxruntime

    _, opened, load = _open(tmp_path, monkeypatch, threads=3, provider="cpu")
    model = load()
    model.make_session(b"another graph")
    (graph, options, providers) = opened[-1]
    assert graph == b"another graph" and options is opened[0][1] and providers == ["CPUExecutionProvider"]
    assert options.intra_op_num_threads == 3  # the model's own (--threads 3)
    model.make_session(b"a third graph", single_thread=True)
    (graph, options, providers) = opened[-1]
    assert graph == b"a third graph" and options is not opened[0][1] and providers == ["CPUExecutionProvider"]
    # the model's options (every optimisation, ORT's log off, no memory-pattern cache), one thread
    assert options.intra_op_num_threads == 1 and opened[0][1].intra_op_num_threads == 3
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.log_severity_level == 4 and options.enable_mem_pattern is False


# --------------------------------------------------------------------------- PredictionSink.__init__


def test_prediction_sink_starts_empty_with_comments_and_copies_what_it_is_given(tmp_path):
    from rnaloc_tools.predict import PredictionSink

    columns, header, notes = iter(["id", "prediction"]), iter(["#input x"]), iter(["#model m"])
    sink = PredictionSink(tmp_path / "p.tsv", columns, header=header, notes=notes)
    # iterators are read once into lists: the sink writes them after the provenance, and the columns again
    assert (sink.columns, sink.header, sink.notes) == (["id", "prediction"], ["#input x"], ["#model m"])
    assert sink.comments is True and sink.rows == 0 and sink.counts == {}
    assert sink.output == tmp_path / "p.tsv" and sink.attention_path is None and sink.attention_meta is None


# --------------------------------------------------------------------------- predict_file


def _spy(monkeypatch, module, name):
    """Replace ``module.name`` by a wrapper that records (args, kwargs) of each call and calls it."""
    real, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _table(path):
    import pandas as pd

    return pd.read_csv(path, sep="\t", comment="#", keep_default_na=False)


def _expected_log(frame, models, provider="CPUExecutionProvider", label_sources=None):
    """The lines predict_file must log, worked out from the table it wrote: per model, its type, rows,
    identity, encoder, provider and the count of each class; then the trust tally's summary."""
    from rnaloc_tools.trust import Tally, describe, model_identity

    lines = []
    for m in models:
        rows = frame[frame["rna_type"] == m.rna_type]
        counts = ", ".join(f"{c} {int((rows['prediction'] == c).sum())}" for c in m.classes)
        identity = model_identity(m, (label_sources or {}).get(m.rna_type))
        lines.append((logging.INFO, f"{m.rna_type}: {len(rows)} sequences predicted with {describe(identity)} "
                                    f"({m.encoder['encoder']} encoder, {provider}): {counts}"))
    tally = Tally()
    tally.add(frame)
    lines.append((logging.WARNING if tally.out or tally.unknown else logging.INFO, tally.summary()))
    return lines


def test_predict_file_one_model_passes_its_options_plots_and_logs(tmp_path, monkeypatch, test_data, rnaloc_log):
    import rnaloc_tools.embed as embed
    import rnaloc_tools.predict as predict
    import rnaloc_tools.trust as trust
    from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore
    from rnaloc_tools.trust import describe, model_identity

    fasta = test_data / "example-miRNA.fa"
    loads = _spy(monkeypatch, predict, "load_model")
    makes = _spy(monkeypatch, predict, "make_predictor")
    chunks = _spy(monkeypatch, embed, "chunk_records")
    plots = []
    monkeypatch.setattr(trust, "plot_probabilities", lambda points, path: plots.append((points, path)))
    out, att, png = tmp_path / "p.tsv", tmp_path / "a.npz", tmp_path / "p.png"
    # the bundled miRNA model, its type in any case; a label source chooses lncRNA models only
    sink = predict.predict_file(fasta, out, rna_type="mirna", label_source="fractionation", plot_path=png,
                                attention_path=att, provider="cpu", batch_size=3, threads=1, max_nt=50,
                                long_policy="truncate")
    model = predict.load_model(None, "miRNA")
    assert loads[0] == ((None, "miRNA"), {"provider": "cpu", "threads": 1})
    # make_predictor's provider is not compared: it takes it but does not use it (the model is loaded)
    assert len(makes) == 1 and makes[0][0][0].path == model.path
    assert {k: v for k, v in makes[0][1].items() if k != "provider"} == {
        "batch_size": 3, "threads": 1, "source": str(fasta), "long_policy": "truncate"}
    assert [c[0][1] for c in chunks] == [50]  # --max-nt reaches the chunks
    frame = _table(out)
    n = len(frame)
    assert sink.rows == n == fasta.read_text().count(">") and frame["rna_type"].eq("miRNA").all()
    # the header names the bundled model, without a label source (label sources are lncRNA's only)
    identity = model_identity(model)
    assert identity["label_source"] is None
    assert f"#model: {describe(identity)}" in out.read_text().splitlines()
    assert [(r.levelno, r.getMessage()) for r in rnaloc_log.records if r.getMessage().startswith(("miRNA:", "0 of"))
            ] == _expected_log(frame, [model])
    # the plot: every row's predicted-class probability, in or out of the domain
    (points, path), = plots
    assert path == png and len(points) == n
    expected = [row[f"probability_{row['prediction']}"] for _, row in frame.iterrows()]
    np.testing.assert_allclose(points["probability"], expected, atol=1e-6)
    # the attention NPZ: the encoder's policy (one-hot, no limit: "none") for every sequence
    weights = EmbeddingStore(att, ATTENTION_FORMAT)
    assert weights.ids == frame["id"].tolist() and weights.meta["long_policy"] == "none"


def test_predict_file_of_an_npz_passes_its_batch_size_and_the_stores_policy(tmp_path, monkeypatch, test_data,
                                                                           rnaloc_log):
    import rnaloc_tools.predict as predict
    from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore

    onnx, npz = test_data / "galaxy-mirna-onehot.onnx", test_data / "galaxy-mirna8-onehot.npz"
    made = []

    class Recording(predict.Predictor):
        def __init__(self, model, **kwargs):
            made.append(kwargs)
            super().__init__(model, **kwargs)

    monkeypatch.setattr(predict, "Predictor", Recording)
    out, att = tmp_path / "p.tsv", tmp_path / "a.npz"
    sink = predict.predict_file(npz, out, model=onnx, attention_path=att, batch_size=2, header=False)
    store = EmbeddingStore(npz)
    assert made == [{"batch_size": 2, "source": str(npz)}]
    assert sink.rows == len(store.ids) and _table(out)["id"].tolist() == store.ids
    assert not out.read_text().startswith("#")  # header=False: no '#' line
    weights = EmbeddingStore(att, ATTENTION_FORMAT)
    assert weights.ids == store.ids and weights.meta["long_policy"] == store.meta["long_policy"]
    assert weights.meta["max_length"] == store.meta["max_length"]
    # this model carries no applicability domain: every row unassessed, and the summary is a warning
    frame = _table(out)
    assert (frame["in_domain"] == "unknown").all()
    assert [(r.levelno, r.getMessage()) for r in rnaloc_log.records][-2:] == _expected_log(
        frame, [predict.load_model(onnx)])
    # an NPZ of another encoder: named, with the model
    from conftest import write_npz

    other = write_npz(tmp_path / "o.npz", {"x": np.ones((2, 2), dtype=np.float32)},
                      {"encoder": "fake", "dim": 2, "checkpoint_sha256": None})
    with pytest.raises(RnalocError) as err:
        predict.predict_file(other, tmp_path / "q.tsv", model=onnx)
    assert str(err.value) == (f"{other} was made with encoder='fake', but model galaxy-mirna-onehot.onnx expects "
                              "'one-hot': embed the sequences with the model's own encoder")
    assert not (tmp_path / "q.tsv").exists()


def test_predict_file_routes_each_type_to_its_bundled_model_with_the_options(tmp_path, monkeypatch, test_data,
                                                                             rnaloc_log):
    import rnaloc_tools.predict as predict

    tsv = test_data / "galaxy-mixed.tsv"
    loads = _spy(monkeypatch, predict, "load_model")
    makes = _spy(monkeypatch, predict, "make_predictor")
    out = tmp_path / "p.tsv"
    sink = predict.predict_file(tsv, out, label_source="fractionation", provider="cpu", batch_size=5, threads=1,
                                all_columns=True, toks_per_batch=4096)
    frame = _table(out)
    # the types in order of appearance, each its bundled model; lncRNA's from the label source asked
    types = list(dict.fromkeys(frame["rna_type"]))
    assert [c[0] for c in loads] == [(None, t) for t in types]
    assert [c[1] for c in loads] == [{"provider": "cpu", "threads": 1, **({"label_source": "fractionation"}
                                                                         if t == "lncRNA" else {})} for t in types]
    assert [{k: v for k, v in c[1].items() if k != "provider"} for c in makes] == [
        {"batch_size": 5, "threads": 1, "source": str(tsv), "toks_per_batch": 4096}] * 3  # the encoding options too
    assert sink.rows == len(frame) == 6
    models = [predict.load_model(None, t, label_source="fractionation" if t == "lncRNA" else None) for t in types]
    assert [m.name for m in models if m.rna_type == "lncRNA"] == ["lncRNA-fractionation.onnx"]
    # every type's classes (all_columns), the rows in input order
    assert list(frame.columns[3:7]) == ["probability_nucleus", "probability_cytoplasm", "probability_extracellular",
                                        "probability_intracellular"]
    with open(tsv) as fh:
        ids = [line.split("\t")[0] for line in fh if not line.startswith(("#", "id\t"))]
    assert frame["id"].tolist() == ids
    lines = [(r.levelno, r.getMessage()) for r in rnaloc_log.records]
    assert lines[-4:] == _expected_log(frame, models, label_sources={"lncRNA": "fractionation"})


def test_predict_file_refusals_before_any_work(tmp_path, test_data):
    from rnaloc_tools.predict import predict_file

    fasta, onnx = test_data / "example-miRNA.fa", test_data / "galaxy-mirna-onehot.onnx"
    missing = tmp_path / "no-such-folder" / "x"
    for extra in ("output", "attention_path", "plot_path"):  # each output is checked before any work
        outputs = {"output": tmp_path / "p.tsv", extra: missing}
        with pytest.raises(RnalocError) as err:
            predict_file(fasta, model=onnx, **outputs)
        assert str(err.value) == f"{missing}: cannot write: folder {missing.parent} does not exist"
    with pytest.raises(RnalocError) as err:
        predict_file(fasta, tmp_path / "p.tsv", rna_type="mrna")
    assert str(err.value) == "unknown rna_type 'mrna' (known: lncRNA, miRNA, circRNA)"
    with pytest.raises(RnalocError) as err:
        predict_file(test_data / "galaxy-mixed.tsv", tmp_path / "p.tsv", attention_path=tmp_path / "a.npz")
    assert str(err.value) == ("--attention needs one model (--rna-type or --model): the attention of several "
                              "models cannot share one NPZ")
    # an embeddings NPZ has no rna_type per record: no model, no routing (a usage error, with the hint)
    from rnaloc_tools.routing import NoRnaType

    with pytest.raises(NoRnaType) as err:
        predict_file(test_data / "galaxy-mirna8-onehot.npz", tmp_path / "p.tsv")
    assert str(err.value) == ("say which RNA type the sequences are: --rna-type lncRNA|miRNA|circRNA (the bundled "
                              "model), --model MODEL.onnx, or a dataset TSV with an rna_type column (each row then "
                              "goes to the bundled model of its own type)")
    assert list(tmp_path.iterdir()) == []


def test_predict_file_names_stdin_in_a_routed_tables_errors(tmp_path, monkeypatch):
    """A routed table on stdin is spooled to a temporary file and read twice: an error of either
    pass names <stdin>, never the temporary file."""
    import io
    import sys

    from rnaloc_tools.predict import predict_file

    header = "id\trna_type\tsequence\n"
    bad_type = header + "a\tmiRNA\tACGUACGUACGUACGUACGUAC\nb\tmRNA\tACGUACGUACGU\n"
    bad_sequence = header + "a\tmiRNA\tACGUACGUACGUACGUACGUAC\nb\tmiRNA\tACGU!ACGU\n"
    problems = []
    for text in (bad_type, bad_sequence):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
        with pytest.raises(InputError) as err:
            predict_file("-", tmp_path / "p.tsv")
        problems.append((err.value.source, err.value.record))
    assert problems == [("<stdin>", "b"), ("<stdin>", "b")]
    assert list(tmp_path.iterdir()) == []


def test_predict_file_defaults_refuse_a_mismatch_write_the_header_and_only_the_types_present(tmp_path, test_data,
                                                                                           monkeypatch):
    import io
    import sys

    from rnaloc_tools.predict import predict_file

    tsv = test_data / "galaxy-mixed.tsv"
    with pytest.raises(InputError) as err:  # force_type is off by default: a lncRNA row of a miRNA run
        predict_file(tsv, tmp_path / "p.tsv", rna_type="miRNA")
    assert (err.value.source, err.value.record) == (str(tsv), "gene_id:100043089:transcript_id:XR_386237")
    assert err.value.problem.startswith("rna_type 'lncRNA' but the model predicts miRNA: ")
    assert list(tmp_path.iterdir()) == []
    # a routed table on stdin: spooled, read twice (its types, then its rows), every row predicted
    text = "".join(line for line in tsv.read_text().splitlines(keepends=True) if not line.startswith("#"))
    text = "".join(line for line in text.splitlines(keepends=True)
                   if line.startswith("id\t") or "\tmiRNA\t" in line or "\tcircRNA\t" in line)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    out = tmp_path / "p.tsv"
    sink = predict_file("-", out)
    assert sink.rows == 4 and out.read_text().startswith("#")  # the header by default
    frame = _table(out)
    assert frame["id"].tolist() == [line.split("\t")[0] for line in text.splitlines()[1:]]
    # only the types present (miRNA, circRNA), in the package's type order
    assert list(frame.columns[3:7]) == ["probability_extracellular", "probability_intracellular",
                                        "probability_nucleus", "probability_cytoplasm"]
    assert frame.columns[7] == "confidence"
    # all_columns: every type's classes, lncRNA's (nucleus, cytoplasm) first, though no lncRNA is present
    table = tmp_path / "t.tsv"
    table.write_text(text)
    predict_file(table, out, all_columns=True)
    assert list(_table(out).columns[3:7]) == ["probability_nucleus", "probability_cytoplasm",
                                              "probability_extracellular", "probability_intracellular"]
    # force_type: the lncRNA row of a miRNA run is predicted (and flagged), not refused
    sink = predict_file(tsv, out, rna_type="miRNA", force_type=True)
    assert sink.rows == 6 and _table(out)["rna_type"].eq("miRNA").all()


def test_predict_file_of_one_sequence_logs_a_zero_count_and_an_all_assessed_summary(tmp_path, monkeypatch,
                                                                                   test_data, rnaloc_log):
    import rnaloc_tools.trust as trust
    from rnaloc_tools.predict import load_model, predict_file

    real = trust.annotate

    def in_domain(frame, model, **kwargs):  # every row assessed and in the domain
        frame = real(frame, model, **kwargs)
        frame["in_domain"], frame["domain_note"] = "yes", ""
        return frame

    monkeypatch.setattr(trust, "annotate", in_domain)
    fasta = tmp_path / "one.fa"
    fasta.write_text(">only\nUGGAAAAAACUGGUGUGUGCUU\n")
    out = tmp_path / "p.tsv"
    predict_file(fasta, out, rna_type="miRNA", header=False)
    assert out.read_text().startswith("id\t")  # header=False: no '#' line
    frame = _table(out)
    assert len(frame) == 1 and (frame["in_domain"] == "yes").all()
    expected = _expected_log(frame, [load_model(None, "miRNA")])
    assert " 0" in expected[0][1] and expected[1][0] == logging.INFO  # one class has no row; nothing unassessed
    assert [(r.levelno, r.getMessage()) for r in rnaloc_log.records][-2:] == expected


def test_predict_file_of_an_empty_npz_and_with_the_header(tmp_path, test_data):
    from conftest import write_npz

    from rnaloc_tools.formats import EmbeddingStore
    from rnaloc_tools.predict import predict_file

    onnx, npz = test_data / "galaxy-mirna-onehot.onnx", test_data / "galaxy-mirna8-onehot.npz"
    out = tmp_path / "p.tsv"
    predict_file(npz, out, model=onnx)
    lines = out.read_text().splitlines()
    assert lines[0].startswith("#") and any(line.startswith("#model: model file ") for line in lines)
    empty = write_npz(tmp_path / "e.npz", {}, EmbeddingStore(npz).meta)
    with pytest.raises(InputError) as err:
        predict_file(empty, tmp_path / "q.tsv", model=onnx)
    assert str(err.value) == f"{empty}: no sequences" and not (tmp_path / "q.tsv").exists()
