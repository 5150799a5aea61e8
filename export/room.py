"""Rooms: impulse responses, and reverberation on audio and on log-mel features.

A keyword said across a kitchen reaches the microphone with its reflections: the
word is smeared in time, more in the bass, for a few hundred milliseconds. A
model that only heard close, dry recordings misses it. Impulse responses come
from pyroomacoustics (shoebox rooms: image sources for the early reflections,
ray tracing for the tail) when it is installed, else from a generated
exponential decay, which has the right tail but no early reflections.

Training works on cached features, so reverberation is applied there too: a
room's impulse response becomes a kernel of mel-band power per frame, and a
window's power is convolved with it along time (the convolutive transfer
function approximation, good when the room's tail is longer than an analysis
window). `tests/test_room.py` checks it against reverberating the waveform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from edge_audio.frontend import FrontendConfig, LogMel

ROOMS = 48  # rooms a training run draws, each a mel kernel kept in memory
DECAY_60_DB = np.log(1e3)  # amplitude falls by 60 dB when exp(-t * this / rt60) = 1e-3


@dataclass(frozen=True)
class RoomConfig:
    rt60: tuple[float, float] = (0.15, 0.9)  # seconds, drawn uniformly
    method: str = "auto"  # "pyroomacoustics", "generated" or "auto" (the first one available)

    def __post_init__(self) -> None:
        lo, hi = self.rt60
        if not 0 < lo <= hi <= 3:
            raise ValueError(f"rt60 range must be within (0, 3] s and low <= high, got {self.rt60}")
        if self.method not in ("auto", "pyroomacoustics", "generated"):
            raise ValueError(f"unknown room method {self.method!r}")


def have_pyroomacoustics() -> bool:
    try:
        import pyroomacoustics  # noqa: F401
    except ImportError:
        return False
    return True


def room_method(method: str = "auto") -> str:
    """The impulse-response source `method` resolves to here."""
    if method == "auto":
        return "pyroomacoustics" if have_pyroomacoustics() else "generated"
    return method


def generated_rir(rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A direct path, then Gaussian noise decaying by 60 dB in rt60 seconds,
    starting a few milliseconds later (the first reflection's delay)."""
    n = int(rate * rt60 * 1.2) + 1
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-t * DECAY_60_DB / rt60)
    delay = int(rate * rng.uniform(0.002, 0.01))
    tail[:delay] = 0.0
    # Reverberant energy against the direct sound: a few metres away, they are
    # about equal (the critical distance of a living room is 1-2 m).
    tail *= np.sqrt(rng.uniform(0.3, 3.0) / max(np.sum(tail**2), 1e-12))
    tail[0] = 1.0
    return tail.astype(np.float32)


def simulated_rir(rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A shoebox room of living-room size with this reverberation time, a source
    and a microphone at random places in it."""
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(3, 8), rng.uniform(3, 6), rng.uniform(2.4, 3.5)])
    absorption, _ = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(
        dims.tolist(),
        fs=rate,
        materials=pra.Material(float(min(absorption, 0.99))),
        max_order=3,
        ray_tracing=True,
        air_absorption=True,
    )
    room.set_ray_tracing(receiver_radius=0.5, n_rays=2000, energy_thres=1e-5)
    source = rng.uniform(0.5, dims - 0.5)
    mic = rng.uniform(0.5, dims - 0.5)
    room.add_source(source.tolist())
    room.add_microphone(mic.tolist())
    # Ray tracing draws from pyroomacoustics' own package-wide generators: seed them
    # from ours, or the same seed would give other rooms on every run.
    pra.random.seed(int(rng.integers(2**63)))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    first = int(np.argmax(np.abs(rir) > 0.1 * np.abs(rir).max()))
    rir = rir[first:]  # from the direct sound on: the distance delay carries no information
    return (rir / max(float(np.abs(rir).max()), 1e-12)).astype(np.float32)


def room_rir(rate: int, rt60: float, rng: np.random.Generator, method: str = "auto") -> np.ndarray:
    if room_method(method) == "pyroomacoustics":
        return simulated_rir(rate, rt60, rng)
    return generated_rir(rate, rt60, rng)


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """The audio as heard in the room, as long as the input (the tail past the end
    is cut: a stream goes on), at the same peak level."""
    wet = fftconvolve(audio, rir)[: audio.size]
    peak = float(np.abs(audio).max())
    return (wet * peak / max(float(np.abs(wet).max()), 1e-12)).astype(np.float32)


def db_per_unit(frontend: FrontendConfig) -> float:
    """Decibels per unit of the frontend's features: a pretrained network's input
    is (log + offset) / divisor, and its log may be natural (EfficientAT) or in
    dB. Augmentation works in dB (levels, SNRs, rooms): features times this are
    dB up to a constant, which no step depends on."""
    natural = frontend.log == "ln"
    return frontend.divisor * (10.0 / math.log(10.0) if natural else 1.0)


def band_power(features: np.ndarray, frontend: FrontendConfig) -> np.ndarray:
    """Mel-band power of features, undoing the frontend's scaling and its log."""
    value = features.astype(np.float64) * frontend.divisor - frontend.offset
    return np.exp(value) if frontend.log == "ln" else np.power(10.0, value / 10)


def mel_kernel(rir: np.ndarray, frontend: FrontendConfig) -> np.ndarray:
    """The impulse response as mel-band power per frame [K, mels], each band
    divided by its largest frame: what one frame of sound leaves in the frames
    after it."""
    padded = np.concatenate([rir, np.zeros(frontend.win_length, np.float32)])
    power = band_power(LogMel(frontend)(padded), frontend)
    first = int(np.argmax(power.sum(axis=1)))
    power = power[first:]
    power /= np.maximum(power.max(axis=0, keepdims=True), 1e-30)
    tail = np.flatnonzero(power.max(axis=1) > 1e-4)  # past -40 dB it changes nothing
    return power[: int(tail[-1]) + 1 if tail.size else 1].astype(np.float32)


def reverberate_features(window_db: np.ndarray, kernel: np.ndarray, floor: float) -> np.ndarray:
    """A [frames, mels] window in dB, reverberated by a mel kernel, at the same peak."""
    power = np.power(10.0, window_db.astype(np.float64) / 10)
    wet = fftconvolve(power, kernel.astype(np.float64), axes=0)[: power.shape[0]]
    out = 10 * np.log10(np.maximum(wet, 1e-30))
    out += float(window_db.max()) - float(out.max())
    return np.maximum(out, floor).astype(np.float32)


def kernel_bank(
    frontend: FrontendConfig, config: RoomConfig, count: int, seed: int
) -> list[np.ndarray]:
    """`count` rooms as mel kernels, drawn with their own seed (the same rooms on
    every run with this seed)."""
    rng = np.random.default_rng(seed + 4242)
    rt60s = rng.uniform(*config.rt60, size=count)
    return [
        mel_kernel(room_rir(frontend.sample_rate, float(t), rng, config.method), frontend)
        for t in rt60s
    ]
