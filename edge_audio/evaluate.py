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
from .digest import file_key
from .errors import AudioFileError, DatasetError
from .frontend import LogMel
from .metrics import classification_report


@dataclass
class Evaluation:
    report: dict[str, Any]
    skipped: list[Skipped] = field(default_factory=list)
    seconds_of_audio: float = 0.0
    # Scored clips whose bytes were in the bundle's training data (None: the
    # bundle records no digest of its training files, so it cannot tell).
    seen_in_training: int | None = None

    def overlap_warning(self) -> str | None:
        """A warning when the figures are (partly) about the training data."""
        if not self.seen_in_training:
            return None
        n = self.report["n"]
        share = self.seen_in_training / max(n, 1)
        return (
            f"warning: {self.seen_in_training} of {n} scored clips ({100 * share:.0f}%) were "
            "in this model's training data, so these figures overstate how it does on new "
            "recordings; score held-out speakers, folds or recordings instead"
        )


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
    windows = bundle.window.clip_windows(features)
    return np.asarray(backend.probabilities(windows).mean(axis=0))


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
    digest = bundle.training_digest
    seen = 0
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
        if digest is not None and digest.contains(file_key(record.path)):
            seen += 1
        truth.append(label_index[record.label])
        predicted.append(int(np.argmax(probs)))
    if not truth:
        raise DatasetError(f"{index.root}: no clip could be scored")
    report = classification_report(np.array(truth), np.array(predicted), bundle.labels)
    return Evaluation(report, skipped, seconds, None if digest is None else seen)
