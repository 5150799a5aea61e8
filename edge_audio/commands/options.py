"""Options that several commands share, worded once."""

from __future__ import annotations

import argparse

from ..shipped import default_model, shipped_models

MODEL_HELP = (
    "model bundle: a folder, or the name of a shipped model "
    f"({', '.join(shipped_models())}; default: {default_model().name})"
)


def runtime_options(p: argparse.ArgumentParser) -> None:
    """Which artefact runs, and on how many threads: evaluate and listen alike."""
    p.add_argument(
        "--backend", choices=("onnx", "tflite"), help="runtime (default: best installed)"
    )
    p.add_argument("--precision", choices=("fp32", "int8"), help="model precision (default int8)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
