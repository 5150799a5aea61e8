"""`edge-audio train` / `python -m export train`: train a compact CNN on a dataset.

    python -m export train --data ../shared/data/fsdd --layout fsdd --out runs/fsdd
    python -m export train --data ../shared/data/fsdd --layout fsdd --out runs/fsdd-cv --cv

The run directory gets checkpoint.pt, config.json, metrics.json, confusion.png,
curves.png, history.csv and train.log. With --cv, one such folder per held-out
group and cv.json with the mean and spread.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.datasets import LAYOUTS, scan
from edge_audio.errors import ConfigError, DatasetError, MissingDependencyError
from edge_audio.metrics import classification_report, format_confusion
from edge_audio.windows import normalise

from .augment import AugmentConfig, augment_batch, mixup
from .data import (
    BACKGROUND,
    Clip,
    ClipSet,
    FeatureCache,
    Split,
    WindowPlan,
    background_clips,
    group_split,
    index_windows,
    load_clips,
    make_batch,
    noise_bank,
)
from .presets import PRESETS, Preset

# Few groups (speakers, folds): hold out whole groups one at a time.
# Many groups (one per recording): k folds of groups, stratified by label.
FEW_GROUPS = 10
K_FOLDS = 5


@dataclass
class Fold:
    name: str
    test_groups: list[str]
    validation_groups: list[str]


class Log:
    """Prints and keeps a copy for train.log."""

    def __init__(self, quiet: bool = False) -> None:
        self.lines: list[str] = []
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        self.lines.append(message)
        if not self.quiet:
            print(message, flush=True)

    def write(self, path: Path) -> None:
        path.write_text("\n".join(self.lines) + "\n")


def require_torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "train", "training") from None
    return torch


# --- folds ----------------------------------------------------------------------


def group_folds(clips: ClipSet, seed: int) -> list[list[str]]:
    """Real groups partitioned into folds: one group a fold when there are few,
    otherwise K_FOLDS folds stratified by each group's majority label."""
    groups = sorted({c.group for c in clips.clips if not c.synthetic})
    if len(groups) <= FEW_GROUPS:
        return [[g] for g in groups]
    label_of: dict[str, Counter] = {}
    for clip in clips.clips:
        if not clip.synthetic:
            label_of.setdefault(clip.group, Counter())[clip.label] += 1
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(K_FOLDS)]
    by_label: dict[str, list[str]] = {}
    for g in groups:
        by_label.setdefault(label_of[g].most_common(1)[0][0], []).append(g)
    offset = 0
    for label in sorted(by_label):
        members = list(rng.permutation(by_label[label]))
        for i, g in enumerate(members):
            folds[(i + offset) % K_FOLDS].append(str(g))
        offset += len(members)
    return [sorted(f) for f in folds if f]


def plan_folds(
    clips: ClipSet, holdout: list[str] | None, val: list[str] | None, cv: bool, seed: int
) -> list[Fold]:
    folds = group_folds(clips, seed)
    if len(folds) < 3:
        raise DatasetError(
            f"{len(folds)} group(s) are too few for a group-aware split (need 3: train, "
            "validation, test); groups are speakers, folds or recordings"
        )

    def fold_for(i: int) -> Fold:
        test = folds[i]
        validation = val or folds[(i - 1) % len(folds)]
        name = test[0] if len(test) == 1 else f"fold{i + 1}"
        return Fold(name, test, validation)

    if cv:
        return [fold_for(i) for i in range(len(folds))]
    if holdout:
        known = {g for f in folds for g in f}
        unknown = sorted(set(holdout) - known)
        if unknown:
            raise DatasetError(
                f"--holdout-group {unknown} not in the data; groups: {sorted(known)}"
            )
        rest = [f for f in folds if not set(f) & set(holdout)]
        validation = val or rest[-1]
        return [Fold("-".join(holdout), holdout, validation)]
    return [fold_for(len(folds) - 1)]  # default: the last fold is the test set


# --- synthetic speakers and background --------------------------------------------


def words_for(labels: list[str], layout: str) -> dict[str, str] | None:
    """What to say for each label, for synthetic speakers (None: not a word task)."""
    from .synth import DIGIT_WORDS

    if layout == "fsdd":
        return {label: DIGIT_WORDS[int(label)] for label in labels if label.isdigit()}
    if layout == "speech-commands":
        return {label: label for label in labels}
    return None


