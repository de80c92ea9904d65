#!/usr/bin/env bash
# On a fresh Debian 12 machine: install the packages, build loom, and let the
# JIT-compiled character LSTM (examples/charlm, trained offline on Pride and
# Prejudice) continue a sentence.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build/bin/loom sample examples/charlm/charlm.loom \
  --weights examples/charlm/charlm.safetensors --vocab examples/charlm/vocab.json \
  --prompt "It is a truth universally acknowledged" \
  --tokens 400 --temperature 0.8 --seed 1
