"""One small interface over the inference runtimes: onnxruntime, ai-edge-litert
(the maintained TFLite interpreter) and the old tflite-runtime (a fallback; it
needs numpy<2). A backend owns its interpreter and maps windows
[n, frames, mels] of log-mel dB to class probabilities; quantisation of int8
inputs and outputs happens here, in NumPy, with the manifest's parameters.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from .bundle import Artefact, Bundle, BundleError
from .errors import ConfigError, MissingDependencyError
from .native import quiet_stderr
from .windows import normalise

BACKENDS = ("onnx", "tflite")
# Interpreter modules in order of preference for each format.
_TFLITE_MODULES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert", "litert"),
    ("tflite_runtime.interpreter", "tflite-runtime", "tflite"),
)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


class Backend(ABC):
    """A loaded model: `probabilities(windows)` -> [n, classes]."""

    runtime: str

    def __init__(self, artefact: Artefact) -> None:
        self.artefact = artefact
        self.dynamic_range: float | None = None  # set from the bundle by load_backend
        self.normalisation = "peak"

    @property
    def precision(self) -> str:
        return self.artefact.precision

    @property
    def format(self) -> str:
        return self.artefact.format

    @abstractmethod
    def logits(self, window: np.ndarray) -> np.ndarray:
        """One normalised window [frames, mels] -> float logits [classes]."""

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Windows of log-mel dB [n, frames, mels] (or one [frames, mels]) ->
        probabilities [n, classes]."""
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim == 2:
            windows = windows[None]
        x = normalise(windows, self.dynamic_range, self.normalisation)
        return softmax(np.stack([self.logits(w) for w in x]))

    def describe(self) -> str:
        return f"{self.runtime} {self.artefact.name} ({self.artefact.path.name})"


class OnnxBackend(Backend):
    runtime = "onnxruntime"

    def __init__(self, artefact: Artefact, threads: int = 1) -> None:
        super().__init__(artefact)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        try:
            self.session = ort.InferenceSession(
                str(artefact.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for corrupt models
            raise BundleError(
                artefact.path.parent, f"onnxruntime cannot load {artefact.path.name}: {exc}"
            ) from None
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, window: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(None, {self.input_name: window[None, None]})
        return np.asarray(out[0], dtype=np.float32)


class TFLiteBackend(Backend):
    """ai-edge-litert or tflite-runtime: the same Interpreter API."""

    def __init__(self, artefact: Artefact, threads: int = 1, module: str | None = None) -> None:
        super().__init__(artefact)
        module = module or next((m for m, _, _ in _TFLITE_MODULES if _installed(m)), None)
        if module is None:
            raise MissingDependencyError("ai-edge-litert", "litert", "running a .tflite model")
        self.runtime = next(name for m, name, _ in _TFLITE_MODULES if m == module)
        interpreter_cls = importlib.import_module(module).Interpreter
        try:
            with quiet_stderr():  # the interpreter announces its XNNPACK delegate on fd 2
                self.interpreter = interpreter_cls(
                    model_path=str(artefact.path), num_threads=threads
                )
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BundleError(
                artefact.path.parent, f"{self.runtime} cannot load {artefact.path.name}: {exc}"
            ) from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_quant = artefact.input_quant if self.input["dtype"] == np.int8 else None
        self.output_quant = artefact.output_quant if self.output["dtype"] == np.int8 else None
        if self.input["dtype"] == np.int8 and self.input_quant is None:
            raise BundleError(
                artefact.path.parent,
                f"{artefact.name} takes int8 input but the "
                "manifest gives no input scale and zero point",
            )

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        q = self.input_quant
        assert q is not None
        return np.clip(np.round(x / q.scale) + q.zero_point, -128, 127).astype(np.int8)

    def logits(self, window: np.ndarray) -> np.ndarray:
        x = window[None, None]
        if self.input_quant is not None:
            x = self.quantize_input(x)
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])[0]
        if self.output_quant is not None:
            y = (y.astype(np.float32) - self.output_quant.zero_point) * self.output_quant.scale
        return np.asarray(y, dtype=np.float32)


def available() -> dict[str, str | None]:
    """Which runtime would serve each format here (None: none installed)."""
    tflite = next((name for m, name, _ in _TFLITE_MODULES if _installed(m)), None)
    return {"onnx": "onnxruntime" if _installed("onnxruntime") else None, "tflite": tflite}


def choose_artefact(
    bundle: Bundle, backend: str | None = None, precision: str | None = None
) -> Artefact:
    """The artefact to run: the int8 TFLite model when an interpreter for it is
    installed, else the best that is; `backend` and `precision` narrow the choice."""
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if precision is not None and precision not in ("fp32", "int8"):
        raise ConfigError(f"unknown precision '{precision}' (choose from fp32, int8)")
    runtimes = available()
    formats = [backend] if backend else ["tflite", "onnx"]
    precisions = [precision] if precision else ["int8", "fp32"]
    for fmt in formats:
        if runtimes[fmt] is None:
            continue
        for prec in precisions:
            if f"{fmt}-{prec}" in bundle.artefacts:
                return bundle.artefacts[f"{fmt}-{prec}"]
    wanted = " / ".join(f"{f}-{p}" for f in formats for p in precisions)
    if backend and runtimes[backend] is None:
        extra = "onnx" if backend == "onnx" else "litert"
        package = "onnxruntime" if backend == "onnx" else "ai-edge-litert"
        raise MissingDependencyError(package, extra, f"the {backend} backend")
    if not any(runtimes.values()):
        raise MissingDependencyError("ai-edge-litert", "litert", "running a model")
    raise BundleError(
        bundle.root,
        f"has no {wanted} model that an installed runtime can run "
        f"(it has: {', '.join(bundle.artefacts)}"
        + (f"; listed but not copied here: {', '.join(bundle.absent)})" if bundle.absent else ")"),
    )


def load_backend(
    bundle: Bundle,
    backend: str | None = None,
    precision: str | None = None,
    threads: int = 1,
    **options: Any,
) -> Backend:
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    artefact = choose_artefact(bundle, backend, precision)
    loaded: Backend
    if artefact.format == "onnx":
        loaded = OnnxBackend(artefact, threads)
    else:
        loaded = TFLiteBackend(artefact, threads, **options)
    loaded.dynamic_range = bundle.dynamic_range
    loaded.normalisation = bundle.normalisation
    return loaded
