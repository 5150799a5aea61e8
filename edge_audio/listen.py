"""The listen loop: a short orchestration of source, engine and output, as in
micro_speech's main loop. One drive loop (`Drive`) serves both ways of using it,
`Listener.run()` with callbacks and `for decision in listener`; it ends at the
end of the input, on Ctrl-C, on SIGTERM (what systemd sends) or when the device
is lost, and always leaves a summary."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .deciders import Decision
from .meter import peak_rss_mb
from .source import DeviceLost, Source
from .stream import StreamConfig, StreamEngine

DEVICE_LOST = "device lost"


class Stop(Exception):
    """Raised by the SIGTERM handler to end the loop cleanly."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Stop


class Drive:
    """Chunks through the engine; decisions out. Iterate it once; then `summary()`."""

    def __init__(
        self, chunks: Iterable[np.ndarray], engine: StreamEngine, source: Source | None = None
    ) -> None:
        self.chunks, self.engine, self.source = chunks, engine, source
        self.samples = self.events = 0
        self.ended_by = "not started"
        self.lost: DeviceLost | None = None
        self.wall = self.cpu = 0.0

    def __iter__(self) -> Iterator[Decision]:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        wall_start, cpu_start = time.monotonic(), time.process_time()
        self.ended_by = "end of input"
        try:
            for chunk in self.chunks:
                self.samples += len(chunk)
                yield from self._count(self.engine.feed(chunk))
            yield from self._count(self.engine.flush())
        except KeyboardInterrupt:
            self.ended_by = "interrupt"
        except Stop:
            self.ended_by = "SIGTERM"
        except DeviceLost as exc:
            self.ended_by, self.lost = f"{DEVICE_LOST}: {exc}", exc
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.wall = time.monotonic() - wall_start
            self.cpu = time.process_time() - cpu_start

    def _count(self, decisions: list[Decision]) -> Iterator[Decision]:
        for decision in decisions:
            self.events += 1
            yield decision

    def summary(self) -> dict[str, Any]:
        engine = self.engine
        stream_seconds = self.samples / engine.resampler_source_rate
        return {
            "type": "summary",
            "ended_by": self.ended_by,
            "stream_seconds": round(stream_seconds, 3),
            "windows": engine.windows,
            "events": self.events,
            "overflows": self.source.overflows if self.source else 0,
            "latency_ms": engine.latency.percentiles_ms(),
            # CPU time per second of audio, as a share of one core
            "cpu_percent": round(100 * self.cpu / stream_seconds, 3) if stream_seconds else 0.0,
            "realtime_factor": round(self.wall / stream_seconds, 5) if stream_seconds else 0.0,
            "peak_rss_mb": peak_rss_mb(),
            "backend": engine.backend.describe(),
            "dropped_frames": self.source.dropped_frames if self.source else 0,
            "speech_gate": engine.gate.summary() if engine.gate is not None else None,
        }


class Listener:
    """The Python API for embedding edge-audio in a program:

        with Listener("fsdd-digits") as listener:    # the default microphone
            for decision in listener:
                print(decision.label, decision.score)

        listener = Listener(simulate="recording.wav")
        listener.on(lambda decision: print(decision.to_dict()))
        summary = listener.run()

    Both ways run the same loop. SIGTERM and Ctrl-C end it quietly; a lost device
    ends `run()` with `summary["ended_by"]` saying so, and raises DeviceLost out
    of the `for` loop. The CLI's `listen` is a thin layer over this class."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str | None = None,
        simulate: str | Path | None = None,
        realtime: bool = False,
        config: StreamConfig | None = None,
        overrides: dict[str, Any] | None = None,
        backend: str | None = None,
        precision: str | None = None,
        threads: int = 1,
        vad: float | None = None,
    ) -> None:
        """`vad`: a speech-gate threshold (vad.py); an event stands only if Silero
        VAD hears speech in its window at or above it. None: no gate."""
        from .backends import load_backend
        from .bundle import load_bundle
        from .shipped import resolve_model

        self.bundle = load_bundle(resolve_model(model))
        self.backend = load_backend(self.bundle, backend, precision, threads)
        if config is None:  # the bundle's settings, with the caller's overrides
            config = StreamConfig.for_bundle(self.bundle, **(overrides or {}))
        self.source: Source
        if simulate is not None:
            from .file_source import FileSource

            self.source = FileSource(simulate, realtime=realtime)
        else:
            from .microphone import MicSource

            self.source = MicSource(device)
        gate = None
        if vad is not None:
            from .vad import SpeechGate

            gate = SpeechGate(vad)
        self.engine = StreamEngine(self.bundle, self.backend, self.source.rate, config, gate=gate)
        self.callbacks: list[Callable[[Decision], None]] = []
        self.summary: dict[str, Any] | None = None

    def on(self, callback: Callable[[Decision], None]) -> None:
        self.callbacks.append(callback)

    def run(self, duration_s: float | None = None) -> dict[str, Any]:
        """Run to the end of the input (or `duration_s`), calling the callbacks."""
        drive = self._drive(duration_s)
        try:
            for decision in drive:
                self._emit(decision)
        finally:
            self.close()
        self.summary = drive.summary()
        return self.summary

    def __iter__(self) -> Iterator[Decision]:
        """Run the stream, yielding each decision (callbacks are called too)."""
        drive = self._drive(None)
        try:
            for decision in drive:
                self._emit(decision)
                yield decision
        finally:
            self.close()
            self.summary = drive.summary()
        if drive.lost is not None:
            raise drive.lost

    def _drive(self, duration_s: float | None) -> Drive:
        chunks = self.source.chunks()
        if duration_s:
            chunks = limit_seconds(chunks, duration_s, self.source.rate)
        return Drive(chunks, self.engine, self.source)

    def _emit(self, decision: Decision) -> None:
        for callback in self.callbacks:
            callback(decision)

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def limit_seconds(chunks: Iterable[np.ndarray], seconds: float, rate: int) -> Iterator[np.ndarray]:
    """Stop a chunk stream after `seconds` of audio."""
    budget = round(seconds * rate)
    for chunk in chunks:
        if budget <= 0:
            return
        yield chunk[:budget]
        budget -= len(chunk)
