"""The listen loop: a short orchestration of source, engine and output, as in
micro_speech's main loop. It ends at the end of the input, on Ctrl-C or on
SIGTERM (what systemd sends), and always reports a summary."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .meter import peak_rss_mb
from .sources import DeviceLost
from .stream import Event, LabelChange, StreamConfig, StreamEngine


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
        "peak_rss_mb": peak_rss_mb(),
        "backend": engine.backend.describe(),
    }


class Listener:
    """The Python API for embedding edge-audio in a program:

        with Listener("fsdd-digits") as listener:    # the default microphone
            for decision in listener:
                print(decision.label, decision.score)

        listener = Listener(simulate="recording.wav")
        listener.on(lambda decision: print(decision.to_dict()))
        summary = listener.run()

    The CLI's `listen` is a thin layer over this class."""

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
    ) -> None:
        from .backends import load_backend
        from .bundle import load_bundle
        from .shipped import resolve_model
        from .sources import FileSource, MicSource

        self.bundle = load_bundle(resolve_model(model))
        self.backend = load_backend(self.bundle, backend, precision, threads)
        if config is None:  # the bundle's settings, with the caller's overrides
            config = StreamConfig.for_bundle(self.bundle, **(overrides or {}))
        self.source: FileSource | MicSource
        if simulate is not None:
            self.source = FileSource(simulate, realtime=realtime)
        else:
            self.source = MicSource(device)
        self.engine = StreamEngine(self.bundle, self.backend, self.source.rate, config)
        self.callbacks: list[Callable[[Event | LabelChange], None]] = []
        self.summary: dict[str, Any] | None = None

    def on(self, callback: Callable[[Event | LabelChange], None]) -> None:
        self.callbacks.append(callback)

    def run(self, duration_s: float | None = None) -> dict[str, Any]:
        """Run to the end of the input (or `duration_s`), calling the callbacks."""
        chunks = self.source.chunks()
        if duration_s:
            chunks = limit_seconds(chunks, duration_s, self.source.rate)
        try:
            self.summary = run(chunks, self.engine, self._emit, lambda: self.source.overflows)
        finally:
            self.close()
        self.summary["dropped_frames"] = getattr(self.source, "dropped_frames", 0)
        return self.summary

    def __iter__(self) -> Iterator[Event | LabelChange]:
        """Run the stream, yielding each decision (callbacks are called too)."""
        try:
            for chunk in self.source.chunks():
                for decision in self.engine.feed(chunk):
                    self._emit(decision)
                    yield decision
            for decision in self.engine.flush():
                self._emit(decision)
                yield decision
        finally:
            self.close()

    def _emit(self, decision: Event | LabelChange) -> None:
        for callback in self.callbacks:
            callback(decision)

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()

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
