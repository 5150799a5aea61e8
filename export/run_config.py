"""The training run's contract: config.json as frozen dataclasses.

`train` builds a RunConfig and writes `to_dict()`; `quantize` reads it back with
`RunConfig.from_dict()`, which validates and raises RunConfigError naming the
field. Schema versions:

1. the fields below; runs written before the field existed carry no
   `schema_version` and read as 1.

The descriptive sections (`augmentation`, `training`, `distributed`, `schedule`,
`negatives`)
are recorded for people and reproduction, never read back to decide anything,
so they stay mappings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from edge_audio.errors import EdgeAudioError
from edge_audio.fields import require
from edge_audio.frontend import FrontendConfig

RUN_SCHEMA_VERSION = 1


class RunConfigError(EdgeAudioError, ValueError):
    """A config.json field that is missing or of the wrong type."""


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    return require(data, key, kind, where, RunConfigError, "config.json")


@dataclass(frozen=True)
class ModelRecord:
    name: str  # a zoo architecture, e.g. "dscnn"
    size: str  # e.g. "medium"
    params: int
    macs: int
    int8_bytes_estimate: int
    dynamic_range: float | None
    input_shape: tuple[int, int]  # (frames, mels)
    normalisation: str = "peak"  # "none": a pretrained network takes the frontend's output
    backbone: Mapping[str, Any] | None = None  # the pretrained network a head was trained on

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelRecord:
        w = "model."
        shape = _get(data, "input_shape", list, w)
        if len(shape) != 2 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise RunConfigError("config.json 'model.input_shape' must be [frames, mels]")
        dynamic_range = data.get("dynamic_range")
        return cls(
            _get(data, "name", str, w),
            _get(data, "size", str, w),
            int(data.get("params", 0)),
            int(data.get("macs", 0)),
            int(data.get("int8_bytes_estimate", 0)),
            None if dynamic_range is None else float(dynamic_range),
            (shape[0], shape[1]),
            str(data.get("normalisation", "peak")),
            data.get("backbone"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "params": self.params,
            "macs": self.macs,
            "int8_bytes_estimate": self.int8_bytes_estimate,
            "dynamic_range": self.dynamic_range,
            "input_shape": list(self.input_shape),
            "normalisation": self.normalisation,
            "backbone": None if self.backbone is None else dict(self.backbone),
        }


@dataclass(frozen=True)
class RunWindow:
    frames: int
    mode: str
    hop_frames: int
    seconds: float
    hop_seconds: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunWindow:
        w = "window."
        return cls(
            _get(data, "frames", int, w),
            _get(data, "mode", str, w),
            _get(data, "hop_frames", int, w),
            float(_get(data, "seconds", (int, float), w)),
            float(_get(data, "hop_seconds", (int, float), w)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "mode": self.mode,
            "hop_frames": self.hop_frames,
            "seconds": self.seconds,
            "hop_seconds": self.hop_seconds,
        }


@dataclass(frozen=True)
class DatasetRecord:
    root: str
    layout: str
    clips: int
    groups: tuple[str, ...]
    groups_declared: bool = True
    groups_option: str | None = None
    skipped: int = 0
    folds: tuple[int, ...] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetRecord:
        w = "dataset."
        folds = data.get("folds")
        return cls(
            _get(data, "root", str, w),
            _get(data, "layout", str, w),
            int(_get(data, "clips", int, w)),
            tuple(_get(data, "groups", list, w)),
            bool(data.get("groups_declared", True)),
            data.get("groups_option"),
            int(data.get("skipped", 0)),
            None if folds is None else tuple(folds),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "layout": self.layout,
            "clips": self.clips,
            "groups": list(self.groups),
            "groups_declared": self.groups_declared,
            "groups_option": self.groups_option,
            "skipped": self.skipped,
            "folds": None if self.folds is None else list(self.folds),
        }


@dataclass(frozen=True)
class SplitRecord:
    """Which groups a run's model never trained on."""

    test_groups: tuple[str, ...]
    validation_groups: tuple[str, ...]

    @property
    def final_fit(self) -> bool:
        """Trained on every group: nothing held out to test on."""
        return not self.test_groups

    def to_dict(self) -> dict[str, Any]:
        return {
            "test_groups": list(self.test_groups),
            "validation_groups": list(self.validation_groups),
            "final_fit": self.final_fit,
        }


