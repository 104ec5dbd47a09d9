"""rnaloc evaluate, and the whole chain on real data: embed -> train -> export-onnx -> predict -> evaluate."""

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from rnaloc_tools.formats import read_table

from conftest import leftovers, one_error_line

CLASSES = ["extracellular", "intracellular"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _metrics(path, predictor="model"):
    df = read_table(path).df
    return df[df["predictor"] == predictor].set_index("metric")


def test_full_chain_on_real_data(cli, test_data, tmp_path):
    """32 real miRNAs: one-hot embed, 5-fold CV training, ONNX export, predict the held-out rows, evaluate."""
    dataset = test_data / "model-miRNA.tsv"
    npz, model, onnx_model = tmp_path / "e.npz", tmp_path / "m.pt", tmp_path / "m.onnx"
    assert cli("embed", dataset, "--encoder", "one-hot", "-o", npz).exit_code == 0
    result = cli("train", dataset, npz, "-o", model, "--folds", 5, "--epochs", 3, "--seed", 0)
    assert result.exit_code == 0, result.stderr
    cv_table = read_table(tmp_path / "m.report" / "cv_metrics.tsv").df
    assert len(cv_table[cv_table["predictor"] == "model"]) == 5 + 3
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
    train_table = read_table(tmp_path / "m.report" / "cv_metrics.tsv").df.set_index(["predictor", "fold"])
    assert float(train_table.loc[("model", "final-model-on-test-split"), "accuracy"]) == pytest.approx(
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
    assert lines[0].startswith("#rnaloc evaluate") and lines[1] == "predictor\tmetric\tvalue\tci95_low\tci95_high"
    out = tmp_path / "m.tsv"
    out.write_text(result.stdout)
    got = _metrics(out)
    truth = df.set_index("id").loc[pf["id"], "label"]
    assert float(got.loc["accuracy", "value"]) == 0.75
    assert float(got.loc["macro_f1", "value"]) == pytest.approx(f1_score(truth, pf["prediction"], average="macro"), abs=1e-4)
    assert float(got.loc["mcc", "value"]) == pytest.approx(matthews_corrcoef(truth, pf["prediction"]), abs=1e-4)
    assert float(got.loc["auroc", "value"]) == pytest.approx(15 / 16, abs=1e-4)
    p_intra = pf.set_index("id").loc[df["id"], "probability_intracellular"].to_numpy()
    y = (df["label"] == "intracellular").to_numpy()
    assert float(got.loc["brier", "value"]) == pytest.approx(((p_intra - y) ** 2).mean(), abs=1e-4)
    # ECE, 10 equal-width bins: every probability sits alone in its bin -> mean |p - y|
    assert float(got.loc["ece", "value"]) == pytest.approx(abs(p_intra - y).mean(), abs=1e-4)
    assert set(read_table(out).df["predictor"]) == {"model"}  # no baselines without --baseline-train
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


# --- calibration metrics ------------------------------------------------------------------------


def test_ece_and_reliability_by_hand():
    import numpy as np
    from sklearn.calibration import calibration_curve

    from rnaloc_tools.model.metrics import calibration_bins, expected_calibration_error, reliability

    assert calibration_bins([0.0, 0.05, 0.1, 0.15, 0.95, 1.0]).tolist() == [0, 0, 1, 1, 9, 9]
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.12, 0.18, 0.14, 0.82, 0.86, 0.55])
    # bins: [0.1,0.2): y 0,0,1 p .12,.18,.14 -> |1/3 - .1467|; [0.5,0.6): |0 - .55|; [0.8,0.9): |1 - .84|
    expected = (3 * abs(1 / 3 - 0.44 / 3) + 0.55 + 2 * 0.16) / 6
    assert expected_calibration_error(y, p) == pytest.approx(expected)
    table = reliability(y, p)
    observed, predicted = calibration_curve(y, p, n_bins=10)
    assert table["observed"].to_numpy() == pytest.approx(observed)
    assert table["predicted"].to_numpy() == pytest.approx(predicted)
    assert table["n"].tolist() == [3, 1, 2]
    assert expected_calibration_error(y, y.astype(float)) == 0.0


# --- baselines ----------------------------------------------------------------------------------


@pytest.fixture
def baseline_train(tmp_path):
    """20 training miRNAs: short ones extracellular, long ones intracellular (and one of each the other way)."""
    import numpy as np

    rng = np.random.default_rng(0)
    lengths = [18, 20, 21, 22, 22, 23, 24, 25, 70, 60, 65, 70, 72, 80, 85, 90, 95, 100, 110, 22]
    labels = ["extracellular"] * 8 + ["extracellular"] + ["intracellular"] * 10 + ["intracellular"]
    seqs = ["".join(rng.choice(list("ACGU"), n)) for n in lengths]
    df = pd.DataFrame({"id": [f"t{i}" for i in range(20)], "rna_type": "miRNA", "label": labels, "sequence": seqs})
    return _write(tmp_path / "train.tsv", df), df


