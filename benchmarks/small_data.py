"""Small datasets of one's own, trained with the README's commands and default
settings: does the CNN keep up with the logistic baseline on held-out groups?

    python benchmarks/small_data.py [--data ../shared/data] [--only NAME] [--json F]
    python benchmarks/small_data.py --only digits --nproc 2 --threads 1   # torchrun (DDP)
    python benchmarks/small_data.py --backbone efficientat-mn04   # a head on a pretrained net

Two datasets are laid out (as symbolic links, in a temporary folder) in the
`folder` layout a user would make, from the real recordings in ../shared/data:

- digits: four digit classes (0-3), 75 clips each from three FSDD speakers
  (george, jackson, lucas; 25 takes each), named {digit}/{speaker}_{take}.wav and
  declared with --groups '{label}/{group}_*.wav': leave-one-speaker-out.
- digits-ungrouped: the same clips without --groups, as the issue's user first
  ran them: every file its own group, so a speaker's takes sit on both sides of
  each split (5 folds by file). Optimistic, and shown only to compare.
- esc10x5: ten ESC-50 classes with five clips each (the first five of each
  class), every clip its own recording: 5-fold cross-validation by clip.

Each is trained with `python -m export train --cv` and nothing else but the
layout, and the table shows the CNN against the baseline fold by fold.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DIGIT_SPEAKERS = ("george", "jackson", "lucas")


def lay_out_digits(fsdd: Path, root: Path, takes: int = 25) -> list[str]:
    for digit in range(4):
        for speaker in DIGIT_SPEAKERS:
            for take in range(takes):
                source = fsdd / "recordings" / f"{digit}_{speaker}_{take}.wav"
                if not source.is_file():
                    raise SystemExit(f"{source}: not found")
                target = root / str(digit) / f"{speaker}_{take}.wav"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source.resolve())
    return ["--groups", "{label}/{group}_*.wav"]


def lay_out_digits_ungrouped(fsdd: Path, root: Path) -> list[str]:
    lay_out_digits(fsdd, root)
    return []


def lay_out_esc10x5(esc50: Path, root: Path, classes: int = 10, per_class: int = 5) -> list[str]:
    with (esc50 / "meta" / "esc50.csv").open(newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: (int(r["target"]), r["filename"]))
    taken: dict[str, int] = {}
    for row in rows:
        if int(row["target"]) >= classes or taken.get(row["category"], 0) >= per_class:
            continue
        taken[row["category"]] = taken.get(row["category"], 0) + 1
        target = root / row["category"] / row["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((esc50 / "audio" / row["filename"]).resolve())
    return []


def train_cv(name: str, data: Path, extra: list[str], out: Path, nproc: int) -> dict[str, Any]:
    launch = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command = [
        sys.executable,
        *(launch if nproc > 1 else []),
        "-m",
        "export",
        "train",
        "--data",
        str(data),
        "--layout",
        "folder",
        "--out",
        str(out),
        "--cv",
        "--quiet",
        *extra,
    ]
    print(f"{name}: {' '.join(command[1:])}", flush=True)
    start = time.time()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name}: training failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "cv.json").read_text())
    summary["seconds"] = round(time.time() - start, 1)
    return summary


def report(name: str, summary: dict[str, Any], model: str = "CNN") -> list[str]:
    """The fold table; `model` names the trained column (the CNN, or a head)."""
    cnn = summary["accuracy"]["mean"]
    base = summary["baseline_accuracy"]["mean"]
    lines = [
        f"### {name} ({summary['seconds']:.0f} s for every fold)",
        f"| held out | {model} | baseline | best epoch |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {f['name']} | {100 * f['accuracy']:.1f}% | {100 * f['baseline_accuracy']:.1f}% | "
        f"{f['best_epoch']} |"
        for f in summary["folds"]
    ]
    verdict = "within 3 points or better" if cnn >= base - 0.03 else "MORE than 3 points below"
    lines.append(f"| **mean** | **{100 * cnn:.1f}%** | **{100 * base:.1f}%** | |")
    lines.append(f"{model} {100 * (cnn - base):+.1f} points against the baseline: {verdict}")
    lines += [f"check [{c['code']}]: {c['message']}" for c in summary.get("checks", [])]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--only", choices=("digits", "digits-ungrouped", "esc10x5"))
    parser.add_argument("--json", type=Path, help="also write the summaries here")
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="train under torchrun with this many processes (DDP; compare with 1)",
    )
    parser.add_argument("--threads", type=int, help="torch threads per process")
    parser.add_argument(
        "--backbone",
        metavar="NAME_OR_DIR",
        help="train a linear head on this pretrained network instead of the CNN "
        "(python -m export train --backbone); the table then names the head",
    )
    args = parser.parse_args()
    makers: dict[str, tuple[Callable[[Path, Path], list[str]], Path]] = {
        "digits": (lay_out_digits, args.data / "fsdd"),
        "digits-ungrouped": (lay_out_digits_ungrouped, args.data / "fsdd"),
        "esc10x5": (lay_out_esc10x5, args.data / "esc50"),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="edge-audio-small-") as tmp:
        for name, (lay_out, source) in makers.items():
            if args.only and name != args.only:
                continue
            if not source.is_dir():
                raise SystemExit(f"{source}: not found (pass --data)")
            data = Path(tmp) / name
            extra = lay_out(source, data)
            if args.threads:
                extra += ["--threads", str(args.threads)]
            if args.backbone:
                extra += ["--backbone", args.backbone]
            results[name] = train_cv(name, data, extra, Path(tmp) / f"run-{name}", args.nproc)
            model = f"head on {args.backbone}" if args.backbone else "CNN"
            print("\n".join(report(name, results[name], model)), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
