"""Tests written to kill the mutants that survived ``bench/mutation.sh`` (issue 16, item 2).

Each expectation is computed by hand in the comments, never by the function under test, so a
small change to the code (a mutant) makes the test fail. bench/mutation-survivors.md lists
which mutants each test kills and the survivors accepted with their reason.
"""

import json
import os

import numpy as np
import pytest

from rnaloc_tools.embed import merge_windows, window_spans
from rnaloc_tools.errors import InputError, RnalocError
from rnaloc_tools.fileio import atomic_output, atomic_path, same_file
from rnaloc_tools.model.metrics import (
    calibration_bins,
    compute_metrics,
    confusion,
    expected_calibration_error,
    predicted_class,
    reliability,
)

from conftest import write_npz

# --------------------------------------------------------------------------- predicted_class


def test_predicted_class_takes_the_row_argmax_and_sends_only_exact_ties_to_the_tie_class():
    # the column maxima (0.9, 0.8) differ from the row maxima: a mutant taking max/argmax over
    # axis 0 (or the whole array) calls the wrong class
    probs = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5], [0.6, 0.4]])
    assert predicted_class(probs, 1).tolist() == [1, 0, 1, 0]
    assert predicted_class(probs, 0).tolist() == [1, 0, 0, 0]
    # a near tie is not a tie
    assert predicted_class(np.array([[0.5, 0.5000001]]), 0).tolist() == [1]


def test_predicted_class_three_classes_tie_and_no_tie():
    # two tied at the top -> the tie class; a tie below the top is no tie
    probs = np.array([[0.4, 0.4, 0.2], [0.2, 0.2, 0.6], [0.1, 0.3, 0.6]])
    assert predicted_class(probs, 2).tolist() == [2, 2, 2]
    assert predicted_class(probs, 1).tolist() == [1, 2, 2]
    assert predicted_class(probs, 0).tolist() == [0, 2, 2]


def test_predicted_class_of_a_row_does_not_depend_on_the_batch():
    probs = np.array([[0.3, 0.7], [0.5, 0.5], [0.8, 0.2]])
    whole = predicted_class(probs, 1).tolist()
    assert whole == [1, 1, 0]
    assert [predicted_class(probs[i:i + 1], 1)[0] for i in range(3)] == whole


# --------------------------------------------------------------------------- metrics by hand

Y = np.array([0, 0, 1, 1, 1])
PRED = np.array([0, 1, 1, 1, 0])
PROB = np.array([0.1, 0.62, 0.8, 0.45, 0.68])


def test_compute_metrics_against_a_hand_computation():
    m = compute_metrics(Y, PRED, PROB)
    # class 0: TP 1, FP 1, FN 1 -> P = R = F1 = 1/2; class 1: TP 2, FP 1, FN 1 -> 2/3 each
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["macro_precision"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m["macro_recall"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m["macro_f1"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    assert m["mcc"] == pytest.approx(1 / 6)
    # positives 0.8, 0.45, 0.68 against negatives 0.1, 0.62: 5 of 6 pairs ordered right
    assert m["auroc"] == pytest.approx(5 / 6)
    # Brier: (0.01 + 0.3844 + 0.04 + 0.3025 + 0.1024) / 5
    assert m["brier"] == pytest.approx(0.8393 / 5)
    # ECE: bins 1 | 6 (0.62 with y 0, 0.68 with y 1) | 8 | 4: (0.1 + |-0.62 + 0.32| + 0.2 + 0.55) / 5
    assert m["ece"] == pytest.approx(1.15 / 5)
    assert set(m) == {"accuracy", "macro_f1", "macro_precision", "macro_recall", "mcc", "auroc", "brier", "ece"}
    assert all(type(v) is float for v in m.values())


def test_compute_metrics_macro_averages_over_both_classes_even_when_one_is_never_predicted():
    # every call is class 1: class 0 has P = R = F1 = 0 (zero_division), class 1 P = 3/5, R = 1
    m = compute_metrics(Y, np.ones(5, dtype=int), PROB)
    assert m["macro_precision"] == pytest.approx(3 / 10)
    assert m["macro_recall"] == pytest.approx(1 / 2)
    assert m["macro_f1"] == pytest.approx((2 * 0.6 / 1.6) / 2)


def test_single_class_and_empty_inputs_give_nan_where_undefined():
    m = compute_metrics(np.ones(3, dtype=int), np.ones(3, dtype=int), np.array([0.9, 0.8, 0.7]))
    assert np.isnan(m["auroc"])
    assert m["accuracy"] == 1.0
    # the macro average is over both classes even when only one occurs: class 0 scores 0
    assert m["macro_f1"] == pytest.approx(0.5) and m["macro_precision"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.09) / 3)
    assert np.isnan(expected_calibration_error([], []))


def test_calibration_bins_edges():
    # [0, 0.1) -> 0, 0.1 -> 1, 0.95 -> 9, 1.0 stays in the last bin, custom bin counts
    assert calibration_bins([0.0, 0.05, 0.1, 0.95, 1.0]).tolist() == [0, 0, 1, 9, 9]
    assert calibration_bins([0.0, 0.25, 0.49, 0.5, 1.0], n_bins=2).tolist() == [0, 0, 0, 1, 1]
    assert expected_calibration_error([0, 1], [0.2, 0.4], n_bins=2) == pytest.approx(((0 - 0.2) + (1 - 0.4)) / 2)


def test_reliability_table_against_a_hand_computation():
    table = reliability(Y, PROB)
    assert list(table.columns) == ["bin_low", "bin_high", "n", "predicted", "observed"]
    assert table["bin_low"].tolist() == pytest.approx([0.1, 0.4, 0.6, 0.8])
    assert table["bin_high"].tolist() == pytest.approx([0.2, 0.5, 0.7, 0.9])
    assert table["n"].tolist() == [1, 1, 2, 1]
    assert table["predicted"].tolist() == pytest.approx([0.1, 0.45, 0.65, 0.8])
    assert table["observed"].tolist() == pytest.approx([0.0, 1.0, 0.5, 1.0])
    halves = reliability([0, 1, 1], [0.1, 0.7, 0.9], n_bins=2)
    assert halves["bin_high"].tolist() == pytest.approx([0.5, 1.0])
    assert halves["n"].tolist() == [1, 2]


def test_confusion_rows_are_true_columns_predicted_with_every_class():
    table = confusion(Y, PRED, ("cytoplasm", "nucleus"))
    assert list(table.index) == ["cytoplasm", "nucleus"] and list(table.columns) == ["cytoplasm", "nucleus"]
    assert table.values.tolist() == [[1, 1], [1, 2]]
    assert confusion([0, 0], [0, 0], ("a", "b")).values.tolist() == [[2, 0], [0, 0]]


# --------------------------------------------------------------------------- windows


def test_window_spans_by_hand():
    assert window_spans(10, 10, 3) == [(0, 10)]
    assert window_spans(5, 10, 3) == [(0, 5)]
    # stride 10 - 3 = 7: starts 0, 7, 14, then the last window flush with the end
    assert window_spans(25, 10, 3) == [(0, 10), (7, 17), (14, 24), (15, 25)]
    assert window_spans(24, 10, 3) == [(0, 10), (7, 17), (14, 24)]
    assert window_spans(11, 10, 0) == [(0, 10), (1, 11)]
    # an overlap as large as the window still advances by one
    assert window_spans(6, 4, 4) == [(0, 4), (1, 5), (2, 6)]
    assert window_spans(6, 4, 9) == [(0, 4), (1, 5), (2, 6)]


def test_merge_windows_averages_overlaps_by_hand():
    # three columns: a count array of the wrong width cannot broadcast against them
    a = np.array([[1, 10, 100], [2, 20, 200], [3, 30, 300]], dtype=np.float32)   # positions 0-2
    b = np.array([[5, 50, 500], [7, 70, 700], [9, 90, 900]], dtype=np.float32)   # positions 2-4
    c = np.array([[1, 1, 1]], dtype=np.float32)                                  # position 2 again
    out = merge_windows(5, [(0, 3, a), (2, 5, b), (2, 3, c)])
    assert out.dtype == np.float32 and out.shape == (5, 3)
    expected = [[1, 10, 100], [2, 20, 200], [(3 + 5 + 1) / 3, (30 + 50 + 1) / 3, (300 + 500 + 1) / 3],
                [7, 70, 700], [9, 90, 900]]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # one window: returned as it is
    np.testing.assert_array_equal(merge_windows(3, [(0, 3, a)]), a)


# --------------------------------------------------------------------------- fileio


def test_atomic_path_renames_a_temporary_file_beside_the_destination(tmp_path):
    dest = tmp_path / "out.tsv"
    dest.write_text("old\n")
    with atomic_path(dest) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp != str(dest)
        with open(tmp, "w") as fh:
            fh.write("new\n")
        assert dest.read_text() == "old\n"  # not yet replaced
    assert dest.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]
    assert oct(dest.stat().st_mode & 0o777) == oct(0o666 & ~_umask_now())


def _umask_now():
    old = os.umask(0)
    os.umask(old)
    return old


def test_atomic_output_failure_keeps_the_previous_file_and_no_temporary(tmp_path):
    dest = tmp_path / "out.tsv"
    dest.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(dest) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert dest.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]


def test_atomic_output_gz_and_binary(tmp_path):
    import gzip

    with atomic_output(tmp_path / "a.tsv.gz") as fh:
        fh.write("x\ty\n")
    assert gzip.open(tmp_path / "a.tsv.gz", "rt").read() == "x\ty\n"
    with atomic_output(tmp_path / "b.bin", "wb") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with atomic_output(tmp_path / "c.txt") as fh:
        fh.write("a\nb\n")
    assert (tmp_path / "c.txt").read_bytes() == b"a\nb\n"
    assert json.loads(json.dumps(sorted(p.name for p in tmp_path.iterdir()))) == ["a.tsv.gz", "b.bin", "c.txt"]


