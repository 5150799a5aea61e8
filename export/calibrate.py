"""`python -m export calibrate BUNDLE`: set a detector's operating point by
false alarms per hour, as wake-word engines are specified.

Positive streams are built from the bundle's held-out group in three rooms
(clean; reverberant, RT60 0.4 s; reverberant with real ambience at 10 dB SNR),
negative streams from the calibration part of the negatives it trained with
(never trained on). The device path runs over every stream once; the decider is
replayed on the recorded posteriors for each threshold, smoothing and min-count.
For each setting: the false-reject rate (targets missed, all rooms pooled) and
the false alarms per hour on the negative streams. The setting that meets
--max-false-alarms-per-hour with the fewest false rejects goes into the
manifest; the DET curve (det.png) and the table go into the bundle and its card.
If no setting meets the target, it says so and keeps the one with the fewest
false alarms that still catches half of the targets.

The other way to specify a detector, by the words it may miss: with
--max-false-reject-rate R, the setting with the fewest false alarms among those
that miss at most R of the words (all rooms pooled).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.backends import load_backend
from edge_audio.bundle import Bundle
from edge_audio.datasets import describe_groups
from edge_audio.errors import ConfigError
from edge_audio.shipped import resolve_model
from edge_audio.stream import StreamConfig

from .card import command_of
from .streams import (
    CALIBRATION_CONDITIONS,
    add_stream_arguments,
    positive_streams,
    stream_sources,
)
from .threshold import (
    count_events,
    decider_in_words,
    detector_and_groups,
    events_at,
    posteriors,
    write_stream_settings,
)

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.20, 0.951, 0.05))
SMOOTHINGS = (1, 3, 5)
MIN_COUNTS = (1, 2, 3)
DEFAULT_MAX_FA_PER_HOUR = 1.0
# When no setting meets the false-alarm target, the fallback still has to detect.
MAX_FALSE_REJECTS_WHEN_MISSED = 0.5
CARD_SECTION = "## Streaming threshold"


@dataclass(frozen=True)
class Setting:
    threshold: float
    smoothing: int
    min_count: int


@dataclass(frozen=True)
class Point:
    """One setting's measured cost."""

    setting: Setting
    false_reject_rate: float
    false_alarms: int  # events on the negative streams
    false_alarms_per_hour: float
    precision: float  # on the positive streams (wrong labels and extra events count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.setting.threshold,
            "smoothing": self.setting.smoothing,
            "min_count": self.setting.min_count,
            "false_reject_rate": round(self.false_reject_rate, 4),
            "false_alarms": self.false_alarms,
            "false_alarms_per_hour": round(self.false_alarms_per_hour, 3),
            "precision": round(self.precision, 4),
        }


def fewest_misses(p: Point) -> tuple[float, float, float]:
    """Order by false rejects, then false alarms, then the higher threshold."""
    return p.false_reject_rate, p.false_alarms_per_hour, -p.setting.threshold


def fewest_alarms(p: Point) -> tuple[float, float, float]:
    """Order by false alarms, then false rejects, then the higher threshold."""
    return p.false_alarms_per_hour, p.false_reject_rate, -p.setting.threshold


def choose(points: Sequence[Point], max_fa_per_hour: float) -> tuple[Point, bool]:
    """The point that meets the false-alarm target with the lowest false-reject
    rate (ties: fewer false alarms, then the higher threshold). When none meets it,
    the one with the fewest false alarms among those that still catch at least half
    of the targets (a detector that never fires has no false alarms and no use),
    else the one that catches the most. Returns it and whether the target was met."""
    if not points:
        raise ValueError("no operating points to choose from")
    meeting = [p for p in points if p.false_alarms_per_hour <= max_fa_per_hour]
    if meeting:
        return min(meeting, key=fewest_misses), True
    useful = [p for p in points if p.false_reject_rate <= MAX_FALSE_REJECTS_WHEN_MISSED]
    return (min(useful, key=fewest_alarms) if useful else min(points, key=fewest_misses)), False


