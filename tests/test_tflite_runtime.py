"""The old tflite-runtime fallback, in its own numpy<2 venv (.venv-tflite, made
by `make test`): it must load the shipped int8 model and agree with ai-edge-litert."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from edge_audio.backends import load_backend
from edge_audio.bundle import load_bundle
from edge_audio.shipped import default_model

from .conftest import REPO

TFLITE_PYTHON = REPO / ".venv-tflite" / "bin" / "python"
SCRIPT = """
import json, sys
import numpy as np
from edge_audio.backends import load_backend
from edge_audio.bundle import load_bundle
bundle = load_bundle(sys.argv[1])
backend = load_backend(bundle, "tflite", "int8")
probs = backend.probabilities(np.load(sys.argv[2]))
print(json.dumps({"runtime": backend.runtime, "numpy": np.__version__, "probs": probs.tolist()}))
"""


def test_tflite_runtime_fallback_agrees_with_ai_edge_litert(tmp_path):
    pytest.importorskip("ai_edge_litert")
    if not TFLITE_PYTHON.exists():
        reason = "no .venv-tflite (make test builds it: numpy<2 + tflite-runtime)"
        if os.environ.get("EDGE_AUDIO_REQUIRE_SHARED"):  # in CI the Makefile must have built it
            pytest.fail(reason)
        pytest.skip(reason)
    bundle = load_bundle(default_model())
    frames, mels = bundle.input_shape[2:]
    windows = np.random.default_rng(0).normal(-45, 15, (8, frames, mels)).astype(np.float32)
    np.save(tmp_path / "windows.npy", windows)
    result = subprocess.run(
        [str(TFLITE_PYTHON), "-c", SCRIPT, str(bundle.root), str(tmp_path / "windows.npy")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["runtime"] == "tflite-runtime" and report["numpy"].startswith("1.")
    reference = load_backend(bundle, "tflite", "int8").probabilities(windows)
    fallback = np.array(report["probs"])
    assert np.array_equal(fallback.argmax(1), reference.argmax(1))
    # The two interpreters round intermediate int8 layers differently (reference
    # kernels against XNNPACK), which moves an output by a step or two of its
    # quantisation scale. Compare the logits (log-probabilities up to a constant
    # per window) in those steps: a real disagreement is many steps.
    step = bundle.artefact("tflite", "int8").output_quant.scale
    gap = np.log(fallback) - np.log(reference)
    gap -= gap.mean(axis=1, keepdims=True)
    assert np.abs(gap).max() <= 3 * step, np.abs(gap).max() / step
