#!/usr/bin/env bash
# Runs one golden case with `loom run` and compares every output with the
# PyTorch result at DESIGN.md's forward tolerance (rtol 1e-4, atol 1e-5).
# usage: run-case.sh CASE_DIR OUT_DIR [extra loom run flags...]
set -euo pipefail
case_dir=$1; out=$2; shift 2
args=()
for f in "$case_dir"/inputs/*.npy; do
  args+=(--input "$(basename "$f" .npy)=$f")
done
rm -rf "$out"
loom run "$case_dir/model.loom" --weights "$case_dir/weights.safetensors" \
  "${args[@]}" --output-dir "$out" "$@"
npy-allclose "$case_dir/expected" "$out" --rtol 1e-4 --atol 1e-5
