"""`edge-audio export ...`: the desktop toolchain, `python -m export`, when installed."""

from __future__ import annotations

import argparse

from ..errors import EdgeAudioError
from .runner import SubParsers


def run(args: argparse.Namespace) -> int:
    return forward_to_export(args.rest)


def forward_to_export(rest: list[str]) -> int:
    """Forward to the desktop toolchain (`python -m export`), imported only here."""
    try:
        from export.cli import main as export_main
    except ImportError as exc:
        raise EdgeAudioError(
            f"the export toolchain is not installed ({exc.name or exc}): "
            "pip install 'edge-audio[train]'"
        ) from None
    return export_main(rest, prog="edge-audio export")


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="desktop toolchain: train, quantize (same as python -m export)",
        description="Forward to the desktop toolchain; needs the train extra.",
        add_help=False,
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(run=run)
    return p
