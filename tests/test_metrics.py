import numpy as np
import pytest

from edge_audio.metrics import classification_report, confusion_matrix, format_confusion


def test_confusion_matrix_counts_truth_by_prediction():
    m = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_report_figures():
    r = classification_report(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["a", "b"])
    assert r["accuracy"] == 0.75 and r["n"] == 4
    assert r["per_class"]["a"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert r["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_macro_f1_ignores_classes_absent_from_truth():
    r = classification_report(np.array([0, 1]), np.array([0, 1]), ["a", "b", "_background_"])
    assert r["macro_f1"] == 1.0


def test_format_confusion_aligns_rows():
    text = format_confusion([[3, 0], [1, 2]], ["dog", "rain"])
    assert text.splitlines()[1].split() == ["dog", "3", "0"]


def test_format_confusion_never_cuts_a_class_name():
    labels = ["three", "_background_", "1"]
    text = format_confusion([[50, 1, 0], [0, 7, 2], [1, 1, 100]], labels)
    lines = text.splitlines()
    assert lines[0].split() == ["0", "1", "2"]  # numbered columns
    assert lines[1].split() == ["0", "three", "50", "1", "0"]
    assert lines[2].split() == ["1", "_background_", "0", "7", "2"]
    assert "thre " not in text and "_bac " not in text
    assert len({len(line) for line in lines}) == 1  # aligned
