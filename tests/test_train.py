"""rnaloc train, the heads and the checkpoint."""

import os

import numpy as np
import pandas as pd
import pytest
import torch

from rnaloc_tools.formats import EmbeddingWriter, read_table
from rnaloc_tools.model import build_model
from rnaloc_tools.model.checkpoint import load_checkpoint

from conftest import leftovers, one_error_line

ARCHS = ("rnaloc", "transformer")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mirna(tmp_path_factory, test_data):
    """(dataset TSV, one-hot embeddings NPZ) of the 32-row miRNA excerpt."""
    from click.testing import CliRunner

    from rnaloc_tools.cli import cli

    folder = tmp_path_factory.mktemp("mirna")
    npz = folder / "model-miRNA.npz"
    result = CliRunner().invoke(cli, ["embed", str(test_data / "model-miRNA.tsv"), "--encoder", "one-hot", "-o", str(npz)])
    assert result.exit_code == 0, result.output
    return test_data / "model-miRNA.tsv", npz


def _no_outputs(folder):
    assert not (folder / "m.pt").exists()
    assert not (folder / "m.report").exists() or not any((folder / "m.report").iterdir())
    assert leftovers(folder) == []


# --- the heads ---------------------------------------------------------------------------------


def _batch(lengths, dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths), dim)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randn(n, dim, generator=g)
    return x, torch.tensor(lengths)


@pytest.mark.parametrize("arch", ARCHS)
def test_head_is_batch_invariant_and_keeps_the_attention_contract(arch):
    torch.manual_seed(0)
    model, _ = build_model(arch, dim=4, n_classes=2)
    model.eval()
    lengths = [60, 7, 2, 33]  # 2 is shorter than the largest kernel (5)
    x, lens = _batch(lengths, 4)
    x[1, 7:] = 99.0  # garbage in the padding must not matter
    with torch.no_grad():
        logits, attention = model(x, lens)
        for i, n in enumerate(lengths):
            alone_logits, alone_attention = model(x[i : i + 1, :n], lens[i : i + 1])
            # tolerance: float32 rounding of different matmul shapes
            assert torch.allclose(alone_logits[0], logits[i], atol=1e-5), (arch, n)
            assert torch.allclose(alone_attention[0], attention[i, :n], atol=1e-6), (arch, n)
    assert logits.shape == (4, 2) and attention.shape == (4, 60)
    for i, n in enumerate(lengths):
        assert (attention[i, n:] == 0).all()
        assert (attention[i, :n] >= 0).all()
        assert attention[i].sum().item() == pytest.approx(1.0, abs=1e-5)


def test_backward_lstm_does_not_see_padding():
    """The last valid position's output changes when its predecessor changes, never with the padding."""
    from rnaloc_tools.model.heads import MaskedBiLSTM

    torch.manual_seed(0)
    lstm = MaskedBiLSTM(3, 5, 2)
    x, lens = _batch([6], 3)
    padded = torch.cat([x, torch.randn(1, 4, 3)], dim=1)
    a = lstm(x, lens)
    b = lstm(padded, lens)
    assert torch.allclose(a, b[:, :6], atol=1e-6)
    assert (b[:, 6:] == 0).all()


def test_unknown_architecture_and_hyperparameter():
    from rnaloc_tools.errors import RnalocError

    with pytest.raises(RnalocError, match="unknown architecture"):
        build_model("nope", dim=4)
    with pytest.raises(RnalocError, match="no hyperparameter"):
        build_model("rnaloc", dim=4, wings=2)


# --- rnaloc train -------------------------------------------------------------------------------


