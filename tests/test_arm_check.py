"""The Arm check's comparison rule (scripts/arm_check.py compare): exact for fp32
and shallow int8 models, within int8 noise for a deep int8 network."""

from __future__ import annotations

import numpy as np

from .scripts import load_script

arm_check = load_script("scripts/arm_check.py")


def report(runs: dict) -> dict:
    return {"machine": "m", "python": "3", "runs": runs}


def run(probs, events=()) -> dict:
    return {"probabilities": np.asarray(probs).tolist(), "events": list(events)}


EVENT = {"type": "label", "label": "a", "start": 0.0, "time": 1.0}
OTHER = {"type": "label", "label": "b", "start": 0.0, "time": 1.0}


def test_identical_runs_pass_and_a_missing_run_fails(capsys):
    x86 = report({"m/tflite-fp32": run([[0.9, 0.1]], [EVENT])})
    assert arm_check.compare(x86, x86) == []
    assert arm_check.compare(x86, report({})) == ["m/tflite-fp32: missing on m"]


def test_fp32_outside_tolerance_fails(capsys):
    x86 = report({"m/tflite-fp32": run([[0.9, 0.1]])})
    arm = report({"m/tflite-fp32": run([[0.8, 0.2]])})
    assert arm_check.compare(x86, arm) == ["m/tflite-fp32"]


def test_int8_within_its_own_noise_passes_when_only_near_ties_flip(capsys):
    fp32 = run([[0.9, 0.1], [0.2, 0.8], [0.52, 0.48]])
    int8_x86 = run([[0.7, 0.3], [0.3, 0.7], [0.51, 0.49]], [EVENT])  # noise 0.2 against fp32
    int8_arm = run([[0.72, 0.28], [0.32, 0.68], [0.49, 0.51]], [OTHER])  # the near-tie flips
    x86 = report({"m/tflite-fp32": fp32, "m/tflite-int8": int8_x86})
    arm = report({"m/tflite-fp32": fp32, "m/tflite-int8": int8_arm})
    assert arm_check.compare(x86, arm) == []
    assert "within int8 noise" in capsys.readouterr().out


def test_int8_that_flips_a_clear_window_or_leaves_its_noise_fails(capsys):
    fp32 = run([[0.9, 0.1], [0.2, 0.8]])
    int8_x86 = run([[0.85, 0.15], [0.25, 0.75]])  # noise 0.05
    clear_flip = run([[0.45, 0.55], [0.25, 0.75]])  # a 0.7 margin flipped, 0.4 off
    x86 = report({"m/tflite-fp32": fp32, "m/tflite-int8": int8_x86})
    arm = report({"m/tflite-fp32": fp32, "m/tflite-int8": clear_flip})
    assert arm_check.compare(x86, arm) == ["m/tflite-int8"]
