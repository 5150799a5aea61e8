from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_audio.audio import write_wav
from edge_audio.datasets import LAYOUTS, scan
from edge_audio.errors import DatasetError

from .conftest import shared_dataset
from .wavgen import tone


def clip(path: Path, seconds: float = 0.2, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, tone(int(seconds * rate), rate=rate), rate)
    return path


def make_folder_dataset(root: Path) -> Path:
    for label in ("music", "speech"):
        for i in range(3):
            clip(root / label / f"{label}{i}.wav")
    (root / "music" / "notes.txt").write_text("not audio")
    (root / ".hidden").mkdir()
    return root


def test_folder_layout_groups_by_recording(tmp_path):
    index = scan(make_folder_dataset(tmp_path), "folder")
    assert index.labels == ["music", "speech"]
    assert len(index.records) == 6 and len(index.groups) == 6
    assert all(r.group.startswith(r.label + "/") for r in index.records)


def test_bad_files_are_skipped_and_listed_not_fatal(tmp_path):
    root = make_folder_dataset(tmp_path)
    (root / "music" / "broken.wav").write_bytes(b"RIFF\x00")
    (root / "speech" / "empty.wav").write_bytes(b"")
    index = scan(root, "folder")
    assert len(index.records) == 6
    reasons = {s.path.name: s.reason for s in index.skipped}
    assert reasons == {"broken.wav": reasons["broken.wav"], "empty.wav": "empty file"}
    assert "truncated" in reasons["broken.wav"]
    summary = index.summary()
    assert "2 skipped" in summary and "broken.wav" in summary and "empty file" in summary


def test_fsdd_layout_reads_speaker_from_name(tmp_path):
    for name in ("0_george_0", "0_george_1", "7_jackson_32", "3_theo_4"):
        clip(tmp_path / "recordings" / f"{name}.wav")
    clip(tmp_path / "recordings" / "badname.wav")
    index = scan(tmp_path, "fsdd")
    assert index.labels == ["0", "3", "7"] and index.groups == ["george", "jackson", "theo"]
    assert [s.path.name for s in index.skipped] == ["badname.wav"]
    # the folder given may hold the WAVs directly
    assert len(scan(tmp_path / "recordings", "fsdd").records) == 4


def make_esc50(root: Path) -> Path:
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in (1, 2, 3):
        for target, category in ((0, "dog"), (1, "rain")):
            name = f"{fold}-{100 + target}-A-{target}.wav"
            clip(root / "audio" / name)
            rows.append(f"{name},{fold},{target},{category},True,{100 + target},A")
    rows.append("5-999-A-0.wav,5,0,dog,True,999,A")  # listed but missing
    (root / "meta").mkdir(exist_ok=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


def test_esc50_layout_groups_by_fold_and_selects_folds(tmp_path):
    root = make_esc50(tmp_path)
    index = scan(root, "esc50")
    assert index.groups == ["fold1", "fold2", "fold3"]
    assert [s.reason for s in index.skipped] == ["missing"]
    picked = scan(root, "esc50", folds=[1, 3])
    assert picked.groups == ["fold1", "fold3"] and len(picked.records) == 4
    with pytest.raises(DatasetError, match=r"no clips in fold\(s\) \[4\]"):
        scan(root, "esc50", folds=[4])


def test_speech_commands_layout_reads_lists_and_background(tmp_path):
    for word in ("yes", "no"):
        for speaker in ("aa11", "bb22", "cc33"):
            clip(tmp_path / word / f"{speaker}_nohash_0.wav")
    clip(tmp_path / "_background_noise_" / "white_noise.wav", seconds=1.0)
    (tmp_path / "validation_list.txt").write_text("yes/bb22_nohash_0.wav\nno/bb22_nohash_0.wav\n")
    (tmp_path / "testing_list.txt").write_text("yes/cc33_nohash_0.wav\n")
    index = scan(tmp_path, "speech-commands")
    assert index.labels == ["no", "yes"] and index.groups == ["aa11", "bb22", "cc33"]
    splits = {(r.label, r.group): r.split for r in index.records}
    assert splits[("yes", "bb22")] == "validation" and splits[("yes", "cc33")] == "test"
    assert splits[("no", "cc33")] == "train"
    assert [p.name for p in index.background] == ["white_noise.wav"]


@pytest.mark.parametrize("nested", ["genres", "genres_original", None])
def test_gtzan_layout_with_or_without_genres_folder(tmp_path, nested):
    base = tmp_path / nested if nested else tmp_path
    for genre in ("blues", "jazz"):
        clip(base / genre / f"{genre}.00000.wav")
    index = scan(tmp_path, "gtzan")
    assert index.labels == ["blues", "jazz"] and index.root == tmp_path


def test_layout_mismatch_and_empty_folders_are_clear_errors(tmp_path):
    make_folder_dataset(tmp_path / "folderset")
    with pytest.raises(DatasetError, match=r"meta/esc50\.csv"):
        scan(tmp_path / "folderset", "esc50")
    with pytest.raises(DatasetError, match=r"\{digit\}_\{speaker\}"):
        scan(tmp_path / "folderset", "fsdd")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="one subfolder per class"):
        scan(tmp_path / "empty", "folder")
    with pytest.raises(DatasetError, match="no such folder"):
        scan(tmp_path / "missing", "folder")
    with pytest.raises(DatasetError, match="unknown layout 'wav'"):
        scan(tmp_path, "wav")
    with pytest.raises(DatasetError, match="esc50 layout only"):
        scan(tmp_path / "folderset", "folder", folds=[1])


