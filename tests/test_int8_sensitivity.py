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


def run_main(bench, monkeypatch, *argv: str) -> None:
    monkeypatch.setattr("sys.argv", ["int8_sensitivity.py", *argv])
    bench.main()


def test_it_scores_a_trained_run_per_calibration_size_and_per_chunk(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("litert_torch")
    from .test_train import make_folder_dataset
    from .trainrun import train_tiny

    data = make_folder_dataset(tmp_path / "data")
    run = tmp_path / "run"
    assert train_tiny(data, run, tmp_path / "cache", "--epochs", "1", "--threads", "1") == 0
    bench = load()
    run_main(bench, monkeypatch, str(run), "--calibration", "4", "8", "--chunk", "1000")
    out = capsys.readouterr().out
    assert "held-out clips; float" in out
    sizes = [line.split("|")[2].strip() for line in out.splitlines() if "all tensors int8" in line]
    assert sizes == ["4", "8"]  # one row per calibration size, in the order given
    chunks = [line for line in out.splitlines() if line.startswith("| 0-")]
    assert len(chunks) == 1  # a chunk larger than the graph: one row, every tensor float


@pytest.mark.parametrize("argv", [["--chunk", "0"], ["--calibration", "256", "0"]])
def test_sizes_below_one_are_refused(argv, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    with pytest.raises(SystemExit) as exit_info:
        run_main(load(), monkeypatch, str(tmp_path), *argv)
    assert exit_info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
