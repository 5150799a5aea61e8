"""The desktop toolchain: zoo, augmentation, splits, cache, and a real short run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")

from edge_audio.audio import write_wav  # noqa: E402
from edge_audio.errors import ConfigError, DatasetError  # noqa: E402
from edge_audio.frontend import FrontendConfig  # noqa: E402
from edge_audio.windows import WindowPlan, cut_window  # noqa: E402
from export import fit as fit_module  # noqa: E402
from export.augment import AugmentConfig, add_noise_db, augment_batch, mixup  # noqa: E402
from export.cli import main as export_main  # noqa: E402
from export.data import (  # noqa: E402
    Clip,
    ClipSet,
    FeatureCache,
    group_split,
    index_windows,
    make_batch,
)
from export.folds import group_folds, plan_folds  # noqa: E402
from export.zoo import SIZES, ModelSpec, build_model, profile  # noqa: E402

from .conftest import REPO, shared_dataset  # noqa: E402
from .trainrun import train_tiny  # noqa: E402
from .wavgen import tone  # noqa: E402


@pytest.mark.parametrize("name", sorted(SIZES))
def test_every_zoo_model_maps_a_window_to_class_logits(name):
    for size in SIZES[name]:
        model = build_model(ModelSpec(name, size, 7, (98, 40)))
        model.eval()
        out = model(torch.randn(3, 1, 98, 40) * 10 - 50)
        assert out.shape == (3, 7), (name, size)
        prof = profile(model, (98, 40))
        assert prof.params == sum(p.numel() for p in model.parameters())
        assert prof.macs > prof.params and prof.int8_bytes > 0
        assert "parameters" in prof.describe() and "MACs" in prof.describe()


def test_size_presets_stay_in_their_budgets():
    small = profile(build_model(ModelSpec("dscnn", "small", 11, (98, 40))), (98, 40))
    tiny = profile(build_model(ModelSpec("vgg", "tiny", 11, (98, 40))), (98, 40))
    temporal = profile(build_model(ModelSpec("tcresnet", "small", 11, (98, 40))), (98, 40))
    assert max(small.params, tiny.params, temporal.params) <= 50_000
    # Temporal convs are the cheap end of the zoo: a tenth of the DS-CNN's MACs.
    assert temporal.macs < small.macs / 5


def test_unknown_model_or_size_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown model 'resnet152'"):
        build_model(ModelSpec("resnet152", "small", 2, (98, 40)))
    with pytest.raises(ConfigError, match="unknown size 'huge' for dscnn"):
        build_model(ModelSpec("dscnn", "huge", 2, (98, 40)))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SIZES))
def test_every_zoo_model_exports_to_onnx(name, tmp_path):
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (train extra)")
    ort = pytest.importorskip("onnxruntime")
    model = build_model(ModelSpec(name, "small", 5, (98, 40)))
    model.eval()
    x = torch.randn(1, 1, 98, 40) * 10 - 50
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    np.testing.assert_allclose(out, model(x).detach().numpy(), atol=1e-4)


def random_batch(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(-50, 15, (4, 98, 40))).astype(np.float32)


def test_augmentation_is_deterministic_for_a_seed():
    batch = random_batch()
    bank = [random_batch(5)[0]]
    config = AugmentConfig(mixup=0.0)
    a = augment_batch(batch, config, np.random.default_rng(1), bank)
    b = augment_batch(batch, config, np.random.default_rng(1), bank)
    c = augment_batch(batch, config, np.random.default_rng(2), bank)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == batch.shape and not np.array_equal(a, batch)


def test_augmentation_off_is_the_identity():
    batch = random_batch()
    out = augment_batch(batch, AugmentConfig.off(), np.random.default_rng(0), [batch[0]])
    np.testing.assert_array_equal(out, batch)


def test_noise_is_mixed_at_the_requested_snr():
    signal = np.full((98, 40), -20.0, np.float32)
    noise = np.full((98, 40), -60.0, np.float32)
    mixed = add_noise_db(signal, noise, snr_db=10.0)
    # signal power 0.01, noise scaled to 0.001: total 0.011
    np.testing.assert_allclose(mixed, 10 * np.log10(0.011), atol=1e-4)


def test_mixup_keeps_soft_targets_normalised():
    targets = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    mixed, soft = mixup(random_batch(), targets, 0.4, np.random.default_rng(0))
    assert mixed.shape == (4, 98, 40)
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)
    assert (soft.max(1) >= 0.5).all()


def fake_clips(groups: dict[str, int], labels=("a", "b"), frames: int = 50) -> ClipSet:
    clips = []
    for group, count in groups.items():
        for i in range(count):
            label = labels[i % len(labels)]
            clips.append(
                Clip(
                    np.full((frames, 8), -40.0 + i, np.float32),
                    label,
                    group,
                    f"{group}{i}",
                    synthetic=group.startswith("synth"),
                )
            )
    return ClipSet(clips, sorted(labels))


def test_group_split_never_shares_a_group_and_keeps_synthetic_in_training():
    clips = fake_clips({"ann": 6, "bob": 6, "cat": 6, "dan": 6, "synth:v1": 6})
    split = group_split(clips, ["ann"], ["bob"])
    sides = [
        {clips.clips[i].group for i in side} for side in (split.train, split.validation, split.test)
    ]
    assert sides[1] == {"bob"} and sides[2] == {"ann"}
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2])
    assert "synth:v1" in sides[0]
    assert sorted(split.train + split.validation + split.test) == list(range(30))


def test_group_split_errors():
    clips = fake_clips({"ann": 4, "bob": 4, "cat": 4})
    with pytest.raises(DatasetError, match=r"held-out group\(s\) \['zed'\] not in the data"):
        group_split(clips, ["zed"])
    with pytest.raises(DatasetError, match="both validation and test"):
        group_split(clips, ["ann"], ["ann"])
    with pytest.raises(DatasetError, match="too few"):
        group_split(fake_clips({"ann": 4, "bob": 4}), ["ann"], ["bob"])


def test_folds_leave_one_speaker_out_and_stratify_many_recordings():
    few = fake_clips({g: 4 for g in ("ann", "bob", "cat", "dan")})
    folds = plan_folds(few, None, None, cv=True, seed=0)
    assert [f.test_groups for f in folds] == [["ann"], ["bob"], ["cat"], ["dan"]]
    assert all(f.validation_groups != f.test_groups for f in folds)
    recordings = [
        Clip(np.zeros((50, 8), np.float32), "ab"[i % 2], f"rec{i:02d}", f"r{i}") for i in range(40)
    ]
    many = ClipSet(recordings, ["a", "b"])
    parts = group_folds(many, seed=0)
    assert len(parts) == 5 and sorted(g for part in parts for g in part) == sorted(many.groups)
    for part in parts:  # each fold holds both labels
        assert {c.label for c in many.clips if c.group in part} == {"a", "b"}
    with pytest.raises(DatasetError, match="too few for a group-aware split"):
        plan_folds(fake_clips({"ann": 4, "bob": 4}), None, None, cv=False, seed=0)
    with pytest.raises(DatasetError, match=r"--holdout-group \['zed'\]"):
        plan_folds(few, ["zed"], None, cv=False, seed=0)


def test_windows_for_keywords_and_segments():
    assert WindowPlan(100, "keyword", 25).windows_of(40) == [-30]
    # A tail of 10 frames (under half a hop): the last window slides to the end
    # instead of adding one that repeats it.
    assert WindowPlan(100, "segments", 50).windows_of(260) == [0, 50, 100, 160]
    # A tail of 30 frames (half a hop or more): it gets a window of its own.
    assert WindowPlan(100, "segments", 50).windows_of(280) == [0, 50, 100, 150, 180]
    # ESC-50's 5 s clips in 2.5 s windows (249 and 124 frames): no start 1 frame apart.
    assert WindowPlan(124, "segments", 62).windows_of(249) == [0, 62, 125]
    window = cut_window(np.zeros((40, 8), np.float32), -30, 100)
    assert window.shape == (100, 8)
    assert (
        (window[:30] == -100).all() and (window[30:70] == 0).all() and (window[70:] == -100).all()
    )


def test_batches_shift_keywords_but_keep_them_inside():
    clips = fake_clips({"ann": 2}, frames=40)
    plan = WindowPlan(100, "keyword", 25)
    rows = index_windows(clips, [0, 1], plan)
    fixed = make_batch(clips, rows, plan)
    shifted = make_batch(clips, rows, plan, np.random.default_rng(3), max_shift=25)
    assert fixed.shape == shifted.shape == (2, 100, 8)
    for window in shifted:  # the whole 40-frame clip is still in the window
        assert ((window > -100).all(axis=1)).sum() == 40


def test_feature_cache_reuses_and_keys_by_config(tmp_path):
    wav = tmp_path / "a.wav"
    write_wav(wav, tone(8000), 16000)
    cache = FeatureCache(FrontendConfig(), tmp_path / "cache")
    first = cache.features(wav)
    again = cache.features(wav)
    assert cache.misses == 1 and cache.hits == 1
    np.testing.assert_allclose(first, again, atol=0.07)  # stored as float16
    other = FeatureCache(FrontendConfig(n_mels=32), tmp_path / "cache")
    assert other.dir != cache.dir and other.features(wav).shape[1] == 32


def make_folder_dataset(root: Path, classes=("hi", "lo"), per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for c, label in enumerate(classes):
        for i in range(per_class):
            freq = 400 if c == 0 else 2500
            x = tone(32000, freq=freq * rng.uniform(0.9, 1.1)) + rng.normal(0, 0.02, 32000)
            path = root / label / f"{label}{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, x, 16000)
    return root


def run_export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "export", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


def test_train_on_tones_writes_a_complete_run_directory(tmp_path):
    data = make_folder_dataset(tmp_path / "data")
    out = tmp_path / "run"
    code = train_tiny(data, out, tmp_path / "cache", "--epochs", "3", "--refit")
    assert code == 0
    for name in (
        "checkpoint.pt",
        "config.json",
        "metrics.json",
        "confusion.png",
        "curves.png",
        "history.csv",
        "train.log",
    ):
        assert (out / name).stat().st_size > 0, name
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    config = json.loads((out / "config.json").read_text())
    model = build_model(
        ModelSpec("vgg", "tiny", len(config["labels"]), tuple(config["model"]["input_shape"]))
    )
    model.load_state_dict(state)
    assert config["frontend"] == FrontendConfig(fmax=8000.0).to_dict()
    assert config["labels"] == ["hi", "lo"] and config["background_class"] is None
    metrics = json.loads((out / "metrics.json").read_text())
    for side in ("train", "validation", "test"):
        assert {"accuracy", "macro_f1", "per_class", "confusion"} <= set(metrics[side])
    # 400 Hz against 2.5 kHz tones: the pooled-statistics baseline separates them.
    assert metrics["baseline"]["accuracy"] == 1.0
    assert metrics["baseline"]["model"].startswith("logistic regression")
    # 2 s clips in 1 s windows: clip-level and segment-level figures both
    assert metrics["test_segments"]["n"] == 3 * metrics["test"]["n"]
    log = (out / "train.log").read_text()
    assert "refitting on train + validation" in log
    assert "refit epoch   1:" in log and "no validation (refit)" in log and "nan" not in log
    assert len((out / "history.csv").read_text().splitlines()) == 4


def test_cv_trains_every_fold_and_summarises_clips_and_segments(tmp_path):
    data = make_folder_dataset(tmp_path / "data", per_class=3)  # 6 recordings: 6 folds
    out = tmp_path / "cv"
    assert train_tiny(data, out, tmp_path / "cache", "--epochs", "1", "--cv") == 0
    summary = json.loads((out / "cv.json").read_text())
    folds = summary["folds"]
    assert len(folds) == 6 and len({g for f in folds for g in f["test_groups"]}) == 6
    for fold in folds:
        assert (out / f"fold-{fold['name']}" / "metrics.json").is_file()
    accuracies = [f["accuracy"] for f in folds]
    assert summary["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    segments = [f["segment_accuracy"] for f in folds]  # 2 s clips, 1 s windows
    assert summary["segment_accuracy"]["mean"] == pytest.approx(np.mean(segments))
    log = (out / "train.log").read_text()
    assert "cross-validated accuracy" in log and "cross-validated segment accuracy" in log


def test_interrupt_keeps_the_best_checkpoint_and_writes_reports(tmp_path, monkeypatch):
    data = make_folder_dataset(tmp_path / "data")
    real_validation = fit_module.validate
    calls = {"n": 0}

    def interrupt_in_second_epoch(*args, **kwargs):
        calls["n"] += 1  # validation runs once at the end of each epoch
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_validation(*args, **kwargs)

    monkeypatch.setattr(fit_module, "validate", interrupt_in_second_epoch)
    out = tmp_path / "run"
    code = train_tiny(data, out, tmp_path / "cache", "--epochs", "5", "--batch-size", "8")
    assert code == 130
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["best_epoch"] == 1
    assert (out / "checkpoint.pt").exists() and (out / "confusion.png").exists()


@pytest.mark.parametrize(
    "setup, args, fragment",
    [
        ("empty", ["--layout", "folder"], "one subfolder per class"),
        ("folder", ["--layout", "esc50"], "meta/esc50.csv"),
        ("folder", ["--layout", "fsdd"], "{digit}_{speaker}_{take}.wav"),
        ("emptyclass", ["--layout", "folder"], "class 'c' has no audio clips"),
        ("folder", ["--layout", "folder", "--model", "resnet"], "unknown --model 'resnet'"),
        ("folder", ["--layout", "folder", "--model", "vgg", "--size", "xl"], "unknown --size 'xl'"),
        ("folder", ["--layout", "folder", "--holdout-group", "nobody"], "not in the data"),
        ("folder", ["--layout", "folder", "--gain", "-3"], "--gain must be between 0 and 60"),
    ],
)
def test_train_bad_input_is_one_clear_line(tmp_path, setup, args, fragment):
    data = tmp_path / "data"
    data.mkdir()
    if setup in ("folder", "emptyclass"):
        make_folder_dataset(data, per_class=3)
    if setup == "emptyclass":
        (data / "c").mkdir()
    result = run_export(
        "train",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--quiet",
        "--cache",
        str(tmp_path / "cache"),
        *args,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and fragment in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_train_without_torch_names_the_extra(tmp_path):
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def block(name, *a, **k):\n"
        "    if name.split('.')[0] == 'torch': raise ImportError('no torch')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = block\n"
        "from export.cli import main\n"
        f"sys.exit(main(['train', '--data', '{tmp_path}', '--layout', 'folder', '--out', 'x']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert "pip install 'edge-audio[train]'" in result.stderr and "Traceback" not in result.stderr


def test_edge_audio_export_forwards_to_the_toolchain(tmp_path):
    def edge_audio(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "edge_audio", "export", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO)

    result = edge_audio("train", "--help")
    assert result.returncode == 0 and "--holdout-group" in result.stdout
    assert result.stdout.startswith("usage: edge-audio export train")
    # `export --help` itself, which argparse's REMAINDER used to refuse.
    result = edge_audio("--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: edge-audio export ")
    assert "train" in result.stdout and "quantize" in result.stdout
    # Errors name the command the user typed.
    result = edge_audio(
        "train", "--data", str(tmp_path / "none"), "--layout", "folder", "--out", "."
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("edge-audio export: error: ")


@pytest.mark.shared
@pytest.mark.slow
def test_short_real_training_on_fsdd_beats_chance_clearly(tmp_path):
    data = shared_dataset("fsdd")
    out = tmp_path / "run"
    code = export_main(
        [
            "train",
            "--data",
            str(data),
            "--layout",
            "fsdd",
            "--out",
            str(out),
            "--limit",
            "15",
            "--epochs",
            "12",
            "--synth-speakers",
            "0",
            "--quiet",
            "--model",
            "vgg",
            "--size",
            "tiny",
            "--holdout-group",
            "jackson",
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n"] == 150  # 15 takes x 10 digits of the held-out speaker
    assert metrics["test"]["accuracy"] > 0.4, metrics["test"]["accuracy"]  # chance is 0.1
    config = json.loads((out / "config.json").read_text())
    assert config["split"]["test_groups"] == ["jackson"]
    assert "jackson" not in config["split"]["validation_groups"]
    assert config["background_class"] == "_background_"


# Integer kernels every Pi-class interpreter has: no float op may remain inside
# (QUANTIZE is allowed as an int8 -> int8 rescale, e.g. before a concatenation).
INT8_OPS = {
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MEAN", "MAX_POOL_2D",
    "AVERAGE_POOL_2D", "RESHAPE", "TRANSPOSE", "PAD", "CONCATENATION", "REDUCE_MAX",
    "QUANTIZE",
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SIZES))
def test_every_zoo_model_converts_to_full_integer_tflite(name, tmp_path):
    pytest.importorskip("litert_torch", reason="TFLite conversion needs litert-torch (train extra)")
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    import torch

    from export.to_tflite import export_tflite_int8
    from export.trained_run import Run, prepare_for_export

    model = build_model(ModelSpec(name, "small", 5, (98, 40))).eval()
    prepare_for_export(model)
    with torch.no_grad():  # a classifier with a prior: int8 must keep its bias right
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.bias.copy_(torch.tensor([2.0, -1.0, 0.5, -2.0, 1.0]))
    calibration = np.random.default_rng(0).uniform(-1, 1, (64, 98, 40)).astype(np.float32)
    config = {"model": {"input_shape": [98, 40]}}
    run = Run(
        tmp_path, config, model, WindowPlan(98, "keyword", 25), FrontendConfig(), list("abcde")
    )
    path = tmp_path / "model.int8.tflite"
    export_tflite_int8(run, path, calibration)
    interpreter = litert.Interpreter(model_path=str(path))
    ops = interpreter._get_ops_details()
    assert {op["op_name"] for op in ops} <= INT8_OPS, {op["op_name"] for op in ops} - INT8_OPS
    for op in ops:
        if op["op_name"] == "QUANTIZE":
            assert interpreter._get_tensor_details(op["inputs"][0], 0)["dtype"] == np.int8
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == out["dtype"] == np.int8
    interpreter.set_tensor(inp["index"], np.zeros(inp["shape"], np.int8))
    interpreter.invoke()
    assert interpreter.get_tensor(out["index"]).shape == (1, 5)
    # The int8 logits follow the float ones (a mis-scaled bias shifted them by whole units).
    (i_scale, i_zero), (o_scale, o_zero) = inp["quantization"], out["quantization"]
    windows = calibration[:16]
    int8_logits = []
    for window in windows:
        q = np.clip(np.round(window / i_scale + i_zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q[None, None])
        interpreter.invoke()
        raw = interpreter.get_tensor(out["index"])[0].astype(np.float32)
        int8_logits.append((raw - o_zero) * o_scale)
    with torch.no_grad():
        float_logits = model(torch.from_numpy(windows[:, None])).numpy()
    error = np.abs(np.array(int8_logits) - float_logits).max()
    assert error < 0.25 * np.abs(float_logits).max(), (error, np.abs(float_logits).max())


def test_mode_keyword_gives_a_folder_of_words_one_centred_window_a_clip(tmp_path):
    data = make_folder_dataset(tmp_path / "data", per_class=4)  # 2 s clips
    out = tmp_path / "run"
    code = train_tiny(data, out, tmp_path / "cache", "--epochs", "1", "--mode", "keyword")
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["window"]["mode"] == "keyword"
    segments = tmp_path / "segments"
    assert train_tiny(data, segments, tmp_path / "cache", "--epochs", "1") == 0
    assert json.loads((segments / "config.json").read_text())["window"]["mode"] == "segments"
