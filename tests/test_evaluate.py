"""rnaloc evaluate, and the whole chain on real data: embed -> train -> export-onnx -> predict -> evaluate."""

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from rnaloc_tools.formats import read_table

from conftest import leftovers, one_error_line

CLASSES = ["extracellular", "intracellular"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _metrics(path):
    return read_table(path).df.set_index("metric")


def test_full_chain_on_real_data(cli, test_data, tmp_path):
    """32 real miRNAs: one-hot embed, 5-fold CV training, ONNX export, predict the held-out rows, evaluate."""
    dataset = test_data / "model-miRNA.tsv"
    npz, model, onnx_model = tmp_path / "e.npz", tmp_path / "m.pt", tmp_path / "m.onnx"
    assert cli("embed", dataset, "--encoder", "one-hot", "-o", npz).exit_code == 0
    result = cli("train", dataset, npz, "-o", model, "--folds", 5, "--epochs", 3, "--seed", 0)
    assert result.exit_code == 0, result.stderr
    assert len(read_table(tmp_path / "m.report" / "cv_metrics.tsv").df) == 5 + 3
    result = cli("export-onnx", model, "-o", onnx_model)
    assert result.exit_code == 0, result.stderr
    rows = read_table(dataset)
    test_rows = rows.df[rows.df["split"] == "test"]
    test_tsv = tmp_path / "test.tsv"
    test_rows.to_csv(test_tsv, sep="\t", index=False)
    predictions = tmp_path / "p.tsv"
    result = cli("predict", test_tsv, "--model", onnx_model, "-o", predictions)
    assert result.exit_code == 0, result.stderr
    metrics_tsv = tmp_path / "metrics.tsv"
    result = cli("evaluate", predictions, test_tsv, "-o", metrics_tsv, "--bootstrap", 200)
    assert result.exit_code == 0, result.stderr
    assert "accuracy" in result.stderr and result.stdout == ""
    pred = read_table(predictions).df
    assert list(pred["id"]) == list(test_rows["id"])
    got = _metrics(metrics_tsv)
    truth = test_rows.set_index("id").loc[pred["id"], "label"]
    assert float(got.loc["accuracy", "value"]) == pytest.approx(accuracy_score(truth, pred["prediction"]), abs=1e-4)
    assert int(got.loc["n", "value"]) == len(test_rows) == 6
    cells = [f"confusion_true_{t}_predicted_{p}" for t in CLASSES for p in CLASSES]
    assert sum(int(got.loc[c, "value"]) for c in cells) == 6
    # The final model's own score on the split=test rows (train) agrees with predict + evaluate.
    train_table = read_table(tmp_path / "m.report" / "cv_metrics.tsv").df.set_index("fold")
    assert float(train_table.loc["final-model-on-test-split", "accuracy"]) == pytest.approx(
        float(got.loc["accuracy", "value"]), abs=1e-4)


def _write(path, df):
    df.to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture
def known(tmp_path):
    """8 labelled rows and predictions with 6 right: ACC 0.75."""
    labels = ["extracellular"] * 4 + ["intracellular"] * 4
    preds = ["extracellular", "extracellular", "extracellular", "intracellular",
             "intracellular", "intracellular", "intracellular", "extracellular"]
    p_intra = [0.1, 0.2, 0.3, 0.6, 0.9, 0.8, 0.7, 0.4]
    ids = [f"s{i}" for i in range(8)]
    data = pd.DataFrame({"id": ids, "rna_type": "miRNA", "label": labels, "sequence": "ACGUACGU"})
    pred = pd.DataFrame({"id": ids[::-1], "rna_type": "miRNA", "prediction": preds[::-1],
                         "probability_extracellular": [1 - p for p in p_intra][::-1],
                         "probability_intracellular": p_intra[::-1]})
    return _write(tmp_path / "data.tsv", data), _write(tmp_path / "pred.tsv", pred), data, pred


def test_known_values_and_seeded_bootstrap(cli, known, tmp_path):
    data, pred, df, pf = known
    result = cli("evaluate", pred, data, "--seed", 4)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#rnaloc evaluate") and lines[1] == "metric\tvalue\tci95_low\tci95_high"
    out = tmp_path / "m.tsv"
    out.write_text(result.stdout)
    got = _metrics(out)
    truth = df.set_index("id").loc[pf["id"], "label"]
    assert float(got.loc["accuracy", "value"]) == 0.75
    assert float(got.loc["macro_f1", "value"]) == pytest.approx(f1_score(truth, pf["prediction"], average="macro"), abs=1e-4)
    assert float(got.loc["mcc", "value"]) == pytest.approx(matthews_corrcoef(truth, pf["prediction"]), abs=1e-4)
    assert float(got.loc["auroc", "value"]) == pytest.approx(15 / 16, abs=1e-4)
    for metric in ("accuracy", "macro_f1", "auroc"):
        low, value, high = (float(got.loc[metric, c]) for c in ("ci95_low", "value", "ci95_high"))
        assert 0 <= low <= value <= high <= 1 and low < high
    assert got.loc["confusion_true_intracellular_predicted_extracellular", "value"] == "1"
    again = cli("evaluate", pred, data, "--seed", 4)
    other = cli("evaluate", pred, data, "--seed", 5)
    assert again.stdout.splitlines()[1:] == lines[1:]
    assert other.stdout.splitlines()[1:] != lines[1:]


def _fails(cli, tmp_path, pred, data):
    out = tmp_path / "metrics.tsv"
    result = cli("evaluate", pred, data, "-o", out, "--bootstrap", 10)
    line = one_error_line(result, "evaluate")
    assert not out.exists() and leftovers(tmp_path) == []
    return line


def test_prediction_ids_not_in_the_dataset(cli, known, tmp_path):
    data, _, df, pf = known
    pred = _write(tmp_path / "p2.tsv", pf.assign(id=[*pf["id"][:-1], "stranger"]))
    line = _fails(cli, tmp_path, pred, data)
    assert "'stranger'" in line and "not found in the dataset" in line


def test_dataset_ids_without_prediction(cli, known, tmp_path):
    data, _, df, pf = known
    pred = _write(tmp_path / "p2.tsv", pf.iloc[:-1])
    line = _fails(cli, tmp_path, pred, data)
    assert "1 dataset id(s) have no prediction" in line and "'s0'" in line


def test_rna_type_mismatch(cli, known, tmp_path):
    _, pred, df, pf = known
    data = _write(tmp_path / "d2.tsv", df.assign(rna_type="circRNA", label=["nucleus"] * 4 + ["cytoplasm"] * 4))
    line = _fails(cli, tmp_path, pred, data)
    assert "rna_type circRNA in the dataset but miRNA in the predictions" in line


def test_prediction_outside_the_classes(cli, known, tmp_path):
    data, _, df, pf = known
    bad = pf.copy()
    bad.loc[2, "prediction"] = "nucleus"
    line = _fails(cli, tmp_path, _write(tmp_path / "p2.tsv", bad), data)
    assert "'nucleus' is not a class of miRNA" in line and repr(bad.loc[2, "id"]) in line


def test_missing_probability_column(cli, known, tmp_path):
    data, _, df, pf = known
    line = _fails(cli, tmp_path, _write(tmp_path / "p2.tsv", pf.drop(columns=["probability_intracellular"])), data)
    assert "probability_intracellular" in line


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5", "1.7"])
def test_probability_that_is_not_a_probability(cli, known, tmp_path, value):
    data, _, df, pf = known
    bad = pf.astype({"probability_intracellular": object})
    bad.loc[3, "probability_intracellular"] = value
    line = _fails(cli, tmp_path, _write(tmp_path / "p2.tsv", bad), data)
    assert repr(bad.loc[3, "id"]) in line and "is not a probability" in line


def test_output_folder_missing_fails_before_work(cli, known, tmp_path):
    data, pred, _, _ = known
    result = cli("evaluate", pred, data, "-o", tmp_path / "nodir" / "m.tsv", "--bootstrap", 10)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "does not exist" in lines[0], lines


def test_label_outside_the_classes_in_the_dataset(cli, known, tmp_path):
    _, pred, df, pf = known
    bad = df.copy()
    bad.loc[0, "label"] = "mitochondrion"
    line = _fails(cli, tmp_path, pred, _write(tmp_path / "d2.tsv", bad))
    assert "'s0'" in line and "'mitochondrion' is not a class of miRNA" in line


def test_vectorised_bootstrap_metrics_equal_scikit_learn():
    import numpy as np

    from rnaloc_tools.model.metrics import METRICS, compute_metrics, resampled_metrics

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 40)
    prob = np.round(rng.random(40), 1)  # ties in the scores
    pred = (prob > 0.5).astype(int)
    idx = rng.integers(0, 40, (30, 40))
    idx[0] = np.flatnonzero(y == 1)[0]  # a resample of one class: AUROC undefined
    idx[1] = np.flatnonzero(pred == 0)[:1].repeat(40)  # one predicted class: MCC 0
    fast = resampled_metrics(y, pred, prob, idx)
    for r in range(len(idx)):
        ref = compute_metrics(y[idx[r]], pred[idx[r]], prob[idx[r]])
        for m in METRICS:
            assert fast[m][r] == pytest.approx(ref[m], abs=1e-12, nan_ok=True), (r, m)
