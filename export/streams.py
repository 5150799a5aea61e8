"""Test streams in rooms: held-out clips laid end to end, then heard in a room
(reverberation) over real ambience (a negative recording at a given SNR); and
negative streams that hold no class at all. `calibrate` and `robustness` run
them through the device path (threshold.posteriors) and replay the decider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_audio.audio import load_audio
from edge_audio.errors import AudioFileError

from .negatives import part_of
from .room import reverberate, room_rir
from .threshold import Stream, make_streams


@dataclass(frozen=True)
class Condition:
    """How a positive stream is heard: None is 'not at all' (dry, or no ambience)."""

    name: str
    rt60: float | None = None
    snr_db: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "rt60": self.rt60, "snr_db": self.snr_db}


# The rooms `calibrate` sets the operating point on: a detector must work in all three.
CALIBRATION_CONDITIONS = (
    Condition("clean"),
    Condition("reverberant", rt60=0.4),
    Condition("noisy", rt60=0.4, snr_db=10.0),
)


def speech_power(stream: Stream, rate: int) -> float:
    """Mean power of the stream where the truth says a target sounds."""
    parts = [stream.audio[int(s.start * rate) : int(s.end * rate)] for s in stream.truth]
    joined = np.concatenate(parts) if parts else stream.audio
    return float(np.mean(joined.astype(np.float64) ** 2))


def ambience_bed(ambience: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of ambience from a random point, looped if it is shorter."""
    start = int(rng.integers(0, max(1, ambience.size)))
    return np.resize(np.roll(ambience, -start), n).astype(np.float32)


def hear(
    stream: Stream,
    rate: int,
    condition: Condition,
    ambience: np.ndarray | None,
    rng: np.random.Generator,
) -> Stream:
    """The stream as the microphone hears it in `condition`. The truth keeps its
    times: reverberation adds a tail, it does not move onsets."""
    audio = stream.audio
    if condition.rt60:
        audio = reverberate(audio, room_rir(rate, condition.rt60, rng))
    if condition.snr_db is not None:
        if ambience is None or not ambience.size:
            raise ValueError(f"condition {condition.name} needs ambience recordings")
        bed = ambience_bed(ambience, audio.size, rng).astype(np.float64)
        target = speech_power(Stream(audio, stream.truth), rate) / 10 ** (condition.snr_db / 10)
        bed *= np.sqrt(target / max(float(np.mean(bed**2)), 1e-20))
        audio = audio + bed
    peak = float(np.abs(audio).max())
    if peak > 1:  # as a sound card would: no clipping, just less gain
        audio = audio / peak
    return Stream(np.asarray(audio, np.float32), stream.truth)


def positive_streams(
    clips: list[tuple[np.ndarray, str]],
    rate: int,
    condition: Condition,
    ambience: np.ndarray | None,
    seed: int,
    per_stream: int = 25,
) -> list[Stream]:
    """The same clip order in every condition (one seed), heard differently."""
    base = make_streams(clips, rate, per_stream, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 17)
    return [hear(s, rate, condition, ambience, rng) for s in base]


def negative_files(
    folders: Sequence[Path], part: str | None, seed: int, find: bool = True
) -> list[Path]:
    """The files of one part of the negatives (None: every file): the split of
    training, reproduced from its folders and seed."""
    from .negatives import find_audio

    files = find_audio(folders) if find else list(folders)
    return [f for f in files if part is None or part_of(f, seed) == part]


def load_negative_audio(
    files: Sequence[Path], rate: int, minutes: float = 10.0
) -> tuple[list[np.ndarray], list[Path]]:
    """Negative recordings at the model's rate, joined end to end into streams of
    about `minutes` each (a microphone hears one continuous stream, not clips),
    and the files that could not be read."""
    streams: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    length, bad = 0, []
    for path in files:
        try:
            audio = load_audio(path, rate)[0]
        except AudioFileError:
            bad.append(path)
            continue
        pending.append(audio)
        length += audio.size
        if length >= minutes * 60 * rate:
            streams.append(np.concatenate(pending))
            pending, length = [], 0
    if pending:
        streams.append(np.concatenate(pending))
    return streams, bad
