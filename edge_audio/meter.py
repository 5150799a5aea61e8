"""Process meters for the summaries and benchmarks: resident memory, now and at
its peak.

The peak comes from /proc/self/status (VmHWM), which belongs to this program's
address space. getrusage's ru_maxrss is kept across exec on Linux, so a child
started by a large parent (pytest, the bench) would report the parent's peak.
"""

from __future__ import annotations

import resource
from pathlib import Path


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB."""
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: the rusage figure is the best there is
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / 1024, 1)


def rss_mb() -> float:
    """Current resident set size of this process, in MiB."""
    kb = _status_kb("VmRSS")
    return round(kb / 1024, 2) if kb is not None else peak_rss_mb()


def peak_address_space_mb() -> float | None:
    """Peak virtual size (VmPeak): what an address-space limit is checked against."""
    kb = _status_kb("VmPeak")
    return None if kb is None else round(kb / 1024, 1)
