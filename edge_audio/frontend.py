"""The log-mel frontend: one implementation for training and the device.

Frames are causal: frame t covers samples [t*hop, t*hop + win_length), windowed
and zero-padded to n_fft. A frame is therefore complete as soon as its last
sample arrives, which is what a streaming device needs (no centring, no look-ahead).
The power spectrum of a zero-padded frame equals that of librosa's centred-window
frame shifted by (n_fft - win_length) // 2 samples, which the parity test uses.

Two families of settings share the code:
- the kit's own models: power in dB (10*log10 with a hard floor), Slaney or HTK
  mels with triangles in Hz, a periodic window;
- a pretrained network's input, reproduced exactly (EfficientAT, see
  export/presets.py): pre-emphasis, a symmetric window, Kaldi-style mels
  (triangles in the mel domain), ln(power + floor), then an affine map
  (x + offset) / divisor. The network heard centred frames; causal frames are the
  same frames on a grid shifted by a fraction of a hop, which it does not notice.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import scipy.fft

from .errors import ConfigError

MEL_SCALES = ("htk", "slaney", "kaldi")  # kaldi: HTK's mel formula, triangles in mel
MEL_NORMS = ("slaney", "none")
WINDOWS = ("hann", "hamming", "hann_symmetric")
LOGS = ("db", "ln")  # db: 10*log10(max(p, floor)); ln: ln(p + floor)


@dataclass(frozen=True)
class FrontendConfig:
    """Everything that decides the features. It travels inside every bundle."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400  # 25 ms at 16 kHz
    hop_length: int = 160  # 10 ms at 16 kHz
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float | None = None  # None: half the sample rate
    mel_scale: str = "slaney"  # "slaney" (linear below 1 kHz, log above) or "htk"
    mel_norm: str = "slaney"  # "slaney": each filter has unit area; "none": unit peak
    window: str = "hann"
    log_floor: float = 1e-10  # power floor before 10*log10: the output never goes below -100 dB
    pre_emphasis: float = 0.0  # y[n] = x[n] - pre_emphasis * x[n-1]; 0: off
    log: str = "db"
    offset: float = 0.0  # output = (log + offset) / divisor
    divisor: float = 1.0

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(f"frontend config: {message}")

        need(
            isinstance(self.sample_rate, int) and self.sample_rate > 0,
            f"sample_rate must be a positive integer, got {self.sample_rate!r}",
        )
        need(
            self.n_fft > 0 and self.win_length > 0 and self.hop_length > 0,
            "n_fft, win_length and hop_length must be positive",
        )
        need(
            self.win_length <= self.n_fft,
            f"win_length {self.win_length} is longer than n_fft {self.n_fft}",
        )
        need(self.n_mels > 0, f"n_mels must be positive, got {self.n_mels}")
        need(
            0 <= self.fmin < self.top_frequency,
            f"need 0 <= fmin < fmax, got fmin={self.fmin}, fmax={self.top_frequency}",
        )
        need(
            self.top_frequency <= self.sample_rate / 2,
            f"fmax {self.fmax} is above the Nyquist frequency {self.sample_rate / 2}",
        )
        need(self.mel_scale in MEL_SCALES, f"mel_scale must be one of {MEL_SCALES}")
        need(self.mel_norm in MEL_NORMS, f"mel_norm must be one of {MEL_NORMS}")
        need(self.window in WINDOWS, f"window must be one of {WINDOWS}")
        need(self.log_floor > 0, f"log_floor must be positive, got {self.log_floor}")
        need(self.log in LOGS, f"log must be one of {LOGS}")
        need(
            0.0 <= self.pre_emphasis < 1.0,
            f"pre_emphasis must be in [0, 1), got {self.pre_emphasis}",
        )
        need(self.divisor > 0, f"divisor must be positive, got {self.divisor}")

    @property
    def top_frequency(self) -> float:
        return float(self.fmax) if self.fmax is not None else self.sample_rate / 2

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def floor_db(self) -> float:
        """The lowest value a feature can take: digital silence (in dB for the
        kit's own features; in the network's units for a pretrained frontend)."""
        return self.feature_of_power(0.0)

    def feature_of_power(self, power: float) -> float:
        """The feature a mel band of this power gives: the log, then the affine map."""
        if self.log == "db":
            value = 10.0 * math.log10(max(power, self.log_floor))
        else:
            value = math.log(power + self.log_floor)
        return (value + self.offset) / self.divisor

    @property
    def silence_level(self) -> float:
        """Features at or below this are silence: 1 dB of power above the floor."""
        return self.feature_of_power(self.log_floor * 10**0.1)

    def n_frames(self, n_samples: int) -> int:
        """How many complete frames `n_samples` samples give."""
        if n_samples < self.win_length:
            return 0
        return 1 + (n_samples - self.win_length) // self.hop_length

    def n_samples(self, n_frames: int) -> int:
        """The fewest samples that give `n_frames` frames."""
        return 0 if n_frames <= 0 else self.win_length + (n_frames - 1) * self.hop_length

    def to_dict(self) -> dict[str, Any]:
        # Keys added for pretrained inputs are written only when they differ from
        # their defaults: every other bundle's manifest (and the feature cache key)
        # stays as it was, and an older runtime still reads it.
        data = asdict(self)
        for key, default in _LATER_KEYS.items():
            if data[key] == default:
                del data[key]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontendConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"frontend config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"frontend config: unknown keys {unknown} (known: {sorted(known)})")
        try:
            return cls(**data)
        except TypeError as exc:  # e.g. a string where a number belongs
            raise ConfigError(f"frontend config: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> FrontendConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"frontend config is not valid JSON: {exc}") from None
        return cls.from_dict(data)


_LATER_KEYS = {"pre_emphasis": 0.0, "log": "db", "offset": 0.0, "divisor": 1.0}


# --- mel scale ---------------------------------------------------------------

_SLANEY_F_SP = 200.0 / 3  # Hz per mel in the linear part
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float, scale: str = "slaney") -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    if scale in ("htk", "kaldi"):  # 1127 ln(1 + f/700) is the same curve
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / _SLANEY_F_SP
    log = _SLANEY_MIN_LOG_MEL + np.log(np.maximum(hz, 1e-10) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(hz >= _SLANEY_MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray | float, scale: str = "slaney") -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    if scale in ("htk", "kaldi"):
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = mel * _SLANEY_F_SP
    log = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mel - _SLANEY_MIN_LOG_MEL))
    return np.where(mel >= _SLANEY_MIN_LOG_MEL, log, linear)


