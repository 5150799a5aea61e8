"""edge-audio bench: the measurement helpers, the report shapes, the ratios, the
baseline in the same run, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_audio.bench import (
    BenchConfig,
    add_ratios,
    loop_chunks,
    markdown,
    merge_rounds,
    stats_ms,
    time_calls,
    write_reports,
)
from edge_audio.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
STAGE_KEYS = ("frontend_ms", "inference_ms", "decision_ms")
ROW_KEYS = ("name", "size_bytes", *STAGE_KEYS, "rtf", "cold_start_ms", "peak_rss_mb")


def test_stats_are_percentiles_in_milliseconds():
    stats = stats_ms(np.arange(1, 101) / 1e3)  # 1..100 ms
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)


def test_time_calls_warms_up_then_times_each_run():
    calls: list[int] = []
    times = time_calls(calls.append, runs=7, warmup=3)
    assert calls == [0, 1, 2, 0, 1, 2, 3, 4, 5, 6]
    assert times.shape == (7,) and (times >= 0).all()


def test_loop_chunks_repeat_the_recording_to_the_asked_length():
    samples = np.arange(1000, dtype=np.float32)
    chunks = list(loop_chunks(samples, seconds=0.25, rate=10000, chunk=300))
    assert sum(c.size for c in chunks) == 2500
    assert all(c.size <= 300 for c in chunks)
    assert np.concatenate(chunks)[1000] == 0  # wrapped around


def test_bad_bench_config_is_a_clear_error():
    with pytest.raises(ConfigError, match="runs >= 10"):
        BenchConfig(runs=5)
    with pytest.raises(ConfigError, match="rounds >= 1"):
        BenchConfig(rounds=0)


def test_rounds_merge_figure_by_figure_into_medians():
    rounds = [
        {"cpu_percent": c, "inference_ms": {"p50": c * 2, "p99": 9 - c}, "runtime": "rt"}
        for c in (0.3, 0.1, 0.2)
    ]
    merged = merge_rounds(rounds)
    assert merged["cpu_percent"] == pytest.approx(0.2)
    assert merged["inference_ms"] == pytest.approx({"p50": 0.4, "p99": 8.8})
    assert merged["runtime"] == "rt"
    assert merged["loop_cpu_rounds"] == [0.3, 0.1, 0.2]


def _row(name: str, cpu: float, inference: float, rss: float) -> dict:
    stage = {"p50": inference, "p90": inference, "p99": inference}
    return {
        "model": "m", "name": name, "macs": 1_000_000, "cpu_percent": cpu, "peak_rss_mb": rss,
        "frontend_ms": stage, "inference_ms": stage, "decision_ms": stage,
        "cold_start_ms": 100.0, "rtf": cpu / 100, "size_bytes": 1000,
    }  # fmt: skip


def test_ratios_are_baseline_over_edge_audio_and_mac_rate_against_peak():
    row, base = _row("tflite-int8", 0.1, 0.2, 70.0), _row("baseline", 2.0, 1.0, 420.0)
    add_ratios(row, base, peak=1e10)
    assert row["speedup_vs_baseline"] == pytest.approx(20.0)
    assert row["ratios_vs_baseline"]["inference_p50"] == pytest.approx(5.0)
    assert row["ratios_vs_baseline"]["peak_rss"] == pytest.approx(6.0)
    assert row["macs_per_s"] == 5_000_000_000  # 1 M MACs in 0.2 ms
    assert row["fraction_of_peak"] == pytest.approx(0.5)
    # With rounds, the loop ratio is the median of ratios paired round by round.
    row, base = _row("tflite-int8", 0.1, 0.2, 70.0), _row("baseline", 2.0, 1.0, 420.0)
    row["loop_cpu_rounds"], base["loop_cpu_rounds"] = [0.1, 0.2, 0.1], [2.0, 2.0, 1.5]
    add_ratios(row, base, peak=1e10)
    assert row["speedup_vs_baseline"] == pytest.approx(15.0)  # median of 20, 10, 15
    assert row["speedup_range"] == [10.0, 20.0]
    lonely = _row("onnx-fp32", 0.1, 0.2, 70.0)
    add_ratios(lonely, {"skipped": "no torch"}, peak=1e10)
    assert lonely["speedup_vs_baseline"] is None


@pytest.mark.toolchain
def test_reports_are_json_markdown_and_a_chart(tmp_path):
    pytest.importorskip("matplotlib")
    row, base = _row("tflite-int8", 0.1, 0.2, 70.0), _row("baseline: librosa", 2.0, 1.0, 420.0)
    add_ratios(row, base, peak=1e10)
    report = {
        "machine": {"cpu": "test cpu", "cores": 2, "python": "3.11"},
        "config": {"runs": 1000, "warmup": 50, "loop_seconds": 120.0},
        "peak_macs_per_s": 1e10,
        "artefacts": [row],
        "baseline": [base],
    }
    written = write_reports(report, tmp_path)
    assert [p.name for p in written] == ["bench.json", "bench.md", "bench.png"]
    assert (
        json.loads((tmp_path / "bench.json").read_text())["artefacts"][0]["name"] == "tflite-int8"
    )
    table = markdown(report)
    assert "| m | tflite-int8 |" in table and "20.0x" in table
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_audio.cli", "bench", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.toolchain  # the baseline is librosa + torch; the ONNX rows need onnxruntime
def test_bench_measures_every_artefact_and_the_baseline_in_one_run(tmp_path):
    result = run_bench(
        "--model", "fsdd-digits", "--runs", "30", "--warmup", "3",
        "--loop-seconds", "5", "--cold-starts", "1", "--rounds", "2", "--json",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"cpu", "cores", "python", "packages"} <= set(report["machine"])
    names = [row["name"] for row in report["artefacts"]]
    assert names == ["onnx-fp32", "onnx-int8", "tflite-fp32", "tflite-int8"]
    for row in report["artefacts"]:
        assert set(ROW_KEYS) <= set(row), row
        for key in STAGE_KEYS:
            assert 0 < row[key]["p50"] <= row[key]["p90"] <= row[key]["p99"]
        assert row["loop_windows"] >= 5 / 0.25 - 4  # one window per stride after the first
        assert 0 < row["peak_rss_mb"] < 400 and row["cold_start_ms"] > 0
    (baseline,) = report["baseline"]
    if os.environ.get("CI") == "true":  # CI installs torch and librosa: no skipping there
        assert "skipped" not in baseline
    if "skipped" not in baseline:
        assert set(ROW_KEYS) - {"size_bytes"} <= set(baseline)
        tflite = report["artefacts"][3]
        assert len(tflite["loop_cpu_rounds"]) == len(baseline["loop_cpu_rounds"]) == 2
        paired = np.divide(baseline["loop_cpu_rounds"], tflite["loop_cpu_rounds"])
        assert tflite["speedup_vs_baseline"] == pytest.approx(np.median(paired), rel=0.01)
    assert {p.name for p in tmp_path.iterdir()} >= {"bench.json", "bench.md"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/nonexistent"], "no such folder"),
        (["--audio", "/nonexistent.wav"], "no such audio file"),
        (["--runs", "3"], "runs >= 10"),
        (["--rounds", "0"], "rounds >= 1"),
    ],
)
def test_bench_bad_input_is_one_clear_line(args, message):
    result = run_bench(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
