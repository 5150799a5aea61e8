"""`python -m export` / `edge-audio export`: the desktop toolchain's commands.

Each command lives in its own module with `add_parser(sub, name)` and a `run`
default, and imports torch and friends only when it runs, so `--help` works
without the train extra. Errors and exit codes: edge_audio/commands/runner.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from edge_audio.commands.runner import add_commands, run_cli

COMMANDS = {
    "train": "export.train",
    "quantize": "export.quantize",
    "threshold": "export.threshold",
    "calibrate": "export.calibrate",
    "robustness": "export.robustness",
}


def build_parser(prog: str = "python -m export") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="The edge-audio desktop toolchain (needs: pip install 'edge-audio[train]').",
    )
    add_commands(parser, COMMANDS)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m export") -> int:
    """`prog` is how the user called it (`edge-audio export` forwards here), so
    usage lines and error prefixes name the command that was typed."""

    def parse(arguments: list[str]) -> argparse.Namespace:
        return build_parser(prog).parse_args(arguments)

    return run_cli(prog, parse, argv)
