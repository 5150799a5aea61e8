"""The training-file digest that lets `evaluate` warn about scoring training data."""

from __future__ import annotations

import pytest

from edge_audio.digest import TrainingDigest, content_key, file_key


def test_digest_finds_its_files_by_content_and_round_trips(tmp_path):
    files = []
    for i in range(50):
        path = tmp_path / f"clip{i}.wav"
        path.write_bytes(f"audio {i}".encode())
        files.append(path)
    digest = TrainingDigest.of_files(files[:40])
    assert len(digest) == 40
    again = TrainingDigest.from_dict(digest.to_dict())
    assert [again.contains(file_key(p)) for p in files] == [True] * 40 + [False] * 10
    # A renamed copy is the same recording.
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(files[3].read_bytes())
    assert again.contains(file_key(copy))
    # 4 bytes a file, in base64
    assert digest.to_dict()["count"] == 40 and len(digest.to_dict()["data"]) == 4 * -(-160 // 3)


def test_an_empty_digest_contains_nothing():
    assert not TrainingDigest.of_keys([]).contains(content_key(b"x"))


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"algorithm": "md5", "count": 0, "data": ""}, "must use sha256-prefix32"),
        ({"algorithm": "sha256-prefix32", "count": 1, "data": "AAA="}, "whole number of keys"),
        ({"algorithm": "sha256-prefix32", "count": 2, "data": "AAAAAA=="}, "count does not"),
        ("not a dict", "must use"),
    ],
)
def test_bad_digests_are_clear_errors(entry, fragment):
    with pytest.raises(ValueError, match=fragment):
        TrainingDigest.from_dict(entry)
