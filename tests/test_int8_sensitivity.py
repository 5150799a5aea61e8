"""benchmarks/int8_sensitivity.py: leaving quantised tensors in float."""

from __future__ import annotations

import numpy as np
import pytest

from .scripts import load_script


def load():
    return load_script("benchmarks/int8_sensitivity.py")


def test_keeping_every_tensor_float_gives_the_float_model_back():
    torch = pytest.importorskip("torch")
    pytest.importorskip("litert_torch")
    bench = load()
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)
    ).eval()
    calibration = np.random.default_rng(0).normal(size=(64, 8, 8)).astype(np.float32)
    x = torch.from_numpy(calibration[:8, None])
    graph = bench.simulated_int8(model, x[:2], calibration)
    n = len(bench.quantised_tensors(graph))
    assert n >= 3  # the input, the conv's output and the linear's output at least
    with torch.no_grad():
        exact, int8 = model(x), graph(x)
        untouched = bench.keep_float(graph, [])(x)
        all_float = bench.keep_float(graph, list(range(n)))(x)
    assert not torch.allclose(int8, exact, atol=1e-6)  # int8 rounding shows
    torch.testing.assert_close(untouched, int8)
    # Weights are still int8 (per channel): close to float, not equal.
    assert (all_float - exact).abs().max() < (int8 - exact).abs().max()
    assert len(bench.quantised_tensors(graph)) == n  # the graph itself is not changed
