"""Checks after training that say when a run went wrong, so a user never ships a
model that trained to chance without being told.

They are warnings, not errors: each names what it saw and what to try. They are
printed last (where they cannot be missed) and stored in metrics.json.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

# The CNN this many points below the logistic baseline: something is wrong.
BASELINE_MARGIN = 0.05
# Below this many training clips in a class, figures swing with every clip.
MIN_CLIPS_PER_CLASS = 20
# A model that gets fewer of its own (clean) training clips right underfits.
MIN_TRAIN_ACCURACY = 0.9
# Validation accuracy in the last tenth of the epochs above the best of the
# first three quarters by this much: the run was still learning when it ended.
STILL_IMPROVING_GAIN = 0.02
# Classes named in a warning at most: the rest are counted.
MAX_LISTED = 6


@dataclass(frozen=True)
class Check:
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def below_baseline(accuracy: float, baseline: float, pretrained: bool = False) -> Check | None:
    """A model under the logistic baseline on the same split; `pretrained` for a
    network built on --backbone, whose remedy is another network, not more steps."""
    if accuracy >= baseline - BASELINE_MARGIN:
        return None
    gap = (
        f"{100 * accuracy:.1f}% on held-out clips, {100 * (baseline - accuracy):.1f} points "
        f"below the logistic baseline ({100 * baseline:.1f}%) on the same split"
    )
    if pretrained:
        return Check(
            "below_baseline",
            f"the pretrained network's model scored {gap}: its features do not separate "
            "these classes; try the other --backbone (speech-embedding for spoken words, "
            "efficientat-mn04 for sounds), --fine-tune N, or train without --backbone",
        )
    return Check(
        "below_baseline",
        f"the CNN scored {gap}: it is underfitting or the data is too "
        "small for a CNN from scratch; try more steps (--min-steps, --epochs), a smaller "
        "--size, or use the baseline's figure as what this data supports",
    )


def underfitting(train_accuracy: float) -> Check | None:
    if train_accuracy >= MIN_TRAIN_ACCURACY:
        return None
    return Check(
        "underfitting",
        f"the model gets only {100 * train_accuracy:.1f}% of its own training clips right: "
        "train longer (--min-steps, --epochs), use a bigger --size, or weaker augmentation "
        "(--no-specaugment, --mixup 0)",
    )


def still_improving(val_accuracy: Sequence[float], stopped_early: bool) -> Check | None:
    """Validation accuracy per epoch; quiet when early stopping ended the run."""
    n = len(val_accuracy)
    if stopped_early or n < 8:
        return None
    head = max(val_accuracy[: int(0.75 * n)])
    tail = max(val_accuracy[n - max(1, n // 10) :])
    if tail - head < STILL_IMPROVING_GAIN:
        return None
    return Check(
        "still_improving",
        f"validation accuracy was still rising at the last epoch ({100 * head:.1f}% at 3/4 "
        f"of the run, {100 * tail:.1f}% at the end): raise --epochs or --min-steps",
    )


def few_clips(train_clips_per_class: Mapping[str, int]) -> Check | None:
    few = {k: v for k, v in sorted(train_clips_per_class.items()) if v < MIN_CLIPS_PER_CLASS}
    if not few:
        return None
    shown = list(few.items())[:MAX_LISTED]
    listed = ", ".join(f"{k} {v}" for k, v in shown)
    if len(few) > len(shown):
        listed += f" and {len(few) - len(shown)} more"
    return Check(
        "few_clips",
        f"few training clips in {len(few)} class(es) ({listed}; fewer than "
        f"{MIN_CLIPS_PER_CLASS}): the figures swing with every clip; record more, from "
        "several speakers or sessions",
    )


def no_groups(note: str) -> Check:
    return Check("no_groups", note)


def collect(*checks: Check | None) -> list[Check]:
    return [c for c in checks if c is not None]


def format_checks(checks: Sequence[Check]) -> list[str]:
    """Lines to print last, framed so that they stand out in a long log."""
    if not checks:
        return ["checks: none fired (baseline, underfitting, still improving, clips, groups)"]
    rule = "!" * 78
    lines = [rule, f"checks: {len(checks)} warning(s) about this run"]
    lines += [f"  warning [{c.code}]: {c.message}" for c in checks]
    lines.append(rule)
    return lines
