"""How long to train, in optimiser steps rather than a fixed number of passes.

A fixed epoch count is a trap on small data: 300 clips at a batch of 64 give 5
steps a pass, so "20 epochs" is 100 updates and a CNN ends at chance. The plan
below sizes the run by steps, and makes early stopping unable to end a run in
its first half, while the one-cycle learning rate is still high and validation
accuracy is noisy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# An epoch is at least this many steps: a small dataset passes over its windows
# several times per epoch, so that logs, validation and patience keep a useful
# grain (validating every 2 steps would cost more than training).
MIN_EPOCH_STEPS = 25
# Optimiser steps a run gets at least, however small the data.
DEFAULT_MIN_STEPS = 1500
# Early stopping needs this share of the planned epochs without a better
# validation accuracy, and cannot fire before MIN_RUN_SHARE of the plan.
PATIENCE_SHARE = 0.2
MIN_RUN_SHARE = 0.5
MAX_EPOCHS = 400


@dataclass(frozen=True)
class Schedule:
    epochs: int  # planned epochs (early stopping may end sooner)
    passes_per_epoch: int  # passes over the training windows in one epoch
    steps_per_epoch: int
    patience: int  # epochs without a better validation accuracy before stopping
    min_epochs: int  # early stopping never ends a run before this epoch
    reason: str  # one line for the log: why this many epochs

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_steps": self.total_steps}


def plan_schedule(
    n_windows: int,
    batch_size: int,
    preset_epochs: int,
    *,
    epochs: int | None = None,
    min_steps: int = DEFAULT_MIN_STEPS,
    patience: int | None = None,
) -> Schedule:
    """The schedule for `n_windows` training windows.

    `epochs` (the user's --epochs) is taken as given; otherwise the preset's epoch
    count is raised until the run has `min_steps` steps. `patience` (--patience)
    is a floor on the share-based patience."""
    if n_windows <= 0:
        raise ValueError("no training windows")
    if batch_size <= 0:
        raise ValueError("batch size must be positive")
    steps_per_pass = math.ceil(n_windows / batch_size)
    passes = max(1, math.ceil(MIN_EPOCH_STEPS / steps_per_pass))
    steps_per_epoch = steps_per_pass * passes
    if epochs is not None:
        planned, reason = epochs, f"{epochs} epochs as asked (--epochs)"
    else:
        needed = math.ceil(min_steps / steps_per_epoch)
        planned = min(MAX_EPOCHS, max(preset_epochs, needed))
        reason = (
            f"{planned} epochs: the preset's {preset_epochs}"
            if planned == preset_epochs
            else f"{planned} epochs, so that the run gets at least {min_steps} steps"
        )
    planned = max(1, planned)
    share_patience = math.ceil(PATIENCE_SHARE * planned)
    return Schedule(
        epochs=planned,
        passes_per_epoch=passes,
        steps_per_epoch=steps_per_epoch,
        patience=max(share_patience, patience or 0),
        min_epochs=math.ceil(MIN_RUN_SHARE * planned),
        reason=f"{reason} of {steps_per_epoch} steps"
        + (f" ({passes} passes over {n_windows} windows)" if passes > 1 else ""),
    )
