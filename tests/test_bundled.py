"""The bundled default models (rnaloc_tools/models/*.onnx): load, metadata, cards, quality, label sources.

Quality is checked where a wrong model shows: the calls on the held-out example sequences
(test-data/example-*, whole cd-hit-est clusters that no bundled model trained on) and the
AUROC on datasets/ rows. A model with its classes swapped, untrained or constant fails
(test_quality_check_fails_for_a_class_swapped_model shows the check failing). The
cross-validated metrics, beside the majority and length-only baselines on the same folds,
are in the model cards; the miRNA rebuild test checks that the workflow reproduces the
shipped model's bytes.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from rnaloc_tools import CLASSES, RNA_TYPES
from rnaloc_tools.bundled import LABEL_SOURCES, bundled_model_path, bundled_models, model_name

ort = pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "rnaloc_tools" / "models"
#: every bundled model: name -> (rna_type, label_source)
BUNDLED = {"miRNA": ("miRNA", "rnalocate"), "lncRNA": ("lncRNA", "rnalocate"),
           "lncRNA-fractionation": ("lncRNA", "fractionation"), "circRNA": ("circRNA", "rnalocate")}

#: name -> (table of datasets/ to score, minimum AUROC there, minimum accuracy on the held-out examples).
#: The AUROC minimums are on rows the model was trained on (except the held-out clusters), a few points
#: under what it reaches there; the example minimums are well above what a class-swapped model gets.
QUALITY = {
    "miRNA": ("miRNA/train.tsv.gz", 0.90, 0.75),
    "lncRNA": ("lncRNA/train.tsv.gz", 0.95, 0.6),  # 21,845 features nearly memorise ~1,060 rows
    "lncRNA-fractionation": ("lncRNA/extra-rnalight.tsv.gz", 0.78, None),
    "circRNA": ("circRNA/train.tsv.gz", 0.75, 0.6),
}


def read_predictions(text):
    return pd.read_csv(pd.io.common.StringIO(text), sep="\t", comment="#")


def predict(cli, path, name):
    rna_type, source = BUNDLED[name]
    extra = ("--label-source", source) if rna_type == "lncRNA" else ()
    res = cli("predict", path, "--rna-type", rna_type, *extra)
    assert res.exit_code == 0, res.stderr
    return read_predictions(res.stdout)


def auroc(truth, pred, rna_type):
    positive = CLASSES[rna_type][1]
    return roc_auc_score(truth.label == positive, pred[f"probability_{positive}"])


def test_every_rna_type_and_label_source_has_a_bundled_model():
    assert sorted(bundled_models()) == sorted(RNA_TYPES)
    assert sorted(p.stem for p in MODELS.glob("*.onnx")) == sorted(BUNDLED)
    for name, (rna_type, source) in BUNDLED.items():
        assert model_name(rna_type, source) == name
        assert Path(bundled_model_path(rna_type, source)) == MODELS / f"{name}.onnx"


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_metadata_and_card(name):
    rna_type, source = BUNDLED[name]
    path = MODELS / f"{name}.onnx"
    assert path.stat().st_size < 2_000_000
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["embeddings", "lengths"]
    assert [o.name for o in session.get_outputs()] == ["probabilities", "attention"]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["rna_type"] == rna_type and meta.get("label_source") == (source if rna_type == "lncRNA" else None)
    assert json.loads(meta["classes"]) == list(CLASSES[rna_type])
    assert json.loads(meta["encoder"])["encoder"] == "one-hot"
    assert meta["arch"] == "kmer"
    card = json.loads((MODELS / f"{name}.json").read_text())
    assert card["name"] == name and card["rna_type"] == rna_type and card["label_source"] == source
    tr = card["training"]
    assert json.loads(meta["cv_metrics"]) == tr["cv"]
    # the card holds the model's CV beside both baselines on the same folds, and the calibration
    assert set(tr["cv_baselines"]) == {"length", "majority"}
    assert tr["cv_baselines"]["majority"]["AUROC"][0] == 0.5
    assert set(tr["cv_minus_length"]["calibrated"]) >= {"MCC", "AUROC", "bootstrap95"}
    cal = tr["calibration"]
    assert cal["ECE_after"][0] < cal["ECE_before"][0] + 0.01 and cal["a"] > 0
    assert card["intended_use"] and card["limits"]
    # the held-out example clusters are not in the training data
    assert tr["n_sequences"] == sum(c for c in tr["class_counts"].values())


@pytest.mark.parametrize("rna_type", RNA_TYPES)
def test_examples_are_held_out(datasets, test_data, rna_type):
    """The demo sequences are real train.tsv rows whose whole cluster the bundled models never saw."""
    examples = pd.read_csv(test_data / f"example-{rna_type}.tsv", sep="\t")
    train = pd.read_csv(datasets / rna_type / "train.tsv.gz", sep="\t", comment="#")
    assert 10 <= len(examples) <= 20 and examples.label.nunique() == 2
    merged = examples.merge(train[["id", "label", "sequence"]], on="id", suffixes=("", "_train"))
    assert len(merged) == len(examples) and (merged.label == merged.label_train).all()
    fasta_ids = [line[1:].split()[0] for line in (test_data / f"example-{rna_type}.fa").read_text().splitlines()
                 if line.startswith(">")]
    assert fasta_ids == list(examples.id)
    names = [n for n, (t, _) in BUNDLED.items() if t == rna_type]
    for name in names:
        card = json.loads((MODELS / f"{name}.json").read_text())
        held = set(card["training"]["held_out_ids"])
        assert {f"train|{i}" for i in examples.id} <= held
        tables = [t.split("/")[1] for t in card["training"]["data"]]
        rows = sum(len(pd.read_csv(datasets / rna_type / f"{t}.gz", sep="\t", comment="#")) for t in tables)
        in_tables = {k for k in held if f"{k.split('|')[0]}.tsv" in tables}
        assert card["training"]["n_sequences"] == rows - len(in_tables)


def quality_failures(name, truth, pred, rna_type, examples=None):
    """What is wrong with a bundled model's predictions (empty when nothing)."""
    table, min_auroc, min_example_acc = QUALITY[name]
    problems = []
    if not auroc(truth, pred, rna_type) >= min_auroc:
        problems.append(f"AUROC {auroc(truth, pred, rna_type):.3f} < {min_auroc} on {table}")
    if examples is not None and min_example_acc is not None:
        truth_ex, pred_ex = examples
        acc = float((truth_ex.label.values == pred_ex.prediction.values).mean())
        if not acc >= min_example_acc:
            problems.append(f"accuracy {acc:.2f} < {min_example_acc} on the held-out examples")
        if not auroc(truth_ex, pred_ex, rna_type) > 0.5:
            problems.append("AUROC <= 0.5 on the held-out examples")
    return problems


