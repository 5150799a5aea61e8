"""benchmarks/wakeword.py's own parts: the split, the streams it hears keywords
in, and noise mixed at the SNR it asks for (the training and the DET curve run
in the benchmark itself, not in the suite)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.streams import speech_power

from .scripts import load_script

pytestmark = pytest.mark.toolchain
wakeword = load_script("benchmarks/wakeword.py")


def keyword_and_talk(
    seed: int,
) -> tuple[np.random.Generator, int, np.ndarray, list[np.ndarray]]:
    """A 1 s 900 Hz 'keyword' and three 2 s utterances of 'talk' (noise) at 16 kHz."""
    rng = np.random.default_rng(seed)
    rate = 16000
    keyword = np.sin(2 * np.pi * 900 * np.arange(rate) / rate).astype(np.float32)
    talk = [rng.normal(0, 0.2, 2 * rate).astype(np.float32) for _ in range(3)]
    return rng, rate, keyword, talk


def test_noise_is_mixed_at_the_benchmarks_snr_against_the_keywords():
    rng, rate, keyword, talk = keyword_and_talk(0)
    clean = wakeword.keyword_speech([keyword] * 4, talk, "computer", rate, rng, 2)
    noise = rng.normal(0, 0.3, rate * 30).astype(np.float32)
    for before, after in zip(clean, wakeword.in_noise(clean, noise, rate, rng), strict=True):
        assert after.truth == before.truth
        bed = after.audio.astype(np.float64) - before.audio
        measured = 10 * np.log10(speech_power(before, rate) / np.mean(bed**2))
        assert measured == pytest.approx(wakeword.SNR_DB, abs=0.1)


def test_keywords_sit_between_talk_at_its_level_with_truth_where_they_are():
    rng, rate, keyword, talk = keyword_and_talk(1)
    streams = wakeword.keyword_speech([keyword] * 5, talk, "computer", rate, rng, 2)
    assert [len(s.truth) for s in streams] == [2, 2, 1]
    for stream in streams:
        for segment in stream.truth:
            assert segment.label == "computer" and segment.end - segment.start == 1.0
            inside = stream.audio[int(segment.start * rate) : int(segment.end * rate)]
            spectrum = np.abs(np.fft.rfft(inside))
            assert abs(int(spectrum.argmax()) - 900) <= 2  # the keyword is where truth says
            # at the level of the talk before it (0.05 rms, +-3 dB)
            assert 0.05 * 10 ** (-3.1 / 20) < np.sqrt(np.mean(inside**2)) < 0.05 * 10 ** (3.1 / 20)


def test_the_split_is_by_file_stable_and_near_its_share():
    files = [Path(f"computer/{i}.opus") for i in range(2000)]
    held = [wakeword.held_out(f) for f in files]
    assert held == [wakeword.held_out(f) for f in files]
    assert sum(held) / len(held) == pytest.approx(wakeword.HELD_OUT_SHARE, abs=0.03)
