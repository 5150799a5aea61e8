"""The Arm check: the device runtime over the demo recording, per-window
probabilities and events recorded, then the aarch64 run compared with x86.

    python scripts/arm_check.py run --out FILE.json        (on each architecture)
    python scripts/arm_check.py compare X86.json ARM.json  (exit 1 on a mismatch)

Tolerances: probabilities within 1e-4 for fp32 models and 1/255 for int8 ones
(one step of the int8 output), and exactly the same events. A deep int8 network
(EfficientAT mn04 in models/esc50) is not bit-exact across architectures: its
int8 kernels round differently on Arm. It passes as "within int8 noise" when the
Arm-x86 difference is smaller than its own int8-vs-fp32 difference on x86 (the
noise its verification accepted) and every window whose top label changed was a
near-tie (top-two margin within twice that difference); its events may then
differ, and the line says how many windows flipped.
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
        extra = ""
        fp32 = x86["runs"].get(name.replace("-int8", "-fp32"))
        if verdict != "ok" and name.endswith("-int8") and fp32 is not None:
            noise, flips = int8_noise(a, b, np.array(fp32["probabilities"]), worst)
            if flips is not None:
                verdict = "ok~"
                extra = (
                    f"; within int8 noise (int8 vs fp32 on x86: {noise:.2e}), "
                    f"{flips} near-tie window(s) flipped"
                )
        print(
            f"{verdict:8s} {name:26s} {a.shape[0]:4d} windows, max |p_x86 - p_arm| = "
            f"{worst:.2e} (tolerance {tolerance:.2e}), {len(mine['events'])} events "
            f"{'identical' if same_events else 'DIFFER'}{extra}"
        )
        if not verdict.startswith("ok"):
            problems.append(name)
    return problems


def int8_noise(
    x86: np.ndarray, arm: np.ndarray, fp32: np.ndarray, worst: float
) -> tuple[float, int | None]:
    """The x86 int8-vs-fp32 difference, and how many windows changed their top
    label on Arm, or None when Arm is outside int8 noise or flipped a window
    that was not a near-tie."""
    if fp32.shape != x86.shape or not x86.size:
        return 0.0, None
    noise = float(np.abs(x86 - fp32).max())
    top = np.sort(x86, axis=1)
    margin = top[:, -1] - top[:, -2] if x86.shape[1] > 1 else np.ones(len(x86))
    flipped = x86.argmax(1) != arm.argmax(1)
    if worst > noise or np.any(margin[flipped] > 2 * worst):
        return noise, None
    return noise, int(flipped.sum())


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
    print("every run within tolerance" if not problems else "MISMATCH")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
