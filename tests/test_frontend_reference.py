"""The frontend against an independent reference: librosa, with the same
parameters. Part of the full lane (librosa is a dev dependency, never the
device's); the device lane runs tests/test_frontend.py."""

from __future__ import annotations

import numpy as np
import pytest

from edge_audio.frontend import FrontendConfig, LogMel, mel_filterbank, mfcc

from .test_frontend import speechlike

pytestmark = pytest.mark.toolchain
librosa = pytest.importorskip("librosa")


def librosa_logmel(x: np.ndarray, cfg: FrontendConfig) -> tuple[np.ndarray, np.ndarray]:
    """librosa reference with the same parameters. librosa centres the window in the
    n_fft frame, so shift the signal by the left pad to get the same frames."""
    lpad = (cfg.n_fft - cfg.win_length) // 2
    padded = np.concatenate([np.zeros(lpad, np.float32), x, np.zeros(cfg.n_fft, np.float32)])
    power = librosa.feature.melspectrogram(
        y=padded,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=cfg.window,
        center=False,
        power=2.0,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.top_frequency,
        htk=cfg.mel_scale == "htk",
        norm="slaney" if cfg.mel_norm == "slaney" else None,
    )
    return power.T, librosa.power_to_db(power, ref=1.0, amin=cfg.log_floor, top_db=None).T


@pytest.mark.parametrize("scale", ["slaney", "htk"])
@pytest.mark.parametrize("norm", ["slaney", "none"])
def test_matches_librosa_within_a_hundredth_of_a_db(scale, norm):
    cfg = FrontendConfig(mel_scale=scale, mel_norm=norm)
    x = speechlike()
    ours = LogMel(cfg)(x)
    power, ref = librosa_logmel(x, cfg)
    ref, power = ref[: ours.shape[0]], power[: ours.shape[0]]
    assert ours.shape == (cfg.n_frames(x.size), cfg.n_mels) == ref.shape
    above_floor = power > cfg.log_floor
    assert above_floor.mean() > 0.95
    assert np.abs(ours - ref)[above_floor].max() <= 0.01


@pytest.mark.parametrize("scale", ["slaney", "htk"])
def test_filterbank_matches_librosa(scale):
    cfg = FrontendConfig(n_mels=64, fmin=50, fmax=7600, mel_scale=scale)
    ref = librosa.filters.mel(
        sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=7600, htk=scale == "htk", norm="slaney"
    )
    np.testing.assert_allclose(mel_filterbank(cfg), ref, rtol=1e-5, atol=1e-9)


def test_mfcc_matches_librosa_dct():
    logmel = LogMel()(speechlike())
    ref = librosa.feature.mfcc(S=logmel.T, n_mfcc=13).T
    np.testing.assert_allclose(mfcc(logmel, 13), ref, rtol=1e-4, atol=1e-3)


def efficientat_reference(x: np.ndarray) -> np.ndarray:
    """EfficientAT's input, written independently from its description: pre-emphasis,
    a centred torch.stft (reflect padding) with a symmetric Hann window, Kaldi mel
    filters built bin by bin, ln(power + 1e-5), (x + 4.5) / 5. [frames, 128]."""
    torch = pytest.importorskip("torch")
    sr, n_fft, n_mels, fmax = 32000, 1024, 128, 15500.0
    y = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]]).astype(np.float64)
    spec = torch.stft(
        torch.from_numpy(y),
        n_fft,
        hop_length=320,
        win_length=800,
        window=torch.hann_window(800, periodic=False, dtype=torch.float64),
        center=True,
        return_complex=True,
    )
    power = (spec.abs() ** 2).numpy()  # [513, frames]

    def mel(f: float) -> float:
        return 1127.0 * np.log(1.0 + f / 700.0)

    delta = (mel(fmax) - mel(0.0)) / (n_mels + 1)
    banks = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, centre, right = m * delta, (m + 1) * delta, (m + 2) * delta
        for k in range(n_fft // 2):  # the Nyquist bin stays zero
            f = mel(k * sr / n_fft)
            if left < f < right:
                banks[m, k] = (
                    (f - left) / (centre - left) if f <= centre else (right - f) / (right - centre)
                )
    return ((np.log(banks @ power + 1e-5) + 4.5) / 5.0).T


def test_efficientat_frontend_matches_its_reference_batch_and_streaming():
    from export.presets import EFFICIENTAT_MN04 as cfg

    x = speechlike(seconds=2.0, rate=32000)
    ours = LogMel(cfg)(x)
    # Our frame k covers samples [320k, 320k + 800); the reference's centred frame
    # t covers [320t - 400, 320t + 400). With 240 zeros in front, t = k + 2.
    ref = efficientat_reference(np.concatenate([np.zeros(240, np.float32), x]))
    n = min(ours.shape[0], ref.shape[0] - 4)
    assert n > 150
    np.testing.assert_allclose(ours[:n], ref[2 : n + 2], atol=2e-3)
    assert ours.min() >= cfg.floor_db - 1e-6

    stream = LogMel(cfg).stream()
    parts = [stream.push(x[i : i + 777]) for i in range(0, x.size, 777)]
    np.testing.assert_allclose(np.concatenate(parts), ours, atol=1e-5)
