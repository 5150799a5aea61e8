"""What does a detector do with quiet sound? Per-window peak normalisation
(edge_audio.windows.normalise) brings every window to the same scale, so a
distant sound or a quiet room's hum reaches the model as loud as a word. This
measures it, for one or more bundles side by side, at each one's operating point:

    python benchmarks/level.py [--models fsdd-digits runs/bundle ...] [--data ../shared/data]

- everyday sounds and music the bundle never trained on (the validation and
  calibration parts of its negatives, as benchmarks/room.py), played at 0, -20
  and -40 dB: false alarms per hour;
- the held-out speaker's words, clean, at the same gains: event F1.

A model that ignores level fires as often at -40 dB as at 0 dB; one that sees
absolute level fires less on quiet sound but may also miss quiet words. It
prints a table; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_audio.backends import load_backend  # noqa: E402
from edge_audio.bundle import load_bundle  # noqa: E402
from edge_audio.shipped import resolve_model  # noqa: E402
from edge_audio.stream import StreamConfig  # noqa: E402
from export.streams import (  # noqa: E402
    Condition,
    load_negative_audio,
    negative_events,
    positive_streams,
    unheard_sounds_and_talk,
)
from export.threshold import count_events, held_out_clips, posteriors  # noqa: E402

GAINS_DB = (0.0, -20.0, -40.0)


def level_handling(bundle: Any) -> str:
    spec = bundle.manifest.input
    if spec.normalisation != "peak":
        return spec.normalisation
    if spec.dynamic_range is None:
        return "absolute level (fixed dB map)"
    return f"per-window peak, {spec.dynamic_range:g} dB range"


def measure(model: str, data: Path) -> dict[str, Any]:
    bundle = load_bundle(resolve_model(model))
    backend = load_backend(bundle)
    config = StreamConfig.for_bundle(bundle)
    training = bundle.manifest.training
    rate = bundle.frontend.sample_rate
    sounds, _ = unheard_sounds_and_talk(bundle, data)
    audio, _ = load_negative_audio(sounds, rate)
    groups = list(training.test_groups) if training else ["theo"]
    clean = positive_streams(
        held_out_clips(bundle, data / "fsdd", "fsdd", groups), rate, Condition("clean"), None, 3
    )
    rows: dict[str, Any] = {
        "model": bundle.name,
        "artefact": backend.artefact.name,
        "normalisation": level_handling(bundle),
        "threshold": config.threshold,
    }
    for gain in GAINS_DB:
        scale = np.float32(10 ** (gain / 20))
        n, hours, _ = negative_events(bundle, backend, config, [a * scale for a in audio])
        runs = [(s, posteriors(bundle, backend, s.audio * scale, rate)) for s in clean]
        f1 = count_events(bundle, config, runs).precision_recall_f1()[2]
        rows[f"{gain:+.0f} dB"] = {
            "false_alarms_per_hour": round(n / hours, 1),
            "hours": round(hours, 3),
            "f1": round(f1, 3),
        }
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["fsdd-digits"])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [measure(m, args.data) for m in args.models]
    gains = [f"{g:+.0f} dB" for g in GAINS_DB]
    print("| model | normalisation | " + " | ".join(f"{g}: FA/h, F1" for g in gains) + " |")
    print("|---|---|" + "---|" * len(gains))
    for r in results:
        cells = [f"{r[g]['false_alarms_per_hour']}, {r[g]['f1']}" for g in gains]
        head = f"| {r['model']} ({r['artefact']}) | {r['normalisation']} | "
        print(head + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
