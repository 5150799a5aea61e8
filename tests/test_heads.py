"""The heads on a pretrained network's embedding and how the linear head's L2
penalty is chosen (export/heads.py, export/transfer.py). No pretrained weights
needed: the embeddings here are made up."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge_audio.errors import ConfigError
from export.data import Clip, ClipSet
from export.heads import FALLBACK_L2, L2_GRID, choose_l2
from export.transfer import BackboneData, head_l2_setting, inner_folds


def test_the_best_penalty_is_chosen_and_a_tie_goes_to_the_stronger_one():
    accuracy = {1e-4: 0.80, 1e-3: 0.90, 1e-2: 0.90, 0.1: 0.85}
    choice = choose_l2(accuracy.__getitem__, folds=4, grid=tuple(accuracy))
    assert choice.l2 == 1e-2 and choice.how == "chosen" and choice.folds == 4
    assert choice.scores == accuracy
    assert "head L2 0.01 chosen by 4-fold cross-validation" in choice.describe()
    assert choice.record()["cv_accuracy"] == {"0.0001": 0.8, "0.001": 0.9, "0.01": 0.9, "0.1": 0.85}
    # The grid spans half-decades from 1e-4 to 1, strongest last.
    assert L2_GRID[0] == 1e-4 and L2_GRID[-1] == 1.0 and list(L2_GRID) == sorted(L2_GRID)


def test_choosing_needs_a_penalty_to_try():
    with pytest.raises(ValueError, match="at least one penalty"):
        choose_l2(lambda l2: 1.0, folds=2, grid=())


@pytest.mark.parametrize(
    ("given", "expected"), [(None, None), ("auto", None), ("0.01", 0.01), ("0", 0.0), (0.5, 0.5)]
)
def test_head_l2_is_a_penalty_or_auto(given, expected):
    assert head_l2_setting(given) == expected


@pytest.mark.parametrize("given", ["strong", "-0.1", "nan", "inf"])
def test_a_bad_head_l2_is_a_clear_error(given):
    with pytest.raises(ConfigError, match=f"--head-l2 {given}: .*'auto'"):
        head_l2_setting(given)


def clips_of(groups: list[str], per_group: int = 6, synthetic: int = 0) -> ClipSet:
    made = []
    for g in groups:
        for i in range(per_group):
            made.append(Clip(np.zeros((4, 2), np.float32), "ab"[i % 2], g, f"{g}/{i}.wav"))
    for i in range(synthetic):
        made.append(Clip(np.zeros((4, 2), np.float32), "ab"[i % 2], "synth", f"s{i}", True))
    return ClipSet(made, ["a", "b"])


def test_inner_folds_hold_out_training_groups_only_and_never_a_synthetic_clip():
    clips = clips_of(["george", "jackson", "lucas", "theo"], synthetic=4)
    training = [i for i, c in enumerate(clips.clips) if c.group != "theo"]
    folds = inner_folds(clips, training, seed=0)
    held = [{clips.clips[i].group for i in fold} for fold in folds]
    assert sorted(map(sorted, held)) == [["george"], ["jackson"], ["lucas"]]
    assert all(not clips.clips[i].synthetic for fold in folds for i in fold)
    assert sorted(i for fold in folds for i in fold) == sorted(
        i for i in training if not clips.clips[i].synthetic
    )


def head_data(clips: ClipSet, embeddings: list[np.ndarray], l2: float | None) -> BackboneData:
    """A head's data with no network: the penalty choice and fit read embeddings only."""
    no_network: Any = None
    return BackboneData(
        clips, no_network, no_network, 4, False, embeddings, None, None, 0, None, l2, None, 0, False
    )


def separable_embeddings(clips: ClipSet, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = clips.label_ids()
    return [(rng.normal(0, 1, (1, 8)) + 3 * y).astype(np.float32) for y in labels]


def test_the_penalty_is_chosen_without_reading_a_clip_outside_the_training_side():
    clips = clips_of(["a1", "a2", "a3", "test"])
    embeddings = separable_embeddings(clips)
    test = [i for i, c in enumerate(clips.clips) if c.group == "test"]
    for i in test:  # any use of a test clip would spoil every score with NaN
        embeddings[i] = np.full((1, 8), np.nan, np.float32)
    training = [i for i in range(len(clips.clips)) if i not in test]
    choice = head_data(clips, embeddings, None).head_l2(training)
    assert choice.how == "chosen" and choice.folds == 3
    assert set(choice.scores) == set(L2_GRID)
    assert all(s == 1.0 for s in choice.scores.values())  # separable: every penalty right
    assert choice.l2 == max(L2_GRID)  # so the tie goes to the strongest


def test_a_given_penalty_is_kept_and_too_few_groups_fall_back():
    clips = clips_of(["only"])
    data = head_data(clips, separable_embeddings(clips), 0.25)
    members = list(range(len(clips.clips)))
    given = data.head_l2(members)
    assert (given.l2, given.how, given.scores) == (0.25, "given", {})
    fallback = head_data(clips, separable_embeddings(clips), None).head_l2(members)
    assert (fallback.l2, fallback.how) == (FALLBACK_L2, "fallback")
    assert "too few groups" in fallback.describe()
    fitted = data.fit(members)
    probabilities, _ = fitted.window_probabilities(members)
    assert (probabilities.argmax(1) == clips.label_ids()).all()
