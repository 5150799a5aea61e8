"""Verification: every artefact, run by its device runtime on held-out clips,
against the float torch model; the gates a bundle must pass."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.bundle import load_bundle
from edge_audio.metrics import classification_report
from edge_audio.windows import normalise

from .data import (
    mean_per_clip,
)
from .to_tflite import tflite_io_quantization
from .trained_run import HeldOut, Run

FP32_AGREEMENT = 0.995


INT8_MAX_DROP = 0.01


def clip_predictions(window_probs: np.ndarray, held: HeldOut) -> np.ndarray:
    return mean_per_clip(window_probs, held.clip_of_window, held.truth.size).argmax(1)


def torch_predictions(run: Run, held: HeldOut) -> np.ndarray:
    import torch

    dr, kind = run.model.dynamic_range, run.config.model.normalisation
    with torch.no_grad():
        logits = torch.cat(
            [
                run.model(torch.from_numpy(normalise(held.windows[i : i + 256], dr, kind)[:, None]))
                for i in range(0, len(held.windows), 256)
            ]
        )
    return clip_predictions(torch.softmax(logits, 1).numpy(), held)


def verify(
    bundle_dir: Path, run: Run, held: HeldOut, reference: np.ndarray, labels: list[str]
) -> dict[str, dict[str, Any]]:
    from edge_audio.backends import load_backend

    bundle = load_bundle(bundle_dir)
    results = {}
    for name, artefact in bundle.artefacts.items():
        backend = load_backend(bundle, artefact.format, artefact.precision)
        start = time.perf_counter()
        predicted = clip_predictions(backend.probabilities(held.windows), held)
        elapsed = time.perf_counter() - start
        report = classification_report(held.truth, predicted, labels)
        results[name] = {
            "runtime": backend.runtime,
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "agreement_with_torch": float(np.mean(predicted == reference)),
            "clips": int(held.truth.size),
            "ms_per_window": 1000 * elapsed / len(held.windows),
            "confusion": report["confusion"],
        }
    return results


def verify_bundle(
    work: Path, run: Run, name: str, held: HeldOut, reference: np.ndarray, calibration: int
) -> tuple[dict, dict, list[str]]:
    """Write a provisional manifest, run every artefact, print and check the figures."""
    from .card import write_manifest  # the card imports this module's gates

    i_quant, o_quant = tflite_io_quantization(work / "model.int8.tflite")
    io = {"input": i_quant, "output": o_quant}
    write_manifest(work, run, name, {}, io, [], calibration)
    results = verify(work, run, held, reference, run.labels)
    for key, r in results.items():
        print(
            f"  verify {key:12s} accuracy {100 * r['accuracy']:.2f}%  agreement "
            f"{100 * r['agreement_with_torch']:.2f}%  ({r['runtime']}, "
            f"{r['ms_per_window']:.2f} ms/window)"
        )
    return io, results, check_thresholds(results)


def check_thresholds(results: dict[str, dict[str, Any]]) -> list[str]:
    failures = []
    for name, r in results.items():
        if name.endswith("fp32") and r["agreement_with_torch"] < FP32_AGREEMENT:
            failures.append(
                f"{name} agrees with torch on {100 * r['agreement_with_torch']:.2f}% "
                f"of clips (needs {100 * FP32_AGREEMENT:.1f}%)"
            )
    for fmt in ("onnx", "tflite"):
        fp32, int8 = results.get(f"{fmt}-fp32"), results.get(f"{fmt}-int8")
        if fp32 and int8 and fp32["accuracy"] - int8["accuracy"] > INT8_MAX_DROP:
            failures.append(
                f"{fmt}-int8 accuracy {100 * int8['accuracy']:.2f}% is more than "
                f"{100 * INT8_MAX_DROP:g} point(s) below fp32 ({100 * fp32['accuracy']:.2f}%)"
            )
    return failures
