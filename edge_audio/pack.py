"""Pack a bundle for one runtime: the manifest (listing only that model file),
the file itself and the card. What a board needs, and nothing it does not.

    edge-audio pack fsdd-digits --artefact tflite-int8 --out /media/pi/fsdd
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .bundle import Bundle, BundleError, load_bundle, read_manifest, write_manifest
from .errors import ConfigError

ARTEFACTS = ("tflite-int8", "tflite-fp32", "onnx-int8", "onnx-fp32")
# Which pip extra runs each format on the board.
EXTRA = {"tflite": "litert", "onnx": "onnx"}
CARRIED = ("card.md", "confusion.png")  # for people; never needed to run


def pack(bundle_dir: Path, artefact: str, out: Path, *, force: bool = False) -> Bundle:
    """Write `out` holding only `artefact` of the bundle; returns it, loaded and checked."""
    if artefact not in ARTEFACTS:
        raise ConfigError(f"unknown artefact '{artefact}' (choose from {', '.join(ARTEFACTS)})")
    bundle = load_bundle(bundle_dir)  # checks every file present before copying any
    chosen = bundle.artefact(*artefact.split("-"))
    if out.resolve() == bundle.root.resolve():
        raise ConfigError("--out must be another folder than the bundle")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"{out} exists and is not empty (--force replaces it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(chosen.path, out / chosen.path.name)
    for name in CARRIED:
        if (bundle.root / name).is_file():
            shutil.copy2(bundle.root / name, out / name)
    write_manifest(out, read_manifest(bundle.root).only({artefact}))
    packed = load_bundle(out)
    if set(packed.artefacts) != {artefact}:  # pragma: no cover - a bug, not a user error
        raise BundleError(out, f"packing left {sorted(packed.artefacts)}")
    return packed


def board_install_hint(artefact: str) -> str:
    return f"pip install 'edge-audio[{EXTRA[artefact.split('-')[0]]}]'"
