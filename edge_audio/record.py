"""Record training material with the microphone that will run the model.

A model trained on a desktop's clips and run on a board's USB microphone hears
another channel; recording clips and room negatives through the board's own
capture path (the same `Source` as `edge-audio listen`) is the usual fix. Files
are written at the device's own rate (training resamples, as listening does)
and named `LABEL/SESSION_NNN.wav`, so `--groups '{label}/{group}_*.wav'` keeps
one session on one side of every split.

    edge-audio record --out my_sounds --label knock --clips 20 --seconds 2
    edge-audio record --out my_sounds --minutes 30          # room negatives
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import write_wav
from .datasets import BACKGROUND_LABEL
from .errors import ConfigError
from .source import Source

__all__ = ["BACKGROUND_LABEL", "RecordPlan", "SampleReader", "default_session", "record"]
MINUTE_FILE_S = 60.0  # long recordings are cut into files of a minute each


@dataclass(frozen=True)
class RecordPlan:
    out: Path
    label: str
    session: str  # the group every file of this recording belongs to
    files: int
    seconds: float  # per file
    gap_s: float = 0.0  # skipped between files (time to get ready for the next clip)

    def __post_init__(self) -> None:
        if self.files < 1 or self.seconds <= 0 or self.gap_s < 0:
            raise ConfigError("record: need at least one file, a positive length, a gap >= 0")
        for name, value in (("label", self.label), ("session", self.session)):
            if not value or "/" in value or value.startswith("."):
                raise ConfigError(f"record: {name} {value!r} cannot be a folder or file name")
        if "_" in self.session:
            raise ConfigError(
                f"record: the session name {self.session!r} may not contain '_': it ends "
                "the group in the file names"
            )

    @classmethod
    def clips(cls, out: Path, label: str, count: int, seconds: float, session: str) -> RecordPlan:
        return cls(out, label, session, count, seconds, gap_s=1.0)

    @classmethod
    def minutes(cls, out: Path, label: str, minutes: float, session: str) -> RecordPlan:
        total = minutes * 60.0
        files = max(1, int(np.ceil(total / MINUTE_FILE_S)))
        return cls(out, label, session, files, total / files)

    def path(self, n: int) -> Path:
        return self.out / self.label / f"{self.session}_{n:03d}.wav"


def default_session() -> str:
    return time.strftime("rec%Y%m%d-%H%M%S")


class SampleReader:
    """Exact numbers of samples out of a stream of chunks of any size."""

    def __init__(self, chunks: Iterator[np.ndarray]) -> None:
        self.chunks = chunks
        self.left = np.zeros(0, np.float32)  # the unread end of the last chunk

    def take(self, n: int) -> np.ndarray:
        """The next `n` samples; fewer only when the input ends."""
        parts, have = [self.left[:n]], min(n, self.left.size)
        self.left = self.left[have:]
        while have < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            chunk = np.asarray(chunk, dtype=np.float32)
            parts.append(chunk[: n - have])
            self.left = chunk[n - have :]
            have += min(chunk.size, n - have)
        return np.concatenate(parts)


def record(
    source: Source, plan: RecordPlan, say: Callable[[str], None] = lambda line: None
) -> list[Path]:
    """Write `plan.files` files from `source`; returns their paths. Files already
    written stay written if the device is lost (DeviceLost propagates)."""
    folder = plan.path(0).parent
    existing = sorted(folder.glob(f"{plan.session}_*.wav")) if folder.is_dir() else []
    if existing:
        raise ConfigError(
            f"{folder} already holds session {plan.session!r} ({existing[0].name}): "
            "give another --session"
        )
    folder.mkdir(parents=True, exist_ok=True)
    per_file = round(plan.seconds * source.rate)
    gap = round(plan.gap_s * source.rate)
    reader = SampleReader(source.chunks())
    written: list[Path] = []
    for n in range(plan.files):
        if n and gap:
            say(f"  next in {plan.gap_s:g} s ...")
            reader.take(gap)
        say(f"recording {n + 1}/{plan.files}: {plan.seconds:g} s")
        samples = reader.take(per_file)
        if samples.size:
            write_wav(plan.path(n), samples, source.rate)
            written.append(plan.path(n))
        if samples.size < per_file:  # the input ended (a replayed file)
            break
    return written
