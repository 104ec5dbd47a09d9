"""Tests written to kill the mutants of the runtime paths that survived their module's tests
(issue 16, item 2, session 4): ``model/onnx_export.export_onnx``, the model loading, streaming and
output of ``predict.py``, and ``embed.py`` beyond its window arithmetic.

As in tests/test_mutants.py, every expectation is worked out by hand (in the comments), from fakes
whose outputs follow visibly from their inputs, never from the function under test.
bench/mutation-survivors.md ("Session 4: runtime") lists which mutants each test kills and the
survivors accepted with their reason.
"""

import logging

import numpy as np
import pytest

from rnaloc_tools.errors import InputError, RnalocError

from test_mutants import tiny_checkpoint  # noqa: F401 - a module fixture: a seeded untrained k-mer checkpoint


@pytest.fixture
def rnaloc_log(caplog, monkeypatch):
    """caplog with the records of the "rnaloc" logger at INFO and above, caught on that logger itself
    (its propagation off meanwhile, so no record is caught twice): it does not depend on how a CLI run
    earlier in the process left the logger (conftest's ``_rnaloc_logger_reset`` also resets it)."""
    log = logging.getLogger("rnaloc")
    level = log.level
    monkeypatch.setattr(log, "propagate", False)
    log.setLevel(logging.INFO)
    log.addHandler(caplog.handler)
    yield caplog
    log.removeHandler(caplog.handler)
    log.setLevel(level)

# --------------------------------------------------------------------------- model/onnx_export.py export_onnx


def test_export_runs_the_full_onnx_check_and_names_its_first_line(tiny_checkpoint, tmp_path, monkeypatch):  # noqa: F811
    import onnx

    from rnaloc_tools.model.onnx_export import export_onnx

    # a checker that, like the real one, runs strict shape inference only when asked for the full
    # check, and here fails it: export must ask for it, refuse, name the output and say the first line
    calls = []

    def check_model(proto, full_check=False):
        calls.append(full_check)
        if full_check:
            raise onnx.checker.ValidationError("shape inference of node Gather_7 failed\nthe rest of the report")

    monkeypatch.setattr(onnx.checker, "check_model", check_model)
    out = tmp_path / "m.onnx"
    with pytest.raises(RnalocError) as err:
        export_onnx(tiny_checkpoint, out)
    assert str(err.value) == f"{out}: the exported graph fails onnx.checker: shape inference of node Gather_7 failed"
    assert calls == [True] and list(tmp_path.iterdir()) == []


def test_export_logs_the_output_the_tolerance_the_difference_and_the_shapes(tiny_checkpoint, tmp_path,  # noqa: F811
                                                                            monkeypatch, rnaloc_log):
    import rnaloc_tools.model.onnx_export as onnx_export

    # the comparison's result is given (3e-5): the log line is then known by hand; 5 batches are checked:
    # (1,), (3,), (50, 17, 4), (333, 100, 2, 61), (1000,)
    monkeypatch.setattr(onnx_export, "compare", lambda *a, **k: 3e-5)
    out = tmp_path / "m.onnx"
    assert onnx_export.export_onnx(tiny_checkpoint, out) == 3e-5
    lines = [r.getMessage() for r in rnaloc_log.records if r.name == "rnaloc"]
    assert lines == [f"wrote {out}: ONNX Runtime matches PyTorch within 1.0e-04 (max |diff| 3.00e-05) at 5 shapes"]


# --------------------------------------------------------------------------- predict.py: loading a model


class _Graph:
    """What ONNX Runtime reports of a model file, set by the test: its metadata, input names,
    outputs (name -> shape) and the providers the session really runs on."""

    def __init__(self, meta=None, inputs=("embeddings", "lengths"), outputs=None, providers=("CPUExecutionProvider",)):
        self.meta = dict(GOOD_META if meta is None else meta)
        self.inputs, self.providers = inputs, list(providers)
        self.outputs = {"probabilities": ["batch", 2], "attention": ["batch", "length"]} if outputs is None else outputs

    def get_modelmeta(self):
        from types import SimpleNamespace

        return SimpleNamespace(custom_metadata_map=dict(self.meta))

    def get_inputs(self):
        from types import SimpleNamespace

        return [SimpleNamespace(name=n) for n in self.inputs]

    def get_outputs(self):
        from types import SimpleNamespace

        return [SimpleNamespace(name=n, shape=s) for n, s in self.outputs.items()]

    def get_providers(self):
        return self.providers


GOOD_META = {"rna_type": "miRNA", "classes": '["extracellular", "intracellular"]',
             "encoder": '{"encoder": "one-hot", "dim": 4}'}


