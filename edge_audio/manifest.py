"""The bundle contract: manifest.json as frozen dataclasses.

Every writer (export's quantize and threshold, `edge-audio pack`) builds
a `Manifest` and calls `to_dict()`; every reader (`load_bundle`) calls
`Manifest.from_dict()`, which validates and raises ManifestError naming the
field. Schema versions:

1. the dict literals of edge-audio 0.1; `window.stream_stride_seconds` was
   optional (0.25 s when absent);
2. the same fields written through this module; the stride is always written,
   artefacts carry `method` when they were quantised, and `stream.calibration`
   is called `stream.chosen_on` (how the threshold was chosen: "calibration"
   now means only the quantisation's representative windows).

A schema-1 manifest reads as schema 2 with the old defaults filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .digest import TrainingDigest
from .errors import EdgeAudioError
from .fields import require
from .frontend import FrontendConfig
from .windows import NORMALISATIONS

SCHEMA_VERSION = 2
OLDEST_SCHEMA = 1
FORMATS = ("onnx", "tflite")
PRECISIONS = ("fp32", "int8")
TASKS = ("detection", "classification")
# Schema 1 did not always write the stride; this was the runtime's default.
SCHEMA1_STRIDE_S = 0.25


class ManifestError(EdgeAudioError, ValueError):
    """A manifest field that is missing, of the wrong type or out of range."""


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    return require(data, key, kind, where, ManifestError, "manifest")


def _section(data: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    return _get(data, key, dict, where)  # type: ignore[no-any-return]


NUMBER = (int, float)


@dataclass(frozen=True)
class WindowSpec:
    """How the network sees time: `frames` of the frontend per window."""

    frames: int
    mode: str  # "keyword" (one centred word) or "segments" (a sliding segment)
    hop_frames: int  # between training windows of one clip
    seconds: float
    hop_seconds: float
    stream_stride_seconds: float  # between windows when listening

    def __post_init__(self) -> None:
        if self.frames < 1 or self.hop_frames < 1:
            raise ManifestError("manifest 'window': frames and hop_frames must be positive")
        if self.seconds <= 0 or self.hop_seconds <= 0 or self.stream_stride_seconds <= 0:
            raise ManifestError("manifest 'window': durations must be positive")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], schema: int) -> WindowSpec:
        w = "window."
        stride = data.get("stream_stride_seconds")
        if stride is None and schema == 1:
            stride = SCHEMA1_STRIDE_S
        if not isinstance(stride, NUMBER) or isinstance(stride, bool):
            raise ManifestError("manifest has no number 'window.stream_stride_seconds'")
        return cls(
            int(_get(data, "frames", int, w)),
            str(_get(data, "mode", str, w)),
            int(_get(data, "hop_frames", int, w)),
            float(_get(data, "seconds", NUMBER, w)),
            float(_get(data, "hop_seconds", NUMBER, w)),
            float(stride),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "mode": self.mode,
            "hop_frames": self.hop_frames,
            "seconds": self.seconds,
            "hop_seconds": self.hop_seconds,
            "stream_stride_seconds": self.stream_stride_seconds,
        }


INPUT_LAYOUT = (
    "[batch, channel, frames, mels]: log-mel dB from the frontend, "
    "then level-normalised (edge_audio.windows.normalise)"
)
INPUT_DTYPE = "float32 (int8 models: quantised with the artefact's input_quant)"
OUTPUT_SEMANTICS = "logits over labels, in label order; softmax gives probabilities"


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]  # [1, 1, frames, mels]
    dynamic_range: float | None  # dB kept below the window's peak; None: no normalisation
    normalisation: str = "peak"
    layout: str = INPUT_LAYOUT
    dtype: str = INPUT_DTYPE

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputSpec:
        shape = _get(data, "shape", list, "input.")
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            raise ManifestError("manifest 'input.shape' must be a list of integers")
        norm = _section(data, "normalisation", "input.")
        dynamic_range = norm.get("dynamic_range")
        if dynamic_range is not None and not (
            isinstance(dynamic_range, NUMBER)
            and not isinstance(dynamic_range, bool)
            and dynamic_range > 0
        ):
            raise ManifestError(f"bad input normalisation dynamic_range {dynamic_range!r}")
        kind = str(norm.get("type", "peak"))
        if kind not in NORMALISATIONS:
            raise ManifestError(
                f"input normalisation type {kind!r} is not one this edge-audio knows "
                f"({', '.join(NORMALISATIONS)})"
            )
        return cls(
            tuple(shape),
            None if dynamic_range is None else float(dynamic_range),
            kind,
            str(data.get("layout", INPUT_LAYOUT)),
            str(data.get("dtype", INPUT_DTYPE)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "layout": self.layout,
            "normalisation": {"type": self.normalisation, "dynamic_range": self.dynamic_range},
            "dtype": self.dtype,
        }


@dataclass(frozen=True)
class Quantization:
    scale: float
    zero_point: int

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Quantization | None:
        if data is None:
            return None
        try:
            return cls(float(data["scale"]), int(data["zero_point"]))
        except (KeyError, TypeError, ValueError):
            raise ManifestError(f"{where} has bad quantisation parameters") from None

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class ArtefactEntry:
    """One model file of the bundle, as the manifest lists it."""

    file: str
    format: str  # "onnx" or "tflite"
    precision: str  # "fp32" or "int8"
    sha256: str
    size: int
    input_quant: Quantization | None = None
    output_quant: Quantization | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    method: str | None = None  # how an int8 model was quantised

    @property
    def key(self) -> str:
        return f"{self.format}-{self.precision}"

    @classmethod
    def from_dict(cls, name: str, data: Any) -> ArtefactEntry:
        if not isinstance(data, dict):
            raise ManifestError(f"artefact {name} must be a JSON object")
        w = f"artefacts.{name}."
        fmt = _get(data, "format", str, w)
        precision = _get(data, "precision", str, w)
        if fmt not in FORMATS or precision not in PRECISIONS:
            raise ManifestError(f"artefact {name} has unknown format/precision {fmt}/{precision}")
        if name != f"{fmt}-{precision}":
            raise ManifestError(f"artefact {name} is listed as {fmt}-{precision}")
        return cls(
            _get(data, "file", str, w),
            fmt,
            precision,
            _get(data, "sha256", str, w),
            int(_get(data, "size", int, w)),
            Quantization.from_dict(data.get("input_quant"), f"artefact {name}"),
            Quantization.from_dict(data.get("output_quant"), f"artefact {name}"),
            dict(data.get("metrics") or {}),
            data.get("method"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "format": self.format,
            "precision": self.precision,
            "sha256": self.sha256,
            "size": self.size,
        }
        if self.input_quant is not None:
            out["input_quant"] = self.input_quant.to_dict()
        if self.output_quant is not None:
            out["output_quant"] = self.output_quant.to_dict()
        if self.metrics:
            out["metrics"] = dict(self.metrics)
        if self.method is not None:
            out["method"] = self.method
        return out


@dataclass(frozen=True)
class StreamSettings:
    """How `listen` decides, chosen by `python -m export threshold`."""

    threshold: float
    smoothing: int = 3
    min_count: int = 2
    suppression_s: float = 1.0
    chosen_on: Mapping[str, Any] | None = None  # how the threshold was chosen

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamSettings:
        w = "stream."
        return cls(
            float(_get(data, "threshold", NUMBER, w)),
            int(data.get("smoothing", 3)),
            int(data.get("min_count", 2)),
            float(data.get("suppression_s", 1.0)),
            data.get("chosen_on", data.get("calibration")),  # schema 1 said "calibration"
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "threshold": self.threshold,
            "smoothing": self.smoothing,
            "min_count": self.min_count,
            "suppression_s": self.suppression_s,
        }
        if self.chosen_on is not None:
            out["chosen_on"] = dict(self.chosen_on)
        return out


@dataclass(frozen=True)
class TrainingRecord:
    """What the model learnt from: the card's and `evaluate`'s source."""

    dataset: str
    layout: str
    clips: int
    groups: tuple[str, ...]
    test_groups: tuple[str, ...]
    validation_groups: tuple[str, ...]
    synthetic_speakers: int = 0
    command: str | None = None
    seed: int | None = None
    final_fit: bool = False
    cross_validation: Mapping[str, Any] | None = None
    files_digest: TrainingDigest | None = None
    # `train --negatives`: the folders, the seed of the split by recording, and the
    # hours in each part (export/negatives.py); `calibrate` reads its part back.
    negatives: Mapping[str, Any] | None = None
    # `train --groups`: the pattern or CSV that declared a folder layout's groups,
    # so the held-out groups can be found again (calibrate, threshold, robustness)
    groups_option: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingRecord:
        w = "training."
        digest = None
        if data.get("files_digest") is not None:
            try:
                digest = TrainingDigest.from_dict(data["files_digest"])
            except ValueError as exc:
                raise ManifestError(f"manifest training.files_digest: {exc}") from None
        return cls(
            str(_get(data, "dataset", str, w)),
            str(_get(data, "layout", str, w)),
            int(data.get("clips", 0)),
            tuple(data.get("groups", ())),
            tuple(data.get("test_groups", ())),
            tuple(data.get("validation_groups", ())),
            int(data.get("synthetic_speakers", 0)),
            data.get("command"),
            data.get("seed"),
            bool(data.get("final_fit", False)),
            data.get("cross_validation"),
            digest,
            data.get("negatives"),
            data.get("groups_option"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "layout": self.layout,
            "clips": self.clips,
            "groups": list(self.groups),
            "test_groups": list(self.test_groups),
            "validation_groups": list(self.validation_groups),
            "synthetic_speakers": self.synthetic_speakers,
            "command": self.command,
            "seed": self.seed,
            "final_fit": self.final_fit,
            "cross_validation": self.cross_validation,
            "files_digest": None if self.files_digest is None else self.files_digest.to_dict(),
        } | (
            ({"negatives": dict(self.negatives)} if self.negatives else {})
            | ({"groups_option": self.groups_option} if self.groups_option else {})
        )


@dataclass(frozen=True)
class Verification:
    """The gates the artefacts passed against the float model."""

    held_out_groups: tuple[str, ...]
    fp32_agreement_needed: float
    int8_max_accuracy_drop: float
    thresholds_overridden: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verification:
        w = "verification."
        return cls(
            tuple(data.get("held_out_groups", ())),
            float(_get(data, "fp32_agreement_needed", NUMBER, w)),
            float(_get(data, "int8_max_accuracy_drop", NUMBER, w)),
            tuple(data.get("thresholds_overridden", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "held_out_groups": list(self.held_out_groups),
            "fp32_agreement_needed": self.fp32_agreement_needed,
            "int8_max_accuracy_drop": self.int8_max_accuracy_drop,
            "thresholds_overridden": list(self.thresholds_overridden),
        }


@dataclass(frozen=True)
class Licence:
    data: str
    attribution: str

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "attribution": self.attribution}


@dataclass(frozen=True)
class Manifest:
    """manifest.json, validated. `model` is the toolchain's description of the
    network (architecture, size, parameters, MACs): read by people and bench,
    never needed to run it, so it stays a mapping."""

    name: str
    labels: tuple[str, ...]
    frontend: FrontendConfig
    window: WindowSpec
    input: InputSpec
    artefacts: Mapping[str, ArtefactEntry]
    background_label: str | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    training: TrainingRecord | None = None
    calibration_windows: int | None = None
    verification: Verification | None = None
    licence: Licence | None = None
    stream: StreamSettings | None = None
    created_by: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.labels or not all(isinstance(label, str) for label in self.labels):
            raise ManifestError("manifest 'labels' must be a non-empty list of names")
        if len(set(self.labels)) != len(self.labels):
            raise ManifestError("manifest 'labels' has a name twice")
        if self.background_label is not None and self.background_label not in self.labels:
            raise ManifestError(
                f"background label {self.background_label!r} is not among the labels"
            )
        if not self.artefacts:
            raise ManifestError("manifest lists no model files")
        expected = (
            1,
            1,
            self.frontend.n_frames(round(self.window.seconds * self.frontend.sample_rate)),
            self.frontend.n_mels,
        )
        if self.input.shape != expected or self.window.frames != expected[2]:
            raise ManifestError(
                f"input shape {list(self.input.shape)} does not match the frontend and window "
                f"(a {self.window.seconds} s window of {self.frontend.n_mels} mels needs "
                f"{list(expected)})"
            )

    @property
    def task(self) -> str:
        """Detection when there is a background class, else classification."""
        return "detection" if self.background_label else "classification"

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError("manifest.json must hold a JSON object")
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ManifestError("manifest has no integer schema_version")
        if version > SCHEMA_VERSION:
            raise ManifestError(
                f"schema version {version} is newer than this edge-audio reads "
                f"({SCHEMA_VERSION}): upgrade edge-audio"
            )
        if version < OLDEST_SCHEMA:
            raise ManifestError(f"unknown schema version {version}")
        labels = _get(data, "labels", list, "")
        if not labels or not all(isinstance(label, str) for label in labels):
            raise ManifestError("manifest 'labels' must be a non-empty list of names")
        try:
            frontend = FrontendConfig.from_dict(_section(data, "frontend"))  # type: ignore[arg-type]
        except EdgeAudioError as exc:
            raise ManifestError(str(exc)) from None
        artefacts = {
            name: ArtefactEntry.from_dict(name, entry)
            for name, entry in _section(data, "artefacts").items()
        }
        training, verification, licence, stream = (
            data.get(key) for key in ("training", "verification", "licence", "stream")
        )
        task = data.get("task")
        background = data.get("background_label")
        if background is not None and background not in labels:
            raise ManifestError(f"background label {background!r} is not among the labels")
        if task is not None and task not in TASKS:
            raise ManifestError(f"manifest 'task' {task!r} is not one of {', '.join(TASKS)}")
        if task is not None and task != ("detection" if background else "classification"):
            raise ManifestError(f"manifest 'task' {task!r} does not match its background label")
        return cls(
            name=str(data.get("name", "")),
            labels=tuple(labels),
            frontend=frontend,
            window=WindowSpec.from_dict(_section(data, "window"), version),
            input=InputSpec.from_dict(_section(data, "input")),
            artefacts=artefacts,
            background_label=background,
            model=dict(data.get("model") or {}),
            training=TrainingRecord.from_dict(training) if isinstance(training, dict) else None,
            calibration_windows=data.get("calibration_windows"),
            verification=(
                Verification.from_dict(verification) if isinstance(verification, dict) else None
            ),
            licence=(
                Licence(str(licence.get("data", "")), str(licence.get("attribution", "")))
                if isinstance(licence, dict)
                else None
            ),
            stream=StreamSettings.from_dict(stream) if isinstance(stream, dict) else None,
            created_by=str(data.get("created_by", "")),
            schema_version=version,
        )

    def to_dict(self) -> dict[str, Any]:
        """The manifest as written: always the current schema version."""
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "created_by": self.created_by,
            "task": self.task,
            "labels": list(self.labels),
            "background_label": self.background_label,
            "frontend": self.frontend.to_dict(),
            "window": self.window.to_dict(),
            "input": self.input.to_dict(),
            "output": {"semantics": OUTPUT_SEMANTICS, "shape": [1, len(self.labels)]},
            "model": dict(self.model),
            "artefacts": {name: entry.to_dict() for name, entry in self.artefacts.items()},
        }
        if self.training is not None:
            out["training"] = self.training.to_dict()
        if self.calibration_windows is not None:
            out["calibration_windows"] = self.calibration_windows
        if self.verification is not None:
            out["verification"] = self.verification.to_dict()
        if self.licence is not None:
            out["licence"] = self.licence.to_dict()
        if self.stream is not None:
            out["stream"] = self.stream.to_dict()
        return out

    def with_stream(self, stream: StreamSettings) -> Manifest:
        return replace(self, stream=stream)

    def only(self, keys: set[str]) -> Manifest:
        """The same manifest listing only these artefacts (a packed bundle)."""
        return replace(self, artefacts={k: v for k, v in self.artefacts.items() if k in keys})
