#!/usr/bin/env bash
# Real Arm code, emulated: the device runtime runs on aarch64 under qemu user-mode
# emulation over the demo recording, and must emit the same events as on x86 with
# probabilities within 1e-4 (fp32) and 1/255 (int8). Everything it builds is cached
# under build/arm64, so a second run only re-runs the check.
#
# A Debian bookworm arm64 root made with debootstrap (first stage only: its packages
# are unpacked, and aarch64 programs are started through qemu-aarch64-static with -L,
# so no binfmt_misc registration is needed), plus the aarch64 wheels of numpy, scipy
# and ai-edge-litert installed with pip --platform.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
ARM=build/arm64
PY=${PY:-.venv-device/bin/python}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# ai-edge-litert 2.x's aarch64 wheel segfaults while creating the interpreter under
# Debian bookworm's qemu 7.2; 1.4.0 runs there. The x86 side keeps its own version.
ARM_LITERT=${ARM_LITERT:-ai-edge-litert==1.4.0}

scripts/install-system-packages.sh debootstrap qemu-user-static
[ -x "$PY" ] || make .venv-device/.installed
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if [ ! -x "$ARM/root/usr/bin/python3.11" ]; then
  echo "== debootstrap: Debian bookworm arm64 with python3 into $ARM/root"
  $sudo rm -rf "$ARM/root"
  mkdir -p "$ARM"
  $sudo debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 \
    bookworm "$ARM/root" "$MIRROR" >"$ARM/debootstrap.log"
  for deb in "$ARM"/root/var/cache/apt/archives/*.deb; do
    $sudo dpkg-deb -x "$deb" "$ARM/root"
  done
fi

if [ ! -f "$ARM/site/.installed" ]; then
  echo "== aarch64 wheels into $ARM/site (same numpy and scipy versions as x86)"
  numpy=$("$PY" -c "import numpy; print(numpy.__version__)")
  scipy=$("$PY" -c "import scipy; print(scipy.__version__)")
  platforms=()
  for v in 17 24 27 28 31 34 35 36; do platforms+=(--platform "manylinux_2_${v}_aarch64"); done
  rm -rf "$ARM/site"
  if ! "$PY" -m pip install -q --target "$ARM/site" "${platforms[@]}" \
    --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp --abi cp311 \
    --only-binary=:all: "numpy==$numpy" "scipy==$scipy" "$ARM_LITERT" >"$ARM/pip.log" 2>&1; then
    cat "$ARM/pip.log" >&2
    exit 1
  fi
  touch "$ARM/site/.installed"
fi

echo "== the demo through every shipped model (tflite fp32 and int8) on x86_64"
"$PY" scripts/arm_check.py run --out "$ARM/x86_64.json"
echo "== the same on aarch64 under qemu (minutes: every instruction is emulated)"
arm_start=$SECONDS
rm -f "$ARM/aarch64.json"
if ! PYTHONPATH="$ARM/site" qemu-aarch64-static -L "$ARM/root" "$ARM/root/usr/bin/python3.11" \
  scripts/arm_check.py run --out "$ARM/aarch64.json" >"$ARM/aarch64.log" 2>&1; then
  cat "$ARM/aarch64.log" >&2
  exit 1
fi
grep -v "XNNPACK delegate" "$ARM/aarch64.log"
echo "   aarch64 run: $((SECONDS - arm_start)) s"
"$PY" scripts/arm_check.py compare "$ARM/x86_64.json" "$ARM/aarch64.json"
echo "arm check: $((SECONDS - start)) s in all"