@pytest.fixture
def scored(tmp_path):
    """10 labelled test miRNAs of varied length and the predictions of a model that ignores length."""
    import numpy as np

    rng = np.random.default_rng(1)
    lengths = [19, 21, 23, 24, 30, 62, 75, 88, 96, 22]
    labels = ["extracellular"] * 5 + ["intracellular"] * 5
    ids = [f"s{i}" for i in range(10)]
    data = pd.DataFrame({"id": ids, "rna_type": "miRNA", "label": labels,
                         "sequence": ["".join(rng.choice(list("ACGU"), n)) for n in lengths]})
    p_intra = [0.3, 0.6, 0.2, 0.45, 0.7, 0.8, 0.4, 0.9, 0.65, 0.35]
    pred = pd.DataFrame({"id": ids, "rna_type": "miRNA",
                         "prediction": ["intracellular" if p > 0.5 else "extracellular" for p in p_intra],
                         "probability_extracellular": [round(1 - p, 2) for p in p_intra],
                         "probability_intracellular": p_intra})
    return _write(tmp_path / "test.tsv", data), _write(tmp_path / "pred.tsv", pred), data, pred


def test_baselines_beside_the_model(cli, scored, baseline_train, tmp_path):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from rnaloc_tools.model.metrics import bootstrap_indices, compute_metrics, resampled_metrics

    data, pred, df, pf = scored
    train, tf = baseline_train
    out = tmp_path / "m.tsv"
    result = cli("evaluate", pred, data, "--baseline-train", train, "-o", out, "--bootstrap", 200, "--seed", 7)
    assert result.exit_code == 0, result.stderr
    table = read_table(out).df
    assert table["predictor"].unique().tolist() == ["model", "majority", "length", "model_minus_length"]
    # the length baseline: a logistic regression on standardised log length, fitted on train.tsv
    x = np.log(tf["sequence"].str.len().to_numpy(float))
    y_train = (tf["label"] == "intracellular").astype(int)
    lr = LogisticRegression().fit(((x - x.mean()) / x.std())[:, None], y_train)
    x_test = np.log(df["sequence"].str.len().to_numpy(float))
    prob = lr.predict_proba(((x_test - x.mean()) / x.std())[:, None])[:, 1]
    y = (df["label"] == "intracellular").astype(int).to_numpy()
    ref = compute_metrics(y, (prob > 0.5).astype(int), prob)
    length = _metrics(out, "length")
    for m in ("accuracy", "mcc", "auroc", "brier", "ece"):
        assert float(length.loc[m, "value"]) == pytest.approx(ref[m], abs=1e-4), m
    # the majority baseline: always the more frequent training class (intracellular, 11 of 20)
    majority = _metrics(out, "majority")
    assert float(majority.loc["accuracy", "value"]) == 0.5 and float(majority.loc["auroc", "value"]) == 0.5
    assert majority.loc["confusion_true_extracellular_predicted_intracellular", "value"] == "5"
    assert float(majority.loc["brier", "value"]) == pytest.approx(((0.55 - y) ** 2).mean(), abs=1e-4)
    # paired differences, model minus length, on the same resamples
    model = _metrics(out, "model")
    diff = _metrics(out, "model_minus_length")
    assert diff.index.tolist() == ["accuracy", "mcc", "auroc"]
    p_model = pf["probability_intracellular"].to_numpy()
    pred_model = (p_model > 0.5).astype(int)
    idx = bootstrap_indices(10, 200, 7)
    a = resampled_metrics(y, pred_model, p_model, idx)
    b = resampled_metrics(y, (prob > 0.5).astype(int), prob, idx)
    for m in ("accuracy", "mcc", "auroc"):
        assert float(diff.loc[m, "value"]) == pytest.approx(
            float(model.loc[m, "value"]) - float(length.loc[m, "value"]), abs=2e-4)
        d = (a[m] - b[m])[~np.isnan(a[m] - b[m])]
        assert float(diff.loc[m, "ci95_low"]) == pytest.approx(np.quantile(d, 0.025), abs=1e-4)
        assert float(diff.loc[m, "ci95_high"]) == pytest.approx(np.quantile(d, 0.975), abs=1e-4)
    # the model's own rows and intervals do not change when baselines are added
    alone = tmp_path / "alone.tsv"
    assert cli("evaluate", pred, data, "-o", alone, "--bootstrap", 200, "--seed", 7).exit_code == 0
    assert read_table(alone).df.equals(table[table["predictor"] == "model"].reset_index(drop=True))
    summary = [line for line in result.stderr.splitlines() if "model minus the length-only baseline" in line]
    assert len(summary) == 1 and f"accuracy {float(diff.loc['accuracy', 'value']):+.3f}" in summary[0]


def test_overlap_with_the_baseline_training_set_is_said(cli, scored, baseline_train, tmp_path):
    data, pred, df, pf = scored
    _, tf = baseline_train
    train = _write(tmp_path / "train2.tsv", pd.concat([tf, df.head(2)]))
    result = cli("evaluate", pred, data, "--baseline-train", train, "--bootstrap", 10)
    assert result.exit_code == 0, result.stderr
    assert "2 of the 10 scored sequences are also in the baseline training set" in result.stderr


