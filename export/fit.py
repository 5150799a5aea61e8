"""The fit loop: batches of augmented windows, the optimiser, early stopping on
validation clip accuracy, and the clip scores it is judged by."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.errors import MissingDependencyError
from edge_audio.metrics import classification_report
from edge_audio.windows import normalise

from .augment import AugmentConfig, augment_batch, mixup
from .data import (
    BACKGROUND,
    ClipSet,
    Split,
    WindowPlan,
    index_windows,
    make_batch,
    mean_per_clip,
)
from .distributed import World
from .negatives import NEGATIVE_TRAIN_GROUP
from .schedule import Schedule, plan_schedule


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


def _progress(items, desc: str, unit: str, world: World | None = None):
    from tqdm import tqdm

    quiet = world is not None and not world.main  # one progress bar, rank 0's
    return tqdm(items, desc=desc, unit=unit, leave=False, disable=True if quiet else None)


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
    # --negatives-per-epoch: windows drawn afresh each epoch from the negatives'
    # train part (None: every one, every epoch); hours of talk then cost an epoch
    # no more than the dataset's own clips, and every window is heard over the run
    negatives_per_epoch: int | None = None
    # --background-weight: a background window's loss weight against a class
    # window's (None: classes balanced, background included)
    background_weight: float | None = None


def class_weights(
    counts: np.ndarray, background: int | None, background_weight: float | None
) -> np.ndarray | None:
    """Loss weight per class, or None when the classes are balanced enough.

    Balanced by default: each class weighs as much in the loss whatever its
    window count. A detector's background is different: with hours of
    negatives it outnumbers each class twentyfold, and balancing it makes each
    background window weigh a twentieth of a class window, so the model learns
    to call anything unsure a class. With `background_weight`, the classes are
    balanced among themselves (a class window weighs 1 on average) and every
    background window weighs `background_weight`."""
    counts = np.asarray(counts, dtype=float)
    if background_weight is not None and background is not None:
        return detector_weights(counts, background, background_weight)
    if counts.min() <= 0 or counts.max() / counts.min() <= 1.5:
        return None
    return counts.sum() / (len(counts) * counts)


def detector_weights(counts: np.ndarray, background: int, background_weight: float) -> np.ndarray:
    """The classes balanced among themselves, each background window at its weight."""
    classes = np.ones(len(counts), bool)
    classes[background] = False
    weights = np.zeros(len(counts))
    present = classes & (counts > 0)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    weights[background] = background_weight
    return weights


@dataclass(frozen=True)
class NegativeDraw:
    """The training windows of an epoch: every window of the dataset (and of any
    mined negatives), plus `per_epoch` drawn from the pool of the negatives'
    train part; with no cap, everything every epoch."""

    fixed: np.ndarray  # [n, 2] (clip, start) rows trained on every epoch
    pool: np.ndarray  # [m, 2] rows drawn from
    per_epoch: int

    @classmethod
    def of(cls, clips: ClipSet, windows: np.ndarray, settings: TrainSettings) -> NegativeDraw:
        cap = settings.negatives_per_epoch
        sampled = np.array(
            [clips.clips[int(ci)].group == NEGATIVE_TRAIN_GROUP for ci in windows[:, 0]], bool
        ).reshape(-1)
        if cap is None or cap >= int(sampled.sum()):
            return cls(windows, windows[:0], 0)
        return cls(windows[~sampled], windows[sampled], cap)

    @property
    def epoch_size(self) -> int:
        return len(self.fixed) + self.per_epoch

    def class_counts(self, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """Windows per class in one epoch (what the loss weighting balances)."""
        counts = np.bincount(labels[self.fixed[:, 0]], minlength=n_classes).astype(float)
        if self.per_epoch:
            counts[labels[self.pool[0, 0]]] += self.per_epoch
        return counts

    def epoch(self, rng: np.random.Generator) -> np.ndarray:
        if not self.per_epoch:
            return self.fixed
        chosen = rng.choice(len(self.pool), size=self.per_epoch, replace=False)
        return np.concatenate([self.fixed, self.pool[np.sort(chosen)]])


@dataclass
class FitResult:
    model: Any
    history: list[dict]
    best_epoch: int
    interrupted: bool
    stopped_early: bool
    schedule: Schedule


def model_device(model) -> Any:
    return next(model.parameters()).device


def run_model(model, batch: np.ndarray):
    """Windows [B, frames, mels] in dB -> logits: the device's level normalisation
    (edge_audio.windows.normalise), then the network."""
    import torch

    core = getattr(model, "module", model)  # DistributedDataParallel wraps the network
    kind = getattr(core, "normalisation", "peak")
    x = torch.from_numpy(normalise(batch, core.dynamic_range, kind)[:, None])
    return model(x.to(model_device(core)))


def batch_probabilities(model, batch: np.ndarray) -> np.ndarray:
    """Probabilities of windows [B, frames, mels] in dB, in eval mode without
    gradients (hard-negative mining scores hours of windows this way)."""
    import torch

    model.eval()
    with torch.no_grad():
        return torch.softmax(run_model(model, batch), dim=1).cpu().numpy()


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
    rooms: list[np.ndarray] | None = None,
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
    labels = clips.label_ids()
    draw = NegativeDraw.of(clips, index_windows(clips, split.train, plan), settings)
    if draw.per_epoch:
        log(
            f"{title}: {draw.per_epoch:,} of {len(draw.pool):,} training negative windows "
            "drawn afresh each epoch"
        )
    counts = draw.class_counts(labels, n_classes)
    background = clips.labels.index(BACKGROUND) if BACKGROUND in clips.labels else None
    found = class_weights(counts, background, settings.background_weight)
    weights = None
    if found is not None:
        weights = torch.tensor(found, dtype=torch.float32, device=world.device)
        detector = settings.background_weight is not None and background is not None
        log(
            f"{int(counts.min())} to {int(counts.max())} windows a class: weighting the loss"
            + (
                f"; a background window weighs {settings.background_weight:g} x a class window"
                if detector
                else " (classes balanced)"
            )
        )
    schedule = plan_schedule(
        draw.epoch_size,
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
            train_windows = draw.epoch(order_rng)
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
                batch = augment_batch(batch, settings.augment, rng, bank, rooms)
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
