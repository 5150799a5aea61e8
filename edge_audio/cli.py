"""The `edge-audio` command line: a thin layer over the library.

Every EdgeAudioError becomes one line on stderr and exit code 2; a traceback
means a bug in edge-audio, never bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .audio import load_audio, resample
from .bundle import load_bundle
from .datasets import GROUPS_HELP, LAYOUTS, scan
from .deciders import Event, LabelChange
from .errors import ConfigError, EdgeAudioError
from .frontend import FrontendConfig, LogMel
from .pack import ARTEFACTS
from .shipped import default_model, demo_recording, demo_truth, resolve_model, shipped_models

EXIT_BAD_INPUT = 2
_SHADES = " .:-=+*#%@"


def _frontend_config(args: argparse.Namespace) -> FrontendConfig:
    if args.config:
        try:
            text = Path(args.config).read_text()
        except OSError as exc:
            raise ConfigError(
                f"{args.config}: cannot read frontend config: {exc.strerror}"
            ) from None
        return FrontendConfig.from_json(text)
    return FrontendConfig(sample_rate=args.sample_rate, n_mels=args.n_mels)


def ascii_spectrogram(logmel: np.ndarray, width: int = 72, height: int = 12) -> str:
    """A log-mel [frames, mels] drawn in characters: time runs right, pitch up."""
    frames, mels = logmel.shape
    if frames == 0:
        return "(no frames)"
    cols = np.array_split(np.arange(frames), min(width, frames))
    rows = np.array_split(np.arange(mels), min(height, mels))
    # Max over time keeps short sounds visible; mean over bands keeps rows smooth.
    grid = np.array([[logmel[np.ix_(c, r)].mean(axis=1).max() for c in cols] for r in rows])
    top = grid.max()
    levels = np.clip((grid - (top - 60.0)) / 60.0, 0.0, 1.0)  # 60 dB of range
    chars = np.array(list(_SHADES))[np.round(levels * (len(_SHADES) - 1)).astype(int)]
    return "\n".join("|" + "".join(row) + "|" for row in chars[::-1])


def cmd_features(args: argparse.Namespace) -> int:
    config = _frontend_config(args)
    # Read at the file's own rate first: that is the rate to report, and the
    # frontend's is what it is resampled to.
    native, file_rate = load_audio(args.file, allow_silent=True)
    rate = config.sample_rate
    samples = resample(native, file_rate, rate) if file_rate != rate else native
    logmel = LogMel(config)(samples)
    if args.save:
        np.save(args.save, logmel)
    stats = {
        "file": str(args.file),
        "duration_s": round(native.size / file_rate, 3),
        "sample_rate": file_rate,
        "frontend_rate": rate,
        "frames": int(logmel.shape[0]),
        "n_mels": int(logmel.shape[1]),
        "min_db": round(float(logmel.min()), 2) if logmel.size else None,
        "max_db": round(float(logmel.max()), 2) if logmel.size else None,
        "mean_db": round(float(logmel.mean()), 2) if logmel.size else None,
        "frontend": config.to_dict(),
    }
    if args.json:
        print(json.dumps(stats))
        return 0
    resampled = f", resampled to {rate} Hz" if file_rate != rate else ""
    print(
        f"{args.file}: {stats['duration_s']} s at {file_rate} Hz{resampled} -> "
        f"{stats['frames']} frames x {stats['n_mels']} mel bands "
        f"(hop {1000 * config.hop_length / rate:g} ms)"
    )
    if logmel.size:
        print(
            f"log-mel range {stats['min_db']} .. {stats['max_db']} dB, mean {stats['mean_db']} dB"
        )
        print(ascii_spectrogram(logmel))
    if args.save:
        print(f"saved {args.save}")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    index = scan(args.data, args.layout, folds=args.folds, groups=args.groups)
    if args.json:
        print(
            json.dumps(
                {
                    "layout": index.layout,
                    "root": str(index.root),
                    "clips": len(index.records),
                    "labels": {
                        label: sum(r.label == label for r in index.records)
                        for label in index.labels
                    },
                    "groups": index.groups,
                    "groups_declared": index.groups_declared,
                    "background": [str(p) for p in index.background],
                    "skipped": [{"file": str(s.path), "reason": s.reason} for s in index.skipped],
                }
            )
        )
    else:
        print(index.summary())
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .backends import load_backend
    from .evaluate import evaluate
    from .metrics import format_confusion

    bundle = load_bundle(resolve_model(args.bundle))
    backend = load_backend(bundle, args.backend, args.precision, args.threads)
    index = scan(args.data, args.layout, folds=args.folds, groups=args.groups)

    def progress(done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\rscoring {done + 1}/{total}", end="", file=sys.stderr, flush=True)

    result = evaluate(bundle, backend, index, progress)
    report = result.report
    if not args.json and sys.stderr.isatty():
        print(file=sys.stderr)
    skipped = [{"file": str(s.path), "reason": s.reason} for s in result.skipped]
    warning = result.overlap_warning()
    if args.json:
        print(
            json.dumps(
                {
                    "model": bundle.name,
                    "accuracy": report["accuracy"],
                    "macro_f1": report["macro_f1"],
                    "n": report["n"],
                    "skipped": skipped,
                    "backend": backend.format,
                    "runtime": backend.runtime,
                    "precision": backend.precision,
                    "per_class": report["per_class"],
                    "labels": report["labels"],
                    "confusion": report["confusion"],
                    "seconds_of_audio": round(result.seconds_of_audio, 2),
                    "seen_in_training": result.seen_in_training,
                }
            )
        )
        if warning:
            print(warning, file=sys.stderr)
        return 0
    print(f"{bundle.name} on {index.root} ({args.layout}): {backend.describe()}")
    print(
        f"accuracy {100 * report['accuracy']:.2f}%  macro-F1 {100 * report['macro_f1']:.2f}%"
        f"  ({report['n']} clips, {len(skipped)} skipped)"
    )
    width = max(len(label) for label in report["labels"])
    print(f"{'class':>{width}}  precision  recall     f1  support")
    for label, row in report["per_class"].items():
        if row["support"] or row["precision"]:
            print(
                f"{label:>{width}}  {100 * row['precision']:8.1f}%  {100 * row['recall']:5.1f}%"
                f"  {100 * row['f1']:5.1f}%  {row['support']:7d}"
            )
    present = [
        i
        for i, label in enumerate(report["labels"])
        if report["per_class"][label]["support"] or any(r[i] for r in report["confusion"])
    ]
    matrix = np.asarray(report["confusion"])[np.ix_(present, present)]
    print("confusion (rows: truth, columns: predicted)")
    print(format_confusion(matrix, [report["labels"][i] for i in present]))
    for s in skipped:
        print(f"skipped {s['file']}: {s['reason']}")
    if warning:  # last, where it cannot be missed
        print(warning)
    return 0


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


def cmd_listen(args: argparse.Namespace) -> int:
    from .hooks import CommandHook
    from .listen import DEVICE_LOST, Listener
    from .scoring import check_truth_labels, read_truth, score_events, score_labels

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
    )
    source, bundle = listener.source, listener.bundle
    if truth is not None:
        check_truth_labels(truth, bundle.labels, bundle.name)
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


def _print_summary(summary: dict[str, Any], task: str, truth: Path | None) -> None:
    lat = summary["latency_ms"]
    print(
        f"summary: {summary['windows']} windows, {summary['events']} "
        f"{'events' if task == 'detection' else 'label changes'}, "
        f"latency p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms, "
        f"CPU {summary['cpu_percent']:.2f}% of a core, peak RSS {summary['peak_rss_mb']} MB"
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
    from .microphone import input_devices, open_pyaudio

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


def cmd_export(args: argparse.Namespace) -> int:
    return forward_to_export(args.rest)


def forward_to_export(rest: list[str]) -> int:
    """Forward to the desktop toolchain (`python -m export`), imported only here."""
    try:
        from export.cli import main as export_main
    except ImportError as exc:
        raise EdgeAudioError(
            f"the export toolchain is not installed ({exc.name or exc}): "
            "pip install 'edge-audio[train]'"
        ) from None
    return export_main(rest, prog="edge-audio export")


def shipped_bundles() -> list[Path]:
    return list(shipped_models().values())


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, markdown, run_bench, write_reports

    bundles = [resolve_model(args.model)] if args.model else shipped_bundles()
    args.audio = args.audio or demo_recording()
    if not bundles:
        raise ConfigError("no bundle to benchmark: give --model BUNDLE_DIR")
    if not args.audio.is_file():
        raise ConfigError(f"{args.audio}: no such audio file (give --audio WAV)")
    for bundle in bundles:  # every bundle checked before minutes of measuring
        load_bundle(bundle)
    config = BenchConfig(
        args.runs, args.warmup, args.loop_seconds, args.cold_starts, rounds=args.rounds
    )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = run_bench(bundles, args.audio, config, not args.no_baseline, progress)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(markdown(report))
    if args.out or not args.json:
        out = args.out or Path("bench-results")
        written = write_reports(report, out)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


MODEL_HELP = (
    "model bundle: a folder, or the name of a shipped model "
    f"({', '.join(shipped_models())}; default: {default_model().name})"
)


def cmd_pack(args: argparse.Namespace) -> int:
    from .pack import board_install_hint, pack

    packed = pack(resolve_model(args.bundle), args.artefact, args.out, force=args.force)
    size = sum(a.size for a in packed.artefacts.values())
    print(
        f"wrote {args.out}: {packed.name}, {args.artefact} ({size / 1024:.1f} KB), checked.\n"
        f"on the board: {board_install_hint(args.artefact)}; "
        f"edge-audio listen --model {args.out.name}"
    )
    return 0


def _runtime_options(p: argparse.ArgumentParser) -> None:
    """Which artefact runs, and on how many threads: evaluate and listen alike."""
    p.add_argument(
        "--backend", choices=("onnx", "tflite"), help="runtime (default: best installed)"
    )
    p.add_argument("--precision", choices=("fp32", "int8"), help="model precision (default int8)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-audio",
        description="Sound classification on Raspberry Pi-class boards: features, "
        "datasets, and (with the train extra) the desktop toolchain.",
        epilog="Run 'edge-audio COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"edge-audio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "features",
        help="compute the log-mel features of an audio file",
        description="Compute log-mel features with the device frontend and draw them.",
        epilog="example: edge-audio features demo/digits.wav --n-mels 40",
    )
    p.add_argument("file", type=Path, help="audio file (WAV; FLAC/OGG/MP3 with soundfile)")
    p.add_argument("--config", help="frontend config JSON (e.g. from a model bundle)")
    p.add_argument("--sample-rate", type=int, default=16000, help="model rate (default 16000)")
    p.add_argument("--n-mels", type=int, default=40, help="mel bands (default 40)")
    p.add_argument("--save", type=Path, help="also save the [frames, mels] array as .npy")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser(
        "scan",
        help="index a dataset folder and list its classes and bad files",
        description="Index a labelled dataset the way training will see it: classes, "
        "groups (speakers, folds, recordings that must not be split), skipped files.",
        epilog="example: edge-audio scan --data ../shared/data/fsdd --layout fsdd",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--layout", choices=LAYOUTS, required=True, help="how the folder is organised")
    p.add_argument("--folds", type=int, nargs="+", help="esc50 only: folds to include")
    p.add_argument("--groups", metavar="PATTERN_OR_CSV", help=GROUPS_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser(
        "evaluate",
        help="score a model bundle on a labelled dataset (the device path)",
        description="Run the device path (frontend + backend) over a dataset and print accuracy, "
        "macro-F1, per-class figures and the confusion matrix. By default the int8 TFLite model "
        "when an interpreter for it is installed, else the best available.",
        epilog="example: edge-audio evaluate fsdd-digits --data ../shared/data/fsdd "
        "--layout fsdd --json",
    )
    p.add_argument("bundle", nargs="?", help=MODEL_HELP)
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--layout", choices=LAYOUTS, required=True, help="how the folder is organised")
    p.add_argument("--folds", type=int, nargs="+", help="esc50 only: folds to score")
    p.add_argument("--groups", metavar="PATTERN_OR_CSV", help=GROUPS_HELP)
    _runtime_options(p)
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "listen",
        help="continuous inference: events (or a label track) from a stream",
        description="Stream audio through the device path: resampling, streaming log-mel, a "
        "window every stride, the model, smoothing, and event detection (models with a "
        "background class) or a label track (classification models). --simulate replays a "
        "file in microphone-sized chunks through exactly that path.",
        epilog="examples:\n  edge-audio listen --demo\n"
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
    _runtime_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--on-event",
        metavar="CMD",
        help="run CMD for each event (or label change), its JSON on stdin; it runs "
        "outside the audio loop and its failures are counted",
    )
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser(
        "bench",
        help="latency, CPU and memory of each artefact, against librosa + torch",
        description="Benchmark every artefact of a bundle (all shipped bundles by default), "
        "each in a fresh process at one thread: frontend per stride, inference and decision "
        "per window (p50/p90/p99), CPU per second of audio and real-time factor of the whole "
        "loop, cold start, peak RSS, achieved MAC/s against a matmul peak measured in the same "
        "run; beside the usual pipeline (librosa on the whole window at every stride + the "
        "torch model in eager mode; needs the train and dev extras, else skipped with a note). "
        "Writes bench.json, bench.md and bench.png.",
        epilog="example: edge-audio bench --model models/fsdd-digits --out bench-results",
    )
    p.add_argument(
        "--model", help="bundle folder or shipped model name (default: every shipped bundle)"
    )
    p.add_argument(
        "--audio",
        type=Path,
        default=None,
        help="recording streamed through the loop (default: the demo)",
    )
    p.add_argument("--runs", type=int, default=1000, help="timed calls per stage (default 1000)")
    p.add_argument("--warmup", type=int, default=50, help="untimed calls first (default 50)")
    p.add_argument(
        "--loop-seconds", type=float, default=120.0, help="audio through the whole loop (120)"
    )
    p.add_argument(
        "--cold-starts", type=int, default=3, help="fresh processes for the cold start (3)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure every artefact and the baseline this many times, interleaved; "
        "the loop-CPU ratio is the median of the per-round ratios (3)",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip librosa + torch")
    p.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    p.add_argument(
        "--out", type=Path, help="folder for bench.json/.md/.png (default bench-results)"
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "pack",
        help="copy a bundle with only the model file one runtime needs (for a board)",
        description="Write a bundle folder that holds one model file, its manifest (listing "
        "only that file) and the card: what a board needs. The copy is loaded and its sha256 "
        "checked before the command returns.",
        epilog="example: edge-audio pack fsdd-digits --artefact tflite-int8 --out fsdd-pi\n"
        "then on the board: pip install 'edge-audio[litert]'; "
        "edge-audio listen --model fsdd-pi",
    )
    p.add_argument("bundle", help=MODEL_HELP)
    p.add_argument(
        "--artefact",
        choices=ARTEFACTS,
        default="tflite-int8",
        help="the model file to keep (default tflite-int8: the smallest and fastest on a Pi)",
    )
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    p.add_argument("--force", action="store_true", help="replace --out if it is not empty")
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser(
        "export",
        help="desktop toolchain: train, quantize (same as python -m export)",
        description="Forward to the desktop toolchain; needs the train extra.",
        add_help=False,
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["export"]:
            # Everything after `export` is the toolchain's, `--help` included:
            # argparse's REMAINDER would not take an option as its first word.
            return forward_to_export(argv[1:])
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
        return code
    except EdgeAudioError as exc:
        print(f"edge-audio: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