def test_same_file_by_name_by_link_and_not_for_distinct_files(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("x")
    b = tmp_path / "b.txt"
    b.write_text("x")
    os.link(a, tmp_path / "hard.txt")
    os.symlink(a, tmp_path / "soft.txt")
    assert same_file(a, tmp_path / "sub" / ".." / "a.txt")
    assert same_file(a, tmp_path / "hard.txt")      # same inode, different name
    assert same_file(tmp_path / "soft.txt", a)
    assert not same_file(a, b)                      # same content, different files
    assert not same_file(tmp_path / "missing1", tmp_path / "missing2")


# --------------------------------------------------------------------------- predict.py (bench/mutation.sh)
#
# A stand-in for OnnxModel whose "network" is known, so every expected value below follows from
# the inputs by hand: p(second class) = the mean of column 0 over the positions the model is given,
# attention = column 1 over those positions, divided by its sum.


class _FakeModel:
    rna_type = "miRNA"
    path = name = "fake.onnx"
    quadratic = False
    encoder = {"encoder": "one-hot", "dim": 2}
    meta = {}

    def __init__(self, classes=("extracellular", "intracellular"), max_length=None, tie_class=0, pieces=None):
        self.classes, self.max_length, self.tie_class, self.pieces = classes, max_length, tie_class, pieces
        self.dim = 2
        self.batches = []  # the lengths of every run

    def run(self, x, lengths):
        self.batches.append(lengths.tolist())
        assert x.dtype == np.float32 and lengths.dtype == np.int64 and x.shape[1] == lengths.max()
        p1 = np.array([x[b, :n, 0].mean() for b, n in enumerate(lengths)], dtype=np.float32)
        att = np.zeros(x.shape[:2], dtype=np.float32)
        for b, n in enumerate(lengths):
            assert not x[b, n:].any()  # padding is zeros
            att[b, :n] = x[b, :n, 1] / x[b, :n, 1].sum()
        return np.stack([1 - p1, p1], axis=1), att


def _mat(col0, col1=None):
    col1 = np.arange(1, len(col0) + 1) if col1 is None else col1
    return np.stack([np.asarray(col0, dtype=np.float32), np.asarray(col1, dtype=np.float32)], axis=1)


#: id -> matrix; p(intracellular) by hand: long 3/6 = 0.5 whole, 3/4 = 0.75 cropped to 4; tie 1/2;
#: short 0; mid 1/3; first 1
MATS = {"long": _mat([1, 1, 1, 0, 0, 0]), "tie": _mat([1, 0]), "short": _mat([0]), "mid": _mat([0, 0, 1]),
        "first": _mat([1, 1])}


def _predict(model, ids=tuple(MATS), attention=True, batch_size=2):
    from rnaloc_tools.predict import Predictor

    predictor = Predictor(model, batch_size=batch_size, source="in.fa")
    return predictor, predictor.predict_matrices(list(ids), [MATS[i] for i in ids], attention=attention)


def test_predict_matrices_rows_in_input_order_with_the_max_len_crop_and_the_tie_class():
    model = _FakeModel(max_length=4, tie_class=1)
    predictor, result = _predict(model)
    frame = result.frame
    assert list(frame.columns) == ["id", "rna_type", "prediction", "probability_extracellular",
                                   "probability_intracellular"] == predictor.columns
    assert frame["id"].tolist() == list(MATS) and (frame["rna_type"] == "miRNA").all()
    np.testing.assert_array_equal(frame["probability_intracellular"], [0.75, 0.5, 0, 1 / np.float32(3), 1])
    np.testing.assert_array_equal(frame["probability_extracellular"], [0.25, 0.5, 1, 1 - 1 / np.float32(3), 0])
    np.testing.assert_array_equal(result.probs, frame[["probability_extracellular", "probability_intracellular"]])
    # the exact tie goes to the model's tie class (1 here), nothing else does
    assert frame["prediction"].tolist() == ["intracellular", "intracellular", "extracellular", "extracellular",
                                            "intracellular"]
    # the model saw at most 4 positions, every sequence once, in batches of at most 2
    assert sorted(n for b in model.batches for n in b) == [1, 2, 2, 3, 4]
    assert max(len(b) for b in model.batches) == 2 and len(model.batches) == 3
    assert predictor.cropped == 1
    # attention: one weight per nucleotide, the cropped positions 0; weights of the 4 seen: 1..4 / 10
    long = result.attention[0]
    assert long.shape == (6, 1) and long.dtype == np.float32
    np.testing.assert_allclose(long[:, 0], [0.1, 0.2, 0.3, 0.4, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(result.attention[2][:, 0], [1.0])
    np.testing.assert_allclose(result.attention[3][:, 0], [1 / 6, 2 / 6, 3 / 6], rtol=1e-6)
    assert [a.shape for a in result.attention] == [(6, 1), (2, 1), (1, 1), (3, 1), (2, 1)]


def test_predict_matrices_without_a_crop_and_with_tie_class_0():
    model = _FakeModel(max_length=None, tie_class=0)
    predictor, result = _predict(model, attention=False)
    # uncropped, "long" is 3/6 = 0.5: a tie, to class 0 like "tie"
    assert result.frame["prediction"].tolist() == ["extracellular"] * 4 + ["intracellular"]
    np.testing.assert_array_equal(result.frame["probability_intracellular"], [0.5, 0.5, 0, 1 / np.float32(3), 1])
    assert predictor.cropped == 0 and result.attention is None
    assert sorted(n for b in model.batches for n in b) == [1, 2, 2, 3, 6]
    # a crop longer than every sequence crops nothing
    model = _FakeModel(max_length=6)
    predictor, result = _predict(model, batch_size=64)
    assert predictor.cropped == 0 and model.batches == [[6, 3, 2, 2, 1]]
    np.testing.assert_allclose(result.attention[0][:, 0], np.arange(1, 7) / 21, rtol=1e-6)


def test_a_row_does_not_depend_on_the_chunk_or_the_batch():
    whole = _predict(_FakeModel(max_length=4, tie_class=1))[1].frame
    for rid in MATS:
        alone = _predict(_FakeModel(max_length=4, tie_class=1), ids=[rid], batch_size=1)[1].frame
        assert alone.iloc[0].tolist() == whole[whole["id"] == rid].iloc[0].tolist()


def test_class_order_of_the_model_names_the_columns():
    # classes listed the other way round: column i of the output is classes[i]
    model = _FakeModel(classes=("intracellular", "extracellular"), tie_class=0)
    predictor, result = _predict(model, ids=["short", "first", "tie"])
    assert predictor.columns[3:] == ["probability_intracellular", "probability_extracellular"]
    np.testing.assert_array_equal(result.frame["probability_extracellular"], [0, 1, 0.5])
    assert result.frame["prediction"].tolist() == ["intracellular", "extracellular", "intracellular"]


class _Pieces:
    def __init__(self, model):
        self.model, self.lengths = model, []

    def run(self, mat):
        self.lengths.append(len(mat))
        p, a = self.model.run(mat[None].astype(np.float32), np.array([len(mat)], dtype=np.int64))
        return p[0], a[0]


def test_sequences_over_long_nt_go_to_the_pieces_runner(monkeypatch):
    import rnaloc_tools.predict as predict

    monkeypatch.setattr(predict, "LONG_NT", 3)  # "long" (6) and, cropped to 5, nothing else over 3
    model = _FakeModel(max_length=5)
    model.pieces = _Pieces(_FakeModel())
    predictor, result = _predict(model, batch_size=64)
    assert model.pieces.lengths == [5]                 # only "long", cropped to 5: 3/5 = 0.6
    assert model.batches == [[3, 2, 2, 1]]             # the others in one batch
    np.testing.assert_allclose(result.frame["probability_intracellular"], [0.6, 0.5, 0, 1 / 3, 1], rtol=1e-6)
    np.testing.assert_allclose(result.attention[0][:, 0], [1 / 15, 2 / 15, 3 / 15, 4 / 15, 5 / 15, 0], rtol=1e-6)
    # one float32 weight per nucleotide (the attention NPZ's layout), like the batched ones
    assert [(a.shape, a.dtype) for a in result.attention[:2]] == [((6, 1), np.float32), ((2, 1), np.float32)]
    assert predictor.cropped == 1
    # a model without a pieces runner runs every sequence whole
    plain = _FakeModel(max_length=5)
    _predict(plain, batch_size=64)
    assert plain.batches == [[5, 3, 2, 2, 1]]


def test_model_outputs_that_are_not_probabilities_name_the_record():
    from rnaloc_tools.errors import InputError
    from rnaloc_tools.predict import check_probabilities

    ids = ["a", "b", "c"]
    ok = np.array([[0.5, 0.5], [1.0009, -0.0009], [0.3, 0.7009]])   # within 1e-3
    check_probabilities(ok, "m.onnx", ids)
    # exactly at the tolerance is still accepted: 1 + 1e-3 == 1.001 and -1e-3 == -0.001 in float64
    check_probabilities(np.array([[1.001, -0.001]]), "m.onnx", ["a"])
    for bad, rid in (([[0.5, 0.5], [1.002, -0.002], [0.3, 0.7]], "b"),     # below 0 and above 1
                     ([[0.5, 0.5], [0.5, 0.5], [0.3, 0.702]], "c"),        # sums to 1.002
                     ([[0.5, 0.498], [0.5, 0.5], [0.3, 0.7]], "a"),        # sums to 0.998
                     ([[0.5, 0.5], [1.0015, -0.0008], [0.3, 0.7]], "b"),   # above 1 alone (sum within 1e-3)
                     ([[0.5, 0.5], [0.5, 0.5], [-0.0015, 1.0008]], "c"),   # below 0 alone
                     ([[0.5, 0.5], [-0.0015, 1.0015], [2.0, -1.0]], "b")):  # the first bad row is named
        with pytest.raises(InputError) as err:
            check_probabilities(np.array(bad), "m.onnx", ids)
        assert err.value.record == rid and err.value.source == "m.onnx"
        assert "not probabilities" in str(err.value)
    with pytest.raises(InputError) as err:
        check_probabilities(np.array([[1.002, -0.002]]), "m.onnx", ["a"])
    assert str(err.value) == ("m.onnx: record 'a': the model's outputs are not probabilities (1.002, -0.002: values "
                              "outside 0..1, or not summing to 1): not a model made by `rnaloc export-onnx`")


def test_predict_matrices_refuses_non_finite_or_non_probability_outputs_naming_the_record():
    class NaNModel(_FakeModel):
        def run(self, x, lengths):
            p, a = super().run(x, lengths)
            p[lengths == 3, 1] = np.nan  # "mid": one value of its row
            return p, a

    with pytest.raises(InputError) as err:
        _predict(NaNModel())
    assert str(err.value) == "in.fa: record 'mid': the model gave non-finite probabilities (corrupt embeddings?)"

    class OverModel(_FakeModel):
        def run(self, x, lengths):
            p, a = super().run(x, lengths)
            p[lengths == 1] = [1.5, -0.5]  # "short"
            return p, a

    with pytest.raises(InputError) as err:
        _predict(OverModel())
    assert err.value.source == "fake.onnx" and err.value.record == "short" and "not probabilities" in str(err.value)


@pytest.mark.parametrize("cap", ["tokens", "pairs"])
def test_predict_matrices_batches_within_the_token_and_pair_caps(monkeypatch, cap):
    import rnaloc_tools.model.batching as batching
    import rnaloc_tools.predict as predict

    model = _FakeModel(max_length=4)
    if cap == "tokens":   # padded positions per batch <= 6
        monkeypatch.setattr(predict, "MAX_TOKENS", 6)
    else:                 # a quadratic model: batch size x length^2 <= 20
        monkeypatch.setattr(batching, "MAX_PAIRS", 20)
        model.quadratic = True
    _predict(model, batch_size=64, attention=False)
    # lengths 4 (cropped), 3, 2, 2, 1, longest first: [4] alone (2 x 4 = 8 > 6; 2 x 16 > 20), then
    # [3, 2] (2 x 3 = 6; 2 x 9 = 18), [2, 1]
    assert model.batches == [[4], [3, 2], [2, 1]]
    # with the default caps (far above these lengths) one batch
    monkeypatch.undo()
    plain = _FakeModel(max_length=4)
    plain.quadratic = cap == "pairs"
    _predict(plain, batch_size=64, attention=False)
    assert plain.batches == [[4, 3, 2, 2, 1]]


def test_onehot_sequences_reads_the_bases_back_and_ambiguity_as_n():
    from rnaloc_tools.predict import onehot_sequences

    n = [0.25] * 4
    r = [0.5, 0, 0.5, 0]           # IUPAC R: A or G
    double = [1, 1, 0, 0]          # not one-hot: N
    mats = [np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], n, r, double], dtype=np.float16),
            np.array([[0, 0, 0, 1]], dtype=np.float32)]
    assert onehot_sequences(mats) == ["ACGUNNN", "U"]


