"""Hard-negative mining: after a fit, the model hears every window of the training
negatives, as the device would slide over them, and the windows it scored
highest (the false alarms it would raise) join the background class, repeated
so they weigh more; then it fits again.

A few thousand background windows sampled evenly from hours of talk rarely hold
the moments that sound like a keyword; mining finds them. Only the negatives'
train part is mined: the validation and calibration parts stay unheard, so the
false alarms counted on them stay honest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.errors import AudioFileError, ConfigError
from edge_audio.windows import WindowPlan, is_silent

from .data import BACKGROUND, Clip, ClipSet, FeatureCache, Split
from .negatives import MINED_GROUP

# The windows scored per call of the model. Measured on dscnn-medium, one thread:
# 3.5 ms a window in batches of 64, 7.8 in batches of 512 (which outgrow the caches).
SCORE_BATCH = 64


@dataclass(frozen=True, kw_only=True)
class MiningSettings:
    """`train --mine-rounds N`: how many rounds, and what each round adds."""

    rounds: int = 0
    windows: int = 256  # the highest-scoring windows added per round
    weight: int = 3  # each mined window joins the training side this many times
    per_file: int = 4  # at most this many from one recording a round (spread, not one loud file)
    stride_s: float = 0.25  # between windows scored, as the device slides them

    def check(self) -> MiningSettings:
        if self.rounds < 0:
            raise ConfigError("--mine-rounds cannot be negative")
        for value, flag in (
            (self.windows, "--mine-windows"),
            (self.weight, "--mine-weight"),
            (self.per_file, "--mine-per-file"),
        ):
            if value < 1:
                raise ConfigError(f"{flag} must be at least 1")
        if self.stride_s <= 0:
            raise ConfigError("the mining stride must be positive")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScoredWindow:
    score: float  # 1 - P(background): how sure the model is that something is there
    path: Path
    start: int  # first frame of the window in the file's features


@dataclass(frozen=True)
class MiningRound:
    """What one round found: the log's line and metrics.json's record."""

    round: int
    windows_scored: int
    above_half: int  # windows that would fire at a 0.5 threshold
    added: int
    top_score: float
    lowest_added: float

    def describe(self) -> str:
        return (
            f"mining round {self.round}: {self.above_half:,} of {self.windows_scored:,} training "
            f"negative windows score above 0.5; the {self.added} highest "
            f"({self.top_score:.3f} to {self.lowest_added:.3f}) join the background"
        )


def sliding_starts(frames: int, plan: WindowPlan, stride: int) -> list[int]:
    """First frames of every window a stream would score (one for a short file)."""
    return list(range(0, max(1, frames - plan.frames + 1), stride))


def score_files(
    files: Sequence[Path],
    cache: FeatureCache,
    plan: WindowPlan,
    stride: int,
    probabilities: Callable[[np.ndarray], np.ndarray],
    background: int,
) -> list[ScoredWindow]:
    """Every sounding window of the files, scored in batches; features come from
    the disk cache a file at a time."""
    scored: list[ScoredWindow] = []
    batch: list[np.ndarray] = []
    owners: list[tuple[Path, int]] = []

    def flush() -> None:
        if not batch:
            return
        probs = probabilities(np.stack(batch))
        for (path, start), p in zip(owners, probs, strict=True):
            scored.append(ScoredWindow(float(1.0 - p[background]), path, start))
        batch.clear()
        owners.clear()

    for path in files:
        try:
            features = cache.features(path)
        except AudioFileError:
            continue  # listed as skipped when the negatives were read
        starts = sliding_starts(features.shape[0], plan, stride)
        windows = np.stack([plan.cut(features, s) for s in starts])
        for start, window, silent in zip(
            starts, windows, is_silent(windows, plan.silence), strict=True
        ):
            if silent:
                continue  # the device never raises on digital silence either
            batch.append(window)
            owners.append((path, start))
            if len(batch) >= SCORE_BATCH:
                flush()
    flush()
    return scored


def hardest(
    scored: Sequence[ScoredWindow], count: int, per_file: int, frames: int
) -> list[ScoredWindow]:
    """The `count` highest-scoring windows, at most `per_file` from one file, and
    none overlapping another chosen window of its file by half its `frames` or
    more (the next stride of one false alarm is the same false alarm)."""
    chosen: list[ScoredWindow] = []
    taken: dict[Path, list[int]] = {}
    for window in sorted(scored, key=lambda w: (-w.score, str(w.path), w.start)):
        starts = taken.setdefault(window.path, [])
        if len(starts) >= per_file or any(abs(window.start - s) * 2 < frames for s in starts):
            continue
        starts.append(window.start)
        chosen.append(window)
        if len(chosen) == count:
            break
    return chosen


def mine_round(
    number: int,
    model: Any,
    clips: ClipSet,
    split: Split,
    files: Sequence[Path],
    cache: FeatureCache,
    plan: WindowPlan,
    settings: MiningSettings,
    probabilities: Callable[[Any, np.ndarray], np.ndarray],
) -> tuple[ClipSet, Split, MiningRound]:
    """One round: score the files, add the hardest windows (weighted) to the
    training side as background, and say what was found."""
    if BACKGROUND not in clips.labels:
        raise ConfigError("mining needs a background class: train with --negatives")
    hop_s = cache.config.hop_length / cache.config.sample_rate
    stride = max(1, round(settings.stride_s / hop_s))
    scored = score_files(
        files,
        cache,
        plan,
        stride,
        lambda batch: probabilities(model, batch),
        clips.labels.index(BACKGROUND),
    )
    if not scored:
        raise ConfigError("mining found no sounding window in the negatives' train part")
    chosen = hardest(scored, settings.windows, settings.per_file, plan.frames)
    all_clips = list(clips.clips)
    train = list(split.train)
    group = MINED_GROUP  # never drawn away by --negatives-per-epoch
    read: dict[Path, np.ndarray] = {}  # up to per_file windows come from one file
    for window in chosen:
        if window.path not in read:
            read[window.path] = cache.features(window.path)
        clip = Clip(
            plan.cut(read[window.path], window.start),
            BACKGROUND,
            group,
            f"{window.path}@{window.start}#mined{number}",
        )
        all_clips.append(clip)
        train.extend([len(all_clips) - 1] * settings.weight)
    report = MiningRound(
        number,
        len(scored),
        sum(w.score > 0.5 for w in scored),
        len(chosen),
        chosen[0].score if chosen else 0.0,
        chosen[-1].score if chosen else 0.0,
    )
    return ClipSet(all_clips, clips.labels, clips.skipped), replace(split, train=train), report