def test_train_cross_validates_and_writes_checkpoint_and_report(cli, mirna, tmp_path):
    dataset, npz = mirna
    out = tmp_path / "m.pt"
    result = cli("train", dataset, npz, "-o", out, "--folds", 5, "--epochs", 3, "--seed", 3)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    ckpt = torch.load(out, weights_only=True)  # only plain types: nothing that unpickles code
    assert ckpt["rna_type"] == "miRNA" and ckpt["classes"] == ["extracellular", "intracellular"]
    assert ckpt["encoder"]["encoder"] == "one-hot" and ckpt["encoder"]["dim"] == 4
    assert ckpt["arch"] == "rnaloc" and ckpt["hparams"]["lstm_layers"] == 4 and ckpt["hparams"]["kernels"] == [3, 4, 5]
    assert ckpt["class_counts"] == [13, 13]  # the 6 split=test rows are held out
    model, hp, _ = load_checkpoint(out)
    assert hp.dim == 4 and not model.training
    report = tmp_path / "m.report"
    table = read_table(report / "cv_metrics.tsv")
    assert table.header[0].startswith("#rnaloc train")
    folds = ["1", "2", "3", "4", "5", "mean", "sd", "final-model-on-test-split"]
    assert table.df.columns[:2].tolist() == ["predictor", "fold"]
    for predictor in ("model", "majority", "length", "model_minus_length"):
        assert table.df.loc[table.df["predictor"] == predictor, "fold"].tolist() == folds, predictor
    model_rows = table.df[table.df["predictor"] == "model"]
    metrics = model_rows.set_index("fold")[["accuracy", "macro_f1", "macro_precision", "macro_recall", "brier",
                                            "ece"]].astype(float)
    assert ((metrics >= 0) & (metrics <= 1)).all().all()
    per_fold = metrics.iloc[:5]
    assert metrics.loc["mean", "accuracy"] == pytest.approx(per_fold["accuracy"].mean(), abs=1e-3)
    assert model_rows.set_index("fold").loc["5", "n_test"] != ""
    _check_baselines_on_the_same_folds(table.df, dataset, report)
    cv_baselines = ckpt["training"]["cv_baselines"]
    assert set(cv_baselines) == {"majority", "length", "model_minus_length"}
    assert "the length-only baseline on the same folds" in result.stderr
    oof = read_table(report / "cv_predictions.tsv").df
    data = read_table(dataset).df
    assert sorted(oof["id"]) == sorted(data.loc[data["split"] != "test", "id"])  # every training row once
    assert set(oof["fold"]) == {"1", "2", "3", "4", "5"}
    for png in ("learning_curves.png", "confusion_matrix.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _check_baselines_on_the_same_folds(table, dataset, report):
    """The baseline rows are the baselines fitted on each fold's training part (from the out-of-fold
    predictions' fold column), scored on its held-out part; model_minus_length is the paired difference."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, matthews_corrcoef, roc_auc_score

    data = read_table(dataset).df
    data = data[data["split"] != "test"].set_index("id")
    fold_of = read_table(report / "cv_predictions.tsv").df.set_index("id")["fold"]
    y = (data["label"] == "intracellular").astype(int)
    x = np.log(data["sequence"].str.len().astype(float))
    got = table.set_index(["predictor", "fold"])
    for fold in ["1", "2", "3", "4", "5"]:
        held = fold_of.index[fold_of == fold]
        train = fold_of.index[fold_of != fold]
        mu, sd = x[train].mean(), x[train].std(ddof=0)
        lr = LogisticRegression().fit(((x[train] - mu) / sd).to_frame(), y[train])
        prob = lr.predict_proba(((x[held] - mu) / sd).to_frame())[:, 1]
        pred = (prob > 0.5).astype(int)
        assert float(got.loc[("length", fold), "accuracy"]) == pytest.approx(accuracy_score(y[held], pred), abs=1e-4)
        assert float(got.loc[("length", fold), "mcc"]) == pytest.approx(matthews_corrcoef(y[held], pred), abs=1e-4)
        if y[held].nunique() == 2:
            assert float(got.loc[("length", fold), "auroc"]) == pytest.approx(roc_auc_score(y[held], prob), abs=1e-4)
        majority = int(y[train].mean() > 0.5)
        assert float(got.loc[("majority", fold), "accuracy"]) == pytest.approx((y[held] == majority).mean(), abs=1e-4)
        assert int(got.loc[("length", fold), "n_train"]) == len(train)
        for m in ("accuracy", "mcc"):
            diff = float(got.loc[("model", fold), m]) - float(got.loc[("length", fold), m])
            assert float(got.loc[("model_minus_length", fold), m]) == pytest.approx(diff, abs=2e-4)


def test_training_is_bit_for_bit_repeatable(cli, mirna, tmp_path):
    dataset, npz = mirna
    states = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        out = tmp_path / f"{name}.pt"
        assert cli("train", dataset, npz, "-o", out, "--folds", 2, "--epochs", 2, "--seed", seed).exit_code == 0
        states.append(torch.load(out, weights_only=True)["state_dict"])
        assert (tmp_path / f"{name}.report" / "cv_metrics.tsv").exists()
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])
    a = (tmp_path / "a.report" / "cv_predictions.tsv").read_text().splitlines()[1:]
    b = (tmp_path / "b.report" / "cv_predictions.tsv").read_text().splitlines()[1:]
    assert a == b


def test_train_transformer_baseline_without_cv(cli, mirna, tmp_path):
    dataset, npz = mirna
    out = tmp_path / "t.pt"
    result = cli("train", dataset, npz, "-o", out, "--arch", "transformer", "--folds", 0, "--epochs", 2,
                 "--hparams", '{"layers": 1, "d_model": 16, "heads": 2}')
    assert result.exit_code == 0, result.stderr
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["arch"] == "transformer" and ckpt["hparams"]["d_model"] == 16
    table = read_table(tmp_path / "t.report" / "cv_metrics.tsv").df
    assert table["fold"].tolist() == ["final-model-on-test-split"] * 4
    assert table["predictor"].tolist() == ["model", "majority", "length", "model_minus_length"]
    assert not (tmp_path / "t.report" / "cv_predictions.tsv").exists()


def test_train_refuses_to_overwrite_without_force(cli, mirna, tmp_path):
    dataset, npz = mirna
    out = tmp_path / "m.pt"
    out.write_text("keep me")
    result = cli("train", dataset, npz, "-o", out, "--folds", 0, "--epochs", 1)
    line = one_error_line(result, "train")
    assert "already exists" in line and "--force" in line
    assert out.read_text() == "keep me"
    assert cli("train", dataset, npz, "-o", out, "--folds", 0, "--epochs", 1, "--force").exit_code == 0
    assert torch.load(out, weights_only=True)["rna_type"] == "miRNA"


def _write_dataset(path, df):
    df.to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture
def rows(mirna):
    return read_table(mirna[0]).df.drop(columns=["split"])


def test_dataset_with_one_class(cli, mirna, rows, tmp_path):
    data = _write_dataset(tmp_path / "one.tsv", rows[rows["label"] == "intracellular"])
    line = one_error_line(cli("train", data, mirna[1], "-o", tmp_path / "m.pt"), "train")
    assert "one.tsv" in line and "only one class" in line and "intracellular" in line
    _no_outputs(tmp_path)


def test_fewer_samples_of_a_class_than_folds(cli, mirna, rows, tmp_path):
    few = pd.concat([rows[rows["label"] == "extracellular"], rows[rows["label"] == "intracellular"].head(3)])
    data = _write_dataset(tmp_path / "few.tsv", few)
    line = one_error_line(cli("train", data, mirna[1], "-o", tmp_path / "m.pt", "--folds", 5), "train")
    assert "'intracellular' has 3 training sample(s), fewer than the 5 folds" in line
    _no_outputs(tmp_path)


def test_dataset_ids_missing_from_the_embeddings(cli, mirna, rows, tmp_path):
    extra = rows.head(1).assign(id="not-embedded", sequence="ACGUACGU")
    data = _write_dataset(tmp_path / "more.tsv", pd.concat([rows, extra]))
    line = one_error_line(cli("train", data, mirna[1], "-o", tmp_path / "m.pt"), "train")
    assert "model-miRNA.npz" in line and "'not-embedded'" in line and "no embedding" in line
    _no_outputs(tmp_path)


def test_label_outside_the_classes(cli, mirna, rows, tmp_path):
    bad = rows.copy()
    bad.loc[bad.index[4], "label"] = "nucleus"
    data = _write_dataset(tmp_path / "bad.tsv", bad)
    line = one_error_line(cli("train", data, mirna[1], "-o", tmp_path / "m.pt"), "train")
    assert "bad.tsv" in line and repr(bad["id"].iloc[4]) in line and "'nucleus' is not a class of miRNA" in line
    _no_outputs(tmp_path)


def test_embeddings_of_another_sequence(cli, mirna, rows, tmp_path):
    bad = rows.copy()
    bad.loc[bad.index[2], "sequence"] = "ACGU"
    data = _write_dataset(tmp_path / "other.tsv", bad)
    line = one_error_line(cli("train", data, mirna[1], "-o", tmp_path / "m.pt"), "train")
    assert repr(bad["id"].iloc[2]) in line and "embeddings of another sequence" in line
    _no_outputs(tmp_path)


def test_shards_of_encoders_with_different_dims(cli, mirna, rows, tmp_path):
    other = tmp_path / "other.npz"
    with EmbeddingWriter(other, {"encoder": "one-hot", "dim": 8}) as writer:
        writer.add("x1", np.zeros((5, 8)))
    line = one_error_line(cli("train", mirna[0], mirna[1], other, "-o", tmp_path / "m.pt"), "train")
    assert "other.npz" in line and "dim=8" in line
    _no_outputs(tmp_path)


@pytest.mark.parametrize("arch, hparams, message", [
    ("rnaloc", '{"lstm_layers": 0}', "lstm_layers must be a whole number >= 1"),
    ("rnaloc", '{"attention_heads": 3}', "not divisible by 3 heads"),
    ("rnaloc", '{"dropout": 1.5}', "dropout must be"),
    ("transformer", '{"d_model": 10, "heads": 4}', "not divisible by 4 heads"),
])
def test_bad_hyperparameter_values(cli, mirna, tmp_path, arch, hparams, message):
    # was an "unexpected error" from deep inside torch, after loading the data
    line = one_error_line(cli("train", *mirna, "-o", tmp_path / "m.pt", "--arch", arch, "--hparams", hparams,
                              "--folds", 0, "--epochs", 1), "train")
    assert "bad hyperparameters" in line and message in line
    _no_outputs(tmp_path)


def test_mixed_rna_types(cli, mirna, rows, tmp_path):
    mixed = rows.copy()
    mixed.loc[mixed.index[0], ["rna_type", "label"]] = ["lncRNA", "nucleus"]
    data = _write_dataset(tmp_path / "mixed.tsv", mixed)
    line = one_error_line(cli("train", data, mirna[1], "-o", tmp_path / "m.pt"), "train")
    assert "one model per rna_type" in line
    _no_outputs(tmp_path)


def test_the_dataset_fold_column_is_honoured(cli, mirna, rows, tmp_path):
    with_folds = rows.copy()
    with_folds["fold"] = ["a" if i % 2 else "b" for i in range(len(rows))]
    data = _write_dataset(tmp_path / "folds.tsv", with_folds)
    result = cli("train", data, mirna[1], "-o", tmp_path / "m.pt", "--folds", 5, "--epochs", 1)
    assert result.exit_code == 0, result.stderr
    table = read_table(tmp_path / "m.report" / "cv_metrics.tsv").df
    assert table["predictor"].unique().tolist() == ["model", "majority", "length", "model_minus_length"]
    table = table[table["predictor"] == "model"].set_index("fold")
    assert list(table.index) == ["a", "b", "mean", "sd"]
    assert int(table.loc["a", "n_test"]) == (with_folds["fold"] == "a").sum()
    oof = read_table(tmp_path / "m.report" / "cv_predictions.tsv").df.set_index("id")
    assert (oof.loc[with_folds["id"], "fold"].to_numpy() == with_folds["fold"].to_numpy()).all()


def test_a_fold_whose_held_out_part_has_one_class(cli, mirna, rows, tmp_path):
    # its AUROC is undefined: the sd over folds is NA; training used to crash on it after all the work
    with_folds = rows.copy()
    with_folds["fold"] = ["a" if i % 2 else "b" for i in range(len(rows))]
    with_folds.loc[with_folds["label"] == "extracellular", "fold"] = "a"
    data = _write_dataset(tmp_path / "folds.tsv", with_folds)
    result = cli("train", data, mirna[1], "-o", tmp_path / "m.pt", "--epochs", 1)
    assert result.exit_code == 0, result.stderr
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["training"]["cv"]["cv_auroc"][1] is None
    # held out "a" leaves a training part of one class: its baselines cannot be fitted, said and left empty
    assert "fold a: baselines not fitted (only one class" in result.stderr
    table = read_table(tmp_path / "m.report" / "cv_metrics.tsv").df.set_index(["predictor", "fold"])
    assert table.loc[("length", "a"), "accuracy"] == "" and table.loc[("length", "b"), "accuracy"] != ""


def test_one_fold_is_a_usage_error(cli, mirna, tmp_path):
    result = cli("train", mirna[0], mirna[1], "-o", tmp_path / "m.pt", "--folds", 1)
    assert result.exit_code == 2 and "--folds" in result.stderr
    assert not (tmp_path / "m.pt").exists()


def test_a_sequence_too_long_for_the_attention_head(cli, rows, tmp_path):
    """A 9000-nt one-hot sequence would need ~1.5 GiB of attention per head set: refused before training."""
    import numpy as np

    rng = np.random.default_rng(0)
    long_row = rows.head(1).assign(id="very-long", sequence="".join(rng.choice(list("ACGU"), 9000)))
    data = _write_dataset(tmp_path / "long.tsv", pd.concat([rows, long_row]))
    npz = tmp_path / "long.npz"
    assert cli("embed", data, "--encoder", "one-hot", "-o", npz).exit_code == 0
    line = one_error_line(cli("train", data, npz, "-o", tmp_path / "m.pt"), "train")
    assert "'very-long' has 9000 positions" in line and "--max-len" in line
    _no_outputs(tmp_path)
    # cropped, it trains; the k-mer architecture has no such limit
    assert cli("train", data, npz, "-o", tmp_path / "m.pt", "--max-len", 1022, "--folds", 0, "--epochs", 1).exit_code == 0


# --- device and memory-mapped batches ----------------------------------------------------------


def test_training_data_is_read_from_the_memory_map_not_loaded(mirna):
    """The matrices are read batch by batch from the NPZ: nothing but ids and lengths is held."""
    from rnaloc_tools.formats import EmbeddingStore
    from rnaloc_tools.model.training import StoredMatrices, load_training_data

    dataset, npz = mirna
    data = load_training_data(dataset, [npz], folds=2, max_len=15)
    assert isinstance(data.matrices, StoredMatrices)
    store = EmbeddingStore(npz)
    for i in (0, len(data.ids) - 1):
        whole = store.get(data.ids[i], dtype=np.float16)
        np.testing.assert_array_equal(data.matrices[i], whole[:15])
        assert data.lengths[i] == min(15, whole.shape[0])
    assert data.cropped == int(sum(store.length(r) > 15 for r in data.ids)) > 0


def _rss_kib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmRSS is read from /proc (Linux)")
def test_reading_a_whole_store_does_not_keep_it_resident(tmp_path):
    """Read sequence by sequence, a 256 MB NPZ adds far less than its size to resident memory (pages released)."""
    from rnaloc_tools.formats import EmbeddingStore
    from rnaloc_tools.formats.npz import RELEASE_BYTES

    path = tmp_path / "big.npz"
    rows, dim = 1000, 128  # 256 KB per sequence
    block = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float16)
    with EmbeddingWriter(path, {"encoder": "test", "dim": dim}) as writer:
        for i in range(1024):
            writer.add(f"s{i}", block)
    store = EmbeddingStore(path)
    before = _rss_kib()
    peak = before
    for i in range(1024):
        store.get(f"s{i}", dtype=np.float16)
        if i % 64 == 0:
            peak = max(peak, _rss_kib())
    grown = (max(peak, _rss_kib()) - before) * 1024
    assert RELEASE_BYTES <= 64 << 20
    assert grown < 160 << 20, grown / 2**20  # the file is 256 MiB; released every 64 MiB read


def test_device_selection(monkeypatch):
    from rnaloc_tools import devices
    from rnaloc_tools.errors import RnalocError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve_device("auto") == "cpu" and devices.resolve_device("cpu") == "cpu"
    with pytest.raises(RnalocError, match="--device cuda: CUDA is not available"):
        devices.resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto") == "cuda"


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_mixed_precision_on_cuda_only(monkeypatch, bf16, expected):
    """CUDA: bf16 autocast where the GPU has bf16, else fp16 (with loss scaling); CPU: full precision."""
    from rnaloc_tools.model import training

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert training.autocast_dtype("cuda") is expected
    assert training.autocast_dtype("cpu") is None
    with training._autocast("cpu"):
        assert not torch.is_autocast_enabled()


def test_train_on_cuda_without_a_gpu_is_one_line(cli, mirna, tmp_path):
    dataset, npz = mirna
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    line = one_error_line(cli("train", dataset, npz, "-o", tmp_path / "m.pt", "--device", "cuda"), "train")
    assert "CUDA is not available" in line
    _no_outputs(tmp_path)
