"""Typed errors. Every error a user can cause is an EdgeAudioError, which the
CLI turns into one line and a non-zero exit instead of a traceback."""

from __future__ import annotations

from pathlib import Path


class EdgeAudioError(Exception):
    """Base class of every error edge-audio raises on bad input."""


class AudioFileError(EdgeAudioError):
    """A file that cannot be read as audio; the message names file and reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(EdgeAudioError, ValueError):
    """An invalid configuration value (frontend, model, CLI option)."""


class DatasetError(EdgeAudioError):
    """A dataset folder that does not match its layout, or holds no usable clips."""


class MissingDependencyError(EdgeAudioError):
    """An optional package is needed; the message says which extra installs it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the '{package}' package: "
            f"pip install 'edge-audio[{extra}]' (or pip install {package})"
        )
