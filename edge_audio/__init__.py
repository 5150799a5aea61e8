"""edge-audio, the device side: audio I/O, the log-mel frontend, dataset layouts.

NumPy, SciPy and one inference runtime only; never torch, onnx or tensorflow.
Public names are imported lazily so that `import edge_audio` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "load_audio": "audio",
    "read_wav": "audio",
    "write_wav": "audio",
    "resample": "audio",
    "wav_info": "audio",
    "FrontendConfig": "frontend",
    "LogMel": "frontend",
    "StreamingLogMel": "frontend",
    "log_mel": "frontend",
    "mfcc": "frontend",
    "Listener": "listen",
    "StreamConfig": "stream",
    "Event": "deciders",
    "LabelChange": "deciders",
    "DeviceLost": "source",
    "Manifest": "manifest",
    "load_bundle": "bundle",
    "load_backend": "backends",
    "scan": "datasets",
    "Record": "datasets",
    "DatasetIndex": "datasets",
    "EdgeAudioError": "errors",
    "AudioFileError": "errors",
    "ConfigError": "errors",
    "DatasetError": "errors",
}
__all__ = [*sorted(_PUBLIC), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'edge_audio' has no attribute '{name}'")
