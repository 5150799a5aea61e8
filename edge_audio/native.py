"""Helpers for native libraries (interpreters, PortAudio) that write to fd 2."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence native code's writes to stderr (fd 2) for a moment: the TFLite
    interpreter announces its delegate, PortAudio reports every ALSA/JACK probe."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