def _open(tmp_path, monkeypatch, graph=None, error=None, available=("CPUExecutionProvider",), **kw):
    """OnnxModel of a file whose session is ``graph`` (or whose opening raises ``error``); also the
    (path, options, providers) ONNX Runtime was asked to open it with."""
    import onnxruntime

    from rnaloc_tools.predict import OnnxModel

    path = tmp_path / "m.onnx"
    path.write_bytes(b"a graph")
    opened = []

    def session(p, options, providers=None):
        opened.append((p, options, providers))
        if error is not None:
            raise error
        return graph if graph is not None else _Graph()

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(available))
    return path, opened, (lambda: OnnxModel(path, **kw))


def test_onnx_model_opens_its_file_quiet_with_bounded_memory_and_the_threads_asked(tmp_path, monkeypatch):
    import hashlib

    import onnxruntime

    path, opened, load = _open(tmp_path, monkeypatch, threads=3, provider="cpu")
    model = load()
    (p, options, providers), = opened
    assert p == str(path) and providers == ["CPUExecutionProvider"]
    # every graph optimisation; ORT's own log off (errors reach the user as one line of ours);
    # no memory-pattern cache per input shape (it grew with the input); --threads 3
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.log_severity_level == 4 and options.enable_mem_pattern is False
    assert options.intra_op_num_threads == 3
    assert model.provider == "CPUExecutionProvider" and model.path == str(path) and model.dim == 4
    assert model.sha256 == hashlib.sha256(b"a graph").hexdigest()
    # no --threads: ORT's default (0, all cores) is left alone
    _, opened, load = _open(tmp_path, monkeypatch)
    load()
    assert opened[0][1].intra_op_num_threads == 0


def test_onnx_model_builds_the_kmer_pieces_runner_when_first_asked(tmp_path):
    from rnaloc_tools.bundled import bundled_model_path
    from rnaloc_tools.model.kmer_pieces import KmerPieces
    from rnaloc_tools.predict import OnnxModel

    # the bundled miRNA model is a k-mer model (arch "kmer"): it has a pieces runner, built once
    model = OnnxModel(bundled_model_path("miRNA", "rnalocate"))
    assert model.meta["arch"] == "kmer"
    first = model.pieces
    assert isinstance(first, KmerPieces) and model.pieces is first


@pytest.mark.parametrize("error, reason", [
    (RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model failed\nthe rest"),
     "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model failed"),
    (RuntimeError("  \n "), "RuntimeError"),              # no text: the exception's type
    (ValueError("x" * 250), "x" * 200),                   # one line, at most 200 characters
])
def test_onnx_model_says_the_first_line_of_onnx_runtimes_refusal(tmp_path, monkeypatch, error, reason):
    path, _, load = _open(tmp_path, monkeypatch, error=error)
    with pytest.raises(InputError) as err:
        load()
    assert str(err.value) == f"{path}: not a readable ONNX model ({reason})"


def test_onnx_model_names_a_missing_file_and_a_folder(tmp_path):
    from rnaloc_tools.predict import OnnxModel

    for path in (tmp_path / "absent.onnx", tmp_path):
        with pytest.raises(InputError) as err:
            OnnxModel(path)
        assert str(err.value) == f"{path}: no such file"


def test_onnx_model_passes_our_own_errors_through(tmp_path, monkeypatch):
    own = RnalocError("ONNX Runtime is not installed")
    _, _, load = _open(tmp_path, monkeypatch, error=own)
    with pytest.raises(RnalocError) as err:
        load()
    assert err.value is own


def test_onnx_model_refuses_cuda_that_quietly_runs_on_the_cpu(tmp_path, monkeypatch):
    both = ("CUDAExecutionProvider", "CPUExecutionProvider")
    _, opened, load = _open(tmp_path, monkeypatch, graph=_Graph(providers=["CPUExecutionProvider"]),
                            available=both, provider="cuda")
    with pytest.raises(RnalocError) as err:
        load()
    assert str(err.value) == (
        "--provider cuda: ONNX Runtime could not start CUDA (no GPU or NVIDIA driver visible, or "
        "CUDA libraries missing); in a container give it the GPU (docker --gpus all, "
        "apptainer --nv), or use --provider auto or cpu")
    assert opened[0][2] == list(both)
    # CUDA really running: accepted, and said
    _, _, load = _open(tmp_path, monkeypatch, graph=_Graph(providers=both), available=both, provider="cuda")
    assert load().provider == "CUDAExecutionProvider"
    # auto takes whatever ORT started
    _, _, load = _open(tmp_path, monkeypatch, graph=_Graph(providers=["CPUExecutionProvider"]), available=both)
    assert load().provider == "CPUExecutionProvider"


NOT_RNALOC = "not an rnaloc model (made by `rnaloc export-onnx`): its metadata or inputs are missing"


