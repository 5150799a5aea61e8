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
