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
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edge_audio import __version__
from edge_audio.bundle import load_bundle, sha256_of
from edge_audio.bundle import write_manifest as write_bundle_manifest
from edge_audio.datasets import describe_groups, scan
from edge_audio.digest import TrainingDigest
from edge_audio.errors import DatasetError, EdgeAudioError
from edge_audio.frontend import FrontendConfig
from edge_audio.manifest import (
    ArtefactEntry,
    InputSpec,
    Licence,
    Manifest,
    Quantization,
    TrainingRecord,
    Verification,
    WindowSpec,
)
from edge_audio.metrics import classification_report
from edge_audio.windows import WindowPlan, normalise

from .data import (
    ClipSet,
    FeatureCache,
    background_clips,
    index_windows,
    load_clips,
    make_batch,
    mean_per_clip,
)

FP32_AGREEMENT = 0.995
# A final fit holds nothing out: int8 is checked against fp32 on this many of its clips.
FINAL_FIT_VERIFY_CLIPS = 600
# Fewer calibration windows than this can mis-set the int8 ranges: said, not refused.
MIN_CALIBRATION = 200
INT8_MAX_DROP = 0.01
# Seconds between windows when listening: a word of ~0.5 s is seen by 3-4 windows.
DEFAULT_STREAM_STRIDE = 0.25
LICENCES = {
    "fsdd": (
        "CC BY-SA 4.0",
        "Free Spoken Digit Dataset (Jakobovski et al., "
        "github.com/Jakobovski/free-spoken-digit-dataset), CC BY-SA 4.0",
    ),
    "esc50": (
        "CC BY-NC 3.0 (non-commercial use only)",
        "ESC-50 by K. J. Piczak "
        "(github.com/karolpiczak/ESC-50), CC BY-NC 3.0: non-commercial use only",
    ),
    "music_speech": (
        "research use",
        "GTZAN music/speech collection by G. Tzanetakis (marsyas.info), for research use",
    ),
}


class QuantizeError(EdgeAudioError):
    """Export or verification failed; the message says which artefact and why."""


@dataclass
class Run:
    root: Path
    config: dict[str, Any]
    model: Any  # torch.nn.Module, eval mode, BatchNorm folded
    plan: WindowPlan
    frontend: FrontendConfig
    labels: list[str]


