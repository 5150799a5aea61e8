"""The training recipe: schedules sized in steps, the post-training checks, the
data defects fixed on the way, final fits, small datasets and torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_audio.audio import write_wav
from edge_audio.windows import FLOOR_DB, WindowPlan
from export import checks
from export.schedule import DEFAULT_MIN_STEPS, MIN_EPOCH_STEPS, plan_schedule

from .conftest import REPO
from .trainrun import train_tiny
from .wavgen import tone

# --- the schedule -----------------------------------------------------------------


def test_a_small_dataset_gets_enough_steps():
    # 300 windows at a batch of 64: 5 steps a pass, so the preset's 20 epochs
    # would be 100 updates. The plan raises it to the minimum number of steps.
    s = plan_schedule(300, 64, 20)
    assert s.passes_per_epoch == 5 and s.steps_per_epoch == 25
    assert s.total_steps >= DEFAULT_MIN_STEPS and s.epochs == 60
    assert s.min_epochs == 30 and s.patience == 12
    assert "at least 1500 steps" in s.reason and "5 passes" in s.reason


def test_a_large_dataset_keeps_the_preset_and_explicit_epochs_win():
    big = plan_schedule(20_000, 64, 40)
    assert big.epochs == 40 and big.passes_per_epoch == 1 and big.steps_per_epoch == 313
    assert "the preset's 40" in big.reason
    asked = plan_schedule(300, 64, 20, epochs=8)
    assert asked.epochs == 8 and "as asked" in asked.reason
    assert plan_schedule(300, 64, 20, patience=50).patience == 50
    assert plan_schedule(10, 64, 1).steps_per_epoch >= MIN_EPOCH_STEPS


def test_bad_schedules_are_errors():
    with pytest.raises(ValueError, match="no training windows"):
        plan_schedule(0, 64, 20)
    with pytest.raises(ValueError, match="batch size"):
        plan_schedule(10, 0, 20)


# --- the checks ---------------------------------------------------------------------


def test_each_check_fires_on_its_case_and_stays_quiet_on_a_healthy_run():
    assert checks.below_baseline(0.25, 0.99).code == "below_baseline"
    assert checks.below_baseline(0.96, 0.99) is None
    pretrained = checks.below_baseline(0.25, 0.99, pretrained=True)
    assert pretrained is not None and "--backbone" in pretrained.message
    assert "CNN" not in pretrained.message
    assert checks.underfitting(0.5).code == "underfitting"
    assert checks.underfitting(0.97) is None
    rising = [0.3 + 0.02 * i for i in range(20)]
    assert checks.still_improving(rising, stopped_early=False).code == "still_improving"
    assert checks.still_improving(rising, stopped_early=True) is None
    plateau = [0.5, 0.8, 0.9, 0.92] + [0.93] * 16
    assert checks.still_improving(plateau, stopped_early=False) is None
    few = checks.few_clips({"yes": 5, "no": 40})
    assert few.code == "few_clips" and "yes 5" in few.message and "no 40" not in few.message
    assert checks.few_clips({"yes": 25, "no": 40}) is None
    many = checks.few_clips({f"class{i:02d}": 16 for i in range(50)})
    assert "50 class(es)" in many.message and "class05 16 and 44 more" in many.message
    lines = checks.format_checks([few])
    assert lines[0] == lines[-1] == "!" * 78 and "warning [few_clips]" in lines[2]
    assert checks.format_checks([])[0].startswith("checks: none fired")


# --- data defects -------------------------------------------------------------------


def fake_clip_set(frames_list, mels: int = 8):
    from export.data import Clip, ClipSet

    rng = np.random.default_rng(0)
    clips = [
        Clip(rng.uniform(-60, -20, (n, mels)).astype(np.float32), "a", f"g{i}", f"c{i}")
        for i, n in enumerate(frames_list)
    ]
    return ClipSet(clips, ["a"])


def test_digital_silence_never_reaches_training():
    from export.data import index_windows

    clips = fake_clip_set([150, 60])
    clips.clips[0].features[50:] = FLOOR_DB  # only the first third holds sound
    clips.clips[1].features[:] = FLOOR_DB  # silent throughout
    rows = index_windows(clips, [0, 1], WindowPlan(50, "segments", 50))
    # The silent windows are gone; clip 1 (60 frames, one centred window) keeps it.
    assert rows.tolist() == [[0, 0], [1, 5]]


def test_a_whole_clip_window_still_moves_in_time():
    from export.data import index_windows, make_batch

    clips = fake_clip_set([50])
    plan = WindowPlan(50, "segments", 25)
    rows = index_windows(clips, [0], plan)
    fixed = make_batch(clips, rows, plan)
    rng = np.random.default_rng(1)
    moved = [make_batch(clips, rows, plan, rng, max_shift=12)[0] for _ in range(8)]
    assert sum(not np.array_equal(m, fixed[0]) for m in moved) >= 6
    for m in moved:  # rotated, so nothing is lost
        np.testing.assert_array_equal(np.sort(m, axis=None), np.sort(fixed[0], axis=None))


def test_calibration_uses_the_validation_groups_after_a_refit():
    from dataclasses import replace

    from edge_audio.frontend import FrontendConfig
    from export.run_config import DatasetRecord, ModelRecord, RunConfig, RunWindow, SplitRecord
    from export.trained_run import unheard_groups

    config = RunConfig(
        model=ModelRecord("dscnn", "small", 0, 0, 0, 80.0, (98, 40)),
        frontend=FrontendConfig(),
        labels=("one", "two"),
        window=RunWindow(98, "keyword", 25, 1.0, 0.25),
        dataset=DatasetRecord("fsdd", "fsdd", 2, ("theo", "nicolas", "lucas")),
        split=SplitRecord(("theo",), ("nicolas",)),
    )
    assert unheard_groups(replace(config, training={"refit": False})) == {"theo", "nicolas"}
    assert unheard_groups(replace(config, training={"refit": True})) == {"theo"}


# --- training on a small dataset ---------------------------------------------------------


def make_small_dataset(root: Path, speakers=("ann", "bob", "cy", "dee"), takes: int = 5) -> Path:
    """Four 'words' (tone pairs) by four 'speakers' (a pitch offset each), named
    {word}/{speaker}_{take}.wav: a speaker's takes must stay on one side."""
    rng = np.random.default_rng(0)
    words = {"one": (500, 900), "two": (700, 1500), "three": (1100, 600), "four": (1600, 2400)}
    for s, speaker in enumerate(speakers):
        pitch = 1 + 0.06 * s
        for word, (f1, f2) in words.items():
            for take in range(takes):
                n = 12_000
                x = np.concatenate(
                    [tone(n // 2, freq=f1 * pitch, amp=0.3), tone(n // 2, freq=f2 * pitch, amp=0.3)]
                )
                x = x + rng.normal(0, 0.03, n)
                path = root / word / f"{speaker}_{take}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_wav(path, x.astype(np.float32), 16000)
    return root


def train(data: Path, out: Path, cache: Path, *extra: str) -> int:
    return train_tiny(data, out, cache, "--threads", "1", *extra)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return make_small_dataset(tmp_path_factory.mktemp("small"))


@pytest.mark.slow
def test_the_recipe_learns_a_small_dataset_that_a_fixed_epoch_count_underfits(small, tmp_path):
    pytest.importorskip("torch", reason="training needs the train extra")
    groups = "{label}/{group}_*.wav"
    common = ("--groups", groups, "--holdout-group", "dee", "--val-group", "cy")
    # The old default was the folder preset's 20 epochs of one pass, here 1 step
    # each: 20 updates. One epoch of the new recipe (25 steps) is about that.
    assert train(small, tmp_path / "fixed", tmp_path / "cache", *common, "--epochs", "1") == 0
    fixed = json.loads((tmp_path / "fixed" / "metrics.json").read_text())
    codes = {c["code"] for c in fixed["checks"]}
    assert {"below_baseline", "underfitting"} & codes, fixed["checks"]
    assert "few_clips" in codes  # 10 training clips a word
    assert "no_groups" not in codes  # they were declared
    log = (tmp_path / "fixed" / "train.log").read_text()
    assert "warning [" in log.splitlines()[-3] or "warning [" in log

    # The recipe: sized in steps (a smaller minimum keeps the test quick).
    assert train(small, tmp_path / "sized", tmp_path / "cache", *common, "--min-steps", "400") == 0
    sized = json.loads((tmp_path / "sized" / "metrics.json").read_text())
    config = json.loads((tmp_path / "sized" / "config.json").read_text())
    assert config["schedule"]["total_steps"] >= 400
    # config.json is the typed RunConfig's: it reads back to the same document.
    from export.run_config import RunConfig

    assert config["schema_version"] == 1
    assert RunConfig.from_dict(config).to_dict() == config
    assert sized["test"]["accuracy"] >= 0.9 > fixed["test"]["accuracy"]
    assert sized["test"]["accuracy"] >= sized["baseline"]["accuracy"] - 0.05
    assert not {"below_baseline", "underfitting"} & {c["code"] for c in sized["checks"]}
    # Early stopping keeps the best validation *clip* accuracy: the figure users get.
    best = sized["best_epoch"]
    history = (tmp_path / "sized" / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    row = dict(zip(header, history[best].split(","), strict=True))
    assert float(row["val_acc"]) == pytest.approx(sized["validation"]["accuracy"])
    assert config["dataset"]["groups_declared"] and config["split"]["test_groups"] == ["dee"]


@pytest.mark.slow
def test_declared_groups_never_sit_on_two_sides_and_no_groups_warns(small, tmp_path):
    pytest.importorskip("torch", reason="training needs the train extra")
    out = tmp_path / "cv"
    code = train(
        small, out, tmp_path / "cache", "--groups", "{group}_*.wav", "--cv", "--epochs", "1"
    )
    assert code == 0
    summary = json.loads((out / "cv.json").read_text())
    assert sorted(g for f in summary["folds"] for g in f["test_groups"]) == [
        "ann",
        "bob",
        "cy",
        "dee",
    ]
    for fold in summary["folds"]:
        config = json.loads((out / f"fold-{fold['name']}" / "config.json").read_text())
        held = set(config["split"]["test_groups"]) | set(config["split"]["validation_groups"])
        assert len(held) == 2 and not set(config["split"]["test_groups"]) & set(
            config["split"]["validation_groups"]
        )
    # Without --groups: every file is its own group, and the run says so.
    assert train(small, tmp_path / "flat", tmp_path / "cache", "--epochs", "1") == 0
    flat = json.loads((tmp_path / "flat" / "metrics.json").read_text())
    assert "no_groups" in {c["code"] for c in flat["checks"]}


@pytest.mark.slow
def test_a_final_fit_on_every_group_quantizes_with_a_small_calibration_set(small, tmp_path, capsys):
    pytest.importorskip("torch", reason="training needs the train extra")
    pytest.importorskip("litert_torch", reason="quantising needs the train extra")
    pytest.importorskip("ai_edge_litert", reason="verification runs the .tflite files")
    from export.cli import main as export_main

    run = tmp_path / "run"
    extra = ("--groups", "{group}_*.wav", "--cv", "--fit-all", "--epochs", "6")
    assert train(small, run, tmp_path / "cache", *extra) == 0
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    cv = json.loads((run / "cv.json").read_text())
    assert config["split"] == {"test_groups": [], "validation_groups": [], "final_fit": True}
    assert config["schedule"]["epochs"] == round(np.median([f["best_epoch"] for f in cv["folds"]]))
    assert metrics["estimate"]["accuracy"] == cv["accuracy"]
    assert (run / "confusion.png").stat().st_size > 0  # the pooled CV confusion

    bundle = tmp_path / "bundle"
    capsys.readouterr()
    code = export_main(["quantize", str(run), "--out", str(bundle), "--cache", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert code == 0, out
    # 80 clips give fewer windows than the default 256: a warning, not a refusal.
    assert "warning: only" in out and "final fit on every group" in out
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["training"]["final_fit"] is True
    assert manifest["training"]["cross_validation"]["accuracy_mean"] == cv["accuracy"]["mean"]
    # Every file trained the final model: the digest holds all 80.
    assert manifest["training"]["files_digest"]["count"] == 80
    card = (bundle / "card.md").read_text()
    assert "final fit" in card and "Cross-validated estimate" in card
    assert "as the training data" not in card


@pytest.mark.slow
def test_torchrun_with_two_processes_writes_the_same_run(small, tmp_path):
    pytest.importorskip("torch", reason="training needs the train extra")
    args = [
        "train",
        "--data",
        str(small),
        "--layout",
        "folder",
        "--groups",
        "{group}_*.wav",
        "--holdout-group",
        "dee",
        "--val-group",
        "cy",
        "--model",
        "vgg",
        "--size",
        "tiny",
        "--epochs",
        "4",
        "--threads",
        "1",
        "--cache",
        str(tmp_path / "cache"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    for launch, out in (([], "one"), (torchrun, "two")):
        done = subprocess.run(
            [sys.executable, *launch, "-m", "export", *args, "--out", str(tmp_path / out)],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, (out, done.stderr[-3000:])
    one, two = tmp_path / "one", tmp_path / "two"
    assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())
    c1 = json.loads((one / "config.json").read_text())
    c2 = json.loads((two / "config.json").read_text())
    assert c2["distributed"]["processes"] == 2 and c1["distributed"]["processes"] == 1
    assert c1["schedule"] == c2["schedule"]  # the same steps: the global batch is kept
    import torch

    s1 = torch.load(one / "checkpoint.pt", weights_only=True)
    s2 = torch.load(two / "checkpoint.pt", weights_only=True)
    assert {k: v.shape for k, v in s1.items()} == {k: v.shape for k, v in s2.items()}
    h2 = (two / "history.csv").read_text().splitlines()
    assert len(h2) == 5  # rank 0 alone wrote it: 4 epochs, one header
    assert (two / "train.log").read_text().count("distributed: 2 processes") == 1
