#!/usr/bin/env bash
# Prints the seed inputs of fuzz target NAME (paths from the repository
# root): the test fixtures and examples of its file format, plus
# fuzz/seeds/NAME/ and the regressions in fuzz/regressions/NAME/.
# usage: fuzz/seeds.sh NAME
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
case "$1" in
  npy) files=(tests/unit/runtime/data/*.npy tests/golden/*/inputs/*.npy
              tests/golden/*/expected/*.npy examples/charlm/reference/*.npy) ;;
  safetensors) files=(tests/unit/runtime/data/*.safetensors tests/golden/*/*.safetensors
                      tests/golden/*/expected/*.safetensors) ;;
  textdata) files=(examples/charlm/vocab.json fuzz/seeds/textdata/*) ;;
  checkpoint) files=() ;; # fuzz/seeds/checkpoint/ (make-seeds.sh)
  frontend) files=(tests/golden/*/model.loom examples/*/*.loom bench/models/*.loom
                   tests/lit/cli/Inputs/*.loom frontend/Prelude.loom) ;;
  *) echo "unknown fuzz target '$1' (npy, safetensors, textdata, checkpoint, frontend)" >&2; exit 1 ;;
esac
files+=(fuzz/seeds/"$1"/* fuzz/regressions/"$1"/*)
printf '%s\n' "${files[@]}" | sort -u
