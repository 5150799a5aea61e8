"""firmware_sim: the simulated clock's accounting, the profiles and their
sources, calibration from bench reports, the RAM budget, and the whole run
compared with `edge-audio listen --simulate --fast`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_audio.errors import ConfigError
from edge_audio.shipped import demo_recording
from firmware_sim.clock import simulate
from firmware_sim.from_bench import profile_from_bench
from firmware_sim.profiles import HostSpeed, builtin_names, load_profile

REPO = Path(__file__).resolve().parent.parent
RATE, PERIOD = 16000, 1024
PERIOD_S = PERIOD / RATE


class FakeEngine:
    """Counts what it is fed; the clock needs only feed and flush."""

    def __init__(self) -> None:
        self.fed: list[float] = []

    def feed(self, chunk: np.ndarray) -> list:
        self.fed.append(float(chunk[0]))
        return []

    def flush(self) -> list:
        return []


def fixed_cost(seconds: float):
    def measure(call):
        return call(), seconds

    return measure


def numbered_periods(n: int) -> list[np.ndarray]:
    return [np.full(PERIOD, i, dtype=np.float32) for i in range(n)]


def test_a_loop_faster_than_the_audio_misses_nothing():
    engine = FakeEngine()
    report = simulate(engine, numbered_periods(100), RATE, 10.0, 4, fixed_cost(PERIOD_S / 20))
    assert report.periods == 100 and engine.fed == list(range(100))
    assert report.deadline_misses == report.overruns == report.dropped_samples == 0
    assert report.summary()["cpu_percent"] == pytest.approx(50.0)
    assert report.summary()["headroom"] == pytest.approx(0.5)
    # Each period is processed as soon as it is complete: latency = period + cost.
    assert report.max_period_latency_s == pytest.approx(PERIOD_S * 1.5)


def test_a_loop_slower_than_the_audio_overruns_and_drops_whole_periods():
    engine = FakeEngine()
    n = 200
    report = simulate(engine, numbered_periods(n), RATE, 1.0, 4, fixed_cost(3 * PERIOD_S))
    assert report.overruns > 0 and report.deadline_misses == report.periods
    assert report.dropped_samples % PERIOD == 0
    assert report.periods + report.dropped_samples // PERIOD == n  # read or lost, never both
    assert engine.fed == sorted(engine.fed) and len(engine.fed) == report.periods
    # Three periods of work per period of audio: about a third gets through.
    assert report.periods == pytest.approx(n / 3, rel=0.1)


def test_a_deadline_miss_within_the_buffer_is_not_an_overrun():
    engine = FakeEngine()
    costs = iter([3 * PERIOD_S] + [PERIOD_S / 10] * 49)  # one slow start, as a cold cache

    def measure(call):
        return call(), next(costs)

    report = simulate(engine, numbered_periods(50), RATE, 1.0, 4, measure)
    assert report.deadline_misses >= 1 and report.overruns == 0 and report.dropped_samples == 0
    assert engine.fed == list(range(50))


def test_every_builtin_profile_loads_with_a_source_for_its_numbers():
    assert set(builtin_names()) >= {"pi-zero-2w", "pi3b", "pi4b", "pi5"}
    for name in builtin_names():
        profile = load_profile(name)
        sourced = " ".join(profile.sources)
        for key in ("cores", "ram_mb", "sysbench_events_per_s", "os_reserve_mb"):
            assert key in sourced, (name, key)
        assert 0 < profile.ram_budget_mb < profile.ram_mb
        assert profile.slowdown_against(4000.0) == pytest.approx(
            4000.0 / profile.sysbench_events_per_s
        )
    ordered = [load_profile(n).sysbench_events_per_s for n in ("pi-zero-2w", "pi3b", "pi4b", "pi5")]
    assert ordered == sorted(ordered)


def test_bad_profiles_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'pi9'"):
        load_profile("pi9")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad JSON"):
        load_profile(bad)
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ConfigError, match="not a profile"):
        load_profile(bad)


def bench_row(model: str, name: str, cpu: float) -> dict:
    return {"model": model, "name": name, "cpu_percent": cpu}


def test_calibrate_takes_the_median_loop_cost_ratio_of_shared_artefacts():
    board = {
        "machine": {"cpu": "Cortex-A72", "cores": 4, "ram_mb": 1849},
        "artefacts": [
            bench_row("fsdd-digits", "tflite-int8", 1.0),
            bench_row("fsdd-digits", "tflite-fp32", 1.6),
            bench_row("esc50", "tflite-int8", 4.0),
            bench_row("esc50", "onnx-int8", 9.0),  # not benchmarked on the host: ignored
        ],
    }
    host = {
        "machine": {"cpu": "AMD EPYC"},
        "artefacts": [
            bench_row("fsdd-digits", "tflite-int8", 0.1),
            bench_row("fsdd-digits", "tflite-fp32", 0.2),
            bench_row("esc50", "tflite-int8", 0.2),
        ],
    }
    profile = profile_from_bench(board, host, "my-pi4", 128)
    assert profile.slowdown == pytest.approx(10.0)  # median of 10, 8, 20
    assert profile.ram_mb == 1849 and profile.cores == 4
    assert profile.measured_against == "AMD EPYC" and "measured" in profile.sources["slowdown"]
    with pytest.raises(ConfigError, match="share no artefact"):
        profile_from_bench(board, {"artefacts": []}, "x", 128)


def run_sim(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "firmware_sim", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def test_calibrate_command_writes_a_profile_that_runs(tmp_path):
    board, host = tmp_path / "board.json", tmp_path / "host.json"
    board.write_text(json.dumps({
        "machine": {"cpu": "Cortex-A53", "cores": 4, "ram_mb": 427},
        "artefacts": [bench_row("fsdd-digits", "tflite-int8", 2.0)],
    }))  # fmt: skip
    host.write_text(json.dumps({"artefacts": [bench_row("fsdd-digits", "tflite-int8", 0.1)]}))
    out = tmp_path / "zero.json"
    made = run_sim("from-bench", str(board), "--name", "zero", "--host-bench", str(host),
                   "--os-reserve-mb", "100", "--out", str(out))  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert load_profile(out).slowdown == pytest.approx(20.0)
    result = run_sim("--profile", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["slowdown"] == pytest.approx(20.0) and report["ram_budget_mb"] == 327


def needs_sysbench() -> None:
    if shutil.which("sysbench") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("sysbench is missing; scripts/install-system-packages.sh installs it")
        pytest.skip("needs sysbench (apt install sysbench)")


def listen_events() -> list[tuple]:
    result = subprocess.run(
        [sys.executable, "-m", "edge_audio.cli", "listen", "--demo",
         "--fast", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return [(e["label"], e["start"], e["end"]) for e in lines if e["type"] == "event"]


@pytest.mark.slow
def test_host_speed_warns_when_the_host_is_busy_or_unsteady():
    assert HostSpeed(3800.0, 0.99, 0.03, 3).warning() is None
    assert "busy (sysbench got 40% of a core)" in (HostSpeed(3800.0, 0.4, 0.03, 3).warning() or "")
    assert "varied by 25%" in (HostSpeed(3800.0, 0.98, 0.25, 3).warning() or "")


HOGGED = """
import json, os, subprocess, time
from firmware_sim.profiles import host_sysbench
os.sched_setaffinity(0, {0})
idle = host_sysbench(runs=1)
hogs = [subprocess.Popen(["taskset", "-c", "0", "python3", "-c", "while True: pass"])
        for _ in range(2)]