@pytest.mark.parametrize("graph, problem", [
    (_Graph(inputs=("embeddings",)), NOT_RNALOC),
    (_Graph(inputs=("embeddings", "lengths", "mask")), NOT_RNALOC),
    (_Graph(inputs=("x", "lengths")), NOT_RNALOC),
    (_Graph(meta={k: v for k, v in GOOD_META.items() if k != "encoder"}), NOT_RNALOC),
    (_Graph(outputs={"probabilities": ["batch", 2]}), "not an rnaloc model: its outputs are not 'probabilities' and 'attention'"),
    (_Graph(outputs={"attention": ["batch", "length"]}), "not an rnaloc model: its outputs are not 'probabilities' and 'attention'"),
    (_Graph(outputs={"probabilities": ["batch", 3], "attention": ["batch", "length"]}),
     "corrupt model: 3 probability outputs for 2 classes"),
    (_Graph(meta=dict(GOOD_META, max_length="[1")),
     "corrupt model metadata: max_length is not JSON (Expecting ',' delimiter: line 1 column 3 (char 2))"),
    (_Graph(meta=dict(GOOD_META, encoder='{"encoder": "one-hot", "dim": 0}')),
     "corrupt metadata: encoder.dim must be a positive whole number, not 0"),
    (_Graph(meta=dict(GOOD_META, rna_type="snoRNA")), "corrupt metadata: unknown rna_type 'snoRNA' (known: lncRNA, miRNA, circRNA)"),
    (_Graph(meta=dict(GOOD_META, encoder="[4]")), "corrupt model metadata (encoder): a JSON object was expected, not list"),
])
def test_onnx_model_refusals_are_one_line_naming_the_file(tmp_path, monkeypatch, graph, problem):
    path, _, load = _open(tmp_path, monkeypatch, graph=graph)
    with pytest.raises(InputError) as err:
        load()
    assert str(err.value) == f"{path}: {problem}"


@pytest.mark.parametrize("width", ["n_classes", None])
def test_onnx_model_accepts_a_symbolic_or_unknown_output_width(tmp_path, monkeypatch, width):
    shape = ["batch", width] if width else []
    _, _, load = _open(tmp_path, monkeypatch, graph=_Graph(outputs={"probabilities": shape, "attention": ["batch"]}))
    model = load()
    assert model.classes == ("extracellular", "intracellular") and model.max_length is None


