"""The streaming engine: audio chunks in, decisions out.

    chunk -> resampler -> streaming log-mel (new frames only) -> ring of frames
          -> every stride: window -> backend -> posterior smoothing -> decider

The engine owns the state (buffers, interpreter); the deciders (deciders.py)
only decide, as in silero-vad's split between model wrapper and iterator. A
per-window hook lets the threshold calibration, the Arm check and bench watch
every window's probabilities without subclassing the engine. Every buffer has a
fixed size, so memory stays flat however long it runs. An optional speech gate
(vad.py) vetoes events whose window holds no speech.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .backends import Backend
from .bundle import Bundle
from .deciders import Decider, Decision, Event
from .errors import ConfigError
from .frontend import StreamingLogMel
from .resample import StreamingResampler

if TYPE_CHECKING:
    from .vad import SpeechGate

# Audio the speech gate keeps beyond the window: a chunk may run past the window's end.
GATE_SLACK_S = 1.0


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
        held-out streams when `python -m export threshold` has set one), with any
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


# Called for every scored window: (probabilities, window start s, window end s).
WindowHook = Callable[[np.ndarray, float, float], None]


class StreamEngine:
    """Feed chunks at the source rate; get decisions back."""

    def __init__(
        self,
        bundle: Bundle,
        backend: Backend,
        source_rate: int,
        config: StreamConfig | None = None,
        on_window: WindowHook | None = None,
        gate: SpeechGate | None = None,
    ) -> None:
        if gate is not None and bundle.task != "detection":
            raise ConfigError(
                f"the speech gate vetoes events; {bundle.name} is a classification model "
                "(a label track, no events)"
            )
        self.bundle = bundle
        self.gate = gate
        self.backend = backend
        self.config = config or StreamConfig.for_bundle(bundle)
        self.on_window = on_window
        frontend = bundle.frontend
        self.resampler_source_rate = source_rate
        frames, mels = bundle.input_shape[2:]
        self.ring = np.full((frames, mels), -100.0, dtype=np.float32)
        self.stride_frames = max(
            1, round(self.config.stride_s * frontend.sample_rate / frontend.hop_length)
        )
        self.latency = LatencyLog()
        self.frame_seconds = frontend.hop_length / frontend.sample_rate
        self.reset()

    def reset(self) -> None:
        """Forget the stream: a new recording starts from silence, as at start-up.
        The interpreter and every buffer are kept; latency figures too."""
        frontend = self.bundle.frontend
        self.resampler = StreamingResampler(self.resampler_source_rate, frontend.sample_rate)
        self.features = StreamingLogMel(frontend)
        self.ring.fill(-100.0)
        self.frames_seen = 0
        self.decider = Decider(self.bundle, self.config)
        self.windows = 0
        if self.gate is not None:
            from .vad import gate_rate

            self.gate_rate = gate_rate(frontend.sample_rate)
            self.gate_resampler = StreamingResampler(frontend.sample_rate, self.gate_rate)
            size = round((self.bundle.window_seconds + GATE_SLACK_S) * self.gate_rate)
            self.gate_audio = np.zeros(size, dtype=np.float32)
            self.gate_samples = 0  # written since the stream began
            self.gate_chunk = round(GATE_SLACK_S * self.resampler_source_rate)

    def feed(self, chunk: np.ndarray) -> list[Decision]:
        if self.gate is not None and len(chunk) > self.gate_chunk:
            # The gate keeps only a window and its slack of audio: a longer chunk
            # goes in pieces, so every window it completes is still there to hear.
            longest = self.gate_chunk
            pieces = (chunk[i : i + longest] for i in range(0, len(chunk), longest))
            return [decision for piece in pieces for decision in self.feed(piece)]
        decisions = []
        start = time.perf_counter()
        samples = self.resampler.process(chunk)
        if self.gate is not None:
            self._keep_for_gate(samples)
        frames = self.features.push(samples)
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

    def flush(self) -> list[Decision]:
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

    def _score_window(self) -> Decision | None:
        probs = self.backend.probabilities(self._window())[0]
        self.windows += 1
        decision = self.decide(probs)
        vetoed = (
            isinstance(decision, Event)
            and self.gate is not None
            and not self.gate.allows(self._gate_window(), self.gate_rate)
        )
        return None if vetoed else decision

    def _keep_for_gate(self, samples: np.ndarray) -> None:
        """The newest audio at the gate's rate, in a buffer of fixed size."""
        heard = self.gate_resampler.process(samples)
        self.gate_samples += heard.size
        self.gate_audio = np.concatenate((self.gate_audio, heard))[-self.gate_audio.size :]

    def _gate_window(self) -> np.ndarray:
        """The audio of the newest window at the gate's rate: the samples that end
        where the window ends, both resamplers' delays taken into account."""
        delay = self.resampler.delay_seconds + self.gate_resampler.delay_seconds
        end = round((self.window_span()[1] + delay) * self.gate_rate)
        past_end = min(max(self.gate_samples - end, 0), self.gate_audio.size)
        size = round(self.bundle.window_seconds * self.gate_rate)
        stop = self.gate_audio.size - past_end
        return self.gate_audio[max(stop - size, 0) : stop]

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

    def decide(self, probs: np.ndarray) -> Decision | None:
        """Smooth one window's probabilities and let the decider decide."""
        start, end = self.window_span()
        if self.on_window is not None:
            self.on_window(probs, start, end)
        return self.decider.decide(probs, start, end)