def _quality_inputs(cli, datasets, test_data, name):
    rna_type, _ = BUNDLED[name]
    table = QUALITY[name][0]
    truth = pd.read_csv(datasets / table, sep="\t", comment="#")
    pred = predict(cli, datasets / table, name)
    assert list(pred.id) == list(truth.id)
    examples = None
    if QUALITY[name][2] is not None:
        truth_ex = pd.read_csv(test_data / f"example-{rna_type}.tsv", sep="\t")
        pred_ex = predict(cli, test_data / f"example-{rna_type}.fa", name)
        assert list(pred_ex.id) == list(truth_ex.id)
        examples = truth_ex, pred_ex
    return rna_type, truth, pred, examples


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_quality(cli, datasets, test_data, name):
    rna_type, truth, pred, examples = _quality_inputs(cli, datasets, test_data, name)
    assert quality_failures(name, truth, pred, rna_type, examples) == []


def swap(pred, rna_type):
    a, b = (f"probability_{c}" for c in CLASSES[rna_type])
    other = dict(zip(CLASSES[rna_type], reversed(CLASSES[rna_type])))
    return pred.assign(**{a: pred[b], b: pred[a]}, prediction=pred.prediction.map(other))


def test_quality_check_fails_for_a_class_swapped_model(cli, datasets, test_data):
    for name in ("miRNA", "lncRNA-fractionation"):
        rna_type, truth, pred, examples = _quality_inputs(cli, datasets, test_data, name)
        swapped_examples = None if examples is None else (examples[0], swap(examples[1], rna_type))
        assert quality_failures(name, truth, swap(pred, rna_type), rna_type, swapped_examples)


