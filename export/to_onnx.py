"""Conversion to ONNX: the float graph (dynamo exporter) and static QDQ int8,
calibrated on representative windows."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .trained_run import Run


def export_onnx_fp32(run: Run, path: Path) -> None:
    import torch

    example = torch.zeros(1, 1, *run.config.model.input_shape)
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
