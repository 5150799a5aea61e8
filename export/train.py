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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.datasets import GROUPS_HELP, LAYOUTS, NO_GROUPS_NOTE, describe_groups, scan
from edge_audio.errors import ConfigError, DatasetError, MissingDependencyError
from edge_audio.metrics import classification_report, format_confusion
from edge_audio.windows import normalise

from . import checks
from .augment import AugmentConfig, augment_batch, mixup
from .checks import Check
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
    mean_per_clip,
    noise_bank,
)
from .distributed import World
from .presets import PRESETS, Preset
from .schedule import DEFAULT_MIN_STEPS, Schedule, plan_schedule

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


def _progress(items, desc: str, unit: str, world: World | None = None):
    from tqdm import tqdm

    quiet = world is not None and not world.main  # one progress bar, rank 0's
    return tqdm(items, desc=desc, unit=unit, leave=False, disable=True if quiet else None)


# --- training ---------------------------------------------------------------------


@dataclass
class TrainSettings:
    model: str
    size: str
    epochs: int | None  # --epochs: taken as given; None: sized by min_steps
    preset_epochs: int
    min_steps: int
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
class FitResult:
    model: Any
    history: list[dict]
    best_epoch: int
    interrupted: bool
    stopped_early: bool
    schedule: Schedule


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


def model_device(model) -> Any:
    return next(model.parameters()).device


def run_model(model, batch: np.ndarray):
    """Windows [B, frames, mels] in dB -> logits: the device's level normalisation
    (edge_audio.windows.normalise), then the network."""
    import torch

    core = getattr(model, "module", model)  # DistributedDataParallel wraps the network
    x = torch.from_numpy(normalise(batch, core.dynamic_range)[:, None])
    return model(x.to(model_device(core)))


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
            probs.append(torch.softmax(logits, dim=1).cpu().numpy())
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
    position = {clip: row for row, clip in enumerate(members)}
    owners = np.array([position[int(ci)] for ci in windows[:, 0]], dtype=np.int64)
    return mean_per_clip(window_probs, owners, len(members))


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
    world: World | None = None,
) -> FitResult:
    """Train for a schedule sized in steps, keeping the epoch with the best
    validation clip accuracy (the figure users are given); early stopping never
    ends a run in the first half of its schedule."""
    import torch

    from .zoo import ModelSpec, build_model

    world = world or World()
    torch.manual_seed(settings.seed)
    order_rng = np.random.default_rng(settings.seed)  # the same on every process
    rng = np.random.default_rng(settings.seed + 7 * world.rank)  # augmentation: its own
    n_classes = len(clips.labels)
    mels = clips.clips[0].features.shape[1]
    core = build_model(ModelSpec(settings.model, settings.size, n_classes, (plan.frames, mels)))
    core.dynamic_range = settings.dynamic_range  # type: ignore[assignment]  # read by run_model
    core.to(world.device)
    model = world.wrap(core)
    train_windows = index_windows(clips, split.train, plan)
    labels = clips.label_ids()
    train_targets = labels[train_windows[:, 0]]
    counts = np.bincount(train_targets, minlength=n_classes).astype(float)
    weights = None
    if counts.min() > 0 and counts.max() / counts.min() > 1.5:  # imbalanced: reweight
        weights = torch.tensor(
            counts.sum() / (n_classes * counts), dtype=torch.float32, device=world.device
        )
        log(
            f"classes are imbalanced ({int(counts.min())} to {int(counts.max())} windows): "
            "weighting the loss"
        )
    schedule = plan_schedule(
        len(train_windows),
        settings.batch_size,
        settings.preset_epochs,
        epochs=settings.epochs,
        min_steps=settings.min_steps,
        patience=settings.patience,
    )
    log(f"{title}: {schedule.reason}")
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    total = schedule.total_steps
    if settings.schedule == "onecycle":
        scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=settings.lr, total_steps=total, pct_start=0.15
        )
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, total)
    shift = plan.frames // 4 if settings.augment.shift else 0

    def loss_fn(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        eps = settings.label_smoothing
        soft = soft.to(logits.device) * (1 - eps) + eps / n_classes
        per_class = -torch.log_softmax(logits, dim=1) * soft
        if weights is not None:
            per_class = per_class * weights.to(logits.device)
        return per_class.sum(dim=1).mean()

    history: list[dict] = []
    best = (-1.0, math.inf)
    best_state, best_epoch, stale = None, 0, 0
    interrupted = stopped_early = False
    batch_size = settings.batch_size
    steps_per_pass = schedule.steps_per_epoch // schedule.passes_per_epoch
    try:
        for epoch in range(1, schedule.epochs + 1):
            model.train()
            sums = [0.0, 0.0, 0.0]  # loss * rows, correct, rows
            bar = _progress(
                range(schedule.steps_per_epoch),
                f"{title} epoch {epoch}/{schedule.epochs}",
                "step",
                world,
            )
            order = order_rng.permutation(len(train_windows))
            for step in bar:
                if step and step % steps_per_pass == 0:  # the next pass of this epoch
                    order = order_rng.permutation(len(train_windows))
                k = step % steps_per_pass
                rows = train_windows[order[k * batch_size : (k + 1) * batch_size]]
                if len(rows) < world.size:
                    continue  # every process must take part in every step
                rows = world.shard(rows)
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
                sums[0] += loss.item() * len(rows)
                sums[1] += float((logits.argmax(1).cpu().numpy() == targets).sum())
                sums[2] += len(rows)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.3f}")
            loss_sum, correct, seen = world.sum(sums)
            world.sync_buffers(core)
            val_loss, val_acc = validate(core, clips, split.validation, plan, labels, loss_fn)
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / max(seen, 1),
                "train_acc": correct / max(seen, 1),
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr": scheduler.get_last_lr()[0],
            }
            history.append(row)
            # Without validation (a refit), the latest epoch is the one kept.
            no_validation = not split.validation
            improved = no_validation or (val_acc, -val_loss) > (best[0], -best[1])
            stop = not improved and stale + 1 >= schedule.patience and epoch >= schedule.min_epochs
            improved, stop = world.agree([improved, stop])
            if improved:
                best, best_epoch, stale = (val_acc, val_loss), epoch, 0
                best_state = {k: v.detach().clone() for k, v in core.state_dict().items()}
            else:
                stale += 1
            validation = (
                "no validation (refit)"
                if no_validation
                else f"val loss {val_loss:.3f} clip acc {val_acc:.3f}{'  *' if improved else ''}"
            )
            log(
                f"{title} epoch {epoch:3d}: train loss {row['train_loss']:.3f} "
                f"acc {row['train_acc']:.3f} | {validation}"
            )
            if stop:
                stopped_early = True
                log(
                    f"{title}: no better validation accuracy for {stale} epochs, "
                    f"stopping early at epoch {epoch} of {schedule.epochs}"
                )
                break
    except KeyboardInterrupt:
        interrupted = True
        log(f"{title}: interrupted; keeping the best checkpoint (epoch {best_epoch})")
    if best_state is not None:
        core.load_state_dict(best_state)
    return FitResult(core, history, best_epoch, interrupted, stopped_early, schedule)