def choose_by_misses(points: Sequence[Point], max_false_reject_rate: float) -> tuple[Point, bool]:
    """The point with the fewest false alarms among those that miss at most
    `max_false_reject_rate` of the targets (ties: fewer misses, then the higher
    threshold); when none does, the one that misses the fewest. Returns it and
    whether the target was met."""
    if not points:
        raise ValueError("no operating points to choose from")
    meeting = [p for p in points if p.false_reject_rate <= max_false_reject_rate]
    if meeting:
        return min(meeting, key=fewest_alarms), True
    return min(points, key=fewest_misses), False


def measure(
    bundle: Bundle,
    positives: list[tuple[Any, list]],  # (stream, recorded posteriors)
    negatives: list[list],  # recorded posteriors of each negative stream
    negative_hours: float,
    base: StreamConfig,
    settings: Sequence[Setting],
) -> list[Point]:
    points = []
    for s in settings:
        config = replace(base, threshold=s.threshold, smoothing=s.smoothing, min_count=s.min_count)
        counts = count_events(bundle, config, positives)
        alarms = sum(len(events_at(bundle, record, config)) for record in negatives)
        points.append(
            Point(
                s,
                1 - counts.matched / max(counts.true, 1),
                alarms,
                alarms / max(negative_hours, 1e-9),
                counts.matched / counts.detected if counts.detected else 1.0,
            )
        )
    return points


def calibrate(
    bundle_dir: Path,
    data: Path,
    layout: str,
    negatives: Sequence[Path] | None = None,
    groups: list[str] | None = None,
    max_fa_per_hour: float = DEFAULT_MAX_FA_PER_HOUR,
    seed: int = 0,
    progress: bool = True,
    max_clips: int | None = None,
    max_false_reject_rate: float | None = None,
) -> dict[str, Any]:
    """Measure every setting and choose one: by false alarms per hour, or, with
    `max_false_reject_rate`, by the share of targets it may miss."""
    bundle, groups = detector_and_groups(bundle_dir, groups)
    if max_fa_per_hour < 0:
        raise ConfigError("--max-false-alarms-per-hour cannot be negative")
    if max_false_reject_rate is not None and not 0 <= max_false_reject_rate < 1:
        raise ConfigError(
            f"--max-false-reject-rate is a share of the words, from 0 to below 1 "
            f"(0.3: miss at most 30%), got {max_false_reject_rate:g}"
        )
    sources = stream_sources(
        bundle, data, layout, groups, negatives, "calibration", max_clips, seed
    )
    rate = bundle.frontend.sample_rate
    backend = load_backend(bundle)
    tasks = [
        (condition, stream)
        for condition in CALIBRATION_CONDITIONS
        for stream in positive_streams(sources.clips, rate, condition, sources.ambience, seed)
    ]
    iterator: Any = tasks
    if progress:
        from tqdm import tqdm

        iterator = tqdm(tasks, desc="positive streams", unit="stream", leave=False, disable=None)
    positives = [
        (stream, posteriors(bundle, backend, stream.audio, rate)) for _, stream in iterator
    ]
    negative_records = [posteriors(bundle, backend, a, rate) for a in sources.negative_audio]
    negative_hours = sources.negative_hours
    base = StreamConfig.for_bundle(bundle)
    settings = [Setting(*s) for s in itertools.product(THRESHOLDS, SMOOTHINGS, MIN_COUNTS)]
    points = measure(bundle, positives, negative_records, negative_hours, base, settings)
    if max_false_reject_rate is None:
        best, met = choose(points, max_fa_per_hour)
        method = f"fewest false rejects at <= {max_fa_per_hour:g} false alarms per hour"
    else:
        best, met = choose_by_misses(points, max_false_reject_rate)
        method = (
            f"fewest false alarms per hour at <= {100 * max_false_reject_rate:g}% false rejects"
        )
    positive_s = sum(s.audio.size for s, _ in positives) / rate
    return {
        "threshold": best.setting.threshold,
        "smoothing": best.setting.smoothing,
        "min_count": best.setting.min_count,
        "suppression_s": base.suppression_s,
        "chosen_on": {
            "method": f"{method} (onset tolerance 0.5 s)",
            "max_false_alarms_per_hour": None
            if max_false_reject_rate is not None
            else max_fa_per_hour,
            "max_false_reject_rate": max_false_reject_rate,
            "target_met": met,
            "chosen": best.to_dict(),
            "groups": groups,
            "conditions": [c.to_dict() for c in CALIBRATION_CONDITIONS],
            "streams": len(positives),
            "events": sum(len(s.truth) for s, _ in positives),
            "seconds": round(positive_s, 1),
            "negatives": sources.negatives,
            "negative_files": sources.negative_files,
            "negative_hours": round(negative_hours, 3),
            "artefact": backend.artefact.name,
            "seed": seed,
            "points": [p.to_dict() for p in points],
        },
    }


