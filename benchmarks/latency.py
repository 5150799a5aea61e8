"""Latency and memory of every shipped bundle against librosa + torch eager.

    python benchmarks/latency.py [--model BUNDLE_DIR] [--json] [--out DIR]

The same as `edge-audio bench`; see `edge-audio bench --help` for the options.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_audio.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