def test_prediction_sink_writes_the_columns_it_was_given_rounded_and_counts(tmp_path):
    import pandas as pd

    from rnaloc_tools.predict import ChunkResult, PredictionSink

    columns = ["id", "rna_type", "prediction", "probability_a", "probability_b"]
    # ids go out as they came in (the TSV is read with quoting off): no quotes added around 's"2'
    chunk = pd.DataFrame({"probability_b": [0.12345649, 0.5], "prediction": ["b", "a"], "id": ["s1", 's"2'],
                          "rna_type": ["miRNA", "miRNA"], "probability_a": [0.87654351, 0.5], "extra": [1, 2]})
    with PredictionSink(tmp_path / "p.tsv", columns, comments=False) as sink:
        sink.write(ChunkResult(chunk, None))
        sink.write(ChunkResult(chunk.iloc[:1], None))
    assert (tmp_path / "p.tsv").read_text() == (
        "id\trna_type\tprediction\tprobability_a\tprobability_b\n"
        "s1\tmiRNA\tb\t0.876544\t0.123456\n"
        's"2\tmiRNA\ta\t0.5\t0.5\n'
        "s1\tmiRNA\tb\t0.876544\t0.123456\n")
    assert sink.rows == 3 and sink.counts == {"b": 2, "a": 1}


def test_prediction_sink_streams_each_rows_attention_under_its_id(tmp_path):
    import pandas as pd

    from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore
    from rnaloc_tools.predict import ChunkResult, PredictionSink

    meta = {"dim": 1, "rna_type": "miRNA", "classes": ["extracellular", "intracellular"]}
    frame = pd.DataFrame({"id": ["s1", "s2"], "rna_type": "miRNA", "prediction": ["intracellular", "extracellular"],
                          "probability_extracellular": [0.25, 0.5], "probability_intracellular": [0.75, 0.5]})
    weights = [np.array([[0.25], [0.75]], dtype=np.float32), np.array([[1.0]], dtype=np.float32)]
    columns = ["id", "rna_type", "prediction", "probability_extracellular", "probability_intracellular"]
    with PredictionSink(tmp_path / "p.tsv", columns, tmp_path / "a.npz", meta, comments=False) as sink:
        sink.write(ChunkResult(frame, None, weights))
    store = EmbeddingStore(tmp_path / "a.npz", ATTENTION_FORMAT)
    assert store.ids == ["s1", "s2"]
    assert store.get("s1").tolist() == [[0.25], [0.75]] and store.get("s2").tolist() == [[1.0]]


def test_trusted_predictor_reads_one_hot_sequences_back_for_the_composition_check():
    # the bundled miRNA model's domain: a 22-nt poly-A has a miRNA's length but no miRNA's composition,
    # which only the sequence can show; a 400-nt sequence is out by its length alone
    from rnaloc_tools.encoders import get_encoder
    from rnaloc_tools.predict import Predictor, TrustedPredictor, load_model
    from rnaloc_tools.trust import Tally

    model = load_model(None, "miRNA")
    mats = get_encoder("one-hot").embed(["A" * 22, "ACGU" * 100])
    tally = Tally()
    frame = TrustedPredictor(Predictor(model), tally).predict_matrices(["polyA", "long"], mats).frame
    assert frame["in_domain"].tolist() == ["no", "no"]
    assert "composition" in frame["domain_note"][0] and "length 400 nt" in frame["domain_note"][1]
    assert tally.n == 2 and tally.out == 2
    trusted = TrustedPredictor(Predictor(model), Tally())
    assert trusted.predict_matrices(["polyA"], mats[:1]).attention is None
    assert [a.shape for a in trusted.predict_matrices(["polyA"], mats[:1], attention=True).attention] == [(22, 1)]
    # with lengths only (an encoder whose sequence cannot be read back) the poly-A's length is in, its
    # composition unknown
    model.encoder = dict(model.encoder, encoder="other")
    frame = TrustedPredictor(Predictor(model), Tally()).predict_matrices(["polyA", "long"], mats).frame
    assert frame["in_domain"].tolist() == ["unknown", "no"]
    assert frame["domain_note"][0] == "composition not assessed (embeddings input, no sequences)"


def _bundled_with_meta(tmp_path, **changes):
    """The bundled miRNA model with some metadata changed (None: removed)."""
    import onnx

    from rnaloc_tools.bundled import bundled_model_path

    proto = onnx.load(bundled_model_path("miRNA", "rnalocate"))
    props = {p.key: p.value for p in proto.metadata_props}
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path = tmp_path / "m.onnx"
    onnx.save(proto, path)
    return path


@pytest.mark.parametrize("changes, tie, classes", [
    ({"tie_class": "intracellular"}, 1, ("extracellular", "intracellular")),
    ({"tie_class": "extracellular"}, 0, ("extracellular", "intracellular")),
    ({"tie_class": None}, 0, ("extracellular", "intracellular")),          # absent: the first class
    ({"tie_class": "nucleus"}, 0, ("extracellular", "intracellular")),     # not a class: the first
    ({"tie_class": "extracellular", "classes": '["intracellular", "extracellular"]'}, 1,
     ("intracellular", "extracellular")),
    ({"tie_class": None, "classes": '["intracellular", "extracellular"]'}, 0, ("intracellular", "extracellular")),
])
def test_onnx_model_reads_the_tie_class_and_the_class_order(tmp_path, changes, tie, classes):
    from rnaloc_tools.predict import OnnxModel

    model = OnnxModel(_bundled_with_meta(tmp_path, **changes))
    assert model.classes == classes and model.tie_class == tie


def test_onnx_model_reads_its_metadata(tmp_path):
    import hashlib

    from rnaloc_tools.predict import OnnxModel

    path = _bundled_with_meta(tmp_path, max_length="7", quadratic_in_length="true")
    model = OnnxModel(path, provider="cpu")
    assert model.max_length == 7 and model.quadratic is True and model.rna_type == "miRNA"
    assert model.dim == 4 and model.encoder["encoder"] == "one-hot"
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and model.name == "m.onnx"
    assert model.provider == "CPUExecutionProvider" and model.path == str(path)
    assert model.meta["max_length"] == "7" and model.meta["tie_class"] == "extracellular"
    # absent or null: no crop; "false", or absent from a k-mer model: not quadratic
    for changes in ({"max_length": None, "quadratic_in_length": None}, {"max_length": "null"}):
        model = OnnxModel(_bundled_with_meta(tmp_path, **changes))
        assert model.max_length is None and model.quadratic is False
    # absent from any other architecture (a model exported before the key existed, such as
    # test-data/galaxy-mirna-onehot.onnx): its batches are capped; "false" is believed
    for arch in ("rnaloc", "transformer", None):
        model = OnnxModel(_bundled_with_meta(tmp_path, quadratic_in_length=None, arch=arch))
        assert model.quadratic is True, arch
    assert OnnxModel(_bundled_with_meta(tmp_path, quadratic_in_length="false", arch="rnaloc")).quadratic is False


