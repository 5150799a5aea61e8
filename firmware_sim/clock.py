"""The simulated board: the audio clock fills a fixed-capacity capture buffer
(as ALSA's period/ring buffer does), and the device loop (the real
`edge_audio` StreamEngine, not a copy) takes one period at a time on one thread.
Each step's cost is measured here and scaled by the profile's slowdown, and
all accounting happens on the simulated clock:

- a deadline miss: a period finished after the next period was complete;
- an overrun: the loop came back to a buffer that had already wrapped; the
  oldest periods are lost (dropped samples) and the loop goes on with the rest,
  as a microphone read with overflow tolerated does;
- latency: from the end of a decision's window in the stream to the moment the
  loop emits it;
- headroom: the share of one core the loop leaves idle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from edge_audio.deciders import Event, LabelChange
from edge_audio.stream import StreamEngine

Decision = Event | LabelChange


@dataclass
class ClockReport:
    periods: int = 0
    deadline_misses: int = 0
    overruns: int = 0
    dropped_samples: int = 0
    busy_s: float = 0.0  # simulated CPU time of the loop
    stream_s: float = 0.0
    max_latency_s: float = 0.0  # worst decision latency
    max_period_latency_s: float = 0.0  # worst oldest-sample-to-processed time
    first_overrun_s: float | None = None
    decisions: list[Decision] = field(default_factory=list)
    emitted_at: list[float] = field(default_factory=list)  # simulated clock

    def summary(self) -> dict[str, Any]:
        return {
            "periods": self.periods,
            "deadline_misses": self.deadline_misses,
            "overruns": self.overruns,
            "dropped_samples": self.dropped_samples,
            "max_latency_ms": round(1e3 * self.max_latency_s, 2),
            "max_period_latency_ms": round(1e3 * self.max_period_latency_s, 2),
            "cpu_percent": round(100 * self.busy_s / self.stream_s, 3) if self.stream_s else 0.0,
            "headroom": round(1 - self.busy_s / self.stream_s, 4) if self.stream_s else 1.0,
            "first_overrun_s": self.first_overrun_s,
        }


def thread_seconds(call: Callable[[], list[Decision]]) -> tuple[list[Decision], float]:
    """Run a step and measure this thread's CPU time: other processes on a shared
    host take wall time, not this thread's CPU time."""
    start = time.thread_time()
    result = call()
    return result, time.thread_time() - start


def simulate(
    engine: StreamEngine,
    periods: Iterable[np.ndarray],
    rate: int,
    slowdown: float,
    buffer_periods: int = 4,
    measure: Callable[[Callable[[], list[Decision]]], tuple[list[Decision], float]] = (
        thread_seconds
    ),
) -> ClockReport:
    """Play `periods` (equal-sized chunks at `rate`) through `engine` on the
    simulated clock of a board `slowdown` times slower than this host."""
    report = ClockReport()
    stream: Iterator[np.ndarray] = iter(periods)
    free_at = 0.0  # when the loop is next idle, on the simulated clock
    offset = 0  # stream samples before the next chunk the loop reads
    capacity: int | None = None  # the ring, in samples
    period_s = 0.0
    pending: np.ndarray | None = next(stream, None)
    while pending is not None:
        if capacity is None:
            capacity = buffer_periods * pending.size
            period_s = pending.size / rate
        ready = (offset + pending.size) / rate  # the chunk is complete in the ring
        start = max(free_at, ready)
        # Samples captured by `start` that the loop has not read: beyond the ring's
        # capacity, the oldest were overwritten (whole periods, as ALSA's ring).
        if int(start * rate) - offset > capacity:
            report.overruns += 1
            if report.first_overrun_s is None:
                report.first_overrun_s = round(start, 3)
            while pending is not None and int(start * rate) - offset > capacity:
                report.dropped_samples += pending.size
                offset += pending.size
                pending = next(stream, None)
            if pending is None:
                break
            ready = (offset + pending.size) / rate
            start = max(free_at, ready)
        chunk = pending
        decisions, cost = measure(partial(engine.feed, chunk))
        finish = start + cost * slowdown
        report.busy_s += cost * slowdown
        report.periods += 1
        if finish > ready + period_s:  # not done before the next period is complete
            report.deadline_misses += 1
        report.max_period_latency_s = max(report.max_period_latency_s, finish - offset / rate)
        for decision in decisions:
            report.decisions.append(decision)
            report.emitted_at.append(finish)
            report.max_latency_s = max(report.max_latency_s, finish - decision.time)
        free_at = finish
        offset += chunk.size
        pending = next(stream, None)
    report.stream_s = offset / rate
    # End of input: the same flush as `listen --simulate`, so the events compare.
    for decision in engine.flush():
        report.decisions.append(decision)
        report.emitted_at.append(free_at)
    return report
