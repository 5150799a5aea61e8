"""train --negatives: folders of any audio become background windows, split by
recording into train / validation / calibration parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_audio.audio import write_wav as _write_wav
from edge_audio.errors import ConfigError
from edge_audio.frontend import FrontendConfig
from edge_audio.windows import WindowPlan
from export.card import negatives_sentence
from export.data import BACKGROUND, ClipSet, FeatureCache, Split
from export.material import add_negatives, is_validation_negative
from export.negatives import (
    PARTS,
    file_windows,
    find_audio,
    load_negatives,
    part_of,
    provenance_of,
    recording_of,
    source_of,
)

from .conftest import shared_dataset
from .test_train import make_folder_dataset, run_export

FRONTEND = FrontendConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=40)
PLAN = WindowPlan.for_frontend(98, "keyword", 25, FRONTEND)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_wav(path, samples, rate)


def write_opus(path: Path, samples: np.ndarray, rate: int) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, rate, format="OGG", subtype="OPUS")


def noise(seconds: float, rate: int, seed: int, channels: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 0.1, (round(seconds * rate), channels))
    return x[:, 0] if channels == 1 else x


def negatives_folder(root: Path) -> Path:
    """Mixed rates, a stereo file, a long file in a subfolder, and a broken file."""
    write_wav(root / "a.wav", noise(3, 16000, 0), 16000)
    write_wav(root / "b.wav", noise(2, 44100, 1), 44100)
    write_wav(root / "c.wav", noise(2, 48000, 2, channels=2), 48000)
    write_wav(root / "deep" / "er" / "long.wav", noise(60, 8000, 3), 8000)
    (root / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    (root / "notes.txt").write_text("not audio")
    return root


def test_folders_are_walked_recursively_for_audio_only(tmp_path):
    root = negatives_folder(tmp_path / "neg")
    names = [p.name for p in find_audio([root])]
    assert names == ["a.wav", "b.wav", "broken.wav", "c.wav", "long.wav"]


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_a_missing_or_empty_folder_is_a_clear_error(tmp_path, make):
    folder = tmp_path / "neg"
    if make == "empty":
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "readme.md").write_text("x")
    with pytest.raises(ConfigError, match="not a folder" if make == "missing" else "no audio"):
        find_audio([folder])


def test_every_rate_and_length_becomes_windows_and_bad_files_are_listed(tmp_path):
    root = negatives_folder(tmp_path / "neg")
    cache = FeatureCache(FRONTEND, tmp_path / "cache")
    negatives = load_negatives([root], cache, PLAN, windows_per_file=4, progress=False)
    assert [s.path.name for s in negatives.skipped] == ["broken.wav"]
    files = sorted(f.name for p in negatives.parts.values() for f in p.files)
    assert files == ["a.wav", "b.wav", "c.wav", "long.wav"]
    clips = [c for p in negatives.parts.values() for c in p.clips]
    assert all(c.label == BACKGROUND and c.features.shape == (98, 40) for c in clips)
    # the 60 s file gives 4 windows, not 60: a sample of the file, not its whole
    assert sum("long.wav" in c.source for c in clips) == 4
    hours = sum(p.hours for p in negatives.parts.values())
    assert hours == pytest.approx((3 + 2 + 2 + 60) / 3600, rel=0.05)
    summary = negatives.summary()
    assert set(PARTS) <= set(summary) and summary["skipped"] == 1
    json.dumps(summary)  # goes into config.json as it is


def test_windows_of_a_long_file_are_spread_over_it():
    features = np.full((98 * 20, 40), -40.0, np.float32)
    features[:, 0] = np.arange(features.shape[0])  # each window's first band tells where it was
    windows = file_windows(features, PLAN, 5)
    starts = [int(w[0, 0]) for w in windows]
    assert len(starts) == 5 and starts[0] == 0 and starts[-1] == 98 * 19
    silent = np.full((98 * 3, 40), -100.0, np.float32)
    assert file_windows(silent, PLAN, 5) == []  # digital silence is no negative


def test_the_split_is_by_recording_stable_and_seeded():
    takes = [
        Path(f"esc50/audio/{fold}-esc0123-{take}-7.wav") for fold, take in [(1, "A"), (2, "B")]
    ]
    assert recording_of(takes[0]) == recording_of(takes[1]) == "esc50:esc0123"
    assert part_of(takes[0]) == part_of(takes[1])  # takes of one recording stay together
    files = [Path(f"n/{i}.wav") for i in range(3000)]
    parts = [part_of(f, seed=0) for f in files]
    assert parts == [part_of(f, seed=0) for f in files]
    shares = [parts.count(p) / len(parts) for p in PARTS]
    np.testing.assert_allclose(shares, [0.7, 0.15, 0.15], atol=0.03)
    assert parts != [part_of(f, seed=1) for f in files]


def test_calibration_negatives_never_reach_training_and_validation_ones_never_a_refit(tmp_path):
    root = tmp_path / "neg"
    for i in range(40):
        write_wav(root / f"n{i}.wav", noise(1.2, 8000, i), 8000)
    cache = FeatureCache(FRONTEND, tmp_path / "cache")
    negatives = load_negatives([root], cache, PLAN, progress=False)
    assert all(negatives.parts[p].clips for p in PARTS)
    clips = ClipSet([], ["a", BACKGROUND])
    combined, split = add_negatives(clips, Split([], [], [], ["g"], ["v"]), negatives)
    sources = {c.source.split("#")[0] for c in combined.clips}
    calibration = {str(f) for f in negatives.parts["calibration"].files}
    assert not sources & calibration
    train_sources = {combined.clips[i].source.split("#")[0] for i in split.train}
    assert train_sources == {str(f) for f in negatives.parts["train"].files}
    assert all(is_validation_negative(combined.clips[i]) for i in split.validation)
    assert not any(is_validation_negative(combined.clips[i]) for i in split.train)
    # a final fit has no validation side: the validation part stays out of it too
    _, final = add_negatives(clips, Split([], [], [], [], []), negatives)
    assert final.validation == [] and len(final.train) == len(negatives.parts["train"].clips)


def test_negatives_turn_a_folder_model_into_a_detector(tmp_path):
    data = make_folder_dataset(tmp_path / "data", per_class=6)
    root = tmp_path / "neg"
    for i in range(20):  # half of them Ogg Opus, the format of ../shared/data/negatives
        if i % 2:
            write_opus(root / f"n{i}.opus", noise(2.5, 16000, i), 16000)
        else:
            write_wav(root / f"n{i}.wav", noise(2.5, 16000, i), 16000)
    (root / "bad.wav").write_bytes(b"not a wav")
    out = tmp_path / "run"
    result = run_export(
        "train", "--data", str(data), "--layout", "folder", "--out", str(out),
        "--model", "vgg", "--size", "tiny", "--epochs", "2", "--quiet",
        "--cache", str(tmp_path / "cache"), "--negatives", str(root), "--no-reverb", "--gain", "20",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["background_class"] == BACKGROUND and BACKGROUND in config["labels"]
    assert config["negatives"]["skipped"] == 1 and config["negatives"]["train"]["files"] > 0
    assert sum(config["negatives"][p]["files"] for p in PARTS) == 20  # every Opus file read
    assert config["augmentation"]["reverb_prob"] == 0.0
    assert config["augmentation"]["gain_db"] == 20.0
    log = (out / "train.log").read_text()
    assert "negatives train:" in log and "skipped" in log and "bad.wav" in log


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--no-background"], "cannot go with --no-background"),
        (["--negatives-per-file", "0"], "--negatives-per-file must be at least 1"),
        (["--rt60", "0.9", "0.2"], "--rt60 LOW HIGH"),
        (["--snr", "10", "100"], "--snr LOW HIGH"),
    ],
)
def test_bad_negatives_and_room_options_are_clear_errors(tmp_path, extra, fragment):
    data = make_folder_dataset(tmp_path / "data", per_class=3)
    root = tmp_path / "neg"
    write_wav(root / "n.wav", noise(2, 16000, 0), 16000)
    args = ["train", "--data", str(data), "--layout", "folder", "--out", str(tmp_path / "r")]
    if "--rt60" in extra or "--snr" in extra:
        args += extra
    else:
        args += ["--negatives", str(root), *extra]
    result = run_export(*args, "--quiet", "--cache", str(tmp_path / "cache"))
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_the_manifest_keeps_what_negatives_a_model_trained_with():
    from edge_audio.manifest import TrainingRecord

    record = {"dataset": "fsdd", "layout": "fsdd", "negatives": {"folders": ["n"], "seed": 3}}
    assert TrainingRecord.from_dict(record).to_dict()["negatives"] == record["negatives"]
    assert "negatives" not in TrainingRecord.from_dict(record | {"negatives": None}).to_dict()


@pytest.mark.parametrize(
    "negatives, flag, on",
    [(None, None, False), (["n"], None, True), (["n"], False, False), (None, True, True)],
)
def test_rooms_are_on_for_detectors_with_negatives_unless_switched(negatives, flag, on):
    import argparse

    from export.train import reverb_on

    assert reverb_on(argparse.Namespace(negatives=negatives, reverb=flag)) is on


def indexed_talk(root: Path, speakers: int = 30, per_speaker: int = 4) -> Path:
    """Talk as ../shared/data/negatives lays it out: an index.csv (file, source,
    speaker, licence) above speaker folders, one source without speaker ids."""
    rows = ["file,source,speaker,licence,text"]
    for s in range(speakers):
        for k in range(per_speaker):
            name = f"talk/readers/S{s:02d}/{k}.wav"
            write_wav(root / name, noise(1.2, 8000, s * 100 + k), 8000)
            rows.append(f"{name},readers,S{s:02d},CC BY 4.0,HELLO THERE")
    for k in range(10):
        name = f"talk/orders/{k}.opus"
        write_opus(root / name, noise(1.2, 16000, 9000 + k), 16000)
        rows.append(f"{name},orders,,Apache-2.0,A LATTE PLEASE")
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    return root


def test_an_index_keeps_each_speaker_in_one_part(tmp_path):
    root = indexed_talk(tmp_path / "negatives")
    # the index is found from a subfolder given to --negatives, as from the top
    for given in (root, root / "talk"):
        cache = FeatureCache(FRONTEND, tmp_path / "cache")
        negatives = load_negatives([given], cache, PLAN, progress=False)
        speakers = {
            part: {provenance_of(f).speaker for f in p.files if provenance_of(f).speaker}
            for part, p in negatives.parts.items()
        }
        assert all(speakers.values())  # 30 speakers reach every part
        assert not speakers["train"] & speakers["validation"]
        assert not speakers["train"] & speakers["calibration"]
        assert not speakers["validation"] & speakers["calibration"]
        summary = negatives.summary()
        by_source = {
            source: sum(summary[p]["hours_by_source"].get(source, 0.0) for p in PARTS)
            for source in ("readers", "orders")
        }
        assert by_source["readers"] == pytest.approx(30 * 4 * 1.2 / 3600, abs=0.002)
        assert by_source["orders"] == pytest.approx(10 * 1.2 / 3600, abs=0.002)
        split_by_speaker = sum(summary[p]["hours_split_by_speaker"] for p in PARTS)
        assert split_by_speaker == pytest.approx(by_source["readers"], abs=0.002)
        licences = {k: v for p in PARTS for k, v in summary[p]["licences"].items()}
        assert licences == {"readers": "CC BY 4.0", "orders": "Apache-2.0"}
        assert "readers 0.04 h" in negatives.describe()


def test_without_an_index_the_split_is_by_recording_as_before(tmp_path):
    root = tmp_path / "plain"
    write_wav(root / "kitchen" / "a.wav", noise(1.2, 8000, 1), 8000)
    path = root / "kitchen" / "a.wav"
    assert provenance_of(path) is None and recording_of(path) == "kitchen/a.wav"
    assert source_of(path, root) == "kitchen" and source_of(path, root / "kitchen") == "kitchen"
    # an unrelated index.csv (other columns, or not listing the file) changes nothing
    (root / "index.csv").write_text("name,value\na.wav,1\n")
    assert recording_of(path) == "kitchen/a.wav"


def test_the_card_says_hours_per_source_and_how_the_parts_were_kept_apart(tmp_path):
    root = indexed_talk(tmp_path / "negatives", speakers=12)
    negatives = load_negatives([root], FeatureCache(FRONTEND, tmp_path / "c"), PLAN, progress=False)
    sentence = negatives_sentence(negatives.summary())
    assert "orders 0.00 h" in sentence and "readers 0.02 h" in sentence
    assert "kept apart by speaker" in sentence and "calibration" in sentence
    assert negatives_sentence(None) == ""


@pytest.mark.shared
def test_the_shared_negatives_never_put_a_speaker_on_two_sides():
    """The real index: 490 voices, none of them in two parts (read from the index;
    no audio decoded)."""
    import csv

    root = shared_dataset("negatives")
    with (root / "index.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["speaker"]]
    assert len(rows) > 4000
    parts_of: dict[str, set[str]] = {}
    for row in rows:
        path = root / row["file"]
        assert recording_of(path) == f"speaker:{row['source']}:{row['speaker']}"
        parts_of.setdefault(row["speaker"], set()).add(part_of(path))
    assert len(parts_of) > 400
    assert all(len(parts) == 1 for parts in parts_of.values())
    shares = [sum(p == {part} for p in parts_of.values()) / len(parts_of) for part in PARTS]
    np.testing.assert_allclose(shares, [0.7, 0.15, 0.15], atol=0.06)
