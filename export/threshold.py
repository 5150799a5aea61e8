"""`python -m export threshold BUNDLE`: choose a detection bundle's stream
threshold on held-out streams, not on the demo.

Clips of the bundle's held-out groups (speakers or folds it was never trained
on) are laid end to end with random gaps of generated background noise, at
random levels; the device path (`StreamEngine`, the bundle's default artefact)
runs over these streams once, and the event detector is replayed on the
recorded posteriors for every threshold of a grid. The threshold with the best
event F1 (ties: the higher, fewer false alarms) goes into the manifest's
`stream` section, with the whole F1 curve, and `edge-audio listen` uses it
unless told otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.audio import load_audio
from edge_audio.backends import load_backend
from edge_audio.bundle import Bundle, load_bundle, read_manifest, write_manifest
from edge_audio.datasets import LAYOUTS, describe_groups, scan
from edge_audio.deciders import Decider
from edge_audio.errors import ConfigError, DatasetError
from edge_audio.manifest import StreamSettings
from edge_audio.scoring import Segment, precision_recall_f1, score_events
from edge_audio.shipped import resolve_model
from edge_audio.source import CHUNK_FRAMES
from edge_audio.stream import StreamConfig, StreamEngine
from edge_audio.vad import SpeechGate

from .card import replace_card_section
from .data import coloured_noise

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.20, 0.901, 0.05))


@dataclass
class Stream:
    audio: np.ndarray
    truth: list[Segment]


def make_streams(
    clips: list[tuple[np.ndarray, str]],
    rate: int,
    per_stream: int,
    rng: np.random.Generator,
) -> list[Stream]:
    """Clips end to end, each at a random peak level, separated by 0.5-2.5 s of
    background: generated coloured noise 15-40 dB below the stream's typical peak."""
    order = rng.permutation(len(clips))
    streams = []
    for start in range(0, len(order), per_stream):
        pieces, truth, cursor, peaks = [], [], 0.0, []
        for i in order[start : start + per_stream]:
            audio, label = clips[i]
            gap = int(rng.uniform(0.5, 2.5) * rate)
            pieces.append(np.zeros(gap, np.float32))
            cursor += gap / rate
            peaks.append(rng.uniform(0.1, 0.9))
            level = peaks[-1] / max(float(np.abs(audio).max()), 1e-6)
            pieces.append((audio * level).astype(np.float32))
            truth.append(Segment(cursor, cursor + audio.size / rate, label))
            cursor += audio.size / rate
        pieces.append(np.zeros(rate, np.float32))
        speech = np.concatenate(pieces)
        colour = str(rng.choice(["white", "pink", "brown"]))
        noise = coloured_noise(speech.size, colour, rng) * np.median(peaks)
        noise *= 10 ** (-rng.uniform(15, 40) / 20)
        streams.append(Stream(np.clip(speech + noise, -1, 1), truth))
    return streams


def posteriors(bundle: Bundle, backend: Any, audio: np.ndarray, rate: int) -> list:
    """Each window's probabilities and span, through the device engine."""
    record: list[tuple[np.ndarray, float, float]] = []
    engine = StreamEngine(
        bundle,
        backend,
        rate,
        on_window=lambda probs, start, end: record.append((probs, start, end)),
    )
    run_through(engine, audio)
    return record


def run_through(engine: StreamEngine, audio: np.ndarray) -> list[dict[str, Any]]:
    """`audio` through the engine in microphone-sized chunks, as listen feeds it,
    then the end of input; the decisions it raised."""
    decisions = []
    for i in range(0, audio.size, CHUNK_FRAMES):
        decisions += engine.feed(audio[i : i + CHUNK_FRAMES])
    decisions += engine.flush()
    return [d.to_dict() for d in decisions]


def device_events(
    bundle: Bundle,
    backend: Any,
    audio: np.ndarray,
    rate: int,
    config: StreamConfig,
    gate: SpeechGate | None = None,
) -> list[dict[str, Any]]:
    """The events `listen` would raise on `audio` at `config` (with the speech
    gate, if given): the engine itself, not a replay of recorded posteriors."""
    return run_through(StreamEngine(bundle, backend, rate, config, gate=gate), audio)