@pytest.mark.parametrize("rna_type", RNA_TYPES)
def test_bundled_model_predicts_the_example_with_attention(cli, test_data, tmp_path, rna_type):
    fasta = test_data / f"example-{rna_type}.fa"
    att = tmp_path / "att.npz"
    res = cli("predict", fasta, "--rna-type", rna_type, "--attention", att)
    assert res.exit_code == 0, res.stderr
    pred = read_predictions(res.stdout)
    truth = pd.read_csv(test_data / f"example-{rna_type}.tsv", sep="\t")
    probs = pred[[f"probability_{c}" for c in CLASSES[rna_type]]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    with np.load(att) as z:
        offsets, weights = z["offsets"], z["attention"] if "attention" in z else z["embeddings"]
        for i, n in enumerate(truth.sequence.str.len()):
            w = np.asarray(weights[offsets[i] : offsets[i + 1]], dtype=np.float64).ravel()
            assert len(w) == n and (w >= 0).all() and w.sum() == pytest.approx(1.0, abs=1e-3)


def test_label_source_selects_the_lncrna_model(cli, test_data):
    fasta = test_data / "example-lncRNA.fa"
    default = cli("predict", fasta, "--rna-type", "lncRNA")
    rnalocate = cli("predict", fasta, "--rna-type", "lncRNA", "--label-source", "rnalocate")
    fractionation = cli("predict", fasta, "--rna-type", "lncRNA", "--label-source", "fractionation")
    assert default.exit_code == rnalocate.exit_code == fractionation.exit_code == 0
    assert default.stdout == rnalocate.stdout
    a, b = read_predictions(rnalocate.stdout), read_predictions(fractionation.stdout)
    assert list(a.id) == list(b.id)
    assert not np.allclose(a.probability_cytoplasm, b.probability_cytoplasm, atol=1e-3)


@pytest.mark.parametrize("args", [
    ("--rna-type", "miRNA", "--label-source", "fractionation"),
    ("--rna-type", "circRNA", "--label-source", "rnalocate"),
    ("--model", "x.onnx", "--label-source", "fractionation"),
    ("--rna-type", "lncRNA", "--label-source", "lncatlas"),
])
def test_label_source_usage_errors(cli, test_data, tmp_path, args):
    out = tmp_path / "p.tsv"
    res = cli("predict", test_data / "example-miRNA.fa", *args, "-o", out)
    assert res.exit_code == 2 and "label-source" in res.stderr.lower() and not out.exists()


def test_label_sources_in_the_library():
    from rnaloc_tools.errors import RnalocError

    assert LABEL_SOURCES[0] == "rnalocate"
    with pytest.raises(RnalocError, match="no bundled miRNA model for fractionation labels"):
        bundled_model_path("miRNA", "fractionation")


@pytest.mark.skipif(shutil.which("cd-hit-est") is None, reason="cd-hit-est not installed")
def test_workflow_rebuilds_the_bundled_mirna_model_bit_for_bit(datasets, tmp_path):
    """rnaloc dedup + train_bundled.py + export-onnx on datasets/ give the shipped miRNA model's bytes."""
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent),
           "PYTHONPATH": str(REPO), "BUNDLED_OUT": str(tmp_path / "out"), "EXAMPLES_OUT": str(tmp_path / "out")}
    script = REPO / "workflows" / "bundled-models" / "build.sh"
    subprocess.run(["bash", str(script), str(datasets), str(tmp_path / "work"), "miRNA"], check=True,
                   capture_output=True, env=env, cwd=tmp_path)
    for made, shipped in [("miRNA.onnx", MODELS), ("miRNA.json", MODELS), ("example-miRNA.fa", REPO / "test-data"),
                          ("example-miRNA.tsv", REPO / "test-data")]:
        assert (tmp_path / "out" / made).read_bytes() == (shipped / made).read_bytes(), made