@contextlib.contextmanager
def converter_output(log: Path) -> Iterator[None]:
    """Send what the converters print (progress lines, MLIR notes, native logs on
    fds 1 and 2) to a log file; on failure, show its tail before the error."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print("\n".join(tail), file=sys.stderr)
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def load_run(root: Path) -> Run:
    import torch

    from .zoo import ModelSpec, build_model

    config_path, checkpoint = root / "config.json", root / "checkpoint.pt"
    for path in (config_path, checkpoint):
        if not path.is_file():
            raise QuantizeError(f"{root}: no {path.name} (is this a training run directory?)")
    config = json.loads(config_path.read_text())
    model_cfg = config["model"]
    spec = ModelSpec(
        model_cfg["name"], model_cfg["size"], len(config["labels"]), tuple(model_cfg["input_shape"])
    )
    model = build_model(spec)
    model.dynamic_range = model_cfg["dynamic_range"]
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    fold_batchnorm(model)
    window = config["window"]
    plan = WindowPlan(window["frames"], window["mode"], window["hop_frames"])
    return Run(
        root, config, model, plan, FrontendConfig.from_dict(config["frontend"]), config["labels"]
    )


def fold_batchnorm(model: Any) -> None:
    """Fold every Conv2d -> BatchNorm2d pair: the exported graphs then hold only
    Conv, ReLU, pooling and Linear, and int8 scales cover the folded weights."""
    import torch
    from torch import nn

    for module in model.modules():
        children = list(module.named_children())
        for (_, conv), (bn_name, bn) in itertools.pairwise(children):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                assert bn.running_var is not None and bn.running_mean is not None
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                with torch.no_grad():
                    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
                setattr(module, bn_name, nn.Identity())


# --- data: calibration and held-out windows -------------------------------------


@dataclass
class TrainingData:
    clips: ClipSet
    members: list[int]  # training clips (real and background)

    def digest(self) -> TrainingDigest:
        """The dataset files the final model trained on (generated background
        clips are not files): `edge-audio evaluate` warns when it scores them."""
        sources = {self.clips.clips[i].source for i in self.members}
        return TrainingDigest.of_files(Path(s) for s in sorted(sources) if Path(s).is_file())


@dataclass
class HeldOut:
    windows: np.ndarray  # [n_windows, frames, mels]
    clip_of_window: np.ndarray  # [n_windows] clip index
    truth: np.ndarray  # [n_clips] label index


def unheard_groups(config: dict[str, Any]) -> set[str]:
    """The groups a run's final model never trained on: its test groups, and its
    validation groups unless it was refit on them (a final fit has neither)."""
    split = config["split"]
    unheard = set(split["test_groups"])
    if not config.get("training", {}).get("refit"):
        unheard |= set(split["validation_groups"])
    return unheard


def load_data(
    run: Run, data_root: Path | None, cache_dir: Path | None, calibration: int, seed: int
) -> tuple[np.ndarray, HeldOut, TrainingData]:
    """Calibration windows from the groups the model trained on (spread over every
    class) and the clips to verify on: the held-out test clips of the run's split,
    or for a final fit on every group (nothing held out) a sample of its clips."""
    dataset = run.config["dataset"]
    root = data_root or Path(dataset["root"])
    if not root.is_dir():
        raise DatasetError(f"{root}: the run's dataset is not here; pass --data")
    index = scan(
        root, dataset["layout"], folds=dataset.get("folds"), groups=dataset.get("groups_option")
    )
    cache = FeatureCache(run.frontend, cache_dir)
    clips = load_clips(index, cache, progress=False)
    clips = ClipSet(clips.clips, run.labels, clips.skipped)
    split = run.config["split"]
    unheard = unheard_groups(run.config)
    train = [i for i, c in enumerate(clips.clips) if c.group not in unheard]
    test = [i for i, c in enumerate(clips.clips) if c.group in split["test_groups"]]
    if not split["test_groups"]:  # a final fit: check fidelity on a sample of its clips
        rng = np.random.default_rng(seed + 11)
        test = sorted(rng.permutation(len(clips.clips))[:FINAL_FIT_VERIFY_CLIPS].tolist())
    if run.config.get("background_class"):
        # Background clips join calibration only: the held-out figures, like the
        # training report's, are about the dataset's own clips.
        seconds = run.config["window"]["seconds"]
        extra = background_clips(cache, 30, seconds, seed + 101, "bg-calibration")
        train.extend(range(len(clips.clips), len(clips.clips) + len(extra)))
        clips.clips.extend(extra)
    if not test:
        raise DatasetError(f"no held-out clips of groups {split['test_groups']} in {root}")
    label_index = {label: i for i, label in enumerate(run.labels)}
    rng = np.random.default_rng(seed)
    rows = index_windows(clips, train, run.plan, run.frontend.floor_db)
    by_label: dict[int, list[int]] = {}
    for r, (ci, _) in enumerate(rows):
        by_label.setdefault(label_index[clips.clips[ci].label], []).append(r)
    per_class = max(1, -(-calibration // len(by_label)))  # spread over every class
    picks = [r for members in by_label.values() for r in rng.permutation(members)[:per_class]]
    calib = make_batch(clips, rows[np.sort(picks)], run.plan)
    windows, owners = [], []
    for n, i in enumerate(test):
        w = run.plan.clip_windows(clips.clips[i].features, run.frontend.floor_db)
        windows.append(w)
        owners.extend([n] * len(w))
    truth = np.array([label_index[clips.clips[i].label] for i in test])
    # Calibration data is what the network sees: level-normalised windows.
    calib = normalise(calib, run.model.dynamic_range)
    held_out = HeldOut(np.concatenate(windows), np.array(owners), truth)
    return calib.astype(np.float32), held_out, TrainingData(clips, train)


# --- the four artefacts --------------------------------------------------------------


def export_onnx_fp32(run: Run, path: Path) -> None:
    import torch

    example = torch.zeros(1, 1, *run.config["model"]["input_shape"])
    torch.onnx.export(
        run.model,
        (example,),
        str(path),
        dynamo=True,
        external_data=False,
        input_names=["logmel"],
        output_names=["logits"],
        verbose=False,
    )


def export_onnx_int8(fp32: Path, path: Path, calibration: np.ndarray) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Windows(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            window = next(self.items, None)
            return None if window is None else {"logmel": window[None, None]}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(path),
            Windows(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )


def export_tflite_fp32(run: Run, path: Path) -> None:
    import litert_torch
    import torch

    example = torch.zeros(1, 1, *run.config["model"]["input_shape"])
    litert_torch.convert(run.model, (example,)).export(str(path))


def export_tflite_int8(
    run: Run,
    path: Path,
    calibration: np.ndarray,
    training: TrainingData | None = None,
    qat_epochs: int = 0,
    seed: int = 0,
) -> None:
    """Post-training quantisation calibrated on `calibration`; with `qat_epochs`,
    quantisation-aware fine-tuning on the training clips first (fake-quantised
    weights and activations learn to live with int8 rounding)."""
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    example = torch.from_numpy(calibration[:1, None])
    qat = bool(qat_epochs and training)
    # QAT trains on batches, so its graph takes any batch size; PTQ needs only one.
    batch = torch.export.Dim("batch", min=1, max=256)
    exported = torch.export.export(
        run.model,
        (torch.from_numpy(calibration[:2, None]) if qat else example,),
        dynamic_shapes=({0: batch},) if qat else None,
    ).module()
    # Histogram-calibrated activations: min/max ranges measured 6 points worse here.
    quantizer_cls = FoldedBatchNormQuantizer if qat else pt2e_quantizer.PT2EQuantizer
    quantizer = quantizer_cls().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_qat=qat)
    )
    if qat:
        prepared = quantize_pt2e.prepare_qat_pt2e(exported, quantizer)
        assert training is not None, "quantisation-aware fine-tuning needs the training data"
        qat_finetune(prepared, run, training, qat_epochs, seed)
    else:
        prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for window in calibration:
                prepared(torch.from_numpy(window[None, None]))
    converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    edge = litert_torch.convert(
        converted, (example,), quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)
    )
    with tempfile.TemporaryDirectory() as tmp:
        float_io = Path(tmp) / "float_io.tflite"
        edge.export(str(float_io))
        path.write_bytes(integer_interface(float_io.read_bytes()))


def _folded_batchnorm_quantizer():
    from litert_torch.quantize import pt2e_quantizer

    class Quantizer(pt2e_quantizer.PT2EQuantizer):
        """litert-torch's quantizer without its conv+BatchNorm QAT patterns: BatchNorm
        is folded before export, so they cannot match, and building them fails on
        torch 2.13 (torch.export is handed a function)."""

        STATIC_QAT_ONLY_OPS: ClassVar[list[str]] = []

    return Quantizer


def FoldedBatchNormQuantizer():
    return _folded_batchnorm_quantizer()()


def qat_finetune(prepared, run: Run, training: TrainingData, epochs: int, seed: int) -> None:
    """A few epochs at a low learning rate on the training windows, with light
    augmentation, through the fake-quantised graph."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    from .augment import AugmentConfig, augment_batch
    from .data import index_windows, make_batch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    windows = index_windows(training.clips, training.members, run.plan)
    labels = np.array([run.labels.index(c.label) for c in training.clips.clips])
    augment = AugmentConfig(noise=False, time_masks=0, freq_masks=0)
    optimiser = torch.optim.AdamW(prepared.parameters(), lr=1e-4, weight_decay=0.0)
    move_exported_model_to_train(prepared)
    for _ in range(epochs):
        order = rng.permutation(len(windows))
        for start in range(0, len(order) - 1, 32):
            rows = windows[order[start : start + 32]]
            batch = make_batch(training.clips, rows, run.plan, rng, run.plan.frames // 8)
            batch = normalise(augment_batch(batch, augment, rng), run.model.dynamic_range)
            logits = prepared(torch.from_numpy(batch[:, None]))
            loss = torch.nn.functional.cross_entropy(
                logits, torch.from_numpy(labels[rows[:, 0]]), label_smoothing=0.1
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    move_exported_model_to_eval(prepared)


def integer_interface(model_bytes: bytes) -> bytes:
    """Make a quantised TFLite model take int8 input and give int8 output: drop
    the QUANTIZE op after the float input and the DEQUANTIZE op before a float
    output, and let the graph's ends be their int8 tensors (what TF's
    modify_model_interface does). The device quantises in NumPy instead."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    graph = model.subgraphs[0]

    def opcode(op) -> int:
        code = model.operatorCodes[op.opcodeIndex]
        return max(code.builtinCode, code.deprecatedBuiltinCode)

    remap: dict[int, int] = {}
    for op in list(graph.operators):
        if opcode(op) == schema.BuiltinOperator.QUANTIZE and op.inputs[0] in graph.inputs:
            remap[int(op.inputs[0])] = int(op.outputs[0])
            graph.operators.remove(op)
        elif opcode(op) == schema.BuiltinOperator.DEQUANTIZE and op.outputs[0] in graph.outputs:
            remap[int(op.outputs[0])] = int(op.inputs[0])
            graph.operators.remove(op)
    graph.inputs = [remap.get(int(t), int(t)) for t in graph.inputs]
    graph.outputs = [remap.get(int(t), int(t)) for t in graph.outputs]
    for signature in model.signatureDefs or []:
        for tensor_map in list(signature.inputs or []) + list(signature.outputs or []):
            tensor_map.tensorIndex = remap.get(tensor_map.tensorIndex, tensor_map.tensorIndex)
    for t in list(graph.inputs) + list(graph.outputs):
        if graph.tensors[t].type != schema.TensorType.INT8:
            raise QuantizeError("the int8 TFLite model does not have int8 ends after conversion")
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tflite_io_quantization(path: Path) -> tuple[dict[str, float], dict[str, float]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    (i_scale, i_zero) = interpreter.get_input_details()[0]["quantization"]
    (o_scale, o_zero) = interpreter.get_output_details()[0]["quantization"]
    return (
        {"scale": float(i_scale), "zero_point": int(i_zero)},
        {"scale": float(o_scale), "zero_point": int(o_zero)},
    )


# --- verification ----------------------------------------------------------------------


def clip_predictions(window_probs: np.ndarray, held: HeldOut) -> np.ndarray:
    return mean_per_clip(window_probs, held.clip_of_window, held.truth.size).argmax(1)


def torch_predictions(run: Run, held: HeldOut) -> np.ndarray:
    import torch

    dr = run.model.dynamic_range
    with torch.no_grad():
        logits = torch.cat(
            [
                run.model(torch.from_numpy(normalise(held.windows[i : i + 256], dr)[:, None]))
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


# --- manifest, card, command ------------------------------------------------------------


def write_manifest(
    out: Path,
    run: Run,
    name: str,
    results: dict,
    io_quant: dict,
    overridden: list[str],
    calibration: int,
    *,
    stream_stride: float = DEFAULT_STREAM_STRIDE,
    int8_method: str | None = None,
    digest: TrainingDigest | None = None,
) -> Manifest:
    files = {
        "onnx-fp32": "model.fp32.onnx",
        "onnx-int8": "model.int8.onnx",
        "tflite-fp32": "model.fp32.tflite",
        "tflite-int8": "model.int8.tflite",
    }
    dataset = run.config["dataset"]
    licence_key = {"fsdd": "fsdd", "esc50": "esc50"}.get(
        dataset["layout"], Path(dataset["root"]).name
    )
    licence, attribution = LICENCES.get(
        licence_key,
        ("the licence of the training data", f"trained on {Path(dataset['root']).name}"),
    )
    artefacts = {}
    for key, file in files.items():
        path = out / file
        if not path.exists():
            continue
        fmt, precision = key.split("-")
        int8_tflite = key == "tflite-int8"
        artefacts[key] = ArtefactEntry(
            file,
            fmt,
            precision,
            sha256_of(path),
            path.stat().st_size,
            Quantization(**io_quant["input"]) if int8_tflite else None,
            Quantization(**io_quant["output"]) if int8_tflite else None,
            {k: v for k, v in results.get(key, {}).items() if k != "confusion"},
            int8_method if int8_tflite else None,
        )
    split = run.config["split"]
    window = run.config["window"]
    manifest = Manifest(
        name=name,
        created_by=f"edge-audio {__version__}",
        labels=tuple(run.labels),
        background_label=run.config.get("background_class"),
        frontend=run.frontend,
        window=WindowSpec(
            run.plan.frames,
            run.plan.mode,
            run.plan.hop,
            window["seconds"],
            window["hop_seconds"],
            stream_stride,
        ),
        input=InputSpec((1, 1, *run.config["model"]["input_shape"]), run.model.dynamic_range),
        model=run.config["model"],
        artefacts=artefacts,
        training=TrainingRecord(
            dataset=Path(dataset["root"]).name,
            layout=dataset["layout"],
            clips=dataset["clips"],
            groups=tuple(dataset["groups"]),
            test_groups=tuple(split["test_groups"]),
            validation_groups=tuple(split["validation_groups"]),
            synthetic_speakers=len(run.config.get("synthetic_speakers", [])),
            command=run.config.get("command"),
            seed=run.config.get("seed"),
            final_fit=not split["test_groups"],
            cross_validation=cv_estimate(run),
            files_digest=digest,
        ),
        calibration_windows=calibration,
        verification=Verification(
            tuple(split["test_groups"]), FP32_AGREEMENT, INT8_MAX_DROP, tuple(overridden)
        ),
        licence=Licence(licence, attribution),
    )
    write_bundle_manifest(out, manifest)
    return manifest


def cv_estimate(run: Run) -> dict[str, Any] | None:
    """A final fit's cross-validated accuracy (written by train --cv --fit-all)."""
    path = run.root / "metrics.json"
    if not path.is_file():
        return None
    estimate = json.loads(path.read_text()).get("estimate")
    if not estimate:
        return None
    return {
        "accuracy_mean": estimate["accuracy"]["mean"],
        "accuracy_min": estimate["accuracy"]["min"],
        "folds": {f["name"]: f["accuracy"] for f in estimate["folds"]},
        "note": "fp32, each fold's model tested on its held-out group",
    }


def how_trained(training: TrainingRecord) -> str:
    """The card's sentence on the split."""
    if training.final_fit:
        cv = training.cross_validation or {}
        folds = ", ".join(f"{k} {100 * v:.1f}%" for k, v in cv.get("folds", {}).items())
        return (
            "on every group (a final fit, for the median best epoch of the cross-validation "
            f"folds; nothing held out). Cross-validated estimate (fp32): "
            f"{100 * cv.get('accuracy_mean', float('nan')):.1f}% mean ({folds})"
        )
    return (
        f"holding out {describe_groups(list(training.test_groups))} for test and "
        f"{describe_groups(list(training.validation_groups))} for validation (no group on two "
        "sides; every group is listed in manifest.json)"
    )


def write_card(out: Path, manifest: Manifest, run: Run, quantize_command: str) -> None:
    rows = []
    for key, entry in manifest.artefacts.items():
        m = entry.metrics
        rows.append(
            f"| {key} | {entry.size / 1024:.1f} KB | "
            f"{100 * m.get('accuracy', float('nan')):.1f}% | "
            f"{100 * m.get('macro_f1', float('nan')):.1f}% | "
            f"{100 * m.get('agreement_with_torch', float('nan')):.1f}% | "
            f"{m.get('runtime', '-')} |"
        )
    model = manifest.model
    labels = [label for label in manifest.labels if label != manifest.background_label]
    training = manifest.training
    verification = manifest.verification
    licence = manifest.licence
    assert training is not None and verification is not None and licence is not None
    background = (
        f" It also has a `{manifest.background_label}` class (silence, noise, "
        'other speech) so that it can say "nothing here" between sounds.'
        if manifest.background_label
        else ""
    )
    text = f"""# {manifest.name}

## What it recognises
{len(labels)} classes: {", ".join(labels)}.{background}
Input: {manifest.window.seconds} s windows of {run.frontend.sample_rate} Hz audio as
{run.frontend.n_mels}-band log-mel features ({run.frontend.fmin:g}-{
        run.frontend.top_frequency:g} Hz).

## Model
{model["name"]}-{model["size"]}: {model["params"]:,} parameters, {model["macs"] / 1e6:.2f} M
multiply-accumulates per window.

## How it was trained
On `{training.dataset}` ({training.layout} layout, {training.clips} clips),
{how_trained(training)}{
        "; plus "
        + str(training.synthetic_speakers)
        + " synthetic espeak-ng speakers as training-only data"
        if training.synthetic_speakers
        else ""
    }.
Reproduce it from the data with:

```sh
{training.command}
{quantize_command}
```

## Verified metrics ({
        "held-out " + describe_groups(list(training.test_groups))
        if training.test_groups
        else "a sample of its own training clips: a fidelity check, not an accuracy estimate"
    }, device runtime)
| artefact | size | accuracy | macro-F1 | agreement with torch | runtime |
|---|---|---|---|---|---|
{chr(10).join(rows)}

## Limits
- Judged on {
        "the held-out group above only"
        if training.test_groups
        else "cross-validation over the groups it was trained on"
    }: other speakers, microphones and rooms can score lower.
- The model hears {run.frontend.fmin:g}-{run.frontend.top_frequency:g} Hz; a microphone at any
  rate is resampled to {run.frontend.sample_rate} Hz.
- Thresholds overridden at export: {", ".join(verification.thresholds_overridden) or "none"}.

## Licence
Trained on data under {licence.data}. Attribution:
{licence.attribution}.
"""
    (out / "card.md").write_text(text)


def quantize_command(args: argparse.Namespace) -> int:
    from .train import require_torch

    torch = require_torch()
    torch.set_num_threads(args.threads)
    run = load_run(args.run_dir)
    out: Path = args.out
    name = args.name or out.name
    print(
        f"{run.root}: {run.config['model']['name']}-{run.config['model']['size']}, "
        f"{len(run.labels)} labels; loading calibration and held-out data"
    )
    calibration, held, training = load_data(run, args.data, args.cache, args.calibration, args.seed)
    if len(calibration) < min(MIN_CALIBRATION, args.calibration):
        print(
            f"  warning: only {len(calibration)} training windows to calibrate int8 on "
            f"(asked for {args.calibration}; {MIN_CALIBRATION}+ is safer): a small dataset; "
            "the verification below says whether int8 stayed faithful"
        )
    elif len(calibration) < args.calibration:
        print(f"  note: {len(calibration)} calibration windows (asked for {args.calibration})")
    if not run.config["split"]["test_groups"]:
        print(
            f"  final fit on every group: int8 is verified against fp32 on {held.truth.size} "
            "of its own clips; the accuracy estimate is the run's cross-validation"
        )
    work = Path(
        tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent if out.parent.exists() else None)
    )
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
        if any(f.startswith("tflite-int8") for f in failures) and args.qat_epochs > 0:
            print(
                f"  tflite-int8 lost more than 1 point: quantisation-aware fine-tuning "
                f"for {args.qat_epochs} epochs"
            )
            start = time.time()
            with converter_output(work / "convert.log"):
                export_tflite_int8(
                    run,
                    work / "model.int8.tflite",
                    calibration,
                    training,
                    args.qat_epochs,
                    args.seed,
                )
            print(f"  wrote model.int8.tflite again ({time.time() - start:.1f} s)")
            io, results, failures = verify_bundle(
                work, run, name, held, reference, len(calibration)
            )
            int8_method = f"quantisation-aware fine-tuning (PT2E QAT, {args.qat_epochs} epochs)"
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
        command = "python -m export " + " ".join(shlex.quote(a) for a in args.argv)
        write_card(work, manifest, run, command)
        if manifest.task == "detection" and not run.config["split"]["test_groups"]:
            print(
                "  note: no held-out group to choose the stream threshold on (a final fit); "
                "the bundle keeps 0.5 until `python -m export threshold` runs on other data"
            )
        elif manifest.task == "detection":  # the stream threshold, on held-out streams
            from .threshold import choose_threshold, write_stream_settings

            dataset = run.config["dataset"]
            root = args.data or Path(dataset["root"])
            stream = choose_threshold(work, root, dataset["layout"], seed=args.seed)
            write_stream_settings(work, stream)
            print(
                f"  stream threshold {stream['threshold']:.2f} (best event F1 on held-out streams)"
            )
        from .report import plot_confusion

        int8 = results["tflite-int8"]
        test_groups = run.config["split"]["test_groups"]
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
        default=256,
        help="calibration windows from the training groups (default 256; fewer are used "
        "with a warning when a small dataset has fewer)",
    )
    p.add_argument(
        "--qat-epochs",
        type=int,
        default=4,
        help="if int8 TFLite loses more than 1 point, fine-tune with quantisation-aware "
        "training for this many epochs (0: never; default 4)",
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(run=quantize_command)
