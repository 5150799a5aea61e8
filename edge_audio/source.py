"""What the stream reads from: a Source hands over chunks of float32 mono samples
at its own rate, as a microphone's driver does. Two implement it: a recording
replayed in microphone-sized chunks (file_source.py) and a microphone
(microphone.py); the engine never knows which."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from .errors import EdgeAudioError

CHUNK_FRAMES = 1024  # what a USB microphone's driver typically hands over per read


class DeviceLost(EdgeAudioError):
    """The input device stopped delivering audio (unplugged, server gone)."""


class Source(Protocol):
    rate: int  # samples per second of the chunks
    overflows: int  # chunks the device reported lost or the reader dropped
    dropped_frames: int  # samples in those chunks

    def chunks(self) -> Iterator[np.ndarray]:
        """Chunks of float32 mono samples until the input ends; DeviceLost if it dies."""
        ...

    def describe(self) -> str:
        """One line for the log: what is read, at what rate."""
        ...

    def close(self) -> None: ...
