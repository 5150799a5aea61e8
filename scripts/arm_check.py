"""The Arm check: the device runtime over the demo recording, per-window
probabilities and events recorded, then the aarch64 run compared with x86.

    python scripts/arm_check.py run --out FILE.json        (on each architecture)
    python scripts/arm_check.py compare X86.json ARM.json  (exit 1 on a mismatch)

Tolerances: probabilities within 1e-4 for fp32 models and 1/255 for int8 ones
(one step of the int8 output), and exactly the same events.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_audio.backends import load_backend  # noqa: E402
from edge_audio.bundle import load_bundle  # noqa: E402
from edge_audio.file_source import FileSource  # noqa: E402
from edge_audio.shipped import demo_recording, shipped_models  # noqa: E402
from edge_audio.stream import StreamEngine  # noqa: E402

MODELS = tuple(shipped_models())
TOLERANCE = {"fp32": 1e-4, "int8": 1 / 255}


def recorder(windows: list[list[float]]):
    """A per-window hook that keeps every window's probabilities."""
    return lambda probs, start, end: windows.append(probs.tolist())


def run(audio: Path, models: list[str]) -> dict:
    results = {}
    for model in models:
        bundle = load_bundle(shipped_models()[model])
        for precision in ("fp32", "int8"):
            backend = load_backend(bundle, "tflite", precision)
            windows: list[list[float]] = []
            source = FileSource(audio)
            engine = StreamEngine(bundle, backend, source.rate, on_window=recorder(windows))
            events = []
            for chunk in source.chunks():
                events += engine.feed(chunk)
            events += engine.flush()
            results[f"{model}/tflite-{precision}"] = {
                "runtime": backend.describe(),
                "probabilities": windows,
                "events": [{k: v for k, v in e.to_dict().items() if k != "wall"} for e in events],
            }
    return {"machine": platform.machine(), "python": platform.python_version(), "runs": results}


def compare(x86: dict, arm: dict) -> list[str]:
    problems = []
    for name, mine in x86["runs"].items():
        theirs = arm["runs"].get(name)
        if theirs is None:
            problems.append(f"{name}: missing on {arm['machine']}")
            continue
        a, b = np.array(mine["probabilities"]), np.array(theirs["probabilities"])
        tolerance = TOLERANCE[name.rsplit("-", 1)[1]]
        if a.shape != b.shape:
            problems.append(f"{name}: {a.shape[0]} windows on x86, {b.shape[0]} on Arm")
            continue
        worst = float(np.abs(a - b).max()) if a.size else 0.0
        labels = lambda run: [(e["type"], e["label"], e.get("start"), e["time"]) for e in run]  # noqa: E731
        same_events = labels(mine["events"]) == labels(theirs["events"])
        verdict = "ok" if worst <= tolerance and same_events else "MISMATCH"
        print(
            f"{verdict:8s} {name:26s} {a.shape[0]:4d} windows, max |p_x86 - p_arm| = "
            f"{worst:.2e} (tolerance {tolerance:.2e}), {len(mine['events'])} events "
            f"{'identical' if same_events else 'DIFFER'}"
        )
        if verdict != "ok":
            problems.append(name)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--audio", type=Path, default=demo_recording())
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p = sub.add_parser("compare")
    p.add_argument("x86", type=Path)
    p.add_argument("arm", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        report = run(args.audio, args.models)
        args.out.write_text(json.dumps(report))
        print(f"{report['machine']}: {len(report['runs'])} runs written to {args.out}")
        return 0
    x86, arm = (json.loads(p.read_text()) for p in (args.x86, args.arm))
    print(f"{x86['machine']} (Python {x86['python']}) vs {arm['machine']} (Python {arm['python']})")
    problems = compare(x86, arm)
    print("same events, probabilities within tolerance" if not problems else "MISMATCH")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
