"""Pretrained backbones: finding and checking the weights, the EfficientAT network
defined here loading the real mn04 weights and hearing sensibly, and a head on
its frozen embedding trained, exported and verified like any model."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from edge_audio.audio import load_audio, write_wav

from .conftest import REPO, shared_pretrained

pytestmark = pytest.mark.toolchain
torch = pytest.importorskip("torch", reason="the pretrained networks need the train extra")

SHARED_PRETRAINED = (REPO.parent / "shared" / "pretrained").resolve()
MN04 = SHARED_PRETRAINED / "efficientat-mn04"


@pytest.fixture(scope="module")
def mn04_dir() -> Path:
    return shared_pretrained("efficientat-mn04", "mn04_as_mAP_432.pt")


def test_locates_by_folder_and_by_name_through_the_environment(mn04_dir, monkeypatch):
    from export.pretrained import locate

    assert locate(mn04_dir).spec.name == "efficientat-mn04"
    monkeypatch.setenv("EDGE_AUDIO_PRETRAINED", str(mn04_dir.parent))
    assert locate("efficientat-mn04").folder == mn04_dir


def test_a_missing_backbone_says_where_it_looked(tmp_path, monkeypatch):
    from export.pretrained import PretrainedError, locate

    monkeypatch.setenv("EDGE_AUDIO_PRETRAINED", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    with pytest.raises(PretrainedError) as info:
        locate("efficientat-mn04")
    message = str(info.value)
    assert str(tmp_path / "a" / "efficientat-mn04") in message
    assert str(tmp_path / "b" / "efficientat-mn04") in message
    assert "--backbone DIR" in message


def test_unknown_names_and_foreign_folders_are_clear_errors(tmp_path):
    from export.pretrained import PretrainedError, locate

    with pytest.raises(PretrainedError, match=r"unknown backbone 'panns'.*efficientat-mn04"):
        locate("panns")
    with pytest.raises(PretrainedError, match="holds no pretrained network"):
        locate(tmp_path)


def test_a_wrong_checksum_is_refused(tmp_path):
    from export.pretrained import PretrainedError, locate

    (tmp_path / "mn04_as_mAP_432.pt").write_bytes(b"not the weights")
    with pytest.raises(PretrainedError, match=r"sha256 .* is not efficientat-mn04's"):
        locate(tmp_path)


@pytest.fixture(scope="module")
def tagger(mn04_dir):
    from export.pretrained import load_network, locate

    return load_network(locate(mn04_dir))


def audioset_top(tagger, samples: np.ndarray, k: int = 5) -> list[str]:
    from edge_audio.frontend import LogMel
    from export.presets import EFFICIENTAT_MN04

    features = LogMel(EFFICIENTAT_MN04)(samples.astype(np.float32))
    with torch.no_grad():
        scores = tagger(torch.from_numpy(np.ascontiguousarray(features.T[None, None])))[0]
    with (MN04 / "audioset_labels.csv").open() as f:
        names = [row["display_name"] for row in csv.DictReader(f)]
    return [names[i] for i in scores.argsort(descending=True)[:k].tolist()]


def test_mn04_loads_every_weight_and_hears_a_sine_and_speech(tagger):
    assert sum(p.numel() for p in tagger.parameters()) == 983_599
    t = np.arange(5 * 32000) / 32000
    top = audioset_top(tagger, 0.3 * np.sin(2 * np.pi * 1000 * t))
    assert {"Sine wave", "Beep, bleep"} & set(top[:2]), top
    digits, _ = load_audio(REPO / "edge_audio" / "bundled" / "demo" / "digits.wav", 32000)
    assert audioset_top(tagger, digits[: 5 * 32000])[0] == "Speech"


def make_sounds(root: Path, per_class: int = 6) -> Path:
    """Three classes a pretrained tagger tells apart at once: tones, noise, clicks."""
    rng = np.random.default_rng(3)
    n = 16000 * 2
    t = np.arange(n) / 16000
    for i in range(per_class):
        sounds = {
            "tone": 0.3 * np.sin(2 * np.pi * rng.uniform(500, 1500) * t),
            "noise": rng.normal(0, 0.1, n),
            "clicks": np.where(rng.random(n) < 0.002, 0.8, 0.0) + rng.normal(0, 0.001, n),
        }
        for label, x in sounds.items():
            path = root / label / f"rec{i}_{label}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, x.astype(np.float32), 16000)
    return root


def test_a_head_on_the_frozen_backbone_trains_exports_and_verifies(mn04_dir, tmp_path):
    pytest.importorskip("litert_torch", reason="exporting needs litert-torch (train extra)")
    from export.cli import main as export_main

    data = make_sounds(tmp_path / "sounds")
    cache, run, bundle = tmp_path / "cache", tmp_path / "run", tmp_path / "bundle"
    common = ["--data", str(data), "--layout", "folder", "--cache", str(cache), "--quiet"]
    args = ["train", *common, "--backbone", str(mn04_dir), "--window", "2.0", "--hop", "1.0"]
    assert export_main([*args, "--out", str(run), "--cv", "--fit-all"]) == 0
    cv = json.loads((run / "cv.json").read_text())
    assert cv["accuracy"]["mean"] >= 0.9  # three sounds AudioSet knows well
    # Long clips are also scored window by window, as the CNN's runs are.
    assert cv["segment_accuracy"]["mean"] >= 0.8
    assert all(f["segment_accuracy"] is not None for f in cv["folds"])
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["backbone"]["sha256"].startswith("899a8c62")
    # Each fit chose its head's penalty on its own training clips (--head-l2 auto).
    assert config["model"]["backbone"]["head_l2"] == "auto"
    for metrics in [run / "metrics.json", *run.glob("fold-*/metrics.json")]:
        chosen = json.loads(metrics.read_text())["head_l2"]
        assert chosen["how"] == "chosen" and len(chosen["cv_accuracy"]) == 9, metrics
    assert config["model"]["normalisation"] == "none"
    assert config["frontend"]["sample_rate"] == 32000 and config["frontend"]["log"] == "ln"
    # The embeddings are cached: a second run does not need the network again.
    embedded = list(cache.rglob("embeddings-*/*.npy"))
    assert len(embedded) == 18

    quantize = ["quantize", str(run), "--out", str(bundle), "--calibration", "32"]
    assert export_main([*quantize, "--cache", str(cache), "--allow-regression"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["input"]["normalisation"]["type"] == "none"
    assert manifest["frontend"]["pre_emphasis"] == pytest.approx(0.97)
    card = (bundle / "card.md").read_text()
    assert "EfficientAT mn04_as" in card and "MIT" in card
    assert "L2 penalty" in card and "cross-validation over the training groups" in card
    assert "window by window, as a stream is labelled" in card  # the segment estimate

    from edge_audio.backends import load_backend
    from edge_audio.bundle import load_bundle

    loaded = load_bundle(bundle)
    clip, _ = load_audio(data / "tone" / "rec0_tone.wav", 32000)
    from edge_audio.frontend import LogMel

    windows = loaded.window.clip_windows(LogMel(loaded.frontend)(clip))
    for precision in ("fp32", "int8"):
        probs = load_backend(loaded, "tflite", precision).probabilities(windows).mean(0)
        assert loaded.labels[int(probs.argmax())] == "tone", precision


def test_an_mlp_head_takes_raw_embeddings_with_its_standardisation_folded_in():
    from export.heads import fit_mlp

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    # Embeddings far from zero and of very different scales, as real ones are.
    x = rng.normal(0, 1, (600, 8)) * np.array([1, 50, 0.01, 1, 1, 1, 1, 1]) + 1000
    x[:, 0] += 10 * y  # separable: only a wrongly folded head misses
    head = fit_mlp(x.astype(np.float32), y, 3, hidden=64, seed=0)
    import torch

    assert not any(isinstance(m, torch.nn.Dropout) for m in head.modules())
    with torch.no_grad():
        predicted = head(torch.from_numpy(x.astype(np.float32))).argmax(1).numpy()
    assert (predicted == y).mean() > 0.98


def test_an_mlp_head_on_the_frozen_backbone_trains_and_exports(mn04_dir, tmp_path):
    pytest.importorskip("litert_torch", reason="exporting needs litert-torch (train extra)")
    from export.cli import main as export_main

    data = make_sounds(tmp_path / "sounds")
    cache, run, bundle = tmp_path / "cache", tmp_path / "run", tmp_path / "bundle"
    common = ["--data", str(data), "--layout", "folder", "--cache", str(cache), "--quiet"]
    args = ["train", *common, "--backbone", str(mn04_dir), "--window", "2.0", "--size", "mlp"]
    assert export_main([*args, "--out", str(run), "--cv", "--fit-all"]) == 0
    assert json.loads((run / "cv.json").read_text())["accuracy"]["mean"] >= 0.9
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["size"] == "mlp" and "MLP head" in config["model"]["backbone"]["use"]
    assert "MLP, 256 hidden units" in config["training"]["head"]

    quantize = ["quantize", str(run), "--out", str(bundle), "--calibration", "32"]
    assert export_main([*quantize, "--cache", str(cache), "--allow-regression"]) == 0
    verified = json.loads((bundle / "manifest.json").read_text())["artefacts"]
    # The exported MLP is the one torch trained, standardisation folded in.
    assert verified["tflite-fp32"]["metrics"]["agreement_with_torch"] == 1.0


def test_fine_tuning_trains_only_the_top_stages_and_exports_int8(mn04_dir, tmp_path, capsys):
    pytest.importorskip("litert_torch", reason="exporting needs litert-torch (train extra)")
    from export.cli import main as export_main
    from export.pretrained import load_network, locate

    data = make_sounds(tmp_path / "sounds")
    cache, run, bundle = tmp_path / "cache", tmp_path / "run", tmp_path / "bundle"
    args = ["train", "--data", str(data), "--layout", "folder", "--cache", str(cache), "--quiet"]
    args += ["--backbone", str(mn04_dir), "--window", "2.0", "--hop", "1.0"]
    args += ["--fine-tune", "2", "--groups", "{label}/{group}_*.wav"]
    args += ["--holdout-group", "rec0"]
    assert export_main([*args, "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    # 18 windows are under one batch a step: the epochs rise until 300 steps.
    assert config["training"]["stages"] == 2 and config["training"]["epochs"] == 300
    assert config["model"]["backbone"]["use"].startswith("fine-tuned: top 2 of 17 stages")
    assert list(cache.rglob("activations-*/*.npy")), "the frozen stages' output is cached"

    # Below the cut the weights are the pretrained ones; above it they trained.
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    pretrained = load_network(locate(str(mn04_dir))).state_dict()
    frozen, tuned = "features.14.block.0.0.weight", "features.16.0.weight"
    assert torch.equal(state[frozen], pretrained[frozen])
    assert not torch.equal(state[tuned], pretrained[tuned])

    quantize = ["quantize", str(run), "--out", str(bundle), "--calibration", "32"]
    assert export_main([*quantize, "--cache", str(cache), "--allow-regression"]) == 0
    assert "--int8-aware" not in capsys.readouterr().out  # no note for a plain fine-tune
    assert "top 2 of 17 stages" in (bundle / "card.md").read_text()

    from edge_audio.backends import load_backend
    from edge_audio.bundle import load_bundle
    from edge_audio.frontend import LogMel

    loaded = load_bundle(bundle)
    clip, _ = load_audio(data / "clicks" / "rec0_clicks.wav", 32000)
    windows = loaded.window.clip_windows(LogMel(loaded.frontend)(clip))
    probs = load_backend(loaded, "tflite", "int8").probabilities(windows).mean(0)
    assert loaded.labels[int(probs.argmax())] == "clicks"

    # Distillation: the fine-tuned run teaches the tiny student.
    student, small = tmp_path / "student", tmp_path / "small"
    distil = [*args[: args.index("--fine-tune")], "--groups", "{label}/{group}_*.wav"]
    distil += ["--holdout-group", "rec0", "--size", "tiny", "--epochs", "100", "--int8-aware"]
    assert export_main([*distil, "--teacher", str(run), "--out", str(student)]) == 0
    config = json.loads((student / "config.json").read_text())
    assert config["model"]["size"] == "tiny" and config["model"]["params"] < 200_000
    assert config["training"]["int8_aware"]["calibration_windows"] == 256
    assert "float and int8 outputs" in config["model"]["backbone"]["use"]
    assert list(cache.rglob("int8-activations-*/*.npy")), "the int8 stages' output is cached"
    assert config["training"]["distillation"]["teacher"] == str(run)
    assert list(cache.rglob("teacher-*/*.npy")), "the teacher's outputs are cached"
    # The student's new layer (after its 12 pretrained stages) estimated its BatchNorm
    # statistics; the pretrained stages that trained kept theirs.
    state = torch.load(student / "checkpoint.pt", weights_only=False)
    assert state["features.12.1.running_mean"].abs().sum() > 0
    stats, weights = "features.11.block.0.1.running_var", "features.11.block.0.0.weight"
    assert torch.equal(state[stats], pretrained[stats])
    assert not torch.equal(state[weights], pretrained[weights])
    assert (
        export_main(
            [
                "quantize",
                str(student),
                "--out",
                str(small),
                "--calibration",
                "32",
                "--cache",
                str(cache),
                "--allow-regression",
            ]
        )
        == 0
    )
    assert (small / "model.int8.tflite").stat().st_size <= 300 * 1024
    assert "trained --int8-aware: post-training int8, no QAT" in capsys.readouterr().out
    assert "distilled from" in (small / "card.md").read_text()
    loaded = load_bundle(small)
    probs = load_backend(loaded, "tflite", "int8").probabilities(windows).mean(0)
    assert loaded.labels[int(probs.argmax())] == "clicks"


def test_the_int8_lower_stages_compute_what_the_int8_file_would(tagger):
    """The simulated int8 stages stay near the float ones, yet every value of
    their output is one of the 256 levels of an int8 tensor."""
    pytest.importorskip("litert_torch", reason="the int8 simulation needs litert-torch")
    from export.finetune import int8_lower, lower_activations

    rng = np.random.default_rng(0)
    windows = rng.normal(0, 1, (6, 100, 128)).astype(np.float32)
    float_out = lower_activations(tagger, 3, windows)
    int8_out = int8_lower(tagger, 3, windows[:4])(windows)
    assert int8_out.shape == float_out.shape
    assert len(np.unique(int8_out)) <= 256 < len(np.unique(float_out))
    error = np.abs(int8_out - float_out).mean() / np.abs(float_out).mean()
    assert 0 < error < 0.5, error


def test_int8_lower_calibrates_on_the_training_clips_alone(tmp_path, monkeypatch):
    """A fold's int8 stages are calibrated on its training windows only, never on
    a test clip, and each clip keeps its window count (the float and int8 rows
    of one window line up)."""
    from types import SimpleNamespace

    import export.transfer as transfer
    from edge_audio.windows import WindowPlan
    from export.data import Clip, ClipSet

    seen: list[np.ndarray] = []

    def fake_int8_lower(network, cut, calibration):
        seen.append(calibration)
        return lambda windows: windows[:, None, :, :2] * 0 + cut

    monkeypatch.setattr(transfer, "int8_lower", fake_int8_lower)
    clips = ClipSet(
        [Clip(np.full((30, 4), float(i), np.float32), "a", f"g{i}", f"c{i}") for i in range(6)],
        ["a"],
    )
    plan = WindowPlan(frames=10, mode="segments", hop=10)
    lower = transfer.Int8Lower(
        SimpleNamespace(dir=tmp_path),
        SimpleNamespace(spec=SimpleNamespace(sha256="x")),
        plan,
        network=None,
        cut=7,
        seed=0,
        progress=False,
    )
    outputs = lower.outputs(clips, [1, 3, 4])
    assert [len(o) for o in outputs] == [3, 3, 3] and float(outputs[0].max()) == 7
    assert set(np.unique(seen[0])) == {1.0, 3.0, 4.0}  # clips 0, 2 and 5 never heard
    lower.outputs(clips, [1, 3, 4])
    assert len(seen) == 1, "the same calibration set is read back from the cache"
    lower.outputs(clips, [0, 2])
    assert len(seen) == 2 and set(np.unique(seen[1])) == {0.0, 2.0}


def test_calibration_windows_come_from_the_members_spread_over_the_classes():
    """The one choice of int8 calibration windows (export quantize and
    train --int8-aware both call it): the members only, every class, seeded."""
    from edge_audio.windows import WindowPlan
    from export.data import Clip, ClipSet, calibration_windows

    clips = ClipSet(
        [Clip(np.full((30, 4), float(i), np.float32), "ab"[i % 2], "g", f"c{i}") for i in range(8)],
        ["a", "b"],
    )
    plan = WindowPlan(frames=10, mode="segments", hop=10)
    chosen = calibration_windows(clips, [6, 1, 2, 3], plan, 4, seed=0)
    assert chosen.shape == (4, 10, 4)
    values = {float(w[0, 0]) for w in chosen}
    assert values <= {1.0, 2.0, 3.0, 6.0} and values & {1.0, 3.0} and values & {2.0, 6.0}
    again = calibration_windows(clips, [1, 2, 3, 6], plan, 4, seed=0)
    assert np.array_equal(chosen, again), "the members' order does not change the choice"


def test_quantize_calibrates_with_the_runs_own_seed(monkeypatch, tmp_path):
    """An --int8-aware run trained against stages calibrated on the windows its seed
    picked; quantize must pick the same ones unless --seed says otherwise."""
    from types import SimpleNamespace

    import export.quantize as quantize
    from export.cli import main as export_main

    model = SimpleNamespace(name="efficientat-mn04", size="tiny")
    config = SimpleNamespace(seed=7, model=model, training={})
    run = SimpleNamespace(root=tmp_path, config=config, labels=["a", "b"])
    seeds: list[int] = []

    class Chosen(Exception):
        """Far enough: the seed is chosen."""

    def stop(run, data, cache, calibration, seed):
        seeds.append(seed)
        raise Chosen

    monkeypatch.setattr(quantize, "load_run", lambda root: run)
    monkeypatch.setattr(quantize, "load_data", stop)
    for extra, expected in (([], 7), (["--seed", "2"], 2)):
        with pytest.raises(Chosen):
            export_main(["quantize", str(tmp_path), "--out", str(tmp_path / "b"), *extra])
        assert seeds.pop() == expected


def test_an_int8_aware_run_gets_no_qat_unless_asked():
    from export.quantize import DEFAULT_QAT_EPOCHS, qat_epochs

    aware = {"int8_aware": {"calibration_windows": 256}}
    epochs, note = qat_epochs(None, False, aware)
    assert epochs == 0 and note is not None and "--qat" in note
    assert qat_epochs(None, True, aware) == (DEFAULT_QAT_EPOCHS, None)
    assert qat_epochs(2, False, aware) == (2, None)
    assert qat_epochs(None, False, {}) == (DEFAULT_QAT_EPOCHS, None)
    assert qat_epochs(0, True, {}) == (0, None)


@pytest.mark.parametrize(
    ("stages", "message"),
    [("18", "has 17 stages"), ("top", "number of stages or 'all'"), ("-1", "has 17 stages")],
)
def test_bad_fine_tune_values_are_clear_errors(mn04_dir, tmp_path, capsys, stages, message):
    from export.cli import main as export_main

    data = make_sounds(tmp_path / "s", per_class=3)
    args = ["train", "--data", str(data), "--layout", "folder", "--out", str(tmp_path / "r")]
    args += ["--cache", str(tmp_path / "c"), "--backbone", str(mn04_dir), "--window", "2.0"]
    assert export_main([*args, "--fine-tune", stages, "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_bad_student_and_teacher_options_are_clear_errors(mn04_dir, tmp_path, capsys):
    from export.cli import main as export_main

    data = make_sounds(tmp_path / "s", per_class=3)
    args = ["train", "--data", str(data), "--layout", "folder", "--quiet"]
    args += ["--cache", str(tmp_path / "c"), "--backbone", str(mn04_dir), "--window", "2.0"]
    teacher = tmp_path / "teacher"
    assert export_main([*args, "--fine-tune", "1", "--epochs", "1", "--out", str(teacher)]) == 0
    capsys.readouterr()
    out = ["--out", str(tmp_path / "r")]
    cases = [
        (["--size", "large"], "'head' (the whole network"),
        (["--model", "dscnn"], "--model picks a CNN trained from scratch"),
        (["--size", "tiny", "--fine-tune", "0"], "new layer must train"),
        (["--teacher", str(teacher)], "add --fine-tune N or --size tiny"),
        (["--fine-tune", "2", "--head-l2", "0.1"], "--head-l2 is for the head alone"),
        (["--size", "mlp", "--fine-tune", "2"], "--size mlp is a head on the frozen network"),
        (["--size", "mlp", "--head-l2", "0.1"], "not --size mlp"),
        (["--head-l2", "strong"], "--head-l2 strong: a penalty such as 0.01, or 'auto'"),
        (["--size", "tiny", "--teacher", str(tmp_path / "none")], "no config.json"),
        (["--int8-aware"], "add --fine-tune N or --size tiny"),
        (["--fine-tune", "all", "--int8-aware"], "--fine-tune all leaves no frozen stage"),
    ]
    for extra, message in cases:
        assert export_main([*args, *extra, *out]) == 2, extra
        assert message in capsys.readouterr().err, extra
    # A teacher of other labels cannot teach.
    other = make_sounds(tmp_path / "other", per_class=3)
    (other / "noise").rename(other / "hiss")
    args[args.index(str(data))] = str(other)
    assert export_main([*args, "--size", "tiny", "--teacher", str(teacher), *out]) == 2
    assert "labels differ" in capsys.readouterr().err


def test_each_fold_learns_from_the_teacher_of_its_own_fold(mn04_dir, tmp_path, capsys):
    from export.cli import main as export_main

    data = make_sounds(tmp_path / "s", per_class=3)
    args = ["train", "--data", str(data), "--layout", "folder", "--window", "2.0"]
    args += ["--cache", str(tmp_path / "c"), "--backbone", str(mn04_dir), "--epochs", "1"]
    args += ["--groups", "{label}/{group}_*.wav"]
    teachers, single = tmp_path / "teachers", tmp_path / "single"
    assert export_main([*args, "--fine-tune", "1", "--cv", "--out", str(teachers)]) == 0
    one = ["--fine-tune", "1", "--holdout-group", "rec0", "--out", str(single)]
    assert export_main([*args, *one]) == 0
    assert sorted(p.name for p in teachers.glob("fold-*")) == [f"fold-rec{i}" for i in range(3)]
    capsys.readouterr()

    student = [*args, "--size", "tiny", "--out", str(tmp_path / "student")]
    assert export_main([*student, "--cv", "--teacher", str(teachers), "--int8-aware"]) == 0
    assert "warning: teacher" not in capsys.readouterr().out
    # Each fold's int8 stages were calibrated on that fold's training clips.
    assert len(list((tmp_path / "c").rglob("int8-activations-*"))) == 3
    # One teacher for every fold: it heard rec1 and rec2, so those folds are optimistic.
    assert export_main([*student, "--cv", "--teacher", str(single)]) == 0
    out = capsys.readouterr().out
    assert f"warning: teacher {single} trained on rec1" in out
    assert f"warning: teacher {single} trained on rec2" in out
    assert "trained on rec0" not in out


def test_backbone_options_need_each_other(tmp_path, capsys):
    from export.cli import main as export_main

    data = make_sounds(tmp_path / "s", per_class=3)
    args = ["train", "--data", str(data), "--layout", "folder", "--out", str(tmp_path / "r")]
    for flag, value in (
        ("--head-l2", "0.1"),
        ("--fine-tune", "3"),
        ("--body-lr", "1e-4"),
        ("--teacher", str(tmp_path)),
        ("--int8-aware", None),
    ):
        given = [flag] if value is None else [flag, value]
        assert export_main([*args, *given, "--quiet"]) == 2
        assert f"{flag} is for a pretrained network: add --backbone" in capsys.readouterr().err
    assert export_main([*args, "--backbone", str(tmp_path / "nowhere"), "--quiet"]) == 2


def test_a_head_on_mn04_with_negatives_hears_rooms_in_its_own_log(mn04_dir, tmp_path):
    """The README's home-sound path: a folder, --backbone efficientat-mn04 and
    --negatives. Room copies need the natural-log frontend's rooms (it raised
    'room kernels need a frontend whose log is in dB' before)."""
    from export.cli import main as export_main

    data = make_sounds(tmp_path / "sounds")
    negatives = tmp_path / "noises"
    negatives.mkdir()
    rng = np.random.default_rng(5)
    for i in range(6):
        write_wav(negatives / f"hum{i}.wav", rng.normal(0, 0.05, 3 * 16000), 16000)
    out = tmp_path / "run"
    args = [
        "train", "--data", str(data), "--layout", "folder", "--cache", str(tmp_path / "cache"),
        "--quiet", "--backbone", str(mn04_dir), "--window", "2.0", "--negatives", str(negatives),
        "--out", str(out),
    ]  # fmt: skip
    assert export_main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert "_background_" in config["labels"] and config["negatives"]["train"]["files"] > 0
    assert config["augmentation"]["rooms"] in ("pyroomacoustics", "generated")
    log = (out / "train.log").read_text()
    assert "rooms: 48 impulse responses" in log and "copies of each clip, in rooms" in log
