"""A model bundle: a folder with manifest.json and the model files it lists.

The bundle is self-describing: labels, the frontend config, the window plan,
input layout and quantisation parameters all come from the manifest, so the
runtime needs nothing but the folder. Loading checks it: every listed file is
there with the right sha256, the input shape matches the frontend, and the
schema version is one this runtime understands.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .digest import TrainingDigest
from .errors import EdgeAudioError
from .frontend import FrontendConfig
from .windows import WindowPlan

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ARTEFACT_KINDS = ("onnx", "tflite")
PRECISIONS = ("fp32", "int8")


class BundleError(EdgeAudioError):
    """A bundle that cannot be used; the message names the bundle and the problem."""

    def __init__(self, bundle: str | Path, problem: str) -> None:
        self.bundle = Path(bundle)
        super().__init__(f"bundle {self.bundle}: {problem}")


@dataclass(frozen=True)
class Quantisation:
    scale: float
    zero_point: int


@dataclass(frozen=True)
class Artefact:
    name: str  # e.g. "tflite-int8"
    path: Path
    format: str  # "onnx" or "tflite"
    precision: str  # "fp32" or "int8"
    sha256: str
    size: int
    input_quant: Quantisation | None
    output_quant: Quantisation | None
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict[str, Any]
    labels: list[str]
    frontend: FrontendConfig
    window: WindowPlan
    window_seconds: float
    hop_seconds: float
    input_shape: tuple[int, ...]
    artefacts: dict[str, Artefact]
    background_label: str | None
    task: str  # "detection" (with a background class) or "classification"
    dynamic_range: float | None  # the level normalisation before the network
    training_digest: TrainingDigest | None = None  # the training files, when recorded

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.root.name))

    def artefact(self, fmt: str, precision: str) -> Artefact:
        name = f"{fmt}-{precision}"
        if name not in self.artefacts:
            raise BundleError(
                self.root, f"has no {name} model (it has: {', '.join(self.artefacts)})"
            )
        return self.artefacts[name]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _require(data: dict, key: str, kind: type | tuple[type, ...], root: Path, where: str) -> Any:
    if key not in data:
        raise BundleError(root, f"manifest has no '{key}'{where}")
    value = data[key]
    if not isinstance(value, kind):
        raise BundleError(root, f"manifest '{key}'{where} has the wrong type")
    return value


def _quant(data: Any, root: Path, name: str) -> Quantisation | None:
    if data is None:
        return None
    try:
        return Quantisation(float(data["scale"]), int(data["zero_point"]))
    except (KeyError, TypeError, ValueError):
        raise BundleError(root, f"artefact {name} has bad quantisation parameters") from None


def load_bundle(root: str | Path, *, verify_hashes: bool = True) -> Bundle:
    """Read and check a bundle folder; raises BundleError naming the problem."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(root, "no such folder")
    path = root / MANIFEST
    if not path.is_file():
        raise BundleError(root, f"no {MANIFEST} (is this a model bundle?)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(root, f"{MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise BundleError(root, f"{MANIFEST} must hold a JSON object")

    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(root, "manifest has no integer schema_version")
    if version > SCHEMA_VERSION:
        raise BundleError(
            root,
            f"schema version {version} is newer than this edge-audio reads "
            f"({SCHEMA_VERSION}): upgrade edge-audio",
        )
    if version < 1:
        raise BundleError(root, f"unknown schema version {version}")

    labels = _require(manifest, "labels", list, root, "")
    if not labels or not all(isinstance(label, str) for label in labels):
        raise BundleError(root, "manifest 'labels' must be a non-empty list of names")
    try:
        frontend = FrontendConfig.from_dict(_require(manifest, "frontend", dict, root, ""))
    except EdgeAudioError as exc:
        raise BundleError(root, str(exc)) from None

    window = _require(manifest, "window", dict, root, "")
    try:
        plan = WindowPlan(int(window["frames"]), str(window["mode"]), int(window["hop_frames"]))
        window_seconds, hop_seconds = float(window["seconds"]), float(window["hop_seconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(root, f"manifest 'window' is incomplete or bad: {exc}") from None

    model_input = _require(manifest, "input", dict, root, "")
    shape = tuple(int(d) for d in _require(model_input, "shape", list, root, " in 'input'"))
    norm = _require(model_input, "normalisation", dict, root, " in 'input'")
    dynamic_range = norm.get("dynamic_range")
    if dynamic_range is not None and not (
        isinstance(dynamic_range, (int, float)) and dynamic_range > 0
    ):
        raise BundleError(root, f"bad input normalisation dynamic_range {dynamic_range!r}")
    expected = (
        1,
        1,
        frontend.n_frames(round(window_seconds * frontend.sample_rate)),
        frontend.n_mels,
    )
    if shape != expected or plan.frames != expected[2]:
        raise BundleError(
            root,
            f"input shape {list(shape)} does not match the frontend and window "
            f"(a {window_seconds} s window of {frontend.n_mels} mels needs {list(expected)})",
        )

    artefacts = {}
    listed = _require(manifest, "artefacts", dict, root, "")
    if not listed:
        raise BundleError(root, "manifest lists no model files")
    for name, entry in listed.items():
        artefacts[name] = _artefact(root, name, entry, verify_hashes)

    background = manifest.get("background_label")
    if background is not None and background not in labels:
        raise BundleError(root, f"background label {background!r} is not among the labels")
    task = "detection" if background else "classification"
    digest = None
    training = manifest.get("training")
    if isinstance(training, dict) and training.get("files_digest") is not None:
        try:
            digest = TrainingDigest.from_dict(training["files_digest"])
        except ValueError as exc:
            raise BundleError(root, f"manifest training.files_digest: {exc}") from None
    return Bundle(
        root,
        manifest,
        labels,
        frontend,
        plan,
        window_seconds,
        hop_seconds,
        shape,
        artefacts,
        background,
        str(manifest.get("task", task)),
        None if dynamic_range is None else float(dynamic_range),
        digest,
    )


def _artefact(root: Path, name: str, entry: Any, verify_hashes: bool) -> Artefact:
    if not isinstance(entry, dict):
        raise BundleError(root, f"artefact {name} must be a JSON object")
    where = f" of artefact {name}"
    fmt = _require(entry, "format", str, root, where)
    precision = _require(entry, "precision", str, root, where)
    if fmt not in ARTEFACT_KINDS or precision not in PRECISIONS:
        raise BundleError(root, f"artefact {name} has unknown format/precision {fmt}/{precision}")
    path = root / _require(entry, "file", str, root, where)
    if not path.is_file():
        raise BundleError(root, f"missing file {path.name} (artefact {name})")
    size = path.stat().st_size
    recorded = _require(entry, "sha256", str, root, where)
    if size != entry.get("size", size):
        raise BundleError(root, f"{path.name} is {size} bytes, the manifest says {entry['size']}")
    if verify_hashes and sha256_of(path) != recorded:
        raise BundleError(root, f"sha256 mismatch for {path.name}: the file is corrupt or changed")
    return Artefact(
        name,
        path,
        fmt,
        precision,
        recorded,
        size,
        _quant(entry.get("input_quant"), root, name),
        _quant(entry.get("output_quant"), root, name),
        entry.get("metrics", {}),
    )