def test_providers_cpu_auto_and_cuda():
    from types import SimpleNamespace

    from rnaloc_tools.predict import _providers

    gpu = SimpleNamespace(get_available_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    cpu = SimpleNamespace(get_available_providers=lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    assert _providers(gpu, "cpu") == ["CPUExecutionProvider"]
    assert _providers(gpu, "auto") == _providers(gpu, "cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert _providers(cpu, "auto") == _providers(cpu, "cpu") == ["CPUExecutionProvider"]
    with pytest.raises(RnalocError) as err:
        _providers(cpu, "cuda")
    assert str(err.value) == ("--provider cuda: ONNX Runtime has no CUDA provider here (available: "
                              "AzureExecutionProvider, CPUExecutionProvider); install onnxruntime-gpu instead of "
                              "onnxruntime, or use --provider cpu")


def test_load_model_by_path_by_bundled_type_and_label_source(tmp_path, monkeypatch):
    import rnaloc_tools.bundled as bundled
    import rnaloc_tools.predict as predict

    opened = []

    class Model:  # OnnxModel's place: records how it was opened; its type comes from the name
        def __init__(self, path, provider, threads):
            opened.append((path, provider, threads))
            self.path, self.rna_type = path, path.split("-")[0]

    asked = []
    monkeypatch.setattr(predict, "OnnxModel", Model)
    monkeypatch.setattr(bundled, "bundled_model_path", lambda t, s: asked.append((t, s)) or f"{t}-{s}.onnx")
    same = Model("lncRNA-x.onnx", None, None)
    assert predict.load_model(same) is same
    assert predict.load_model("miRNA-mine.onnx", provider="cpu", threads=2).rna_type == "miRNA"
    assert predict.load_model("miRNA-mine.onnx", "miRNA").path == "miRNA-mine.onnx"
    assert predict.load_model(None, "lncRNA").path == "lncRNA-rnalocate.onnx"
    assert predict.load_model(rna_type="lncRNA", label_source="fractionation").path == "lncRNA-fractionation.onnx"
    assert asked == [("lncRNA", "rnalocate"), ("lncRNA", "fractionation")]
    assert opened[1:] == [("miRNA-mine.onnx", "cpu", 2), ("miRNA-mine.onnx", "auto", None),
                          ("lncRNA-rnalocate.onnx", "auto", None), ("lncRNA-fractionation.onnx", "auto", None)]
    with pytest.raises(RnalocError) as err:
        predict.load_model("miRNA-mine.onnx", "lncRNA")
    assert str(err.value) == "miRNA-mine.onnx: the model predicts miRNA, not lncRNA"
    with pytest.raises(RnalocError) as err:
        predict.load_model()
    assert str(err.value) == "give a model (--model MODEL.onnx) or an rna_type for the bundled model (--rna-type)"


# --------------------------------------------------------------------------- predict.py: streaming and output

COLUMNS = ["id", "rna_type", "prediction", "probability_a", "probability_b"]


def test_prediction_sink_writes_the_header_provenance_notes_then_the_column_names(tmp_path, monkeypatch):
    from rnaloc_tools import __version__
    from rnaloc_tools.predict import PredictionSink

    monkeypatch.setenv("RNALOC_COMMAND_LINE", "rnaloc predict in.fa -o p.tsv")
    out = tmp_path / "p.tsv"
    with PredictionSink(out, COLUMNS, header=["#input in.fa"], notes=["#model m.onnx sha256 00"]) as sink:
        assert not out.exists()  # renamed into place only when complete
    assert out.read_text() == (
        "#input in.fa\n"
        f"#rnaloc predict {__version__}: rnaloc predict in.fa -o p.tsv\n"
        "#model m.onnx sha256 00\n"
        "id\trna_type\tprediction\tprobability_a\tprobability_b\n")
    assert sink.rows == 0 and sink.counts == {}
    # --no-header: no '#' line at all, header and notes included
    with PredictionSink(out, COLUMNS, header=["#input in.fa"], notes=["#model"], comments=False):
        pass
    assert out.read_text() == "id\trna_type\tprediction\tprobability_a\tprobability_b\n"


def test_prediction_sink_failing_midway_keeps_the_previous_files_and_leaves_nothing(tmp_path):
    from rnaloc_tools.predict import PredictionSink

    out, att = tmp_path / "p.tsv", tmp_path / "a.npz"
    out.write_text("previous\n")
    with pytest.raises(KeyboardInterrupt):
        with PredictionSink(out, COLUMNS, att, {"dim": 1}):
            raise KeyboardInterrupt
    assert out.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == ["p.tsv"]
    # the attention file failing to open (its metadata has no dim) after the TSV was opened: the TSV's
    # temporary file goes too, and the error is the writer's
    with pytest.raises(KeyError, match="dim"):
        PredictionSink(tmp_path / "q.tsv", COLUMNS, tmp_path / "b.npz", {}).__enter__()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tsv"]


class _StreamPredictor:
    """A predictor whose rows follow from the records: prediction 'b' for an odd length, else 'a';
    probability_b = length / 10. It records what it was asked."""

    label = "miRNA"
    columns = COLUMNS

    def __init__(self):
        self.calls, self.cropped_logged, self.meta_asked = [], 0, []

    def predict_chunk(self, records, attention=False):
        import pandas as pd

        from rnaloc_tools.predict import ChunkResult

        self.calls.append(([r.id for r in records], attention))
        lengths = [len(r.seq) for r in records]
        frame = pd.DataFrame({"id": [r.id for r in records], "rna_type": "miRNA",
                              "prediction": ["b" if n % 2 else "a" for n in lengths],
                              "probability_a": [1 - n / 10 for n in lengths], "probability_b": [n / 10 for n in lengths]})
        weights = [np.full((n, 1), 1 / n, dtype=np.float32) for n in lengths] if attention else None
        return ChunkResult(frame, None, weights)

    def attention_meta(self, embedding_meta):
        self.meta_asked.append(embedding_meta)
        return {"dim": 1, "rna_type": "miRNA", "long_policy": embedding_meta.get("long_policy")}

    def log_cropped(self):
        self.cropped_logged += 1


def test_predict_stream_writes_every_chunk_in_order_and_counts(tmp_path):
    from rnaloc_tools.predict import predict_stream

    predictor = _StreamPredictor()
    chunks = [_records("s1", "ACG", "s2", "AC"), _records("s3", "A")]
    out = tmp_path / "p.tsv"
    sink = predict_stream(chunks, predictor, out, notes=["#model fake"], comments=False)
    assert out.read_text() == ("id\trna_type\tprediction\tprobability_a\tprobability_b\n"
                               "s1\tmiRNA\tb\t0.7\t0.3\ns2\tmiRNA\ta\t0.8\t0.2\ns3\tmiRNA\tb\t0.9\t0.1\n")
    assert sink.rows == 3 and sink.counts == {"b": 2, "a": 1}
    assert predictor.calls == [(["s1", "s2"], False), (["s3"], False)]
    assert predictor.meta_asked == [] and predictor.cropped_logged == 1
    # the notes go after the provenance when comments are on
    predict_stream([_records("s1", "AC")], predictor, out, notes=["#model fake"])
    assert out.read_text().splitlines()[1:3] == ["#model fake", "id\trna_type\tprediction\tprobability_a\tprobability_b"]


def test_predict_stream_with_attention_calls_store_chunks_and_writes_the_weights(tmp_path):
    from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore
    from rnaloc_tools.predict import predict_stream

    predictor = _StreamPredictor()
    asked = []

    def stored(attention):  # a chunk of a store: a call taking the attention flag
        asked.append(attention)
        return predictor.predict_chunk(_records("s2", "ACGU"), attention)

    out, att = tmp_path / "p.tsv", tmp_path / "a.npz"
    sink = predict_stream([_records("s1", "ACG"), stored], predictor, out, attention_path=att,
                          embedding_meta={"long_policy": "truncate"}, comments=False)
    assert asked == [True] and predictor.calls == [(["s1"], True), (["s2"], True)] and sink.rows == 2
    assert predictor.meta_asked == [{"long_policy": "truncate"}]
    store = EmbeddingStore(att, ATTENTION_FORMAT)
    assert store.ids == ["s1", "s2"] and store.meta["long_policy"] == "truncate"
    # float32 weights, as the module doc says (1/3 is not a float16 value: float16 would give 0.33325)
    assert store.get("s1").tolist() == [[float(np.float32(1 / 3))]] * 3 and store.get("s2").tolist() == [[0.25]] * 4
    with np.load(att) as npz:  # stored as float32 too (not float16, not float64)
        assert npz["embeddings"].dtype == np.dtype("<f4")
    # no embedding metadata: the predictor is asked with an empty one
    predict_stream([_records("s1", "AC")], predictor, out, attention_path=att)
    assert predictor.meta_asked[-1] == {}


class _Bar:
    """The progress bar's place: what it was labelled, the count it showed after each update, closed."""

    bars = []

    def __init__(self, desc=None, unit=None):
        self.desc, self.unit, self.n, self.shown, self.closed = desc, unit, 0, [], False
        _Bar.bars.append(self)

    def update(self, k):
        self.n += k
        self.shown.append(self.n)

    def close(self):
        self.closed = True


def test_predict_stream_counts_its_progress_in_sequences(tmp_path, monkeypatch):
    import rnaloc_tools.predict as predict

    monkeypatch.setattr(predict, "progress", _Bar)
    _Bar.bars = []
    chunks = [_records("s1", "ACG", "s2", "AC"), _records("s3", "A")]
    predict.predict_stream(chunks, _StreamPredictor(), tmp_path / "p.tsv")
    with pytest.raises(InputError):
        predict.predict_stream([], _StreamPredictor(), tmp_path / "q.tsv")
    (bar, empty) = _Bar.bars
    assert (bar.desc, bar.unit, bar.shown, bar.closed) == ("predict (miRNA)", "seq", [2, 3], True)
    assert empty.shown == [] and empty.closed


def test_predict_stream_of_no_sequences_names_the_input_and_writes_nothing(tmp_path):
    from rnaloc_tools.predict import predict_stream

    out = tmp_path / "p.tsv"
    with pytest.raises(InputError) as err:
        predict_stream([], _StreamPredictor(), out, attention_path=tmp_path / "a.npz", source="in.fa")
    assert str(err.value) == "in.fa: no sequences" and list(tmp_path.iterdir()) == []
    with pytest.raises(InputError) as err:
        predict_stream([[]], _StreamPredictor(), out)
    assert str(err.value) == "the input: no sequences" and list(tmp_path.iterdir()) == []


def _records(*pairs):
    from rnaloc_tools.seqs import Record

    return [Record(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]


class _Encoder:
    name = "fake"
    dim = 4

    def __init__(self, max_len):
        self.max_len = max_len

    def meta(self):
        return {"encoder": "one-hot", "dim": 4, "checkpoint_sha256": None, "max_length": self.max_len}


class _Model:
    rna_type, name, path, sha256 = "lncRNA", "m.onnx", "/models/m.onnx", "ab" * 32
    classes = ("cytoplasm", "nucleus")
    encoder = {"encoder": "one-hot", "dim": 4, "checkpoint_sha256": None}
    max_length = 4000
    quadratic = False


@pytest.mark.parametrize("max_len, policy, expected", [
    (1022, "windows", "windows:1022/255"),   # overlap a quarter of the limit: 1022 // 4
    (1022, "truncate", "truncate"),
    (None, "windows", "none"),               # no limit: no policy applies
])
def test_predictor_embedding_and_attention_metadata(max_len, policy, expected):
    from rnaloc_tools.predict import Predictor

    predictor = Predictor(_Model(), encoder=_Encoder(max_len), long_policy=policy)
    meta = predictor.embedding_meta()
    assert meta == {"encoder": "one-hot", "dim": 4, "checkpoint_sha256": None, "max_length": max_len,
                    "long_policy": expected}
    assert predictor.attention_meta(meta) == {
        "dim": 1, "rna_type": "lncRNA", "classes": ["cytoplasm", "nucleus"], "model": "m.onnx",
        "model_sha256": "ab" * 32, "model_encoder": "one-hot", "long_policy": expected, "max_length": max_len,
        "model_max_length": 4000}
    assert predictor.attention_meta({}) == dict(predictor.attention_meta(meta), long_policy=None, max_length=None)


# --------------------------------------------------------------------------- embed.py: batches, chunks, logs


def _lengths(batches):
    return [[len(p.seq) for p in b] for b in batches]


def test_pack_batches_closes_a_batch_at_the_budget_and_the_padding_share_by_hand():
    from types import SimpleNamespace

    from rnaloc_tools.embed import pack_batches

    def pieces(*lengths):
        return [SimpleNamespace(seq="A" * n) for n in lengths]

    # longest first; 10 + 9: 20 padded, 19 real, 1 padded <= 0.125 * 20; + 2: 30 padded, 21 real,
    # 9 > 3.75: a new batch, whose width and counts start again (2 + 2: no padding)
    assert _lengths(pack_batches(pieces(2, 9, 2, 10), 100)) == [[10, 9], [2, 2]]
    # the budget: 5 + 5 = 10 padded tokens fit a budget of 10, not of 9
    assert _lengths(pack_batches(pieces(5, 5), 10)) == [[5, 5]]
    assert _lengths(pack_batches(pieces(5, 5), 9)) == [[5], [5]]
    # the padding share at its bound: 8 + 6 -> 16 padded, 2 of them padding = 0.125 * 16: joined; 8 + 5: 3 > 2
    assert _lengths(pack_batches(pieces(8, 6), 100)) == [[8, 6]]
    assert _lengths(pack_batches(pieces(8, 5), 100)) == [[8], [5]]
    assert _lengths(pack_batches(pieces(8, 5), 100, max_padding=0.25)) == [[8, 5]]   # 3 <= 4
    # extra tokens count in the budget: (5 + 1) * 2 = 12 > 11
    assert _lengths(pack_batches(pieces(5, 5), 11, extra_tokens=1)) == [[5], [5]]
    assert _lengths(pack_batches(pieces(5, 5), 12, extra_tokens=1)) == [[5, 5]]
    # and in the padding share: widths 8 + 2 = 10 and 6 + 2 = 8: 20 padded, 18 real, 2 <= 2.5
    assert _lengths(pack_batches(pieces(8, 6, 5), 100, extra_tokens=2)) == [[8, 6], [5]]
    assert list(pack_batches([], 10)) == []


def test_log_long_sequences_says_how_many_and_what_was_done(rnaloc_log):
    from rnaloc_tools.embed import EmbedStats, log_long_sequences

    log_long_sequences(EmbedStats(sequences=7, truncated=2), 1022)
    log_long_sequences(EmbedStats(sequences=9, windowed=3), 1000)
    log_long_sequences(EmbedStats(sequences=5), 1022)
    assert [(r.levelname, r.getMessage()) for r in rnaloc_log.records] == [
        ("WARNING", "2 of 7 sequences were longer than 1022 nt and were truncated to their first 1022 nt "
                    "(--long truncate); use --long windows to embed them whole"),
        ("INFO", "3 of 9 sequences were longer than 1000 nt and were embedded in overlapping windows (--long windows)"),
    ]


def test_embed_records_passes_its_budget_chunks_and_overlap_and_logs(tmp_path, rnaloc_log):
    from test_mutants import _FakeEncoder, _recs

    from rnaloc_tools.embed import embed_records
    from rnaloc_tools.formats import EmbeddingStore

    # chunks of at most 3 nt: [AC], [GU, A]; batches never cross a chunk (budget large)
    enc = _FakeEncoder(max_len=4, extra_tokens=2)
    out = tmp_path / "e.npz"
    stats = embed_records(_recs("AC", "GU", "A"), enc, out, max_nt=3)
    assert enc.batches == [["AC"], ["GU", "A"]] and (stats.sequences, stats.nucleotides) == (3, 5)
    assert [r.getMessage() for r in rnaloc_log.records] == [f"embedded 3 sequences (5 nt) with fake into {out}"]
    # a budget of 6 tokens: one piece (+ 2 extra tokens) per batch
    enc = _FakeEncoder(max_len=4, extra_tokens=2)
    embed_records(_recs("ACG", "GU"), enc, out, toks_per_batch=6)
    assert enc.batches == [["ACG"], ["GU"]]
    # the overlap asked: 7 nt in windows of 4 with overlap 2 (stride 2): starts 0, 2, 3; written in the policy
    enc = _FakeEncoder(max_len=4)
    rnaloc_log.clear()
    stats = embed_records(_recs("GUACGUA"), enc, out, long="windows", overlap=2)
    assert sorted(s for b in enc.batches for s in b) == ["ACGU", "CGUA", "GUAC"]
    store = EmbeddingStore(out)
    assert store.meta["long_policy"] == "windows:4/2" and store.get("r0")[:, 0].tolist() == [2, 3, 0, 1, 2, 3, 0]
    assert stats.windowed == 1 and [r.getMessage() for r in rnaloc_log.records] == [
        "1 of 1 sequences were longer than 4 nt and were embedded in overlapping windows (--long windows)",
        f"embedded 1 sequences (7 nt) with fake into {out}"]


def test_embed_records_counts_its_progress_in_sequences(tmp_path, monkeypatch):
    from test_mutants import _FakeEncoder, _recs

    import rnaloc_tools.embed as embed

    monkeypatch.setattr(embed, "progress", _Bar)
    _Bar.bars = []
    # chunks of at most 3 nt: [AC], [GU, A]: the count after each
    embed.embed_records(_recs("AC", "GU", "A"), _FakeEncoder(max_len=4), tmp_path / "e.npz", max_nt=3)
    (bar,) = _Bar.bars
    assert (bar.desc, bar.unit, bar.shown, bar.closed) == ("embed (fake)", "seq", [1, 3], True)


def test_embed_chunk_default_overlap_counts_and_dtypes_by_hand():
    from test_mutants import _FakeEncoder, _recs

    from rnaloc_tools.embed import EmbedStats, embed_chunk

    # 10 nt in windows of 4 with the default overlap 4 // 4 = 1 (stride 3): starts 0, 3, then 6 flush
    # with the end: ACGU, UACG, GUAC (overlap 0 would give ACGU, ACGU (4-8), GUAC)
    enc = _FakeEncoder(max_len=4)
    stats = EmbedStats()
    out = embed_chunk(_recs("ACGUACGUAC", "GGGGGG", "CCCCC", "AU"), enc, long="windows", stats=stats)
    assert sorted(s for b in enc.batches for s in b if len(s) == 4) == ["ACGU", "CCCC", "CCCC", "GGGG", "GGGG",
                                                                        "GUAC", "UACG"]
    # merged windows stay float32 without a dtype (not the float64 of the averaging)
    assert [m.dtype for m in out] == [np.float32] * 4 and (stats.windowed, stats.truncated) == (3, 0)
    # every truncated sequence is counted, also across calls sharing the stats
    stats = EmbedStats()
    embed_chunk(_recs("GGGGGG", "CCCCC", "AU"), _FakeEncoder(max_len=4), stats=stats)
    embed_chunk(_recs("UUUUUUU"), _FakeEncoder(max_len=4), stats=stats)
    assert (stats.sequences, stats.nucleotides, stats.truncated, stats.windowed) == (4, 20, 3, 0)


def test_embed_chunk_counts_the_width_the_encoder_pads_a_batch_to():
    from test_mutants import _FakeEncoder, _recs

    from rnaloc_tools.embed import embed_chunk

    class Rounding(_FakeEncoder):
        def batch_width(self, width):  # pads a batch to a multiple of 4 positions
            return -(-width // 4) * 4

    # two pieces of 3 nt, a budget of 6 tokens: 3 * 2 = 6 fits, but the encoder pads each to 4: 8 > 6
    enc = _FakeEncoder(max_len=None, extra_tokens=0)
    embed_chunk(_recs("ACG", "GUA"), enc, toks_per_batch=6)
    assert enc.batches == [["ACG", "GUA"]]
    enc = Rounding(max_len=None, extra_tokens=0)
    embed_chunk(_recs("ACG", "GUA"), enc, toks_per_batch=6)
    assert enc.batches == [["ACG"], ["GUA"]]
    embed_chunk(_recs("ACG", "GUA"), enc, toks_per_batch=8)
    assert enc.batches[2:] == [["ACG", "GUA"]]


# --------------------------------------------------------------------------- predict.py Predictor: failure text, crop log, chunk size


def _bare_predictor(**model):
    """A Predictor without __init__ (no ONNX file): only what _failure, log_cropped and chunk_nt read."""
    from types import SimpleNamespace

    from rnaloc_tools.predict import Predictor

    predictor = object.__new__(Predictor)
    predictor.model = SimpleNamespace(**model)
    predictor.source = "in.fa"
    predictor.cropped = 0
    predictor.encoder = None
    return predictor


def test_an_onnx_runtime_failure_message_is_its_first_line_cut_at_300_characters():
    predictor = _bare_predictor(quadratic=False, max_length=None)
    long_line = "  out of memory " + "x" * 400 + "  \nsecond line\n"
    err = predictor._failure(RuntimeError(long_line), 3, 1500.0, "r7")
    # str(exc).strip() -> "out of memory xxx..." (the leading blanks gone); its first line; 300 characters of it
    reason = ("out of memory " + "x" * 400)[:300]
    assert isinstance(err, InputError) and err.record == "r7" and err.source == "in.fa"
    assert str(err) == f"in.fa: record 'r7': ONNX Runtime failed on a batch of 3 sequence(s) of up to 1500 positions: {reason}"
    # an exception without text: its type's name stands for the reason
    assert str(predictor._failure(MemoryError(), 1, 8, "a")).endswith("of up to 8 positions: MemoryError")
    assert str(predictor._failure(RuntimeError("  \n "), 1, 8, "a")).endswith("of up to 8 positions: RuntimeError")


@pytest.mark.parametrize("quadratic,max_length,hinted", [(True, None, True), (True, 20, False), (False, None, False)])
def test_the_square_of_the_length_hint_is_given_only_to_an_uncropped_quadratic_model(quadratic, max_length, hinted):
    err = _bare_predictor(quadratic=quadratic, max_length=max_length)._failure(RuntimeError("boom"), 2, 90, "b")
    hint = " (a model trained without --max-len needs memory growing with the square of the length)"
    expected = f"ONNX Runtime failed on a batch of 2 sequence(s) of up to 90 positions{hint if hinted else ''}: boom"
    assert err.problem == expected


def test_the_crop_is_logged_once_with_the_count_and_the_model_length(rnaloc_log):
    predictor = _bare_predictor(max_length=20)
    predictor.log_cropped()
    assert rnaloc_log.records == []  # nothing cropped: nothing said
    predictor.cropped = 4
    predictor.log_cropped()
    assert [(r.levelno, r.getMessage()) for r in rnaloc_log.records] == [
        (logging.INFO, "4 sequences are longer than the model's 20 positions: it sees their first 20 (as in training)")]


def test_a_predictor_chunk_follows_its_encoder_width_and_the_routed_one_takes_the_smallest():
    from types import SimpleNamespace

    from rnaloc_tools.embed import CHUNK_BYTES, DEFAULT_CHUNK_NT
    from rnaloc_tools.predict import RoutedPredictor

    no_encoder = _bare_predictor(dim=640)  # embeddings input: the model's own width
    assert no_encoder.chunk_nt() == CHUNK_BYTES // (4 * 640) == 104857  # 256 MiB of float32 640-d rows
    assert no_encoder.chunk_nt(50_000) == 50_000
    narrow = _bare_predictor(dim=640)
    narrow.encoder = SimpleNamespace(dim=4)  # an encoder, when there is one, decides (one-hot: 4)
    assert narrow.chunk_nt() == DEFAULT_CHUNK_NT == 2_000_000
    assert narrow.chunk_nt(70_000) == 70_000
    routed = object.__new__(RoutedPredictor)
    routed.predictors = {"lncRNA": narrow, "miRNA": no_encoder}
    assert routed.chunk_nt() == 104857  # the smaller of 2,000,000 and 104,857
    assert routed.chunk_nt(90_000) == 90_000  # max_nt reaches every predictor


def test_a_predictor_chunk_embeds_with_its_own_policy_budget_and_stats_in_float16(monkeypatch):
    """Predictor.predict_chunk hands the encoder's matrices to predict_matrices as `rnaloc embed` stores
    them (float16: a FASTA and its embeddings NPZ predict the same, also for a real-valued encoder), with
    the predictor's long-sequence policy, token budget and statistics; attention only when asked."""
    from types import SimpleNamespace

    import rnaloc_tools.embed as embed_module

    predictor = _bare_predictor(dim=4)
    predictor.encoder = SimpleNamespace(name="fake")
    predictor.long_policy, predictor.toks_per_batch, predictor.embed_stats = "windows", 777, object()
    seen = {}

    def fake_embed_chunk(block, encoder, **kwargs):
        seen["embed"] = (block, encoder, kwargs)
        return [np.full((len(r.seq), 4), 0.1, dtype=kwargs.get("dtype") or np.float32) for r in block]

    def fake_predict_matrices(ids, mats, attention=False):
        seen.setdefault("predict", []).append((ids, [m.dtype for m in mats], attention))
        return "result"

    monkeypatch.setattr(embed_module, "embed_chunk", fake_embed_chunk)
    monkeypatch.setattr(predictor, "predict_matrices", fake_predict_matrices)
    records = [SimpleNamespace(id="a", seq="ACGU"), SimpleNamespace(id="b", seq="GG")]
    assert predictor.predict_chunk(records) == "result"
    block, encoder, kwargs = seen["embed"]
    assert block is records and encoder is predictor.encoder
    assert kwargs == {"long": "windows", "toks_per_batch": 777, "stats": predictor.embed_stats, "dtype": np.float16}
    predictor.predict_chunk(records, attention=True)
    assert seen["predict"] == [(["a", "b"], [np.float16, np.float16], False), (["a", "b"], [np.float16, np.float16], True)]