def _fails_with_baseline(cli, tmp_path, pred, data, train, plots=None):
    out = tmp_path / "metrics.tsv"
    args = ["evaluate", pred, data, "--baseline-train", train, "-o", out, "--bootstrap", 10]
    if plots is not None:
        args += ["--plots", plots]
    line = one_error_line(cli(*args), "evaluate")
    assert not out.exists() and leftovers(tmp_path) == []
    assert plots is None or not (tmp_path / "plots").exists()
    return line


def test_baseline_train_of_another_rna_type(cli, scored, baseline_train, tmp_path):
    data, pred, _, _ = scored
    _, tf = baseline_train
    other = tf.assign(rna_type="lncRNA", label=["nucleus"] * 10 + ["cytoplasm"] * 10)
    train = _write(tmp_path / "lnc.tsv", other)
    line = _fails_with_baseline(cli, tmp_path, pred, data, train, tmp_path / "plots")
    assert "lnc.tsv" in line and "rna_type lncRNA" in line and "predictions are miRNA" in line


def test_baseline_train_without_sequences(cli, scored, baseline_train, tmp_path):
    data, pred, _, _ = scored
    _, tf = baseline_train
    train = _write(tmp_path / "noseq.tsv", tf.drop(columns=["sequence"]))
    line = _fails_with_baseline(cli, tmp_path, pred, data, train, tmp_path / "plots")
    assert "noseq.tsv" in line and "missing column(s) sequence" in line
    empty = tf.astype(object)
    empty.loc[3, "sequence"] = ""
    line = _fails_with_baseline(cli, tmp_path, pred, data, _write(tmp_path / "emptyseq.tsv", empty))
    assert "emptyseq.tsv" in line and "'t3'" in line


def test_baseline_train_with_one_class(cli, scored, baseline_train, tmp_path):
    data, pred, _, _ = scored
    _, tf = baseline_train
    train = _write(tmp_path / "one.tsv", tf[tf["label"] == "intracellular"])
    line = _fails_with_baseline(cli, tmp_path, pred, data, train, tmp_path / "plots")
    assert "one.tsv" in line and "only one class (intracellular)" in line


# --- plots --------------------------------------------------------------------------------------


def test_plots_written_and_repeatable(cli, scored, baseline_train, tmp_path):
    data, pred, _, _ = scored
    train, _ = baseline_train
    for name in ("a", "b"):
        result = cli("evaluate", pred, data, "--baseline-train", train, "--plots", tmp_path / name, "--bootstrap", 10,
                     "-o", tmp_path / f"{name}.tsv")
        assert result.exit_code == 0, result.stderr
    for png in ("roc.png", "precision_recall.png", "reliability.png"):
        a, b = (tmp_path / "a" / png).read_bytes(), (tmp_path / "b" / png).read_bytes()
        assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b, png
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["precision_recall.png", "reliability.png", "roc.png"]
    # without baselines: the model alone
    result = cli("evaluate", pred, data, "--plots", tmp_path / "c", "--bootstrap", 10)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "c" / "roc.png").read_bytes() != (tmp_path / "a" / "roc.png").read_bytes()


def test_plots_drawn_with_every_predictor(scored, baseline_train):
    """The curves on the axes are those of the model and both baselines (checked on the figure, not the PNG)."""
    from unittest import mock

    import matplotlib

    matplotlib.use("Agg")
    from rnaloc_tools.model import plots
    from rnaloc_tools.model.evaluation import evaluate_predictions

    data, pred, _, _ = scored
    train, _ = baseline_train
    result = evaluate_predictions(pred, data, baseline_train=train, n_bootstrap=10)
    figures = []
    with mock.patch.object(plots, "save_png", lambda fig, path: figures.append(fig)):
        plots.write_plots(result, "unused")
    roc, pr, rel = figures
    labels = [t.get_text() for t in roc.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("model  AUROC") and labels[1].startswith("length only") and "majority" in labels[2]
    assert "false positive rate (extracellular RNAs called intracellular)" == roc.axes[0].get_xlabel()
    assert len([t for t in pr.axes[0].get_legend().get_texts()]) == 3
    assert "ECE" in rel.axes[0].get_legend().get_texts()[1].get_text()


@pytest.mark.parametrize("case", ["file", "missing-parent", "read-only"])
def test_plots_folder_that_cannot_be_written(cli, scored, baseline_train, tmp_path, case, request):
    data, pred, _, _ = scored
    train, _ = baseline_train
    work = tmp_path / "work"
    work.mkdir()
    if case == "file":
        plots = work / "plots"
        plots.write_text("not a folder")
    elif case == "missing-parent":
        plots = work / "no" / "plots"
    else:
        plots = request.getfixturevalue("read_only_folder") / "plots"
    out = work / "m.tsv"
    result = cli("evaluate", pred, data, "--baseline-train", train, "--plots", plots, "-o", out, "--bootstrap", 10)
    line = one_error_line(result, "evaluate")
    assert str(plots) in line
    assert not out.exists() and leftovers(work) == []
    assert case == "file" or not plots.exists()
