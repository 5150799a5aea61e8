"""Plots for a run directory: the confusion matrix and the learning curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str, path: Path
) -> None:
    """Row-normalised confusion matrix with counts, class names on both axes."""
    plt = _pyplot()
    counts = np.asarray(matrix)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    n = len(labels)
    size = min(4 + 0.28 * n, 20)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(
        range(n),
        labels,
        rotation=90 if n > 12 else 45,
        ha="center" if n > 12 else "right",
        fontsize=8 if n > 20 else 10,
    )
    ax.set_yticks(range(n), labels, fontsize=8 if n > 20 else 10)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(
                        j,
                        i,
                        str(counts[i, j]),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black",
                    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history: list[dict], title: str, path: Path, best_epoch: int | None = None) -> None:
    """Loss and accuracy per epoch, train and validation."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    left.plot(epochs, [h["val_loss"] for h in history], "s-", label="validation")
    left.set_xlabel("epoch")
    left.set_ylabel("cross-entropy loss")
    left.set_title("loss")
    right.plot(epochs, [100 * h["train_acc"] for h in history], "o-", label="train")
    right.plot(epochs, [100 * h["val_acc"] for h in history], "s-", label="validation")
    right.set_xlabel("epoch")
    right.set_ylabel("window accuracy (%)")
    right.set_title("accuracy")
    for ax in (left, right):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best (epoch {best_epoch})")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
