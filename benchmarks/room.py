"""Does a detector hold up in a real room? The figures of issue #11, measured
through the device path on recordings the bundle never trained on:

    python benchmarks/room.py [--model fsdd-digits] [--data ../shared/data] [--vad T] [--json F]

- everyday sounds and music: the ESC-50 and music files of the negatives' parts
  the model never trained on (validation and calibration), joined into
  ten-minute streams: false alarms per hour;
- ordinary talk: the speech recordings of those parts: events per hour, and
  which labels fire (talk is full of "to", "for" and "one");
- held-out speaker streams, through the device resampler at 44.1 kHz with levels
  +-10 dB: clean, and in a room (RT60 0.4 s) over real ambience at 10 dB SNR:
  event F1.

With --vad THRESHOLD it measures every stream a second time with the speech
gate (edge_audio/vad.py) in the engine, and prints both side by side.

It prints a table; it asserts nothing (the targets are read, not timed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_audio.backends import load_backend  # noqa: E402
from edge_audio.bundle import load_bundle  # noqa: E402
from edge_audio.shipped import resolve_model  # noqa: E402
from edge_audio.stream import StreamConfig  # noqa: E402
from edge_audio.vad import SpeechGate  # noqa: E402
from export.streams import (  # noqa: E402
    Condition,
    load_negative_audio,
    negative_events,
    positive_streams,
    unheard_sounds_and_talk,
)
from export.threshold import (  # noqa: E402
    EventCounts,
    count_events,
    device_events,
    held_out_clips,
    posteriors,
    tally,
)

CAPTURE_RATE = 44100


def at_capture_rate(audio: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """The stream as a 44.1 kHz microphone gives it, at a level within +-10 dB."""
    up = resample_poly(audio, CAPTURE_RATE, rate).astype(np.float32)
    up *= 10 ** (rng.uniform(-10, 10) / 20)
    return np.clip(up, -1, 1)


def gated_counts(
    bundle: Any, backend: Any, config: StreamConfig, runs: list, gate: SpeechGate
) -> EventCounts:
    """Event counts of `listen --vad` itself on (stream, captured audio) pairs."""
    found = (
        (stream, device_events(bundle, backend, captured, CAPTURE_RATE, config, gate))
        for stream, captured in runs
    )
    return tally(bundle.frontend.sample_rate, found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fsdd-digits")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--vad", type=float, metavar="THRESHOLD", help="also with the speech gate")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    bundle = load_bundle(resolve_model(args.model))
    backend = load_backend(bundle)
    config = StreamConfig.for_bundle(bundle)
    gate = SpeechGate(args.vad) if args.vad is not None else None
    training = bundle.manifest.training
    rate = bundle.frontend.sample_rate
    data = args.data
    sounds, talk = unheard_sounds_and_talk(bundle, data)
    rows: dict[str, Any] = {"model": bundle.name, "artefact": backend.artefact.name}
    rows["operating_point"] = {
        "threshold": config.threshold,
        "smoothing": config.smoothing,
        "min_count": config.min_count,
    }
    variants = ["", "gated_"] if gate else [""]
    for name, files in (("sounds_and_music", sounds), ("talk", talk)):
        audio, _ = load_negative_audio(files, rate)
        n, hours, labels = negative_events(bundle, backend, config, audio)
        rows[name] = negatives_row(len(files), hours, n, labels)
        if gate:
            events = [
                e for a in audio for e in device_events(bundle, backend, a, rate, config, gate)
            ]
            labels = Counter(e["label"] for e in events)
            rows["gated_" + name] = negatives_row(len(files), hours, len(events), labels)
    ambience, _ = load_negative_audio(sounds, rate)
    bed = np.concatenate(ambience)
    groups = list(training.test_groups) if training else ["theo"]
    clips = held_out_clips(bundle, data / "fsdd", "fsdd", groups)
    for condition in (Condition("clean"), Condition("room", rt60=0.4, snr_db=10.0)):
        rng = np.random.default_rng(1)
        captured = [
            (stream, at_capture_rate(stream.audio, rate, rng))
            for stream in positive_streams(clips, rate, condition, bed, seed=3)
        ]
        runs = [(s, posteriors(bundle, backend, a, CAPTURE_RATE)) for s, a in captured]
        rows[f"speaker_{condition.name}"] = speaker_row(count_events(bundle, config, runs))
        if gate:
            counts = gated_counts(bundle, backend, config, captured, gate)
            rows[f"gated_speaker_{condition.name}"] = speaker_row(counts)
    if gate:
        rows["speech_gate"] = gate.summary()
    print(f"{bundle.name} ({backend.artefact.name}), operating point {rows['operating_point']}")
    for prefix in variants:
        print(f"\n{'with the speech gate at ' + str(args.vad) if prefix else 'no speech gate'}")
        print("| stream | amount | figure |\n|---|---|---|")
        for name in ("sounds_and_music", "talk"):
            r = rows[prefix + name]
            print(
                f"| {name} | {r['hours'] * 60:.1f} min, {r['files']} files | {r['events']} events, "
                f"{r['per_hour']} per hour; labels {r['labels']} |"
            )
        for name in ("speaker_clean", "speaker_room"):
            r = rows[prefix + name]
            print(
                f"| {name} (44.1 kHz, +-10 dB) | {r['words']} words | F1 {r['f1']} "
                f"(precision {r['precision']}, recall {r['recall']}) |"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def negatives_row(files: int, hours: float, events: int, labels: Counter) -> dict[str, Any]:
    return {
        "files": files,
        "hours": round(hours, 3),
        "events": events,
        "per_hour": round(events / hours, 1),
        "labels": dict(labels.most_common()),
    }


def speaker_row(counts: EventCounts) -> dict[str, Any]:
    p, r, f1 = counts.precision_recall_f1()
    return {
        "words": counts.true,
        "precision": round(p, 3),
        "recall": round(r, 3),
        "f1": round(f1, 3),
    }


if __name__ == "__main__":
    raise SystemExit(main())
