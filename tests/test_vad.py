"""The speech gate with the real Silero VAD model (edge_audio/vad.py). The engine's
use of a gate is tested in test_stream.py with a stand-in that needs no model."""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np
import pytest

from edge_audio.audio import load_audio
from edge_audio.cli import main
from edge_audio.errors import ConfigError, EdgeAudioError
from edge_audio.scoring import read_truth
from edge_audio.shipped import demo_recording, demo_truth
from edge_audio.vad import SpeechGate, silero_model_path

from .wavgen import tone


@pytest.fixture(scope="module")
def gate() -> SpeechGate:
    return SpeechGate()


def demo_word(rate: int) -> np.ndarray:
    """A second of the demo recording around its first word."""
    audio = load_audio(demo_recording(), rate)[0]
    word = read_truth(demo_truth())[0]
    middle = round((word.start + word.end) / 2 * rate)
    return audio[middle - rate // 2 : middle + rate // 2]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_gate_hears_a_spoken_word_and_not_a_tone_or_noise(gate, rate):
    assert gate.speech_probability(demo_word(rate), rate) > 0.8
    hum = tone(rate, freq=440, rate=rate)
    hiss = np.random.default_rng(0).normal(0, 0.1, rate).astype(np.float32)
    assert gate.speech_probability(hum, rate) < 0.2
    assert gate.speech_probability(hiss, rate) < 0.2
    assert gate.speech_probability(np.zeros(rate, np.float32), rate) < 0.2


def test_each_check_starts_fresh(gate):
    """A check after speech scores silence as silence: no state carries over."""
    word = demo_word(16000)
    silence = np.zeros(16000, np.float32)
    first = gate.speech_probability(silence, 16000)
    gate.speech_probability(word, 16000)
    assert gate.speech_probability(silence, 16000) == pytest.approx(first)


def test_allows_counts_checks_and_vetoes():
    gate = SpeechGate(0.5)
    assert gate.allows(demo_word(8000), 8000)
    assert not gate.allows(np.zeros(8000, np.float32), 8000)
    assert gate.summary() == {"threshold": 0.5, "events_checked": 2, "events_rejected": 1}


def test_a_rate_silero_does_not_take_is_refused(gate):
    with pytest.raises(ConfigError, match="8 or 16 kHz"):
        gate.speech_probability(np.zeros(44100, np.float32), 44100)


def test_without_silero_the_error_says_how_to_install_it(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", missing)
    with pytest.raises(EdgeAudioError, match="pip install --no-deps silero-vad"):
        silero_model_path()


def test_a_model_file_that_is_not_there_is_named(tmp_path):
    with pytest.raises(EdgeAudioError, match="does not exist"):
        SpeechGate(model=tmp_path / "silero_vad.onnx")


def test_listen_demo_with_the_gate_keeps_the_demo_words(capsys):
    assert main(["listen", "--demo", "--vad", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    gate = summary["speech_gate"]
    assert (
        gate["threshold"] == 0.5
        and gate["events_checked"] == summary["events"] + gate["events_rejected"]
    )
    assert summary["score"]["f1"] >= 0.9  # the demo is speech: the gate lets its words through


def test_listen_refuses_a_gate_threshold_outside_0_1(capsys):
    assert main(["listen", "--demo", "--vad", "1.5"]) != 0
    assert "threshold must be in (0, 1)" in capsys.readouterr().err
