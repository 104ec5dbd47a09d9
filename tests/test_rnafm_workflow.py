"""workflows/rnafm-models end to end on a small subset of datasets/ with a tiny RNA-FM checkpoint.

Every step runs for real (subset -> cd-hit-est clusters -> RNA-FM embed ->
the paper's head, narrowed for time, with 5-fold grouped CV -> ONNX -> model
card); the ONNX models then predict with the same weights. Needs snakemake
and cd-hit-est (both installed by CI).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflows" / "rnafm-models" / "Snakefile"
TYPES = ("miRNA", "lncRNA", "circRNA")
NARROW_HEAD = '{"kernels": [3, 5], "filters": 8, "lstm_hidden": 8, "lstm_layers": 1, "attention_heads": 2}'


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_rnafm):
    folder = tmp_path_factory.mktemp("rnafm-models")
    config = folder / "config.yaml"
    config.write_text(
        f"weights: '{tiny_rnafm}'\noutdir: '{folder / 'out'}'\nsubset: 30\nepochs: 2\npatience: 2\nmax_len: 128\n"
        f"threads: 1\ndevice: cpu\nhparams: '{NARROW_HEAD}'\nrnaloc: '{sys.executable} -m rnaloc_tools'\n"
        f"python: '{sys.executable}'\n"
    )
    env = dict(os.environ, RNALOC_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--configfile", str(config), "--cores", "2",
           "--directory", str(folder), "--quiet"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder / "out", tiny_rnafm


@pytest.mark.parametrize("rna_type", TYPES)
def test_every_rna_type_gets_a_model_and_a_card(built, rna_type):
    out, weights = built
    assert (out / "models" / f"{rna_type}.onnx").stat().st_size > 0
    card = json.loads((out / "models" / f"{rna_type}.card.json").read_text())
    assert card["rna_type"] == rna_type and card["file"] == f"{rna_type}.onnx"
    assert card["encoder"]["encoder"] == "rna-fm" and card["encoder"]["weights_format"] == "rna-fm-pth"
    assert card["encoder"]["weights_file"] == os.path.basename(weights)
    assert card["training"]["n_sequences"] == 30 and "subset" in card["training"]["data"]
    assert card["training"]["cv_scheme"].startswith("5-fold stratified, grouped by cd-hit-est")
    for predictor in ("model", "majority", "length"):  # train's own rows, the same folds
        assert set(card["cv"][predictor]) == {"accuracy", "macro_f1", "mcc", "auroc"}
    assert card["cv"]["majority"]["auroc"][0] == 0.5
    bundled = json.loads((REPO / "rnaloc_tools" / "models" / f"{rna_type}.json").read_text())
    assert card["bundled_kmer_model_cv"]["cv"]["accuracy"] == bundled["training"]["cv"]["cv_ACC"]
    markdown = (out / "models" / f"{rna_type}.card.md").read_text()
    assert "| RNA-FM + RNALoc-LM head (this model) |" in markdown and "baseline: length only" in markdown
    metrics = (out / rna_type / f"{rna_type}.report" / "cv_metrics.tsv").read_text()
    assert "\nmodel\tmean\t" in metrics


def test_the_models_predict_with_the_same_weights(built, cli, test_data, tmp_path):
    out, weights = built
    result = cli("predict", test_data / "example-miRNA.fa", "--model", out / "models" / "miRNA.onnx",
                 "--weights", weights, "-o", tmp_path / "p.tsv")
    assert result.exit_code == 0, result.stderr
    rows = [line for line in (tmp_path / "p.tsv").read_text().splitlines() if not line.startswith("#")]
    assert rows[0].startswith("id\trna_type\tprediction\tprobability_extracellular\tprobability_intracellular")
    assert len(rows) - 1 == sum(1 for line in open(test_data / "example-miRNA.fa") if line.startswith(">"))
