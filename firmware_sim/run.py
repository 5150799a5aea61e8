"""`python -m firmware_sim [run]`: will a Pi-class board keep up with a bundle?

The default command: the board's clock, the real loop scaled by the profile's
slowdown, in a child process under the profile's RAM budget."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from edge_audio.bundle import load_bundle
from edge_audio.child import child_env
from edge_audio.commands.runner import SubParsers
from edge_audio.errors import ConfigError, EdgeAudioError
from edge_audio.shipped import demo_recording, resolve_model

from .profiles import (
    HostSpeed,
    Profile,
    builtin_names,
    host_sysbench,
    load_profile,
)


def _limit_address_space(budget_mb: int) -> None:
    """In the child, before exec: the profile's RAM budget as an address-space
    limit (stricter than the board: reserved but untouched pages count too)."""
    limit = budget_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_device(
    profile: Profile,
    model: Path,
    audio: Path,
    slowdown: float,
    seconds: float | None,
    buffer_periods: int,
    backend: str | None,
    precision: str | None,
    memory_limit: bool = True,
) -> dict[str, Any]:
    args = [sys.executable, "-m", "firmware_sim.device", "--model", str(model)]
    args += ["--input", str(audio), "--slowdown", repr(slowdown)]
    args += ["--buffer-periods", str(buffer_periods)]
    if seconds:
        args += ["--seconds", repr(seconds)]
    if backend:
        args += ["--backend", backend]
    if precision:
        args += ["--precision", precision]
    env = child_env()
    budget = profile.ram_budget_mb

    def limit() -> None:
        _limit_address_space(budget)

    def start(limited: bool) -> subprocess.CompletedProcess:
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=limit if limited else None,
            check=False,
        )

    report: dict[str, Any] = {"profile": profile.name, "board": profile.board}
    report |= {"slowdown": round(slowdown, 3), "ram_budget_mb": budget}
    done = start(memory_limit)
    over_budget = None
    if done.returncode != 0 and memory_limit and not _bad_input(done):
        # It failed under the limit: run it unlimited to see what it needs.
        over_budget = _last_line(done.stderr) or f"exit {done.returncode}"
        done = start(False)
    if done.returncode != 0:
        if _bad_input(done):
            raise EdgeAudioError(_last_line(done.stderr).removeprefix("firmware_sim: error: "))
        reason = f"the device process failed (exit {done.returncode}): {_last_line(done.stderr)}"
        return report | {"memory_ok": False, "keeps_up": False, "error": reason}
    report |= json.loads(done.stdout.strip().splitlines()[-1])
    report["keeps_up"] = report["overruns"] == 0
    report["memory_ok"] = over_budget is None and report["peak_rss_mb"] <= budget
    if over_budget is not None:
        report["memory_error"] = (
            f"did not run within {budget} MB of address space ({over_budget}); unlimited it "
            f"peaked at {report['peak_rss_mb']} MB resident, "
            f"{report['peak_address_space_mb']} MB address space"
        )
    cpu = report["cpu_percent"]
    # The loop's share of a core grows with the slowdown; at 100% it falls behind.
    keeps = report["keeps_up"] and cpu
    report["max_slowdown_keeping_up"] = round(100 * slowdown / cpu, 1) if keeps else None
    return report


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


def _bad_input(done: subprocess.CompletedProcess) -> bool:
    return done.returncode == 2 and _last_line(done.stderr).startswith("firmware_sim: error:")


def print_report(report: dict[str, Any]) -> None:
    print(f"{report['board']} ({report['profile']}), slowdown {report['slowdown']:g}x this host")
    if "host_speed" in report:
        speed = report["host_speed"]
        print(
            f"  this host: {speed['events_per_cpu_s']:.0f} sysbench events per CPU-second "
            f"(median of {speed['runs']}, {100 * speed['cpu_share']:.0f}% of a core)"
        )
    if "error" in report:
        print(f"FAILED: {report['error']}")
        return
    for event in report["events"]:
        label = event["label"]
        if event["type"] == "event":
            print(
                f"  {event['start']:8.2f}-{event['end']:.2f} s  {label:<14} "
                f"{event['score']:.2f}  (emitted at {event['emitted']:.3f} s)"
            )
        else:
            print(f"  {event['time']:8.2f} s  -> {label:<14} {event['score']:.2f}")
    verdict = "keeps up" if report["keeps_up"] else "FALLS BEHIND"
    memory = "fits" if report["memory_ok"] else "OVER BUDGET"
    print(
        f"{verdict}: {report['stream_seconds']:.1f} s of audio, {report['periods']} periods, "
        f"{report['deadline_misses']} deadline misses, {report['overruns']} overruns, "
        f"{report['dropped_samples']} dropped samples"
    )
    margin = report["max_slowdown_keeping_up"]
    print(
        f"CPU {report['cpu_percent']:.2f}% of one core (headroom {100 * report['headroom']:.1f}%), "
        f"worst decision latency {report['max_latency_ms']:.0f} ms"
        + (f", keeps up until {margin}x slower than this host" if margin else "")
    )
    print(f"memory {memory}: peak RSS {report['peak_rss_mb']} MB of {report['ram_budget_mb']} MB")
    if "memory_error" in report:
        print(f"  {report['memory_error']}")
    print(report["comparison"])


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    bundle = load_bundle(resolve_model(args.model))  # checked here for one clear error line
    args.input = args.input or demo_recording()
    if not args.input.is_file():
        raise ConfigError(f"{args.input}: no such audio file")
    host: HostSpeed | None = None
    if args.slowdown is not None:
        if args.slowdown <= 0:
            raise ConfigError("--slowdown must be positive")
        slowdown = args.slowdown
    else:
        host = None if profile.slowdown is not None else host_sysbench()
        slowdown = profile.slowdown_against(host.events_per_cpu_s if host else None)
        if host is not None and host.warning():
            print(f"firmware_sim: warning: {host.warning()}", file=sys.stderr)
    seconds = args.hours * 3600 if args.hours else None
    report = run_device(
        profile,
        bundle.root,
        args.input,
        slowdown,
        seconds,
        args.buffer_periods,
        args.backend,
        args.precision,
        not args.no_memory_limit,
    )
    for event in report.get("events", []):
        event.pop("wall", None)  # host wall time means nothing on the simulated clock
    if host is not None:
        report["host_speed"] = host.to_dict()
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0 if report["keeps_up"] and report["memory_ok"] else 1


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        description="Simulate a Pi-class board running the edge_audio device loop: the audio "
        "clock fills a fixed capture buffer, the real loop processes it on one thread with its "
        "measured cost scaled by the profile, in a child process under the profile's RAM "
        "budget. Reports deadline misses, overruns, dropped samples, latency, headroom and "
        "peak memory, and checks the events against listen --simulate --fast.",
        epilog="examples:\n  python -m firmware_sim --profile pi-zero-2w\n"
        "  python -m firmware_sim --profile pi3b --model models/esc50 --hours 1 --json\n"
        "  python -m firmware_sim profiles\n"
        "  python -m firmware_sim from-bench pi4-bench.json --name my-pi4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--profile",
        default="pi-zero-2w",
        help=f"board: {', '.join(builtin_names())}, or a profile JSON (default pi-zero-2w)",
    )
    p.add_argument("--model", help="bundle folder or shipped model name (default: fsdd-digits)")
    p.add_argument("--input", type=Path, help="WAV file (default: the demo)")
    p.add_argument("--hours", type=float, help="repeat the input to this many hours")
    p.add_argument("--slowdown", type=float, help="override the profile's slowdown")
    p.add_argument("--buffer-periods", type=int, default=4, help="capture ring size in periods (4)")
    p.add_argument("--backend", choices=("onnx", "tflite"), help="runtime (default: best)")
    p.add_argument("--precision", choices=("fp32", "int8"), help="model precision")
    p.add_argument(
        "--no-memory-limit", action="store_true", help="measure memory without enforcing it"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    return p
