"""Audio sources for the stream: chunks of float32 samples at the source's own
rate. A file is replayed in the chunk size a microphone delivers, so the
simulation runs exactly the device path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .audio import load_audio

CHUNK_FRAMES = 1024  # what a USB microphone's driver typically hands over per read


class FileSource:
    def __init__(
        self, path: str | Path, chunk_frames: int = CHUNK_FRAMES, realtime: bool = False
    ) -> None:
        self.path = Path(path)
        self.samples, self.rate = load_audio(self.path, None, allow_silent=True)
        self.chunk_frames = chunk_frames
        self.realtime = realtime
        self.overflows = 0  # a file never overflows; the field mirrors a microphone's

    @property
    def duration(self) -> float:
        return self.samples.size / self.rate

    def chunks(self) -> Iterator[np.ndarray]:
        start = time.monotonic()
        for i in range(0, self.samples.size, self.chunk_frames):
            if self.realtime:  # pace to the wall clock, as a microphone would
                due = start + (i + self.chunk_frames) / self.rate
                time.sleep(max(0.0, due - time.monotonic()))
            yield self.samples[i : i + self.chunk_frames]
