"""Writing a run: model, config, metrics and plots of one fold, and the
cross-validation summary over folds."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.datasets import NO_GROUPS_NOTE, describe_groups
from edge_audio.errors import DatasetError
from edge_audio.metrics import classification_report, format_confusion

from . import checks
from .checks import Check
from .data import (
    BACKGROUND,
    ClipSet,
    Split,
)
from .fit import FitResult, Log
from .folds import Fold
from .material import Material
from .run_config import RunConfig, SplitRecord
from .schedule import Schedule


@dataclass
class FoldResult:
    fold: Fold
    state: dict
    history: list[dict]
    best_epoch: int
    interrupted: bool
    metrics: dict[str, Any]
    baseline: dict[str, Any]
    seconds: float
    schedule: Schedule | None = None
    checks: list[Check] = field(default_factory=list)


def run_baseline(clips: ClipSet, split: Split) -> dict[str, Any]:
    from .baseline import LogisticBaseline, pooled_stats

    stats = np.stack([pooled_stats(c.features) for c in clips.clips])
    labels = clips.label_ids()
    model = LogisticBaseline().fit(stats[split.train], labels[split.train], len(clips.labels))
    report = classification_report(
        labels[split.test], model.predict(stats[split.test]), clips.labels
    )
    return {
        "model": "logistic regression on pooled log-mel and MFCC mean/std",
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
    }


def fold_checks(
    material: Material,
    combined: ClipSet,
    split: Split,
    first: FitResult,
    metrics: dict[str, Any],
    baseline: dict[str, Any] | None,
) -> list[Check]:
    """The post-training checks of one fold (see export/checks.py)."""
    real_train = Counter(
        combined.clips[i].label
        for i in split.train
        if not combined.clips[i].synthetic and combined.clips[i].label != BACKGROUND
    )
    return checks.collect(
        checks.below_baseline(metrics["test"]["accuracy"], baseline["accuracy"])
        if baseline and metrics["test"]["n"]
        else None,
        checks.underfitting(metrics["train"]["accuracy"]),
        checks.still_improving([h["val_acc"] for h in first.history], first.stopped_early)
        if split.validation
        else None,
        checks.few_clips({label: real_train.get(label, 0) for label in material.clips.labels}),
        None if material.groups_declared else checks.no_groups(NO_GROUPS_NOTE),
    )


def write_run(
    out: Path,
    result: FoldResult,
    config: RunConfig,
    log: Log,
    estimate: dict[str, Any] | None = None,
) -> None:
    """A run directory. `estimate`: a final fit's cross-validated figures, which
    stand in for the held-out test it does not have."""
    import torch

    from .report import plot_confusion, plot_curves

    out.mkdir(parents=True, exist_ok=True)
    torch.save(result.state, out / "checkpoint.pt")
    written = config.after(
        SplitRecord(tuple(result.fold.test_groups), tuple(result.fold.validation_groups)),
        result.schedule.to_dict() if result.schedule else None,
        result.best_epoch,
        result.interrupted,
    )
    (out / "config.json").write_text(json.dumps(written.to_dict(), indent=2))
    metrics = {
        **result.metrics,
        "baseline": result.baseline,
        "seconds": round(result.seconds, 1),
        "best_epoch": result.best_epoch,
        "interrupted": result.interrupted,
        "checks": [c.to_dict() for c in result.checks],
    }
    if estimate:
        metrics["estimate"] = estimate
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with (out / "history.csv").open("w", newline="") as f:
        if result.history:
            writer = csv.DictWriter(f, fieldnames=list(result.history[0]))
            writer.writeheader()
            writer.writerows(result.history)
    name = f"{config.model.name}-{config.model.size}"
    test = result.metrics["test"]
    if test["n"]:
        title = (
            f"{name}, held out {describe_groups(result.fold.test_groups)}: "
            f"accuracy {100 * test['accuracy']:.1f}%"
        )
        confusion, labels = test["confusion"], test["labels"]
    elif estimate:  # a final fit: the pooled confusion of the cross-validation
        title = (
            f"{name}, cross-validated over {len(estimate['folds'])} folds: "
            f"accuracy {100 * estimate['accuracy']['mean']:.1f}%"
        )
        confusion, labels = estimate["confusion"], estimate["labels"]
    else:
        confusion = None
    if confusion is not None:
        plot_confusion(confusion, labels, title, out / "confusion.png")
        log(format_confusion(confusion, labels))
    if result.history:
        plot_curves(
            result.history,
            f"{name} on {config.dataset.layout}",
            out / "curves.png",
            result.best_epoch,
        )
    log.write(out / "train.log")


def final_epochs(results: list[FoldResult]) -> int:
    """How long a final fit trains: the median of the folds' best epochs."""
    best = [r.best_epoch for r in results if r.best_epoch > 0]
    if not best:
        raise DatasetError("no fold kept a best epoch, so a final fit has no epoch count")
    return max(1, round(float(np.median(best))))