@pytest.mark.parametrize("changes, message", [
    ({"max_length": "0"}, "max_length must be a positive whole number"),
    ({"max_length": "seven"}, "corrupt model metadata: max_length is not JSON"),
    ({"classes": "[extracellular"}, "corrupt model metadata: classes is not JSON"),
    ({"classes": '["nucleus", "cytoplasm"]'}, "the classes of miRNA are"),
    ({"rna_type": "lncRNA"}, "the classes of lncRNA are"),
    ({"rna_type": None}, "not an rnaloc model"),
    ({"classes": None}, "not an rnaloc model"),
    ({"encoder": None}, "not an rnaloc model"),
    ({"encoder": '{"encoder": "one-hot"}'}, "encoder.dim must be a positive whole number, not None"),
    ({"encoder": '{"encoder": 4, "dim": 4}'}, "encoder.encoder must be text"),
    ({"encoder": "[4]"}, "model metadata (encoder)"),
])
def test_onnx_model_refuses_bad_metadata_naming_the_file(tmp_path, changes, message):
    from rnaloc_tools.errors import InputError
    from rnaloc_tools.predict import OnnxModel

    path = _bundled_with_meta(tmp_path, **changes)
    with pytest.raises(InputError) as err:
        OnnxModel(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_onnx_model_refuses_a_missing_file_and_a_non_model(tmp_path):
    from rnaloc_tools.errors import InputError
    from rnaloc_tools.predict import OnnxModel

    with pytest.raises(InputError, match="no such file"):
        OnnxModel(tmp_path / "absent.onnx")
    (tmp_path / "text.onnx").write_text("not a graph\n")
    with pytest.raises(InputError, match=r"text\.onnx: not a readable ONNX model \("):
        OnnxModel(tmp_path / "text.onnx")


def _records(*pairs):
    from rnaloc_tools.seqs import Record

    return [Record(rid, seq, {"rna_type": t} if t else {}) for rid, seq, t in pairs]


def test_trusted_predictor_flags_a_forced_type_mismatch_and_refuses_it_unforced():
    from rnaloc_tools.errors import InputError
    from rnaloc_tools.predict import TrustedPredictor, load_model, make_predictor
    from rnaloc_tools.trust import Tally

    model = load_model(None, "miRNA")
    records = _records(("m1", "UGAGGUAGUAGGUUGUAUAGUU", "miRNA"), ("l1", "UGAGGUAGUAGGUUGUAUAGUU", "lncRNA"),
                       ("x1", "UGAGGUAGUAGGUUGUAUAGUU", None))
    tally = Tally()
    frame = TrustedPredictor(make_predictor(model), tally, force_type=True).predict_chunk(records).frame
    assert frame["id"].tolist() == ["m1", "l1", "x1"]
    # the same sequence three times: the same call and probabilities; the forced one out of domain
    assert frame["prediction"].nunique() == 1 and frame["probability_intracellular"].nunique() == 1
    assert frame["in_domain"].tolist() == ["yes", "no", "yes"]
    assert frame["domain_note"][1] == "input rna_type lncRNA predicted with the miRNA model (--force-type)" and frame["domain_note"][0] == ""
    assert frame["confidence"].tolist() == ["high"] * 3
    assert tally.n == 3 and tally.out == 1
    # attention only when asked, one weight per nucleotide
    trusted = TrustedPredictor(make_predictor(model), Tally())
    assert trusted.predict_chunk(records[:1]).attention is None
    assert [a.shape for a in trusted.predict_chunk([records[0], records[2]], attention=True).attention] == [(22, 1), (22, 1)]
    with pytest.raises(InputError) as err:
        TrustedPredictor(make_predictor(model, source="in.tsv"), Tally()).predict_chunk(records)
    assert err.value.record == "l1" and err.value.source == "in.tsv"


def test_routed_predictor_keeps_the_input_order_and_every_type_columns():
    from rnaloc_tools.predict import RoutedPredictor, TrustedPredictor, load_model, make_predictor
    from rnaloc_tools.trust import Tally

    mir, circ = "UGAGGUAGUAGGUUGUAUAGUU", "ACGU" * 60
    records = _records(("c1", circ, "circRNA"), ("m1", mir, "miRNA"), ("c2", circ, "circRNA"),
                       ("m2", mir, "mirna"))
    predictors = {t: TrustedPredictor(make_predictor(load_model(None, t)), Tally()) for t in ("miRNA", "circRNA")}
    routed = RoutedPredictor(predictors, "in.tsv")
    frame = routed.predict_chunk(records).frame
    assert frame["id"].tolist() == ["c1", "m1", "c2", "m2"]
    assert frame["rna_type"].tolist() == ["circRNA", "miRNA", "circRNA", "miRNA"]
    assert list(frame.columns) == routed.columns and list(frame.index) == [0, 1, 2, 3]
    # each row has the probabilities of its own model's classes only, summing to 1
    mir_cols = ["probability_extracellular", "probability_intracellular"]
    circ_cols = [c for c in routed.columns if c.startswith("probability_") and c not in mir_cols]
    assert circ_cols and frame.loc[[1, 3], circ_cols].isna().all().all() and frame.loc[[0, 2], mir_cols].isna().all().all()
    np.testing.assert_allclose(frame.loc[[1, 3], mir_cols].sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(frame.loc[[0, 2], circ_cols].sum(axis=1), 1, atol=1e-6)
    # the same sequence, the same row whatever its neighbours
    assert frame.loc[0].drop("id").fillna("-").tolist() == frame.loc[2].drop("id").fillna("-").tolist()
    # a row of an unknown type names the input and the record
    with pytest.raises(InputError) as err:
        routed.predict_chunk(records[:1] + _records(("x1", mir, "mRNA")))
    assert err.value.source == "in.tsv" and err.value.record == "x1" and "unknown rna_type 'mRNA'" in str(err.value)
    alone = routed.predict_chunk(records[1:2]).frame
    assert alone.loc[0, mir_cols].tolist() == frame.loc[1, mir_cols].tolist()


# --------------------------------------------------------------------------- onnx_export.py

CKPT = {"rna_type": "miRNA", "classes": ["extracellular", "intracellular"], "arch": "kmer",
        "encoder": {"encoder": "one-hot", "dim": 4, "checkpoint_sha256": None},
        "hparams": {"kmax": 3, "dim": 4}}


def test_export_metadata_by_hand():
    from rnaloc_tools import __version__
    from rnaloc_tools.model.onnx_export import metadata

    class Quadratic:
        quadratic_in_length = True

    ckpt = dict(CKPT, tie_class="intracellular", class_counts=[3, 5], max_length=50, label_source="rnalocate",
                training={"cv": {"cv_MCC": [0.5, 0.1], "cv_ACC": [0.9, 0.05]}})
    props = metadata(ckpt, "ab" * 32, Quadratic())
    assert props == {
        "rnaloc_format": "rnaloc-onnx-1", "rna_type": "miRNA", "classes": '["extracellular", "intracellular"]',
        # keys sorted: the same checkpoint always gives the same bytes
        "encoder": '{"checkpoint_sha256": null, "dim": 4, "encoder": "one-hot"}', "arch": "kmer",
        "hparams": '{"dim": 4, "kmax": 3}', "tie_class": "intracellular", "class_counts": "[3, 5]",
        "max_length": "50", "cv_metrics": '{"cv_ACC": [0.9, 0.05], "cv_MCC": [0.5, 0.1]}',
        "checkpoint_sha256": "ab" * 32, "quadratic_in_length": "true", "tool_version": __version__,
        "label_source": "rnalocate"}
    assert all(isinstance(v, str) for v in props.values())


def test_export_metadata_defaults_of_an_older_checkpoint():
    from rnaloc_tools.domain import METADATA_KEY
    from rnaloc_tools.model.onnx_export import metadata

    props = metadata(dict(CKPT, classes=("intracellular", "extracellular")), "0" * 64)
    # no tie class recorded: the first class (as listed), never silently another; no crop, no counts,
    # no CV, no label source, no domain, not quadratic
    assert props["tie_class"] == "intracellular" and props["classes"] == '["intracellular", "extracellular"]'
    assert props["max_length"] == "null" and props["class_counts"] == "null" and props["cv_metrics"] == "{}"
    assert props["quadratic_in_length"] == "false"
    assert "label_source" not in props and METADATA_KEY not in props
    assert metadata(dict(CKPT, tie_class=None, training={"cv": None}), "0" * 64)["tie_class"] == "extracellular"
    assert metadata(dict(CKPT, training={}), "0" * 64)["cv_metrics"] == "{}"


def test_export_metadata_carries_the_domain():
    from rnaloc_tools.domain import METADATA_KEY, fit_domain, to_json
    from rnaloc_tools.model.onnx_export import metadata

    seqs = ["".join("ACGU"[(i * 7 + j * 3) % 4] for j in range(20 + i % 7)) for i in range(60)]
    domain = fit_domain(seqs)
    props = metadata(dict(CKPT, **{METADATA_KEY: domain}), "0" * 64)
    assert props[METADATA_KEY] == to_json(domain)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A seeded, untrained k-mer checkpoint (no training: export reads only the checkpoint)."""
    import torch

    from rnaloc_tools.model.checkpoint import save_checkpoint
    from rnaloc_tools.model.registry import build_model

    torch.manual_seed(0)
    model, hp = build_model("kmer", dim=4, n_classes=2, kmax=3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, hp, arch="kmer", classes=["extracellular", "intracellular"], rna_type="miRNA",
                    encoder={"encoder": "one-hot", "dim": 4, "checkpoint_sha256": None, "max_length": None},
                    extra={"tie_class": "intracellular", "class_counts": [3, 5], "max_length": 30})
    return path


def test_export_writes_the_checked_graph_and_its_metadata(tiny_checkpoint, tmp_path):
    import hashlib

    import onnx
    import torch

    from rnaloc_tools import __version__
    from rnaloc_tools.model.checkpoint import load_checkpoint
    from rnaloc_tools.model.onnx_export import ATOL, export_onnx
    from rnaloc_tools.predict import OnnxModel

    out = tmp_path / "m.onnx"
    worst = export_onnx(tiny_checkpoint, out)
    assert 0 <= worst <= ATOL and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    proto = onnx.load(out)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["checkpoint_sha256"] == hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert meta["tie_class"] == "intracellular" and meta["max_length"] == "30" and meta["arch"] == "kmer"
    assert meta["class_counts"] == "[3, 5]" and meta["quadratic_in_length"] == "false"
    assert proto.producer_name == "rnaloc-tools" and proto.producer_version == __version__
    assert proto.doc_string == "rnaloc kmer model for miRNA (extracellular, intracellular)"
    assert [o.name for o in proto.graph.output] == ["probabilities", "attention"]
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert dims == {"embeddings": ["batch", "length", 4], "lengths": ["batch"]}
    # the outputs are dynamic too (module doc: probabilities (B, C), attention (B, L))
    outs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert outs == {"probabilities": ["batch", 2], "attention": ["batch", "length"]}
    assert proto.opset_import[0].version == 17
    # predict reads it back: the tie class and the crop; its probabilities are the softmax of the head's logits
    model = OnnxModel(out)
    assert model.tie_class == 1 and model.max_length == 30
    torch_model, _, _ = load_checkpoint(tiny_checkpoint)
    x = np.zeros((2, 9, 4), dtype=np.float32)
    x[0, :9, 0] = 1
    x[1, :5, 2] = 1
    lengths = np.array([9, 5], dtype=np.int64)
    probs, att = model.run(x, lengths)
    with torch.no_grad():
        logits, ref_att = torch_model(torch.from_numpy(x), torch.from_numpy(lengths))
    np.testing.assert_allclose(probs, torch.softmax(logits, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(att, ref_att.numpy(), atol=1e-5)


@pytest.mark.parametrize("worst", [2e-4, float("nan")])
def test_export_refuses_a_disagreement_over_atol_or_nan_and_writes_nothing(tiny_checkpoint, tmp_path, monkeypatch,
                                                                           worst):
    import rnaloc_tools.model.onnx_export as onnx_export
    from rnaloc_tools.errors import RnalocError

    monkeypatch.setattr(onnx_export, "compare", lambda *a, **k: worst)
    with pytest.raises(RnalocError, match=r"m\.onnx: not written: ONNX Runtime differs from PyTorch by") as err:
        onnx_export.export_onnx(tiny_checkpoint, tmp_path / "m.onnx")
    assert str(err.value).endswith("(> 0.0001) on lengths (1,), (3,), (50, 17, 4), (333, 100, 2, 61), (1000,)")
    assert list(tmp_path.iterdir()) == []
    # at the limit it is written
    monkeypatch.setattr(onnx_export, "compare", lambda *a, **k: 1e-4)
    assert onnx_export.export_onnx(tiny_checkpoint, tmp_path / "m.onnx") == 1e-4


def test_compare_measures_the_largest_difference_and_checks_shapes():
    import torch

    from rnaloc_tools.errors import RnalocError
    from rnaloc_tools.model.onnx_export import _inputs, compare

    x, lengths = _inputs([3, 1, 2], 2, np.random.default_rng(0))
    assert x.shape == (3, 3, 2) and x.dtype == np.float32 and lengths.dtype == np.int64
    assert lengths.tolist() == [3, 1, 2]
    assert not x[1, 1:].any() and not x[2, 2:].any() and np.all(x[0] != 0) and np.all(x[1, 0] != 0)
    again, _ = _inputs([3, 1, 2], 2, np.random.default_rng(0))
    np.testing.assert_array_equal(x, again)  # seeded

    def reference(x, lengths):  # probabilities (B, 2), attention (B, L)
        p = torch.sigmoid(x[:, :, 0].sum(1, keepdim=True))
        return torch.cat([p, 1 - p], 1), torch.softmax(x[:, :, 1], 1)

    class Session:
        def __init__(self, dp=0.0, da=0.0, extra=0):
            self.dp, self.da, self.extra = dp, da, extra
            self.calls = []

        def run(self, names, feeds):
            assert names == ["probabilities", "attention"] and set(feeds) == {"embeddings", "lengths"}
            self.calls.append(feeds["lengths"].tolist())
            p, a = (t.numpy() for t in reference(torch.from_numpy(feeds["embeddings"]), torch.from_numpy(feeds["lengths"])))
            return p + self.dp, np.pad(a, ((0, 0), (0, self.extra))) + self.da

    batches = ((2,), (4, 1))
    assert compare(Session(), reference, 2, batches=batches) == 0.0
    session = Session(dp=0.25)
    assert compare(session, reference, 2, batches=batches) == pytest.approx(0.25)
    assert session.calls == [[2], [4, 1]]
    assert compare(Session(da=-0.5), reference, 2, batches=batches) == pytest.approx(0.5)
    # the largest over every batch, probabilities and attention alike, wherever it is
    class Late(Session):
        def run(self, names, feeds):
            p, a = super().run(names, feeds)
            return (p + 0.125, a) if len(self.calls) == 2 else (p, a + 0.0625)

    class Early(Session):
        def run(self, names, feeds):
            p, a = super().run(names, feeds)
            return (p + 0.125, a) if len(self.calls) == 1 else (p, a + 0.0625)

    assert compare(Late(), reference, 2, batches=batches) == pytest.approx(0.125)
    assert compare(Early(), reference, 2, batches=batches) == pytest.approx(0.125)

    # seeded: an error that depends on the inputs is measured the same way every time
    class InputDependent(Session):
        def run(self, names, feeds):
            p, a = super().run(names, feeds)
            return p + 1e-3 * float(np.abs(feeds["embeddings"]).sum()), a

    first = compare(InputDependent(), reference, 2, batches=batches)
    assert first > 0 and compare(InputDependent(), reference, 2, batches=batches) == first
    assert compare(InputDependent(), reference, 2, batches=batches, seed=0) == first
    assert compare(InputDependent(), reference, 2, batches=batches, seed=7) != first
    with pytest.raises(RnalocError, match="ONNX output shapes"):
        compare(Session(extra=1), reference, 2, batches=batches)


# --------------------------------------------------------------------------- formats/sequences.py


def _fasta_ids(path, **kw):
    from rnaloc_tools.formats import read_records

    return [(r.id, r.seq) for r in read_records(path, **kw)]


def test_sniff_skips_comment_lines_of_any_length_and_blank_lines(tmp_path):
    from rnaloc_tools.formats.sequences import _CHUNK

    long_comment = "#" + "x" * (3 * _CHUNK) + "\n"        # longer than the sniffer's read size, holds '>' and a tab
    tsv = tmp_path / "a.tsv"
    tsv.write_text("#one\n" + long_comment + "#>not\tfasta\n" + "id\tsequence\ns1\tacgt\n")
    assert _fasta_ids(tsv) == [("s1", "ACGU")]
    fa = tmp_path / "a.fa"
    fa.write_text(long_comment + "\n  \n>r1 desc\nacgt\n>r2\nuu\n")
    assert _fasta_ids(fa) == [("r1", "ACGU"), ("r2", "UU")]


def test_sniff_replays_every_byte_it_read(tmp_path):
    from rnaloc_tools.formats.sequences import _CHUNK, sniff

    # a header line longer than the read size: the sniffer reads on until it sees the tab
    header = "a" * (2 * _CHUNK) + "\tid\tsequence\n"
    data = ("#c\n" + header + "x\ts1\tACGU\n").encode()
    import io

    fmt, stream = sniff(io.BufferedReader(io.BytesIO(data)), "t.tsv")
    assert fmt == "tsv" and stream.read() == data
    fmt, stream = sniff(io.BufferedReader(io.BytesIO(b"\xef\xbb\xbf>a\nAC\n")), "t.fa")
    assert fmt == "fasta" and stream.read() == b"\xef\xbb\xbf>a\nAC\n"
    # a first line longer than the read size without any tab is not a table
    with pytest.raises(InputError, match=r"t\.txt: not FASTA \(no line starting with '>'\) nor a dataset TSV"):
        sniff(io.BufferedReader(io.BytesIO(b"A" * (3 * _CHUNK) + b"\n")), "t.txt")
    with pytest.raises(InputError, match=r"t\.txt: empty input: no sequences"):
        sniff(io.BufferedReader(io.BytesIO(b"\n  \n\n")), "t.txt")
    with pytest.raises(InputError, match=r"t\.txt: not FASTA"):
        sniff(io.BufferedReader(io.BytesIO(b"#only a comment\n")), "t.txt")
    # the first significant line decides alone: a tab on a later line does not make it a table,
    # whether the first line is short or longer than the read size
    for first in (b"ACGU\n", b"A" * (_CHUNK + 5) + b"\n"):
        with pytest.raises(InputError, match=r"t\.txt: not FASTA"):
            sniff(io.BufferedReader(io.BytesIO(first + b"x\ty\n")), "t.txt")
    # a byte-order mark is one only at the start of the file
    with pytest.raises(InputError, match=r"t\.txt: not FASTA"):
        sniff(io.BufferedReader(io.BytesIO(b"#c\n\xef\xbb\xbf>a\nAC\n")), "t.txt")
    # a long first line that ends the file without a newline or a tab
    with pytest.raises(InputError, match=r"t\.txt: not FASTA"):
        sniff(io.BufferedReader(io.BytesIO(b"A" * (_CHUNK + 5))), "t.txt")
    # a first line without a tab in its first 1 MiB is no header (the sniffer stops reading it there)
    from rnaloc_tools.formats.sequences import _MAX_FIRST_LINE

    with pytest.raises(InputError, match=r"t\.txt: not FASTA"):
        sniff(io.BufferedReader(io.BytesIO(b"A" * (_MAX_FIRST_LINE + 10) + b"\tx\n")), "t.txt")
    # a tab in the middle of a header line longer than two reads is found
    data = b"a" * (_CHUNK - 10) + b"\tid\t" + b"b" * (2 * _CHUNK) + b"\nrow\n"
    fmt, stream = sniff(io.BufferedReader(io.BytesIO(data)), "t.tsv")
    assert fmt == "tsv" and stream.read() == data


def test_replay_reads_the_head_then_the_rest_in_small_pieces():
    import io

    from rnaloc_tools.formats.sequences import _Replay

    replay = _Replay(b"abcde", io.BufferedReader(io.BytesIO(b"fghij")))
    buf = bytearray(3)
    got = []
    while True:
        n = replay.readinto(buf)
        if not n:
            break
        got.append(bytes(buf[:n]))
    assert b"".join(got) == b"abcdefghij" and got[:2] == [b"abc", b"de"] and replay.readable()


def test_fasta_ids_headers_and_duplicates(tmp_path):
    fa = tmp_path / "a.fa"
    fa.write_text(">id1 first\tdesc\nAC\n>id2\nGU\n")
    assert _fasta_ids(fa) == [("id1", "AC"), ("id2", "GU")]
    fa.write_text(">id1\nAC\n> \nGU\n")
    with pytest.raises(InputError, match=r"a\.fa: record '': FASTA header without an id"):
        list(_fasta_ids(fa))
    # a duplicate far apart (older than the duplicate checker's recent set) is found too
    fa.write_text("".join(f">s{i}\nA\n" for i in range(20000)) + ">s3\nC\n")
    with pytest.raises(InputError, match=r"a\.fa: record 's3': duplicate id"):
        _fasta_ids(fa)
    fa.write_text(">s1\nA\n>s2\nC\n>s1\nG\n>s4\nU\n")
    with pytest.raises(InputError, match=r"record 's1': duplicate id"):
        _fasta_ids(fa)


def test_read_fasta_handle_of_no_records_is_empty_input():
    import io

    from rnaloc_tools.formats.sequences import read_fasta_handle

    with pytest.raises(InputError) as err:
        list(read_fasta_handle(io.StringIO(""), "x.fa"))
    assert str(err.value) == "x.fa: empty input: no sequences"
    assert [(r.id, r.seq) for r in read_fasta_handle(io.StringIO(">a b\nac\n"), "x.fa")] == [("a", "AC")]


def test_read_records_names_its_source_and_refuses_binary(tmp_path):
    fa = tmp_path / "a.fa"
    fa.write_bytes(b">a\nAC\xff\xfeGU\n")
    with pytest.raises(InputError, match=r"^x\.fa: not a text file \("):
        _fasta_ids(fa, source="x.fa")
    fa.write_text(">a\nAC-\n")
    with pytest.raises(InputError, match=r"^" + str(fa).replace(".", r"\.") + ": record 'a': illegal letter"):
        _fasta_ids(fa)


def test_is_npz_only_for_a_zip_file(tmp_path):
    from rnaloc_tools.formats.sequences import is_npz

    np.savez(tmp_path / "e.npz", a=np.zeros(2))
    (tmp_path / "e.fa").write_text(">a\nAC\n")
    (tmp_path / "pk.txt").write_bytes(b"PK\x03")
    assert is_npz(tmp_path / "e.npz") and is_npz(str(tmp_path / "e.npz"))
    assert not is_npz(tmp_path / "e.fa") and not is_npz(tmp_path / "pk.txt")
    assert not is_npz(tmp_path / "missing.npz") and not is_npz(tmp_path) and not is_npz("-")


# --------------------------------------------------------------------------- formats/tables.py


def test_read_table_keeps_comments_text_and_strips_names(tmp_path):
    from rnaloc_tools.formats import read_table

    path = tmp_path / "t.tsv"
    path.write_text("#a\n#b\tc\n id \tvalue\r\nx\t007\ny\tNA\n#z\t\n")
    table = read_table(path)
    assert table.header == ["#a", "#b\tc"] and list(table.df.columns) == ["id", "value"]
    # text stays text: no numbers, no NaN, and a '#' after the header is a row
    assert table.df.to_dict("list") == {"id": ["x", "y", "#z"], "value": ["007", "NA", ""]}
    assert table.source == str(path)


@pytest.mark.parametrize("text, message", [
    ("#c\nid\tid\n1\t2\n", r"t\.tsv:2: duplicate column 'id' in the header"),
    ("#c\n", r"t\.tsv: empty table: no header row"),
    ("\n", r"t\.tsv: empty table: no header row"),
    ("#c\n#d\nid\tsequence\na\tAC\nb\tGU\tx\tq\n", r"t\.tsv:5: 4 tab-separated fields, but the header has 2"),
    ("#c\nid\tsequence\na\tAC\tx\nb\tGU\tx\n", r"t\.tsv:3: 3 tab-separated fields, but the header has 2"),
    ("name\tseq\na\tAC\n", r"t\.tsv: missing column\(s\) id, sequence \(the header has: name, seq\)"),
])
def test_read_table_refusals_name_the_file_and_line(tmp_path, text, message):
    from rnaloc_tools.formats import read_table

    path = tmp_path / "t.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_table(path, require=("id", "sequence"))


@pytest.mark.parametrize("text, message", [
    ("id\trna_type\tlabel\tsequence\n", r"d\.tsv: no rows"),
    ("id\trna_type\tlabel\tsequence\na\tmiRNA\tintracellular\tAC\na\tmiRNA\tintracellular\tGU\n",
     r"d\.tsv: record 'a': duplicate id"),
    ("#p\nid\trna_type\tlabel\tsequence\na\tmiRNA\tintracellular\tAC\n \tmiRNA\tintracellular\tGU\n",
     r"d\.tsv:4: empty id"),
    ("id\trna_type\tlabel\tsequence\na\tmRNA\tintracellular\tAC\n", r"record 'a': unknown rna_type 'mRNA'"),
    ("id\trna_type\tlabel\tsequence\na\tmiRNA\tnucleus\tAC\n",
     r"record 'a': label 'nucleus' is not a class of miRNA \(extracellular, intracellular\)"),
    ("id\trna_type\tlabel\tsequence\na\tmiRNA\tintracellular\tAXC\n", r"record 'a': illegal letter"),
])
def test_read_dataset_refusals(tmp_path, text, message):
    from rnaloc_tools.formats import read_dataset

    path = tmp_path / "d.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_dataset(path)


def test_read_dataset_normalises_and_checks_labels_only_when_asked(tmp_path):
    from rnaloc_tools.formats import read_dataset

    path = tmp_path / "d.tsv"
    path.write_text("#p\nid\trna_type\tlabel\tsequence\tfold\na\tmiRNA\tintracellular\tac gt\t1\n"
                    "b\tlncRNA\tnucleus\tuuu\t2\n")
    table = read_dataset(path)
    assert table.df["sequence"].tolist() == ["ACGU", "UUU"] and table.header == ["#p"]
    records = list(table.records())
    assert (records[0].id, records[0].seq) == ("a", "ACGU")
    assert records[1].extra == {"rna_type": "lncRNA", "label": "nucleus", "fold": "2"}
    path.write_text("id\trna_type\tlabel\tsequence\na\tmiRNA\tnucleus\tAC\n")
    assert read_dataset(path, require=("id", "sequence")).df["label"].tolist() == ["nucleus"]  # not checked
    with pytest.raises(InputError, match="not a class"):
        read_dataset(path, require=("id", "sequence"), labels=True)


def test_iter_dataset_records_in_blocks_equals_the_whole_table(tmp_path):
    import io

    from rnaloc_tools.formats.tables import iter_dataset_records

    rows = [f"r{i}\tmiRNA\t{'acgu'[i % 4] * (i + 1)}\tx{i}\n" for i in range(7)]
    text = "#one\n#two\nid\trna_type\tsequence\tother\n" + "".join(rows)
    whole = [(r.id, r.seq, r.extra) for r in iter_dataset_records(io.StringIO(text), "d.tsv")]
    assert whole[0] == ("r0", "A", {"rna_type": "miRNA", "other": "x0"}) and len(whole) == 7
    assert whole[6] == ("r6", "GGGGGGG", {"rna_type": "miRNA", "other": "x6"})
    for block in (1, 2, 3, 7, 8):
        assert [(r.id, r.seq, r.extra) for r in iter_dataset_records(io.StringIO(text), "d.tsv", block=block)] == whole


@pytest.mark.parametrize("block", [2, 3, 100])
def test_iter_dataset_records_errors_name_the_file_line_across_blocks(block):
    import io

    from rnaloc_tools.formats.tables import iter_dataset_records

    head = "#one\nid\tsequence\n"   # rows start at line 3
    rows = ["a\tAC\n", "b\tGU\n", "c\tAA\n", " \tCC\n"]   # empty id on line 6

    def read(text):
        return list(iter_dataset_records(io.StringIO(text), "d.tsv", block=block))

    with pytest.raises(InputError, match=r"^d\.tsv:6: empty id$"):
        read(head + "".join(rows))
    with pytest.raises(InputError, match=r"^d\.tsv:7: 3 tab-separated fields, but the header has 2"):
        read(head + "".join(rows[:3]) + "d\tAC\n" + "e\tAC\tx\n")
    with pytest.raises(InputError, match=r"^d\.tsv: record 'a': duplicate id$"):
        read(head + "".join(rows[:3]) + "a\tGG\n")
    with pytest.raises(InputError, match=r"^d\.tsv: no rows$"):
        read(head)
    with pytest.raises(InputError, match=r"^d\.tsv: missing column\(s\) sequence"):
        read("#one\nid\tseq\n")
    with pytest.raises(InputError, match=r"^d\.tsv: empty table: no header row$"):
        read("#one\n")
    with pytest.raises(InputError, match=r"^d\.tsv: record 'c': illegal letter"):
        read(head + "a\tAC\nb\tGU\nc\tAZ\n")


def test_write_table_header_provenance_notes_and_no_comments(tmp_path):
    import pandas as pd

    from rnaloc_tools import __version__
    from rnaloc_tools.formats import read_table, write_table

    df = pd.DataFrame({"id": ["a", "b"], "value": ["1", "x y"]})
    path = tmp_path / "t.tsv"
    write_table(df, path, "curate", header=["#earlier"], notes=["#note: n"])
    lines = path.read_text().split("\n")
    assert lines[0] == "#earlier" and lines[1].startswith(f"#rnaloc curate {__version__}: ")
    assert lines[2:] == ["#note: n", "id\tvalue", "a\t1", "b\tx y", ""]
    back = read_table(path)
    assert back.df.equals(df) and back.header == lines[:3]
    write_table(df, path, "curate", header=["#earlier"], notes=["#note"], comments=False)
    assert path.read_text() == "id\tvalue\na\t1\nb\tx y\n"


# --------------------------------------------------------------------------- formats/npz.py

NPZ_META = {"encoder": "one-hot", "dim": 2, "checkpoint_sha256": None}


def _npz(path, mats, meta=NPZ_META, order=None, **kw):
    return write_npz(path, mats, meta, order, **kw)


def test_npz_round_trip_in_the_order_asked_with_rows_and_dtypes(tmp_path):
    from rnaloc_tools.formats import EmbeddingStore

    mats = {"a": np.array([[1, 2], [3, 4], [5, 6]]), "longer_id": np.array([[0.5, -1]]),
            "c": np.array([[7, 8], [9, 10]])}
    store = EmbeddingStore(_npz(tmp_path / "e.npz", mats, order=["c", "a", "longer_id"]))
    assert store.ids == ["c", "a", "longer_id"] and len(store) == 3 and "a" in store and "z" not in store
    assert [store.length(r) for r in store.ids] == [2, 3, 1] and store.dim == 2
    for rid, mat in mats.items():
        got = store.get(rid)
        assert got.dtype == np.float32 and got.tolist() == mat.tolist()
    assert store.get("a", np.float16).dtype == np.float16
    assert store.get("a", rows=2).tolist() == [[1, 2], [3, 4]] and store.get("a", rows=9).shape == (3, 2)
    assert store["c"].tolist() == [[7, 8], [9, 10]]
    assert [rid for rid, _ in store.items()] == ["c", "a", "longer_id"]
    meta = store.meta
    assert meta["format"] == "rnaloc-embeddings" and meta["dim"] == 2 and meta["encoder"] == "one-hot"
    with pytest.raises(RnalocError, match="id 'zz' is not in the embeddings"):
        store.get("zz")
    # in the order added, and float32 attention-style storage
    store = EmbeddingStore(_npz(tmp_path / "f.npz", mats, dtype=np.float32), "rnaloc-embeddings")
    assert store.ids == ["a", "longer_id", "c"] and store.get("longer_id").tolist() == [[0.5, -1]]
    assert store.shards[0].embeddings.dtype == np.float32


def test_npz_writer_refusals(tmp_path):
    from rnaloc_tools.formats import EmbeddingWriter

    with pytest.raises(RnalocError, match=r"embedding of 'a' has shape \(3,\), expected \(L, 2\)"):
        _npz(tmp_path / "e.npz", {"a": np.zeros(3)})
    with pytest.raises(RnalocError, match=r"embedding of 'a' has shape \(3, 3\), expected \(L, 2\)"):
        _npz(tmp_path / "e.npz", {"a": np.zeros((3, 3))})
    with pytest.raises(RnalocError, match="duplicate id 'a'"):
        with EmbeddingWriter(tmp_path / "e.npz", NPZ_META) as w:
            w.add("a", np.zeros((1, 2)))
            w.add("a", np.zeros((1, 2)))
    with pytest.raises(RnalocError, match="the order does not match"):
        _npz(tmp_path / "e.npz", {"a": np.zeros((1, 2)), "b": np.zeros((1, 2))}, order=["a", "c"])
    with pytest.raises(RnalocError, match="the order does not match"):
        _npz(tmp_path / "e.npz", {"a": np.zeros((1, 2)), "b": np.zeros((1, 2))}, order=["a"])
    assert list(tmp_path.iterdir()) == []


def test_npz_get_refuses_nan_naming_the_record(tmp_path):
    from rnaloc_tools.formats import EmbeddingStore

    store = EmbeddingStore(_npz(tmp_path / "e.npz", {"ok": np.ones((2, 2)), "bad": np.array([[1, np.inf]])}))
    assert store.get("ok").tolist() == [[1, 1], [1, 1]]
    with pytest.raises(InputError, match=r"e\.npz: record 'bad': the embedding holds NaN or infinite values"):
        store.get("bad")


@pytest.mark.parametrize("meta, message", [
    ({"format": "rnaloc-attention"}, "not an rnaloc-embeddings NPZ (meta.format is 'rnaloc-attention')"),
    ({"dim": 0}, "meta.dim must be a positive whole number, not 0"),
    ({"dim": "2"}, "meta.dim must be a positive whole number, not '2'"),
    ({"max_length": 0}, "meta.max_length must be a positive whole number"),
    ({"model_max_length": -1}, "meta.model_max_length must be a positive whole number"),
    ({"encoder": 3}, "meta.encoder must be text"),
    ({"long_policy": 3}, "meta.long_policy must be text"),
    ({"model_sha256": 3}, "meta.model_sha256 must be text"),
    ({"rna_type": "mRNA"}, "unknown rna_type 'mRNA'"),
    ({"rna_type": "miRNA", "classes": ["nucleus", "cytoplasm"]}, "the classes of miRNA are"),
])
def test_npz_meta_is_checked_naming_the_file(tmp_path, meta, message):
    import re

    from rnaloc_tools.formats import EmbeddingStore
    from rnaloc_tools.formats.npz import _write_member

    import json
    import zipfile

    full = {"format": "rnaloc-embeddings", "encoder": "one-hot", "dim": 2}
    full.update(meta)
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as zf:
        _write_member(zf, "ids", np.array(["a"]))
        _write_member(zf, "offsets", np.array([0, 1], dtype=np.int64))
        _write_member(zf, "meta", np.array(json.dumps(full)))
        _write_member(zf, "embeddings", np.zeros((1, 2), dtype=np.float16))
    with pytest.raises(InputError, match=f"^{re.escape(str(path))}: .*{re.escape(message)}"):
        EmbeddingStore(path)


def test_npz_meta_classes_are_kept_in_file_order(tmp_path):
    from rnaloc_tools.formats import ATTENTION_FORMAT, EmbeddingStore

    meta = {"dim": 1, "rna_type": "miRNA", "classes": ["intracellular", "extracellular"], "max_length": 5}
    store = EmbeddingStore(_npz(tmp_path / "a.npz", {"s": np.ones((2, 1))}, meta=meta, dtype=np.float32,
                                format_name=ATTENTION_FORMAT), ATTENTION_FORMAT)
    assert store.meta["classes"] == ["intracellular", "extracellular"] and store.meta["max_length"] == 5
    assert store.meta["format"] == ATTENTION_FORMAT


def test_shards_must_agree_and_not_repeat_ids(tmp_path):
    from rnaloc_tools.formats import EmbeddingStore

    a = _npz(tmp_path / "a.npz", {"x": np.ones((1, 2)), "y": np.ones((2, 2))})
    b = _npz(tmp_path / "b.npz", {"z": np.zeros((3, 2))})
    store = EmbeddingStore([a, b])
    assert store.ids == ["x", "y", "z"] and store.length("z") == 3 and store.get("z").tolist() == [[0, 0]] * 3
    for key, value in (("encoder", "rna-fm"), ("checkpoint_sha256", "ab"), ("long_policy", "truncate")):
        c = _npz(tmp_path / f"c-{key}.npz", {"w": np.ones((1, 2))}, meta=dict(NPZ_META, **{key: value}))
        with pytest.raises(InputError, match=f"c-{key}.npz: shard made with {key}={value!r}, but .*a.npz has"):
            EmbeddingStore([a, c])
    with pytest.raises(InputError, match=r"b\.npz: record 'z': duplicate id: also in another shard \(.*b2\.npz\)"):
        EmbeddingStore([_npz(tmp_path / "b2.npz", {"z": np.zeros((1, 2))}), b])
    with pytest.raises(RnalocError, match="no embeddings file given"):
        EmbeddingStore([])


def test_check_same_encoder_compares_each_encoder_key():
    from rnaloc_tools.formats import check_same_encoder

    model = {"encoder": "one-hot", "dim": 4, "checkpoint_sha256": None, "long_policy": "x"}
    check_same_encoder(model, dict(model, long_policy="y", other=1), "model m", "e.npz")
    for key, value in (("encoder", "rna-fm"), ("dim", 640), ("checkpoint_sha256", "ab")):
        with pytest.raises(RnalocError, match=f"^e.npz was made with {key}={value!r}, but model m expects "):
            check_same_encoder(model, dict(model, **{key: value}), "model m", "e.npz")


# --------------------------------------------------------------------------- embed.py: chunks and embedding


class _FakeEncoder:
    """Row j of a piece's matrix: (code of its base, j): what a window or a crop did is visible by hand."""

    name = "fake"
    dim = 2

    def __init__(self, max_len=4, extra_tokens=2, default_toks_per_batch=None):
        self.max_len, self.extra_tokens = max_len, extra_tokens
        self.default_toks_per_batch = default_toks_per_batch
        self.batches = []

    def embed(self, seqs):
        self.batches.append(list(seqs))
        return [np.array([["ACGU".index(b), j] for j, b in enumerate(s)], dtype=np.float32) for s in seqs]

    def meta(self):
        return {"encoder": "fake", "dim": 2, "checkpoint_sha256": None, "max_length": self.max_len}


def _recs(*seqs):
    from rnaloc_tools.seqs import Record

    return [Record(f"r{i}", s) for i, s in enumerate(seqs)]


def test_embed_chunk_truncates_long_sequences_and_keeps_the_order():
    from rnaloc_tools.embed import EmbedStats, embed_chunk

    enc = _FakeEncoder(max_len=4)
    stats = EmbedStats()
    out = embed_chunk(_recs("AC", "GUACGU", "UUUU", "G"), enc, stats=stats)
    assert [m[:, 0].tolist() for m in out] == [[0, 1], [2, 3, 0, 1], [3, 3, 3, 3], [2]]
    assert all(m.dtype == np.float32 for m in out)
    assert out[1][:, 1].tolist() == [0, 1, 2, 3]  # the first 4 nucleotides
    assert (stats.sequences, stats.nucleotides, stats.truncated, stats.windowed) == (4, 13, 1, 0)
    # the encoder saw the pieces longest first, the long one cut to 4
    assert [s for b in enc.batches for s in b] == ["GUAC", "UUUU", "AC", "G"]
    out16 = embed_chunk(_recs("AC", "GUACGU"), _FakeEncoder(max_len=4), dtype=np.float16)
    assert [m.dtype for m in out16] == [np.float16, np.float16] and out16[1].shape == (4, 2)


def test_embed_chunk_windows_average_the_overlaps_by_hand():
    from rnaloc_tools.embed import EmbedStats, embed_chunk

    enc = _FakeEncoder(max_len=4)
    stats = EmbedStats()
    # 6 nt, windows of 4 with the default overlap 4 // 4 = 1: stride 3 -> (0, 4) and (2, 6)
    out = embed_chunk(_recs("GUACGU", "AC"), enc, long="windows", stats=stats)
    assert out[0][:, 0].tolist() == [2, 3, 0, 1, 2, 3]
    # position in the window: 0 1 2 3 | 0 1 2 3 from 2 on: overlaps (2+0)/2, (3+1)/2
    assert out[0][:, 1].tolist() == [0, 1, 1, 2, 2, 3] and out[1][:, 1].tolist() == [0, 1]
    assert sorted(s for b in enc.batches for s in b) == ["AC", "ACGU", "GUAC"]
    assert (stats.sequences, stats.truncated, stats.windowed) == (2, 0, 1)
    enc = _FakeEncoder(max_len=4)
    out = embed_chunk(_recs("GUACGUA"), enc, long="windows", overlap=2, dtype=np.float16)
    # 7 nt, stride 2: starts 0, 2, then 3 flush with the end
    assert sorted(s for b in enc.batches for s in b) == ["ACGU", "CGUA", "GUAC"]
    assert out[0].dtype == np.float16 and out[0][:, 0].tolist() == [2, 3, 0, 1, 2, 3, 0]
    # positions: 0:0 1:1 2:(2+0)/2 3:(3+1+0)/3 4:(2+1)/2 5:(3+2)/2 6:3
    np.testing.assert_allclose(out[0][:, 1].astype(float), [0, 1, 1, 4 / 3, 1.5, 2.5, 3], rtol=1e-3)


def test_embed_chunk_without_a_limit_and_with_a_bad_policy():
    from rnaloc_tools.embed import embed_chunk

    enc = _FakeEncoder(max_len=None)
    out = embed_chunk(_recs("GUACGUAC"), enc, long="truncate")
    assert out[0].shape == (8, 2) and enc.batches == [["GUACGUAC"]]
    with pytest.raises(ValueError, match="long policy must be one of"):
        embed_chunk(_recs("AC"), enc, long="crop")


def test_embed_chunk_packs_batches_by_the_token_budget():
    from rnaloc_tools.embed import embed_chunk

    # pieces of 4, 4, 3, 2 nt, + 2 extra tokens each: a budget of 12 holds two of 6 tokens
    enc = _FakeEncoder(max_len=4, extra_tokens=2)
    embed_chunk(_recs("ACGU", "GGGG", "CCC", "AA"), enc, toks_per_batch=12)
    assert enc.batches == [["ACGU", "GGGG"], ["CCC", "AA"]]
    # the encoder's own default budget when none is given
    enc = _FakeEncoder(max_len=4, extra_tokens=2, default_toks_per_batch=6)
    embed_chunk(_recs("ACGU", "GGGG"), enc)
    assert enc.batches == [["ACGU"], ["GGGG"]]


def test_resolve_toks_per_batch_and_long_policy_name():
    from rnaloc_tools.embed import DEFAULT_TOKS_PER_BATCH, long_policy_name, resolve_toks_per_batch

    assert resolve_toks_per_batch(_FakeEncoder(), "100") == 100
    assert resolve_toks_per_batch(_FakeEncoder(default_toks_per_batch=77)) == 77
    assert resolve_toks_per_batch(_FakeEncoder(default_toks_per_batch=77), 5) == 5
    assert resolve_toks_per_batch(_FakeEncoder()) == DEFAULT_TOKS_PER_BATCH == 16384
    assert long_policy_name(_FakeEncoder(max_len=None), "windows", 3) == "none"
    assert long_policy_name(_FakeEncoder(max_len=1022), "truncate", 255) == "truncate"
    assert long_policy_name(_FakeEncoder(max_len=1022), "windows", 255) == "windows:1022/255"


def test_chunk_by_size_and_chunk_records_by_hand():
    from rnaloc_tools.embed import chunk_by_size, chunk_records

    assert list(chunk_by_size([3, 3, 5, 1, 7, 2], lambda n: n, 6)) == [[3, 3], [5, 1], [7], [2]]
    assert list(chunk_by_size([1, 1, 1, 1, 1], lambda n: n, 100, max_items=2)) == [[1, 1], [1, 1], [1]]
    assert list(chunk_by_size([6, 1], lambda n: n, 6)) == [[6], [1]]   # exactly the budget still fits
    assert list(chunk_by_size([], lambda n: n, 6)) == []
    recs = _recs("AAA", "CC", "G", "UUUU")
    assert [[r.id for r in c] for c in chunk_records(recs, 5)] == [["r0", "r1"], ["r2", "r3"]]
    assert [[r.id for r in c] for c in chunk_records(recs, 100, max_records=3)] == [["r0", "r1", "r2"], ["r3"]]


def test_chunk_nt_caps_a_wide_encoder():
    from types import SimpleNamespace

    from rnaloc_tools.embed import CHUNK_BYTES, DEFAULT_CHUNK_NT, chunk_nt

    assert chunk_nt(SimpleNamespace(dim=4)) == DEFAULT_CHUNK_NT == 2_000_000
    assert chunk_nt(SimpleNamespace(dim=640)) == (256 << 20) // (4 * 640) == CHUNK_BYTES // 2560
    assert chunk_nt(SimpleNamespace(dim=4), 10) == 10
    assert chunk_nt(SimpleNamespace(dim=640), 5_000_000) == CHUNK_BYTES // 2560
    assert chunk_nt(SimpleNamespace(dim=1 << 40)) == 1


def test_embed_records_writes_every_record_in_input_order_with_the_policy(tmp_path):
    from rnaloc_tools.embed import embed_records
    from rnaloc_tools.formats import EmbeddingStore

    enc = _FakeEncoder(max_len=4)
    stats = embed_records(_recs("GUACGU", "AC", "UUUUU"), enc, tmp_path / "e.npz", long="windows", max_nt=7)
    store = EmbeddingStore(tmp_path / "e.npz")
    assert store.ids == ["r0", "r1", "r2"] and [store.length(r) for r in store.ids] == [6, 2, 5]
    assert store.meta["long_policy"] == "windows:4/1" and store.meta["encoder"] == "fake"
    assert store.get("r0")[:, 1].tolist() == [0, 1, 1, 2, 2, 3]
    assert (stats.sequences, stats.nucleotides, stats.windowed) == (3, 13, 2)
    stats = embed_records(_recs("GUACGU"), _FakeEncoder(max_len=4), tmp_path / "t.npz")
    assert EmbeddingStore(tmp_path / "t.npz").meta["long_policy"] == "truncate" and stats.truncated == 1
    with pytest.raises(ValueError, match="long policy"):
        embed_records(_recs("AC"), enc, tmp_path / "x.npz", long="crop")
    assert not (tmp_path / "x.npz").exists()


class _CountingPieces:
    """A k-mer model's fast path without attention: probabilities of whole (cropped) matrices at once."""

    def __init__(self, model, fail=None):
        self.model, self.fail, self.seen = model, fail, []

    def probabilities(self, mats):
        if self.fail:
            raise self.fail
        self.seen.append([len(m) for m in mats])
        return np.stack([self.model.run(m[None].astype(np.float32), np.array([len(m)], dtype=np.int64))[0][0]
                         for m in mats])


def test_without_attention_a_kmer_model_counts_every_sequence_in_one_call():
    model = _FakeModel(max_length=4, tie_class=1)
    model.pieces = _CountingPieces(_FakeModel())
    predictor, result = _predict(model, attention=False)
    assert model.pieces.seen == [[4, 2, 1, 3, 2]]   # input order, cropped to 4
    assert model.batches == []                        # the graph itself never ran
    np.testing.assert_array_equal(result.frame["probability_intracellular"], [0.75, 0.5, 0, 1 / np.float32(3), 1])
    assert result.frame["prediction"].tolist()[:2] == ["intracellular", "intracellular"]
    assert result.attention is None and predictor.cropped == 1
    # the same predictor counts the crops of every chunk it predicts; no attention unless asked
    assert predictor.predict_matrices(["long"], [MATS["long"]]).attention is None
    assert predictor.cropped == 2


@pytest.mark.parametrize("where", ["pieces", "run", "long"])
def test_an_onnx_runtime_failure_names_the_batch_its_length_and_the_first_record(where, monkeypatch):
    import rnaloc_tools.predict as predict
    from rnaloc_tools.predict import Predictor

    model = _FakeModel(max_length=4)
    boom = RuntimeError("out of memory\nsecond line")
    if where == "long":   # a sequence over LONG_NT (3 here) alone through the pieces runner, with attention
        monkeypatch.setattr(predict, "LONG_NT", 3)

        class Failing:
            def run(self, mat):
                raise boom
        model.pieces = Failing()
        ids, expected = ["tie", "long", "mid"], "a batch of 1 sequence(s) of up to 4 positions: out of memory"
        with pytest.raises(InputError) as err:
            Predictor(model, batch_size=2, source="in.fa").predict_matrices(ids, [MATS[i] for i in ids], attention=True)
        assert str(err.value) == f"in.fa: record 'long': ONNX Runtime failed on {expected}"
        return
    if where == "pieces":
        model.pieces = _CountingPieces(_FakeModel(), fail=boom)
        ids, expected = ["mid", "long", "tie"], "a batch of 3 sequence(s) of up to 4 positions: out of memory"
    else:
        def run(x, lengths):
            raise boom
        model.run = run
        # sorted longest first: "long" (cropped to 4) and "mid" make the first batch of 2
        ids, expected = ["tie", "mid", "long"], "a batch of 2 sequence(s) of up to 4 positions: out of memory"
    with pytest.raises(InputError) as err:
        Predictor(model, batch_size=2, source="in.fa").predict_matrices(ids, [MATS[i] for i in ids], attention=False)
    first = "mid" if where == "pieces" else "long"
    assert str(err.value) == f"in.fa: record {first!r}: ONNX Runtime failed on {expected}"
