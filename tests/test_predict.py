"""rnaloc predict: FASTA/TSV/NPZ in, predictions TSV and attention NPZ out; batch invariance; bad inputs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnaloc_tools.bundled import bundled_models
from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore, EmbeddingWriter, read_records, read_table
from rnaloc_tools.model.metrics import predicted_class
from rnaloc_tools.model.onnx_export import export_onnx
from rnaloc_tools.model.training import TrainConfig, train_to_files

from conftest import leftovers, one_error_line

#: Largest difference accepted between a sequence predicted alone and inside a batch.
BATCH_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def model(tmp_path_factory, test_data):
    """A tiny one-hot miRNA model exported to ONNX (2 epochs, no CV)."""
    from rnaloc_tools.embed import embed_records
    from rnaloc_tools.encoders import get_encoder

    folder = tmp_path_factory.mktemp("predict")
    npz = folder / "e.npz"
    embed_records(read_records(test_data / "model-miRNA.tsv"), get_encoder("one-hot"), npz)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    train_to_files(test_data / "model-miRNA.tsv", [npz], folder / "m.pt", TrainConfig(folds=0, epochs=2))
    export_onnx(folder / "m.pt", folder / "m.onnx")
    torch.set_num_threads(threads)
    return folder / "m.onnx"


def _predictions(path):
    return read_table(path).df


def test_predict_fasta_rows_in_input_order(cli, model, test_data, tmp_path):
    fasta = test_data / "example-miRNA.fa"
    result = cli("predict", fasta, "--model", model)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#rnaloc predict")
    assert lines[1].startswith("#model: model file ")  # which model made the calls (tests/test_predict_trust.py)
    assert lines[2].split("\t") == ["id", "rna_type", "prediction", "probability_extracellular", "probability_intracellular",
                                    "confidence", "in_domain", "domain_note"]
    ids = [r.id for r in read_records(fasta)]
    rows = [line.split("\t") for line in lines[3:]]
    assert [r[0] for r in rows] == ids
    probs = np.array([[float(r[3]), float(r[4])] for r in rows])
    assert np.allclose(probs.sum(1), 1, atol=2e-6)
    assert all(r[1] == "miRNA" for r in rows)
    expected = np.where(probs[:, 1] > probs[:, 0], "intracellular", "extracellular")
    assert [r[2] for r in rows] == list(expected)


def test_fasta_tsv_stdin_and_npz_inputs_agree(cli, model, test_data, tmp_path):
    fasta = test_data / "example-miRNA.fa"
    out_fa, out_npz = tmp_path / "fa.tsv", tmp_path / "npz.tsv"
    assert cli("predict", fasta, "--model", model, "-o", out_fa).exit_code == 0
    npz = tmp_path / "e.npz"
    assert cli("embed", fasta, "--encoder", "one-hot", "-o", npz).exit_code == 0
    assert cli("predict", npz, "--model", model, "-o", out_npz).exit_code == 0
    # a real pipe (CliRunner's stdin is not a peekable stream)
    piped = subprocess.run(f"cat {fasta} | {sys.executable} -m rnaloc_tools predict - --model {model}",
                           shell=True, capture_output=True, text=True, check=True)
    a, b = _predictions(out_fa), _predictions(out_npz)
    assert a.equals(b)
    assert piped.stdout.splitlines()[1:] == out_fa.read_text().splitlines()[1:]
    tsv = cli("predict", test_data / "example-miRNA.tsv", "--model", model)
    assert tsv.exit_code == 0 and len(tsv.stdout.splitlines()) == 3 + len(a)


def test_batch_invariance_and_attention(cli, model, test_data, tmp_path):
    """A short sequence alone, and in a batch with longer ones: the same prediction and attention."""
    records = list(read_records(test_data / "model-miRNA.tsv"))
    short = min(records, key=len)
    alone, together = tmp_path / "alone.fa", tmp_path / "together.fa"
    alone.write_text(f">{short.id}\n{short.seq}\n")
    together.write_text("".join(f">{r.id}\n{r.seq}\n" for r in records))
    runs = {}
    for name, fasta, batch in (("alone", alone, 1), ("together", together, 64)):
        att = tmp_path / f"{name}.npz"
        result = cli("predict", fasta, "--model", model, "-o", tmp_path / f"{name}.tsv", "--attention", att,
                     "--batch-size", batch)
        assert result.exit_code == 0, result.stderr
        runs[name] = (_predictions(tmp_path / f"{name}.tsv").set_index("id"), EmbeddingStore(att, ATTENTION_FORMAT))
    cols = ["probability_extracellular", "probability_intracellular"]
    p_alone = runs["alone"][0].loc[short.id, cols].astype(float).to_numpy()
    p_together = runs["together"][0].loc[short.id, cols].astype(float).to_numpy()
    assert np.abs(p_alone - p_together).max() <= BATCH_TOLERANCE
    assert max(len(r) for r in records) > 3 * len(short)  # the batch really had longer sequences
    a_alone = runs["alone"][1].get(short.id)
    a_together = runs["together"][1].get(short.id)
    assert a_alone.shape == (len(short), 1)
    assert np.abs(a_alone - a_together).max() <= BATCH_TOLERANCE
    store = runs["together"][1]
    assert store.ids == [r.id for r in records]
    assert store.meta["format"] == ATTENTION_FORMAT and store.meta["rna_type"] == "miRNA"
    assert store.meta["classes"] == ["extracellular", "intracellular"] and len(store.meta["model_sha256"]) == 64
    for r in records:
        weights = store.get(r.id)
        assert weights.shape == (len(r), 1) and weights.dtype == np.float32
        assert weights.min() >= 0 and weights.sum() == pytest.approx(1, abs=1e-4)


def test_ties_go_to_the_recorded_class():
    probs = np.array([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]], dtype=np.float32)
    assert predicted_class(probs, 1).tolist() == [1, 1, 0]
    assert predicted_class(probs, 0).tolist() == [0, 1, 0]


def test_library_function_for_motifs(model, test_data, tmp_path):
    from rnaloc_tools.predict import predict_records

    frame = predict_records(read_records(test_data / "example-miRNA.fa"), model, tmp_path / "a.npz")
    n = len(list(read_records(test_data / "example-miRNA.fa")))
    assert list(frame.columns[:3]) == ["id", "rna_type", "prediction"] and len(frame) == n
    assert EmbeddingStore(tmp_path / "a.npz", ATTENTION_FORMAT).ids == list(frame["id"])


@pytest.mark.skipif(not bundled_models(), reason="no bundled models in rnaloc_tools/models/ yet")
def test_bundled_models_predict_the_examples(cli, test_data):
    for rna_type in bundled_models():
        result = cli("predict", test_data / f"example-{rna_type}.fa", "--rna-type", rna_type)
        assert result.exit_code == 0, result.stderr
        assert len(result.stdout.splitlines()) == 3 + len(list(read_records(test_data / f"example-{rna_type}.fa")))


# --- bad inputs ---------------------------------------------------------------------------------


def _fails(cli, tmp_path, *args, input=None):
    out, att = tmp_path / "p.tsv", tmp_path / "a.npz"
    result = cli("predict", *args, "-o", out, "--attention", att, input=input)
    line = one_error_line(result, "predict")
    assert not out.exists() and not att.exists() and leftovers(tmp_path) == []
    assert result.stdout == ""
    return line


def test_embeddings_of_another_encoder(cli, model, tmp_path):
    npz = tmp_path / "rnafm.npz"
    with EmbeddingWriter(npz, {"encoder": "rna-fm", "dim": 640, "checkpoint_sha256": "ab" * 32}) as writer:
        writer.add("x", np.zeros((30, 640)))
    line = _fails(cli, tmp_path, npz, "--model", model)
    assert "rnafm.npz" in line and "encoder='rna-fm'" in line and "'one-hot'" in line


def test_embeddings_of_another_encoder_from_rnafm(cli, model, test_data, tmp_path, request):
    tiny = request.getfixturevalue("tiny_rnafm")
    npz = tmp_path / "tiny.npz"
    assert cli("embed", test_data / "example-miRNA.fa", "--encoder", "rna-fm", "--weights", tiny, "-o", npz).exit_code == 0
    line = _fails(cli, tmp_path, npz, "--model", model)
    assert "rna-fm" in line and "one-hot" in line


@pytest.mark.parametrize("kind", ["garbage", "truncated", "not-rnaloc"])
def test_corrupted_onnx(cli, model, test_data, tmp_path, kind):
    bad = tmp_path / "bad.onnx"
    if kind == "garbage":
        bad.write_bytes(b"\x08\x07garbage" * 50)
    elif kind == "truncated":
        data = model.read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    else:
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        onnx.save(helper.make_model(graph), bad)
    line = _fails(cli, tmp_path, test_data / "example-miRNA.fa", "--model", bad)
    assert "bad.onnx" in line and ("not a readable ONNX model" in line or "not an rnaloc model" in line)


def test_model_of_another_rna_type(cli, model, test_data, tmp_path):
    line = _fails(cli, tmp_path, test_data / "example-miRNA.fa", "--model", model, "--rna-type", "lncRNA")
    assert "predicts miRNA, not lncRNA" in line


def test_missing_bundled_model(cli, test_data, tmp_path, monkeypatch):
    import rnaloc_tools.bundled as bundled

    monkeypatch.setattr(bundled, "_folder", lambda: tmp_path)
    line = _fails(cli, tmp_path, test_data / "example-circRNA.fa", "--rna-type", "circRNA")
    assert "no bundled model circRNA" in line and "--model" in line


def test_onnx_runtime_failure_names_the_record(cli, model, tmp_path, monkeypatch):
    # e.g. out of memory on a very long sequence: one line of ours naming the record, no ORT log
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    import rnaloc_tools.predict as predict

    def fail(self, x, lengths):
        raise Fail("[ONNXRuntimeError] : 1 : FAIL : Failed to allocate memory for requested buffer\nmore detail")

    monkeypatch.setattr(predict.OnnxModel, "run", fail)
    fasta = tmp_path / "in.fa"
    fasta.write_text(">short\nACGUACGU\n>long\n" + "ACGU" * 50 + "\n")
    line = _fails(cli, tmp_path, fasta, "--model", model)
    assert "in.fa: record 'long'" in line and "ONNX Runtime failed" in line and "200 positions" in line and "allocate" in line


def test_without_onnxruntime(cli, model, test_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as when neither package is installed
    line = _fails(cli, tmp_path, test_data / "example-miRNA.fa", "--model", model)
    assert "onnxruntime" in line and "rnaloc-tools[cpu]" in line and "[gpu]" in line


def test_cuda_provider_when_absent(cli, model, test_data, tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA is available here")
    line = _fails(cli, tmp_path, test_data / "example-miRNA.fa", "--model", model, "--provider", "cuda")
    assert "no CUDA provider" in line


def test_cuda_provider_that_falls_back_to_cpu(cli, model, test_data, tmp_path, monkeypatch):
    """onnxruntime-gpu without a usable GPU lists CUDA, then quietly runs on the CPU: --provider cuda refuses."""
    import onnxruntime

    real_session = onnxruntime.InferenceSession

    def cpu_only_session(path, options=None, providers=None):
        assert providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return real_session(path, options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(onnxruntime, "InferenceSession", cpu_only_session)
    line = _fails(cli, tmp_path, test_data / "example-miRNA.fa", "--model", model, "--provider", "cuda")
    assert "could not start CUDA" in line and "--gpus all" in line
    out = tmp_path / "auto.tsv"  # auto takes the CPU, and says so
    result = cli("predict", test_data / "example-miRNA.fa", "--model", model, "-o", out)
    assert result.exit_code == 0 and "CPUExecutionProvider" in result.stderr


def test_illegal_letters(cli, model, tmp_path):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">s1\nACGUXX\n")
    line = _fails(cli, tmp_path, fasta, "--model", model)
    assert "'s1'" in line and "illegal letter" in line


def test_no_model_is_a_usage_error(cli, test_data):
    result = cli("predict", test_data / "example-miRNA.fa")
    assert result.exit_code == 2 and "--rna-type" in result.stderr


def test_length_buckets_cover_every_sequence_once_within_the_caps():
    from rnaloc_tools.model.batching import bucket_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 5000, 300)
    for kwargs in ({}, {"rng": np.random.default_rng(1)}):
        batches = bucket_batches(lengths, 16, max_tokens=40000, max_pairs=1 << 24, **kwargs)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(300))
        for b in batches:
            width = lengths[b].max()
            assert len(b) <= 16
            assert len(b) == 1 or (width * len(b) <= 40000 and width * width * len(b) <= 1 << 24)
        if not kwargs:  # prediction: longest first, so padding stays low
            widths = [lengths[b].max() for b in batches]
            assert widths == sorted(widths, reverse=True)


def test_predict_imports_neither_torch_nor_scikit_learn(test_data, tmp_path):
    """`rnaloc predict` with a bundled model needs numpy, pandas and ONNX Runtime only: torch
    (~2 s) and scikit-learn (0.8 s) would be paid by every run, every Galaxy task and shard."""
    code = (
        "import sys\n"
        "from rnaloc_tools.cli import main\n"
        f"sys.argv = ['rnaloc', 'predict', {str(test_data / 'example-miRNA.fa')!r}, '--rna-type', 'miRNA', "
        f"'-o', {str(tmp_path / 'p.tsv')!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "p.tsv").exists()
