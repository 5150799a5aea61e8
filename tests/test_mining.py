"""Hard-negative mining (train --mine-rounds): the windows a model scores highest
on the negatives' train part join the background, weighted, and it fits again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_audio.errors import ConfigError
from export.card import negatives_sentence
from export.data import BACKGROUND, Clip, ClipSet, FeatureCache, Split
from export.fit import NegativeDraw
from export.material import cap_validation_negatives
from export.mining import MiningSettings, ScoredWindow, hardest, mine_round, score_files
from export.negatives import MINED_GROUP, NEGATIVE_TRAIN_GROUP, group_of

from .test_negatives import FRONTEND, PLAN, noise, write_wav
from .test_train import make_folder_dataset, run_export


def loud_moments(root: Path, files: int = 6, seconds: float = 6.0) -> list[Path]:
    """Quiet hiss with one loud burst per file, at a known second."""
    paths = []
    rate = 8000
    for i in range(files):
        x = noise(seconds, rate, i) * 0.05
        burst = 1 + i % 4  # the second that holds the burst
        x[burst * rate : burst * rate + rate // 2] *= 40
        path = root / f"n{i}.wav"
        write_wav(path, np.clip(x, -1, 1), rate)
        paths.append(path)
    return paths


def loudness_model(batch: np.ndarray) -> np.ndarray:
    """A stand-in for a model: the louder a window, the surer it is of a keyword
    (P(background) falls with the window's mean level)."""
    level = batch.mean(axis=(1, 2))
    p_keyword = 1 / (1 + np.exp(-(level + 40) / 3))
    return np.stack([p_keyword, 1 - p_keyword], axis=1)


def test_scoring_finds_the_loud_moments_and_mining_takes_the_highest(tmp_path):
    files = loud_moments(tmp_path / "neg")
    cache = FeatureCache(FRONTEND, tmp_path / "cache")
    scored = score_files(files, cache, PLAN, stride=25, probabilities=loudness_model, background=1)
    # every sounding window of every file, a stride of 25 frames (0.25 s) apart
    assert len({w.path for w in scored}) == 6 and len(scored) > 6 * 15
    chosen = hardest(scored, count=6, per_file=1, frames=PLAN.frames)
    assert sorted(w.path for w in chosen) == sorted(files)  # one per file, as asked
    for window in chosen:
        burst = 1 + int(window.path.stem[1:]) % 4
        # the chosen window holds its file's burst (100 frames a second)
        assert window.start <= burst * 100 + 50 and window.start + PLAN.frames >= burst * 100
        others = [w.score for w in scored if w.path == window.path]
        assert window.score == max(others)


def test_the_hardest_windows_respect_the_per_file_cap_and_do_not_overlap():
    path_a, path_b = Path("a.wav"), Path("b.wav")
    scored = [ScoredWindow(0.99 - 0.01 * k, path_a, 10 * k) for k in range(10)]
    scored += [ScoredWindow(0.5, path_b, 0)]
    chosen = hardest(scored, count=5, per_file=2, frames=98)
    a_starts = [w.start for w in chosen if w.path == path_a]
    assert len(a_starts) == 2 and a_starts[0] == 0
    assert abs(a_starts[1] - a_starts[0]) * 2 >= 98  # the next stride is the same alarm
    assert [w.path for w in chosen].count(path_b) == 1
    assert len(hardest(scored, count=1, per_file=4, frames=98)) == 1


def test_a_round_adds_the_mined_windows_to_training_only_weighted(tmp_path):
    files = loud_moments(tmp_path / "neg")
    cache = FeatureCache(FRONTEND, tmp_path / "cache")
    existing = Clip(np.zeros((98, 40), np.float32), "yes", "g", "clip")
    clips = ClipSet([existing], ["yes", BACKGROUND])
    split = Split([0], [], [], ["t"], ["v"])
    settings = MiningSettings(rounds=1, windows=4, weight=3, per_file=1)

    def probabilities(model, batch):
        assert model == "model"
        return loudness_model(batch)

    out, new_split, report = mine_round(
        1, "model", clips, split, files, cache, PLAN, settings, probabilities
    )
    added = out.clips[1:]
    assert len(added) == 4 and all(c.label == BACKGROUND for c in added)
    assert all("#mined1" in c.source for c in added)
    assert new_split.train == [0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert new_split.validation == [] and new_split.test == []
    assert report.added == 4 and report.windows_scored > 0
    assert report.top_score >= report.lowest_added
    assert "join the background" in report.describe()


def test_mining_needs_a_background_class(tmp_path):
    clips = ClipSet([], ["yes", "no"])
    with pytest.raises(ConfigError, match="background class"):
        mine_round(
            1, None, clips, Split([], [], [], [], []), [], FeatureCache(FRONTEND, tmp_path),
            PLAN, MiningSettings(rounds=1), lambda m, b: b,
        )  # fmt: skip


@pytest.mark.parametrize(
    "settings, fragment",
    [
        (MiningSettings(rounds=-1), "--mine-rounds cannot be negative"),
        (MiningSettings(windows=0), "--mine-windows must be at least 1"),
        (MiningSettings(weight=0), "--mine-weight must be at least 1"),
        (MiningSettings(per_file=0), "--mine-per-file must be at least 1"),
    ],
)
def test_bad_mining_settings_are_clear_errors(settings, fragment):
    with pytest.raises(ConfigError, match=fragment):
        settings.check()


def test_the_card_says_how_the_negatives_were_mined():
    negatives = {
        "train": {"hours": 1.0},
        "mining": MiningSettings(rounds=2, windows=128).to_dict(),
    }
    rounds = [
        {"round": 1, "above_half": 900, "windows_scored": 14400, "added": 128},
        {"round": 2, "above_half": 120, "windows_scored": 14400, "added": 128},
    ]
    sentence = negatives_sentence(negatives, rounds)
    assert "2 round(s) of mining" in sentence and "128 highest" in sentence
    assert "round 2: 120 of 14,400 windows scored above 0.5" in sentence
    assert "mining" not in negatives_sentence({"train": {"hours": 1.0}})


def test_train_with_mining_records_each_round(tmp_path):
    data = make_folder_dataset(tmp_path / "data", per_class=6)
    root = tmp_path / "neg"
    for i in range(12):
        write_wav(root / f"n{i}.wav", noise(4, 16000, i), 16000)
    out = tmp_path / "run"
    result = run_export(
        "train", "--data", str(data), "--layout", "folder", "--out", str(out),
        "--model", "vgg", "--size", "tiny", "--epochs", "2", "--quiet", "--no-reverb",
        "--cache", str(tmp_path / "cache"), "--negatives", str(root),
        "--mine-rounds", "2", "--mine-windows", "5", "--mine-weight", "2",
        "--negatives-per-epoch", "6",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["negatives"]["mining"] == MiningSettings(rounds=2, windows=5, weight=2).to_dict()
    rounds = json.loads((out / "metrics.json").read_text())["mining"]
    assert [r["round"] for r in rounds] == [1, 2] and all(r["added"] == 5 for r in rounds)
    train_files = config["negatives"]["train"]["files"]
    # only the train part is mined: 4 s files, one window a 0.25 s stride
    assert all(r["windows_scored"] <= train_files * 13 for r in rounds)
    log = (out / "train.log").read_text()
    assert "mining round 1:" in log and "mining round 2:" in log and "mined 2 epoch" in log
    assert "6 of " in log and "training negative windows drawn afresh each epoch" in log


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--mine-rounds", "1"], "add --negatives"),
        (["--mine-rounds", "1", "--negatives", "NEG", "--mine-windows", "0"], "--mine-windows"),
        (["--mine-rounds", "1", "--negatives", "NEG", "--backbone", "x"], "does not mine yet"),
        (["--negatives-per-epoch", "10"], "draws from --negatives"),
        (["--negatives-per-epoch", "0", "--negatives", "NEG"], "at least 1"),
        (["--background-weight", "0"], "--background-weight must be a positive number"),
        (
            ["--negatives", "NEG", "--negatives-per-epoch", "5", "--backbone", "x"],
            "not with --backbone",
        ),
        (
            ["--negatives", "NEG", "--background-weight", "1", "--backbone", "x"],
            "not with --backbone",
        ),
    ],
)
def test_bad_mining_options_are_clear_errors(tmp_path, extra, fragment):
    data = make_folder_dataset(tmp_path / "data", per_class=3)
    root = tmp_path / "neg"
    write_wav(root / "n.wav", noise(2, 16000, 0), 16000)
    extra = [str(root) if e == "NEG" else e for e in extra]
    result = run_export(
        "train", "--data", str(data), "--layout", "folder", "--out", str(tmp_path / "r"),
        "--quiet", "--cache", str(tmp_path / "cache"), *extra,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr


def drawn_clips() -> ClipSet:
    """10 keyword clips, 100 windows of the negatives' train part, 4 mined ones."""
    frame = np.zeros((98, 40), np.float32)
    clips = [Clip(frame, "yes", "g", f"k{i}") for i in range(10)]
    clips += [Clip(frame, BACKGROUND, NEGATIVE_TRAIN_GROUP, f"n{i}") for i in range(100)]
    clips += [Clip(frame, BACKGROUND, MINED_GROUP, f"m{i}") for i in range(4)]
    return ClipSet(clips, ["yes", BACKGROUND])


def test_each_epoch_draws_fresh_negatives_and_keeps_everything_else():
    from types import SimpleNamespace

    clips = drawn_clips()
    windows = np.array([(i, 0) for i in range(len(clips.clips))])
    draw = NegativeDraw.of(clips, windows, SimpleNamespace(negatives_per_epoch=20))
    assert draw.epoch_size == 10 + 4 + 20 and len(draw.pool) == 100
    labels = clips.label_ids()
    assert draw.class_counts(labels, 2).tolist() == [10, 24]
    rng = np.random.default_rng(0)
    epochs = [draw.epoch(rng) for _ in range(15)]
    seen: set[int] = set()
    for rows in epochs:
        chosen = {int(ci) for ci in rows[:, 0]}
        assert set(range(10)) | set(range(110, 114)) <= chosen  # keywords and mined, always
        drawn = chosen - set(range(10)) - set(range(110, 114))
        assert len(drawn) == 20 and drawn <= set(range(10, 110))
        seen |= drawn
    assert len(seen) > 90  # over the run nearly every negative is heard
    assert {int(c) for c in epochs[0][:, 0]} != {int(c) for c in epochs[1][:, 0]}
    everything = NegativeDraw.of(clips, windows, SimpleNamespace(negatives_per_epoch=None))
    assert everything.epoch_size == len(windows) and everything.epoch(rng) is everything.fixed


def test_validation_negatives_are_capped_in_proportion_and_seeded():
    frame = np.zeros((98, 40), np.float32)
    val_group = group_of("validation")
    clips = [Clip(frame, "yes", "v", f"k{i}") for i in range(5)]
    clips += [Clip(frame, BACKGROUND, val_group, f"n{i}") for i in range(200)]
    clipset = ClipSet(clips, ["yes", BACKGROUND])
    split = Split([], list(range(205)), [], ["t"], ["v"])
    capped = cap_validation_negatives(clipset, split, per_epoch=70, seed=0)
    assert set(range(5)) <= set(capped.validation)
    assert len(capped.validation) == 5 + 15  # 70 drawn a training epoch: 15 validation
    again = cap_validation_negatives(clipset, split, per_epoch=70, seed=0)
    assert again.validation == capped.validation  # one subset for every epoch
    assert cap_validation_negatives(clipset, split, per_epoch=1000, seed=0) == split


def test_a_background_weight_keeps_the_classes_balanced_and_weighs_background_as_asked():
    from export.fit import class_weights

    counts = np.array([100.0, 300.0, 4000.0])  # two classes, then the background
    balanced = class_weights(counts, 2, None)
    assert balanced is not None
    np.testing.assert_allclose(balanced * counts, balanced[0] * counts[0])  # same totals
    assert balanced[2] < balanced[0] / 20  # the background window the model learns to ignore
    detector = class_weights(counts, 2, 1.0)
    assert detector is not None and detector[2] == 1.0
    np.testing.assert_allclose(detector[:2] * counts[:2], [200.0, 200.0])  # balanced, mean 1
    assert class_weights(np.array([100.0, 110.0]), None, 2.0) is None  # no background: as before
    assert class_weights(np.array([100.0, 110.0, 120.0]), 2, 0.5)[2] == 0.5
