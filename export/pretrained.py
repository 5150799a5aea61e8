"""Pretrained audio networks: where their weights are, that they are the right
ones, and the classifier a head on one of them makes.

Weights are never downloaded and never copied into the repository: they are read
from a folder the user points at (`--backbone DIR`), or found by name under

    $EDGE_AUDIO_PRETRAINED (folders separated by the path separator), else
    ~/.cache/edge-audio/pretrained, then ../shared/pretrained (beside the checkout
    or the working directory)

and checked against the sha256 of the release this code was written for.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_audio.errors import EdgeAudioError
from edge_audio.frontend import FrontendConfig

from .presets import EFFICIENTAT_MN04

REPO = Path(__file__).resolve().parents[1]
ENV_VAR = "EDGE_AUDIO_PRETRAINED"


class PretrainedError(EdgeAudioError):
    """A backbone that is missing, unknown or not the expected file."""


@dataclass(frozen=True)
class BackboneSpec:
    name: str  # also the folder name under a search root
    weights: str  # file name inside the folder
    sha256: str
    frontend: FrontendConfig  # the input it was trained on, exactly
    width: float  # EfficientAT width multiplier
    embedding_size: int
    source: str
    licence: str

    def to_record(self) -> dict[str, Any]:
        """What a run config and a bundle's card say about it."""
        return {
            "name": self.name,
            "weights": self.weights,
            "sha256": self.sha256,
            "source": self.source,
            "licence": self.licence,
        }


BACKBONES: dict[str, BackboneSpec] = {
    "efficientat-mn04": BackboneSpec(
        name="efficientat-mn04",
        weights="mn04_as_mAP_432.pt",
        sha256="899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c",
        frontend=EFFICIENTAT_MN04,
        width=0.4,
        embedding_size=384,
        source=(
            "EfficientAT mn04_as (Schmid, Koutini, Widmer, ICASSP 2023), AudioSet mAP 0.432, "
            "github.com/fschmid56/EfficientAT release v0.0.1"
        ),
        licence="MIT, Copyright (c) 2022 Florian Schmid",
    ),
}


@dataclass(frozen=True)
class Located:
    spec: BackboneSpec
    folder: Path

    @property
    def weights(self) -> Path:
        return self.folder / self.spec.weights


def search_roots() -> list[Path]:
    """Where a backbone given by name is looked for, in order."""
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    roots = [Path.home() / ".cache" / "edge-audio" / "pretrained"]
    for shared in (
        REPO.parent / "shared" / "pretrained",
        Path.cwd().parent / "shared" / "pretrained",
    ):
        if shared.resolve() not in [r.resolve() for r in roots]:
            roots.append(shared)
    return roots


def locate(name_or_dir: str | Path) -> Located:
    """A backbone by name or folder, checked by sha256; PretrainedError says why not."""
    given = Path(name_or_dir).expanduser()
    if given.is_dir():
        return _verify(_identify(given))
    name = str(name_or_dir)
    if name not in BACKBONES:
        raise PretrainedError(
            f"unknown backbone {name!r}: give a folder holding a pretrained network's weights, "
            f"or one of {', '.join(BACKBONES)}"
        )
    spec = BACKBONES[name]
    looked = [root / name for root in search_roots()]
    for folder in looked:
        if (folder / spec.weights).is_file():
            return _verify(Located(spec, folder))
    where = "\n  ".join(str(p) for p in looked)
    raise PretrainedError(
        f"backbone {name!r} ({spec.weights}) not found; looked in:\n  {where}\n"
        f"Put its folder in one of them, set ${ENV_VAR}, or pass --backbone DIR."
    )


def _identify(folder: Path) -> Located:
    for spec in BACKBONES.values():
        if (folder / spec.weights).is_file():
            return Located(spec, folder)
    known = ", ".join(f"{s.weights} ({s.name})" for s in BACKBONES.values())
    raise PretrainedError(f"{folder} holds no pretrained network this edge-audio knows ({known})")


def _verify(located: Located) -> Located:
    digest = hashlib.sha256(located.weights.read_bytes()).hexdigest()
    if digest != located.spec.sha256:
        raise PretrainedError(
            f"{located.weights}: sha256 {digest} is not {located.spec.name}'s "
            f"({located.spec.sha256}); the file is damaged or a different release"
        )
    return located


def load_network(located: Located) -> Any:
    """The pretrained tagger, weights loaded, in eval mode."""
    import torch

    from .efficientat import MobileNetV3Audio

    network = MobileNetV3Audio(located.spec.width)
    state = torch.load(located.weights, map_location="cpu", weights_only=True)
    network.load_state_dict(state, strict=True)
    return network.eval()
