#!/usr/bin/env bash
# The device lane: the device side's tests in a venv holding only what a board
# installs (edge-audio[litert,formats]) plus pytest and hypothesis. torch,
# onnx and librosa must be absent, and a skip counts as a failure
# (tests/conftest.py), so a device test can never hide behind a missing package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv-device/bin/python}
"$PY" -m pip install -q -e '.[litert,formats]' pytest hypothesis 2>/dev/null
for heavy in torch onnx librosa tensorflow; do
  if "$PY" -c "import $heavy" 2>/dev/null; then
    echo "run-device-tests: $heavy is importable in $PY: this is not a device install" >&2
    exit 1
  fi
done
EDGE_AUDIO_DEVICE_LANE=1 "$PY" -m pytest -m "not toolchain" -q "$@"
