"""Datasets to model windows: cached log-mel features, group-aware splits, the
background class, and batches of fixed-size windows.

Features come from the device frontend (edge_audio.frontend), computed once per
clip and cached on disk under a hash of the frontend config and the file's bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_audio.audio import load_audio
from edge_audio.datasets import BACKGROUND_LABEL, DatasetIndex, Record, Skipped
from edge_audio.errors import AudioFileError, DatasetError
from edge_audio.frontend import FrontendConfig, LogMel
from edge_audio.windows import WindowPlan

BACKGROUND = BACKGROUND_LABEL


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edge-audio" / "features"


class FeatureCache:
    """log-mel [frames, mels] per clip, stored as float16 .npy files."""

    def __init__(self, config: FrontendConfig, root: Path | None = None) -> None:
        self.config = config
        digest = hashlib.sha256(config.to_json().encode()).hexdigest()[:16]
        self.dir = (root or default_cache_dir()) / digest
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "frontend.json").write_text(config.to_json())
        self.logmel = LogMel(config)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def features(self, path: Path) -> np.ndarray:
        """Features of an audio file; raises AudioFileError for a bad file."""
        try:
            key = hashlib.sha1(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise AudioFileError(path, f"cannot read: {exc.strerror}") from None
        return self._get(key, lambda: load_audio(path, self.config.sample_rate)[0])

    def features_of(self, samples: np.ndarray, tag: str) -> np.ndarray:
        """Features of generated audio (synthetic speech, noise), keyed by its bytes."""
        key = hashlib.sha1(tag.encode() + np.ascontiguousarray(samples).tobytes()).hexdigest()
        return self._get(key, lambda: samples)

    def _get(self, key: str, samples_fn) -> np.ndarray:
        target = self._path(key)
        if target.exists():
            try:
                self.hits += 1
                return np.load(target).astype(np.float32)
            except (OSError, ValueError):
                target.unlink(missing_ok=True)  # a torn write: compute again
        self.misses += 1
        feats = self.logmel(samples_fn())
        target.parent.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as tmp:
            np.save(tmp, feats.astype(np.float16))
        os.replace(tmp.name, target)  # atomic: a crash never leaves half a file
        return feats


@dataclass
class Clip:
    features: np.ndarray  # [frames, mels] in dB
    label: str
    group: str
    source: str  # file path or a synthetic tag
    synthetic: bool = False


@dataclass
class ClipSet:
    clips: list[Clip]
    labels: list[str]
    skipped: list[Skipped] = field(default_factory=list)

    def label_ids(self) -> np.ndarray:
        index = {label: i for i, label in enumerate(self.labels)}
        return np.array([index[c.label] for c in self.clips], dtype=np.int64)

    def subset(self, keep: Iterable[int]) -> ClipSet:
        return ClipSet([self.clips[i] for i in keep], self.labels, self.skipped)

    @property
    def groups(self) -> list[str]:
        return sorted({c.group for c in self.clips})


def load_clips(index: DatasetIndex, cache: FeatureCache, progress: bool = True) -> ClipSet:
    """Features for every record; unreadable clips join the skipped list."""
    skipped = list(index.skipped)
    clips = []
    records: Sequence[Record] = index.records
    iterator: Iterable[Record] = records
    if progress:
        from tqdm import tqdm

        iterator = tqdm(records, desc="features", unit="clip", leave=False, disable=None)
    for record in iterator:
        try:
            feats = cache.features(record.path)
        except AudioFileError as exc:
            skipped.append(Skipped(record.path, exc.reason))
            continue
        if feats.shape[0] == 0:
            skipped.append(Skipped(record.path, "shorter than one analysis window"))
            continue
        clips.append(Clip(feats, record.label, record.group, str(record.path)))
    labels = sorted({c.label for c in clips})
    empty = sorted(set(index.labels) - set(labels))
    if empty:
        raise DatasetError(f"class(es) {empty} have no readable clips")
    if not clips:
        raise DatasetError(f"{index.root}: no readable clips")
    return ClipSet(clips, labels, skipped)


# --- splits -------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    train: list[int]
    validation: list[int]
    test: list[int]
    test_groups: list[str]
    validation_groups: list[str]


def group_split(
    clips: ClipSet,
    test_groups: Sequence[str],
    validation_groups: Sequence[str] | None = None,
    seed: int = 0,
) -> Split:
    """Split by group: no group is ever on two sides. Synthetic clips are
    training-only. Without `validation_groups`, about a sixth of the remaining real
    groups (at least one) is drawn for validation."""
    real_groups = sorted({c.group for c in clips.clips if not c.synthetic})
    unknown = sorted(set(test_groups) - set(real_groups))
    if unknown:
        raise DatasetError(f"held-out group(s) {unknown} not in the data; groups: {real_groups}")
    rest = [g for g in real_groups if g not in test_groups]
    if validation_groups is None:
        rng = np.random.default_rng(seed)
        n_val = max(1, round(len(rest) / 6))
        validation_groups = sorted(rng.choice(rest, size=n_val, replace=False).tolist())
    overlap = set(validation_groups) & set(test_groups)
    if overlap:
        raise DatasetError(f"group(s) {sorted(overlap)} cannot be both validation and test")
    if len(rest) <= len(validation_groups):
        raise DatasetError(
            f"{len(real_groups)} groups are too few to hold out {list(test_groups)} for test "
            f"and {list(validation_groups)} for validation and still train"
        )
    train, val, test = [], [], []
    for i, clip in enumerate(clips.clips):
        if clip.group in test_groups and not clip.synthetic:
            test.append(i)
        elif clip.group in validation_groups and not clip.synthetic:
            val.append(i)
        else:
            train.append(i)
    return Split(train, val, test, list(test_groups), list(validation_groups))


# --- windows ------------------------------------------------------------------


def index_windows(clips: ClipSet, members: Sequence[int], plan: WindowPlan) -> np.ndarray:
    """[n, 2] array of (clip index, start frame) for every window of the members
    that holds sound: a window of digital silence would reach the network at full
    scale (level normalisation) carrying the clip's label, so it is left out. A
    clip that is silent throughout keeps its first window."""
    rows = [(i, start) for i in members for start in plan.sounding(clips.clips[i].features)[0]]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


# int8 calibration windows by default: `export quantize --calibration` and the
# simulated int8 stages of `train --int8-aware` (one figure, so they calibrate alike).
CALIBRATION_WINDOWS = 256


def calibration_windows(
    clips: ClipSet, members: Sequence[int], plan: WindowPlan, size: int, seed: int
) -> np.ndarray:
    """About `size` sounding windows of `members`, spread over every class, as
    `export quantize` calibrates int8 on (and `train --int8-aware` simulates it:
    one choice, so the two calibrate alike)."""
    rng = np.random.default_rng(seed)
    label_index = {label: i for i, label in enumerate(clips.labels)}
    rows = index_windows(clips, sorted(members), plan)
    by_label: dict[int, list[int]] = {}
    for r, (ci, _) in enumerate(rows):
        by_label.setdefault(label_index[clips.clips[ci].label], []).append(r)
    per_class = max(1, -(-size // len(by_label)))
    picks = [r for rows_of in by_label.values() for r in rng.permutation(rows_of)[:per_class]]
    return make_batch(clips, rows[np.sort(picks)], plan)


def make_batch(
    clips: ClipSet,
    windows: np.ndarray,
    plan: WindowPlan,
    rng: np.random.Generator | None = None,
    max_shift: int = 0,
) -> np.ndarray:
    """Windows [B, frames, mels]. With an rng, each window is shifted by up to
    `max_shift` frames (keywords move within the window; segments start later).
    A segment window that already holds the whole clip cannot start later, so it
    is rotated in time instead: the sound moves, as it would in a stream."""
    out = np.empty((len(windows), plan.frames, clips.clips[0].features.shape[1]), np.float32)
    for row, (ci, start) in enumerate(windows):
        feats = clips.clips[ci].features
        start = plan.start_for(feats, int(start))  # a long keyword clip: centre on the word
        if rng is not None and max_shift:
            start = int(start) + int(rng.integers(-max_shift, max_shift + 1))
            if plan.mode == "keyword":  # keep the word inside the window
                lo = min(0, feats.shape[0] - plan.frames)
                start = int(np.clip(start, lo, max(0, feats.shape[0] - plan.frames)))
            elif feats.shape[0] <= plan.frames:
                out[row] = np.roll(
                    plan.cut(feats, 0),
                    int(rng.integers(-max_shift, max_shift + 1)),
                    0,
                )
                continue
            else:
                start = int(np.clip(start, 0, max(0, feats.shape[0] - plan.frames)))
        out[row] = plan.cut(feats, int(start))
    return out


def mean_per_clip(window_probs: np.ndarray, clip_of_window: np.ndarray, n_clips: int) -> np.ndarray:
    """A clip's score is the mean of its windows' probabilities: the one place
    this rule lives in the toolchain (edge_audio.evaluate does it on the device)."""
    out = np.zeros((n_clips, window_probs.shape[1]))
    np.add.at(out, clip_of_window, window_probs)
    counts = np.bincount(clip_of_window, minlength=n_clips)
    return out / np.maximum(counts, 1)[:, None]


# --- background and noise -------------------------------------------------------


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white, pink or brown noise."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.arange(spectrum.size), 1.0)
    shapes: dict[str, float | np.ndarray] = {"white": 1.0, "pink": np.sqrt(f), "brown": f}
    spectrum /= shapes[colour]
    x = np.fft.irfft(spectrum, n)
    return (x / max(np.sqrt(np.mean(x**2)), 1e-12)).astype(np.float32)


def noise_samples(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of generated background: coloured noise at a random level,
    sometimes with mains hum."""
    x = coloured_noise(n, str(rng.choice(["white", "pink", "brown"])), rng)
    x *= 10 ** (rng.uniform(-70, -20) / 20)
    if rng.random() < 0.3:
        t = np.arange(n) / rate
        x += 10 ** (rng.uniform(-60, -30) / 20) * np.sin(2 * np.pi * rng.choice([50, 60]) * t)
    return x.astype(np.float32)


