#!/usr/bin/env bash
# On a fresh Debian 12 machine: install the packages, build loom, train a
# character-level LSTM on an excerpt of Pride and Prejudice (examples/charlm)
# for under a minute with the compiled training step, and let it continue a
# sentence. Then the same prompt through the model trained offline for longer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
out=build/quickstart
mkdir -p "$out"
build/bin/loom train examples/charlm/charlm-train.loom \
  --data examples/charlm/corpus.txt --checkpoint "$out/charlm.safetensors" --seed 1
build/bin/loom sample examples/charlm/charlm-train.loom \
  --weights "$out/charlm.safetensors" \
  --prompt "It is a truth universally acknowledged" \
  --tokens 300 --temperature 0.8 --seed 1
echo
echo "--- the same model trained offline for longer (examples/charlm/charlm.safetensors):"
build/bin/loom sample examples/charlm/charlm.loom \
  --weights examples/charlm/charlm.safetensors --vocab examples/charlm/vocab.json \
  --prompt "It is a truth universally acknowledged" \
  --tokens 300 --temperature 0.8 --seed 1
