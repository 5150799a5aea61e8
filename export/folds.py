"""Which clips train, validate and test: folds by group, so no speaker, fold or
recording is on two sides of a split."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from edge_audio.errors import DatasetError

from .data import (
    ClipSet,
)

# Few groups (speakers, folds): hold out whole groups one at a time.
# Many groups (one per recording): k folds of groups, stratified by label.
FEW_GROUPS = 10


K_FOLDS = 5


@dataclass
class Fold:
    name: str
    test_groups: list[str]
    validation_groups: list[str]


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
