"""Where the shipped bundles and the demo recording live.

The default bundle and the demo recording are package data: they travel inside
the wheel and are found through importlib.resources, so `pip install edge-audio`
and `edge-audio listen --demo` work from any folder. The other shipped bundles
stay in the repository's models/ folder; a checkout finds them by path, and the
list of shipped models is read from their manifests, never written out by hand.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .bundle import MANIFEST
from .errors import EdgeAudioError

DEFAULT_MODEL_NAME = "fsdd-digits"
# models/ of a checkout: beside the package folder. A wheel install has none.
REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


def packaged_dir() -> Path:
    """The package-data folder; a real folder, since bundles are opened by path."""
    root = files("edge_audio") / "bundled"
    if not isinstance(root, Path) or not root.is_dir():
        raise EdgeAudioError(
            f"edge-audio's package data is not a folder on disk ({root}); "
            "install edge-audio unzipped (pip installs wheels unzipped)"
        )
    return root


def default_model() -> Path:
    """The bundle every device command uses when no model is given."""
    return packaged_dir() / DEFAULT_MODEL_NAME


def demo_recording() -> Path:
    """A synthesised recording of spoken digits between room noises."""
    return packaged_dir() / "demo" / "digits.wav"


def demo_truth() -> Path:
    """The demo's ground truth: start,end,label per spoken digit."""
    return packaged_dir() / "demo" / "digits.truth.csv"


def shipped_models() -> dict[str, Path]:
    """Every shipped bundle by name: the packaged default, then models/*/ of a checkout."""
    found = {DEFAULT_MODEL_NAME: default_model()}
    if REPO_MODELS.is_dir():
        for manifest in sorted(REPO_MODELS.glob(f"*/{MANIFEST}")):
            found.setdefault(manifest.parent.name, manifest.parent)
    return found


def resolve_model(model: str | Path | None) -> Path:
    """A bundle folder from a path, a shipped model's name, or None for the default.

    A path that exists wins over a name, so a local folder called "esc50" is used
    as given.
    """
    if model is None:
        return default_model()
    path = Path(model)
    if path.exists() or len(path.parts) != 1:
        return path
    return shipped_models().get(str(model), path)
