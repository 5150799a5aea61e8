"""Device profiles: what a Pi-class board has (cores, clock, RAM) and how much
slower than this host it runs the loop, each number with its source beside it.

A built-in profile gives the board's published single-thread sysbench score;
its slowdown is that score against this host's, measured in the same run
(`host_sysbench_events_per_s`). A calibrated profile (`firmware_sim from-bench`)
carries a slowdown measured with `edge-audio bench` on the real board instead.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_audio.errors import ConfigError, EdgeAudioError

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"


@dataclass(frozen=True)
class Profile:
    name: str
    board: str
    cpu: str
    cores: int
    ram_mb: int
    os_reserve_mb: int  # RAM the OS and GPU split keep; the rest is the loop's budget
    clock_ghz: float | None = None
    sysbench_events_per_s: float | None = None  # published single-thread score
    slowdown: float | None = None  # measured on the board (calibrated profiles)
    measured_against: str | None = None  # the host a measured slowdown is relative to
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sysbench_events_per_s is None and self.slowdown is None:
            raise ConfigError(f"profile {self.name}: needs a sysbench score or a slowdown")
        if self.ram_mb <= self.os_reserve_mb:
            raise ConfigError(f"profile {self.name}: the OS reserve leaves no RAM")

    @property
    def ram_budget_mb(self) -> int:
        return self.ram_mb - self.os_reserve_mb

    def slowdown_against(self, host_events_per_s: float | None) -> float:
        """How many times longer a step takes on the board than here."""
        if self.slowdown is not None:
            return self.slowdown
        if not host_events_per_s:
            raise ConfigError(f"profile {self.name}: needs this host's sysbench score")
        assert self.sysbench_events_per_s is not None
        return host_events_per_s / self.sysbench_events_per_s

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def builtin_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, or a profile JSON file (e.g. from calibrate)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.json"
        if not path.exists():
            raise ConfigError(
                f"unknown profile '{name_or_path}' (built in: {', '.join(builtin_names())}; "
                "or give a profile JSON file)"
            )
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read profile: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not a profile (bad JSON: {exc.msg})") from None
    try:
        return Profile(**data)
    except TypeError as exc:
        raise ConfigError(f"{path}: not a profile ({exc})") from None


@dataclass(frozen=True)
class HostSpeed:
    """This host's single-thread sysbench cpu score, steadied against its load.

    sysbench reports events per second of wall time, which falls when other
    processes share the core (3.2x, then 2.3x minutes later, where the idle host
    gives 8-9x). Counting events per second of sysbench's own CPU time instead
    measures the core, not the load; the median of a few runs steadies it."""

    events_per_cpu_s: float  # median over runs
    cpu_share: float  # median share of the wall clock sysbench got on its core
    spread: float  # (max - min) / median of the runs' scores
    runs: int

    def warning(self) -> str | None:
        if self.cpu_share < BUSY_SHARE:
            return (
                f"this host is busy (sysbench got {100 * self.cpu_share:.0f}% of a core): the "
                "slowdown is measured on CPU time, but cache and memory contention can still "
                "make the simulated board look slower than it is"
            )
        if self.spread > UNSTEADY_SPREAD:
            return (
                f"this host's speed varied by {100 * self.spread:.0f}% over {self.runs} sysbench "
                "runs (frequency scaling or contention): compare results from one quiet session"
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"warning": self.warning()}


BUSY_SHARE = 0.9  # sysbench with less of its core than this: the host was busy
UNSTEADY_SPREAD = 0.10


def host_sysbench(seconds: float = 1.0, runs: int = 3) -> HostSpeed:
    """This host's single-thread sysbench cpu score (events per CPU-second): the
    same test as the published board figures (taken on idle boards, where wall
    and CPU time agree), so their ratio is a like-for-like slowdown."""
    if shutil.which("sysbench") is None:
        raise EdgeAudioError(
            "scaling a profile to this host needs sysbench (apt install sysbench), "
            "or give --slowdown"
        )
    scores, shares = [], []
    for _ in range(runs):
        cpu0 = _children_cpu_seconds()
        wall0 = time.monotonic()
        done = subprocess.run(
            ["sysbench", "cpu", "--threads=1", f"--time={seconds:g}", "run"],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - wall0
        cpu = _children_cpu_seconds() - cpu0
        match = re.search(r"total number of events:\s*(\d+)", done.stdout)
        if done.returncode != 0 or match is None or cpu <= 0:
            raise ConfigError(f"sysbench failed: {(done.stderr or done.stdout).strip()[-200:]}")
        scores.append(int(match.group(1)) / cpu)
        shares.append(min(cpu / wall, 1.0))
    median = statistics.median(scores)
    return HostSpeed(
        round(median, 1),
        round(statistics.median(shares), 3),
        round((max(scores) - min(scores)) / median, 3),
        runs,
    )


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