def events_at(bundle: Bundle, record: list, config: StreamConfig) -> list[dict[str, Any]]:
    """Replay the engine's decisions (smoothing, event detector) on recorded posteriors."""
    decider = Decider(bundle, config)
    decisions = (decider.decide(probs, start, end) for probs, start, end in record)
    return [d.to_dict() for d in decisions if d is not None]


@dataclass(frozen=True)
class EventCounts:
    matched: int  # true events found, with the right label
    detected: int  # every event the decider raised
    true: int  # events in the truth

    def precision_recall_f1(self) -> tuple[float, float, float]:
        return precision_recall_f1(self.matched, self.detected, self.true)


def count_events(
    bundle: Bundle, config: StreamConfig, runs: Iterable[tuple[Stream, list]]
) -> EventCounts:
    """The decider at `config`, replayed on streams with recorded posteriors
    (`posteriors`) and scored against their truth, summed over the streams."""
    found = ((stream, events_at(bundle, record, config)) for stream, record in runs)
    return tally(bundle.frontend.sample_rate, found)


def tally(rate: int, found: Iterable[tuple[Stream, list[dict[str, Any]]]]) -> EventCounts:
    """Events found on streams (at `rate`), scored against their truth and summed."""
    matched = detected = true = 0
    for stream, events in found:
        score = score_events(events, stream.truth, stream.audio.size / rate)
        matched, detected = matched + score["matched"], detected + len(events)
        true += len(stream.truth)
    return EventCounts(matched, detected, true)


def held_out_clips(
    bundle: Bundle, data: Path, layout: str, groups: list[str]
) -> list[tuple[np.ndarray, str]]:
    """The clips of the held-out groups, found as training found them: a folder
    layout's groups come from the --groups it was trained with (the manifest
    keeps it), or every file would be its own group and none would match."""
    training = bundle.manifest.training
    declared = training.groups_option if training and layout == training.layout else None
    index = scan(data, layout, groups=declared)
    records = [r for r in index.records if r.group in groups and r.label in bundle.labels]
    if not records:
        raise DatasetError(f"{data}: no clips of the held-out groups {', '.join(groups)}")
    rate = bundle.frontend.sample_rate
    return [(load_audio(r.path, rate)[0], r.label) for r in records]


def detector_and_groups(bundle_dir: Path, groups: list[str] | None) -> tuple[Bundle, list[str]]:
    """A detection bundle and the groups it never trained on (the manifest's unless
    given): what every stream measurement starts from."""
    bundle = load_bundle(bundle_dir)
    if bundle.task != "detection":
        raise ConfigError(f"{bundle.name} is a classification bundle: it has no threshold")
    training = bundle.manifest.training
    groups = groups or (list(training.test_groups) if training else None)
    if not groups:
        raise ConfigError("the manifest names no held-out groups; give --groups")
    return bundle, groups


def choose_threshold(
    bundle_dir: Path,
    data: Path,
    layout: str,
    groups: list[str] | None = None,
    per_stream: int = 25,
    seed: int = 0,
) -> dict[str, Any]:
    bundle, groups = detector_and_groups(bundle_dir, groups)
    clips = held_out_clips(bundle, data, layout, groups)
    rate = bundle.frontend.sample_rate
    streams = make_streams(clips, rate, per_stream, np.random.default_rng(seed))
    backend = load_backend(bundle)
    records = [posteriors(bundle, backend, s.audio, rate) for s in streams]
    base = StreamConfig.for_bundle(bundle)
    curve = {}
    for threshold in THRESHOLDS:
        config = replace(base, threshold=threshold)
        counts = count_events(bundle, config, zip(streams, records, strict=True))
        precision, recall, f1 = counts.precision_recall_f1()
        curve[threshold] = {"precision": precision, "recall": recall, "f1": f1}
    best = max(THRESHOLDS, key=lambda t: (round(curve[t]["f1"], 4), t))
    seconds = sum(s.audio.size for s in streams) / rate
    return {
        "threshold": best,
        "smoothing": base.smoothing,
        "min_count": base.min_count,
        "suppression_s": base.suppression_s,
        "chosen_on": {
            "method": "best event F1 on held-out streams (onset tolerance 0.5 s)",
            "groups": groups,
            "streams": len(streams),
            "events": sum(len(s.truth) for s in streams),
            "seconds": round(seconds, 1),
            "artefact": backend.artefact.name,
            "seed": seed,
            "by_threshold": {
                f"{t:.2f}": {k: round(v, 4) for k, v in curve[t].items()} for t in THRESHOLDS
            },
        },
    }


