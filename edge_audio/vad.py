"""An optional speech gate for keyword detectors: an event stands only if Silero
VAD hears speech in the window that fired it (as openWakeWord offers).

A detector trained on a few hours of negatives still fires on some sounds and
music; a voice-activity model trained on far more audio tells speech from the
rest better than its background class can. It runs only when the detector is
about to raise an event, never per window, so it costs almost nothing while the
room is quiet (a second of audio is about 5 ms of CPU here).

The model is Silero VAD's ONNX file (MIT), read from the `silero-vad` package
where pip put it; edge-audio never imports that package, whose Python API needs
torch. On a board: pip install 'edge-audio[onnx]' and pip install --no-deps silero-vad.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, EdgeAudioError, MissingDependencyError

SILERO_DISTRIBUTION = "silero-vad"
SILERO_MODEL = "silero_vad.onnx"
INSTALL = "pip install --no-deps silero-vad (its ONNX model is all edge-audio reads)"
DEFAULT_THRESHOLD = 0.5
# Samples per step and the context the model keeps from the previous step, per rate.
CHUNK = {8000: 256, 16000: 512}
CONTEXT = {8000: 32, 16000: 64}
STATE_SHAPE = (2, 1, 128)


def silero_model_path() -> Path:
    """Where pip installed Silero VAD's ONNX model, found without importing the package."""
    try:
        files = importlib.metadata.files(SILERO_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise EdgeAudioError(f"the speech gate needs Silero VAD's model: {INSTALL}") from None
    for f in files:
        if f.name == SILERO_MODEL:
            return Path(str(f.locate()))
    raise EdgeAudioError(
        f"the installed {SILERO_DISTRIBUTION} has no {SILERO_MODEL}: reinstall it ({INSTALL})"
    )


def gate_rate(rate: int) -> int:
    """The rate the gate hears a model's audio at: the model's own when Silero
    takes it (8 or 16 kHz), else 16 kHz."""
    return rate if rate in CHUNK else 16000


class SpeechGate:
    """Silero VAD over a short stretch of audio: the highest speech probability in it."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, model: Path | None = None) -> None:
        if not 0 < threshold < 1:
            raise ConfigError(f"the speech gate's threshold must be in (0, 1), got {threshold}")
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "onnx", "the speech gate") from None
        path = model or silero_model_path()
        if not path.is_file():
            raise EdgeAudioError(f"the speech gate's model {path} does not exist ({INSTALL})")
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session: Any = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.threshold = threshold
        self.checked = self.rejected = 0

    def speech_probability(self, audio: np.ndarray, rate: int) -> float:
        """The highest speech probability over `audio` (mono float at `rate`, 8 or
        16 kHz), heard from a fresh state: each check stands on its own."""
        if rate not in CHUNK:
            raise ConfigError(f"the speech gate hears 8 or 16 kHz audio, got {rate} Hz")
        step, keep = CHUNK[rate], CONTEXT[rate]
        state = np.zeros(STATE_SHAPE, np.float32)
        context = np.zeros((1, keep), np.float32)
        sr = np.array(rate, np.int64)
        best = 0.0
        samples = np.asarray(audio, np.float32).reshape(-1)
        for start in range(0, samples.size - step + 1, step):
            x = np.concatenate((context, samples[None, start : start + step]), axis=1)
            out, state = self.session.run(None, {"input": x, "state": state, "sr": sr})
            context = x[:, -keep:]
            best = max(best, float(out.reshape(-1)[0]))
        return best

    def allows(self, audio: np.ndarray, rate: int) -> bool:
        """Whether an event over `audio` stands; counts the checks and rejections."""
        self.checked += 1
        speech = self.speech_probability(audio, rate) >= self.threshold
        self.rejected += not speech
        return speech

    def summary(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "events_checked": self.checked,
            "events_rejected": self.rejected,
        }
