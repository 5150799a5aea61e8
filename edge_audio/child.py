"""The environment of the child processes that bench and firmware_sim start.

A child imports edge_audio from the same place as its parent: the folder this
package was imported from (site-packages for a wheel, the checkout for a
developer), never a path guessed from the repository's layout.
"""

from __future__ import annotations

import os
from pathlib import Path

# One thread everywhere: a Pi-class loop runs on one core, and a measurement
# must not depend on how many cores the host has.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def import_root() -> Path:
    """The folder that holds the edge_audio package this process runs."""
    return Path(__file__).resolve().parent.parent


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **SINGLE_THREAD_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(import_root()), env.get("PYTHONPATH")]))
    return env | (extra or {})
