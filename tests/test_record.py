"""`edge-audio record`: exact file lengths from any chunking, names that declare
the session as the group, refusals that name the problem. The microphone path
itself is tested on the virtual microphone in test_listen_mic.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_audio.audio import read_wav, wav_info, write_wav
from edge_audio.cli import main
from edge_audio.datasets import scan
from edge_audio.errors import ConfigError
from edge_audio.record import RecordPlan, SampleReader
from edge_audio.shipped import demo_recording


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=30),
    takes=st.lists(st.integers(0, 900), min_size=1, max_size=10),
)
def test_the_reader_hands_out_exact_counts_in_order_whatever_the_chunks(sizes, takes):
    signal = np.arange(sum(sizes), dtype=np.float32)
    bounds = np.cumsum([0, *sizes])
    reader = SampleReader(signal[a:b] for a, b in itertools.pairwise(bounds))
    got, at = [], 0
    for n in takes:
        part = reader.take(n)
        assert part.size == min(n, signal.size - at)
        got.append(part)
        at += part.size
    np.testing.assert_array_equal(np.concatenate(got), signal[:at])


def record(*args: str) -> int:
    return main(["record", *args, "--simulate", str(demo_recording())])


def test_clips_are_written_with_the_session_as_their_group(tmp_path, capsys):
    out = tmp_path / "mine"
    assert record("--out", str(out), "--label", "three", "--clips", "3", "--seconds", "1.5",
                  "--session", "kitchen") == 0  # fmt: skip
    files = sorted((out / "three").iterdir())
    assert [f.name for f in files] == ["kitchen_000.wav", "kitchen_001.wav", "kitchen_002.wav"]
    demo, rate = read_wav(demo_recording())
    for n, path in enumerate(files):
        samples, file_rate = read_wav(path)
        assert file_rate == rate and samples.size == round(1.5 * rate)
        start = n * round(2.5 * rate)  # 1.5 s clips with 1 s to get ready between them
        np.testing.assert_allclose(samples, demo[start : start + samples.size], atol=1e-4)
    index = scan(out, "folder", groups="{label}/{group}_*.wav")
    assert index.groups == ["kitchen"] and len(index.records) == 3
    assert "wrote 3 files" in capsys.readouterr().err


def test_minutes_of_the_room_go_to_background_a_file_a_minute(tmp_path):
    plan = RecordPlan.minutes(tmp_path, "_background_", 2.5, "room")
    assert plan.files == 3 and plan.seconds == pytest.approx(50.0) and plan.gap_s == 0
    assert record("--out", str(tmp_path), "--minutes", "0.1", "--session", "room") == 0
    (only,) = (tmp_path / "_background_").iterdir()
    assert only.name == "room_000.wav" and wav_info(only).duration == pytest.approx(6.0)


def test_a_recording_that_ends_early_keeps_what_it_got_and_says_so(tmp_path):
    short = tmp_path / "short.wav"
    write_wav(short, np.full(16000 * 3, 0.1, np.float32), 16000)
    code = main(["record", "--out", str(tmp_path / "o"), "--label", "x", "--clips", "5",
                 "--seconds", "1", "--session", "s", "--simulate", str(short)])  # fmt: skip
    assert code == 1  # 5 asked, 2 whole clips and a part
    assert len(list((tmp_path / "o" / "x").iterdir())) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clips", "2"], "--clips needs --label"),
        (["--clips", "2", "--label", "a", "--session", "my_room"], "may not contain '_'"),
        (["--clips", "0", "--label", "a"], "at least one file"),
        (["--clips", "1", "--label", "../up"], "cannot be a folder or file name"),
    ],
)
def test_bad_requests_are_one_clear_line(tmp_path, capsys, args, message):
    assert record("--out", str(tmp_path), *args) == 2
    assert message in capsys.readouterr().err


def test_a_session_is_never_overwritten(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--label", "a", "--clips", "1", "--session", "one"]
    assert record(*args) == 0
    before = (tmp_path / "a" / "one_000.wav").read_bytes()
    assert record(*args) == 2
    assert "already holds session 'one'" in capsys.readouterr().err
    assert (tmp_path / "a" / "one_000.wav").read_bytes() == before
    with pytest.raises(ConfigError):
        RecordPlan(tmp_path, "a", "", 1, 1.0)