def validate(
    model,
    clips: ClipSet,
    members: list[int],
    plan: WindowPlan,
    labels: np.ndarray,
    loss_fn,
) -> tuple[float, float]:
    """Window loss and clip accuracy (the mean of each clip's windows, as users
    are scored) of the validation clips; (nan, 0) without any."""
    import torch

    if not members:
        return float("nan"), 0.0
    windows = index_windows(clips, members, plan)
    probs = window_probabilities(model, clips, windows, plan)
    targets = labels[windows[:, 0]]
    soft = torch.from_numpy(np.eye(len(clips.labels), dtype=np.float32)[targets])
    logits = torch.log(torch.from_numpy(probs).float().clamp_min(1e-12))
    loss = float(loss_fn(logits, soft))
    position = {clip: row for row, clip in enumerate(members)}
    owners = np.array([position[int(ci)] for ci in windows[:, 0]], dtype=np.int64)
    per_clip = mean_per_clip(probs, owners, len(members))
    accuracy = float((per_clip.argmax(1) == labels[members]).mean())
    return loss, accuracy


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


@dataclass
class Material:
    """Everything a fold trains on, prepared once per run."""

    clips: ClipSet
    synth: list[Clip]
    preset: Preset
    background: bool
    cache: FeatureCache
    bank: list[np.ndarray]
    speech: list[np.ndarray]
    groups_declared: bool


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


