"""From a clip's log-mel frames to fixed model windows: one implementation for
training, evaluation and the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frontend import FrontendConfig

FLOOR_DB = -100.0  # what a window holds where the audio does not reach
# A window whose loudest cell is this close to the floor holds no sound at all
# (digital silence, or padding): normalise() would blow it up to full scale.
SILENCE_MARGIN_DB = 1.0


@dataclass(frozen=True)
class WindowPlan:
    """How clips become fixed windows of `frames` frames.

    keyword: one window per clip, the clip centred (on its energy when longer
    than the window); segments: a clip is cut into windows every `hop` frames
    (the last one aligned to the end), and a clip's prediction is the mean over
    its windows that hold sound (see `is_silent`)."""

    frames: int
    mode: str  # "keyword" or "segments"
    hop: int
    # The features' own levels (FrontendConfig.floor_db and .silence_level): what
    # padding holds, and the loudest a window may be and still count as silence.
    floor: float = FLOOR_DB
    silence: float = FLOOR_DB + SILENCE_MARGIN_DB

    @classmethod
    def for_frontend(cls, frames: int, mode: str, hop: int, frontend: FrontendConfig) -> WindowPlan:
        return cls(frames, mode, hop, frontend.floor_db, frontend.silence_level)

    def __post_init__(self) -> None:
        if self.mode not in ("keyword", "segments"):
            raise ValueError(f"window mode must be 'keyword' or 'segments', got {self.mode!r}")
        if self.frames <= 0 or self.hop <= 0:
            raise ValueError("window frames and hop must be positive")

    def windows_of(self, clip_frames: int) -> list[int]:
        """Start frames of a clip's windows (negative: the clip is shorter)."""
        if self.mode == "keyword" or clip_frames <= self.frames:
            return [(clip_frames - self.frames) // 2]
        last = clip_frames - self.frames
        starts = list(range(0, last + 1, self.hop))
        if last - starts[-1] >= self.hop / 2:
            starts.append(last)  # the tail is worth a window of its own
        elif len(starts) > 1:
            # A tail shorter than half a hop: slide the last window to the end
            # rather than add one that nearly repeats it (the end counted twice).
            starts[-1] = last
        else:
            starts = [last // 2]  # one window: centred, a few frames short each side
        return starts

    def start_for(self, features: np.ndarray, start: int) -> int:
        """A keyword clip longer than the window is centred on its energy."""
        if self.mode == "keyword" and features.shape[0] > self.frames:
            start = energy_centre(features) - self.frames // 2
            return int(np.clip(start, 0, features.shape[0] - self.frames))
        return start

    def sounding(self, features: np.ndarray) -> tuple[list[int], np.ndarray]:
        """The clip's windows that hold sound: their starts (as `windows_of` gives
        them) and the windows [n, frames, mels]. Training and evaluation both skip
        silent windows through here; a clip silent throughout keeps its first."""
        starts = self.windows_of(features.shape[0])
        windows = np.stack(
            [
                cut_window(features, self.start_for(features, s), self.frames, self.floor)
                for s in starts
            ]
        )
        sound = ~is_silent(windows, self.silence)
        if not sound.any():
            return starts[:1], windows[:1]
        return [s for s, keep in zip(starts, sound, strict=True) if keep], windows[sound]

    def clip_windows(self, features: np.ndarray) -> np.ndarray:
        """The windows of one clip that hold sound [n, frames, mels], as evaluation
        scores it."""
        return self.sounding(features)[1]

    def cut(self, features: np.ndarray, start: int) -> np.ndarray:
        return cut_window(features, start, self.frames, self.floor)


def is_silent(windows: np.ndarray, silence: float = FLOOR_DB + SILENCE_MARGIN_DB) -> np.ndarray:
    """True for each window [.., frames, mels] with no cell above `silence`: digital
    silence, which level normalisation would turn into the loudest possible input."""
    x = np.asarray(windows)
    return np.asarray(x.max(axis=(-2, -1)) <= silence)


def cut_window(
    features: np.ndarray, start: int, frames: int, floor: float = FLOOR_DB
) -> np.ndarray:
    """features[start:start+frames], padded with the floor where it runs off the clip."""
    out = np.full((frames, features.shape[1]), floor, dtype=np.float32)
    lo, hi = max(start, 0), min(start + frames, features.shape[0])
    if hi > lo:
        out[lo - start : hi - start] = features[lo:hi]
    return out


def energy_centre(features: np.ndarray) -> int:
    """Frame index of the energy centroid: where a keyword sits inside its clip."""
    power = np.power(10.0, features.astype(np.float64) / 10).sum(axis=1)
    return round(float(np.sum(np.arange(power.size) * power) / max(power.sum(), 1e-30)))


NORMALISATIONS = ("peak", "none")  # none: the frontend already gives the network's units


def normalise(windows: np.ndarray, dynamic_range: float | None, kind: str = "peak") -> np.ndarray:
    """Per-window level normalisation, the model's first step: dB relative to the
    window's loudest cell, clamped `dynamic_range` dB below it, scaled to [-1, 1].

    It makes a model blind to gain and to how deep the silence is (a -100 dB pad
    and a -60 dB room look the same), which matters when training clips are
    trimmed and padded but the device hears a continuous noise floor. With
    dynamic_range None it is a fixed affine map of dB around -50 to about [-1, 1].
    Works on [frames, mels] or [n, frames, mels]."""
    x = np.asarray(windows, dtype=np.float32)
    if kind not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {kind!r}")
    if kind == "none":  # a pretrained network's input (FrontendConfig offset and divisor)
        return x
    if dynamic_range is None:
        return (x + np.float32(50.0)) / np.float32(50.0)
    peak = x.max(axis=(-2, -1), keepdims=True)
    relative = np.maximum(x - peak, np.float32(-dynamic_range))
    return np.asarray(relative / np.float32(dynamic_range / 2) + np.float32(1.0))
