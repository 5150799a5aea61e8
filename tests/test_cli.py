from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_audio.audio import write_wav
from edge_audio.cli import main
from edge_audio.commands.features import ascii_spectrogram

from .conftest import REPO, shared_dataset
from .wavgen import tone, write_corpus


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_audio", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


@pytest.fixture()
def wav(tmp_path) -> Path:
    path = tmp_path / "tone.wav"
    write_wav(path, tone(44100, rate=44100, freq=1000), 44100)
    return path


def test_features_prints_shape_and_a_picture(wav, capsys):
    assert main(["features", str(wav)]) == 0
    out = capsys.readouterr().out
    # The file's own rate, then the frontend's.
    assert "1.0 s at 44100 Hz, resampled to 16000 Hz -> 98 frames x 40 mel bands" in out
    assert out.count("|") >= 24  # the ascii spectrogram


def test_features_json_and_save(wav, tmp_path, capsys):
    saved = tmp_path / "f.npy"
    assert main(["features", str(wav), "--n-mels", "64", "--save", str(saved), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["frames"] == 98 and stats["n_mels"] == 64
    assert stats["sample_rate"] == 44100 and stats["frontend_rate"] == 16000
    assert stats["frontend"]["n_mels"] == 64
    assert np.load(saved).shape == (98, 64)


def test_features_reads_a_frontend_config_file(wav, tmp_path, capsys):
    config = tmp_path / "frontend.json"
    config.write_text(json.dumps({"n_mels": 32, "hop_length": 320}))
    assert main(["features", str(wav), "--config", str(config), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_mels"] == 32 and stats["frames"] == 49


def test_ascii_spectrogram_puts_high_pitch_at_the_top():
    picture = np.full((100, 40), -100.0, np.float32)
    picture[:, 35:] = 0.0  # energy in the top bands only
    rows = ascii_spectrogram(picture, width=20, height=10).splitlines()
    assert "@" in rows[0] and "@" not in rows[-1]
    assert ascii_spectrogram(np.empty((0, 40))) == "(no frames)"


def test_scan_prints_summary_and_json(tmp_path, capsys):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        write_wav(tmp_path / label / "x.wav", tone(), 16000)
    (tmp_path / "a" / "bad.wav").write_bytes(b"")
    assert main(["scan", "--data", str(tmp_path), "--layout", "folder"]) == 0
    assert "2 clips, 2 classes" in capsys.readouterr().out
    assert main(["scan", "--data", str(tmp_path), "--layout", "folder", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labels"] == {"a": 1, "b": 1}
    assert report["skipped"] == [{"file": str(tmp_path / "a" / "bad.wav"), "reason": "empty file"}]


def test_every_malformed_file_is_one_line_and_exit_2(tmp_path):
    corpus = write_corpus(tmp_path)
    for path, fragment in list(corpus.items())[:6]:  # subprocesses are slow; all cases in-process
        result = run_cli("features", str(path))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith("edge-audio: error: ") and fragment in result.stderr


def test_malformed_files_in_process_never_raise(tmp_path, capsys):
    for path, fragment in write_corpus(tmp_path).items():
        if path.stem == "silent":  # a valid file: `features` may show silence
            assert main(["features", str(path)]) == 0
            assert "-100.0 .. -100.0 dB" in capsys.readouterr().out
            continue
        assert main(["features", str(path)]) == 2
        assert fragment in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["scan", "--data", "/nonexistent", "--layout", "fsdd"], "no such folder"),
        (["features", "missing.wav"], "cannot open"),
    ],
)
def test_bad_arguments_are_one_clear_line(args, fragment, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_bad_frontend_config_file_is_one_clear_line(wav, tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text('{"n_mels": -1}')
    assert main(["features", str(wav), "--config", str(config)]) == 2
    assert "n_mels must be positive" in capsys.readouterr().err
    assert main(["features", str(wav), "--config", str(tmp_path / "nope.json")]) == 2
    assert "cannot read frontend config" in capsys.readouterr().err


def test_unknown_layout_is_rejected_by_argparse():
    result = run_cli("scan", "--data", ".", "--layout", "zip")
    assert result.returncode == 2 and "invalid choice: 'zip'" in result.stderr


def test_help_teaches_with_examples():
    result = run_cli("features", "--help")
    assert result.returncode == 0 and "example: edge-audio features" in result.stdout
    result = run_cli("--help")
    assert "features" in result.stdout and "scan" in result.stdout


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "edge-audio"
    if not script.exists():
        pytest.skip("edge-audio is not installed in this environment (pip install -e .)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("edge-audio ")


def test_device_commands_never_import_heavy_packages(wav):
    blocker = REPO / "tests" / "no_heavy_imports.py"
    for args in (["features", str(wav)], ["scan", "--data", str(wav.parent), "--layout", "folder"]):
        if args[0] == "scan":
            (wav.parent / "cls").mkdir(exist_ok=True)
            write_wav(wav.parent / "cls" / "a.wav", tone(), 16000)
        result = subprocess.run(
            [sys.executable, str(blocker), "edge_audio.cli", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr


def test_importing_every_device_module_pulls_in_no_heavy_package():
    code = (
        "import importlib, pkgutil, sys, edge_audio\n"
        "for m in pkgutil.walk_packages(edge_audio.__path__, 'edge_audio.'):\n"
        "    if m.name != 'edge_audio.__main__': importlib.import_module(m.name)\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'onnx', 'tensorflow', 'librosa', 'matplotlib')]\n"
        "print(heavy); sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.shared
def test_scan_real_fsdd_from_the_command_line():
    result = run_cli("scan", "--data", str(shared_dataset("fsdd")), "--layout", "fsdd", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["clips"] == 2500 and len(report["groups"]) == 5