@dataclass(frozen=True)
class RunConfig:
    model: ModelRecord
    frontend: FrontendConfig
    labels: tuple[str, ...]
    window: RunWindow
    dataset: DatasetRecord
    background_class: str | None = None
    synthetic_speakers: tuple[str, ...] = ()
    seed: int = 0
    augmentation: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    distributed: Mapping[str, Any] = field(default_factory=dict)
    negatives: Mapping[str, Any] = field(default_factory=dict)  # export/negatives.py summary
    command: str | None = None
    # Set when the run is written: the fold it trained, and how it went.
    split: SplitRecord | None = None
    schedule: Mapping[str, Any] | None = None
    best_epoch: int | None = None
    interrupted: bool = False
    schema_version: int = RUN_SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.labels:
            raise RunConfigError("config.json 'labels' is empty")
        if self.background_class is not None and self.background_class not in self.labels:
            raise RunConfigError(
                f"config.json background class {self.background_class!r} is not a label"
            )

    @property
    def test_groups(self) -> tuple[str, ...]:
        return self.split.test_groups if self.split else ()

    def after(
        self,
        split: SplitRecord,
        schedule: Mapping[str, Any] | None,
        best_epoch: int,
        interrupted: bool,
    ) -> RunConfig:
        """This config as written for one trained fold."""
        return replace(
            self, split=split, schedule=schedule, best_epoch=best_epoch, interrupted=interrupted
        )

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        if not isinstance(data, dict):
            raise RunConfigError("config.json must hold a JSON object")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or version > RUN_SCHEMA_VERSION or version < 1:
            raise RunConfigError(
                f"config.json schema version {version!r} is not one this edge-audio reads "
                f"(1-{RUN_SCHEMA_VERSION})"
            )
        try:
            frontend = FrontendConfig.from_dict(_get(data, "frontend", dict, ""))
        except EdgeAudioError as exc:
            raise RunConfigError(f"config.json frontend: {exc}") from None
        split = data.get("split")
        return cls(
            model=ModelRecord.from_dict(_get(data, "model", dict, "")),
            frontend=frontend,
            labels=tuple(_get(data, "labels", list, "")),
            window=RunWindow.from_dict(_get(data, "window", dict, "")),
            dataset=DatasetRecord.from_dict(_get(data, "dataset", dict, "")),
            background_class=data.get("background_class"),
            synthetic_speakers=tuple(data.get("synthetic_speakers") or ()),
            seed=int(data.get("seed") or 0),
            augmentation=dict(data.get("augmentation") or {}),
            training=dict(data.get("training") or {}),
            distributed=dict(data.get("distributed") or {}),
            negatives=dict(data.get("negatives") or {}),
            command=data.get("command"),
            split=(
                SplitRecord(
                    tuple(split.get("test_groups", ())), tuple(split.get("validation_groups", ()))
                )
                if isinstance(split, dict)
                else None
            ),
            schedule=data.get("schedule"),
            best_epoch=data.get("best_epoch"),
            interrupted=bool(data.get("interrupted", False)),
            schema_version=version,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": RUN_SCHEMA_VERSION,
            "model": self.model.to_dict(),
            "frontend": self.frontend.to_dict(),
            "labels": list(self.labels),
            "background_class": self.background_class,
            "window": self.window.to_dict(),
            "dataset": self.dataset.to_dict(),
            "synthetic_speakers": list(self.synthetic_speakers),
            "seed": self.seed,
            "augmentation": dict(self.augmentation),
            "training": dict(self.training),
            "distributed": dict(self.distributed),
            "negatives": dict(self.negatives),
            "command": self.command,
        }
        if self.split is not None:
            out |= {
                "split": self.split.to_dict(),
                "schedule": None if self.schedule is None else dict(self.schedule),
                "best_epoch": self.best_epoch,
                "interrupted": self.interrupted,
            }
        return out
