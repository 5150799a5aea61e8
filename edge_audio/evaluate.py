"""Score a bundle on a labelled dataset through the device path: audio I/O, the
frontend, the bundle's window plan and a backend. A clip longer than the model
window is scored by the mean of its windows' probabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio import load_audio
from .backends import Backend
from .bundle import Bundle
from .datasets import DatasetIndex, Skipped
from .errors import AudioFileError, DatasetError
from .frontend import LogMel
from .metrics import classification_report


@dataclass
class Evaluation:
    report: dict[str, Any]
    skipped: list[Skipped] = field(default_factory=list)
    seconds_of_audio: float = 0.0


def check_labels(bundle: Bundle, index: DatasetIndex) -> None:
    """Dataset classes must be model labels (matched by name)."""
    unknown = sorted(set(index.labels) - set(bundle.labels))
    if unknown:
        raise DatasetError(
            f"dataset class(es) {unknown} are not labels of model {bundle.name} "
            f"(it knows: {', '.join(bundle.labels)})"
        )


def clip_probabilities(
    samples: np.ndarray, bundle: Bundle, frontend: LogMel, backend: Backend
) -> np.ndarray:
    features = frontend(samples)
    if features.shape[0] == 0:
        raise ValueError("shorter than one analysis window")
    return backend.probabilities(bundle.window.clip_windows(features)).mean(axis=0)


def evaluate(
    bundle: Bundle,
    backend: Backend,
    index: DatasetIndex,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    check_labels(bundle, index)
    frontend = LogMel(bundle.frontend)
    label_index = {label: i for i, label in enumerate(bundle.labels)}
    truth, predicted, skipped = [], [], list(index.skipped)
    seconds = 0.0
    for n, record in enumerate(index.records):
        if progress:
            progress(n, len(index.records))
        try:
            samples, rate = load_audio(record.path, bundle.frontend.sample_rate)
            probs = clip_probabilities(samples, bundle, frontend, backend)
        except AudioFileError as exc:
            skipped.append(Skipped(record.path, exc.reason))
            continue
        except ValueError as exc:
            skipped.append(Skipped(record.path, str(exc)))
            continue
        seconds += samples.size / rate
        truth.append(label_index[record.label])
        predicted.append(int(np.argmax(probs)))
    if not truth:
        raise DatasetError(f"{index.root}: no clip could be scored")
    report = classification_report(np.array(truth), np.array(predicted), bundle.labels)
    return Evaluation(report, skipped, seconds)
