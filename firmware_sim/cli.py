"""python -m firmware_sim: will a Pi-class board keep up with a bundle?

python -m firmware_sim [run] --profile pi-zero-2w [--model BUNDLE] [--input WAV] [--json]
python -m firmware_sim from-bench BOARD_BENCH.json --name my-pi4
python -m firmware_sim profiles

One module per command (run.py, from_bench.py, list_profiles.py), the same
pattern and error handling as `edge-audio` (edge_audio/commands/runner.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edge_audio.commands.runner import add_commands, run_cli

PROG = "python -m firmware_sim"
COMMANDS = {
    "run": "firmware_sim.run",
    "profiles": "firmware_sim.list_profiles",
    "from-bench": "firmware_sim.from_bench",
}
RENAMED = {"calibrate": "from-bench"}  # the old name still works, with a note


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Simulate a Pi-class board running the edge_audio device loop. "
        "`run` is the default: `python -m firmware_sim --profile pi3b` runs it.",
        epilog="examples:\n  python -m firmware_sim --profile pi-zero-2w\n"
        "  python -m firmware_sim --profile pi3b --model esc50 --hours 1 --json\n"
        "  python -m firmware_sim profiles\n"
        "  python -m firmware_sim from-bench pi4-bench.json --name my-pi4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_commands(parser, COMMANDS)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    if argv[:1] and argv[0] in RENAMED:
        print(f"{PROG}: note: '{argv[0]}' is now '{RENAMED[argv[0]]}'", file=sys.stderr)
        argv = [RENAMED[argv[0]], *argv[1:]]
    if not argv or argv[0] not in {*COMMANDS, "-h", "--help"}:
        argv = ["run", *argv]  # the default command
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, parse, argv)


if __name__ == "__main__":
    sys.exit(main())
