"""`python -m firmware_sim from-bench BOARD_BENCH.json --name NAME`: a profile whose
slowdown is measured on the board by `edge-audio bench`, not estimated."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from edge_audio.commands.runner import SubParsers
from edge_audio.errors import ConfigError
from edge_audio.shipped import shipped_models

from .profiles import (
    PROFILE_DIR,
    Profile,
)


def profile_from_bench(
    board: dict[str, Any], host: dict[str, Any], name: str, os_reserve_mb: int
) -> Profile:
    """A profile whose slowdown is measured: the median, over the artefacts both
    bench runs share, of the board's loop CPU per second of audio over this host's."""

    def key(row: dict[str, Any]) -> tuple[str, str]:
        return row["model"], row["name"]

    here = {key(r): r for r in host.get("artefacts", [])}
    ratios = [
        r["cpu_percent"] / here[key(r)]["cpu_percent"]
        for r in board.get("artefacts", [])
        if key(r) in here and here[key(r)].get("cpu_percent") and r.get("cpu_percent")
    ]
    if not ratios:
        raise ConfigError(
            "the board's and this host's bench reports share no artefact to compare "
            "(run edge-audio bench --json on the board with the same bundles)"
        )
    machine = board.get("machine", {})
    ram = machine.get("ram_mb")
    if not ram:
        raise ConfigError("the board's bench report has no machine.ram_mb")
    cpu = str(machine.get("cpu", "unknown CPU"))
    host_cpu = str(host.get("machine", {}).get("cpu", "this host"))
    return Profile(
        name=name,
        board=f"{name} (calibrated)",
        cpu=cpu,
        cores=int(machine.get("cores") or 1),
        clock_ghz=None,
        ram_mb=int(ram),
        os_reserve_mb=os_reserve_mb,
        slowdown=round(statistics.median(ratios), 3),
        measured_against=host_cpu,
        sources={
            "slowdown": f"measured: median over {len(ratios)} artefacts of the loop's CPU per "
            f"second of audio, edge-audio bench on {cpu} / on {host_cpu}",
            "cores, ram_mb": "measured: the board's edge-audio bench report (machine)",
            "os_reserve_mb": "given to calibrate (--os-reserve-mb)",
        },
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not an edge-audio bench report ({exc.msg})") from None


def run(args: argparse.Namespace) -> int:
    board = _read_json(args.board_bench)
    if args.host_bench:
        host = _read_json(args.host_bench)
    else:
        from edge_audio.bench import BenchConfig, run_bench

        models = sorted({r["model"] for r in board.get("artefacts", [])})
        shipped = shipped_models()
        bundles = [shipped[m] for m in models if m in shipped]
        if not bundles:
            raise ConfigError(
                f"none of the board report's models ({', '.join(models)}) is shipped here "
                f"({', '.join(shipped)}): give --host-bench"
            )
        print(f"benchmarking {', '.join(models)} on this host ...", file=sys.stderr)
        host = run_bench(bundles, config=BenchConfig(), baseline=False)
    profile = profile_from_bench(board, host, args.name, args.os_reserve_mb)
    out = args.out or PROFILE_DIR / f"{args.name}.json"
    out.write_text(json.dumps(profile.to_dict(), indent=2) + "\n")
    print(f"wrote {out}: {profile.slowdown}x slower than this host, {profile.ram_mb} MB RAM")
    return 0


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        description="Write a profile from `edge-audio bench --json` run on a real board: its "
        "slowdown is measured (loop CPU per second of audio, board / this host) instead of "
        "estimated from a published score.",
    )
    p.add_argument("board_bench", type=Path, help="bench JSON from the board")
    p.add_argument("--name", required=True, help="profile name, e.g. my-pi4")
    p.add_argument("--host-bench", type=Path, help="this host's bench JSON (default: run it now)")
    p.add_argument("--os-reserve-mb", type=int, default=128, help="RAM kept by the OS (128)")
    p.add_argument(
        "--out", type=Path, help="profile file (default firmware_sim/profiles/NAME.json)"
    )
    p.set_defaults(run=run)
    return p
