#!/usr/bin/env bash
# Debian packages the tests need: portaudio19-dev to build pyaudio (the `mic` extra);
# pulseaudio, pulseaudio-utils and libasound2-plugins for a virtual microphone;
# sysbench, the like-for-like CPU score that scales firmware_sim's board profiles.
# Installs only what is missing, so a second run costs nothing.
set -euo pipefail
packages=(portaudio19-dev pulseaudio pulseaudio-utils libasound2-plugins sysbench "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
