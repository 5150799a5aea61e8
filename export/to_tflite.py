"""Conversion to TFLite with litert-torch: float, and full-integer int8 through
PT2E (post-training, or quantisation-aware fine-tuning when that loses too much)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, TextIO

import numpy as np

from edge_audio.windows import normalise

from .data import (
    index_windows,
    make_batch,
)
from .trained_run import QuantizeError, Run, TrainingData


@contextlib.contextmanager
def converter_output(log: Path) -> Iterator[TextIO]:
    """Send what the converters print (progress lines, MLIR notes, native logs on
    fds 1 and 2) to a log file; on failure, show its tail before the error. Yields
    the console's stderr, for a progress bar of our own."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as sink, os.fdopen(os.dup(saved[1]), "w") as console:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield console
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


def export_tflite_fp32(run: Run, path: Path) -> None:
    import litert_torch
    import torch

    example = torch.zeros(1, 1, *run.config.model.input_shape)
    litert_torch.convert(run.model, (example,)).export(str(path))


def export_tflite_int8(
    run: Run,
    path: Path,
    calibration: np.ndarray,
    training: TrainingData | None = None,
    qat_epochs: int = 0,
    seed: int = 0,
    progress: TextIO | None = None,
) -> None:
    """Post-training quantisation calibrated on `calibration`; with `qat_epochs`,
    quantisation-aware fine-tuning on the training clips first (fake-quantised
    weights and activations learn to live with int8 rounding)."""
    import litert_torch
    import torch
    from litert_torch.quantize import quant_config
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
    quantizer = int8_quantizer(qat)
    if qat:
        prepared = quantize_pt2e.prepare_qat_pt2e(exported, quantizer)
        assert training is not None, "quantisation-aware fine-tuning needs the training data"
        qat_finetune(prepared, run, training, calibration, qat_epochs, seed, progress)
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


def int8_quantizer(qat: bool = False):
    """litert-torch's PT2E quantizer as the int8 TFLite file is made: per-channel
    symmetric int8 weights, histogram-calibrated int8 activations (min/max ranges
    measured 6 points worse here)."""
    from litert_torch.quantize import pt2e_quantizer

    quantizer = FoldedBatchNormQuantizer() if qat else pt2e_quantizer.PT2EQuantizer()
    return quantizer.set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_qat=qat)
    )


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


def qat_finetune(
    prepared,
    run: Run,
    training: TrainingData,
    calibration: np.ndarray,
    epochs: int,
    seed: int,
    progress: TextIO | None = None,
) -> None:
    """A few epochs at a low learning rate on the training windows, with light
    augmentation, through the fake-quantised graph. The observers are calibrated
    first, as for post-training quantisation: left to the first training batches,
    EfficientAT's mn04 came out of one epoch at chance (2% on ESC-50 fold 1), and
    from calibrated ranges at its float accuracy."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    from .augment import AugmentConfig, augment_batch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    move_exported_model_to_eval(prepared)
    with torch.no_grad():
        for start in range(0, len(calibration), 32):
            prepared(torch.from_numpy(calibration[start : start + 32, None]))
    windows = index_windows(training.clips, training.members, run.plan)
    labels = np.array([run.labels.index(c.label) for c in training.clips.clips])
    # Gain, EQ and warps act on dB features: a pretrained network's ln-scaled input
    # (EfficientAT) would be wrecked by them, so it gets time shifts alone.
    augment = AugmentConfig(noise=False, time_masks=0, freq_masks=0)
    in_db = run.frontend.log == "db"
    optimiser = torch.optim.AdamW(prepared.parameters(), lr=1e-4, weight_decay=0.0)
    move_exported_model_to_train(prepared)
    from tqdm import tqdm

    steps = len(range(0, len(windows) - 1, 32))
    quiet = progress is None or not progress.isatty()  # a bar for people, not for logs
    bar = tqdm(total=epochs * steps, desc="QAT", unit="batch", file=progress, disable=quiet)
    for _ in range(epochs):
        order = rng.permutation(len(windows))
        for start in range(0, len(order) - 1, 32):
            rows = windows[order[start : start + 32]]
            batch = make_batch(training.clips, rows, run.plan, rng, run.plan.frames // 8)
            batch = normalise(
                augment_batch(batch, augment, rng) if in_db else batch,
                run.model.dynamic_range,
                run.config.model.normalisation,
            )
            logits = prepared(torch.from_numpy(batch[:, None]))
            loss = torch.nn.functional.cross_entropy(
                logits, torch.from_numpy(labels[rows[:, 0]]), label_smoothing=0.1
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            bar.update()
    bar.close()
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
