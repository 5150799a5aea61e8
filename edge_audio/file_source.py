"""A recording replayed as a Source: the chunk size a microphone delivers, so a
simulation (`listen --simulate`) runs exactly the device path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .audio import WavInfo, iter_wav, load_audio, wav_info
from .errors import AudioFileError
from .source import CHUNK_FRAMES


class FileSource:
    """A recording replayed in microphone-sized chunks. WAV is read from disk chunk
    by chunk (memory stays flat however long the file); other formats are decoded
    whole through soundfile."""

    def __init__(
        self, path: str | Path, chunk_frames: int = CHUNK_FRAMES, realtime: bool = False
    ) -> None:
        self.path = Path(path)
        self.chunk_frames = chunk_frames
        self.realtime = realtime
        self.overflows = 0  # a file never overflows; the fields mirror a microphone's
        self.dropped_frames = 0
        self.wav: WavInfo | None = None
        self.samples: np.ndarray | None = None
        if _is_riff(self.path):
            self.wav = wav_info(self.path)
            if self.wav.n_frames == 0:
                raise AudioFileError(self.path, "no samples (zero-length audio)")
            self.rate, self.n_frames = self.wav.sample_rate, self.wav.n_frames
        else:
            self.samples, self.rate = load_audio(self.path, None, allow_silent=True)
            self.n_frames = self.samples.size

    @property
    def duration(self) -> float:
        return self.n_frames / self.rate

    def describe(self) -> str:
        pace = "real time" if self.realtime else "as fast as it can"
        return f"replaying {self.path} ({self.duration:.1f} s at {self.rate} Hz, {pace})"

    def close(self) -> None:
        """Nothing to release: WAV chunks are read with the file opened per read."""

    def _raw_chunks(self) -> Iterator[np.ndarray]:
        if self.wav is not None:
            yield from iter_wav(self.wav, self.chunk_frames)
        else:
            assert self.samples is not None
            for i in range(0, self.samples.size, self.chunk_frames):
                yield self.samples[i : i + self.chunk_frames]

    def chunks(self) -> Iterator[np.ndarray]:
        start, played = time.monotonic(), 0
        for chunk in self._raw_chunks():
            played += chunk.size
            if self.realtime:  # pace to the wall clock, as a microphone would
                time.sleep(max(0.0, start + played / self.rate - time.monotonic()))
            yield chunk


def _is_riff(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"RIFF"
    except OSError as exc:
        raise AudioFileError(path, f"cannot open: {exc.strerror or exc}") from None
