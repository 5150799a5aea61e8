"""Rooms: impulse responses, reverberation on audio and on features, and the
augmentation switch."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge_audio.frontend import FrontendConfig, LogMel
from export.augment import AugmentConfig, augment_batch
from export.room import (
    RoomConfig,
    db_per_unit,
    generated_rir,
    have_pyroomacoustics,
    kernel_bank,
    mel_kernel,
    reverberate,
    reverberate_features,
    room_rir,
)

FRONTEND = FrontendConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=40)
METHODS = ["generated", "pyroomacoustics"]


def decay_time(rir: np.ndarray, rate: int) -> float:
    """RT60 by Schroeder backward integration, from the -5 to -25 dB slope."""
    energy = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
    db = 10 * np.log10(energy / energy[0])
    t5, t25 = np.argmax(db <= -5), np.argmax(db <= -25)
    return 3 * (t25 - t5) / rate


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_impulse_responses_decay_as_long_as_asked(method, rt60):
    if method == "pyroomacoustics" and not have_pyroomacoustics():
        pytest.fail("pyroomacoustics is part of the train extra; it should be installed")
    rir = room_rir(16000, rt60, np.random.default_rng(0), method)
    # It starts with the direct sound (an early reflection may be as loud: not a test).
    assert np.abs(rir[0]) >= 0.1 * np.abs(rir).max()
    # a simulated room is not exactly the Sabine figure it was built from
    assert decay_time(rir, 16000) == pytest.approx(rt60, rel=0.45)


def test_a_room_kernel_is_the_same_whatever_scaling_the_frontend_adds():
    """A pretrained network's frontend maps dB to its own units ((dB + offset) /
    divisor); the room it is heard in must not change with that map."""
    rir = generated_rir(FRONTEND.sample_rate, 0.5, np.random.default_rng(0))
    scaled = replace(FRONTEND, offset=110.3, divisor=10.0)
    np.testing.assert_allclose(mel_kernel(rir, scaled), mel_kernel(rir, FRONTEND), atol=1e-4)
    # EfficientAT's frontend: a natural log, then (x + 4.5) / 5. The same room.
    natural = replace(FRONTEND, log="ln", log_floor=1e-10, offset=4.5, divisor=5.0)
    np.testing.assert_allclose(mel_kernel(rir, natural), mel_kernel(rir, FRONTEND), atol=1e-3)


def test_features_of_any_frontend_scale_to_decibels():
    """Augmentation adds dB: features times db_per_unit must move by 10 dB when
    the sound's power grows tenfold, whatever the frontend's log and scaling."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.05, 8000).astype(np.float32)
    for frontend in (
        FRONTEND,
        replace(FRONTEND, offset=110.3, divisor=10.0),
        replace(FRONTEND, log="ln", log_floor=1e-10, offset=4.5, divisor=5.0),
    ):
        logmel = LogMel(frontend)
        step = (logmel(x * np.sqrt(10.0)) - logmel(x)) * db_per_unit(frontend)
        assert float(np.median(step)) == pytest.approx(10.0, abs=0.05), frontend.log


def test_bad_room_settings_are_clear_errors():
    with pytest.raises(ValueError, match="rt60 range"):
        RoomConfig(rt60=(0.9, 0.2))
    with pytest.raises(ValueError, match="unknown room method"):
        RoomConfig(method="cathedral")


def test_reverberation_keeps_length_and_peak_and_smears_in_time():
    x = np.zeros(8000, np.float32)
    x[1000:1400] = np.sin(np.arange(400) * 0.3)
    wet = reverberate(x, generated_rir(8000, 0.5, np.random.default_rng(1)))
    assert wet.size == x.size
    assert np.abs(wet).max() == pytest.approx(np.abs(x).max(), rel=1e-5)
    assert np.abs(wet[2000:3000]).max() > 0.01  # the tail rings on after the sound


@pytest.mark.parametrize("method", METHODS)
def test_reverberating_features_approximates_reverberating_the_audio(method):
    """What training does on cached features against what a room does to audio:
    the approximation is much closer to the truth than the dry features are."""
    rng = np.random.default_rng(2)
    t = np.arange(6000) / 8000
    word = np.sin(2 * np.pi * (300 + 900 * t) * t) * np.hanning(t.size)
    audio = np.concatenate([np.zeros(800), word, np.zeros(6000)]).astype(np.float32)
    logmel = LogMel(FRONTEND)
    for rt60 in (0.3, 0.7):
        rir = room_rir(8000, rt60, rng, method)
        dry = logmel(audio)
        truth = logmel(reverberate(audio, rir))
        approx = reverberate_features(dry, mel_kernel(rir, FRONTEND), -100.0)
        truth, approx, dry = (a - a.max() for a in (truth, approx, dry))
        heard = truth > -50
        err_approx = np.abs(approx - truth)[heard].mean()
        err_dry = np.abs(np.maximum(dry, -100) - truth)[heard].mean()
        assert err_approx < 0.7 * err_dry, (rt60, err_approx, err_dry)


@pytest.mark.parametrize("method", METHODS)
def test_kernel_banks_are_seeded(method):
    config = RoomConfig(rt60=(0.2, 0.5), method=method)
    a = kernel_bank(FRONTEND, config, 3, seed=0)
    b = kernel_bank(FRONTEND, config, 3, seed=0)
    c = kernel_bank(FRONTEND, config, 3, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert all(k.shape[1] == FRONTEND.n_mels and k.max() == pytest.approx(1.0) for k in a)


def test_reverb_augmentation_is_seeded_and_its_switch_turns_it_off():
    rng = np.random.default_rng(0)
    batch = rng.normal(-50, 15, (6, 98, 40)).astype(np.float32)
    rooms = kernel_bank(FRONTEND, RoomConfig(method="generated"), 4, seed=0)
    only_reverb = replace(AugmentConfig.off(), reverb_prob=1.0)
    a = augment_batch(batch, only_reverb, np.random.default_rng(1), None, rooms)
    b = augment_batch(batch, only_reverb, np.random.default_rng(1), None, rooms)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, batch)
    off = augment_batch(batch, AugmentConfig.off(), np.random.default_rng(1), None, rooms)
    np.testing.assert_array_equal(off, batch)
    no_rooms = augment_batch(batch, only_reverb, np.random.default_rng(1), None, None)
    np.testing.assert_array_equal(no_rooms, batch)
