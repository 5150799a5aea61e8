"""The streaming engine: audio chunks in, decisions out.

    chunk -> resampler -> streaming log-mel (new frames only) -> ring of frames
          -> every stride: window -> backend -> posterior smoothing -> decider

The engine owns the state (buffers, interpreter); the deciders only decide,
as in silero-vad's split between model wrapper and iterator. Every buffer has a
fixed size, so memory stays flat however long it runs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .backends import Backend
from .bundle import Bundle
from .errors import ConfigError
from .frontend import StreamingLogMel
from .resample import StreamingResampler


@dataclass(frozen=True)
class StreamConfig:
    stride_s: float = 0.25  # a window is scored every stride
    smoothing: int = 3  # moving average over this many windows
    threshold: float = 0.5  # detection: smoothed score a label must reach
    min_count: int = 2  # ... for this many windows in a row
    suppression_s: float = 1.0  # detection: quiet time after an event

    def __post_init__(self) -> None:
        if self.stride_s <= 0 or self.smoothing < 1 or self.min_count < 1:
            raise ConfigError("stride must be positive; smoothing and min count at least 1")
        if not 0 < self.threshold <= 1:
            raise ConfigError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.suppression_s < 0:
            raise ConfigError("suppression time cannot be negative")

    @classmethod
    def for_bundle(cls, bundle: Bundle, **overrides: float | int | None) -> StreamConfig:
        """The bundle's own settings (its stride; the threshold calibrated on
        held-out streams when `python -m export calibrate` has set one), with any
        non-None override on top (e.g. the CLI's --threshold)."""
        settings: dict[str, Any] = {"stride_s": bundle.manifest.window.stream_stride_seconds}
        stream = bundle.manifest.stream
        if stream is not None:
            settings |= {
                "threshold": stream.threshold,
                "smoothing": stream.smoothing,
                "min_count": stream.min_count,
                "suppression_s": stream.suppression_s,
            }
        settings |= {k: v for k, v in overrides.items() if v is not None}
        unknown = set(settings) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown stream settings: {', '.join(sorted(unknown))}")
        return cls(**settings)


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
        return self.ring[: min(self.count, len(self.ring))].mean(axis=0)


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


class LatencyLog:
    """The last `size` per-window latencies, for percentiles, in a fixed array."""

    def __init__(self, size: int = 4096) -> None:
        self.values = np.zeros(size)
        self.count = 0

    def add(self, seconds: float) -> None:
        self.values[self.count % len(self.values)] = seconds
        self.count += 1

    def percentiles_ms(self) -> dict[str, float]:
        data = self.values[: min(self.count, len(self.values))]
        if data.size == 0:
            return {"p50": 0.0, "p99": 0.0}
        return {
            "p50": float(np.percentile(data, 50) * 1e3),
            "p99": float(np.percentile(data, 99) * 1e3),
        }


class StreamEngine:
    """Feed chunks at the source rate; get decisions back."""

    def __init__(
        self, bundle: Bundle, backend: Backend, source_rate: int, config: StreamConfig | None = None
    ) -> None:
        self.bundle = bundle
        self.backend = backend
        self.config = config or StreamConfig.for_bundle(bundle)
        frontend = bundle.frontend
        self.resampler = StreamingResampler(source_rate, frontend.sample_rate)
        self.resampler_source_rate = source_rate
        self.features = StreamingLogMel(frontend)
        frames, mels = bundle.input_shape[2:]
        self.ring = np.full((frames, mels), -100.0, dtype=np.float32)
        self.frames_seen = 0
        self.stride_frames = max(
            1, round(self.config.stride_s * frontend.sample_rate / frontend.hop_length)
        )
        self.decider = Decider(bundle, self.config)
        self.latency = LatencyLog()
        self.windows = 0
        self.frame_seconds = frontend.hop_length / frontend.sample_rate

    def feed(self, chunk: np.ndarray) -> list[Event | LabelChange]:
        decisions = []
        start = time.perf_counter()
        frames = self.features.push(self.resampler.process(chunk))
        while len(frames):
            # Frames go into the ring in blocks that end where a window is due,
            # not one by one: a Python step per frame was a fifth of the loop's cost.
            take = self._frames_until_window()
            window_due = len(frames) >= take
            self._write(frames[:take])
            frames = frames[take:]
            if window_due:
                decision = self._score_window()
                self.latency.add(time.perf_counter() - start)
                start = time.perf_counter()
                if decision is not None:
                    decisions.append(decision)
        return decisions

    def _frames_until_window(self) -> int:
        """How many more frames complete the next window (the ring full, then
        every stride)."""
        size, seen = len(self.ring), self.frames_seen
        if seen < size:
            return size - seen
        return self.stride_frames - (seen - size) % self.stride_frames

    def _write(self, block: np.ndarray) -> None:
        """Append frames to the ring, wrapping around its end."""
        size = len(self.ring)
        self.frames_seen += len(block)
        block = block[-size:]  # a block longer than the ring keeps its newest frames
        pos = (self.frames_seen - len(block)) % size
        head = min(len(block), size - pos)
        self.ring[pos : pos + head] = block[:head]
        self.ring[: len(block) - head] = block[head:]

    def flush(self) -> list[Event | LabelChange]:
        """End of input: a window's worth of silence lets the last sound reach the
        middle of the window, as the microphone's next second would have."""
        silence = np.zeros(
            round(self.bundle.window_seconds * self.resampler_source_rate), dtype=np.float32
        )
        return self.feed(silence)

    def _window(self) -> np.ndarray:
        """The ring in time order (oldest frame first)."""
        split = self.frames_seen % len(self.ring)
        return np.concatenate((self.ring[split:], self.ring[:split]))

    def _score_window(self) -> Event | LabelChange | None:
        probs = self.backend.probabilities(self._window())[0]
        self.windows += 1
        return self.decide(probs)

    def window_span(self) -> tuple[float, float]:
        """Stream time (start, end) of the newest window, corrected for the
        resampler's delay."""
        frontend = self.bundle.frontend
        end = (
            self.frames_seen * self.frame_seconds
            + (frontend.win_length - frontend.hop_length) / frontend.sample_rate
            - self.resampler.delay_seconds
        )
        return max(end - self.bundle.window_seconds, 0.0), end

    def decide(self, probs: np.ndarray) -> Event | LabelChange | None:
        """Smooth one window's probabilities and let the decider decide."""
        return self.decider.decide(probs, *self.window_span())
