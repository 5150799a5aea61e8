"""Augmentation on batches of log-mel windows [B, frames, mels] in dB.

Everything works on features, so the cached features are reused every epoch.
Noise is added in the power domain (the expected power of signal + noise), gain
is a dB offset, reverberation convolves band power with a room's kernel
(export/room.py), and speed and vocal-tract-length perturbation are resamplings of
the time and mel axes. Every step is switchable and draws from one seeded rng.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edge_audio.windows import FLOOR_DB

from .room import reverberate_features

REVERB_SHARE = 0.5  # the share of windows heard in a room when reverberation is on


@dataclass(frozen=True)
class AugmentConfig:
    shift: bool = True  # random time shift (applied while cutting windows)
    gain_db: float = 6.0  # random gain in [-gain_db, +gain_db]
    noise: bool = True
    snr_db: tuple[float, float] = (5.0, 30.0)
    noise_prob: float = 0.8
    speed: float = 0.15  # time stretch by a factor in [1 - speed, 1 + speed]
    vtlp: float = 0.1  # mel-axis warp in [1 - vtlp, 1 + vtlp]
    eq_db: float = 10.0  # random spectral tilt across the mel bands, up to +-eq_db
    lowpass_prob: float = 0.3  # chance of a roll-off above a random band (weak consonants)
    time_masks: int = 2
    time_mask_frames: int = 10
    freq_masks: int = 2
    freq_mask_bands: int = 5
    mixup: float = 0.0  # Beta(alpha, alpha); 0 turns mixup off
    # Reverberation: the chance a window is heard in one of the run's rooms
    # (export/room.py), and their reverberation times in seconds. Off unless asked
    # for (train --reverb, or --negatives: a detector meant for real rooms), so
    # the recipes of the models trained before it still reproduce them.
    reverb_prob: float = 0.0
    rt60: tuple[float, float] = (0.15, 0.9)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def off(cls) -> AugmentConfig:
        return cls(
            shift=False,
            gain_db=0.0,
            noise=False,
            speed=0.0,
            vtlp=0.0,
            eq_db=0.0,
            lowpass_prob=0.0,
            time_masks=0,
            freq_masks=0,
            mixup=0.0,
        )


def _resample_axis(x: np.ndarray, factor: float, axis: int) -> np.ndarray:
    """Linear interpolation along `axis`: output[i] = input[i * factor], edges held."""
    n = x.shape[axis]
    pos = np.clip(np.arange(n) * factor, 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = n
    w = w.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w


def add_noise_db(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix noise features into x at a window-level SNR, in the power domain."""
    px, pn = np.power(10.0, x / 10), np.power(10.0, noise / 10)
    scale = px.mean() / max(pn.mean(), 1e-30) / 10 ** (snr_db / 10)
    return 10 * np.log10(np.maximum(px + scale * pn, 1e-10))


def channel_curve(mels: int, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """A random microphone/channel response in dB per mel band: a tilt and a
    gentle bump, sometimes a roll-off above a random band. Another microphone,
    or a speaker whose consonants are weak, looks like this to the model."""
    position = np.linspace(-0.5, 0.5, mels)
    curve = rng.uniform(-config.eq_db, config.eq_db) * position
    curve += (
        rng.uniform(-config.eq_db, config.eq_db)
        / 2
        * np.cos(np.pi * (position * rng.uniform(1, 3) + rng.uniform(0, 2)))
    )
    if rng.random() < config.lowpass_prob:
        cutoff = rng.uniform(0.5, 0.9) * mels
        slope = rng.uniform(1.0, 4.0)  # dB per band
        curve -= np.maximum(np.arange(mels) - cutoff, 0) * slope
    return curve.astype(np.float32)


def augment_batch(
    batch: np.ndarray,
    config: AugmentConfig,
    rng: np.random.Generator,
    noise_bank: list[np.ndarray] | None = None,
    rooms: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Augment a batch of windows in place-safe fashion; returns a new array.
    `rooms` are mel kernels (export/room.py): without them there is no reverberation."""
    out = batch.copy()
    frames, mels = out.shape[1:]
    for i in range(out.shape[0]):
        x = out[i]
        if config.speed:
            x = _resample_axis(x, rng.uniform(1 - config.speed, 1 + config.speed), 0)
        if config.vtlp:
            x = _resample_axis(x, rng.uniform(1 - config.vtlp, 1 + config.vtlp), 1)
        if rooms and config.reverb_prob and rng.random() < config.reverb_prob:
            x = reverberate_features(x, rooms[int(rng.integers(len(rooms)))], FLOOR_DB)
        if config.eq_db or config.lowpass_prob:
            x = np.maximum(x + channel_curve(mels, config, rng)[None, :], FLOOR_DB)
        if config.gain_db:
            x = np.maximum(x + rng.uniform(-config.gain_db, config.gain_db), FLOOR_DB)
        if config.noise and noise_bank and rng.random() < config.noise_prob:
            noise = noise_bank[int(rng.integers(len(noise_bank)))]
            start = int(rng.integers(0, max(1, noise.shape[0] - frames + 1)))
            segment = noise[start : start + frames]
            if segment.shape[0] < frames:
                segment = np.resize(segment, (frames, mels))
            x = add_noise_db(x, segment, rng.uniform(*config.snr_db))
        floor = float(x.min())
        for _ in range(config.time_masks):
            width = int(rng.integers(0, config.time_mask_frames + 1))
            start = int(rng.integers(0, max(1, frames - width)))
            x[start : start + width] = floor
        for _ in range(config.freq_masks):
            width = int(rng.integers(0, config.freq_mask_bands + 1))
            start = int(rng.integers(0, max(1, mels - width)))
            x[:, start : start + width] = floor
        out[i] = x
    return out


def mixup(
    batch: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mix pairs of windows in the power domain; targets are one-hot/soft [B, C]."""
    lam = rng.beta(alpha, alpha, size=(batch.shape[0], 1)).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)  # the first window stays dominant
    perm = rng.permutation(batch.shape[0])
    power = lam[:, :, None] * np.power(10.0, batch / 10) + (1 - lam[:, :, None]) * np.power(
        10.0, batch[perm] / 10
    )
    mixed = 10 * np.log10(np.maximum(power, 1e-10)).astype(np.float32)
    return mixed, lam * targets + (1 - lam) * targets[perm]
