"""The applicability domain (rnaloc_tools.domain): fitting, assessing, carried by train and export-onnx."""

import json

import numpy as np
import pytest
import torch

from rnaloc_tools.domain import (
    COMPOSITION_TAIL,
    LENGTH_TAIL,
    METADATA_KEY,
    Domain,
    assess,
    fit_domain,
    kmer_profile,
    to_json,
)


def _random_rna(rng, n, lengths, gc=0.5):
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]  # A C G U
    return ["".join(rng.choice(list("ACGU"), size=int(rng.integers(*lengths)), p=p)) for _ in range(n)]


@pytest.fixture(scope="module")
def training():
    return _random_rna(np.random.default_rng(0), 600, (60, 140))


@pytest.fixture(scope="module")
def domain(training):
    return fit_domain(training)


def test_the_domain_is_json_and_round_trips(domain, training):
    text = to_json(domain)
    assert json.loads(text) == domain
    assert len(text) < 200_000  # fits comfortably in the ONNX metadata
    d = Domain(text)
    lengths = [len(s) for s in training]
    ordered = sorted(lengths)  # conformal bounds: the 3rd smallest and the ceil(601 * 0.995) = 598th of 600
    assert d.low == ordered[2] and d.high == ordered[597]
    assert domain["length"]["values"][0] == min(lengths) and domain["length"]["values"][-1] == max(lengths)


def test_sequences_like_the_training_ones_are_in_domain_at_about_the_nominal_rate(domain):
    fresh = _random_rna(np.random.default_rng(1), 2000, (60, 140))
    states = [s for s, _ in assess(domain, fresh)]
    out = states.count("no") / len(states)
    nominal = 2 * LENGTH_TAIL + COMPOSITION_TAIL
    assert set(states) <= {"yes", "no"}
    assert out <= 2.5 * nominal, out  # ~2% expected; a broken calibration flags far more (or nothing)
    assert out > 0


def test_length_outside_the_training_range_is_named_in_words(domain):
    rng = np.random.default_rng(2)
    long, short = _random_rna(rng, 1, (2412, 2413))[0], _random_rna(rng, 1, (30, 31))[0]
    (state, note), (state2, note2) = assess(domain, [long, short])
    assert state == "no" and note.startswith("length 2,412 nt is above the longest 0.5% of this model's training")
    assert state2 == "no" and note2.startswith("length 30 nt is below the shortest 0.5%")


def test_unusual_composition_is_flagged_with_its_percentile(domain):
    rng = np.random.default_rng(3)
    at_rich = _random_rna(rng, 20, (90, 110), gc=0.1)
    results = assess(domain, at_rich)
    assert all(s == "no" for s, _ in results)
    assert all("composition unlike the training sequences" in n and "distance percentile" in n for _, n in results)
    assert all(" nt is " not in n for _, n in results)  # the length is fine


def test_a_verdict_does_not_depend_on_the_other_sequences(domain, training):
    rng = np.random.default_rng(4)
    queries = _random_rna(rng, 30, (20, 3000)) + training[:5]
    together = assess(domain, queries)
    alone = [assess(domain, [q])[0] for q in queries]
    assert together == alone


def test_lengths_only_and_sequences_without_bases(domain):
    (s1, n1), (s2, n2) = assess(domain, lengths=[100, 5000])
    assert s1 == "unknown" and "composition not assessed" in n1
    assert s2 == "no" and "above the longest" in n2
    assert kmer_profile("NNNN") is None
    (s3, n3), = assess(domain, ["N" * 100])
    assert s3 == "unknown" and "no A/C/G/U" in n3


def test_groups_keep_near_copies_out_of_the_calibration(training):
    # every sequence twice (a near-copy beside it): ungrouped, the copy stands in for it and the
    # calibration distances collapse; grouped, they are those of unrelated sequences
    doubled = [s for s in training for _ in range(2)]
    groups = [i for i in range(len(training)) for _ in range(2)]
    loose = Domain(fit_domain(doubled))
    grouped = Domain(fit_domain(doubled, groups))
    median = int(np.flatnonzero(loose.grid_pct == 50)[0])
    # ungrouped, the copy is one of the 3 nearest: the typical calibration distance shrinks by ~1/3
    assert grouped.bands[0][0][median] > 1.3 * loose.bands[0][0][median]
    fresh = _random_rna(np.random.default_rng(5), 2000, (60, 140))
    flagged_grouped = sum(s == "no" for s, _ in grouped.assess(fresh)) / 2000
    flagged_loose = sum(s == "no" for s, _ in loose.assess(fresh)) / 2000
    assert flagged_grouped <= 2 * LENGTH_TAIL + COMPOSITION_TAIL < flagged_loose, (flagged_grouped, flagged_loose)


def test_too_few_sequences():
    with pytest.raises(ValueError, match="at least 10"):
        fit_domain(["ACGU"] * 5)


@pytest.mark.usefixtures("one_torch_thread")
def test_train_records_the_domain_and_export_onnx_carries_it(cli, test_data, tmp_path):
    import onnx

    from rnaloc_tools.formats import read_dataset

    npz, pt, model = tmp_path / "m.npz", tmp_path / "m.pt", tmp_path / "m.onnx"
    dataset = test_data / "model-miRNA.tsv"
    assert cli("embed", dataset, "--encoder", "one-hot", "-o", npz).exit_code == 0
    result = cli("train", dataset, npz, "-o", pt, "--arch", "transformer", "--folds", 0, "--epochs", 1,
                 "--hparams", '{"layers": 1, "d_model": 8, "heads": 2}')
    assert result.exit_code == 0, result.stderr
    ckpt = torch.load(pt, weights_only=True)
    df = read_dataset(dataset).df
    train_rows = df[df["split"] != "test"]
    assert ckpt[METADATA_KEY]["n_sequences"] == len(train_rows)  # the test rows are not in it
    lengths = train_rows["sequence"].str.len()
    assert ckpt[METADATA_KEY]["length"]["values"][0] == lengths.min()
    assert ckpt[METADATA_KEY]["length"]["values"][-1] == lengths.max()
    assert cli("export-onnx", pt, "-o", model).exit_code == 0
    props = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert json.loads(props[METADATA_KEY]) == ckpt[METADATA_KEY]
    Domain(props[METADATA_KEY])