def run_fold(
    material: Material, fold: Fold, settings: TrainSettings, log: Log, world: World
) -> FoldResult:
    start = time.time()
    preset, cache = material.preset, material.cache
    combined = ClipSet(material.clips.clips + material.synth, material.clips.labels)
    if fold.test_groups:
        split = group_split(combined, fold.test_groups, fold.validation_groups, settings.seed)
    else:  # the final fit: every group trains, nothing is held out
        split = Split(list(range(len(combined.clips))), [], [], [], [])
    if material.background:
        combined, split = add_background(
            combined, split, cache, settings.seed, preset.window_s, material.speech
        )
    needed = ("train", "validation", "test") if fold.test_groups else ("train",)
    for side in needed:
        if not getattr(split, side):
            raise DatasetError(f"the {side} split of fold {fold.name} is empty")
    n_synth = sum(combined.clips[i].synthetic for i in split.train)
    log(
        f"fold {fold.name}: test {describe_groups(fold.test_groups)}, validation "
        f"{describe_groups(fold.validation_groups)}; "
        f"{len(split.train)} train clips ({n_synth} synthetic), {len(split.validation)} "
        f"validation, {len(split.test)} test"
    )
    plan = window_plan(preset, cache)
    first = fit(combined, split, plan, settings, material.bank, log, fold.name, world)
    model, interrupted = first.model, first.interrupted
    validation_metrics = evaluate_clips(model, combined, split.validation, plan)
    if settings.refit and split.validation and not interrupted and first.best_epoch > 0:
        # Early stopping chose the epoch count; now train on train + validation for
        # that long, so the final model has heard every group but the test one.
        log(f"fold {fold.name}: refitting on train + validation for {first.best_epoch} epochs")
        merged = replace(split, train=split.train + split.validation, validation=[])
        again = fit(
            combined,
            merged,
            plan,
            replace(settings, epochs=first.best_epoch),
            material.bank,
            log,
            f"{fold.name} refit",
            world,
        )
        model, interrupted = again.model, again.interrupted
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
    baseline = run_baseline(combined, replace(split, test=real_test)) if real_test else None
    if baseline:
        test = metrics["test"]
        log(
            f"fold {fold.name}: test accuracy {test['accuracy']:.4f}, macro-F1 "
            f"{test['macro_f1']:.4f} (baseline {baseline['accuracy']:.4f}) "
            f"in {time.time() - start:.0f} s"
        )
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return FoldResult(
        fold,
        state,
        first.history,
        first.best_epoch,
        interrupted,
        metrics,
        baseline or {},
        time.time() - start,
        first.schedule,
        fold_checks(material, combined, split, first, metrics, baseline),
    )


def window_plan(preset: Preset, cache: FeatureCache) -> WindowPlan:
    cfg = cache.config
    frames = cfg.n_frames(round(preset.window_s * cfg.sample_rate))
    hop = max(1, round(preset.hop_s * cfg.sample_rate / cfg.hop_length))
    return WindowPlan(frames, preset.mode, hop)


def write_run(
    out: Path,
    result: FoldResult,
    config: dict[str, Any],
    log: Log,
    estimate: dict[str, Any] | None = None,
) -> None:
    """A run directory. `estimate`: a final fit's cross-validated figures, which
    stand in for the held-out test it does not have."""
    import torch

    from .report import plot_confusion, plot_curves

    out.mkdir(parents=True, exist_ok=True)
    torch.save(result.state, out / "checkpoint.pt")
    config = {
        **config,
        "split": {
            "test_groups": result.fold.test_groups,
            "validation_groups": result.fold.validation_groups,
            "final_fit": not result.fold.test_groups,
        },
        "schedule": result.schedule.to_dict() if result.schedule else None,
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
    name = f"{config['model']['name']}-{config['model']['size']}"
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
            f"{name} on {config['dataset']['layout']}",
            out / "curves.png",
            result.best_epoch,
        )
    log.write(out / "train.log")


def prepare(args: argparse.Namespace, preset: Preset, log: Log) -> tuple[Any, Material]:
    """Scan, features, synthetic speakers, noise: everything before the first fold."""
    index = scan(args.data, args.layout, folds=args.folds, groups=args.groups)
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
    material = Material(
        clips, synth, preset, background, cache, bank, speech, index.groups_declared
    )
    return (index, voice_names), material


