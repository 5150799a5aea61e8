#!/usr/bin/env bash
# Which of the device install's packages have wheels for a board's system on the
# package index: 64-bit Raspberry Pi OS (aarch64, glibc 2.36) and 32-bit
# (armv7l). Prints one line per package; nothing is installed. The README's
# "Boards and systems" table comes from this.
set -uo pipefail
PY=${PY:-python3}
PYVER=${PYVER:-3.11}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
declare -A PLATFORMS=(
  [aarch64]="manylinux_2_36_aarch64 manylinux_2_34_aarch64 manylinux_2_31_aarch64 manylinux_2_28_aarch64 manylinux_2_27_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64 linux_aarch64"
  [armv7l]="manylinux_2_36_armv7l manylinux_2_31_armv7l manylinux_2_28_armv7l manylinux_2_17_armv7l manylinux2014_armv7l linux_armv7l"
)
for arch in aarch64 armv7l; do
  flags=(); for p in ${PLATFORMS[$arch]}; do flags+=(--platform "$p"); done
  for pkg in numpy scipy ai-edge-litert onnxruntime tflite-runtime; do
    if out=$("$PY" -m pip download -q --no-deps --only-binary=:all: "${flags[@]}" \
        --python-version "$PYVER" -d "$tmp/$arch" "$pkg" 2>&1); then
      echo "$arch python$PYVER $pkg: $(ls "$tmp/$arch" | grep -i "^${pkg//-/_}-" | head -1)"
    else
      echo "$arch python$PYVER $pkg: no wheel"
    fi
  done
done
