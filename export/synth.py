"""Synthetic speech with espeak-ng: extra speakers for keyword training and the
demo recording. Needs the Debian package espeak-ng (not needed on the device)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_audio.audio import load_audio
from edge_audio.errors import MissingDependencyError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")


@dataclass(frozen=True)
class Voice:
    accent: str
    variant: str
    speed: int = 150  # words per minute
    pitch: int = 50  # 0..99

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}@{self.speed}/{self.pitch}"


# The demo recording's voices. Training never uses these accent+variant pairs,
# so the demo is scored on voices the model has not heard.
DEMO_VOICES = (
    Voice("en-us", "m3", 150, 45),
    Voice("en-gb", "f2", 140, 60),
    Voice("en-029", "m6", 160, 40),
    Voice("en-gb-scotland", "f4", 135, 55),
)
DEMO_VOICE_KEYS = frozenset(f"{v.accent}+{v.variant}" for v in DEMO_VOICES)


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: Voice, sample_rate: int = 16000) -> np.ndarray:
    """Speak `text`; returns mono float32 at `sample_rate`, trimmed of silence."""
    if not have_espeak():
        raise MissingDependencyError("espeak-ng", "train", "speech synthesis")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                f"{voice.accent}+{voice.variant}",
                "-s",
                str(voice.speed),
                "-p",
                str(voice.pitch),
                "-w",
                str(out),
                text,
            ],
            check=True,
            capture_output=True,
        )
        samples, _ = load_audio(out, sample_rate)
    return trim_silence(samples)


def trim_silence(samples: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples
    return samples[loud[0] : loud[-1] + 1]


def voices(
    rng: np.random.Generator, count: int, exclude: frozenset[str] | set[str] = frozenset()
) -> list[Voice]:
    """`count` distinct random voices (accent, variant, speed, pitch)."""
    chosen: dict[str, Voice] = {}
    while len(chosen) < count:
        voice = Voice(
            str(rng.choice(ACCENTS)),
            str(rng.choice(VARIANTS)),
            int(rng.integers(120, 190)),
            int(rng.integers(25, 80)),
        )
        key = f"{voice.accent}+{voice.variant}"
        if key not in exclude and key not in chosen:
            chosen[key] = voice
    return list(chosen.values())


# Words that are not digits: the background class's "speech, but not a keyword".
NON_TARGET_WORDS = (
    "hello",
    "yes",
    "stop",
    "go",
    "house",
    "water",
    "cat",
    "left",
    "right",
    "off",
    "up",
    "down",
    "bed",
    "bird",
    "happy",
    "tree",
    "wow",
    "marvin",
    "sheila",
    "dog",
    "learn",
    "follow",
    "forward",
    "backward",
    "visual",
    "okay",
    "the",
    "and",
    "what",
    "morning",
)


def speak_cached(text: str, voice: Voice, sample_rate: int, cache_dir: Path) -> np.ndarray:
    """speak(), remembered on disk: espeak-ng is the slow part of a second run."""
    import hashlib

    key = hashlib.sha1(f"{text}|{voice.name}|{sample_rate}".encode()).hexdigest()
    path = cache_dir / "speech" / f"{key}.npy"
    if path.exists():
        return np.load(path)
    samples = speak(text, voice, sample_rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, samples)
    return samples
