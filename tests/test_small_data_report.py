"""benchmarks/small_data.py's table names what was trained: the CNN, or a head."""

from __future__ import annotations

from .scripts import load_script


def load():
    return load_script("benchmarks/small_data.py")


SUMMARY = {
    "seconds": 12.0,
    "accuracy": {"mean": 0.94},
    "baseline_accuracy": {"mean": 0.68},
    "folds": [{"name": "1", "accuracy": 0.94, "baseline_accuracy": 0.68, "best_epoch": 0}],
}


def test_the_table_names_the_cnn_by_default():
    lines = load().report("esc10x5", SUMMARY)
    assert lines[1] == "| held out | CNN | baseline | best epoch |"
    assert lines[-1].startswith("CNN +26.0 points against the baseline")


def test_the_table_names_the_head_when_a_backbone_trained():
    lines = load().report("esc10x5", SUMMARY, "head on efficientat-mn04")
    assert lines[1] == "| held out | head on efficientat-mn04 | baseline | best epoch |"
    assert "CNN" not in "\n".join(lines)
    assert lines[-1].startswith("head on efficientat-mn04 +26.0 points")
