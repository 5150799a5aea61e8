"""One command-line pattern for `edge-audio`, `python -m export` and
`python -m firmware_sim`: a module per command with `add_parser(sub, name)` (which
sets `run` as its default) and `run(args) -> exit code`, and one wrapper that
turns what can go wrong into exit codes:

- an EdgeAudioError (bad input, a missing file, a package to install): one line
  `PROG: error: ...` on stderr, exit 2; a traceback means a bug, never bad input;
- Ctrl-C: exit 130, as a shell would;
- a closed pipe (`edge-audio scan ... | head`): exit 0, quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import EdgeAudioError

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    SubParsers = argparse._SubParsersAction

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def add_commands(parser: argparse.ArgumentParser, commands: Mapping[str, str]) -> None:
    """Subcommands from modules, by name: {"listen": "edge_audio.commands.listen"}."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in commands.items():
        importlib.import_module(module).add_parser(sub, name)


def run_cli(
    prog: str,
    parse: Callable[[list[str]], argparse.Namespace],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse `argv` (default: the process's) and run the chosen command's `run`."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse(arguments)
        args.argv = arguments  # recorded in run configs and cards, to reproduce a run
        code: int = args.run(args)
        return int(code or 0)
    except EdgeAudioError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Python would complain again flushing stdout at exit: point it nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
