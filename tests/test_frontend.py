from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_audio.errors import ConfigError
from edge_audio.frontend import (
    FrontendConfig,
    StreamingLogMel,
    hz_to_mel,
    log_mel,
    mel_to_hz,
    mfcc,
)


def speechlike(seconds: float = 2.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Harmonics with a moving pitch, noise bursts and a quiet gap: a broad test signal."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12)) * 0.2
    noise = rng.standard_normal(t.size) * 0.05 * (np.sin(2 * np.pi * 1.3 * t) > 0.3)
    x = voiced + noise + 0.001 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def test_mel_scale_round_trips():
    hz = np.array([0.0, 100.0, 999.0, 1000.0, 4000.0, 8000.0])
    for scale in ("slaney", "htk"):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz, scale), scale), hz, atol=1e-6)


def test_mfcc_rejects_more_coefficients_than_bands():
    with pytest.raises(ConfigError, match="n_mfcc"):
        mfcc(np.zeros((5, 40), np.float32), 41)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=6000),
    sizes=st.lists(st.integers(min_value=1, max_value=2500), min_size=1, max_size=40),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_streaming_equals_batch_for_any_chunking(n, sizes, seed):
    x = np.random.default_rng(seed).uniform(-1, 1, n).astype(np.float32)
    stream = StreamingLogMel()
    parts, start, i = [], 0, 0
    while start < n:
        size = sizes[i % len(sizes)]
        parts.append(stream.push(x[start : start + size]))
        start, i = start + size, i + 1
    out = np.concatenate(parts) if parts else np.empty((0, 40), np.float32)
    batch = log_mel(x)
    assert out.shape == batch.shape
    if batch.size:
        assert np.abs(out - batch).max() <= 1e-5
    assert stream.frames_emitted == batch.shape[0] and stream.samples_seen == n


# A pretrained network's kind of input: pre-emphasis (state across chunks), a
# symmetric window, Kaldi mels, ln(p + floor) and an affine map.
PRETRAINED_LIKE = FrontendConfig(
    sample_rate=16000,
    n_fft=512,
    win_length=400,
    hop_length=160,
    n_mels=64,
    fmin=0.0,
    fmax=7500.0,
    mel_scale="kaldi",
    mel_norm="none",
    window="hann_symmetric",
    log_floor=1e-5,
    pre_emphasis=0.97,
    log="ln",
    offset=4.5,
    divisor=5.0,
)


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=1500), min_size=1, max_size=20),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_pretrained_style_streaming_equals_batch(sizes, seed):
    x = np.random.default_rng(seed).uniform(-1, 1, 4000).astype(np.float32)
    stream = StreamingLogMel(PRETRAINED_LIKE)
    parts, start, i = [], 0, 0
    while start < x.size:
        parts.append(stream.push(x[start : start + sizes[i % len(sizes)]]))
        start, i = start + sizes[i % len(sizes)], i + 1
    np.testing.assert_allclose(np.concatenate(parts), log_mel(x, PRETRAINED_LIKE), atol=1e-5)


def test_pre_emphasis_reset_forgets_the_last_sample():
    x = speechlike(0.3)
    stream = StreamingLogMel(PRETRAINED_LIKE)
    first = stream.push(x)
    stream.reset()
    np.testing.assert_array_equal(stream.push(x), first)


def test_pretrained_style_silence_sits_at_its_floor():
    cfg = PRETRAINED_LIKE
    silence = log_mel(np.zeros(1600, np.float32), cfg)
    expected = (np.log(1e-5) + 4.5) / 5.0
    assert cfg.floor_db == pytest.approx(expected)
    assert np.allclose(silence, expected, atol=1e-5)
    assert cfg.floor_db < cfg.silence_level < cfg.floor_db + 0.2  # ln(2.26) / 5 above


