"""`train --backbone NAME --fine-tune N`: retrain the top N stages of a pretrained network.

The network's feature stack is cut N stages from the top. Below the cut nothing
trains (BatchNorm statistics included), so each window's activations there are
computed once and cached like the embeddings; above it, the pretrained stages
train at a low learning rate and a new head at ten times that. The head starts
from scratch: started from the linear probe instead (linear probing then
fine-tuning, Kumar et al., ICLR 2022) it fits the training clips at once, the
stages barely move, and ESC-50 fold 1 scored 92.5% against 93.5%.

With a teacher (`--teacher RUN_DIR`, distillation), the loss is a blend of the
labels' cross-entropy and the divergence from the teacher's outputs softened at
temperature KD_TEMPERATURE (Hinton et al., 2015); the teacher's logits of every
window are computed once and cached, and mixup blends them like the labels.

Augmentation acts where the cache lives: mixup between clips and a random roll
of the activation maps along time. `--fine-tune all` cuts at the input, so the
whole body trains: the same code, at the cost of the full network per step.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_audio.errors import ConfigError

FINE_TUNE_EPOCHS = 20
# At least this many optimiser steps, however few the clips (when --epochs is not
# given): twenty epochs of fifteen clips are twenty steps, and a new head learns
# nothing in twenty steps.
MIN_STEPS = 300
BODY_LR = 3e-4  # the pretrained stages; the head trains at HEAD_LR_RATIO times this
HEAD_LR_RATIO = 10.0
MIXUP_ALPHA = 0.3
BATCH = 32
WEIGHT_DECAY = 1e-2
MAX_ROLL = 4  # time steps of the cached maps a batch is rolled by, at most
# A distillation student (`--size tiny`) is mostly new or far from its pretrained
# task, and learns from its teacher for longer and faster: on ESC-50 fold 1 its
# accuracy went from 85.0% (20 epochs at BODY_LR) to 89.0% at 1e-3, 90.5% at 3e-3
# and 93.0% at 3e-3 for 40 epochs (its teacher: 93.5%). "Patient" teaching,
# as Beyer et al. (CVPR 2022) found for image students.
STUDENT_EPOCHS = 40
STUDENT_BODY_LR = 3e-3
KD_TEMPERATURE = 2.0
KD_WEIGHT = 0.5  # the teacher's share of the loss; the labels have the rest


@dataclass(frozen=True)
class FineTuneSettings:
    stages: int  # how many stages of the feature stack train, counted from the top
    epochs: int = FINE_TUNE_EPOCHS
    body_lr: float = BODY_LR
    mixup: float = MIXUP_ALPHA

    def record(self, total_stages: int, teacher: str | None = None) -> dict[str, Any]:
        distil = {"teacher": teacher, "temperature": KD_TEMPERATURE, "teacher_weight": KD_WEIGHT}
        return {
            **({"distillation": distil} if teacher else {}),
            **asdict(self),
            "of_stages": total_stages,
            "head_lr": self.body_lr * HEAD_LR_RATIO,
            "batch": BATCH,
            "weight_decay": WEIGHT_DECAY,
            "augment": f"mixup (alpha {self.mixup}), time roll of up to {MAX_ROLL} steps",
        }


def planned_epochs(windows: int, given: int | None, base: int = FINE_TUNE_EPOCHS) -> int:
    """--epochs as given, else `base` raised until MIN_STEPS steps."""
    if given is not None:
        return given
    return max(base, -(-MIN_STEPS // max(1, windows // BATCH)))


def parse_stages(value: str | None, total: int) -> int:
    """`--fine-tune` as given: 0 (head only), N in 1..total, or `all`."""
    if value is None:
        return 0
    if value == "all":
        return total
    try:
        stages = int(value)
    except ValueError:
        raise ConfigError(f"--fine-tune takes a number of stages or 'all', got {value!r}") from None
    if not 0 <= stages <= total:
        raise ConfigError(
            f"--fine-tune {stages}: the network has {total} stages (0 trains the head only, "
            f"'all' or {total} the whole body)"
        )
    return stages


def lower_activations(network: Any, cut: int, windows: np.ndarray) -> np.ndarray:
    """The frozen stages' output for windows [n, frames, mels]: [n, C, F, T]."""
    import torch

    x = _network_layout(windows)
    if cut == 0:
        return x.numpy()
    with torch.inference_mode():
        lower = network.features[:cut].eval()
        return torch.cat([lower(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]).numpy()


def int8_lower(network: Any, cut: int, calibration: np.ndarray) -> Any:
    """The frozen stages below `cut` as the int8 TFLite file computes them:
    BatchNorm folded, litert-torch's PT2E post-training quantisation simulated in
    torch, calibrated on `calibration` windows [n, frames, mels]. A function of
    windows like `lower_activations`.

    A student trained only on the float output of these stages can lean on
    detail that int8 rounding of the early, largest feature maps destroys:
    ESC-50 fold 3 of esc50-tiny lost 8 points post-training and 3 after QAT, most
    of it in the stem and first residual block. Trained on both outputs it loses
    0.5 post-training (see the README)."""
    import torch
    from torchao.quantization.pt2e import quantize_pt2e

    from .to_tflite import int8_quantizer
    from .trained_run import prepare_for_export

    lower = copy.deepcopy(network.features[:cut]).eval()
    prepare_for_export(lower)
    x = _network_layout(calibration)
    batch = torch.export.Dim("batch", min=1, max=BATCH)
    exported = torch.export.export(lower, (x[:2],), dynamic_shapes=({0: batch},)).module()
    prepared = quantize_pt2e.prepare_pt2e(exported, int8_quantizer())
    with torch.no_grad():
        for window in x:  # one at a time, as export quantize calibrates
            prepared(window[None])
    graph = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)

    def compute(windows: np.ndarray) -> np.ndarray:
        x = _network_layout(windows)
        with torch.no_grad():
            return torch.cat([graph(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]).numpy()

    return compute


def _network_layout(windows: np.ndarray) -> Any:
    """Windows [n, frames, mels] as the feature stack takes them: [n, 1, mels, frames]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(windows.transpose(0, 2, 1)[:, None]))


class FineTuned:
    """The trained top stages and head over cached lower activations."""

    def __init__(self, top: Any, head: Any) -> None:
        self.top = top
        self.head = head

    def logits(self, activations: np.ndarray) -> np.ndarray:
        import torch

        self.top.eval()
        with torch.inference_mode():
            x = torch.from_numpy(activations)
            parts = [self._forward(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, self.head.out_features))

    def probabilities(self, activations: np.ndarray) -> np.ndarray:
        logits = self.logits(activations)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def _forward(self, x: Any) -> Any:
        return self.head(self.top(x).mean(dim=(2, 3)))

    def into(self, model: Any, cut: int) -> Any:
        """Copy the trained stages and head into a BackboneClassifier."""
        import torch

        with torch.no_grad():
            for i, stage in enumerate(self.top):
                model.features[cut + i].load_state_dict(stage.state_dict())
            model.head.load_state_dict(self.head.state_dict())
        return model


def freeze_batchnorm(module: Any) -> None:
    """Keep the pretrained running statistics: tens of clips cannot re-estimate them."""
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def fine_tune(
    classifier: Any,
    cut: int,
    activations: np.ndarray,
    labels: np.ndarray,
    settings: FineTuneSettings,
    seed: int,
    progress: bool,
    teacher_logits: np.ndarray | None = None,
) -> FineTuned:
    """Train a copy of the classifier's stages cut.. and head on one activation
    map per window, labelled `labels`, and distilled from `teacher_logits` when
    given."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    top = copy.deepcopy(classifier.features[cut:])
    head = copy.deepcopy(classifier.head)
    n_classes = head.out_features
    head_lr = settings.body_lr * HEAD_LR_RATIO
    # Layers made for this model (a student's new top conv) learn like the head:
    # at the head's rate and with their BatchNorm statistics estimated, since their
    # initial ones (mean 0, variance 1) describe nothing. Trained at the body's rate
    # with frozen statistics, the ESC-50 student fitted only 91% of its training clips.
    first_made = len(top) - getattr(classifier, "new_stages", 0)
    pretrained, made = top[:first_made], top[first_made:]
    optimiser = torch.optim.AdamW(
        [
            {"params": pretrained.parameters(), "lr": settings.body_lr},
            {"params": [*made.parameters(), *head.parameters()], "lr": head_lr},
        ],
        weight_decay=WEIGHT_DECAY,
    )
    steps_per_epoch = max(1, len(labels) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=[settings.body_lr, head_lr],
        total_steps=settings.epochs * steps_per_epoch,
        pct_start=0.1,
    )
    x_all = torch.from_numpy(activations)
    targets = torch.nn.functional.one_hot(torch.from_numpy(labels.astype(np.int64)), n_classes)
    if teacher_logits is not None:  # soft targets ride along with the labels through mixup
        soft = torch.softmax(torch.from_numpy(teacher_logits) / KD_TEMPERATURE, dim=1)
        targets = torch.cat([targets.float(), soft], dim=1)
    epochs: Any = range(settings.epochs)
    if progress:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc="fine-tune", unit="epoch", leave=False, disable=None)
    model = FineTuned(top, head)
    for _ in epochs:
        top.train()
        freeze_batchnorm(pretrained)
        order = rng.permutation(len(labels))
        total = 0.0
        for step in range(steps_per_epoch):
            rows = order[step * BATCH : (step + 1) * BATCH]
            x, y = mix(x_all[rows], targets[rows].float(), settings.mixup, rng)
            x = torch.roll(x, int(rng.integers(-MAX_ROLL, MAX_ROLL + 1)), dims=3)
            loss = loss_of(model._forward(x), y, n_classes)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach())
        if progress:
            epochs.set_postfix(loss=f"{total / steps_per_epoch:.3f}")
    top.eval()
    return model


def loss_of(logits: Any, targets: Any, n_classes: int) -> Any:
    """Cross-entropy on the (mixed) labels; with teacher targets appended, blended
    with the softened divergence, scaled by T^2 so its gradients keep their size."""
    import torch

    labels = targets[:, :n_classes]
    hard = -(labels * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    if targets.shape[1] == n_classes:
        return hard
    soft = targets[:, n_classes:]
    student = torch.log_softmax(logits / KD_TEMPERATURE, dim=1)
    kd = torch.nn.functional.kl_div(student, soft, reduction="batchmean")
    return (1 - KD_WEIGHT) * hard + KD_WEIGHT * KD_TEMPERATURE**2 * kd


def mix(x: Any, y: Any, alpha: float, rng: np.random.Generator) -> tuple[Any, Any]:
    """Mixup: each example blended with another of the batch, labels likewise."""
    import torch

    if alpha <= 0 or len(x) < 2:
        return x, y
    lam = float(rng.beta(alpha, alpha))
    other = torch.from_numpy(rng.permutation(len(x)))
    return lam * x + (1 - lam) * x[other], lam * y + (1 - lam) * y[other]
