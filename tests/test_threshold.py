"""export threshold: held-out streams, the replayed detector, the threshold
written into the bundle, and the bundle's settings reaching the stream engine."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge_audio.backends import load_backend
from edge_audio.bundle import load_bundle
from edge_audio.errors import ConfigError
from edge_audio.shipped import default_model, demo_recording, shipped_models
from edge_audio.stream import StreamConfig, StreamEngine

from .conftest import shared_dataset

pytest.importorskip("torch", reason="the export toolchain needs the train extra")

from export.threshold import (
    choose_threshold,
    decider_in_words,
    events_at,
    make_streams,
    posteriors,
    write_stream_settings,
)

FSDD_BUNDLE = default_model()


def test_a_card_says_the_decider_in_words():
    raw = {"threshold": 0.45, "smoothing": 1, "min_count": 2, "suppression_s": 1.0}
    assert decider_in_words(raw) == (
        "threshold 0.45 on the score, 2 window(s) in a row, then 1 s of suppression"
    )
    smoothed = decider_in_words({**raw, "smoothing": 3})
    assert "smoothed score (moving average of 3 windows)" in smoothed


def test_streams_lay_clips_end_to_end_with_their_truth():
    rate = 8000
    clips = [(np.full(800 * (i + 1), 0.5, np.float32), str(i)) for i in range(7)]
    streams = make_streams(clips, rate, per_stream=3, rng=np.random.default_rng(0))
    assert [len(s.truth) for s in streams] == [3, 3, 1]
    assert sorted(seg.label for s in streams for seg in s.truth) == [str(i) for i in range(7)]
    for stream in streams:
        for a, b in zip(stream.truth, stream.truth[1:], strict=False):
            assert b.start - a.end >= 0.5 - 1e-9  # a gap of background between words
        for seg in stream.truth:
            span = stream.audio[int(seg.start * rate) + 10 : int(seg.end * rate) - 10]
            quiet = stream.audio[int((seg.start - 0.4) * rate) : int(seg.start * rate) - 10]
            assert np.abs(span).mean() > 5 * np.abs(quiet).mean()  # the clip is where truth says
        assert stream.audio.size / rate > stream.truth[-1].end


def test_replayed_detector_equals_the_engine_at_the_same_threshold():
    bundle = load_bundle(FSDD_BUNDLE)
    backend = load_backend(bundle)
    from edge_audio.audio import load_audio

    audio, rate = load_audio(demo_recording(), bundle.frontend.sample_rate)
    record = posteriors(bundle, backend, audio, rate)
    config = StreamConfig.for_bundle(bundle, threshold=0.6)
    engine = StreamEngine(bundle, backend, rate, config)
    live = []
    for i in range(0, audio.size, 1024):
        live += engine.feed(audio[i : i + 1024])
    live += engine.flush()
    replayed = events_at(bundle, record, config)
    drop_wall = lambda events: [{k: v for k, v in e.items() if k != "wall"} for e in events]  # noqa: E731
    assert drop_wall(replayed) == drop_wall([e.to_dict() for e in live]) and replayed


def test_the_engine_takes_the_bundles_threshold_unless_overridden(tmp_path):
    bundle_dir = tmp_path / "b"
    shutil.copytree(FSDD_BUNDLE, bundle_dir)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["stream"] = {"threshold": 0.42, "smoothing": 4}
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    bundle = load_bundle(bundle_dir)
    assert StreamConfig.for_bundle(bundle).threshold == 0.42
    assert StreamConfig.for_bundle(bundle).smoothing == 4
    assert StreamConfig.for_bundle(bundle, threshold=0.7, smoothing=None).threshold == 0.7
    assert StreamEngine(bundle, load_backend(bundle), 16000).config.threshold == 0.42
    with pytest.raises(ConfigError, match="unknown stream settings"):
        StreamConfig.for_bundle(bundle, window=3)


def test_a_classification_bundle_has_no_threshold_to_calibrate(tmp_path):
    with pytest.raises(ConfigError, match="classification bundle"):
        choose_threshold(shipped_models()["music-speech"], tmp_path, "folder")


@pytest.mark.shared
def test_calibrate_on_held_out_fsdd_writes_manifest_and_card(tmp_path):
    data = shared_dataset("fsdd")
    bundle_dir = tmp_path / "fsdd-digits"
    shutil.copytree(FSDD_BUNDLE, bundle_dir)
    stream = choose_threshold(bundle_dir, data, "fsdd", per_stream=25, seed=0)
    cal = stream["chosen_on"]
    assert cal["groups"] == ["theo"] and cal["events"] == 500  # every held-out clip, once
    curve = {float(t): s["f1"] for t, s in cal["by_threshold"].items()}
    assert curve[stream["threshold"]] == max(curve.values())
    recalls = [s["recall"] for s in cal["by_threshold"].values()]
    assert recalls == sorted(recalls, reverse=True)  # a higher threshold never finds more
    write_stream_settings(bundle_dir, stream)
    write_stream_settings(bundle_dir, stream)  # idempotent: one section, not two
    assert load_bundle(bundle_dir).manifest.stream.threshold == stream["threshold"]
    card = (bundle_dir / "card.md").read_text()
    assert card.count("## Streaming threshold") == 1 and card.index("## Streaming") < card.index(
        "## Limits"
    )