def noise_bank(
    cache: FeatureCache,
    rng: np.random.Generator,
    count: int,
    seconds: float,
    noise_files: Sequence[Path] = (),
) -> list[np.ndarray]:
    """Features of background noise for augmentation: the user's files when
    given, generated coloured noise otherwise (and to make up the count)."""
    bank = []
    for path in noise_files:
        try:
            bank.append(cache.features(path))
        except AudioFileError:
            continue
    while len(bank) < count:
        samples = noise_samples(
            round(seconds * cache.config.sample_rate), cache.config.sample_rate, rng
        )
        bank.append(cache.features_of(samples, "noise"))
    return bank


def background_clips(
    cache: FeatureCache,
    count: int,
    seconds: float,
    seed: int,
    group: str,
    extra_audio: Sequence[np.ndarray] = (),
) -> list[Clip]:
    """Clips of the background class: generated noise, near-silence, and any
    extra audio given (non-target speech), all labelled BACKGROUND."""
    rng = np.random.default_rng(seed)
    clips = []
    for i, samples in enumerate(extra_audio):
        level = 10 ** (rng.uniform(-30, -6) / 20) / max(float(np.abs(samples).max()), 1e-9)
        floor = noise_samples(samples.size, cache.config.sample_rate, rng)
        mixed = samples * level + floor * 0.3
        clips.append(
            Clip(
                cache.features_of(mixed.astype(np.float32), "bg-speech"),
                BACKGROUND,
                group,
                f"{group}:speech{i}",
                synthetic=False,
            )
        )
    while len(clips) < count:
        samples = noise_samples(
            round(seconds * cache.config.sample_rate), cache.config.sample_rate, rng
        )
        clips.append(
            Clip(
                cache.features_of(samples, "bg-noise"),
                BACKGROUND,
                group,
                f"{group}:noise{len(clips)}",
                synthetic=False,
            )
        )
    return clips