def det_plot(stream: dict[str, Any], path: Path) -> None:
    """False-reject rate against false alarms per hour (log axis), one curve per
    smoothing / min-count; zero false alarms sit at the measurement's floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cal = stream["chosen_on"]
    floor = 0.5 / max(cal["negative_hours"], 1e-9)  # half of one alarm in the hours measured
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for smoothing, min_count in itertools.product(SMOOTHINGS, MIN_COUNTS):
        pts = [
            p for p in cal["points"] if p["smoothing"] == smoothing and p["min_count"] == min_count
        ]
        pts.sort(key=lambda p: p["threshold"])
        ax.plot(
            [max(p["false_alarms_per_hour"], floor) for p in pts],
            [100 * p["false_reject_rate"] for p in pts],
            marker=".",
            lw=1,
            label=f"smooth {smoothing}, {min_count} in a row",
        )
    chosen = cal["chosen"]
    ax.plot(
        max(chosen["false_alarms_per_hour"], floor),
        100 * chosen["false_reject_rate"],
        "k*",
        ms=14,
        label=f"chosen: threshold {chosen['threshold']:.2f}",
    )
    if cal.get("max_false_reject_rate") is not None:
        ax.axhline(100 * cal["max_false_reject_rate"], color="red", ls="--", lw=1, label="target")
    else:
        ax.axvline(cal["max_false_alarms_per_hour"], color="red", ls="--", lw=1, label="target")
    ax.axvline(floor, color="grey", ls=":", lw=1, label="zero alarms (measurement floor)")
    ax.set_xscale("log")
    ax.set_xlabel(f"false alarms per hour ({cal['negative_hours']:.2f} h of negatives)")
    ax.set_ylabel("false rejects (%)")
    ax.set_title("Detection error trade-off (lower left is better)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def verdict_of(cal: dict[str, Any]) -> str:
    """Whether the chosen setting meets its target, in a sentence."""
    chosen, rate = cal["chosen"], cal.get("max_false_reject_rate")
    if rate is not None:
        if cal["target_met"]:
            return (
                f"Of the settings that miss at most {100 * rate:g}% of the words, it raises the "
                "fewest false alarms"
            )
        return f"No setting misses as few as {100 * rate:g}% of the words; it misses the fewest"
    if not cal["target_met"]:
        return (
            f"No setting met the target of {cal['max_false_alarms_per_hour']:g} false alarms "
            "per hour; this is the one with the fewest that still catches half of the words"
        )
    missing_most = chosen["false_reject_rate"] > MAX_FALSE_REJECTS_WHEN_MISSED
    return (
        f"It meets the target of at most {cal['max_false_alarms_per_hour']:g} false alarms per "
        "hour" + (", but only by missing most words" if missing_most else "")
    )


def card_section(stream: dict[str, Any]) -> str:
    cal = stream["chosen_on"]
    same = [
        p
        for p in cal["points"]
        if p["smoothing"] == stream["smoothing"] and p["min_count"] == stream["min_count"]
    ]
    rows = "\n".join(
        f"| {p['threshold']:.2f} | {100 * p['false_reject_rate']:.1f}% | "
        f"{p['false_alarms']} | {p['false_alarms_per_hour']:.1f} | {p['precision']:.3f} |"
        for p in sorted(same, key=lambda p: p["threshold"])
    )
    chosen = cal["chosen"]
    verdict = verdict_of(cal)
    return (
        f"{CARD_SECTION}\n"
        f"`edge-audio listen` detects with {decider_in_words(stream)}: "
        f"{100 * chosen['false_reject_rate']:.1f}% false rejects, "
        f"{chosen['false_alarms_per_hour']:.1f} false alarms per hour. {verdict}. "
        f"Measured through the device path ({cal['artefact']}) on {cal['streams']} streams "
        f"({cal['seconds'] / 60:.1f} min, {cal['events']} words) of the held-out "
        f"{describe_groups(cal['groups'])} clips, clean, in a room (RT60 0.4 s) and in that room "
        f"over real ambience at 10 dB SNR, and on {cal['negative_hours']:.2f} h of "
        f"{cal['negatives']} ({cal['negative_files']} files); never on the demo. "
        "`--threshold` overrides it; `det.png` shows every setting."
        + (f" Set by `{cal['command']}`." if cal.get("command") else "")
        + "\n\n"
        "| threshold | false rejects | false alarms | per hour | precision |\n"
        "|---|---|---|---|---|\n"
        f"{rows}\n"
    )


def run(args: argparse.Namespace) -> int:
    args.bundle = resolve_model(str(args.bundle))
    stream = calibrate(
        args.bundle,
        args.data,
        args.layout,
        args.negatives,
        args.groups,
        args.max_false_alarms_per_hour,
        args.seed,
        not args.quiet,
        args.clips,
        args.max_false_reject_rate,
    )
    stream["chosen_on"]["command"] = command_of(args)
    write_stream_settings(args.bundle, stream, card_section(stream))
    det_plot(stream, Path(args.bundle) / "det.png")
    cal, chosen = stream["chosen_on"], stream["chosen_on"]["chosen"]
    print(
        f"{args.bundle}: {cal['streams']} positive streams ({cal['events']} words, "
        f"{cal['seconds'] / 60:.1f} min), {cal['negative_hours']:.2f} h of negatives "
        f"({cal['negatives']}), {cal['artefact']}"
    )
    by_misses = args.max_false_reject_rate is not None
    if by_misses and not cal["target_met"]:
        print(
            f"warning: every setting misses more than {100 * args.max_false_reject_rate:g}% of "
            "the words; keeping the one that misses the fewest"
        )
    elif (
        not by_misses
        and cal["target_met"]
        and chosen["false_reject_rate"] > MAX_FALSE_REJECTS_WHEN_MISSED
    ):
        print(
            f"warning: the target is met only by missing {100 * chosen['false_reject_rate']:.0f}% "
            "of the words: the model cannot tell them from the negatives. Train longer or with "
            "more negatives, allow more false alarms (--max-false-alarms-per-hour), or choose "
            "by the words it may miss (--max-false-reject-rate)"
        )
    elif not cal["target_met"]:
        print(
            f"warning: no setting reaches {args.max_false_alarms_per_hour:g} false alarms per "
            "hour; keeping the one with the fewest that catches half of the targets. Train "
            "with more negatives (--negatives), or accept more alarms"
        )
    print(
        f"chosen: threshold {stream['threshold']:.2f}, smoothing {stream['smoothing']}, "
        f"{stream['min_count']} in a row: {100 * chosen['false_reject_rate']:.1f}% false "
        f"rejects, {chosen['false_alarms']} false alarms ({chosen['false_alarms_per_hour']:.1f} "
        f"per hour); wrote {Path(args.bundle) / 'det.png'}"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="set a detector's threshold by false alarms per hour (DET curve)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python -m export calibrate models/fsdd-digits --data "
        "../shared/data/fsdd --layout fsdd --max-false-alarms-per-hour 1",
    )
    add_stream_arguments(p, "the calibration part of the negatives it trained with")
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--max-false-alarms-per-hour",
        type=float,
        default=DEFAULT_MAX_FA_PER_HOUR,
        metavar="N",
        help=f"the most false alarms per hour allowed (default {DEFAULT_MAX_FA_PER_HOUR:g})",
    )
    target.add_argument(
        "--max-false-reject-rate",
        type=float,
        metavar="R",
        help="choose by the words it may miss instead: the fewest false alarms among the "
        "settings that miss at most R of them (0.3: 30%%), all rooms pooled",
    )
    p.add_argument(
        "--clips", type=int, help="use at most N held-out clips (default: all; quick looks)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