def mel_filterbank(config: FrontendConfig) -> np.ndarray:
    """Triangular filters [n_mels, n_bins], equally spaced on the mel scale."""
    if config.mel_scale == "kaldi":
        return _kaldi_filterbank(config)
    bin_hz = np.linspace(0.0, config.sample_rate / 2, config.n_bins)
    edges_mel = np.linspace(
        hz_to_mel(config.fmin, config.mel_scale),
        hz_to_mel(config.top_frequency, config.mel_scale),
        config.n_mels + 2,
    )
    edges_hz = mel_to_hz(edges_mel, config.mel_scale)
    widths = np.diff(edges_hz)
    distance = edges_hz[:, None] - bin_hz[None, :]
    rising = -distance[:-2] / widths[:-1, None]
    falling = distance[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if config.mel_norm == "slaney":
        weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights


def _kaldi_filterbank(config: FrontendConfig) -> np.ndarray:
    """Kaldi's filters: triangles whose edges are straight lines in the mel domain
    (not in Hz), unit peak, over the bins below Nyquist; the Nyquist bin gets zero."""
    bin_mel = hz_to_mel(np.arange(config.n_fft // 2) * config.sample_rate / config.n_fft, "kaldi")
    edges = np.linspace(
        hz_to_mel(config.fmin, "kaldi"), hz_to_mel(config.top_frequency, "kaldi"), config.n_mels + 2
    )
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bin_mel[None, :] - left) / (centre - left)
    falling = (right - bin_mel[None, :]) / (right - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(weights, ((0, 0), (0, 1)))  # the Nyquist bin


def _window(config: FrontendConfig) -> np.ndarray:
    """The periodic window spectral analysis wants (scipy's get_window(...,
    fftbins=True)), or the symmetric one a pretrained network was trained with,
    in NumPy: scipy.signal costs the device ~75 MB to import."""
    n = config.win_length
    if config.window == "hann_symmetric":
        return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / max(n - 1, 1))
    phase = 2 * np.pi * np.arange(n) / n
    a0 = 0.5 if config.window == "hann" else 0.54
    return a0 - (1 - a0) * np.cos(phase)


# --- batch and streaming log-mel -----------------------------------------------


class LogMel:
    """Batch log-mel: samples -> float32 [frames, n_mels] in dB (10*log10 power)."""

    def __init__(self, config: FrontendConfig | None = None) -> None:
        self.config = config or FrontendConfig()
        self._window = _window(self.config).astype(np.float32)
        self._filters_t = np.ascontiguousarray(mel_filterbank(self.config).T, dtype=np.float32)
        self._floor = np.float32(self.config.log_floor)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"expected mono samples [n], got shape {x.shape}")
        return self._frames_to_logmel(self._frame(self.emphasise(x, np.float32(0.0))))

    def emphasise(self, x: np.ndarray, previous: np.float32) -> np.ndarray:
        """Pre-emphasis, given the sample before x (0 at the start of a signal)."""
        k = self.config.pre_emphasis
        if k == 0.0 or x.size == 0:
            return x
        y = x.copy()
        y[1:] -= np.float32(k) * x[:-1]
        y[0] -= np.float32(k) * previous
        return y

    def _frame(self, x: np.ndarray) -> np.ndarray:
        cfg = self.config
        n = cfg.n_frames(x.size)
        stride = x.strides[0]
        return np.lib.stride_tricks.as_strided(
            x, shape=(n, cfg.win_length), strides=(cfg.hop_length * stride, stride), writeable=False
        )

    def _frames_to_logmel(self, frames: np.ndarray) -> np.ndarray:
        if frames.shape[0] == 0:
            return np.empty((0, self.config.n_mels), dtype=np.float32)
        spectrum = scipy.fft.rfft(frames * self._window, n=self.config.n_fft, axis=-1)
        power = spectrum.real**2
        power += spectrum.imag**2
        mel = power @ self._filters_t
        cfg = self.config
        if cfg.log == "db":
            np.maximum(mel, self._floor, out=mel)
            np.log10(mel, out=mel)
            mel *= np.float32(10.0)
        else:
            mel += self._floor
            np.log(mel, out=mel)
        if cfg.offset != 0.0 or cfg.divisor != 1.0:
            mel += np.float32(cfg.offset)
            mel /= np.float32(cfg.divisor)
        return np.asarray(mel)

    def stream(self) -> StreamingLogMel:
        return StreamingLogMel(self)


class StreamingLogMel:
    """Takes chunks of any size and returns only the frames they complete.

    It keeps fewer than win_length unconsumed samples between calls, so each
    frame is computed exactly once: the work per hop is one windowed FFT and one
    filterbank product, independent of how long the stream has run. The output
    of all calls, concatenated, equals LogMel on the whole signal.
    """

    def __init__(self, logmel: LogMel | FrontendConfig | None = None) -> None:
        self._logmel = logmel if isinstance(logmel, LogMel) else LogMel(logmel)
        self.config = self._logmel.config
        self._pending = np.empty(0, dtype=np.float32)
        self._last_sample = np.float32(0.0)  # pre-emphasis looks one sample back
        self.frames_emitted = 0
        self.samples_seen = 0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples; get the newly completed frames [k, n_mels] (k may be 0)."""
        raw = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self.samples_seen += raw.size
        chunk = self._logmel.emphasise(raw, self._last_sample)
        if raw.size:
            self._last_sample = raw[-1]
        x = np.concatenate((self._pending, chunk)) if self._pending.size else chunk
        n = self.config.n_frames(x.size)
        if n == 0:
            self._pending = x.copy() if x is chunk else x
            return np.empty((0, self.config.n_mels), dtype=np.float32)
        frames = self._logmel._frames_to_logmel(self._logmel._frame(np.ascontiguousarray(x)))
        self._pending = x[n * self.config.hop_length :].copy()  # < win_length samples
        self.frames_emitted += n
        return frames

    def reset(self) -> None:
        self._pending = np.empty(0, dtype=np.float32)
        self._last_sample = np.float32(0.0)
        self.frames_emitted = 0
        self.samples_seen = 0


def log_mel(samples: np.ndarray, config: FrontendConfig | None = None) -> np.ndarray:
    """One-off batch log-mel; build a LogMel once to reuse it on many clips."""
    return LogMel(config)(samples)


def mfcc(logmel_db: np.ndarray, n_mfcc: int = 13) -> np.ndarray:
    """MFCCs: orthonormal DCT-II over the mel axis of a log-mel [frames, n_mels]."""
    if not 0 < n_mfcc <= logmel_db.shape[-1]:
        raise ConfigError(f"n_mfcc must be in 1..{logmel_db.shape[-1]}, got {n_mfcc}")
    coeffs = scipy.fft.dct(logmel_db, type=2, norm="ortho", axis=-1)[..., :n_mfcc]
    return np.asarray(coeffs, dtype=np.float32)