CARD_SECTION = "## Streaming threshold"


def decider_in_words(stream: dict[str, Any]) -> str:
    """A stream setting as a card says it."""
    score = (
        "the score"
        if stream["smoothing"] == 1
        else f"the smoothed score (moving average of {stream['smoothing']} windows)"
    )
    return (
        f"threshold {stream['threshold']:.2f} on {score}, {stream['min_count']} window(s) in a "
        f"row, then {stream['suppression_s']:g} s of suppression"
    )


def card_section(stream: dict[str, Any]) -> str:
    cal = stream["chosen_on"]
    rows = "\n".join(
        f"| {t} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} |"
        for t, s in cal["by_threshold"].items()
    )
    return (
        f"{CARD_SECTION}\n"
        f"`edge-audio listen` detects with {decider_in_words(stream)}. It was chosen, by best "
        f"event F1, on {cal['streams']} streams ({cal['seconds'] / 60:.1f} min, "
        f"{cal['events']} words) built from the held-out {describe_groups(cal['groups'])} clips "
        f"with generated background noise, run through the device path ({cal['artefact']}); never "
        "on the demo. `--threshold` overrides it.\n\n"
        "| threshold | precision | recall | F1 |\n|---|---|---|---|\n"
        f"{rows}\n"
    )


def write_stream_settings(
    bundle_dir: Path, stream: dict[str, Any], section: str | None = None
) -> None:
    """Into the manifest (not hashed: the artefacts are, so the bundle stays valid)
    and into the model card (`section`, by default this module's), replacing an
    earlier choice's section."""
    section = section or card_section(stream)
    manifest = read_manifest(bundle_dir)
    write_manifest(bundle_dir, manifest.with_stream(StreamSettings.from_dict(stream)))
    replace_card_section(bundle_dir, CARD_SECTION, section)


def run(args: argparse.Namespace) -> int:
    args.bundle = resolve_model(str(args.bundle))  # a folder, or a shipped model's name
    stream = choose_threshold(
        args.bundle, args.data, args.layout, args.groups, args.per_stream, args.seed
    )
    write_stream_settings(args.bundle, stream)
    cal = stream["chosen_on"]
    print(
        f"{args.bundle}: {cal['streams']} streams, {cal['events']} events of "
        f"{', '.join(cal['groups'])} ({cal['seconds'] / 60:.1f} min), {cal['artefact']}"
    )
    for t, s in cal["by_threshold"].items():
        mark = "  <- chosen" if float(t) == stream["threshold"] else ""
        print(f"  threshold {t}: precision {s['precision']:.3f} recall {s['recall']:.3f} "
              f"F1 {s['f1']:.3f}{mark}")  # fmt: skip
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="choose a detection bundle's threshold on held-out streams",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python -m export threshold models/fsdd-digits "
        "--data ../shared/data/fsdd --layout fsdd",
    )
    p.add_argument(
        "bundle", type=Path, help="bundle folder or shipped model name (its manifest is updated)"
    )
    p.add_argument("--data", type=Path, required=True, help="the dataset it was trained on")
    p.add_argument("--layout", choices=LAYOUTS, required=True)
    p.add_argument("--groups", nargs="+", help="held-out groups (default: the manifest's)")
    p.add_argument("--per-stream", type=int, default=25, help="clips per stream (25)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)
