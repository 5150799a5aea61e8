"""The `edge-audio` command line: a thin layer over the library.

Each command is a module of edge_audio/commands with `add_parser` and `run`;
commands/runner.py turns errors into exit codes (bad input: one line, exit 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .commands.export import forward_to_export
from .commands.runner import EXIT_BAD_INPUT, add_commands, run_cli

__all__ = ["EXIT_BAD_INPUT", "build_parser", "main"]

COMMANDS = {
    name: f"edge_audio.commands.{name}"
    for name in ("features", "scan", "evaluate", "listen", "record", "bench", "pack", "export")
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-audio",
        description="Sound classification on Raspberry Pi-class boards: features, "
        "datasets, and (with the train extra) the desktop toolchain.",
        epilog="Run 'edge-audio COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"edge-audio {__version__}")
    add_commands(parser, COMMANDS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        # Everything after `export` is the toolchain's, `--help` included:
        # argparse's REMAINDER would not take an option as its first word.
        return run_cli("edge-audio", lambda _: _forward(argv[1:]), [])
    return run_cli("edge-audio", build_parser().parse_args, argv)


def _forward(rest: list[str]) -> argparse.Namespace:
    return argparse.Namespace(run=lambda args: forward_to_export(rest))


if __name__ == "__main__":
    sys.exit(main())
