"""Ogg Opus (the format of ../shared/data/negatives) read by every command that
reads audio: scan, evaluate, listen --simulate here (device side, both lanes);
train --negatives and calibrate in test_negatives.py (the toolchain). Each
Opus file is made by the test from WAV, through soundfile (the formats extra);
test_audio.py shows the error when soundfile is missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_audio.audio import load_audio, read_wav
from edge_audio.cli import main as cli_main
from edge_audio.datasets import scan
from edge_audio.shipped import demo_recording

from .conftest import shared_dataset

soundfile = pytest.importorskip("soundfile", reason="Opus is decoded by the formats extra")


def write_opus(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Opus takes 8, 12, 16, 24 or 48 kHz; the negatives are 16 kHz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, rate, format="OGG", subtype="OPUS")
    return path


def fsdd_as_opus(root: Path, per_label: int = 3) -> Path:
    """A folder dataset of real FSDD digits (8 kHz WAV upsampled to 16 kHz Opus)."""
    fsdd = shared_dataset("fsdd") / "recordings"
    for label in ("0", "1", "2"):
        for path in sorted(fsdd.glob(f"{label}_jackson_*.wav"))[:per_label]:
            samples, _ = load_audio(path, 16000)
            write_opus(root / label / f"{path.stem}.opus", samples, 16000)
    return root


def test_an_opus_file_reads_like_any_other(tmp_path):
    rate = 16000
    t = np.arange(rate) / rate
    x = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    samples, got = load_audio(write_opus(tmp_path / "a.opus", x, rate))
    # Opus is lossy but keeps the sample count and the tone
    assert got == rate and samples.size == rate
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(int(spectrum.argmax()) - 440) <= 1


def test_scan_finds_opus_clips(tmp_path, capsys):
    data = fsdd_as_opus(tmp_path / "digits")
    index = scan(data, "folder")
    assert len(index.records) == 9 and not index.skipped
    assert cli_main(["scan", "--data", str(data), "--layout", "folder", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clips"] == 9


def test_evaluate_scores_opus_clips(tmp_path, capsys):
    data = fsdd_as_opus(tmp_path / "digits")
    code = cli_main(["evaluate", "--data", str(data), "--layout", "folder", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 9 and not report["skipped"]
    assert report["accuracy"] >= 0.6  # jackson is a speaker the model trained on


def test_listen_simulates_an_opus_recording_like_its_wav(tmp_path, capsys):
    wav = demo_recording()
    samples, rate = read_wav(wav)
    # the demo is 8 kHz, a rate Opus takes; 48 kbps keeps the words intact
    opus = tmp_path / "demo.opus"
    soundfile.write(opus, samples, rate, format="OGG", subtype="OPUS")

    def events(path: Path) -> list[tuple[str, float]]:
        assert cli_main(["listen", "--simulate", str(path), "--fast", "--json"]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
        return [(e["label"], e["start"]) for e in lines if e.get("type") == "event"]

    from_wav, from_opus = events(wav), events(opus)
    assert len(from_wav) == 15  # the demo's words
    # a lossy codec may lose a borderline word, but every event it keeps is the
    # WAV's: the same label at the same moment
    assert all(
        any(label == w and abs(start - s) < 0.3 for w, s in from_wav) for label, start in from_opus
    )
    assert len(from_opus) >= 0.8 * len(from_wav)