time.sleep(0.3)
try:
    busy = host_sysbench(runs=1)
finally:
    for hog in hogs:
        hog.kill()
print(json.dumps([idle.to_dict(), busy.to_dict()]))
"""


@pytest.mark.slow
def test_the_host_speed_counts_cpu_time_so_a_busy_core_does_not_halve_it():
    """Two busy loops on sysbench's core take two thirds of its wall clock; the
    score, per CPU-second, must not follow (the wall-clock rate fell 3x here)."""
    needs_sysbench()
    done = subprocess.run(
        [sys.executable, "-c", HOGGED], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    idle, busy = json.loads(done.stdout)
    assert busy["cpu_share"] < 0.6 and busy["warning"] and "busy" in busy["warning"]
    assert abs(busy["events_per_cpu_s"] / idle["events_per_cpu_s"] - 1) < 0.25, (idle, busy)


def test_pi_zero_2w_keeps_up_on_the_demo_with_the_events_of_listen():
    needs_sysbench()
    result = run_sim("--profile", "pi-zero-2w", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    keys = ("profile", "deadline_misses", "overruns", "dropped_samples", "max_latency_ms",
            "headroom", "peak_rss_mb", "events")  # fmt: skip
    assert set(keys) <= set(report)
    assert report["profile"] == "pi-zero-2w" and report["slowdown"] > 1
    assert report["keeps_up"] and report["overruns"] == report["dropped_samples"] == 0
    assert report["memory_ok"] and report["peak_rss_mb"] <= report["ram_budget_mb"]
    assert report["matches_listen"]
    mine = [(e["label"], e["start"], e["end"]) for e in report["events"]]
    assert mine == listen_events() and len(mine) >= 10
    assert 0 < report["max_latency_ms"] < 1000 and 0 < report["headroom"] < 1


def test_a_board_too_slow_falls_behind_and_says_why():
    result = run_sim("--slowdown", "3000", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert not report["keeps_up"] and report["overruns"] > 0 and report["dropped_samples"] > 0
    assert not report["matches_listen"] and "overruns dropped" in report["comparison"]
    assert report["max_slowdown_keeping_up"] is None


def test_over_the_ram_budget_is_a_reported_failure_not_a_crash(tmp_path):
    tiny = json.loads((REPO / "firmware_sim" / "profiles" / "pi-zero-2w.json").read_text())
    tiny |= {"name": "tiny", "ram_mb": 160, "os_reserve_mb": 100}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny))
    result = run_sim("--profile", str(path), "--slowdown", "8")
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert "OVER BUDGET" in result.stdout and "did not run within 60 MB" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "pi9"], "unknown profile 'pi9'"),
        (["--model", "/nonexistent"], "no such folder"),
        (["--input", "/nonexistent.wav", "--slowdown", "8"], "no such audio file"),
        (["--slowdown", "0"], "must be positive"),
        (["calibrate", "/nonexistent.json", "--name", "x"], "cannot read"),
        (["from-bench", "/nonexistent.json", "--name", "x"], "cannot read"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    result = run_sim(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_periods_run_on_across_the_seams_of_a_repeated_recording():
    from firmware_sim.device import periods

    demo = demo_recording()
    chunks, rate = periods(demo, 100.0)
    sizes = [c.size for c in chunks]
    assert sum(sizes) == 100 * rate and set(sizes[:-1]) == {PERIOD}  # no short period at a seam
    once, _ = periods(demo, None)
    assert np.concatenate(list(once)).size == 551914  # one pass: the whole file, nothing more


def test_stream_time_and_the_clock_stay_together_over_an_hour():
    """A drift between the audio clock and stream time would grow the latency."""
    engine = FakeEngine()
    n = round(3600 / PERIOD_S)
    report = simulate(engine, numbered_periods(n), RATE, 1.0, 4, fixed_cost(PERIOD_S / 10))
    assert report.stream_s == pytest.approx(n * PERIOD_S)
    assert report.max_period_latency_s == pytest.approx(1.1 * PERIOD_S)
