"""`python -m export robustness BUNDLE`: how a detector holds up as the room gets
worse, as a table (robustness.json), a picture (robustness.png) and a card section.

Streams of the bundle's held-out clips are heard in each room of a grid:
reverberation time (0, 0.3, 0.6 s by default) by real ambience at an SNR (none,
20, 10, 5, 0 dB); every stream runs through the device path at the bundle's own
operating point and is scored by event F1 (onset tolerance 0.5 s). False alarms
per hour are counted on negative recordings the bundle never trained on nor was
calibrated on: the validation part of its negatives, or the folders given.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.backends import load_backend
from edge_audio.datasets import describe_groups
from edge_audio.shipped import resolve_model
from edge_audio.stream import StreamConfig

from .card import command_of, replace_card_section
from .streams import (
    Condition,
    add_stream_arguments,
    positive_streams,
    stream_sources,
)
from .threshold import (
    count_events,
    detector_and_groups,
    events_at,
    posteriors,
)

RT60S = (0.0, 0.3, 0.6)
SNRS: tuple[float | None, ...] = (None, 20.0, 10.0, 5.0, 0.0)  # None: no ambience
CARD_SECTION = "## Robustness"


def robustness(
    bundle_dir: Path,
    data: Path,
    layout: str,
    negatives: Sequence[Path] | None = None,
    groups: list[str] | None = None,
    rt60s: Sequence[float] = RT60S,
    snrs: Sequence[float | None] = SNRS,
    clips_per_room: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    bundle, groups = detector_and_groups(bundle_dir, groups)
    sources = stream_sources(
        bundle, data, layout, groups, negatives, "validation", clips_per_room, seed
    )
    rate = bundle.frontend.sample_rate
    backend = load_backend(bundle)
    config = StreamConfig.for_bundle(bundle)
    cells = []
    for rt60 in rt60s:
        for snr in snrs:
            condition = Condition(f"rt60 {rt60:g} s, snr {snr}", rt60 or None, snr)
            streams = positive_streams(sources.clips, rate, condition, sources.ambience, seed)
            runs = [(s, posteriors(bundle, backend, s.audio, rate)) for s in streams]
            counts = count_events(bundle, config, runs)
            precision, recall, f1 = counts.precision_recall_f1()
            cells.append(
                {
                    "rt60": rt60,
                    "snr_db": snr,
                    "events": counts.true,
                    "precision": round(precision, 4),
                    "recall": round(recall, 4),
                    "f1": round(f1, 4),
                }
            )
    alarms = sum(
        len(events_at(bundle, posteriors(bundle, backend, a, rate), config))
        for a in sources.negative_audio
    )
    hours = sources.negative_hours
    return {
        "bundle": bundle.name,
        "artefact": backend.artefact.name,
        "operating_point": {
            "threshold": config.threshold,
            "smoothing": config.smoothing,
            "min_count": config.min_count,
        },
        "groups": groups,
        "clips_per_room": len(sources.clips),
        "seed": seed,
        "cells": cells,
        "negatives": {
            "files": sources.negative_files,
            "hours": round(hours, 3),
            "false_alarms": alarms,
            "false_alarms_per_hour": round(alarms / max(hours, 1e-9), 2),
        },
    }


def plot(report: dict[str, Any], path: Path) -> None:
    """A heat map of event F1, reverberation down and ambience across."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rt60s = sorted({c["rt60"] for c in report["cells"]})
    snrs = list(dict.fromkeys(c["snr_db"] for c in report["cells"]))
    grid = np.zeros((len(rt60s), len(snrs)))
    for c in report["cells"]:
        grid[rt60s.index(c["rt60"]), snrs.index(c["snr_db"])] = c["f1"]
    fig, ax = plt.subplots(figsize=(1.3 * len(snrs) + 2, 0.8 * len(rt60s) + 2))
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=11)
    ax.set_xticks(range(len(snrs)), ["no ambience" if s is None else f"{s:g} dB" for s in snrs])
    ax.set_yticks(range(len(rt60s)), ["dry" if r == 0 else f"RT60 {r:g} s" for r in rt60s])
    ax.set_xlabel("real ambience (SNR)")
    neg = report["negatives"]
    ax.set_title(
        f"{report['bundle']}: event F1 by room; {neg['false_alarms_per_hour']:g} false alarms/h "
        f"on {neg['hours']:.2f} h of negatives",
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, label="event F1")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def card_section(report: dict[str, Any]) -> str:
    snrs = list(dict.fromkeys(c["snr_db"] for c in report["cells"]))
    header = " | ".join("no ambience" if s is None else f"{s:g} dB SNR" for s in snrs)
    f1 = {(c["rt60"], c["snr_db"]): c["f1"] for c in report["cells"]}
    rows = [
        f"| {'dry' if rt60 == 0 else f'RT60 {rt60:g} s'} | "
        + " | ".join(f"{f1[rt60, s]:.3f}" for s in snrs)
        + " |"
        for rt60 in sorted({c["rt60"] for c in report["cells"]})
    ]
    neg, op = report["negatives"], report["operating_point"]
    return (
        f"{CARD_SECTION}\n"
        f"Event F1 of {report['artefact']} at its operating point (threshold "
        f"{op['threshold']:.2f}) on {report['clips_per_room']} held-out "
        f"{describe_groups(report['groups'])} clips per room, reverberated by simulated rooms "
        f"and mixed over real ambience from negative recordings; {neg['false_alarms']} false "
        f"alarms in {neg['hours']:.2f} h of negative recordings it neither trained nor was "
        f"calibrated on ({neg['false_alarms_per_hour']:g} per hour). `robustness.png` shows "
        "the same."
        + (f" Measured by `{report['command']}`." if report.get("command") else "")
        + "\n\n"
        f"| room | {header} |\n|---|{'---|' * len(snrs)}\n" + "\n".join(rows) + "\n"
    )


def run(args: argparse.Namespace) -> int:
    args.bundle = resolve_model(str(args.bundle))
    report = robustness(
        args.bundle,
        args.data,
        args.layout,
        args.negatives,
        args.groups,
        clips_per_room=args.clips,
        seed=args.seed,
    )
    report["command"] = command_of(args)
    out = Path(args.out or args.bundle)
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out / "robustness.png")
    if args.out is None:
        replace_card_section(args.bundle, CARD_SECTION, card_section(report))
    print(card_section(report))
    print(f"wrote {out / 'robustness.json'} and {out / 'robustness.png'}")
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="event F1 against reverberation and SNR, and false alarms per hour",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python -m export robustness models/fsdd-digits --data "
        "../shared/data/fsdd --layout fsdd",
    )
    add_stream_arguments(p, "the validation part of the negatives it trained with")
    p.add_argument("--clips", type=int, default=200, help="held-out clips per room (200)")
    p.add_argument(
        "--out",
        type=Path,
        help="folder for robustness.json/png (default: the bundle, whose card gets the table)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)
