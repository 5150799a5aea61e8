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


# --- declared groups (folder layouts) --------------------------------------------


def make_speaker_dataset(root: Path) -> Path:
    """Two words said by three speakers, two takes each: {word}/{speaker}_{take}.wav."""
    for word in ("yes", "no"):
        for speaker in ("ann", "bob", "cy"):
            for take in range(2):
                clip(root / word / f"{speaker}_{take}.wav")
    return root


def test_folder_without_groups_warns_that_figures_may_be_optimistic(tmp_path):
    index = scan(make_speaker_dataset(tmp_path), "folder")
    assert not index.groups_declared and len(index.groups) == 12
    assert "no groups declared" in index.summary()


def test_groups_from_a_pattern_keep_a_speaker_together(tmp_path):
    index = scan(make_speaker_dataset(tmp_path), "folder", groups="{label}/{group}_*.wav")
    assert index.groups_declared and index.groups == ["ann", "bob", "cy"]
    assert {r.group for r in index.records if r.path.stem.startswith("bob")} == {"bob"}
    assert "no groups declared" not in index.summary()
    # A pattern over the file name alone works the same.
    assert scan(tmp_path, "folder", groups="{group}_*.wav").groups == ["ann", "bob", "cy"]


def test_files_the_pattern_does_not_match_are_skipped_and_named(tmp_path):
    root = make_speaker_dataset(tmp_path)
    clip(root / "yes" / "stray.wav")
    index = scan(root, "folder", groups="{label}/{group}_*.wav")
    assert [s.path.name for s in index.skipped] == ["stray.wav"]
    assert "does not match" in index.skipped[0].reason


def test_groups_from_a_csv(tmp_path):
    root = make_speaker_dataset(tmp_path)
    rows = ["file,label,group"]
    for path in sorted(root.rglob("*.wav")):
        if path.stem != "cy_1":
            speaker = path.stem.split("_")[0]
            rows.append(f"{path.relative_to(root).as_posix()},{path.parent.name},{speaker}")
    rows.append("yes/gone.wav,yes,ann")
    (root / "groups.csv").write_text("\n".join(rows) + "\n")
    index = scan(root, "folder", groups="groups.csv")  # found beside the data too
    assert index.groups == ["ann", "bob", "cy"] and len(index.records) == 10
    reasons = sorted(s.reason for s in index.skipped)
    assert reasons == [
        "listed in groups.csv but missing",
        "not listed in groups.csv",
        "not listed in groups.csv",
    ]


@pytest.mark.parametrize(
    ("groups", "layout", "fragment"),
    [
        ("{label}/*.wav", "folder", "must contain {group}"),
        ("{group}_*.wav", "fsdd", "applies to the folder and gtzan layouts"),
        ("missing.csv", "folder", "no such CSV file"),
        ("bad.csv", "folder", "missing columns ['group']"),
        ("{group}.flac", "folder", "no clip has a group"),
    ],
)
def test_bad_group_declarations_are_clear_errors(tmp_path, groups, layout, fragment):
    root = make_speaker_dataset(tmp_path)
    clip(root / "0_ann_0.wav")
    (root / "bad.csv").write_text("file,label\nyes/ann_0.wav,yes\n")
    with pytest.raises(DatasetError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        scan(root, layout, groups=groups)


def test_many_groups_are_named_briefly():
    from edge_audio.datasets import describe_groups

    assert describe_groups(["theo"]) == "theo"
    assert describe_groups(["a", "b", "c", "d"]) == "a, b, c, d"
    recordings = [f"music/r{i}" for i in range(16)]
    text = describe_groups(recordings)
    assert text == "16 groups (music/r0, music/r1, music/r2 and 13 more)"
