"""Test streams in rooms: held-out clips laid end to end, then heard in a room
(reverberation) over real ambience (a negative recording at a given SNR); and
negative streams that hold no class at all. `calibrate` and `robustness` run
them through the device path (threshold.posteriors) and replay the decider.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.audio import load_audio
from edge_audio.bundle import Bundle
from edge_audio.datasets import LAYOUTS
from edge_audio.errors import AudioFileError, ConfigError
from edge_audio.stream import StreamConfig

from .negatives import find_audio, part_of
from .room import reverberate, room_rir
from .threshold import Stream, events_at, held_out_clips, make_streams, posteriors


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


def negative_files(folders: Sequence[Path], part: str | None, seed: int) -> list[Path]:
    """The files of one part of the negatives (None: every file): the split of
    training, reproduced from its folders and seed."""
    return [f for f in find_audio(folders) if part is None or part_of(f, seed) == part]


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


def unheard_negatives(
    trained: Mapping[str, Any] | None, given: Sequence[Path] | None, part: str
) -> tuple[list[Path], str]:
    """Negative recordings a bundle never trained on, and where they came from:
    `part` of the negatives it trained with (`trained`, the manifest's record),
    the same part of `given` folders when it trained on them, or every file of
    `given` folders it never heard."""
    if given:
        folders = {str(Path(f).resolve()) for f in (trained or {}).get("folders", [])}
        if folders & {str(Path(f).resolve()) for f in given}:
            files = negative_files(given, part, int((trained or {}).get("seed", 0)))
            return files, f"the {part} part (never trained on) of " + ", ".join(map(str, given))
        return negative_files(given, None, 0), "every file of " + ", ".join(map(str, given))
    if not trained:
        raise ConfigError(
            "the bundle was trained without --negatives: give --negatives DIR ... "
            "(recordings with none of its classes) to count false alarms on"
        )
    own = [Path(f) for f in trained["folders"]]
    missing = [f for f in own if not f.is_dir()]
    if missing:
        raise ConfigError(
            f"the negatives it trained with are not here ({', '.join(map(str, missing))}): "
            "give --negatives DIR ..."
        )
    files = negative_files(own, part, int(trained.get("seed", 0)))
    return files, f"the {part} part (never trained on) of " + ", ".join(map(str, own))


def add_stream_arguments(p: argparse.ArgumentParser, negatives_default: str) -> None:
    """The options every stream measurement takes: the bundle, its data, negatives."""
    p.add_argument("bundle", type=Path, help="bundle folder or shipped model name")
    p.add_argument("--data", type=Path, required=True, help="the dataset it was trained on")
    p.add_argument("--layout", choices=LAYOUTS, required=True)
    p.add_argument(
        "--negatives",
        type=Path,
        nargs="+",
        metavar="DIR",
        help=f"recordings with none of the classes (default: {negatives_default}; folders "
        "it never trained on are used whole)",
    )
    p.add_argument("--groups", nargs="+", help="held-out groups (default: the manifest's)")


@dataclass
class StreamSources:
    """What a detector's streams are made of: held-out clips, and negative
    recordings it never heard (the negative streams, and the ambience mixed under
    the positive ones)."""

    clips: list[tuple[np.ndarray, str]]
    negative_audio: list[np.ndarray]
    negatives: str  # where they came from, in words
    negative_files: int  # read
    rate: int

    @cached_property  # every room of a grid mixes from it
    def ambience(self) -> np.ndarray:
        return np.concatenate(self.negative_audio)

    @property
    def negative_hours(self) -> float:
        return sum(a.size for a in self.negative_audio) / self.rate / 3600


def stream_sources(
    bundle: Bundle,
    data: Path,
    layout: str,
    groups: list[str],
    given: Sequence[Path] | None,
    part: str,
    max_clips: int | None,
    seed: int,
) -> StreamSources:
    """The bundle's held-out clips (at most `max_clips`, drawn with the seed) and
    the `part` of its negatives (or the `given` folders; see unheard_negatives)."""
    training = bundle.manifest.training
    files, source = unheard_negatives(training.negatives if training else None, given, part)
    if not files:
        raise ConfigError(f"no negative recordings in {source}")
    rate = bundle.frontend.sample_rate
    audio, bad = load_negative_audio(files, rate)
    if not audio:
        raise ConfigError(f"none of the negative recordings could be read ({source})")
    clips = held_out_clips(bundle, data, layout, groups)
    if max_clips:
        keep = np.random.default_rng(seed).permutation(len(clips))[:max_clips]
        clips = [clips[i] for i in sorted(keep)]
    return StreamSources(clips, audio, source, len(files) - len(bad), rate)


def unheard(folder: Path, seed: int) -> list[Path]:
    """The files of `folder` outside the train part of a negatives split (seed)."""
    return [f for f in find_audio([folder]) if part_of(f, seed) != "train"]


def unheard_shared_negatives(bundle: Bundle, data: Path) -> dict[str, list[Path]]:
    """The parts of ../shared/data/negatives a bundle never trained on (its split's
    validation and calibration parts, by speaker where the index names one): talk
    without digit words, and music with everyday noise. A bundle that never
    heard the folder gets the same files, so figures before and after retraining
    on it are measured on the same audio."""
    training = bundle.manifest.training
    seed = int((training.negatives or {}).get("seed", 0)) if training else 0
    root = data / "negatives"
    return {
        "held_out_talk": unheard(root / "talk", seed),
        "held_out_music_and_noise": unheard(root / "music", seed) + unheard(root / "noise", seed),
    }


def unheard_sounds_and_talk(bundle: Bundle, data: Path) -> tuple[list[Path], list[Path]]:
    """The benchmarks' negatives from `data` (../shared/data), as the bundle's own
    split left them out of training: everyday sounds and music (ESC-50, GTZAN
    music), and talk (GTZAN speech)."""
    training = bundle.manifest.training
    seed = int((training.negatives or {}).get("seed", 0)) if training else 0
    sounds = unheard(data / "esc50", seed) + unheard(data / "music_speech" / "music", seed)
    return sounds, unheard(data / "music_speech" / "speech", seed)


def negative_events(
    bundle: Bundle, backend: Any, config: StreamConfig, audio: list[np.ndarray]
) -> tuple[int, float, Counter[str]]:
    """Events the detector fires on negative streams, their hours, and the labels that fire."""
    rate = bundle.frontend.sample_rate
    events = [
        e for a in audio for e in events_at(bundle, posteriors(bundle, backend, a, rate), config)
    ]
    hours = sum(a.size for a in audio) / rate / 3600
    return len(events), hours, Counter(e["label"] for e in events)
