"""Quantize round trip, bundle checks, backend parity and `edge-audio evaluate`.

One tiny model is trained on generated tones and quantised once per session;
the device-side tests then use that bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_audio.audio import write_wav
from edge_audio.backends import TFLiteBackend, choose_artefact, load_backend, softmax
from edge_audio.bundle import load_bundle
from edge_audio.cli import main as cli_main
from edge_audio.errors import ConfigError, DatasetError
from edge_audio.windows import normalise

from .conftest import REPO
from .wavgen import tone

pytest.importorskip("torch", reason="building a bundle needs the train extra")
pytest.importorskip("litert_torch", reason="building a bundle needs litert-torch (train extra)")
pytest.importorskip("ai_edge_litert", reason="running .tflite needs ai-edge-litert")
pytest.importorskip("onnxruntime", reason="running .onnx needs onnxruntime")


def make_tones(root: Path, per_class: int = 10, seconds: float = 3.0) -> Path:
    rng = np.random.default_rng(1)
    for label, freq in (("high", 2500.0), ("low", 300.0)):
        for i in range(per_class):
            n = int(seconds * 16000)
            x = tone(n, freq=freq * rng.uniform(0.9, 1.1), amp=0.4) + rng.normal(0, 0.01, n)
            path = root / label / f"{label}{i:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, x, 16000)
    return root


@pytest.fixture(scope="session")
def tones(tmp_path_factory) -> Path:
    return make_tones(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory, tones) -> Path:
    from export.cli import main as export_main

    work = tmp_path_factory.mktemp("bundle")
    cache = str(work / "cache")
    run = work / "run"
    assert (
        export_main(
            [
                "train",
                "--data",
                str(tones),
                "--layout",
                "folder",
                "--out",
                str(run),
                "--model",
                "vgg",
                "--size",
                "tiny",
                "--epochs",
                "15",
                "--batch-size",
                "16",
                "--quiet",
                "--cache",
                cache,
            ]
        )
        == 0
    )
    out = work / "tones-bundle"
    assert (
        export_main(
            ["quantize", str(run), "--out", str(out), "--calibration", "64", "--cache", cache]
        )
        == 0
    )
    return out


def test_quantize_writes_four_verified_artefacts(bundle_dir):
    names = sorted(p.name for p in bundle_dir.iterdir())
    assert names == [
        "card.md",
        "confusion.png",
        "manifest.json",
        "model.fp32.onnx",
        "model.fp32.tflite",
        "model.int8.onnx",
        "model.int8.tflite",
    ]
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert manifest["schema_version"] == 2 and manifest["labels"] == ["high", "low"]
    assert manifest["frontend"]["sample_rate"] == 16000
    assert set(manifest["artefacts"]) == {"onnx-fp32", "onnx-int8", "tflite-fp32", "tflite-int8"}
    for entry in manifest["artefacts"].values():
        assert len(entry["sha256"]) == 64 and entry["size"] > 1000
        metrics = entry["metrics"]
        assert metrics["accuracy"] >= 0.9 and metrics["clips"] > 0
    for key in ("onnx-fp32", "tflite-fp32"):
        assert manifest["artefacts"][key]["metrics"]["agreement_with_torch"] >= 0.995
    int8 = manifest["artefacts"]["tflite-int8"]
    assert int8["input_quant"]["scale"] > 0 and -128 <= int8["input_quant"]["zero_point"] <= 127
    assert manifest["verification"]["thresholds_overridden"] == []
    assert manifest["training"]["test_groups"] and manifest["licence"]["data"]
    card = (bundle_dir / "card.md").read_text()
    assert "python -m export train" in card and "python -m export quantize" in card
    assert "| tflite-int8 |" in card


def test_int8_tflite_takes_and_gives_int8(bundle_dir):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(bundle_dir / "model.int8.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8


def windows_of(bundle, n: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    frames, mels = bundle.input_shape[2:]
    return rng.normal(-40, 15, (n, frames, mels)).astype(np.float32)


def tone_windows(bundle, tones: Path) -> np.ndarray:
    from edge_audio.audio import load_audio
    from edge_audio.frontend import LogMel

    frontend = LogMel(bundle.frontend)
    clips = sorted(tones.rglob("*.wav"))[::4]
    return np.concatenate(
        [bundle.window.clip_windows(frontend(load_audio(p, 16000)[0])) for p in clips]
    )


def test_backends_agree_on_the_same_bundle(bundle_dir, tones):
    bundle = load_bundle(bundle_dir)
    windows = np.concatenate([windows_of(bundle), tone_windows(bundle, tones)])
    onnx = load_backend(bundle, "onnx", "fp32").probabilities(windows)
    tflite = load_backend(bundle, "tflite", "fp32").probabilities(windows)
    np.testing.assert_allclose(onnx, tflite, atol=1e-4)
    np.testing.assert_allclose(onnx.sum(1), 1.0, atol=1e-5)
    # int8 against fp32 on real windows (what calibration covered): same answers
    real = tone_windows(bundle, tones)
    reference = load_backend(bundle, "onnx", "fp32").probabilities(real)
    for fmt in ("onnx", "tflite"):
        int8 = load_backend(bundle, fmt, "int8").probabilities(real)
        assert np.array_equal(int8.argmax(1), reference.argmax(1)), fmt
        assert np.abs(int8 - reference).max() < 0.1, fmt


def test_default_choice_is_int8_tflite_and_overridable(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert choose_artefact(bundle).name == "tflite-int8"
    assert choose_artefact(bundle, "onnx").name == "onnx-int8"
    assert choose_artefact(bundle, precision="fp32").name == "tflite-fp32"
    backend = load_backend(bundle, threads=2)
    assert backend.runtime == "ai-edge-litert" and backend.precision == "int8"
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        choose_artefact(bundle, "tensorrt")
    with pytest.raises(ConfigError, match="threads"):
        load_backend(bundle, threads=0)


def test_int8_input_is_quantised_with_the_manifest_parameters(bundle_dir):
    bundle = load_bundle(bundle_dir)
    backend = load_backend(bundle, "tflite", "int8")
    assert isinstance(backend, TFLiteBackend)
    q = bundle.artefacts["tflite-int8"].input_quant
    x = np.array([-1.0, 0.0, 1.0, 1e6, -1e6], np.float32)
    expected = np.clip(np.round(x / q.scale) + q.zero_point, -128, 127)
    np.testing.assert_array_equal(backend.quantize_input(x), expected.astype(np.int8))


def test_normalise_and_softmax():
    window = np.array([[-100.0, -20.0], [-30.0, -20.0]], np.float32)
    out = normalise(window, 80.0)
    np.testing.assert_allclose(out, [[-1.0, 1.0], [0.75, 1.0]])
    np.testing.assert_allclose(normalise(np.array([-50.0]), None), [0.0])
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


# --- bundle checks -------------------------------------------------------------------


def test_a_failing_int8_verification_refuses_then_qat_then_allow_regression(
    bundle_dir, tmp_path, monkeypatch, capsys
):
    """Every int8 model "loses" accuracy when the allowed drop is negative: quantize
    refuses to write the bundle; with --qat-epochs it fine-tunes with
    quantisation-aware training first; --allow-regression writes it anyway and
    the manifest says which threshold it overrode."""
    import export.verify
    from export.cli import main as export_main

    monkeypatch.setattr(export.verify, "INT8_MAX_DROP", -1.0)
    run = bundle_dir.parent / "run"
    cache = str(bundle_dir.parent / "cache")
    common = ["quantize", str(run), "--calibration", "64", "--cache", cache]

    refused = tmp_path / "refused"
    assert export_main([*common, "--out", str(refused), "--qat-epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert "verification failed" in err and "tflite-int8 accuracy" in err
    assert "--allow-regression writes the bundle anyway" in err
    assert not refused.exists()

    allowed = tmp_path / "not" / "yet" / "allowed"  # its parents are made
    code = export_main([*common, "--out", str(allowed), "--qat-epochs", "1", "--allow-regression"])
    out = capsys.readouterr().out
    assert code == 0
    assert "quantisation-aware fine-tuning for 1 epochs" in out
    manifest = json.loads((allowed / "manifest.json").read_text())
    assert manifest["artefacts"]["tflite-int8"]["method"].startswith("quantisation-aware")
    assert any(
        name.startswith("tflite-int8") for name in manifest["verification"]["thresholds_overridden"]
    )
    assert load_bundle(allowed).artefact("tflite", "int8").size > 0


def test_qat_runs_when_asked_even_when_int8_verifies(bundle_dir, tmp_path, capsys):
    from export.cli import main as export_main

    run, cache = bundle_dir.parent / "run", str(bundle_dir.parent / "cache")
    out = tmp_path / "qat"
    args = ["quantize", str(run), "--calibration", "64", "--cache", cache, "--out", str(out)]
    assert export_main([*args, "--qat", "--qat-epochs", "1"]) == 0
    assert "--qat: quantisation-aware fine-tuning for 1 epochs" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artefacts"]["tflite-int8"]["method"].startswith("quantisation-aware")


# --- evaluate ---------------------------------------------------------------------------


def test_evaluate_json_has_the_documented_keys(bundle_dir, tones, capsys, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tones, data)
    (data / "low" / "broken.wav").write_bytes(b"RIFF\x00\x00")
    assert (
        cli_main(["evaluate", str(bundle_dir), "--data", str(data), "--layout", "folder", "--json"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "n", "skipped", "backend", "precision", "per_class"} <= set(
        report
    )
    assert report["n"] == 20 and report["accuracy"] >= 0.9
    assert report["backend"] == "tflite" and report["precision"] == "int8"
    assert [s["file"].endswith("broken.wav") for s in report["skipped"]] == [True]
    assert set(report["per_class"]) == {"high", "low"}


def test_evaluate_prints_a_human_report(bundle_dir, tones, capsys):
    assert (
        cli_main(
            [
                "evaluate",
                str(bundle_dir),
                "--data",
                str(tones),
                "--layout",
                "folder",
                "--backend",
                "onnx",
                "--precision",
                "fp32",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "onnxruntime onnx-fp32" in out and "accuracy" in out and "confusion" in out


def test_evaluate_rejects_classes_the_model_does_not_know(bundle_dir, tones, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tones, data)
    shutil.copytree(data / "low", data / "bird")
    assert cli_main(["evaluate", str(bundle_dir), "--data", str(data), "--layout", "folder"]) == 2
    err = capsys.readouterr().err
    assert "['bird'] are not labels of model" in err and err.count("\n") == 1


def test_evaluate_on_a_broken_bundle_is_one_line(tmp_path, tones):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_audio",
            "evaluate",
            str(tmp_path),
            "--data",
            str(tones),
            "--layout",
            "folder",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2 and "no manifest.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_with_no_scorable_clip(bundle_dir, tmp_path):
    from edge_audio.datasets import DatasetIndex, Record
    from edge_audio.evaluate import evaluate

    bad = tmp_path / "low" / "x.wav"
    bad.parent.mkdir()
    write_wav(bad, np.zeros(100), 16000)  # silent and too short
    index = DatasetIndex("folder", tmp_path, [Record(bad, "low", "x")])
    bundle = load_bundle(bundle_dir)
    with pytest.raises(DatasetError, match="no clip could be scored"):
        evaluate(bundle, load_backend(bundle), index)


def test_quantize_without_a_run_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "export", "quantize", str(tmp_path), "--out", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2 and "no config.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_run_config_is_one_line_naming_the_field(bundle_dir, tmp_path, capsys):
    from export.cli import main as export_main
    from export.run_config import RunConfig

    run = tmp_path / "run"
    shutil.copytree(bundle_dir.parent / "run", run)
    good = json.loads((run / "config.json").read_text())

    def quantize_with(config: dict) -> str:
        (run / "config.json").write_text(json.dumps(config))
        assert export_main(["quantize", str(run), "--out", str(tmp_path / "b")]) == 2
        return capsys.readouterr().err

    broken = json.loads(json.dumps(good))
    del broken["model"]["input_shape"]
    assert "config.json has no 'model.input_shape'" in quantize_with(broken)
    broken["model"]["input_shape"] = [98]
    assert "'model.input_shape' must be [frames, mels]" in quantize_with(broken)
    broken["model"]["input_shape"] = good["model"]["input_shape"]
    broken["schema_version"] = 9
    assert "schema version 9 is not one this edge-audio reads" in quantize_with(broken)
    # A run written before config.json had a schema version reads as version 1.
    del broken["schema_version"]
    assert RunConfig.from_dict(broken).schema_version == 1


def test_evaluate_warns_when_it_scores_the_training_data(bundle_dir, tones, tmp_path, capsys):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    trained_on = manifest["training"]["files_digest"]["count"]
    # One file a group here; without a refit, the validation files only chose the
    # epoch, so neither they nor the test files are training data.
    training = manifest["training"]
    held = set(training["test_groups"]) | set(training["validation_groups"])
    assert 0 < trained_on == 20 - len(held)
    args = ["evaluate", str(bundle_dir), "--layout", "folder"]
    assert cli_main([*args, "--data", str(tones)]) == 0
    out = capsys.readouterr().out
    assert f"warning: {trained_on} of 20 scored clips" in out.splitlines()[-1]
    assert cli_main([*args, "--data", str(tones), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["seen_in_training"] == trained_on
    assert "in this model's training data" in captured.err
    # New recordings of the same classes: nothing to warn about.
    fresh = tmp_path / "fresh"
    rng = np.random.default_rng(99)
    for label, freq in (("high", 2500.0), ("low", 300.0)):
        path = fresh / label / "new.wav"
        path.parent.mkdir(parents=True)
        write_wav(path, tone(48000, freq=freq, amp=0.4) + rng.normal(0, 0.01, 48000), 16000)
    assert cli_main([*args, "--data", str(fresh), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["seen_in_training"] == 0 and captured.err == ""
