"""`python -m export quantize RUN_DIR --out BUNDLE_DIR`: four verified artefacts.

    model.fp32.onnx    torch.onnx.export (dynamo exporter), BatchNorm folded
    model.int8.onnx    onnxruntime static QDQ, per-channel int8 weights
    model.fp32.tflite  litert-torch
    model.int8.tflite  litert-torch with PT2E quantisation, int8 input and output

Both int8 models are calibrated on the same training windows, spread over every
class. Verification is part of the command: each artefact runs through the
device runtime (edge_audio.backends) on the held-out split, and the command
fails unless fp32 artefacts agree with torch on >= 99.5% of clips and int8
accuracy is within 1 point of fp32 (--allow-regression overrides, and the
manifest then says so).

This module is the command and the order of the steps; each step is a module:
trained_run.py (the run read back), to_onnx.py, to_tflite.py, verify.py and
card.py (manifest and model card).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge_audio.datasets import describe_groups

from .card import DEFAULT_STREAM_STRIDE, command_of, write_card, write_manifest
from .data import CALIBRATION_WINDOWS
from .to_onnx import export_onnx_fp32, export_onnx_int8
from .to_tflite import converter_output, export_tflite_fp32, export_tflite_int8
from .trained_run import QuantizeError, load_data, load_run
from .verify import torch_predictions, verify_bundle

# Fewer calibration windows than this can mis-set the int8 ranges: said, not refused.
MIN_CALIBRATION = 200
DEFAULT_QAT_EPOCHS = 4


def qat_epochs(
    asked: int | None, forced: bool, training: Mapping[str, Any]
) -> tuple[int, str | None]:
    """Epochs of QAT a run may get, and a note when the run's training chose them.
    A run trained `--int8-aware` learnt the post-training int8 file's own ranges;
    QAT moves them (esc50-tiny's fold 3 lost 2 points to it), so it gets none
    unless --qat or --qat-epochs asks."""
    if asked is not None:
        return asked, None
    if training.get("int8_aware") and not forced:
        return 0, (
            "trained --int8-aware: post-training int8, no QAT (QAT would move the int8 "
            "ranges it learnt; --qat or --qat-epochs N to fine-tune anyway)"
        )
    return DEFAULT_QAT_EPOCHS, None


# --- data: calibration and held-out windows -------------------------------------


# --- the four artefacts --------------------------------------------------------------


# --- verification ----------------------------------------------------------------------


# --- manifest, card, command ------------------------------------------------------------


def quantize_command(args: argparse.Namespace) -> int:
    from .fit import require_torch

    torch = require_torch()
    torch.set_num_threads(args.threads)
    run = load_run(args.run_dir)
    out: Path = args.out
    name = args.name or out.name
    print(
        f"{run.root}: {run.config.model.name}-{run.config.model.size}, "
        f"{len(run.labels)} labels; loading calibration and held-out data"
    )
    # The run's own seed by default: an --int8-aware run trained against int8 stages
    # calibrated on the windows this seed picks, so the file must calibrate on them too.
    seed = run.config.seed if args.seed is None else args.seed
    calibration, held, training = load_data(run, args.data, args.cache, args.calibration, seed)
    epochs, note = qat_epochs(args.qat_epochs, args.qat, run.config.training)
    if note:
        print(f"  {note}")
    if len(calibration) < min(MIN_CALIBRATION, args.calibration):
        print(
            f"  warning: only {len(calibration)} training windows to calibrate int8 on "
            f"(asked for {args.calibration}; {MIN_CALIBRATION}+ is safer): a small dataset; "
            "the verification below says whether int8 stayed faithful"
        )
    elif len(calibration) < args.calibration:
        print(f"  note: {len(calibration)} calibration windows (asked for {args.calibration})")
    if not run.config.test_groups:
        print(
            f"  final fit on every group: int8 is verified against fp32 on {held.truth.size} "
            "of its own clips; the accuracy estimate is the run's cross-validation"
        )
    # Built beside `out` and renamed into place, so a failed run leaves no half bundle;
    # the rename needs them on one filesystem, so the parent is made here.
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        steps = [
            ("model.fp32.onnx", lambda p: export_onnx_fp32(run, p)),
            (
                "model.int8.onnx",
                lambda p: export_onnx_int8(work / "model.fp32.onnx", p, calibration),
            ),
            ("model.fp32.tflite", lambda p: export_tflite_fp32(run, p)),
            ("model.int8.tflite", lambda p: export_tflite_int8(run, p, calibration)),
        ]
        for file, step in steps:
            start = time.time()
            with converter_output(work / "convert.log"):
                step(work / file)
            print(
                f"  wrote {file} ({(work / file).stat().st_size / 1024:.1f} KB, "
                f"{time.time() - start:.1f} s)"
            )
        reference = torch_predictions(run, held)
        io, results, failures = verify_bundle(work, run, name, held, reference, len(calibration))
        int8_method = "post-training quantisation (PT2E, histogram calibration)"
        lost = any(f.startswith("tflite-int8") for f in failures)
        if (lost or args.qat) and epochs > 0:
            why = "tflite-int8 lost more than 1 point" if lost else "--qat"
            print(f"  {why}: quantisation-aware fine-tuning for {epochs} epochs")
            start = time.time()
            with converter_output(work / "convert.log") as console:
                export_tflite_int8(
                    run,
                    work / "model.int8.tflite",
                    calibration,
                    training,
                    epochs,
                    seed,
                    console,
                )
            print(f"  wrote model.int8.tflite again ({time.time() - start:.1f} s)")
            io, results, failures = verify_bundle(
                work, run, name, held, reference, len(calibration)
            )
            int8_method = f"quantisation-aware fine-tuning (PT2E QAT, {epochs} epochs)"
        if failures and not args.allow_regression:
            raise QuantizeError(
                "verification failed: "
                + "; ".join(failures)
                + " (--allow-regression writes the bundle anyway)"
            )
        manifest = write_manifest(
            work,
            run,
            name,
            results,
            io,
            failures,
            len(calibration),
            stream_stride=args.stream_stride,
            int8_method=int8_method,
            # Which files the model trained on: `edge-audio evaluate` warns when it scores them.
            digest=training.digest(),
        )
        write_card(work, manifest, run, command_of(args) or "python -m export quantize")
        if manifest.task == "detection" and not run.config.test_groups:
            print(
                "  note: no held-out group to choose the stream threshold on (a final fit); "
                "the bundle keeps 0.5 until `python -m export threshold` runs on other data"
            )
        elif manifest.task == "detection":  # the stream threshold, on held-out streams
            from .threshold import choose_threshold, write_stream_settings

            dataset = run.config.dataset
            root = args.data or Path(dataset.root)
            stream = choose_threshold(work, root, dataset.layout, seed=seed)
            write_stream_settings(work, stream)
            print(
                f"  stream threshold {stream['threshold']:.2f} (best event F1 on held-out streams)"
            )
        from .report import plot_confusion

        int8 = results["tflite-int8"]
        test_groups = list(run.config.test_groups)
        plot_confusion(
            int8["confusion"],
            run.labels,
            (
                f"{name} int8 TFLite, held out {describe_groups(test_groups)}"
                if test_groups
                else f"{name} int8 TFLite on {held.truth.size} of its training clips (fidelity)"
            )
            + f": {100 * int8['accuracy']:.1f}%",
            work / "confusion.png",
        )
        (work / "convert.log").unlink(missing_ok=True)
        work.chmod(0o755)  # mkdtemp made it private
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    print(f"wrote {out} ({', '.join(sorted(p.name for p in out.iterdir()))})")
    return 0


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="export a training run as a verified int8 ONNX + TFLite bundle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m export quantize runs/fsdd --out models/fsdd\n",
    )
    p.add_argument("run_dir", type=Path, help="a run directory written by `train`")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    p.add_argument("--name", help="model name in the manifest (default: the folder name)")
    p.add_argument("--data", type=Path, help="dataset folder, if it moved since training")
    p.add_argument(
        "--calibration",
        type=int,
        default=CALIBRATION_WINDOWS,
        help=f"calibration windows from the training groups (default {CALIBRATION_WINDOWS}; "
        "fewer are used with a warning when a small dataset has fewer)",
    )
    p.add_argument(
        "--qat-epochs",
        type=int,
        default=None,
        help="if int8 TFLite loses more than 1 point, fine-tune with quantisation-aware "
        f"training for this many epochs (0: never; default {DEFAULT_QAT_EPOCHS}, or 0 for a run "
        "trained --int8-aware, which learnt the post-training int8 ranges)",
    )
    p.add_argument(
        "--qat",
        action="store_true",
        help="fine-tune int8 TFLite with quantisation-aware training even when post-training "
        "int8 verifies: a final fit is verified on its own clips, where int8 losses hide "
        "(ESC-50 on mn04: post-training int8 lost 1.75-2 points on held-out folds)",
    )
    p.add_argument(
        "--allow-regression",
        action="store_true",
        help="write the bundle even when verification misses a threshold",
    )
    p.add_argument(
        "--stream-stride",
        type=float,
        default=DEFAULT_STREAM_STRIDE,
        help="seconds between windows when listening, written to the manifest "
        f"(default {DEFAULT_STREAM_STRIDE}; listen --stride overrides it)",
    )
    p.add_argument("--cache", type=Path, help="feature cache folder")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the calibration windows and QAT (default: the run's own, so an "
        "--int8-aware run calibrates on the windows it trained against)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(run=quantize_command)
