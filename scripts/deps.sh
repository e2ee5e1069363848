#!/usr/bin/env bash
# deps.sh: installs the Debian packages Tessera builds and tests with, those
# missing only (apt-get needs root; without it, prints the command to run).
#   scripts/deps.sh          install what is missing
#   scripts/deps.sh --check  exit 1 if something is missing, install nothing
set -euo pipefail
PACKAGES=(build-essential pkg-config libjansson-dev libsentencepiece-dev sentencepiece libcriterion-dev
          libuv1-dev node-llhttp libopenmpi-dev openmpi-bin libxxhash-dev python3 python3-venv clang
          libclang-rt-dev libpcre2-dev libutf8proc-dev)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "${1:-}" = --check ] && exit 1
echo "deps: installing ${missing[*]}"
cmd=(apt-get install -y -q "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: not root: run  sudo apt-get update && sudo ${cmd[*]}" >&2
    exit 1
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive "${cmd[@]}"
