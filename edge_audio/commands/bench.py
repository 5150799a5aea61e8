"""`edge-audio bench`: latency, CPU and memory of every artefact against the usual pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..bundle import load_bundle
from ..errors import ConfigError
from ..shipped import demo_recording, resolve_model, shipped_models
from .runner import SubParsers


def run(args: argparse.Namespace) -> int:
    from ..bench import BenchConfig, markdown, run_bench, write_reports

    bundles = [resolve_model(args.model)] if args.model else list(shipped_models().values())
    args.audio = args.audio or demo_recording()
    if not bundles:
        raise ConfigError("no bundle to benchmark: give --model BUNDLE_DIR")
    if not args.audio.is_file():
        raise ConfigError(f"{args.audio}: no such audio file (give --audio WAV)")
    for bundle in bundles:  # every bundle checked before minutes of measuring
        load_bundle(bundle)
    config = BenchConfig(
        args.runs, args.warmup, args.loop_seconds, args.cold_starts, rounds=args.rounds
    )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = run_bench(bundles, args.audio, config, not args.no_baseline, progress)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(markdown(report))
    if args.out or not args.json:
        out = args.out or Path("bench-results")
        written = write_reports(report, out)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="latency, CPU and memory of each artefact, against librosa + torch",
        description="Benchmark every artefact of a bundle (all shipped bundles by default), "
        "each in a fresh process at one thread: frontend per stride, inference and decision "
        "per window (p50/p90/p99), CPU per second of audio and real-time factor of the whole "
        "loop, cold start, peak RSS, achieved MAC/s against a matmul peak measured in the same "
        "run; beside the usual pipeline (librosa on the whole window at every stride + the "
        "torch model in eager mode; needs the train and dev extras, else skipped with a note). "
        "Writes bench.json, bench.md and bench.png.",
        epilog="example: edge-audio bench --model models/fsdd-digits --out bench-results",
    )
    p.add_argument(
        "--model", help="bundle folder or shipped model name (default: every shipped bundle)"
    )
    p.add_argument(
        "--audio",
        type=Path,
        default=None,
        help="recording streamed through the loop (default: the demo)",
    )
    p.add_argument("--runs", type=int, default=1000, help="timed calls per stage (default 1000)")
    p.add_argument("--warmup", type=int, default=50, help="untimed calls first (default 50)")
    p.add_argument(
        "--loop-seconds", type=float, default=120.0, help="audio through the whole loop (120)"
    )
    p.add_argument(
        "--cold-starts", type=int, default=3, help="fresh processes for the cold start (3)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure every artefact and the baseline this many times, interleaved; "
        "the loop-CPU ratio is the median of the per-round ratios (3)",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip librosa + torch")
    p.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    p.add_argument(
        "--out", type=Path, help="folder for bench.json/.md/.png (default bench-results)"
    )
    p.set_defaults(run=run)
    return p