def merge_checks(results: list[FoldResult]) -> list[Check]:
    """One warning per kind over the folds, naming the folds it fired in."""
    by_code: dict[str, list[tuple[str, Check]]] = {}
    for r in results:
        for c in r.checks:
            by_code.setdefault(c.code, []).append((r.fold.name, c))
    merged = []
    for code, hits in by_code.items():
        names = ", ".join(name for name, _ in hits)
        first = hits[0][1].message
        where = "" if len(hits) == len(results) == 1 else f"in fold(s) {names}: "
        merged.append(Check(code, f"{where}{first}"))
    return merged


def write_cv_summary(
    out: Path, results: list[FoldResult], config: RunConfig, log: Log
) -> dict[str, Any]:
    accs = np.array([r.metrics["test"]["accuracy"] for r in results])
    f1s = np.array([r.metrics["test"]["macro_f1"] for r in results])
    base = np.array([r.baseline["accuracy"] for r in results])
    # Long clips are also scored window by window ("segments"): the harder figure.
    segments = [
        r.metrics["test_segments"]["accuracy"] for r in results if "test_segments" in r.metrics
    ]
    summary: dict[str, Any] = {
        "folds": [
            {
                "name": r.fold.name,
                "test_groups": r.fold.test_groups,
                "accuracy": r.metrics["test"]["accuracy"],
                "macro_f1": r.metrics["test"]["macro_f1"],
                "baseline_accuracy": r.baseline["accuracy"],
                "segment_accuracy": r.metrics.get("test_segments", {}).get("accuracy"),
                "best_epoch": r.best_epoch,
                "seconds": round(r.seconds, 1),
            }
            for r in results
        ],
        "accuracy": {
            "mean": float(accs.mean()),
            "std": float(accs.std()),
            "min": float(accs.min()),
            "max": float(accs.max()),
        },
        "macro_f1": {"mean": float(f1s.mean()), "std": float(f1s.std())},
        "baseline_accuracy": {"mean": float(base.mean()), "std": float(base.std())},
        "labels": results[0].metrics["test"]["labels"],
        "confusion": np.sum([r.metrics["test"]["confusion"] for r in results], axis=0).tolist(),
        "checks": [c.to_dict() for c in merge_checks(results)],
        "model": config.model.to_dict(),
    }
    if len(segments) == len(results):
        seg = np.array(segments)
        summary["segment_accuracy"] = {
            "mean": float(seg.mean()),
            "std": float(seg.std()),
            "min": float(seg.min()),
        }
    out.mkdir(parents=True, exist_ok=True)
    (out / "cv.json").write_text(json.dumps(summary, indent=2))
    log("| held out | accuracy | segments | macro-F1 | baseline | best epoch | seconds |")
    log("|---|---|---|---|---|---|---|")
    for f in summary["folds"]:
        seg = f["segment_accuracy"]
        log(
            f"| {f['name']} | {100 * f['accuracy']:.1f}% | "
            f"{'-' if seg is None else f'{100 * seg:.1f}%'} | {100 * f['macro_f1']:.1f}% | "
            f"{100 * f['baseline_accuracy']:.1f}% | {f['best_epoch']} | {f['seconds']:.0f} |"
        )
    a = summary["accuracy"]
    log(
        f"cross-validated accuracy {100 * a['mean']:.1f}% +- {100 * a['std']:.1f} "
        f"(min {100 * a['min']:.1f}%), baseline {100 * summary['baseline_accuracy']['mean']:.1f}%"
    )
    if "segment_accuracy" in summary:
        g = summary["segment_accuracy"]
        log(
            f"cross-validated segment accuracy {100 * g['mean']:.1f}% +- {100 * g['std']:.1f} "
            f"(min {100 * g['min']:.1f}%)"
        )
    return summary
