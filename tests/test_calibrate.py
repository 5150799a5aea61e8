"""export calibrate (operating point by false alarms per hour, DET curve) and
export robustness (event F1 against room and SNR)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_audio.audio import write_wav
from edge_audio.bundle import load_bundle
from edge_audio.errors import ConfigError
from edge_audio.shipped import default_model, shipped_models
from export.calibrate import (
    Point,
    Setting,
    calibrate,
    card_section,
    choose,
    choose_by_misses,
    det_plot,
)
from export.robustness import robustness
from export.streams import Condition, hear, speech_power
from export.threshold import Stream, write_stream_settings

from .conftest import shared_dataset
from .test_train import run_export

pytest.importorskip("matplotlib", reason="the DET plot needs the train extra")


def curve(fa_per_hour: list[float], frr: list[float], smoothing: int = 3) -> list[Point]:
    thresholds = np.round(np.linspace(0.2, 0.9, len(fa_per_hour)), 2)
    return [
        Point(Setting(float(t), smoothing, 2), r, int(f), f, 0.9)
        for t, f, r in zip(thresholds, fa_per_hour, frr, strict=True)
    ]


def test_the_chosen_point_meets_the_target_with_the_fewest_false_rejects():
    # false alarms fall and false rejects rise with the threshold: the answer is the
    # first threshold at or under one alarm an hour, 0.6 here.
    points = curve([40, 12, 5, 2, 1, 0, 0, 0], [0.01, 0.02, 0.03, 0.04, 0.06, 0.1, 0.3, 0.6])
    best, met = choose(points, 1.0)
    assert met and best.setting.threshold == 0.6
    # another smoothing reaches the target with fewer misses: it wins
    other = curve([30, 8, 3, 0.5, 0, 0, 0, 0], [0.01, 0.02, 0.03, 0.05, 0.2, 0.4, 0.6, 0.8], 5)
    best, met = choose(points + other, 1.0)
    assert met and (best.setting.threshold, best.setting.smoothing) == (0.5, 5)
    # a looser target moves the point down the curve
    assert choose(points, 5.0)[0].setting.threshold == 0.4


def test_when_no_setting_meets_the_target_the_fallback_still_detects():
    points = curve([90, 50, 20, 10, 6, 4, 3, 2], [0.05, 0.1, 0.2, 0.3, 0.45, 0.55, 0.8, 1.0])
    best, met = choose(points, 1.0)
    assert not met
    assert best.setting.threshold == 0.6  # fewest alarms among those missing at most half
    hopeless = curve([9, 8], [0.9, 0.95])
    assert choose(hopeless, 1.0)[0].setting.threshold == 0.2  # catches the most
    with pytest.raises(ValueError):
        choose([], 1.0)


def test_chosen_by_misses_the_point_has_the_fewest_false_alarms_within_the_miss_budget():
    points = curve([40, 12, 5, 2, 1, 0, 0, 0], [0.01, 0.02, 0.03, 0.04, 0.06, 0.1, 0.3, 0.6])
    best, met = choose_by_misses(points, 0.05)  # 0.6 misses 6%: the answer is 0.5 (4%)
    assert met and best.setting.threshold == 0.5
    best, met = choose_by_misses(points, 0.3)  # zero alarms from 0.7 on: the fewest misses
    assert met and best.setting.threshold == 0.7
    best, met = choose_by_misses(points, 0.0)  # nothing misses none: the fewest misses
    assert not met and best.setting.threshold == 0.2
    with pytest.raises(ValueError):
        choose_by_misses([], 0.3)


def constructed_result(points: list[Point], met: bool = True) -> dict:
    best, _ = choose(points, 1.0)
    return {
        "threshold": best.setting.threshold,
        "smoothing": best.setting.smoothing,
        "min_count": best.setting.min_count,
        "suppression_s": 1.0,
        "chosen_on": {
            "max_false_alarms_per_hour": 1.0,
            "target_met": met,
            "chosen": best.to_dict(),
            "groups": ["theo"],
            "streams": 3,
            "events": 75,
            "seconds": 180.0,
            "negatives": "constructed",
            "negative_files": 4,
            "negative_hours": 0.5,
            "artefact": "tflite-int8",
            "points": [p.to_dict() for p in points],
        },
    }


def test_the_det_plot_and_the_card_table_are_written(tmp_path):
    points = curve([40, 12, 5, 2, 1, 0, 0, 0], [0.01, 0.02, 0.03, 0.04, 0.06, 0.1, 0.3, 0.6])
    result = constructed_result(points)
    det_plot(result, tmp_path / "det.png")
    assert (tmp_path / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    section = card_section(result)
    assert "threshold 0.60" in section and "| 0.60 | 6.0% | 1 | 1.0 | 0.900 |" in section
    assert "meets the target" in section
    assert "No setting met" in card_section(constructed_result(points, met=False))
    deaf = curve([5, 0], [0.3, 0.9])  # meets the target only by missing 90% of the words
    assert "only by missing most words" in card_section(constructed_result(deaf))
    by_misses = constructed_result(points)
    by_misses["chosen_on"].update(max_false_alarms_per_hour=None, max_false_reject_rate=0.3)
    assert "miss at most 30% of the words" in card_section(by_misses)
    det_plot(by_misses, tmp_path / "det-misses.png")  # the target is a horizontal line
    assert (tmp_path / "det-misses.png").stat().st_size > 0


def test_ambience_is_mixed_at_the_asked_snr():
    rate = 8000
    speech = np.zeros(rate * 4, np.float32)
    speech[rate : 2 * rate] = 0.1 * np.sin(np.arange(rate) * 0.2)
    from edge_audio.scoring import Segment

    stream = Stream(speech, [Segment(1.0, 2.0, "x")])
    ambience = np.random.default_rng(0).normal(0, 1, rate * 10).astype(np.float32)
    heard = hear(stream, rate, Condition("noisy", snr_db=10.0), ambience, np.random.default_rng(1))
    noise = heard.audio - speech
    assert 10 * np.log10(speech_power(stream, rate) / np.mean(noise**2)) == pytest.approx(
        10, abs=0.2
    )
    with pytest.raises(ValueError, match="needs ambience"):
        hear(stream, rate, Condition("noisy", snr_db=10.0), None, np.random.default_rng(1))


def negatives_folder(root: Path, files: int = 4) -> Path:
    """Hum and hiss, every other file Ogg Opus (the format of the shared negatives)."""
    import soundfile

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(files):
        t = np.arange(8000 * 15) / 8000
        hum = 0.2 * np.sin(2 * np.pi * rng.uniform(80, 400) * t) + rng.normal(0, 0.05, t.size)
        if i % 2:
            soundfile.write(root / f"room{i}.opus", hum, 8000, format="OGG", subtype="OPUS")
        else:
            write_wav(root / f"room{i}.wav", hum, 8000)
    return root


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    target = tmp_path / "fsdd-digits"
    shutil.copytree(default_model(), target)
    return target


def test_calibrate_end_to_end_writes_the_operating_point(tmp_path, bundle_copy):
    fsdd = shared_dataset("fsdd")
    negatives = negatives_folder(tmp_path / "neg")
    result = calibrate(
        bundle_copy, fsdd, "fsdd", [negatives], max_fa_per_hour=1.0, progress=False, max_clips=25
    )
    cal = result["chosen_on"]
    assert cal["negatives"].startswith("every file of") and cal["negative_files"] == 4
    assert len(cal["points"]) == 16 * 3 * 3 and cal["events"] == 3 * 25
    assert [c["name"] for c in cal["conditions"]] == ["clean", "reverberant", "noisy"]
    chosen = cal["chosen"]
    assert chosen["false_alarms_per_hour"] <= 1.0 or not cal["target_met"]
    write_stream_settings(bundle_copy, result, card_section(result))
    stream = load_bundle(bundle_copy).manifest.stream
    assert stream.threshold == result["threshold"] and stream.smoothing == result["smoothing"]
    assert "false rejects" in (bundle_copy / "card.md").read_text()


def test_calibrate_command_writes_det_png(tmp_path, bundle_copy):
    fsdd = shared_dataset("fsdd")
    negatives = negatives_folder(tmp_path / "neg", files=2)
    result = run_export(
        "calibrate", str(bundle_copy), "--data", str(fsdd), "--layout", "fsdd",
        "--negatives", str(negatives), "--clips", "10", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (bundle_copy / "det.png").exists() and "chosen: threshold" in result.stdout
    result = run_export(
        "calibrate", str(bundle_copy), "--data", str(fsdd), "--layout", "fsdd",
        "--negatives", str(negatives), "--clips", "10", "--quiet", "--max-false-reject-rate", "0.4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    chosen_on = load_bundle(bundle_copy).manifest.stream.chosen_on
    assert chosen_on["max_false_reject_rate"] == 0.4
    assert "--max-false-reject-rate 0.4" in chosen_on["command"]
    assert "Set by `python -m export calibrate " in (bundle_copy / "card.md").read_text()
    assert chosen_on["chosen"]["false_reject_rate"] <= 0.4 or not chosen_on["target_met"]


def test_calibrate_bad_input_is_clear(tmp_path, bundle_copy):
    fsdd = shared_dataset("fsdd")
    classifier = next(
        m for m in map(load_bundle, shipped_models().values()) if m.task != "detection"
    )
    with pytest.raises(ConfigError, match="classification bundle"):
        calibrate(classifier.root, fsdd, "fsdd", [tmp_path])
    with pytest.raises(ConfigError, match="cannot be negative"):
        calibrate(bundle_copy, fsdd, "fsdd", [tmp_path], max_fa_per_hour=-1)
    with pytest.raises(ConfigError, match="share of the words"):
        calibrate(bundle_copy, fsdd, "fsdd", [tmp_path], max_false_reject_rate=30)
    with pytest.raises(ConfigError, match="no audio files"):
        calibrate(bundle_copy, fsdd, "fsdd", [tmp_path])
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["training"]["negatives"] = None
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="trained without --negatives"):
        calibrate(bundle_copy, fsdd, "fsdd", None)


def test_robustness_report_has_one_cell_per_room_and_counts_false_alarms(tmp_path, bundle_copy):
    fsdd = shared_dataset("fsdd")
    negatives = negatives_folder(tmp_path / "neg", files=2)
    report = robustness(
        bundle_copy, fsdd, "fsdd", [negatives], rt60s=(0.0, 0.5), snrs=(None, 5.0),
        clips_per_room=10,
    )  # fmt: skip
    json.dumps(report)
    assert [(c["rt60"], c["snr_db"]) for c in report["cells"]] == [
        (0.0, None), (0.0, 5.0), (0.5, None), (0.5, 5.0),
    ]  # fmt: skip
    assert all(0 <= c["f1"] <= 1 and c["events"] == 10 for c in report["cells"])
    assert set(report["negatives"]) == {"files", "hours", "false_alarms", "false_alarms_per_hour"}
    assert report["negatives"]["files"] == 2 and report["clips_per_room"] == 10
    result = run_export(
        "robustness", str(bundle_copy), "--data", str(fsdd), "--layout", "fsdd",
        "--negatives", str(negatives), "--clips", "5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (bundle_copy / "robustness.png").exists()
    written = json.loads((bundle_copy / "robustness.json").read_text())
    card = (bundle_copy / "card.md").read_text()
    assert len(written["cells"]) == 15 and "## Robustness" in card
    assert "Measured by `python -m export robustness " in card  # to be run again


def test_a_folder_run_with_declared_groups_calibrates(tmp_path):
    """A folder layout's groups come from --groups: the held-out clips must be found
    through the pattern the run was trained with (before, calibrate ended with
    'no clips of the held-out groups', since each file was its own group)."""
    from .test_train import make_folder_dataset
    from .trainrun import train_tiny

    data = make_folder_dataset(tmp_path / "data", per_class=6)
    for path in sorted(data.rglob("*.wav")):  # hi3.wav -> s1_hi3.wav: three speakers
        path.rename(path.with_name(f"s{int(path.stem[-1]) % 3}_{path.name}"))
    negatives = negatives_folder(tmp_path / "neg", files=4)
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    pattern = "{label}/{group}_*.wav"
    code = train_tiny(
        data, run, tmp_path / "cache", "--groups", pattern, "--holdout-group", "s2",
        "--val-group", "s1", "--negatives", str(negatives), "--epochs", "2", "--no-reverb",
    )  # fmt: skip
    assert code == 0
    result = run_export(
        "quantize", str(run), "--out", str(bundle), "--allow-regression", "--calibration", "16",
        "--cache", str(tmp_path / "cache"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert load_bundle(bundle).manifest.training.groups_option == pattern
    result = run_export(
        "calibrate", str(bundle), "--data", str(data), "--layout", "folder", "--clips", "4",
        "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert load_bundle(bundle).manifest.stream.chosen_on["events"] > 0
