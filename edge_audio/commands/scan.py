"""`edge-audio scan DATA --layout L`: index a dataset folder, name its bad files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..datasets import GROUPS_HELP, LAYOUTS, scan
from .runner import SubParsers


def run(args: argparse.Namespace) -> int:
    index = scan(args.data, args.layout, folds=args.folds, groups=args.groups)
    if args.json:
        print(
            json.dumps(
                {
                    "layout": index.layout,
                    "root": str(index.root),
                    "clips": len(index.records),
                    "labels": {
                        label: sum(r.label == label for r in index.records)
                        for label in index.labels
                    },
                    "groups": index.groups,
                    "groups_declared": index.groups_declared,
                    "background": [str(p) for p in index.background],
                    "skipped": [{"file": str(s.path), "reason": s.reason} for s in index.skipped],
                }
            )
        )
    else:
        print(index.summary())
    return 0


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="index a dataset folder and list its classes and bad files",
        description="Index a labelled dataset the way training will see it: classes, "
        "groups (speakers, folds, recordings that must not be split), skipped files.",
        epilog="example: edge-audio scan --data ../shared/data/fsdd --layout fsdd",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--layout", choices=LAYOUTS, required=True, help="how the folder is organised")
    p.add_argument("--folds", type=int, nargs="+", help="esc50 only: folds to include")
    p.add_argument("--groups", metavar="PATTERN_OR_CSV", help=GROUPS_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    return p