def test_kaldi_filters_peak_at_one_and_skip_the_nyquist_bin():
    from edge_audio.frontend import mel_filterbank

    bank = mel_filterbank(PRETRAINED_LIKE)
    assert bank.shape == (64, 257)
    assert np.all(bank[:, -1] == 0)
    assert np.all(bank.max(axis=1) > 0.5) and bank.max() <= 1.0


def test_streaming_one_sample_at_a_time():
    x = speechlike(0.1)
    stream = StreamingLogMel(FrontendConfig())
    out = np.concatenate([stream.push(x[i : i + 1]) for i in range(x.size)])
    np.testing.assert_allclose(out, log_mel(x), atol=1e-5)


def test_streaming_keeps_less_than_a_window_between_calls():
    stream = StreamingLogMel()
    for _ in range(50):
        stream.push(np.ones(1234, np.float32) * 0.1)
        assert stream._pending.size < stream.config.win_length


def test_streaming_reset_starts_over():
    x = speechlike(0.5)
    stream = StreamingLogMel()
    first = stream.push(x)
    stream.reset()
    np.testing.assert_array_equal(stream.push(x), first)


def test_short_input_gives_zero_frames():
    assert log_mel(np.zeros(399, np.float32)).shape == (0, 40)
    assert log_mel(np.zeros(400, np.float32)).shape == (1, 40)


def test_silence_sits_at_the_log_floor():
    assert np.all(log_mel(np.zeros(1600, np.float32)) == pytest.approx(-100.0))


def test_rejects_multichannel_input():
    with pytest.raises(ValueError, match="mono"):
        log_mel(np.zeros((100, 2), np.float32))


def test_frame_counts():
    cfg = FrontendConfig()
    assert cfg.n_frames(16000) == 98
    assert cfg.n_samples(98) == 15920 and cfg.n_frames(cfg.n_samples(98)) == 98
    assert cfg.n_samples(0) == 0


def test_config_round_trips_through_json():
    cfg = FrontendConfig(
        sample_rate=22050,
        n_fft=1024,
        win_length=1024,
        hop_length=256,
        n_mels=64,
        fmin=0.0,
        fmax=11025.0,
        mel_scale="htk",
        mel_norm="none",
    )
    text = cfg.to_json()
    assert json.loads(text)["mel_scale"] == "htk"
    assert FrontendConfig.from_json(text) == cfg
    assert FrontendConfig.from_dict(FrontendConfig().to_dict()) == FrontendConfig()


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"win_length": 1024}, "longer than n_fft"),
        ({"n_mels": 0}, "n_mels"),
        ({"fmax": 9000.0}, "Nyquist"),
        ({"fmin": 9000.0, "fmax": 8000.0}, "fmin < fmax"),
        ({"mel_scale": "bark"}, "mel_scale"),
        ({"mel_norm": "l2"}, "mel_norm"),
        ({"window": "kaiser"}, "window"),
        ({"log_floor": 0.0}, "log_floor"),
        ({"log": "log2"}, "log must be"),
        ({"pre_emphasis": 1.0}, "pre_emphasis"),
        ({"divisor": 0.0}, "divisor"),
        ({"window": "hann_periodic"}, "window"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"hop_length": 0}, "positive"),
    ],
)
def test_bad_config_values_are_clear_errors(changes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        FrontendConfig(**changes)


def test_bad_config_documents_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown keys"):
        FrontendConfig.from_dict({"n_mel": 40})
    with pytest.raises(ConfigError, match="not valid JSON"):
        FrontendConfig.from_json("{n_mels: 40")
    with pytest.raises(ConfigError, match="JSON object"):
        FrontendConfig.from_json("[1, 2]")


def test_keys_for_pretrained_inputs_are_written_only_when_used():
    assert "pre_emphasis" not in FrontendConfig().to_dict()
    written = PRETRAINED_LIKE.to_dict()
    assert written["pre_emphasis"] == 0.97 and written["log"] == "ln"
    assert FrontendConfig.from_dict(written) == PRETRAINED_LIKE
