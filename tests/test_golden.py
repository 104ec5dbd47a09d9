"""The golden set: every bundled model's calls and probabilities on its held-out example sequences
(test-data/example-<rna_type>.fa, real sequences that no bundled model was trained on), committed in
test-data/golden/ by test-data/golden/make.sh. Any change to what a shipped model predicts (swapped
classes, features, calibration, the prediction rule, the domain check) fails here; a deliberate model
rebuild regenerates the files in the same commit."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO

GOLDEN = REPO / "test-data" / "golden"
#: model name -> (rna_type, label source)
MODELS = {"miRNA": ("miRNA", None), "lncRNA": ("lncRNA", "rnalocate"),
          "lncRNA-fractionation": ("lncRNA", "fractionation"), "circRNA": ("circRNA", None)}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bundled_model_reproduces_its_golden_predictions(cli, test_data, tmp_path, name):
    rna_type, source = MODELS[name]
    args = ["predict", test_data / f"example-{rna_type}.fa", "--rna-type", rna_type, "-o", tmp_path / "p.tsv"]
    if source:
        args += ["--label-source", source]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    got = pd.read_csv(tmp_path / "p.tsv", sep="\t", comment="#", keep_default_na=False)
    want = pd.read_csv(GOLDEN / f"{name}.tsv", sep="\t", comment="#", keep_default_na=False)
    assert list(got.columns) == list(want.columns)
    assert len(want) >= 12 and set(want["prediction"]) == set(json.loads(
        (REPO / "rnaloc_tools" / "models" / f"{name}.json").read_text())["classes"])  # both classes called
    for column in ("id", "rna_type", "prediction", "confidence", "in_domain", "domain_note"):
        assert got[column].tolist() == want[column].tolist(), column
    probs = [c for c in want.columns if c.startswith("probability_")]
    np.testing.assert_allclose(got[probs].to_numpy(float), want[probs].to_numpy(float), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_golden_sequences_were_never_trained_on(name):
    card = json.loads((REPO / "rnaloc_tools" / "models" / f"{name}.json").read_text())
    ids = pd.read_csv(GOLDEN / f"{name}.tsv", sep="\t", comment="#")["id"]
    assert {f"train|{i}" for i in ids} <= set(card["training"]["held_out_ids"])  # table|id