def synthetic_speakers(
    clips: ClipSet, layout: str, count: int, cache: FeatureCache, seed: int, log: Log
) -> tuple[list[Clip], list[str]]:
    """Training-only speakers spoken by espeak-ng voices (never the demo's voices):
    more voices is what makes a keyword model hear the word rather than the speaker."""
    from .synth import DEMO_VOICE_KEYS, have_espeak, speak_cached, voices

    words = words_for(clips.labels, layout)
    if not count or not words:
        return [], []
    if not have_espeak():
        log(
            "note: espeak-ng is not installed, so no synthetic speakers are added "
            "(apt install espeak-ng)"
        )
        return [], []
    rng = np.random.default_rng(seed + 1000)
    chosen = voices(rng, count, exclude=set(DEMO_VOICE_KEYS))
    out = []
    for voice in _progress(chosen, "synthetic speakers", "voice"):
        for label, word in words.items():
            samples = speak_cached(word, voice, cache.config.sample_rate, cache.dir.parent)
            feats = cache.features_of(samples, "synth")
            out.append(
                Clip(
                    feats,
                    label,
                    f"synth:{voice.name}",
                    f"espeak:{voice.name}:{word}",
                    synthetic=True,
                )
            )
    return out, [v.name for v in chosen]


def non_target_speech(
    labels: list[str], layout: str, cache: FeatureCache, count: int, seed: int
) -> list[np.ndarray]:
    """Spoken words that are not classes: the background class's 'speech, but no keyword'."""
    from .synth import DEMO_VOICE_KEYS, NON_TARGET_WORDS, have_espeak, speak_cached, voices

    words = words_for(labels, layout)
    if not count or words is None or not have_espeak():
        return []
    said = set(words.values())
    candidates = [w for w in NON_TARGET_WORDS if w not in said]
    rng = np.random.default_rng(seed + 2000)
    chosen = voices(rng, max(1, count // len(candidates) + 1), exclude=set(DEMO_VOICE_KEYS))
    audio = [
        speak_cached(w, v, cache.config.sample_rate, cache.dir.parent)
        for v in chosen
        for w in candidates
    ]
    return audio[:count]


def _progress(items, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, leave=False, disable=None)


# --- training ---------------------------------------------------------------------


@dataclass
class TrainSettings:
    model: str
    size: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    label_smoothing: float
    patience: int
    schedule: str
    seed: int
    augment: AugmentConfig
    mixup: float
    dynamic_range: float | None
    threads: int
    refit: bool = False


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


def run_model(model, batch: np.ndarray):
    """Windows [B, frames, mels] in dB -> logits: the device's level normalisation
    (edge_audio.windows.normalise), then the network."""
    import torch

    return model(torch.from_numpy(normalise(batch, model.dynamic_range)[:, None]))


def window_probabilities(
    model,
    clips: ClipSet,
    windows: np.ndarray,
    plan: WindowPlan,
    batch_size: int = 256,
) -> np.ndarray:
    """Probabilities of each window on its own [len(windows), classes]."""
    import torch

    probs = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            batch = make_batch(clips, windows[i : i + batch_size], plan)
            logits = run_model(model, batch)
            probs.append(torch.softmax(logits, dim=1).numpy())
    return np.concatenate(probs) if probs else np.zeros((0, len(clips.labels)))


def clip_probabilities(
    model,
    clips: ClipSet,
    members: list[int],
    plan: WindowPlan,
    batch_size: int = 256,
) -> np.ndarray:
    """Mean window probabilities per clip [len(members), classes]."""
    windows = index_windows(clips, members, plan)
    window_probs = window_probabilities(model, clips, windows, plan, batch_size)
    out = np.zeros((len(members), len(clips.labels)))
    counts = np.zeros(len(members))
    position = {clip: row for row, clip in enumerate(members)}
    for (ci, _), p in zip(windows, window_probs, strict=True):
        out[position[int(ci)]] += p
        counts[position[int(ci)]] += 1
    return out / counts[:, None]


def evaluate_clips(model, clips: ClipSet, members: list[int], plan: WindowPlan) -> dict:
    if not members:
        return classification_report(np.array([], int), np.array([], int), clips.labels)
    probs = clip_probabilities(model, clips, members, plan)
    truth = clips.label_ids()[members]
    return classification_report(truth, probs.argmax(1), clips.labels)


def fit(
    clips: ClipSet,
    split: Split,
    plan: WindowPlan,
    settings: TrainSettings,
    bank: list[np.ndarray],
    log: Log,
    title: str,
):
    """Train with early stopping on validation accuracy; returns the best model."""
    import torch

    from .zoo import ModelSpec, build_model

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    n_classes = len(clips.labels)
    mels = clips.clips[0].features.shape[1]
    model = build_model(ModelSpec(settings.model, settings.size, n_classes, (plan.frames, mels)))
    model.dynamic_range = settings.dynamic_range  # read by run_model
    train_windows = index_windows(clips, split.train, plan)
    val_windows = index_windows(clips, split.validation, plan)
    labels = clips.label_ids()
    train_targets = labels[train_windows[:, 0]]
    counts = np.bincount(train_targets, minlength=n_classes).astype(float)
    weights = None
    if counts.min() > 0 and counts.max() / counts.min() > 1.5:  # imbalanced: reweight
        weights = torch.tensor(counts.sum() / (n_classes * counts), dtype=torch.float32)
        log(
            f"classes are imbalanced ({int(counts.min())} to {int(counts.max())} windows): "
            "weighting the loss"
        )
    steps = max(1, math.ceil(len(train_windows) / settings.batch_size))
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    if settings.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=settings.lr, total_steps=settings.epochs * steps, pct_start=0.15
        )
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.epochs * steps)
    shift = plan.frames // 4 if settings.augment.shift else 0

    def loss_fn(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        eps = settings.label_smoothing
        soft = soft * (1 - eps) + eps / n_classes
        per_class = -torch.log_softmax(logits, dim=1) * soft
        if weights is not None:
            per_class = per_class * weights
        return per_class.sum(dim=1).mean()

    history: list[dict] = []
    best = (-1.0, math.inf)
    best_state, best_epoch, stale, interrupted = None, 0, 0, False
    try:
        for epoch in range(1, settings.epochs + 1):
            model.train()
            order = rng.permutation(len(train_windows))
            total_loss = correct = seen = 0.0
            bar = _progress(range(steps), f"{title} epoch {epoch}/{settings.epochs}", "batch")
            for step in bar:
                rows = train_windows[
                    order[step * settings.batch_size : (step + 1) * settings.batch_size]
                ]
                batch = make_batch(clips, rows, plan, rng, shift)
                batch = augment_batch(batch, settings.augment, rng, bank)
                targets = labels[rows[:, 0]]
                soft = np.eye(n_classes, dtype=np.float32)[targets]
                if settings.mixup > 0:
                    batch, soft = mixup(batch, soft, settings.mixup, rng)
                logits = run_model(model, batch)
                loss = loss_fn(logits, torch.from_numpy(soft))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                scheduler.step()
                total_loss += loss.item() * len(rows)
                correct += float((logits.argmax(1).numpy() == targets).sum())
                seen += len(rows)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
            val_loss, val_acc = window_loss(model, clips, val_windows, plan, labels, loss_fn)
            row = {
                "epoch": epoch,
                "train_loss": total_loss / seen,
                "train_acc": correct / seen,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr": scheduler.get_last_lr()[0],
            }
            history.append(row)
            # Without validation (a refit), the latest epoch is the one kept.
            no_validation = len(val_windows) == 0
            improved = no_validation or (val_acc, -val_loss) > (best[0], -best[1])
            if improved:
                best, best_epoch, stale = (val_acc, val_loss), epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            validation = (
                "no validation (refit)"
                if no_validation
                else f"val loss {val_loss:.3f} acc {val_acc:.3f}{'  *' if improved else ''}"
            )
            log(
                f"{title} epoch {epoch:3d}: train loss {row['train_loss']:.3f} "
                f"acc {row['train_acc']:.3f} | {validation}"
            )
            if stale >= settings.patience:
                log(f"{title}: no better validation accuracy for {stale} epochs, stopping early")
                break
    except KeyboardInterrupt:
        interrupted = True
        log(f"{title}: interrupted; keeping the best checkpoint (epoch {best_epoch})")
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, history, best_epoch, interrupted


def window_loss(
    model,
    clips: ClipSet,
    windows: np.ndarray,
    plan: WindowPlan,
    labels: np.ndarray,
    loss_fn,
) -> tuple[float, float]:
    import torch

    if len(windows) == 0:
        return float("nan"), 0.0
    model.eval()
    total = correct = 0.0
    with torch.no_grad():
        for i in range(0, len(windows), 256):
            rows = windows[i : i + 256]
            logits = run_model(model, make_batch(clips, rows, plan))
            targets = labels[rows[:, 0]]
            soft = torch.from_numpy(np.eye(len(clips.labels), dtype=np.float32)[targets])
            total += float(loss_fn(logits, soft)) * len(rows)
            correct += float((logits.argmax(1).numpy() == targets).sum())
    return total / len(windows), correct / len(windows)


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


def add_background(
    clips: ClipSet,
    split: Split,
    cache: FeatureCache,
    seed: int,
    window_s: float,
    speech: list[np.ndarray],
) -> tuple[ClipSet, Split]:
    """Append background clips to each side of the split, about one class's worth
    each, generated with a different seed per side (so no side shares a clip)."""
    labels = sorted({*clips.labels, BACKGROUND})
    all_clips = list(clips.clips)
    sides = {
        "train": list(split.train),
        "validation": list(split.validation),
        "test": list(split.test),
    }
    n_classes = len(clips.labels)
    for k, (side, members) in enumerate(sides.items()):
        count = max(8, len(members) // n_classes)
        share = speech[k::3] if side == "train" or len(speech) < 3 else speech[k::3][: count // 3]
        extra = background_clips(
            cache,
            count,
            window_s,
            seed + 7919 * (k + 1),
            f"{BACKGROUND}{side}",
            share[: count // 2],
        )
        members.extend(range(len(all_clips), len(all_clips) + len(extra)))
        all_clips.extend(extra)
    out = ClipSet(all_clips, labels, clips.skipped)
    return out, Split(
        sides["train"],
        sides["validation"],
        sides["test"],
        split.test_groups,
        split.validation_groups,
    )


def run_fold(
    clips: ClipSet,
    synth: list[Clip],
    fold: Fold,
    preset: Preset,
    settings: TrainSettings,
    background: bool,
    cache: FeatureCache,
    bank: list[np.ndarray],
    speech: list[np.ndarray],
    log: Log,
) -> FoldResult:
    start = time.time()
    combined = ClipSet(clips.clips + synth, clips.labels, clips.skipped)
    split = group_split(combined, fold.test_groups, fold.validation_groups, settings.seed)
    if background:
        combined, split = add_background(
            combined, split, cache, settings.seed, preset.window_s, speech
        )
    for side in ("train", "validation", "test"):
        members = getattr(split, side)
        if not members:
            raise DatasetError(f"the {side} split of fold {fold.name} is empty")
    n_synth = sum(combined.clips[i].synthetic for i in split.train)
    log(
        f"fold {fold.name}: test {fold.test_groups}, validation {fold.validation_groups}; "
        f"{len(split.train)} train clips ({n_synth} synthetic), {len(split.validation)} "
        f"validation, {len(split.test)} test"
    )
    plan = window_plan(preset, cache)
    model, history, best_epoch, interrupted = fit(
        combined, split, plan, settings, bank, log, fold.name
    )
    validation_metrics = evaluate_clips(model, combined, split.validation, plan)
    if settings.refit and not interrupted and best_epoch > 0:
        # Early stopping chose the epoch count; now train on train + validation for
        # that long, so the final model has heard every group but the test one.
        log(f"fold {fold.name}: refitting on train + validation for {best_epoch} epochs")
        merged = replace(split, train=split.train + split.validation, validation=[])
        model, _, _, interrupted = fit(
            combined,
            merged,
            plan,
            replace(settings, epochs=best_epoch),
            bank,
            log,
            f"{fold.name} refit",
        )
    real_test = [i for i in split.test if combined.clips[i].label != BACKGROUND]
    background_test = [i for i in split.test if combined.clips[i].label == BACKGROUND]
    metrics = {
        "train": evaluate_clips(model, combined, split.train, plan),
        "validation": validation_metrics,  # of the early-stopped model, before any refit
    }
    # The targets are about the dataset's own clips; background clips are reported apart.
    metrics["test"] = evaluate_clips(model, combined, real_test, plan)
    if plan.mode == "segments" and real_test:
        # Each window on its own: how a stream is labelled segment by segment.
        windows = index_windows(combined, real_test, plan)
        probs = window_probabilities(model, combined, windows, plan)
        truth = combined.label_ids()[windows[:, 0]]
        segments = classification_report(truth, probs.argmax(1), combined.labels)
        metrics["test_segments"] = {k: segments[k] for k in ("n", "accuracy", "macro_f1")}
        metrics["test_segments"]["seconds"] = preset.window_s
    if background_test:
        bg = evaluate_clips(model, combined, background_test, plan)
        metrics["test_background"] = {"n": bg["n"], "recall": bg["accuracy"]}
    baseline = run_baseline(combined, replace(split, test=real_test))
    test = metrics["test"]
    log(
        f"fold {fold.name}: test accuracy {test['accuracy']:.4f}, macro-F1 "
        f"{test['macro_f1']:.4f} (baseline {baseline['accuracy']:.4f}) "
        f"in {time.time() - start:.0f} s"
    )
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return FoldResult(
        fold, state, history, best_epoch, interrupted, metrics, baseline, time.time() - start
    )


def window_plan(preset: Preset, cache: FeatureCache) -> WindowPlan:
    cfg = cache.config
    frames = cfg.n_frames(round(preset.window_s * cfg.sample_rate))
    hop = max(1, round(preset.hop_s * cfg.sample_rate / cfg.hop_length))
    return WindowPlan(frames, preset.mode, hop)


def write_run(out: Path, result: FoldResult, config: dict[str, Any], log: Log) -> None:
    import torch

    from .report import plot_confusion, plot_curves

    out.mkdir(parents=True, exist_ok=True)
    torch.save(result.state, out / "checkpoint.pt")
    config = {
        **config,
        "split": {
            "test_groups": result.fold.test_groups,
            "validation_groups": result.fold.validation_groups,
        },
        "best_epoch": result.best_epoch,
        "interrupted": result.interrupted,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    metrics = {
        **result.metrics,
        "baseline": result.baseline,
        "seconds": round(result.seconds, 1),
        "best_epoch": result.best_epoch,
        "interrupted": result.interrupted,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with (out / "history.csv").open("w", newline="") as f:
        if result.history:
            writer = csv.DictWriter(f, fieldnames=list(result.history[0]))
            writer.writeheader()
            writer.writerows(result.history)
    test = result.metrics["test"]
    name = f"{config['model']['name']}-{config['model']['size']}"
    plot_confusion(
        test["confusion"],
        test["labels"],
        f"{name}, held out {', '.join(result.fold.test_groups)}: "
        f"accuracy {100 * test['accuracy']:.1f}%",
        out / "confusion.png",
    )
    if result.history:
        plot_curves(
            result.history,
            f"{name} on {config['dataset']['layout']}",
            out / "curves.png",
            result.best_epoch,
        )
    log(format_confusion(test["confusion"], test["labels"]))
    log.write(out / "train.log")


def train_command(args: argparse.Namespace) -> int:
    torch = require_torch()
    torch.set_num_threads(args.threads)
    log = Log(args.quiet)
    preset = resolve_preset(args)
    index = scan(args.data, args.layout, folds=args.folds)
    cache = FeatureCache(preset.frontend, args.cache)
    clips = load_clips(index, cache, progress=not args.quiet)
    if args.limit:
        clips = limit_per_class_and_group(clips, args.limit, args.seed)
    log(
        f"{index.root} ({args.layout}): {len(clips.clips)} clips, {len(clips.labels)} classes, "
        f"{len(clips.groups)} groups; {len(clips.skipped)} skipped"
    )
    for s in clips.skipped:
        log(f"  skipped {s.path}: {s.reason}")
    folds = plan_folds(clips, args.holdout_group, args.val_group, args.cv, args.seed)
    synth, voice_names = synthetic_speakers(
        clips, args.layout, preset.synth_speakers, cache, args.seed, log
    )
    background = preset.background and words_for(clips.labels, args.layout) is not None
    if args.background is not None:
        background = args.background
    noise_files = sorted(Path(args.noise).rglob("*.wav")) if args.noise else []
    bank = noise_bank(cache, np.random.default_rng(args.seed), 64, 4.0, noise_files)
    speech = (
        non_target_speech(clips.labels, args.layout, cache, 240, args.seed) if background else []
    )
    settings = TrainSettings(
        model=preset.model,
        size=preset.size,
        epochs=preset.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        patience=args.patience,
        schedule=args.schedule,
        seed=args.seed,
        augment=preset.augment,
        mixup=preset.mixup,
        dynamic_range=None if args.dynamic_range <= 0 else args.dynamic_range,
        threads=args.threads,
        refit=args.refit,
    )
    from .zoo import ModelSpec, build_model, profile

    plan = window_plan(preset, cache)
    labels = sorted({*clips.labels, BACKGROUND}) if background else clips.labels
    spec = ModelSpec(
        settings.model, settings.size, len(labels), (plan.frames, preset.frontend.n_mels)
    )
    prof = profile(build_model(spec), spec.input_shape)
    log(f"model {settings.model}-{settings.size}: {prof.describe()}")
    config = {
        "model": {
            "name": settings.model,
            "size": settings.size,
            "params": prof.params,
            "macs": prof.macs,
            "int8_bytes_estimate": prof.int8_bytes,
            "dynamic_range": settings.dynamic_range,
            "input_shape": list(spec.input_shape),
        },
        "frontend": preset.frontend.to_dict(),
        "labels": labels,
        "background_class": BACKGROUND if background else None,
        "window": {
            "frames": plan.frames,
            "mode": plan.mode,
            "hop_frames": plan.hop,
            "seconds": preset.window_s,
            "hop_seconds": preset.hop_s,
        },
        "dataset": {
            "root": str(index.root),
            "layout": args.layout,
            "clips": len(clips.clips),
            "groups": clips.groups,
            "skipped": len(clips.skipped),
            "folds": args.folds,
        },
        "synthetic_speakers": voice_names,
        "seed": args.seed,
        "augmentation": {**settings.augment.to_dict(), "mixup": settings.mixup},
        "training": {k: v for k, v in settings.__dict__.items() if k != "augment"},
        "command": "python -m export " + " ".join(shlex.quote(a) for a in args.argv),
    }
    results = []
    for fold in folds:
        result = run_fold(
            clips, synth, fold, preset, settings, background, cache, bank, speech, log
        )
        results.append(result)
        target = args.out / f"fold-{fold.name}" if args.cv else args.out
        write_run(target, result, config, log)
        if result.interrupted:
            break
    if args.cv:
        write_cv_summary(args.out, results, config, log)
    log(f"wrote {args.out}")
    log.write(args.out / "train.log")
    return 130 if results and results[-1].interrupted else 0


def write_cv_summary(out: Path, results: list[FoldResult], config: dict, log: Log) -> None:
    accs = np.array([r.metrics["test"]["accuracy"] for r in results])
    f1s = np.array([r.metrics["test"]["macro_f1"] for r in results])
    base = np.array([r.baseline["accuracy"] for r in results])
    # Long clips are also scored window by window ("segments"): the harder figure.
    segments = [
        r.metrics["test_segments"]["accuracy"] for r in results if "test_segments" in r.metrics
    ]
    summary = {
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
        "model": config["model"],
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


def limit_per_class_and_group(clips: ClipSet, limit: int, seed: int) -> ClipSet:
    """At most `limit` clips of each (label, group): quick runs on a slice."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(clips.clips))
    taken: Counter = Counter()
    keep = []
    for i in order:
        key = (clips.clips[i].label, clips.clips[i].group)
        if taken[key] < limit:
            taken[key] += 1
            keep.append(int(i))
    return clips.subset(sorted(keep))


def resolve_preset(args: argparse.Namespace) -> Preset:
    from .presets import MODELS, SIZES

    preset = PRESETS[args.layout]
    model = args.model or preset.model
    if model not in MODELS:
        raise ConfigError(f"unknown --model '{model}' (choose from {', '.join(MODELS)})")
    size = args.size or (preset.size if model == preset.model else "small")
    if size not in SIZES[model]:
        raise ConfigError(
            f"unknown --size '{size}' for {model} (choose from {', '.join(SIZES[model])})"
        )
    augment = preset.augment if not args.no_augment else AugmentConfig.off()
    if args.no_specaugment:
        augment = replace(augment, time_masks=0, freq_masks=0)
    if args.no_noise:
        augment = replace(augment, noise=False)
    if args.vtlp is not None:
        augment = replace(augment, vtlp=args.vtlp)
    if args.speed is not None:
        augment = replace(augment, speed=args.speed)
    changes: dict[str, Any] = {"model": model, "size": size, "augment": augment}
    if args.epochs:
        changes["epochs"] = args.epochs
    if args.mixup is not None:
        changes["mixup"] = args.mixup
    if args.no_augment:
        changes["mixup"] = 0.0
    if args.synth_speakers is not None:
        changes["synth_speakers"] = args.synth_speakers
    if args.window:
        changes["window_s"] = args.window
    if args.hop:
        changes["hop_s"] = args.hop
    if args.n_mels:
        changes["frontend"] = replace(preset.frontend, n_mels=args.n_mels)
    return replace(preset, **changes)


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    from .presets import MODELS

    p = sub.add_parser(
        name,
        help="train a compact CNN on a labelled dataset",
        description="Train a compact CNN on log-mel windows from the device frontend, "
        "with augmentation and a group-aware split (no speaker, fold or recording on two "
        "sides). Writes checkpoint.pt, config.json, metrics.json, confusion.png, curves.png, "
        "history.csv and train.log into --out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python -m export train --data ../shared/data/fsdd --layout fsdd --out runs/fsdd\n"
        "  python -m export train --data ../shared/data/fsdd --layout fsdd --out runs/cv --cv\n"
        "  python -m export train --data ../shared/data/esc50 --layout esc50 --out runs/esc50 "
        "--holdout-group fold5\n"
        "  python -m export train --data ../shared/data/music_speech --layout folder "
        "--out runs/ms --model dscnn --size small\n",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--layout", choices=LAYOUTS, required=True, help="how the folder is organised")
    p.add_argument("--out", type=Path, required=True, help="run directory to write")
    p.add_argument("--model", help=f"model: {', '.join(MODELS)} (default: the layout's preset)")
    p.add_argument("--size", help="size preset: tiny/small/medium/large (model-dependent)")
    p.add_argument("--epochs", type=int, help="most epochs (early stopping may end sooner)")
    p.add_argument("--seed", type=int, default=0, help="seed for everything (default 0)")
    p.add_argument(
        "--holdout-group",
        nargs="+",
        metavar="GROUP",
        help="test group(s): a speaker (fsdd), fold (esc50: fold5) or recording",
    )
    p.add_argument(
        "--val-group",
        nargs="+",
        metavar="GROUP",
        help="validation group(s) (default: the fold before the test fold)",
    )
    p.add_argument(
        "--cv",
        action="store_true",
        help="leave-one-group-out (or 5-fold by recording) cross-validation",
    )
    p.add_argument("--folds", type=int, nargs="+", help="esc50: folds to use")
    p.add_argument("--window", type=float, help="model window in seconds")
    p.add_argument("--hop", type=float, help="segment hop in seconds (long clips)")
    p.add_argument("--n-mels", type=int, help="mel bands (default: the layout's preset)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW)")
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs")
    p.add_argument("--schedule", choices=("onecycle", "cosine"), default="onecycle")
    p.add_argument(
        "--dynamic-range",
        type=float,
        default=80.0,
        help="per-window level normalisation range in dB (0: off)",
    )
    p.add_argument("--mixup", type=float, help="mixup Beta alpha (0: off)")
    p.add_argument("--no-augment", action="store_true", help="turn every augmentation off")
    p.add_argument("--no-specaugment", action="store_true", help="no time/frequency masks")
    p.add_argument("--no-noise", action="store_true", help="no additive background noise")
    p.add_argument(
        "--vtlp",
        type=float,
        help="vocal-tract-length perturbation: mel-axis warp of up to +-this (0.1)",
    )
    p.add_argument("--speed", type=float, help="time stretch of up to +-this (0.15)")
    p.add_argument("--noise", type=Path, help="folder of noise WAVs for augmentation/background")
    p.add_argument(
        "--synth-speakers",
        type=int,
        help="espeak-ng voices added as training-only speakers (keyword layouts)",
    )
    p.add_argument(
        "--background",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add a _background_ class (default: on for keyword layouts)",
    )
    p.add_argument("--limit", type=int, help="at most N clips per class and group (quick runs)")
    p.add_argument("--cache", type=Path, help="feature cache folder (default ~/.cache/edge-audio)")
    p.add_argument(
        "--refit",
        action="store_true",
        help="after early stopping, retrain on train + validation for the best "
        "epoch count (the final model hears every non-test group)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=train_command)
