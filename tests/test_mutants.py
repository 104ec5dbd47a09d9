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
from rnaloc_tools.fileio import atomic_output, atomic_path, same_file
from rnaloc_tools.model.metrics import (
    calibration_bins,
    compute_metrics,
    confusion,
    expected_calibration_error,
    predicted_class,
    reliability,
)

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
