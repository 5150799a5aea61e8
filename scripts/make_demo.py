"""Synthesise the demo recording: spoken digits by espeak-ng voices, with pauses
and background noise, and its truth CSV (start,end,label in seconds).

    python scripts/make_demo.py [--out edge_audio/bundled/demo/digits.wav]

The voices are export.synth.DEMO_VOICES; training excludes them, so the demo is
never scored on a voice the model was trained on."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from edge_audio.audio import write_wav
from export.synth import DEMO_VOICES, DIGIT_WORDS, speak

RATE = 16000
SEQUENCE = (3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 0, 2)  # every digit appears


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    noise = np.fft.irfft(spectrum, n)
    return noise / np.sqrt(np.mean(noise**2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("edge_audio/bundled/demo/digits.wav"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    pieces, truth, cursor = [np.zeros(int(1.0 * RATE), np.float32)], [], 1.0
    for i, digit in enumerate(SEQUENCE):
        voice = DEMO_VOICES[i % len(DEMO_VOICES)]
        word = speak(DIGIT_WORDS[digit], voice, RATE)
        word = word / np.abs(word).max() * rng.uniform(0.3, 0.7)
        gap = rng.uniform(1.2, 2.0)
        truth.append((round(cursor, 3), round(cursor + word.size / RATE, 3), str(digit)))
        pieces += [word.astype(np.float32), np.zeros(int(gap * RATE), np.float32)]
        cursor += word.size / RATE + int(gap * RATE) / RATE
    speech = np.concatenate(pieces)
    # Background: pink noise about 25 dB below the speech peaks, plus a faint 50 Hz hum.
    t = np.arange(speech.size) / RATE
    background = 0.02 * pink_noise(speech.size, rng) + 0.005 * np.sin(2 * np.pi * 50 * t)
    audio = np.clip(speech + background, -1.0, 1.0)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_wav(args.out, audio, RATE)
    truth_path = args.out.with_suffix(".truth.csv")
    with truth_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["start", "end", "label"])
        writer.writerows(truth)
    print(f"wrote {args.out} ({audio.size / RATE:.1f} s, {len(truth)} digits) and {truth_path}")


if __name__ == "__main__":
    main()
