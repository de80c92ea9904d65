#!/usr/bin/env bash
# Runs one gradient golden case with `loom grad` and compares the loss and
# every parameter's gradient with PyTorch at DESIGN.md's gradient tolerance
# (rtol 1e-3, atol 1e-6; the loss at the forward tolerance).
# usage: run-grad-case.sh CASE_DIR OUT_DIR [extra loom grad flags...]
set -euo pipefail
case_dir=$1; out=$2; shift 2
args=()
for f in "$case_dir"/inputs/*.npy; do
  args+=(--input "$(basename "$f" .npy)=$f")
done
rm -rf "$out" && mkdir -p "$out"
loom grad "$case_dir/model.loom" --weights "$case_dir/weights.safetensors" \
  "${args[@]}" -o "$out/grads.safetensors" "$@" > "$out/stdout.txt"
cat "$out/stdout.txt"
# "loss: X" -> loss.npy, compared with the PyTorch loss.
python3 - "$out" <<'PY'
import struct, sys
out = sys.argv[1]
loss = float(open(out + "/stdout.txt").read().split("loss:")[1].split()[0])
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"
header += " " * (63 - (len(header) + 10) % 64) + "\n"
with open(out + "/loss.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack("<f", loss))
PY
npy-allclose "$case_dir/expected/loss.npy" "$out/loss.npy" --rtol 1e-4 --atol 1e-5
npy-allclose "$case_dir/expected/grads.safetensors" "$out/grads.safetensors" --rtol 1e-3 --atol 1e-6