def test_class_without_clips_is_an_error(tmp_path):
    root = make_folder_dataset(tmp_path)
    (root / "silence").mkdir()
    with pytest.raises(DatasetError, match="class 'silence' has no audio clips"):
        scan(root, "folder")


def test_all_clips_bad_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.wav").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="no usable audio clips"):
        scan(tmp_path, "folder")


def test_layout_names_are_stable():
    assert LAYOUTS == ("folder", "esc50", "fsdd", "speech-commands", "gtzan")


# --- the real recordings in ../shared/data ---------------------------------


@pytest.mark.shared
def test_shared_fsdd_has_five_speakers_and_ten_digits():
    index = scan(shared_dataset("fsdd"), "fsdd")
    assert index.labels == [str(d) for d in range(10)]
    assert index.groups == ["george", "jackson", "lucas", "nicolas", "theo"]
    assert len(index.records) == 2500 and not index.skipped


@pytest.mark.shared
def test_shared_esc50_has_four_folds_of_fifty_classes():
    index = scan(shared_dataset("esc50"), "esc50")
    assert len(index.labels) == 50 and index.groups == ["fold1", "fold2", "fold3", "fold5"]
    assert len(index.records) == 1600 and not index.skipped


@pytest.mark.shared
def test_shared_music_speech_is_a_folder_layout():
    index = scan(shared_dataset("music_speech"), "folder")
    assert index.labels == ["music", "speech"] and len(index.records) == 80
    assert len(index.groups) == 80


@pytest.mark.shared
@pytest.mark.parametrize(
    "name, layout, count",
    [("fsdd", "fsdd", 40), ("esc50", "esc50", 20), ("music_speech", "folder", 6)],
)
def test_shared_clips_load_and_give_finite_features(name, layout, count):
    from edge_audio.audio import load_audio
    from edge_audio.frontend import LogMel

    index = scan(shared_dataset(name), layout)
    frontend = LogMel()
    picks = index.records[:: max(1, len(index.records) // count)][:count]
    for record in picks:
        samples, rate = load_audio(record.path, 16000)
        features = frontend(samples)
        assert rate == 16000 and features.shape[1] == 40 and features.shape[0] >= 10
        assert np.isfinite(features).all() and features.max() > -60.0, record.path
