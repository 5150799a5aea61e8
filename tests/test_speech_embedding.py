"""Google's speech embedding as a backbone: the frontend and the network defined
here against the ONNX files they reproduce, and a keyword detector trained on
its frozen embeddings with negatives, exported, quantised and verified."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_audio.audio import load_audio, write_wav

from .conftest import shared_dataset, shared_pretrained

pytestmark = pytest.mark.toolchain
torch = pytest.importorskip("torch", reason="the pretrained networks need the train extra")


@pytest.fixture(scope="module")
def speech_dir() -> Path:
    return shared_pretrained("speech-embedding", "embedding_model.onnx")


def test_the_frontend_gives_the_melspectrogram_the_network_was_trained_on(speech_dir):
    ort = pytest.importorskip("onnxruntime")
    from edge_audio.frontend import LogMel
    from export.presets import SPEECH_EMBEDDING

    rng = np.random.default_rng(5)
    t = np.arange(16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    session = ort.InferenceSession(str(speech_dir / "melspectrogram.onnx"))
    reference = session.run(None, {"input": (x * 32768)[None]})[0].squeeze() / 10 + 2
    # The export's frames are 512 samples with the 400-sample window in their
    # middle (56 samples in); the kit's frames start at the window.
    ours = LogMel(SPEECH_EMBEDDING)(x[56:])
    n = min(len(reference), len(ours))
    assert n == 97
    # It clips 80 dB under the clip's loudest cell; nothing here is that quiet.
    assert reference.min() > reference.max() - 8 + 0.5
    np.testing.assert_allclose(ours[:n], reference[:n], atol=1e-3)


def test_the_network_defined_here_gives_the_exported_embedding(speech_dir):
    ort = pytest.importorskip("onnxruntime")
    from export.speech_embedding import SpeechEmbedding, load_onnx_weights

    network = load_onnx_weights(SpeechEmbedding(), speech_dir / "embedding_model.onnx")
    assert sum(p.numel() for p in network.parameters()) == 328_128
    x = np.random.default_rng(0).normal(1.0, 1.5, (3, 76, 32, 1)).astype(np.float32)
    session = ort.InferenceSession(str(speech_dir / "embedding_model.onnx"))
    reference = session.run(None, {"input_1": x})[0].reshape(3, 96)
    with torch.inference_mode():
        ours = network(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=1e-4)


def test_another_network_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from export.speech_embedding import SpeechEmbedding, load_onnx_weights

    weight = numpy_helper.from_array(np.zeros((8, 1, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])],
        [weight],
    )
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match="1 convolutions, the speech embedding has 20"):
        load_onnx_weights(SpeechEmbedding(), path)


def test_sub_windows_cover_the_window_to_its_end():
    from export.speech_embedding import FRAMES, sub_window_starts

    assert sub_window_starts(FRAMES) == [0]
    assert sub_window_starts(138) == [0, 16, 32, 48, 62]
    with pytest.raises(ValueError, match="at least 76 frames"):
        sub_window_starts(FRAMES - 1)


@pytest.mark.parametrize(
    "extra", [["--fine-tune", "2"], ["--size", "tiny"], ["--teacher", "runs/none"]]
)
def test_it_trains_a_head_only(speech_dir, tmp_path, capsys, extra):
    from export.cli import main as export_main

    data = shared_dataset("fsdd")
    args = ["train", "--data", str(data), "--layout", "fsdd", "--backbone", "speech-embedding"]
    code = export_main([*args, *extra, "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    assert "a head on its frozen embeddings only" in capsys.readouterr().err


def test_speaker_copies_must_be_a_count(speech_dir, tmp_path, capsys):
    from export.cli import main as export_main

    data = shared_dataset("fsdd")
    args = ["train", "--data", str(data), "--layout", "fsdd", "--backbone", "speech-embedding"]
    code = export_main([*args, "--speaker-copies", "-1", "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    assert "--speaker-copies -1: 0 or more" in capsys.readouterr().err


def test_speaker_copies_are_warped_copies_of_the_real_clips_only():
    from export.data import Clip, ClipSet, WindowPlan
    from export.fit import Log
    from export.presets import SPEECH_EMBEDDING
    from export.transfer import speaker_copies

    rng = np.random.default_rng(0)
    plan = WindowPlan.for_frontend(100, "keyword", 25, SPEECH_EMBEDDING)
    real = [Clip(rng.normal(5, 1, (120, 32)).astype(np.float32), "a", "g1", str(i)) for i in "xyz"]
    synthetic = Clip(np.full((120, 32), 5, np.float32), "a", "synth", "s", True)
    clips = ClipSet([*real, synthetic], ["a"])
    made, owner = speaker_copies(clips, SPEECH_EMBEDDING, plan, 2, seed=0, log=Log(True))
    assert owner.tolist() == [0, 0, 1, 1, 2, 2]  # two of each real clip, none of the synthetic
    window = plan.clip_windows(real[0].features)[0]
    for copy in made.clips[:2]:
        assert copy.synthetic and copy.label == "a" and copy.group == "g1"
        assert copy.features.shape == window.shape and copy.features.min() >= plan.floor
        assert not np.allclose(copy.features, window)  # warped, not duplicated
    assert not np.allclose(made.clips[0].features, made.clips[1].features)


def test_a_digit_detector_on_the_embedding_trains_with_negatives_and_exports_int8(
    speech_dir, tmp_path
):
    pytest.importorskip("litert_torch", reason="exporting needs litert-torch (train extra)")
    from export.cli import main as export_main

    data = shared_dataset("fsdd")
    negatives = tmp_path / "negatives"
    negatives.mkdir()
    rng = np.random.default_rng(1)
    for i in range(6):  # hum, hiss and clatter: nothing like a word
        t = np.arange(3 * 16000) / 16000
        x = 0.2 * np.sin(2 * np.pi * rng.uniform(50, 400) * t) + rng.normal(0, 0.05, t.size)
        write_wav(negatives / f"n{i}.wav", x.astype(np.float32), 16000)
    cache, run, bundle = tmp_path / "cache", tmp_path / "run", tmp_path / "bundle"
    common = ["--cache", str(cache), "--quiet"]
    train = ["train", "--data", str(data), "--layout", "fsdd", "--backbone", "speech-embedding"]
    train += ["--holdout-group", "theo", "--limit", "4", "--negatives", str(negatives)]
    train += ["--synth-speakers", "1"]
    assert export_main([*train, "--out", str(run), *common]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["backbone"]["name"] == "speech-embedding"
    assert config["background_class"] == "_background_" and config["labels"][-1] == "_background_"
    assert config["negatives"]["train"]["files"] > 0
    assert config["augmentation"]["copies"] == 2 and config["augmentation"]["reverb_prob"] > 0
    assert config["augmentation"]["speaker_copies"]["count"] == 3  # the keyword default
    assert "voices: 3 copies of each clip" in (run / "train.log").read_text()
    assert config["frontend"]["n_mels"] == 32 and config["window"]["frames"] == 138
    from export.synth import have_espeak

    # One espeak-ng voice saying the digits, and 15 other words as background.
    assert len(config["synthetic_speakers"]) == (1 if have_espeak() else 0)
    assert ("other words: 15 espeak-ng" in (run / "train.log").read_text()) == have_espeak()
    assert config["dataset"]["clips"] == 5 * 10 * 4  # the user's clips only
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.7  # theo, unheard, from 4 clips a digit a speaker

    quantize = ["quantize", str(run), "--out", str(bundle), "--calibration", "64"]
    assert export_main([*quantize, "--cache", str(cache), "--allow-regression"]) == 0
    card = (bundle / "card.md").read_text()
    assert "speech_embedding" in card and "Apache-2.0" in card and "uncertain" in card

    from edge_audio.backends import load_backend
    from edge_audio.bundle import load_bundle
    from edge_audio.frontend import LogMel

    loaded = load_bundle(bundle)
    clip, _ = load_audio(data / "recordings" / "7_theo_40.wav", 16000)
    windows = loaded.window.clip_windows(LogMel(loaded.frontend)(clip))
    fp32 = load_backend(loaded, "tflite", "fp32").probabilities(windows).mean(0)
    int8 = load_backend(loaded, "tflite", "int8").probabilities(windows).mean(0)
    assert loaded.labels[int(fp32.argmax())] == "7"
    assert np.abs(fp32 - int8).max() < 0.25
