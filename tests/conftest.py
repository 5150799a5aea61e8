from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.is_dir():
        reason = f"needs the real recordings in {path} (../shared/data/{name} is absent)"
        if os.environ.get("EDGE_AUDIO_REQUIRE_SHARED"):
            pytest.fail(reason + ", and EDGE_AUDIO_REQUIRE_SHARED is set")
        pytest.skip(reason)
    return path
