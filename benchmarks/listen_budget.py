"""The listen loop's budgets: CPU per second of audio, p99 latency per window,
peak RSS, and RSS growth over an hour of audio replayed as fast as it can.

    python benchmarks/listen_budget.py [--model BUNDLE] [--hours 1] [--json]

The hour is the demo recording repeated, fed in microphone-sized chunks through
the same engine as `edge-audio listen` (never held in memory at once)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_audio.audio import load_audio  # noqa: E402
from edge_audio.backends import load_backend  # noqa: E402
from edge_audio.bench import loop_chunks  # noqa: E402
from edge_audio.bundle import load_bundle  # noqa: E402
from edge_audio.meter import peak_rss_mb, rss_mb  # noqa: E402
from edge_audio.shipped import default_model, demo_recording  # noqa: E402
from edge_audio.source import CHUNK_FRAMES  # noqa: E402
from edge_audio.stream import StreamEngine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model())
    parser.add_argument("--audio", type=Path, default=demo_recording())
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    bundle = load_bundle(args.model)
    backend = load_backend(bundle)  # int8 TFLite when ai-edge-litert is installed
    samples, rate = load_audio(args.audio, None, allow_silent=True)
    engine = StreamEngine(bundle, backend, rate)
    fed, events = 0, 0
    marks: list[float] = []
    cpu0, wall0 = time.process_time(), time.monotonic()
    for chunk in loop_chunks(samples, args.hours * 3600, rate, CHUNK_FRAMES):
        events += len(engine.feed(chunk))
        fed += len(chunk)
        if fed // (rate * 60) > len(marks):  # once a minute of audio
            marks.append(rss_mb())
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    seconds = fed / rate
    report: dict[str, Any] = {
        "model": bundle.name,
        "backend": backend.describe(),
        "audio_seconds": seconds,
        "windows": engine.windows,
        "events": events,
        "cpu_percent_of_a_core": 100 * cpu / seconds,
        "realtime_factor": wall / seconds,
        "latency_ms": engine.latency.percentiles_ms(),
        "rss_mb_after_1_min": marks[0] if marks else rss_mb(),
        "rss_mb_at_end": rss_mb(),
        "rss_growth_mb": rss_mb() - (marks[0] if marks else rss_mb()),
        "peak_rss_mb": peak_rss_mb(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{report['model']} ({report['backend']}), {seconds / 3600:.2f} h of audio, "
        f"{engine.windows} windows, {events} events"
    )
    print(
        f"CPU {report['cpu_percent_of_a_core']:.2f}% of a core, real-time factor "
        f"{report['realtime_factor']:.4f}, latency p50 {report['latency_ms']['p50']:.2f} ms "
        f"p99 {report['latency_ms']['p99']:.2f} ms"
    )
    print(
        f"RSS {report['rss_mb_after_1_min']:.1f} MB after a minute, "
        f"{report['rss_mb_at_end']:.1f} MB at the end (growth {report['rss_growth_mb']:+.2f} MB), "
        f"peak {report['peak_rss_mb']:.1f} MB"
    )


if __name__ == "__main__":
    main()
