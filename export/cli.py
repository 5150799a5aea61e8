"""`python -m export` / `edge-audio export`: the desktop toolchain's commands.

Each command lives in its own module and imports torch and friends only when it
runs, so `--help` works without the train extra."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edge_audio.errors import EdgeAudioError

COMMANDS: dict[str, str] = {
    "train": "export.train",
    "quantize": "export.quantize",
    "calibrate": "export.streamcal",
}  # name -> module providing add_parser(sub) and run(args)


def build_parser(prog: str = "python -m export") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="The edge-audio desktop toolchain (needs: pip install 'edge-audio[train]').",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    import importlib

    for name, module in COMMANDS.items():
        importlib.import_module(module).add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m export") -> int:
    """`prog` is how the user called it (`edge-audio export` forwards here), so
    usage lines and error prefixes name the command that was typed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    args.argv = argv  # recorded in run configs and model cards, to reproduce a run
    try:
        return int(args.run(args) or 0)
    except EdgeAudioError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
