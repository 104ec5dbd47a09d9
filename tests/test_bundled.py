"""The bundled default models (rnaloc_tools/models/*.onnx): load, metadata, predictions, quality.

The quality check runs each bundled model on the train.tsv it was fitted on
(datasets/, always present) and asks for accuracy, macro F1 and AUROC above
stated minimums, a few points under what the fitted model reaches there: an
untrained, wrong-class-order, wrong-RNA-type or constant model fails them. The
cross-validated (held-out) metrics are in the model cards and metadata; the
miRNA rebuild test checks that the training workflow reproduces the shipped model.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from rnaloc_tools import CLASSES, RNA_TYPES
from rnaloc_tools.bundled import bundled_models

ort = pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[1]

#: rna_type -> minimum (ACC, macro F1, AUROC) on its own train.tsv
MINIMUM = {
    "miRNA": (0.88, 0.87, 0.92),
    "lncRNA": (0.95, 0.95, 0.98),  # k <= 7 with 21,844 features nearly memorises its 1,080 rows
    "circRNA": (0.76, 0.68, 0.74),
}


def read_predictions(text):
    return pd.read_csv(pd.io.common.StringIO(text), sep="\t", comment="#")


def test_every_rna_type_has_a_bundled_model():
    assert sorted(bundled_models()) == sorted(RNA_TYPES)


@pytest.mark.parametrize("rna_type", RNA_TYPES)
def test_bundled_model_loads_with_metadata(rna_type):
    path = Path(bundled_models()[rna_type])
    assert path.stat().st_size < 2_000_000
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["embeddings", "lengths"]
    assert [o.name for o in session.get_outputs()] == ["probabilities", "attention"]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["rna_type"] == rna_type
    assert json.loads(meta["classes"]) == list(CLASSES[rna_type])
    assert json.loads(meta["encoder"])["encoder"] == "one-hot"
    assert meta["arch"] == "kmer"
    card = json.loads((path.parent / f"{rna_type}.json").read_text())
    assert card["rna_type"] == rna_type and card["training"]["cv"]["cv_ACC"][0] > 0.7


@pytest.mark.parametrize("rna_type", RNA_TYPES)
def test_bundled_model_predicts_the_example(cli, test_data, tmp_path, rna_type):
    fasta = test_data / f"example-{rna_type}.fa"
    att = tmp_path / "att.npz"
    res = cli("predict", fasta, "--rna-type", rna_type, "--attention", att)
    assert res.exit_code == 0, res.stderr
    pred = read_predictions(res.stdout)
    truth = pd.read_csv(test_data / f"example-{rna_type}.tsv", sep="\t", comment="#")
    assert list(pred.id) == list(truth.id)
    probs = pred[[f"probability_{c}" for c in CLASSES[rna_type]]].to_numpy()
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert set(pred.prediction) <= set(CLASSES[rna_type])
    with np.load(att) as z:
        offsets, weights = z["offsets"], z["attention"] if "attention" in z else z["embeddings"]
        for i, n in enumerate(truth.sequence.str.len()):
            w = np.asarray(weights[offsets[i] : offsets[i + 1]], dtype=np.float64).ravel()
            assert len(w) == n and (w >= 0).all() and w.sum() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("rna_type", RNA_TYPES)
def test_bundled_model_quality_on_its_training_data(cli, datasets, rna_type):
    res = cli("predict", datasets / rna_type / "train.tsv.gz", "--rna-type", rna_type)
    assert res.exit_code == 0, res.stderr
    pred = read_predictions(res.stdout)
    truth = pd.read_csv(datasets / rna_type / "train.tsv.gz", sep="\t", comment="#")
    assert list(pred.id) == list(truth.id)
    positive = CLASSES[rna_type][1]
    acc = accuracy_score(truth.label, pred.prediction)
    f1 = f1_score(truth.label, pred.prediction, average="macro")
    auroc = roc_auc_score(truth.label == positive, pred[f"probability_{positive}"])
    lo_acc, lo_f1, lo_auc = MINIMUM[rna_type]
    assert acc >= lo_acc and f1 >= lo_f1 and auroc >= lo_auc, (acc, f1, auroc)


def test_workflow_rebuilds_the_bundled_mirna_model(datasets, tmp_path):
    """train_bundled.py + export-onnx on datasets/ give the shipped miRNA model's predictions."""
    from rnaloc_tools.model.onnx_export import export_onnx

    card = json.loads((REPO / "rnaloc_tools" / "models" / "miRNA.json").read_text())
    hp, tr = card["architecture"]["hparams"], card["training"]
    cmd = [sys.executable, str(REPO / "workflows" / "bundled-models" / "train_bundled.py"), "--data", str(datasets),
           "--rna-type", "miRNA", "--kmax", str(hp["kmax"]), "--C", str(tr["C"]), "--class-weight", tr["class_weight"],
           "--bias", str(tr["decision_bias"]), "-o", str(tmp_path / "m.pt")]
    if len(tr["data"]) > 1:
        cmd.append("--extra")
    subprocess.run(cmd, check=True, capture_output=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    export_onnx(tmp_path / "m.pt", tmp_path / "m.onnx")
    from rnaloc_tools.encoders.onehot import one_hot

    seqs = pd.read_csv(datasets / "miRNA" / "train.tsv.gz", sep="\t", comment="#").sequence[:200]
    shipped = ort.InferenceSession(bundled_models()["miRNA"], providers=["CPUExecutionProvider"])
    rebuilt = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for s in seqs:
        feed = {"embeddings": one_hot(s.replace("T", "U"))[None], "lengths": np.array([len(s)], dtype=np.int64)}
        a, b = shipped.run(None, feed), rebuilt.run(None, feed)
        np.testing.assert_allclose(a[0], b[0], atol=1e-6)
        np.testing.assert_allclose(a[1], b[1], atol=1e-6)
