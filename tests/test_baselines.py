"""The majority-class and length-only baselines (rnaloc_tools.model.baselines)."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from rnaloc_tools.model.baselines import (
    PREDICTORS,
    LengthBaseline,
    MajorityBaseline,
    baseline_predictions,
    encode_labels,
    fit_baselines,
    majority_proba,
)

CLASSES = ("extracellular", "intracellular")


def test_majority_is_the_training_prior():
    labels = ["intracellular"] * 3 + ["extracellular"]
    base = MajorityBaseline.fit(labels, CLASSES)
    assert base.prior.tolist() == [0.25, 0.75]
    assert base.tie_class == 1
    assert base.predict_proba(5).tolist() == [[0.25, 0.75]] * 5
    assert base.predict([10, 20]).tolist() == [1, 1]
    assert np.allclose(majority_proba([0, 0, 1], CLASSES, 2), [[2 / 3, 1 / 3]] * 2)


def test_length_separates_short_from_long():
    lengths = [20, 21, 22, 23, 70, 80, 90, 100]
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    base = LengthBaseline.fit(lengths, labels, CLASSES)
    probs = base.predict_proba([19, 22, 85, 300])
    assert probs.shape == (4, 2)
    assert np.allclose(probs.sum(1), 1)
    assert base.predict([19, 22, 85, 300]).tolist() == [0, 0, 1, 1]
    # monotone in length, in the direction the training data say
    assert np.all(np.diff(base.predict_proba(np.arange(10, 400, 10))[:, 1]) > 0)


def test_length_is_a_logistic_regression_on_standardised_log_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(15, 2000, 200)
    labels = (rng.random(200) < 1 / (1 + np.exp(-(np.log(lengths) - 5)))).astype(int)
    base = LengthBaseline.fit(lengths, labels, CLASSES)
    x = np.log(lengths)
    ref = LogisticRegression().fit(((x - x.mean()) / x.std())[:, None], labels)
    new = np.array([30, 300, 3000])
    expected = ref.predict_proba(((np.log(new) - x.mean()) / x.std())[:, None])
    assert np.allclose(base.predict_proba(new), expected)
    card = base.to_dict()
    assert card["predictor"] == "length" and card["log_length_mean"] == pytest.approx(x.mean(), abs=1e-6)


def test_inverse_direction_and_class_names():
    """Long = class 0 here: the probabilities follow the data, and names work as labels."""
    lengths = [500, 600, 700, 20, 25, 30]
    names = ["extracellular"] * 3 + ["intracellular"] * 3
    base = LengthBaseline.fit(lengths, names, CLASSES)
    assert base.predict([800, 18]).tolist() == [0, 1]


def test_both_classes_are_needed():
    with pytest.raises(ValueError, match="only one class"):
        LengthBaseline.fit([20, 30, 40], [1, 1, 1], CLASSES)
    with pytest.raises(ValueError, match="only one class"):
        MajorityBaseline.fit(["extracellular"] * 2, CLASSES)
    with pytest.raises(ValueError, match="no training rows"):
        MajorityBaseline.fit([], CLASSES)


def test_bad_labels_and_lengths():
    with pytest.raises(ValueError, match="'cytosol' is not one of"):
        encode_labels(["cytosol"], CLASSES)
    with pytest.raises(ValueError, match="out of range"):
        encode_labels([0, 2], CLASSES)
    with pytest.raises(ValueError, match="at least 1"):
        LengthBaseline.fit([0, 20, 30, 40], [0, 0, 1, 1], CLASSES)
    with pytest.raises(ValueError, match="3 lengths but 4 labels"):
        LengthBaseline.fit([10, 20, 30], [0, 0, 1, 1], CLASSES)


def test_constant_length_gives_the_prior_and_ties_go_to_the_majority():
    base = LengthBaseline.fit([50] * 6, [0, 1, 1, 0, 1, 1], CLASSES)
    probs = base.predict_proba([50, 50])
    assert np.allclose(probs[:, 1], 4 / 6, atol=1e-3)
    balanced = LengthBaseline.fit([50] * 4, [0, 1, 0, 1], CLASSES)
    assert balanced.predict([50]).tolist() == [balanced.tie_class]


def test_fit_baselines_and_predictions():
    fitted = fit_baselines([20, 21, 90, 95, 100], [0, 0, 1, 1, 1], CLASSES)
    assert set(fitted) == set(PREDICTORS) - {"model"}
    out = baseline_predictions(fitted, [20, 98])
    probs, pred = out["majority"]
    assert pred.tolist() == [1, 1] and probs[0].tolist() == pytest.approx([0.4, 0.6])
    probs, pred = out["length"]
    assert pred.tolist() == [0, 1]


def test_a_prediction_does_not_depend_on_the_others():
    base = LengthBaseline.fit([20, 21, 90, 95], [0, 0, 1, 1], CLASSES)
    alone = base.predict_proba([40])
    together = base.predict_proba([1000, 40, 3])
    assert np.array_equal(alone[0], together[1])
