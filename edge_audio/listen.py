"""The listen loop: a short orchestration of source, engine and output, as in
micro_speech's main loop. It ends at the end of the input, on Ctrl-C or on
SIGTERM (what systemd sends), and always reports a summary."""

from __future__ import annotations

import resource
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .sources import DeviceLost
from .stream import Event, LabelChange, StreamEngine


class Stop(Exception):
    """Raised by the SIGTERM handler to end the loop cleanly."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Stop


def run(
    chunks: Iterable[np.ndarray],
    engine: StreamEngine,
    emit: Callable[[Event | LabelChange], None],
    overflows: Callable[[], int] = lambda: 0,
) -> dict[str, Any]:
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    wall_start, cpu_start = time.monotonic(), time.process_time()
    samples = 0
    events = 0
    ended_by = "end of input"
    try:
        for chunk in chunks:
            samples += len(chunk)
            for decision in engine.feed(chunk):
                events += 1
                emit(decision)
        for decision in engine.flush():
            events += 1
            emit(decision)
    except KeyboardInterrupt:
        ended_by = "interrupt"
    except Stop:
        ended_by = "SIGTERM"
    except DeviceLost as exc:
        ended_by = f"device lost: {exc}"
    finally:
        signal.signal(signal.SIGTERM, previous)
    wall = time.monotonic() - wall_start
    cpu = time.process_time() - cpu_start
    stream_seconds = samples / engine.resampler_source_rate
    return {
        "type": "summary",
        "ended_by": ended_by,
        "stream_seconds": round(stream_seconds, 3),
        "windows": engine.windows,
        "events": events,
        "overflows": overflows(),
        "latency_ms": engine.latency.percentiles_ms(),
        # CPU time per second of audio, as a share of one core
        "cpu_percent": round(100 * cpu / stream_seconds, 3) if stream_seconds else 0.0,
        "realtime_factor": round(wall / stream_seconds, 5) if stream_seconds else 0.0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "backend": engine.backend.describe(),
    }