def train_command(args: argparse.Namespace) -> int:
    torch = require_torch()
    torch.set_num_threads(args.threads)
    from .distributed import init_world

    world = init_world(args.device)
    log = Log(args.quiet or not world.main)
    preset = resolve_preset(args)
    if args.fit_all and not args.cv:
        raise ConfigError("--fit-all needs --cv: cross-validation chooses how long to train")
    if world.distributed:
        log(f"distributed: {world.size} processes ({world.device}); rank 0 reports")
    (index, voice_names), material = world.main_first(lambda: prepare(args, preset, log))
    clips = material.clips
    folds = plan_folds(clips, args.holdout_group, args.val_group, args.cv, args.seed)
    settings = TrainSettings(
        model=preset.model,
        size=preset.size,
        epochs=args.epochs,
        preset_epochs=preset.epochs,
        min_steps=args.min_steps,
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

    plan = window_plan(preset, material.cache)
    labels = sorted({*clips.labels, BACKGROUND}) if material.background else clips.labels
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
        "background_class": BACKGROUND if material.background else None,
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
            "groups_declared": material.groups_declared,
            "groups_option": args.groups,
            "skipped": len(clips.skipped),
            "folds": args.folds,
        },
        "synthetic_speakers": voice_names,
        "seed": args.seed,
        "augmentation": {**settings.augment.to_dict(), "mixup": settings.mixup},
        "training": {k: v for k, v in settings.__dict__.items() if k != "augment"},
        "distributed": {"processes": world.size, "device": world.device},
        "command": "python -m export " + " ".join(shlex.quote(a) for a in args.argv),
    }
    results = []
    summary: dict[str, Any] | None = None
    for fold in folds:
        result = run_fold(material, fold, settings, log, world)
        results.append(result)
        target = args.out / f"fold-{fold.name}" if args.cv else args.out
        if world.main:
            write_run(target, result, config, log)
        if result.interrupted:
            break
    final_checks = results[-1].checks if results else []
    interrupted = bool(results) and results[-1].interrupted
    if args.cv and world.main:
        summary = write_cv_summary(args.out, results, config, log)
        final_checks = merge_checks(results)
    if args.fit_all and not interrupted:
        epochs = final_epochs(results)
        log(
            f"final fit on every group for {epochs} epochs (the median best epoch of the "
            f"{len(results)} folds); its estimate is the cross-validated figure"
        )
        final = run_fold(
            material, Fold("all", [], []), replace(settings, epochs=epochs), log, world
        )
        final.checks = final_checks  # the folds' checks are what tell about this recipe
        interrupted = final.interrupted
        if world.main:
            write_run(args.out, final, config, log, summary)
    if world.main:
        log("")
        for line in checks.format_checks(final_checks):
            log(line)
        log(f"wrote {args.out}")
        log.write(args.out / "train.log")
    world.close()
    return 130 if interrupted else 0


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
    out: Path, results: list[FoldResult], config: dict, log: Log
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
    return summary


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
        "--out runs/ms --model dscnn --size small\n"
        "  python -m export train --data my_sounds --layout folder "
        "--groups '{label}/{group}_*.wav' --out runs/mine --cv --fit-all\n"
        "  torchrun --nproc-per-node 4 -m export train ...   (DDP: the same run, N processes)\n"
        "\nThe last lines of the log are the checks: below the baseline, underfitting, still "
        "improving, few clips, no groups. They are also in metrics.json.\n",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--layout", choices=LAYOUTS, required=True, help="how the folder is organised")
    p.add_argument("--out", type=Path, required=True, help="run directory to write")
    p.add_argument("--model", help=f"model: {', '.join(MODELS)} (default: the layout's preset)")
    p.add_argument("--size", help="size preset: tiny/small/medium/large (model-dependent)")
    p.add_argument(
        "--epochs",
        type=int,
        help="epochs, taken as given (default: the preset's, raised until the run has "
        "--min-steps steps; early stopping may end sooner)",
    )
    p.add_argument(
        "--min-steps",
        type=int,
        default=DEFAULT_MIN_STEPS,
        help=f"optimiser steps a run gets at least when --epochs is not given, however small "
        f"the data (default {DEFAULT_MIN_STEPS})",
    )
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
    p.add_argument("--groups", metavar="PATTERN_OR_CSV", help=GROUPS_HELP)
    p.add_argument("--window", type=float, help="model window in seconds")
    p.add_argument("--hop", type=float, help="segment hop in seconds (long clips)")
    p.add_argument("--n-mels", type=int, help="mel bands (default: the layout's preset)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW)")
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument(
        "--patience",
        type=int,
        default=10,
        help="early-stopping patience in epochs, at least (the recipe uses a fifth of the "
        "planned epochs when that is more; it never stops in the first half)",
    )
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
    p.add_argument(
        "--fit-all",
        action="store_true",
        help="with --cv: after the folds, train on every group for the median best epoch "
        "and write that model to --out (its estimate is the cross-validated figure)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the network trains (auto: a GPU when torch sees one)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=train_command)
