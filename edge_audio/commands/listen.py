"""`edge-audio listen`: the device loop on a microphone, a recording or the demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..deciders import Event, LabelChange
from ..errors import EdgeAudioError
from ..shipped import demo_recording, demo_truth
from .options import MODEL_HELP, runtime_options
from .runner import SubParsers


def _print_decision(decision: Event | LabelChange, as_json: bool) -> None:
    if as_json:
        print(json.dumps(decision.to_dict()), flush=True)
    elif isinstance(decision, Event):
        print(
            f"{decision.time:8.2f} s  event  {decision.label:<14} score {decision.score:.2f}"
            f"  ({decision.start:.2f}-{decision.end:.2f} s)",
            flush=True,
        )
    else:
        print(
            f"{decision.time:8.2f} s  label  {decision.label:<14} score {decision.score:.2f}",
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    from ..hooks import CommandHook
    from ..listen import DEVICE_LOST, Listener
    from ..scoring import check_truth_labels, read_truth, score_events, score_labels

    if args.list_devices:
        return list_input_devices()
    if args.demo:
        args.simulate = demo_recording()
        args.truth = args.truth or demo_truth()
    truth = read_truth(args.truth) if args.truth else None
    overrides = {"threshold": args.threshold, "smoothing": args.smoothing, "stride_s": args.stride}
    listener = Listener(
        args.model,
        device=args.device,
        simulate=args.simulate,
        realtime=args.realtime,
        overrides=overrides,
        backend=args.backend,
        precision=args.precision,
        threads=args.threads,
        vad=args.vad,
    )
    source, bundle = listener.source, listener.bundle
    if truth is not None:
        check_truth_labels(truth, bundle.labels, bundle.name)
    if bundle.task != "detection":
        print(classifier_note(bundle.name), file=sys.stderr, flush=True)
    if not args.json:
        print(
            f"{bundle.name}: {listener.backend.describe()}, {bundle.task}; {source.describe()}",
            flush=True,
        )
    decisions: list[dict[str, Any]] = []
    listener.on(lambda decision: decisions.append(decision.to_dict()))
    listener.on(lambda decision: _print_decision(decision, args.json))
    hook = CommandHook(args.on_event) if args.on_event else None
    if hook is not None:
        listener.on(lambda decision: hook(decision.to_dict()))
    summary = listener.run(args.duration)
    if hook is not None:
        summary["on_event"] = hook.close()
    if truth is not None:
        duration = summary["stream_seconds"]
        if bundle.task == "detection":
            summary["score"] = score_events(decisions, truth, duration)
        else:
            summary["score"] = score_labels(decisions, truth, duration)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        _print_summary(summary, bundle.task, args.truth)
    if summary["ended_by"].startswith(DEVICE_LOST):
        print(f"edge-audio: error: {summary['ended_by']}", file=sys.stderr)
        return 3
    return 130 if summary["ended_by"] == "interrupt" else 0


def classifier_note(name: str) -> str:
    """What a user hears when a model cannot say "nothing here"."""
    return (
        f"note: {name} has no background class, so it labels every moment with one of its "
        "classes, silence and unrelated sounds included. To make a detector that stays quiet "
        "until its sounds occur, train it with recordings that hold none of them: "
        "`edge-audio record --minutes 10 --out room/` in the room, then "
        "`python -m export train ... --negatives room/`"
    )


def _print_summary(summary: dict[str, Any], task: str, truth: Path | None) -> None:
    lat = summary["latency_ms"]
    print(
        f"summary: {summary['windows']} windows, {summary['events']} "
        f"{'events' if task == 'detection' else 'label changes'}, "
        f"latency p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms, "
        f"CPU {summary['cpu_percent']:.2f}% of a core, peak RSS {summary['peak_rss_mb']} MB"
    )
    gate = summary.get("speech_gate")
    if gate:
        print(
            f"speech gate: {gate['events_rejected']} of {gate['events_checked']} events "
            f"vetoed (no speech heard at {gate['threshold']})"
        )
    if "on_event" in summary:
        hook = summary["on_event"]
        print(
            f"on-event: {hook['runs']} runs, {hook['failures']} failed, {hook['dropped']} dropped"
        )
    score = summary.get("score")
    if score and "f1" in score:
        print(
            f"score vs {truth}: precision {score['precision']:.2f}, recall "
            f"{score['recall']:.2f}, F1 {score['f1']:.2f}, false alarms/hour "
            f"{score['false_alarms_per_hour']:.1f}, miss rate {score['miss_rate']:.2f} "
            f"(onset tolerance {score['onset_tolerance_s']} s)"
        )
    elif score:
        print(
            f"score vs {truth}: {100 * score['time_correct']:.1f}% of the time labelled correctly"
        )


def list_input_devices() -> int:
    from ..microphone import input_devices, open_pyaudio

    pa = open_pyaudio()
    try:
        devices = input_devices(pa)
        try:
            default = pa.get_default_input_device_info()["index"]
        except OSError:
            default = None
    finally:
        pa.terminate()
    if not devices:
        raise EdgeAudioError("no audio input device found (is a microphone plugged in?)")
    for d in devices:
        mark = "*" if d["index"] == default else " "
        print(
            f"{mark} {d['index']:3d}  {d['name']}  ({d['maxInputChannels']} ch, "
            f"{int(d['defaultSampleRate'])} Hz)"
        )
    return 0


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="continuous inference: events (or a label track) from a stream",
        description="Stream audio through the device path: resampling, streaming log-mel, a "
        "window every stride, the model, smoothing, and event detection (models with a "
        "background class) or a label track (classification models). --simulate replays a "
        "file in microphone-sized chunks through exactly that path.",
        epilog="examples:\n  edge-audio listen --demo\n"
        "  edge-audio listen --vad            # fewer false alarms on sounds and music\n"
        "  edge-audio listen --model music-speech --simulate talk.wav\n"
        "  edge-audio listen --simulate rec.wav --truth rec.truth.csv --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--device", help="input device: index or part of its name (default: default)")
    p.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    p.add_argument("--duration", type=float, help="stop after this many seconds of audio")
    replay = p.add_mutually_exclusive_group()
    replay.add_argument(
        "--simulate",
        type=Path,
        metavar="FILE",
        help="replay this recording instead of the microphone",
    )
    replay.add_argument(
        "--demo",
        action="store_true",
        help="replay the demo recording that ships with edge-audio, scored against its truth",
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_true", help="pace the replay to the clock")
    pace.add_argument("--fast", action="store_true", help="replay as fast as possible (default)")
    p.add_argument("--truth", type=Path, help="CSV start,end,label: score the decisions")
    p.add_argument(
        "--threshold",
        type=float,
        help="detection threshold on the smoothed score (default: the bundle's, calibrated "
        "on held-out streams; 0.5 when it has none)",
    )
    p.add_argument("--stride", type=float, help="seconds between windows (default: manifest)")
    p.add_argument("--smoothing", type=int, help="windows averaged (default: manifest, or 3)")
    p.add_argument(
        "--vad",
        type=float,
        nargs="?",
        const=0.5,
        metavar="THRESHOLD",
        help="speech gate for keyword detectors: an event stands only if Silero VAD hears "
        "speech in its window (probability >= THRESHOLD, default 0.5). It runs only on "
        "events, so it costs little; it needs onnxruntime and `pip install --no-deps "
        "silero-vad`",
    )
    runtime_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--on-event",
        metavar="CMD",
        help="run CMD for each event (or label change), its JSON on stdin; it runs "
        "outside the audio loop and its failures are counted",
    )
    p.set_defaults(run=run)
    return p
