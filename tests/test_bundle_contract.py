"""The bundle contract on the device side: manifest validation (every broken
field is one clear error), partial bundles, schema 1, the typed manifest's round
trip and `edge-audio pack`. It needs no toolchain: it works on a copy of the
packaged default bundle, so the device lane runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_audio.bundle import BundleError, load_bundle
from edge_audio.cli import main as cli_main
from edge_audio.manifest import Manifest
from edge_audio.shipped import default_model
from edge_audio.stream import StreamConfig


@pytest.fixture(scope="module")
def bundle_dir() -> Path:
    return default_model()


def corrupt(bundle_dir: Path, tmp_path: Path, change) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    change(copy, manifest)
    if manifest is not None:
        (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def set_in(manifest: dict, path: list[str], value) -> None:
    target = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@pytest.mark.parametrize(
    "name, change, fragment",
    [
        (
            "no model file",
            lambda d, m: [p.unlink() for p in d.glob("model.*")],
            "none of its model files is here",
        ),
        (
            "changed file",
            lambda d, m: (d / "model.fp32.onnx").write_bytes(
                (d / "model.fp32.onnx").read_bytes()[:-1] + b"\x00"
            ),
            "sha256 mismatch for model.fp32.onnx",
        ),
        (
            "newer schema",
            lambda d, m: set_in(m, ["schema_version"], 99),
            "newer than this edge-audio",
        ),
        ("no schema", lambda d, m: m.pop("schema_version"), "no integer schema_version"),
        (
            "shape",
            lambda d, m: set_in(m, ["input", "shape"], [1, 1, 50, 40]),
            "does not match the frontend",
        ),
        ("mels", lambda d, m: set_in(m, ["frontend", "n_mels"], 64), "does not match the frontend"),
        (
            "bad frontend",
            lambda d, m: set_in(m, ["frontend", "n_mels"], -3),
            "n_mels must be positive",
        ),
        ("labels", lambda d, m: set_in(m, ["labels"], []), "non-empty list"),
        (
            "format",
            lambda d, m: set_in(m, ["artefacts", "onnx-fp32", "format"], "caffe"),
            "unknown format",
        ),
        (
            "size",
            lambda d, m: set_in(m, ["artefacts", "onnx-fp32", "size"], 5),
            "the manifest says 5",
        ),
        ("no artefacts", lambda d, m: set_in(m, ["artefacts"], {}), "lists no model files"),
        ("window", lambda d, m: m["window"].pop("frames"), "no 'window.frames'"),
        (
            "stride",
            lambda d, m: (m.update(schema_version=2), m["window"].pop("stream_stride_seconds")),
            "no number 'window.stream_stride_seconds'",
        ),
        ("task", lambda d, m: set_in(m, ["task"], "classification"), "does not match"),
        (
            "listed as",
            lambda d, m: set_in(m, ["artefacts", "onnx-fp32", "precision"], "int8"),
            "is listed as onnx-int8",
        ),
        (
            "background",
            lambda d, m: set_in(m, ["background_label"], "_noise_"),
            "not among the labels",
        ),
    ],
)
def test_broken_bundles_are_one_clear_error(bundle_dir, tmp_path, name, change, fragment):
    broken = corrupt(bundle_dir, tmp_path, change)
    with pytest.raises(BundleError) as info:
        load_bundle(broken)
    assert fragment in str(info.value) and str(broken) in str(info.value), name


def test_a_bundle_with_only_the_file_it_runs_loads_and_names_what_was_left(bundle_dir, tmp_path):
    partial = corrupt(
        bundle_dir,
        tmp_path,
        lambda d, m: [p.unlink() for p in d.glob("model.*") if p.name != "model.int8.tflite"],
    )
    bundle = load_bundle(partial)
    assert set(bundle.artefacts) == {"tflite-int8"}
    assert set(bundle.absent) == {"onnx-fp32", "onnx-int8", "tflite-fp32"}
    with pytest.raises(BundleError, match="onnx-fp32 is listed but its file was not copied"):
        bundle.artefact("onnx", "fp32")
    # A file that is present is still checked.
    (partial / "model.int8.tflite").write_bytes(b"\x00" * bundle.artefacts["tflite-int8"].size)
    with pytest.raises(BundleError, match=r"sha256 mismatch for model\.int8\.tflite"):
        load_bundle(partial)


def test_schema_1_bundles_still_load_with_the_old_stride(bundle_dir, tmp_path):
    def as_schema_1(d, m):
        m["schema_version"] = 1
        del m["window"]["stream_stride_seconds"]
        m.pop("task")

    old = load_bundle(corrupt(bundle_dir, tmp_path, as_schema_1))
    assert old.manifest.schema_version == 1
    assert old.manifest.window.stream_stride_seconds == 0.25
    assert StreamConfig.for_bundle(old).stride_s == 0.25
    assert old.labels == load_bundle(bundle_dir).labels


def test_the_manifest_round_trips_through_its_dataclasses(bundle_dir):
    old = json.loads((bundle_dir / "manifest.json").read_text())
    written = Manifest.from_dict(old).to_dict()
    assert written["schema_version"] == 2
    # Reading an older manifest loses nothing it held ...
    if "calibration" in old.get("stream", {}):  # schema 1's name for it
        old["stream"]["chosen_on"] = old["stream"].pop("calibration")
    for key in old.keys() - {"schema_version"}:
        assert written[key] == old[key], key
    # ... and what the dataclasses write reads back the same.
    assert Manifest.from_dict(written).to_dict() == written


def test_pack_keeps_one_runtime_and_the_copy_listens(bundle_dir, tmp_path, capsys):
    out = tmp_path / "board"
    args = ["pack", str(bundle_dir), "--artefact", "tflite-int8", "--out", str(out)]
    assert cli_main(args) == 0
    assert "pip install 'edge-audio[litert]'" in capsys.readouterr().out
    kept = sorted(p.name for p in out.iterdir())
    assert kept == ["card.md", "confusion.png", "manifest.json", "model.int8.tflite"]
    packed = load_bundle(out)
    assert list(packed.artefacts) == ["tflite-int8"] and packed.absent == ()
    assert packed.manifest.labels == load_bundle(bundle_dir).manifest.labels
    assert cli_main(["listen", "--model", str(out), "--demo", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["backend"].startswith("ai-edge-litert tflite-int8")
    assert summary["score"]["f1"] >= 0.9
    # Refuses to overwrite, and names unknown artefacts.
    assert cli_main(args) == 2
    assert "not empty (--force replaces it)" in capsys.readouterr().err
    assert cli_main([*args, "--force"]) == 0
    partial = tmp_path / "partial"
    assert cli_main(["pack", str(out), "--artefact", "onnx-fp32", "--out", str(partial)]) == 2
    assert "onnx-fp32" in capsys.readouterr().err and not partial.exists()


def test_unreadable_manifests(tmp_path, bundle_dir):
    with pytest.raises(BundleError, match="no such folder"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        load_bundle(tmp_path / "empty")
    broken = corrupt(bundle_dir, tmp_path, lambda d, m: None)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(broken)
