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

from .presets import EFFICIENTAT_MN04, SPEECH_EMBEDDING

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
    source: str
    licence: str
    family: str = "efficientat"  # "efficientat" or "speech-embedding": which code defines it
    width: float = 0.4  # EfficientAT width multiplier
    window_s: float | None = None  # the model window it wants (None: the layout's)

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
        source=(
            "EfficientAT mn04_as (Schmid, Koutini, Widmer, ICASSP 2023), AudioSet mAP 0.432, "
            "github.com/fschmid56/EfficientAT release v0.0.1"
        ),
        licence="MIT, Copyright (c) 2022 Florian Schmid",
    ),
    # For spoken keywords: mn04 hears sounds, not phonemes (54% on FSDD leaving
    # one speaker out, against 93.9% for a head on this one).
    "speech-embedding": BackboneSpec(
        name="speech-embedding",
        weights="embedding_model.onnx",
        sha256="70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f",
        frontend=SPEECH_EMBEDDING,
        source=(
            "Google's speech_embedding (tfhub.dev/google/speech_embedding/1), in the ONNX "
            "conversion of the openWakeWord project (github.com/dscripka/openWakeWord)"
        ),
        licence=(
            "Apache-2.0 (Google's speech_embedding; openWakeWord's code is Apache-2.0, while "
            "its own pre-trained models are CC BY-NC-SA 4.0): uncertain, check before "
            "commercial use"
        ),
        family="speech-embedding",
        window_s=1.4,  # a digit and its context, five 0.76 s sub-windows
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


def new_network(spec: BackboneSpec) -> Any:
    """The network `spec` names, with fresh weights: the one place that knows
    which code defines each family."""
    if spec.family == "speech-embedding":
        from .speech_embedding import SpeechEmbedding

        return SpeechEmbedding()
    from .efficientat import MobileNetV3Audio

    return MobileNetV3Audio(spec.width)


def classifier_on(
    spec: BackboneSpec,
    network: Any,
    n_classes: int,
    frames: int,
    stages: int | None = None,
    hidden: int = 0,
) -> Any:
    """A new head on `network` (shared, not copied), in the kit's window layout
    [batch, 1, frames, mels]; `stages` keeps only an EfficientAT tagger's first ones;
    `hidden` units make the head an MLP (export/heads.py)."""
    if spec.family == "speech-embedding":
        from .speech_embedding import SpeechEmbeddingClassifier

        return SpeechEmbeddingClassifier(network, n_classes, frames, hidden)
    from .efficientat import BackboneClassifier

    return BackboneClassifier(network, n_classes, stages, hidden=hidden)


def load_network(located: Located) -> Any:
    """The pretrained network, weights loaded, in eval mode."""
    import torch

    network = new_network(located.spec)
    if located.spec.family == "speech-embedding":
        from .speech_embedding import load_onnx_weights

        try:
            return load_onnx_weights(network, located.weights)
        except ValueError as exc:
            raise PretrainedError(str(exc)) from None
    state = torch.load(located.weights, map_location="cpu", weights_only=True)
    network.load_state_dict(state, strict=True)
    return network.eval()
