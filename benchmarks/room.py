"""Does a detector hold up in a real room? The figures of issue #11, measured
through the device path on recordings the bundle never trained on:

    python benchmarks/room.py [--model fsdd-digits] [--data ../shared/data] [--vad T] [--json F]

- everyday sounds and music: the ESC-50 and music files of the negatives' parts
  the model never trained on (validation and calibration), joined into
  ten-minute streams: false alarms per hour;
- ordinary talk: the speech recordings of those parts: events per hour, and
  which labels fire (talk is full of "to", "for" and "one");
- held-out talk from ../shared/data/negatives/talk (7 h of read and spoken
  English without digit words, about 490 voices; the parts the bundle never
  trained on, by speaker): events per hour, which labels fire, and how many fall
  on an utterance holding a digit's homophone ("to", "too", "for", "won", "ate"),
  counted apart since a listener would hear a digit there too;
- held-out music and noise from the same folder: false alarms per hour;
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

from edge_audio.audio import load_audio  # noqa: E402
from edge_audio.backends import load_backend  # noqa: E402
from edge_audio.bundle import load_bundle  # noqa: E402
from edge_audio.errors import AudioFileError  # noqa: E402
from edge_audio.shipped import resolve_model  # noqa: E402
from edge_audio.stream import StreamConfig  # noqa: E402
from edge_audio.vad import SpeechGate  # noqa: E402
from export.negatives import provenance_of  # noqa: E402
from export.streams import (  # noqa: E402
    Condition,
    load_negative_audio,
    negative_events,
    positive_streams,
    unheard_shared_negatives,
    unheard_sounds_and_talk,
)
from export.threshold import (  # noqa: E402
    EventCounts,
    count_events,
    device_events,
    events_at,
    held_out_clips,
    posteriors,
    tally,
)

CAPTURE_RATE = 44100
# Words that sound like a digit (two, four, one, eight): an event on an utterance
# that holds one is counted apart, since a person would hear the digit too.
HOMOPHONES = frozenset({"TO", "TOO", "FOR", "FORE", "WON", "ATE"})
STREAM_MINUTES = 10.0


def transcript_words(path: Path) -> set[str]:
    known = provenance_of(path)
    return set(known.text.upper().replace(",", " ").split()) if known else set()


def talk_row(
    bundle: Any, backend: Any, config: StreamConfig, files: list[Path], rate: int
) -> dict[str, Any]:
    """Events on talk streams (files end to end, ten minutes a stream), each traced
    back to the utterance it fell in, so homophones are told apart."""
    events, on_homophones, seconds = 0, 0, 0.0
    labels: Counter[str] = Counter()
    homophone_words: Counter[str] = Counter()
    pending: list[np.ndarray] = []
    spans: list[tuple[int, Path]] = []  # (first sample, file) of each utterance in the stream

    def run_stream() -> None:
        nonlocal events, on_homophones, seconds
        audio = np.concatenate(pending)
        seconds += audio.size / rate
        starts = np.array([start for start, _ in spans])
        for event in events_at(bundle, posteriors(bundle, backend, audio, rate), config):
            middle = 0.5 * (event["start"] + event["end"]) * rate
            path = spans[max(0, int(np.searchsorted(starts, middle, side="right")) - 1)][1]
            heard = transcript_words(path) & HOMOPHONES
            events += 1
            labels[event["label"]] += 1
            if heard:
                on_homophones += 1
                homophone_words.update(heard)
        pending.clear()
        spans.clear()

    length = 0
    for path in files:
        try:
            audio = load_audio(path, rate)[0]
        except AudioFileError:
            continue
        spans.append((length, path))
        pending.append(audio)
        length += audio.size
        if length >= STREAM_MINUTES * 60 * rate:
            run_stream()
            length = 0
    if pending:
        run_stream()
    hours = seconds / 3600
    return {
        "files": len(files),
        "hours": round(hours, 3),
        "events": events,
        "per_hour": round(events / max(hours, 1e-9), 1),
        "labels": dict(labels.most_common()),
        "on_homophone_utterances": on_homophones,
        "homophones": dict(homophone_words.most_common()),
        "per_hour_elsewhere": round((events - on_homophones) / max(hours, 1e-9), 1),
    }


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
    shared = unheard_shared_negatives(bundle, data)
    if all(shared.values()):
        rows["held_out_talk"] = talk_row(bundle, backend, config, shared["held_out_talk"], rate)
        files = shared["held_out_music_and_noise"]
        audio, _ = load_negative_audio(files, rate)
        n, hours, labels = negative_events(bundle, backend, config, audio)
        rows["held_out_music_and_noise"] = negatives_row(len(files), hours, n, labels)
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
        held: dict[str, Any] | None = rows.get("held_out_talk") if not prefix else None
        if held:
            print(
                f"| held-out talk (negatives/talk) | {held['hours'] * 60:.1f} min, "
                f"{held['files']} files | {held['events']} events, {held['per_hour']} per hour "
                f"({held['on_homophone_utterances']} on utterances with {held['homophones']}; "
                f"{held['per_hour_elsewhere']} per hour elsewhere); labels {held['labels']} |"
            )
            r = rows["held_out_music_and_noise"]
            print(
                f"| held-out music and noise (negatives/) | {r['hours'] * 60:.1f} min, "
                f"{r['files']} files | {r['events']} events, {r['per_hour']} per hour; "
                f"labels {r['labels']} |"
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
