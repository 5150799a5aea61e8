"""The simulated device process. The parent (`firmware_sim.run`) starts it with
the profile's RAM budget as its address-space limit; it loads the bundle with
the device backend, replays the input through the simulated clock, replays it
again as `edge-audio listen --simulate --fast` does, compares the two event
lists, and prints one JSON report.

    python -m firmware_sim.device --model BUNDLE --input WAV --slowdown X ...
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.audio import iter_wav, wav_info
from edge_audio.backends import load_backend
from edge_audio.bundle import load_bundle
from edge_audio.errors import EdgeAudioError
from edge_audio.meter import peak_address_space_mb, peak_rss_mb
from edge_audio.source import CHUNK_FRAMES
from edge_audio.stream import StreamConfig, StreamEngine

from .clock import Decision, simulate

OUT_OF_MEMORY = 4  # exit code: the loop did not fit in the RAM budget


def periods(path: Path, seconds: float | None) -> tuple[Iterator[np.ndarray], int]:
    """The recording in capture periods of CHUNK_FRAMES, from disk; repeated to
    `seconds` if given. Periods run on across a repetition's seam, as a
    microphone's would; only the very last one may be short."""
    info = wav_info(path)
    total = None if seconds is None else round(seconds * info.sample_rate)

    def samples() -> Iterator[np.ndarray]:
        while True:
            yield from iter_wav(info, CHUNK_FRAMES)
            if total is None:
                return

    def chunks() -> Iterator[np.ndarray]:
        carry = np.zeros(0, np.float32)
        fed = 0
        for piece in samples():
            carry = np.concatenate((carry, piece))
            while carry.size >= CHUNK_FRAMES:
                period, carry = carry[:CHUNK_FRAMES], carry[CHUNK_FRAMES:]
                if total is not None:
                    period = period[: total - fed]
                if period.size == 0:
                    return
                fed += period.size
                yield period
                if total is not None and fed >= total:
                    return
        if carry.size:
            yield carry

    return chunks(), info.sample_rate


def comparable(decisions: Sequence[Decision]) -> list[tuple]:
    """What must match between runs: everything but the wall clock."""
    return [
        (d.type, d.label, round(d.score, 6), round(getattr(d, "start", d.time), 4), d.time)
        for d in decisions
    ]


def run_device(args: argparse.Namespace) -> dict[str, Any]:
    bundle = load_bundle(args.model)
    backend = load_backend(bundle, args.backend, args.precision)
    config = StreamConfig.for_bundle(bundle)  # as edge-audio listen runs it
    stream, rate = periods(args.input, args.seconds)
    engine = StreamEngine(bundle, backend, rate, config)
    clock = simulate(engine, stream, rate, args.slowdown, args.buffer_periods)

    # The reference: the same file through a fresh engine at full speed, as
    # `edge-audio listen --simulate --fast` runs it.
    reference_engine = StreamEngine(bundle, backend, rate, config)
    reference: list[Decision] = []
    stream, _ = periods(args.input, args.seconds)
    for chunk in stream:
        reference.extend(reference_engine.feed(chunk))
    reference.extend(reference_engine.flush())

    same = comparable(clock.decisions) == comparable(reference)
    if same:
        why = "the same events as edge-audio listen --simulate --fast"
    elif clock.overruns:
        why = (
            f"differs from listen --simulate --fast: {clock.overruns} overruns dropped "
            f"{clock.dropped_samples} samples (first at {clock.first_overrun_s} s), so "
            "windows after that saw different audio"
        )
    else:
        why = "differs from listen --simulate --fast with no overrun: a bug, please report it"
    report = {
        "model": bundle.name,
        "backend": backend.describe(),
        "stream_seconds": round(clock.stream_s, 3),
        **clock.summary(),
        "events": [
            {**d.to_dict(), "emitted": round(t, 4), "wall": None}
            for d, t in zip(clock.decisions, clock.emitted_at, strict=True)
        ],
        "matches_listen": same,
        "comparison": why,
        "peak_rss_mb": peak_rss_mb(),
        "peak_address_space_mb": peak_address_space_mb(),
    }
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m firmware_sim.device")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--seconds", type=float)
    p.add_argument("--slowdown", type=float, required=True)
    p.add_argument("--buffer-periods", type=int, default=4)
    p.add_argument("--backend")
    p.add_argument("--precision")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(json.dumps(run_device(args)))
    except MemoryError:
        print("out of memory", file=sys.stderr)
        return OUT_OF_MEMORY
    except EdgeAudioError as exc:
        print(f"firmware_sim: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
