"""`edge-audio pack BUNDLE --out DIR`: a bundle with only the model file a board runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..pack import ARTEFACTS
from ..shipped import resolve_model
from .options import MODEL_HELP
from .runner import SubParsers


def run(args: argparse.Namespace) -> int:
    from ..pack import board_install_hint, pack

    packed = pack(resolve_model(args.bundle), args.artefact, args.out, force=args.force)
    size = sum(a.size for a in packed.artefacts.values())
    print(
        f"wrote {args.out}: {packed.name}, {args.artefact} ({size / 1024:.1f} KB), checked.\n"
        f"on the board: {board_install_hint(args.artefact)}; "
        f"edge-audio listen --model {args.out.name}"
    )
    return 0


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="copy a bundle with only the model file one runtime needs (for a board)",
        description="Write a bundle folder that holds one model file, its manifest (listing "
        "only that file) and the card: what a board needs. The copy is loaded and its sha256 "
        "checked before the command returns.",
        epilog="example: edge-audio pack fsdd-digits --artefact tflite-int8 --out fsdd-pi\n"
        "then on the board: pip install 'edge-audio[litert]'; "
        "edge-audio listen --model fsdd-pi",
    )
    p.add_argument("bundle", help=MODEL_HELP)
    p.add_argument(
        "--artefact",
        choices=ARTEFACTS,
        default="tflite-int8",
        help="the model file to keep (default tflite-int8: the smallest and fastest on a Pi)",
    )
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    p.add_argument("--force", action="store_true", help="replace --out if it is not empty")
    p.set_defaults(run=run)
    return p
