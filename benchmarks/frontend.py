"""Frontend speed: batch log-mel per second of audio, librosa on the same input
side by side, and the streaming cost per hop. One core, one thread.

    python benchmarks/frontend.py [--json] [--rounds 15]

Figures are medians over interleaved rounds, so slow drift on a shared machine
hits both implementations alike; the ratio is the figure to quote."""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from edge_audio.frontend import FrontendConfig, LogMel, StreamingLogMel  # noqa: E402


def pin_to_one_core() -> int:
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def per_call_ms(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e3


def stream_hop_us(config: FrontendConfig, audio: np.ndarray, hops: int) -> np.ndarray:
    """Per-hop cost in microseconds, each hop timed on its own."""
    stream = StreamingLogMel(config)
    hop = config.hop_length
    stream.push(audio[: config.win_length - hop])
    costs = np.empty(hops)
    n_chunks = (audio.size - config.win_length) // hop
    for i in range(hops):
        j = config.win_length - hop + (i % n_chunks) * hop
        chunk = audio[j : j + hop]
        start = time.perf_counter()
        stream.push(chunk)
        costs[i] = time.perf_counter() - start
    return costs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    args = parser.parse_args()
    core = pin_to_one_core()

    config = FrontendConfig(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40)
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )
    ours = LogMel(config)
    candidates: dict[str, Callable[[], object]] = {"edge_audio": lambda: ours(audio)}
    try:
        import librosa

        def with_librosa() -> np.ndarray:
            power = librosa.feature.melspectrogram(
                y=audio,
                sr=16000,
                n_fft=512,
                win_length=400,
                hop_length=160,
                n_mels=40,
                fmin=config.fmin,
                center=False,
                htk=False,
                norm="slaney",
            )
            return librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)

        candidates["librosa"] = with_librosa
    except ImportError:
        print("librosa is not installed (dev extra): no side-by-side figure")

    for fn in candidates.values():
        per_call_ms(fn, 20)  # warm-up: caches, librosa's filterbank memo
    rounds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, fn in candidates.items():
            rounds[name].append(per_call_ms(fn, 50))
    batch = {name: float(np.median(values)) for name, values in rounds.items()}
    hops = stream_hop_us(config, audio, 20000)

    report: dict[str, Any] = {
        "input": "1 s of 16 kHz audio; 512-point FFT, 25 ms window, 10 ms hop, 40 mels",
        "batch_ms_per_second": batch,
        "speedup_vs_librosa": batch["librosa"] / batch["edge_audio"]
        if "librosa" in batch
        else None,
        "stream_us_per_hop": {
            "p50": float(np.percentile(hops, 50)),
            "p99": float(np.percentile(hops, 99)),
            "mean": float(hops.mean()),
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "core": core,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"frontend benchmark, one core (cpu {core}), {report['input']}")
    print("| implementation | batch log-mel, ms per second of audio |")
    print("|---|---|")
    for name, ms in batch.items():
        print(f"| {name} | {ms:.3f} |")
    if report["speedup_vs_librosa"]:
        print(f"edge_audio is {report['speedup_vs_librosa']:.1f}x faster than librosa (same run)")
    s = report["stream_us_per_hop"]
    print(
        f"streaming, per 10 ms hop: p50 {s['p50']:.1f} us, p99 {s['p99']:.1f} us, "
        f"mean {s['mean']:.1f} us"
    )


if __name__ == "__main__":
    main()
