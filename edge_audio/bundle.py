"""A model bundle: a folder with manifest.json and the model files it lists.

The bundle is self-describing: labels, the frontend config, the window plan,
input layout and quantisation parameters all come from the manifest (the typed
contract of edge_audio.manifest), so the runtime needs nothing but the folder.
Loading checks it: the manifest validates, every model file that is present has
the size and sha256 the manifest records, and at least one is present. A bundle
copied to a board with only the file it runs (`edge-audio pack`) loads; asking
for a model file that was left behind names the ones that are there.
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
from .manifest import ArtefactEntry, Manifest, ManifestError, Quantization
from .windows import WindowPlan

MANIFEST = "manifest.json"


class BundleError(EdgeAudioError):
    """A bundle that cannot be used; the message names the bundle and the problem."""

    def __init__(self, bundle: str | Path, problem: str) -> None:
        self.bundle = Path(bundle)
        super().__init__(f"bundle {self.bundle}: {problem}")


@dataclass(frozen=True)
class Artefact:
    """A model file that is here, checked, ready for a backend."""

    name: str  # e.g. "tflite-int8"
    path: Path
    format: str  # "onnx" or "tflite"
    precision: str  # "fp32" or "int8"
    sha256: str
    size: int
    input_quant: Quantization | None
    output_quant: Quantization | None
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: Manifest
    artefacts: dict[str, Artefact]  # the model files present in the folder
    absent: tuple[str, ...] = ()  # listed in the manifest, not copied here

    @property
    def name(self) -> str:
        return self.manifest.name or self.root.name

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    @property
    def frontend(self) -> FrontendConfig:
        return self.manifest.frontend

    @property
    def window(self) -> WindowPlan:
        w = self.manifest.window
        return WindowPlan.for_frontend(w.frames, w.mode, w.hop_frames, self.frontend)

    @property
    def window_seconds(self) -> float:
        return self.manifest.window.seconds

    @property
    def hop_seconds(self) -> float:
        return self.manifest.window.hop_seconds

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.manifest.input.shape

    @property
    def background_label(self) -> str | None:
        return self.manifest.background_label

    @property
    def task(self) -> str:
        """ "detection" (with a background class) or "classification"."""
        return self.manifest.task

    @property
    def dynamic_range(self) -> float | None:
        """The level normalisation before the network."""
        return self.manifest.input.dynamic_range

    @property
    def normalisation(self) -> str:
        """ "peak" (edge_audio.windows.normalise) or "none" (a pretrained network's
        input, scaled by the frontend itself)."""
        return self.manifest.input.normalisation

    @property
    def training_digest(self) -> TrainingDigest | None:
        training = self.manifest.training
        return None if training is None else training.files_digest

    def artefact(self, fmt: str, precision: str) -> Artefact:
        name = f"{fmt}-{precision}"
        if name not in self.artefacts:
            left = (
                f"; {name} is listed but its file was not copied here"
                if name in self.absent
                else ""
            )
            raise BundleError(
                self.root, f"has no {name} model (it has: {', '.join(self.artefacts)}){left}"
            )
        return self.artefacts[name]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(root: str | Path) -> Manifest:
    """The validated manifest of a bundle folder; BundleError names the problem."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(root, "no such folder")
    path = root / MANIFEST
    if not path.is_file():
        raise BundleError(root, f"no {MANIFEST} (is this a model bundle?)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(root, f"{MANIFEST} is not valid JSON: {exc}") from None
    try:
        return Manifest.from_dict(data)
    except ManifestError as exc:
        raise BundleError(root, str(exc)) from None


def write_manifest(root: str | Path, manifest: Manifest) -> Path:
    path = Path(root) / MANIFEST
    path.write_text(json.dumps(manifest.to_dict(), indent=2))
    return path


def load_bundle(root: str | Path, *, verify_hashes: bool = True) -> Bundle:
    """Read and check a bundle folder; raises BundleError naming the problem."""
    root = Path(root)
    manifest = read_manifest(root)
    artefacts: dict[str, Artefact] = {}
    absent = []
    for name, entry in manifest.artefacts.items():
        path = root / entry.file
        if path.is_file():
            artefacts[name] = _checked(root, name, entry, path, verify_hashes)
        else:
            absent.append(name)
    if not artefacts:
        listed = ", ".join(f"{e.file} ({n})" for n, e in manifest.artefacts.items())
        raise BundleError(root, f"none of its model files is here (the manifest lists {listed})")
    return Bundle(root, manifest, artefacts, tuple(absent))


def _checked(root: Path, name: str, entry: ArtefactEntry, path: Path, verify: bool) -> Artefact:
    size = path.stat().st_size
    if size != entry.size:
        raise BundleError(root, f"{path.name} is {size} bytes, the manifest says {entry.size}")
    if verify and sha256_of(path) != entry.sha256:
        raise BundleError(root, f"sha256 mismatch for {path.name}: the file is corrupt or changed")
    return Artefact(
        name,
        path,
        entry.format,
        entry.precision,
        entry.sha256,
        size,
        entry.input_quant,
        entry.output_quant,
        dict(entry.metrics),
    )
