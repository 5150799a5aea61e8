#!/usr/bin/env bash
# Build the wheel, install it into a fresh venv with the LiteRT interpreter and,
# from an empty temporary folder (no checkout on any path), run the main job on
# the packaged default model and demo, then a short bench whose children must
# import edge_audio from the wheel too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PYTHON=${PYTHON:-python3}
work=$(mktemp -d -t edge-audio-wheel-XXXXXX)
trap 'rm -rf "$work"' EXIT

"$PY" -m build --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/edge_audio-*.whl)
echo "wheel-check: built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KB)"

"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "${wheel}[litert]" 2>"$work/pip.log" \
  || { tail -20 "$work/pip.log"; exit 1; }

cd "$work"
mkdir empty && cd empty
"$work/venv/bin/edge-audio" listen --demo
# The same through --simulate, with the path the installed package gives.
demo=$("$work/venv/bin/python" -c 'from edge_audio.shipped import demo_recording; print(demo_recording())')
case "$demo" in "$work/venv/"*) ;; *) echo "wheel-check: the demo is not in the venv: $demo" >&2; exit 1;; esac
"$work/venv/bin/edge-audio" listen --simulate "$demo" --json >/dev/null
"$work/venv/bin/edge-audio" listen --demo --json | "$work/venv/bin/python" -c '
import json, sys
summary = [json.loads(line) for line in sys.stdin][-1]
f1 = summary["score"]["f1"]
assert f1 >= 0.9, f"demo F1 {f1:.3f} from the wheel, expected >= 0.9"
print(f"wheel-check: listen --demo from the wheel: F1 {f1:.3f}")
'
"$work/venv/bin/edge-audio" bench --model fsdd-digits --no-baseline --runs 20 --warmup 2 \
  --loop-seconds 2 --cold-starts 1 --rounds 1 --out "$work/bench" >/dev/null
test -s "$work/bench/bench.json"
echo "wheel-check: bench's child processes ran from the wheel"
