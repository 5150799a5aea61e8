"""The deciders: one window's class probabilities in, a decision (or nothing)
out. They own no audio and no interpreter, only the little state a decision
needs (the smoothing ring, the current run of windows), so the engine, the
threshold calibration and the bench baseline replay them alike.

    probabilities -> Smoother (moving average) -> EventDetector  (a background class)
                                               -> LabelTracker   (classification)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    from .bundle import Bundle
    from .stream import StreamConfig


@dataclass(frozen=True)
class Event:
    """A detection: `start`/`end`/`time` are seconds of stream time, `wall` Unix time."""

    label: str
    score: float
    start: float
    end: float
    time: float
    wall: float
    type: str = "event"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LabelChange:
    """Classification mode: the smoothed label changed at stream time `time`."""

    label: str
    score: float
    time: float
    wall: float
    type: str = "label"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Smoother:
    """Moving average of the last `n` posteriors, in a fixed ring."""

    def __init__(self, n: int, classes: int) -> None:
        self.ring = np.zeros((n, classes))
        self.count = 0

    def push(self, probs: np.ndarray) -> np.ndarray:
        self.ring[self.count % len(self.ring)] = probs
        self.count += 1
        return np.asarray(self.ring[: min(self.count, len(self.ring))].mean(axis=0))


class EventDetector:
    """An event when one non-background label's smoothed score stays at or above
    the threshold for `min_count` windows; then nothing for `suppression_s`."""

    def __init__(self, labels: list[str], background: str | None, config: StreamConfig) -> None:
        self.labels = labels
        self.background = labels.index(background) if background in labels else None
        self.config = config
        self.run_label: int | None = None
        self.run_count = 0
        self.run_start = 0.0
        self.run_best = 0.0
        self.quiet_until = -np.inf

    def decide(self, smoothed: np.ndarray, window_start: float, window_end: float) -> Event | None:
        scores = smoothed.copy()
        if self.background is not None:
            scores[self.background] = -1.0
        best = int(np.argmax(scores))
        if scores[best] < self.config.threshold or window_end < self.quiet_until:
            self.run_label, self.run_count = None, 0
            return None
        if best != self.run_label:
            self.run_label, self.run_count = best, 0
            self.run_start, self.run_best = window_start, 0.0
        self.run_count += 1
        self.run_best = max(self.run_best, float(scores[best]))
        if self.run_count < self.config.min_count:
            return None
        self.run_label, self.run_count = None, 0
        self.quiet_until = window_end + self.config.suppression_s
        return Event(
            self.labels[best], self.run_best, self.run_start, window_end, window_end, time.time()
        )


class LabelTracker:
    """One smoothed label per stride; a LabelChange when it differs from the last."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self.current: int | None = None

    def decide(
        self, smoothed: np.ndarray, window_start: float, window_end: float
    ) -> LabelChange | None:
        best = int(np.argmax(smoothed))
        if best == self.current:
            return None
        self.current = best
        return LabelChange(self.labels[best], float(smoothed[best]), window_end, time.time())


# What a stream emits: an event (detection) or a label change (classification).
Decision = Union["Event", "LabelChange"]


class Decider:
    """What turns one window's probabilities into decisions: the moving average,
    then the event detector (bundles with a background class) or the label
    tracker. The engine owns one; the bench baseline and the threshold
    calibration use the same."""

    def __init__(self, bundle: Bundle, config: StreamConfig) -> None:
        self.smoother = Smoother(config.smoothing, len(bundle.labels))
        self.rule: EventDetector | LabelTracker
        if bundle.task == "detection":
            self.rule = EventDetector(bundle.labels, bundle.background_label, config)
        else:
            self.rule = LabelTracker(bundle.labels)

    def decide(self, probs: np.ndarray, start: float, end: float) -> Event | LabelChange | None:
        return self.rule.decide(self.smoother.push(probs), start, end)
