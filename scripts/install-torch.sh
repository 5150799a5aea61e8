#!/usr/bin/env bash
# Install the CPU build of torch==2.13.0 into $PY's environment, before the train
# extra (whose torch==2.13.* pin it then satisfies).
#
# Why a script: `pip install torch==2.13.0` from the public index pulls several GB
# of CUDA packages on Linux x86-64; only the PyTorch CPU wheel index avoids them.
# So the CPU index is used whenever it can be reached. Where it cannot (a closed
# network with its own mirror, as on our CI machines, which keep the CPU wheel
# locally), the plain pin is installed from the configured indexes, with a note.
set -euo pipefail
PY=${PY:-python3}
TORCH=${TORCH:-torch==2.13.0}
CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

if "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '${TORCH#torch==}' else 1)" 2>/dev/null; then
  exit 0  # already there
fi
if curl -fsS --max-time 10 -o /dev/null "$CPU_INDEX/torch/" 2>/dev/null; then
  "$PY" -m pip install -q "$TORCH" --index-url "$CPU_INDEX"
else
  echo "install-torch: $CPU_INDEX is not reachable; installing $TORCH from the" \
    "configured indexes (on a public index this pulls the CUDA packages)" >&2
  "$PY" -m pip install -q "$TORCH"
fi
"$PY" -c "import torch; print(f'install-torch: torch {torch.__version__}, CUDA build: {torch.version.cuda is not None}')"
