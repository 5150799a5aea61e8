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


def format_confusion(
    matrix: np.ndarray | list[list[int]], labels: Sequence[str], width: int = 5
) -> str:
    """The confusion matrix as aligned text (rows: truth, columns: predicted).

    Names never get cut: when one is too long for a column, the columns are
    numbered and each row carries its number and full name."""
    matrix = np.asarray(matrix)
    width = max(width, len(str(int(matrix.max()))) + 1 if matrix.size else width)
    name_width = max(len(label) for label in labels)
    if all(len(label) < width for label in labels):
        lines = [" " * (name_width + 1) + "".join(f"{label:>{width}}" for label in labels)]
        rows = [f"{label:>{name_width}} " for label in labels]
    else:
        digits = len(str(len(labels) - 1))
        lead = digits + 1 + name_width + 1
        lines = [" " * lead + "".join(f"{i:>{width}}" for i in range(len(labels)))]
        rows = [f"{i:>{digits}} {label:<{name_width}} " for i, label in enumerate(labels)]
    for row, values in zip(rows, matrix, strict=True):
        lines.append(row + "".join(f"{v:>{width}}" for v in values))
    return "\n".join(lines)
