"""rnaloc export-onnx: dynamic shapes, metadata, checker, ONNX Runtime == PyTorch, refusals."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from rnaloc_tools.model.checkpoint import load_checkpoint
from rnaloc_tools.model.training import TrainConfig, train_to_files

from conftest import leftovers, one_error_line

#: |ONNX Runtime - PyTorch| accepted in these tests (float32; the tool's own default is 1e-4).
TOLERANCE = 1e-4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, test_data):
    """{arch: checkpoint path} of two tiny miRNA models (one-hot, 2 epochs, no CV)."""
    from rnaloc_tools.embed import embed_records
    from rnaloc_tools.encoders import get_encoder
    from rnaloc_tools.formats import read_records

    folder = tmp_path_factory.mktemp("onnx")
    dataset = test_data / "model-miRNA.tsv"
    npz = folder / "e.npz"
    embed_records(read_records(dataset), get_encoder("one-hot"), npz)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    for arch, hparams in (("rnaloc", {}), ("transformer", {"layers": 1, "d_model": 16, "heads": 2})):
        out[arch] = folder / f"{arch}.pt"
        train_to_files(dataset, [npz], out[arch], TrainConfig(arch=arch, hparams=hparams, folds=0, epochs=2))
    torch.set_num_threads(threads)
    return out


def _inputs(lengths, dim=4, seed=5):
    rng = np.random.default_rng(seed)
    x = np.zeros((len(lengths), max(lengths), dim), dtype=np.float32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.random((n, dim), dtype=np.float32)
    return x, np.array(lengths, dtype=np.int64)


@pytest.mark.parametrize("arch", ["rnaloc", "transformer"])
def test_export_matches_pytorch_at_unseen_shapes(cli, checkpoints, tmp_path, arch):
    out = tmp_path / "m.onnx"
    result = cli("export-onnx", checkpoints[arch], "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "matches PyTorch" in result.stderr and result.stdout == ""
    proto = onnx.load(out)
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["rna_type"] == "miRNA" and json.loads(meta["classes"]) == ["extracellular", "intracellular"]
    assert json.loads(meta["encoder"])["encoder"] == "one-hot" and meta["arch"] == arch
    assert json.loads(meta["hparams"])["dim"] == 4 and meta["tool_version"]
    assert meta["quadratic_in_length"] == "true"  # predict keeps batches of long sequences small
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert dims == {"embeddings": ["batch", "length", 4], "lengths": ["batch"]}
    model, _, _ = load_checkpoint(checkpoints[arch])
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    # lengths the export (37, 21) never saw; one below the largest kernel; batch sizes 1..4
    for lengths in ([1], [250], [80, 3, 45], [9, 500, 2, 64]):
        x, lens = _inputs(lengths)
        probs, attention = session.run(["probabilities", "attention"], {"embeddings": x, "lengths": lens})
        with torch.no_grad():
            logits, ref_attention = model(torch.from_numpy(x), torch.from_numpy(lens))
        assert probs.shape == (len(lengths), 2) and attention.shape == x.shape[:2]
        assert np.abs(probs - torch.softmax(logits, 1).numpy()).max() <= TOLERANCE
        assert np.abs(attention - ref_attention.numpy()).max() <= TOLERANCE
        assert np.allclose(probs.sum(1), 1, atol=1e-5) and np.allclose(attention.sum(1), 1, atol=1e-5)


def test_refuses_a_model_that_disagrees(cli, checkpoints, tmp_path, monkeypatch):
    import rnaloc_tools.model.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "compare", lambda *a, **k: 0.25)
    out = tmp_path / "m.onnx"
    line = one_error_line(cli("export-onnx", checkpoints["rnaloc"], "-o", out), "export-onnx")
    assert "not written" in line and "differs from PyTorch by 0.25" in line
    assert not out.exists() and leftovers(tmp_path) == []


def test_refuses_to_overwrite_without_force(cli, checkpoints, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_text("keep")
    assert "already exists" in one_error_line(cli("export-onnx", checkpoints["rnaloc"], "-o", out), "export-onnx")
    assert out.read_text() == "keep"


@pytest.mark.parametrize("kind", ["truncated", "garbage", "other-pickle", "missing"])
def test_corrupted_checkpoint(cli, checkpoints, tmp_path, kind):
    bad = tmp_path / "bad.pt"
    if kind == "truncated":
        data = checkpoints["rnaloc"].read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        bad.write_bytes(b"\x00not a checkpoint" * 10)
    elif kind == "other-pickle":
        torch.save({"weights": torch.zeros(2)}, bad)
    out = tmp_path / "m.onnx"
    line = one_error_line(cli("export-onnx", bad, "-o", out), "export-onnx")
    assert "bad.pt" in line
    assert ("no such file" if kind == "missing" else "checkpoint") in line
    assert not out.exists() and leftovers(tmp_path) == []


def test_checkpoint_loads_with_weights_only(checkpoints):
    ckpt = torch.load(checkpoints["transformer"], weights_only=True)
    assert set(ckpt) >= {"arch", "hparams", "classes", "rna_type", "encoder", "state_dict", "tie_class"}
    assert all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values())
