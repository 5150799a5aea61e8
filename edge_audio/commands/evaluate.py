"""`edge-audio evaluate BUNDLE --data D --layout L`: the device path over a dataset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..bundle import load_bundle
from ..datasets import GROUPS_HELP, LAYOUTS, scan
from ..shipped import resolve_model
from .options import MODEL_HELP, runtime_options
from .runner import SubParsers


def run(args: argparse.Namespace) -> int:
    from ..backends import load_backend
    from ..evaluate import evaluate
    from ..metrics import format_confusion

    bundle = load_bundle(resolve_model(args.bundle))
    backend = load_backend(bundle, args.backend, args.precision, args.threads)
    index = scan(args.data, args.layout, folds=args.folds, groups=args.groups)

    def progress(done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\rscoring {done + 1}/{total}", end="", file=sys.stderr, flush=True)

    result = evaluate(bundle, backend, index, progress)
    report = result.report
    if not args.json and sys.stderr.isatty():
        print(file=sys.stderr)
    skipped = [{"file": str(s.path), "reason": s.reason} for s in result.skipped]
    warning = result.overlap_warning()
    if args.json:
        print(
            json.dumps(
                {
                    "model": bundle.name,
                    "accuracy": report["accuracy"],
                    "macro_f1": report["macro_f1"],
                    "n": report["n"],
                    "skipped": skipped,
                    "backend": backend.format,
                    "runtime": backend.runtime,
                    "precision": backend.precision,
                    "per_class": report["per_class"],
                    "labels": report["labels"],
                    "confusion": report["confusion"],
                    "seconds_of_audio": round(result.seconds_of_audio, 2),
                    "seen_in_training": result.seen_in_training,
                }
            )
        )
        if warning:
            print(warning, file=sys.stderr)
        return 0
    print(f"{bundle.name} on {index.root} ({args.layout}): {backend.describe()}")
    print(
        f"accuracy {100 * report['accuracy']:.2f}%  macro-F1 {100 * report['macro_f1']:.2f}%"
        f"  ({report['n']} clips, {len(skipped)} skipped)"
    )
    width = max(len(label) for label in report["labels"])
    print(f"{'class':>{width}}  precision  recall     f1  support")
    for label, row in report["per_class"].items():
        if row["support"] or row["precision"]:
            print(
                f"{label:>{width}}  {100 * row['precision']:8.1f}%  {100 * row['recall']:5.1f}%"
                f"  {100 * row['f1']:5.1f}%  {row['support']:7d}"
            )
    present = [
        i
        for i, label in enumerate(report["labels"])
        if report["per_class"][label]["support"] or any(r[i] for r in report["confusion"])
    ]
    matrix = np.asarray(report["confusion"])[np.ix_(present, present)]
    print("confusion (rows: truth, columns: predicted)")
    print(format_confusion(matrix, [report["labels"][i] for i in present]))
    for s in skipped:
        print(f"skipped {s['file']}: {s['reason']}")
    if warning:  # last, where it cannot be missed
        print(warning)
    return 0


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="score a model bundle on a labelled dataset (the device path)",
        description="Run the device path (frontend + backend) over a dataset and print accuracy, "
        "macro-F1, per-class figures and the confusion matrix. By default the int8 TFLite model "
        "when an interpreter for it is installed, else the best available.",
        epilog="example: edge-audio evaluate fsdd-digits --data ../shared/data/fsdd "
        "--layout fsdd --json",
    )
    p.add_argument("bundle", nargs="?", help=MODEL_HELP)
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--layout", choices=LAYOUTS, required=True, help="how the folder is organised")
    p.add_argument("--folds", type=int, nargs="+", help="esc50 only: folds to score")
    p.add_argument("--groups", metavar="PATTERN_OR_CSV", help=GROUPS_HELP)
    runtime_options(p)
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.set_defaults(run=run)
    return p
