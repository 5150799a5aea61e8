"""`python -m firmware_sim profiles`: the built-in boards and their slowdown here."""

from __future__ import annotations

import argparse

from edge_audio.commands.runner import SubParsers

from .profiles import (
    builtin_names,
    host_sysbench,
    load_profile,
)


def run(args: argparse.Namespace) -> int:
    speed = None if args.no_host else host_sysbench()
    host = speed.events_per_cpu_s if speed else None
    for name in builtin_names():
        p = load_profile(name)
        slow = p.slowdown_against(host) if host or p.slowdown else None
        slow_text = f"{slow:.1f}x slower than this host" if slow else "slowdown: needs sysbench"
        print(f"{name:12s} {p.board}: {p.cpu}, {p.ram_mb} MB RAM, {slow_text}")
        for key, source in p.sources.items():
            print(f"{'':12s}   {key}: {source}")
    if speed:
        print(
            f"this host: sysbench cpu --threads=1: {speed.events_per_cpu_s:.0f} events per "
            f"CPU-second (median of {speed.runs} runs, {100 * speed.cpu_share:.0f}% of a core)"
        )
        if speed.warning():
            print(f"warning: {speed.warning()}")
    return 0


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        description="List the built-in profiles, their sources and their slowdown here.",
    )
    p.add_argument("--no-host", action="store_true", help="do not run sysbench here")
    p.set_defaults(run=run)
    return p
