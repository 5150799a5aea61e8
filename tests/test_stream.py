"""The streaming path: resampler, deciders, engine, scoring and `listen --simulate`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import upfirdn

from edge_audio.audio import load_audio, write_wav
from edge_audio.backends import load_backend
from edge_audio.bundle import load_bundle
from edge_audio.cli import main
from edge_audio.deciders import Event, EventDetector, LabelTracker, Smoother
from edge_audio.errors import ConfigError, MissingDependencyError
from edge_audio.resample import StreamingResampler
from edge_audio.scoring import (
    Segment,
    TruthError,
    check_truth_labels,
    read_truth,
    score_events,
    score_labels,
)
from edge_audio.shipped import default_model, demo_recording, demo_truth, shipped_models
from edge_audio.source import DeviceLost
from edge_audio.stream import StreamConfig, StreamEngine
from edge_audio.vad import SpeechGate, gate_rate

from .conftest import REPO, shared_dataset

DEMO = demo_recording()
TRUTH = demo_truth()
FSDD = default_model()


@settings(max_examples=25, deadline=None)
@given(
    rates=st.sampled_from(
        [
            (16000, 8000),
            (44100, 8000),
            (48000, 16000),
            (8000, 16000),
            (22050, 16000),
            (16000, 16000),
        ]
    ),
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=8),
)
def test_streaming_resampler_equals_one_pass_for_any_chunking(rates, sizes):
    x = np.random.default_rng(0).standard_normal(7000)
    resampler = StreamingResampler(*rates)
    parts, i, k = [], 0, 0
    while i < x.size:
        parts.append(resampler.process(x[i : i + sizes[k % len(sizes)]]))
        i, k = i + sizes[k % len(sizes)], k + 1
    out = np.concatenate(parts)
    if resampler.identity:
        np.testing.assert_allclose(out, x, atol=1e-6)
    else:
        full = upfirdn(resampler.taps, x, resampler.up, resampler.down)[: out.size]
        np.testing.assert_allclose(out, full, atol=1e-5)
        assert out.size == -(-x.size * resampler.up // resampler.down)  # every output due


def test_resampler_rejects_bad_rates():
    with pytest.raises(ValueError, match="positive"):
        StreamingResampler(0, 8000)


def test_smoother_is_a_moving_average():
    s = Smoother(2, 2)
    np.testing.assert_allclose(s.push(np.array([1.0, 0.0])), [1.0, 0.0])
    np.testing.assert_allclose(s.push(np.array([0.0, 1.0])), [0.5, 0.5])
    np.testing.assert_allclose(s.push(np.array([0.0, 1.0])), [0.0, 1.0])


def test_detector_needs_a_run_then_suppresses():
    config = StreamConfig(threshold=0.5, min_count=2, suppression_s=1.0)
    detector = EventDetector(["a", "b", "_bg_"], "_bg_", config)
    yes = np.array([0.8, 0.1, 0.1])
    assert detector.decide(yes, 0.0, 1.0) is None  # one window is not enough
    event = detector.decide(yes, 0.25, 1.25)
    assert event is not None and event.label == "a" and event.start == 0.0 and event.end == 1.25
    assert detector.decide(yes, 0.5, 1.5) is None and detector.decide(yes, 0.75, 1.75) is None
    # the background never fires, however sure
    assert detector.decide(np.array([0.0, 0.0, 1.0]), 3.0, 4.0) is None
    assert detector.decide(np.array([0.0, 0.0, 1.0]), 3.25, 4.25) is None


def test_label_tracker_reports_changes_only():
    tracker = LabelTracker(["music", "speech"])
    assert tracker.decide(np.array([0.9, 0.1]), 0, 1).label == "music"
    assert tracker.decide(np.array([0.8, 0.2]), 0.25, 1.25) is None
    assert tracker.decide(np.array([0.2, 0.8]), 0.5, 1.5).label == "speech"


def test_bad_stream_config_is_a_clear_error():
    with pytest.raises(ConfigError, match="threshold"):
        StreamConfig(threshold=1.5)
    with pytest.raises(ConfigError, match="stride"):
        StreamConfig(stride_s=0)


class WindowRecorder:
    """A backend stand-in that keeps every window the engine scores."""

    runtime = "recorder"

    def __init__(self, classes: int) -> None:
        self.windows: list[np.ndarray] = []
        self.classes = classes

    def probabilities(self, window: np.ndarray) -> np.ndarray:
        self.windows.append(window.copy())
        return np.full((1, self.classes), 1.0 / self.classes, dtype=np.float32)


@settings(max_examples=20, deadline=None)
@given(
    sizes=st.lists(st.integers(37, 12000), min_size=1, max_size=6),
    stride_s=st.sampled_from([0.01, 0.25, 0.33, 1.5]),
)
def test_engine_scores_the_batch_windows_whatever_the_chunking(sizes, stride_s):
    """Every stride the engine scores exactly the last window of the batch log-mel,
    however the audio is chunked (chunks longer than the ring included)."""
    from edge_audio.frontend import LogMel

    bundle = load_bundle(FSDD)
    recorder = WindowRecorder(len(bundle.labels))
    engine = StreamEngine(bundle, recorder, 8000, StreamConfig(stride_s=stride_s))
    audio = np.random.default_rng(len(sizes)).normal(0, 0.1, 24000).astype(np.float32)
    fed = 0
    while fed < audio.size:
        for size in sizes:
            engine.feed(audio[fed : fed + size])
            fed += size
    features = LogMel(bundle.frontend)(audio)
    frames, stride = engine.ring.shape[0], engine.stride_frames
    ends = range(frames, len(features) + 1, stride)
    assert len(recorder.windows) == len(ends) == engine.windows
    for end, window in zip(ends, recorder.windows, strict=True):
        np.testing.assert_allclose(window, features[end - frames : end], atol=1e-3)


def held_state(obj: object, seen: set[int] | None = None) -> dict[str, int]:
    """Every buffer the engine holds, by path: an array's bytes, a container's
    length, walked through the engine's own objects (resampler, frontend,
    decider, latency log). Anything that grows with the stream shows here."""
    seen = set() if seen is None else seen
    sizes: dict[str, int] = {}
    if id(obj) in seen:
        return sizes
    seen.add(id(obj))
    for name, value in vars(obj).items():
        if isinstance(value, np.ndarray):
            sizes[name] = value.nbytes
        elif isinstance(value, (list, dict, set, tuple, bytes, bytearray)):
            sizes[name] = len(value)
        elif type(value).__module__.startswith("edge_audio") and hasattr(value, "__dict__"):
            if name in ("bundle", "backend"):  # loaded once, not stream state
                continue
            for inner, size in held_state(value, seen).items():
                sizes[f"{name}.{inner}"] = size
    return sizes


@pytest.mark.parametrize("gated", [False, True], ids=["plain", "speech-gate"])
def test_engine_memory_stays_flat_over_ten_minutes_of_audio(gated):
    bundle = load_bundle(FSDD)
    gate = FixedGate(0.9) if gated else None  # its audio buffer is written every chunk
    engine = StreamEngine(bundle, load_backend(bundle), 44100, gate=gate)  # resampling too
    rng = np.random.default_rng(0)
    chunk = 1024

    def feed(seconds: float) -> None:
        for _ in range(round(seconds * 44100 / chunk)):
            engine.feed(rng.normal(0, 0.01, chunk).astype(np.float32))

    feed(5)
    early = held_state(engine)
    assert {"ring", "resampler._buffer", "decider.smoother.ring", "latency.values"} <= set(early)
    assert gated == ("gate_audio" in early)
    windows_early = engine.windows
    feed(600)
    late = held_state(engine)
    assert set(late) == set(early)
    grown = {k: (early[k], late[k]) for k in early if late[k] > early[k] + 8 * chunk}
    assert not grown, f"buffers that grew over 10 minutes of audio: {grown}"
    assert engine.windows - windows_early == pytest.approx(600 / 0.25, abs=2)


def test_the_state_walk_sees_a_buffer_that_grows():
    """The check above can fail: a list appended to per window is caught."""
    bundle = load_bundle(FSDD)
    engine = StreamEngine(bundle, load_backend(bundle), 16000)
    engine.decider.history = []
    before = held_state(engine)
    engine.decider.history.extend(range(100))
    assert held_state(engine)["decider.history"] == before["decider.history"] + 100


def test_score_events():
    truth = [Segment(1.0, 1.4, "3"), Segment(3.0, 3.5, "1")]
    events = [{"label": "3", "start": 0.5, "end": 1.8}, {"label": "7", "start": 5, "end": 6}]
    score = score_events(events, truth, duration_s=3600)
    assert score["matched"] == 1 and score["precision"] == 0.5 and score["recall"] == 0.5
    assert score["false_alarms_per_hour"] == 1.0 and score["miss_rate"] == 0.5


def test_score_labels():
    truth = [Segment(0.0, 1.0, "music"), Segment(1.0, 2.0, "speech")]
    changes = [{"label": "music", "time": 0.0}, {"label": "speech", "time": 1.5}]
    assert score_labels(changes, truth, 2.0)["time_correct"] == pytest.approx(0.75, abs=0.01)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "columns start,end,label"),
        ("start,end,label\n", "no rows"),
        ("start,end,label\n1.0,x,3\n", "row 2: start and end must be seconds"),
        ("start,end,label\n2.0,1.0,3\n", "row 2: need 0 <= start <= end"),
        ("start,end,label\n1.0,2.0,\n", "and a label"),
    ],
)
def test_bad_truth_files_are_clear_errors(tmp_path, text, fragment):
    path = tmp_path / "truth.csv"
    path.write_text(text)
    with pytest.raises(TruthError, match=fragment):
        read_truth(path)


def test_listen_simulate_json_lines(capsys):
    assert main(["listen", "--simulate", str(DEMO), "--truth", str(TRUTH), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events, summary = lines[:-1], lines[-1]
    assert events and all(e["type"] == "event" for e in events)
    for e in events:
        assert {"label", "score", "start", "end", "time", "wall"} <= set(e)
        assert e["start"] < e["end"] == e["time"] and e["label"] != "_background_"
    assert summary["type"] == "summary"
    assert {"windows", "events", "overflows", "latency_ms", "cpu_percent", "peak_rss_mb"} <= set(
        summary
    )
    assert summary["events"] == len(events) and summary["windows"] > 100
    assert summary["score"]["precision"] >= 0.9  # what it says, it says right


def test_demo_detections_match_the_truth_with_the_bundles_own_threshold(capsys):
    """The README's main command: F1 >= 0.9 on the demo, with the threshold the
    bundle carries (chosen on held-out FSDD streams by export threshold, never on
    the demo) and no option tuned for it."""
    bundle = load_bundle(default_model())
    assert bundle.manifest.stream.chosen_on["groups"] == ["theo"]
    assert main(["listen", "--simulate", str(DEMO), "--truth", str(TRUTH), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["score"]["f1"] >= 0.9, summary["score"]


def test_listen_says_when_a_model_cannot_say_nothing_is_there(capsys):
    """A classifier labels silence too: listen says so, and how to make a detector;
    a detector gets no such note. The note goes to stderr, so --json stays clean."""
    classifier = shipped_models()["music-speech"]
    assert main(["listen", "--simulate", str(DEMO), "--model", str(classifier), "--json",
                 "--duration", "3"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "no background class" in captured.err and "--negatives" in captured.err
    [json.loads(line) for line in captured.out.splitlines()]  # only JSON on stdout
    assert main(["listen", "--simulate", str(DEMO), "--json", "--duration", "3"]) == 0
    assert "no background class" not in capsys.readouterr().err


def test_listen_human_output_and_summary(capsys):
    assert main(["listen", "--simulate", str(DEMO), "--truth", str(TRUTH)]) == 0
    out = capsys.readouterr().out
    assert " event " in out and "summary:" in out and "F1" in out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["listen", "--simulate", "nope.wav"], "cannot open"),
        (["listen", "--simulate", str(DEMO), "--model", "/nonexistent"], "no such folder"),
        (["listen", "--simulate", str(DEMO), "--truth", "/nonexistent.csv"], "cannot read truth"),
        (["listen", "--simulate", str(DEMO), "--threshold", "2"], "threshold must be in"),
    ],
)
def test_listen_bad_input_is_one_line(args, fragment, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_listen_without_a_usable_microphone_is_one_line(capsys):
    assert main(["listen", "--device", "zzz-no-such-device", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("input device" in err or "pyaudio" in err), err


def test_listen_simulate_never_imports_heavy_packages():
    blocker = REPO / "tests" / "no_heavy_imports.py"
    result = subprocess.run(
        [
            sys.executable,
            str(blocker),
            "edge_audio.cli",
            "listen",
            "--simulate",
            str(DEMO),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.shared
def test_music_speech_label_track_follows_a_real_stream(tmp_path):
    data = shared_dataset("music_speech")
    bundle = load_bundle(shipped_models()["music-speech"])
    # Recordings it never heard when it has them; a bundle fitted on every recording
    # (its estimate is its cross-validation) is checked on two of its own: the test is
    # of the label track through listen, not of accuracy.
    training = bundle.manifest.training
    recordings = list(training.test_groups) or list(training.groups)
    music = next(g for g in recordings if g.startswith("music/"))
    speech = next(g for g in recordings if g.startswith("speech/"))
    parts = [load_audio(data / f"{g}.wav", 16000)[0] for g in (music, speech)]
    stream = tmp_path / "stream.wav"
    write_wav(stream, np.concatenate(parts), 16000)
    truth = tmp_path / "truth.csv"
    t = parts[0].size / 16000
    truth.write_text(f"start,end,label\n0,{t},music\n{t},{t + parts[1].size / 16000},speech\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_audio",
            "listen",
            "--model",
            str(bundle.root),
            "--simulate",
            str(stream),
            "--truth",
            str(truth),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["type"] == "label" and lines[0]["label"] == "music"
    assert lines[-1]["score"]["time_correct"] >= 0.85


def test_on_event_runs_a_command_per_event_with_its_json(tmp_path, capsys):
    log = tmp_path / "events.jsonl"
    command = f"cat >> {log}; echo >> {log}"
    assert main(["listen", "--simulate", str(DEMO), "--json", "--on-event", command]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    received = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert summary["on_event"] == {"runs": summary["events"], "failures": 0, "dropped": 0}
    assert len(received) == summary["events"] and received[0]["type"] == "event"


def test_on_event_failures_are_counted_not_fatal(capsys):
    assert main(["listen", "--simulate", str(DEMO), "--json", "--on-event", "exit 3"]) == 0
    hook = json.loads(capsys.readouterr().out.splitlines()[-1])["on_event"]
    assert hook["runs"] > 0 and hook["failures"] == hook["runs"]


def test_python_api_iterates_and_calls_back():
    from edge_audio import Listener

    seen = []
    with Listener(simulate=DEMO) as listener:
        listener.on(seen.append)
        decisions = list(listener)
    assert decisions and decisions == seen
    assert all(d.type == "event" and d.label != "_background_" for d in decisions)
    summary = Listener(simulate=DEMO).run()
    assert summary["events"] == len(decisions) and summary["type"] == "summary"


class LosingSource:
    """The demo for `seconds`, then the device is gone (a Source, as a mic would be)."""

    def __init__(self, source, seconds: float) -> None:
        self.source, self.rate = source, source.rate
        self.budget = round(seconds * source.rate)
        self.overflows = self.dropped_frames = 0

    def chunks(self):
        for chunk in self.source.chunks():
            if self.budget <= 0:
                raise DeviceLost("input device 'test' delivered no audio for 3 s")
            self.budget -= len(chunk)
            yield chunk

    def describe(self) -> str:
        return "a device that goes away"

    def close(self) -> None:
        self.source.close()


def test_a_lost_device_ends_run_with_a_summary_and_iteration_with_device_lost():
    from edge_audio import DeviceLost as PublicDeviceLost
    from edge_audio import Listener

    listener = Listener(simulate=DEMO)
    listener.source = LosingSource(listener.source, 12.0)
    summary = listener.run()
    assert summary["ended_by"].startswith("device lost: input device 'test'")
    assert 12.0 <= summary["stream_seconds"] < 12.2 and summary["events"] >= 3

    listener = Listener(simulate=DEMO)
    listener.source = LosingSource(listener.source, 12.0)
    seen = []
    with pytest.raises(PublicDeviceLost, match="delivered no audio"):
        for decision in listener:
            seen.append(decision)
    assert len(seen) == summary["events"]  # the same loop, the same decisions
    assert listener.summary is not None and listener.summary["ended_by"].startswith("device lost")


def test_file_source_streams_wav_in_microphone_sized_chunks(tmp_path):
    from edge_audio.audio import read_wav
    from edge_audio.file_source import FileSource

    x = np.random.default_rng(0).uniform(-0.5, 0.5, (5000, 2))
    path = tmp_path / "stereo24.wav"
    write_wav(path, x, 22050, bits=24)
    source = FileSource(path, chunk_frames=1024)
    chunks = list(source.chunks())
    assert source.samples is None  # read from disk chunk by chunk, never whole
    assert [c.size for c in chunks] == [1024] * 4 + [904]
    np.testing.assert_array_equal(np.concatenate(chunks), read_wav(path)[0])
    assert source.rate == 22050 and source.duration == pytest.approx(5000 / 22050)


def test_file_source_rejects_empty_and_missing_files(tmp_path):
    from edge_audio.errors import AudioFileError
    from edge_audio.file_source import FileSource

    empty = tmp_path / "empty.wav"
    write_wav(empty, np.zeros(0), 16000)
    with pytest.raises(AudioFileError, match="zero-length"):
        FileSource(empty)
    with pytest.raises(AudioFileError, match="cannot open"):
        FileSource(tmp_path / "missing.wav")


def test_truth_labels_the_model_does_not_know_are_named(tmp_path, capsys):
    truth = tmp_path / "words.csv"
    truth.write_text("start,end,label\n1.0,1.4,three\n3.0,3.5,1\n")
    with pytest.raises(TruthError, match=r"\['three'\] are not labels of m \(it knows: 1, 3\)"):
        check_truth_labels(read_truth(truth), ["1", "3"], "m")
    check_truth_labels(read_truth(TRUTH), [str(d) for d in range(10)], "m")  # quiet
    assert main(["listen", "--simulate", str(DEMO), "--truth", str(truth)]) == 2
    err = capsys.readouterr().err
    assert "['three'] are not labels of fsdd-digits" in err and "rename them" in err


class FixedGate(SpeechGate):
    """A speech gate that hears what it is told to, and keeps what it was given."""

    def __init__(self, speech: float) -> None:
        self.threshold, self.checked, self.rejected = 0.5, 0, 0
        self.speech = speech
        self.heard: list[tuple[np.ndarray, int]] = []

    def speech_probability(self, audio: np.ndarray, rate: int) -> float:
        self.heard.append((audio.copy(), rate))
        return self.speech


def demo_events(
    gate: SpeechGate | None, source_rate: int = 16000, chunk_s: float = 0.1
) -> list[Event]:
    bundle = load_bundle(FSDD)
    audio = load_audio(demo_recording(), source_rate)[0]
    engine = StreamEngine(bundle, load_backend(bundle), source_rate, gate=gate)
    n = round(chunk_s * source_rate)
    decisions = [d for i in range(0, audio.size, n) for d in engine.feed(audio[i : i + n])]
    decisions += engine.flush()
    return [d for d in decisions if isinstance(d, Event)]


def test_the_speech_gate_vetoes_only_the_events_it_hears_no_speech_in():
    plain = demo_events(None)
    assert len(plain) >= 10
    passing, silent = FixedGate(0.9), FixedGate(0.1)
    assert [e.to_dict() | {"wall": 0} for e in demo_events(passing)] == [
        e.to_dict() | {"wall": 0} for e in plain
    ]
    assert passing.summary()["events_checked"] == len(plain) and passing.rejected == 0
    assert demo_events(silent) == [] and silent.rejected == silent.checked == len(plain)


@pytest.mark.parametrize("chunk_s", [0.1, 4.0], ids=["microphone-chunks", "long-chunks"])
def test_the_speech_gate_hears_the_window_that_fired_at_the_model_rate(chunk_s):
    """What the gate hears for each event is that event's last window: the second of
    audio that ends where the window ends, resampled to 8 kHz as the model hears it,
    however long the chunks are."""
    gate = FixedGate(0.9)
    events = demo_events(gate, source_rate=16000, chunk_s=chunk_s)
    assert len(events) >= 10
    audio = load_audio(demo_recording(), 8000)[0]
    for event, (heard, rate) in zip(events, gate.heard, strict=True):
        assert rate == 8000 and heard.size == 8000
        end = round(event.time * 8000)
        expected = audio[end - 8000 : end]
        assert np.corrcoef(heard, expected)[0, 1] > 0.99


def test_a_speech_gate_on_a_classifier_is_refused():
    bundle = load_bundle(REPO / "models" / "music-speech")
    with pytest.raises(ConfigError, match="classification model"):
        StreamEngine(bundle, WindowRecorder(len(bundle.labels)), 16000, gate=FixedGate(0.9))


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.2, 1.5])
def test_a_speech_gate_threshold_outside_0_1_is_refused(threshold):
    with pytest.raises(ConfigError, match=r"threshold must be in \(0, 1\)"):
        SpeechGate(threshold)


def test_the_speech_gate_hears_8_or_16_khz():
    assert [gate_rate(r) for r in (8000, 16000, 32000, 44100)] == [8000, 16000, 16000, 16000]


def test_the_speech_gate_without_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, as on a litert-only board
    with pytest.raises(MissingDependencyError, match=r"edge-audio\[onnx\]"):
        SpeechGate()
