"""Per-layout defaults: frontend, model window, background class, model size.

They are starting points the CLI can override, chosen for the data each layout
usually holds (8 kHz spoken digits, 5 s environmental clips, 15-30 s music)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edge_audio.frontend import FrontendConfig

from .augment import AugmentConfig

# Size presets of the model zoo (export/zoo.py), kept here so that `--help`
# and argument checks work without importing torch.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "dscnn": {
        "small": {"width": 64, "depth": 4},
        "medium": {"width": 96, "depth": 4},
        "large": {"width": 172, "depth": 5},
    },
    "bcresnet": {"small": {"width": 16}, "medium": {"width": 32}, "large": {"width": 48}},
    "tcresnet": {
        "small": {"channels": (16, 24, 32, 40), "kernel": 7},
        "medium": {"channels": (16, 24, 32, 48), "kernel": 9},
        "large": {"channels": (32, 48, 64, 96), "kernel": 9},
    },
    "cnn": {"small": {"width": 16}, "medium": {"width": 32}, "large": {"width": 48}},
    "vgg": {
        "tiny": {"stages": ((16, 1), (32, 1), (48, 1), (64, 1))},
        "small": {"stages": ((16, 1), (32, 1), (64, 1), (128, 1))},
        "medium": {"stages": ((16, 2), (32, 2), (64, 2), (128, 1))},
        "large": {"stages": ((24, 2), (48, 2), (96, 2), (160, 1))},
    },
}
MODELS = tuple(SIZES)


@dataclass(frozen=True)
class Preset:
    frontend: FrontendConfig
    window_s: float  # model window
    mode: str  # "keyword": one centred window per clip; "segments": windows every hop_s
    hop_s: float
    model: str
    size: str
    background: bool  # add a _background_ class ("nothing here") for continuous use
    synth_speakers: int  # espeak-ng voices added as training-only speakers
    epochs: int
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    mixup: float = 0.0


# FSDD is recorded at 8 kHz: a 4 kHz band is all it has, so the model listens to
# that band only and a 16/48 kHz microphone is resampled down to match.
NARROWBAND = FrontendConfig(
    sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=40, fmin=20.0, fmax=4000.0
)
WIDEBAND = FrontendConfig(
    sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40, fmin=20.0, fmax=8000.0
)
WIDEBAND_64 = FrontendConfig(
    sample_rate=16000, n_fft=512, win_length=400, hop_length=320, n_mels=64, fmin=20.0, fmax=8000.0
)

# The input EfficientAT's AudioSet networks were trained on (Schmid et al., 2023):
# 32 kHz, pre-emphasis, 25 ms symmetric Hann windows every 10 ms in a 1024-point
# FFT, 128 Kaldi mels up to 15.5 kHz, ln(power + 1e-5), then (x + 4.5) / 5.
EFFICIENTAT_MN04 = FrontendConfig(
    sample_rate=32000,
    n_fft=1024,
    win_length=800,
    hop_length=320,
    n_mels=128,
    fmin=0.0,
    fmax=15500.0,
    mel_scale="kaldi",
    mel_norm="none",
    window="hann_symmetric",
    log_floor=1e-5,
    pre_emphasis=0.97,
    log="ln",
    offset=4.5,
    divisor=5.0,
)

# Google's speech embedding (export/speech_embedding.py) heard 16 kHz audio as
# int16 samples: 25 ms periodic Hann windows every 10 ms in a 512-point FFT, 32
# Slaney mels from 60 to 3,800 Hz, 10*log10(power), then x/10 + 2 (openWakeWord's
# scaling). Our samples are floats in [-1, 1], so the int16 scale (+90.3 dB) goes
# into the offset. The export it comes from clips at 80 dB under the clip's
# loudest cell; a stream has no clip, so the floor is fixed instead, at -20 dB in
# int16 units (feature 0: far under any microphone's own noise), which keeps the
# padding of short clips and digital silence where the network expects quiet.
_INT16_POWER = 32768.0**2
SPEECH_EMBEDDING = FrontendConfig(
    sample_rate=16000,
    n_fft=512,
    win_length=400,
    hop_length=160,
    n_mels=32,
    fmin=60.0,
    fmax=3800.0,
    mel_scale="slaney",
    mel_norm="slaney",
    window="hann",
    log_floor=1e-2 / _INT16_POWER,
    offset=20.0 + 10.0 * math.log10(_INT16_POWER),
    divisor=10.0,
)

PRESETS = {
    "fsdd": Preset(NARROWBAND, 1.0, "keyword", 0.25, "dscnn", "small", True, 32, 40),
    "speech-commands": Preset(WIDEBAND, 1.0, "keyword", 0.25, "dscnn", "small", True, 0, 30),
    # Environmental sounds: the speech-shaped channel augmentation (10 dB tilts,
    # low-pass roll-offs, noise down to 5 dB SNR, vocal-tract warps) made the
    # model underfit (74-80% of its own training clips, the best epoch always one
    # of the last). Real clips already carry their own background, so noise is
    # lighter and rarer, the channel curve gentle, and there is no warp.
    "esc50": Preset(
        WIDEBAND_64,
        2.5,
        "segments",
        1.25,
        "vgg",
        "medium",
        False,
        0,
        60,
        AugmentConfig(
            snr_db=(10.0, 40.0),
            noise_prob=0.4,
            speed=0.1,
            vtlp=0.0,
            eq_db=3.0,
            lowpass_prob=0.0,
            time_mask_frames=12,
            freq_mask_bands=8,
        ),
        mixup=0.2,
    ),
    "folder": Preset(WIDEBAND, 1.0, "segments", 0.5, "dscnn", "small", False, 0, 20),
    "gtzan": Preset(WIDEBAND_64, 3.0, "segments", 1.5, "vgg", "medium", False, 0, 30, mixup=0.2),
}
