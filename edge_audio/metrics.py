"""Classification metrics with NumPy alone (used by training and `evaluate`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """[true class, predicted class] counts."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, int), np.asarray(predicted, int)), 1)
    return matrix


def classification_report(
    truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix.

    Macro averages run over the classes present in `truth`, so a model's extra
    class (e.g. its background class) does not drag the average down."""
    matrix = confusion_matrix(truth, predicted, len(labels))
    tp = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    precision = np.divide(tp, predicted_count, out=np.zeros_like(tp), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    n = int(support.sum())
    return {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
        "confusion": matrix.tolist(),
    }


def format_confusion(matrix: np.ndarray | list, labels: Sequence[str], width: int = 5) -> str:
    """The confusion matrix as aligned text (rows: truth, columns: predicted)."""
    matrix = np.asarray(matrix)
    name_width = max(len(label) for label in labels)
    short = [label[: width - 1] for label in labels]
    lines = [" " * (name_width + 1) + "".join(f"{s:>{width}}" for s in short)]
    for label, row in zip(labels, matrix, strict=True):
        lines.append(f"{label:>{name_width}} " + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
