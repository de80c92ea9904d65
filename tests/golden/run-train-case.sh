#!/usr/bin/env bash
# Runs one training golden case with `loom train` (N steps from the case's
# initial weights, flags from CASE/flags.txt) and compares the loss of every
# step and the final parameters and optimizer state with PyTorch's trajectory
# at DESIGN.md's training tolerance (rtol 1e-4, atol 2e-5). Fails if the log
# does not hold exactly the steps 1..N of expected/losses.npy.
# A case with a dataset/ folder (named arrays: tokens, lengths, labels) trains
# with --dataset instead of --data CASE/tokens.npy.
# usage: run-train-case.sh CASE_DIR OUT_DIR [extra loom train flags...]
set -euo pipefail
case_dir=$1; out=$2; shift 2
rm -rf "$out" && mkdir -p "$out"
if [ -d "$case_dir/dataset" ]; then
  ds=$case_dir/dataset
  data=(--dataset "tokens=$ds/tokens.npy,lengths=$ds/lengths.npy,labels=$ds/labels.npy")
else
  data=(--data "$case_dir/tokens.npy")
fi
# shellcheck disable=SC2046  # flags.txt is a list of words
loom train "$case_dir/model.loom" "${data[@]}" \
  --weights "$case_dir/init.safetensors" --checkpoint "$out/ckpt.safetensors" \
  --log-every 1 --log-json "$out/log.jsonl" $(cat "$case_dir/flags.txt") "$@" \
  > "$out/stdout.txt"
# The "loss" of each JSON line that has one -> losses.npy (f32 [N]), in step order.
# Standard library only: CI's python3 has no numpy.
python3 - "$case_dir" "$out" <<'PY'
import json, re, struct, sys
case_dir, out = sys.argv[1], sys.argv[2]
with open(case_dir + "/expected/losses.npy", "rb") as f:
    raw = f.read()
assert raw[:6] == b"\x93NUMPY", "expected/losses.npy is not a .npy file"
hlen = struct.unpack("<H", raw[8:10])[0] if raw[6] == 1 else struct.unpack("<I", raw[8:12])[0]
head = raw[10 if raw[6] == 1 else 12:][:hlen].decode("latin1")
n = int(re.search(r"'shape':\s*\((\d+),\)", head).group(1))
flags = open(case_dir + "/flags.txt").read().split()
assert int(flags[flags.index("--steps") + 1]) == n, "flags.txt --steps differs from N"
steps, losses = [], []
for line in open(out + "/log.jsonl"):
    line = line.strip()
    if not line:
        continue
    rec = json.loads(line)
    if isinstance(rec, dict) and "loss" in rec:
        steps.append(rec.get("step"))
        losses.append(float(rec["loss"]))
if steps != list(range(1, n + 1)):
    print("log.jsonl: %d loss lines, steps %s; expected steps 1..%d  MISMATCH"
          % (len(steps), steps, n))
    sys.exit(1)
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % n
header += " " * (63 - (len(header) + 10) % 64) + "\n"
with open(out + "/losses.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack("<%df" % n, *losses))
print("steps: %d, loss first %.6g, min %.6g, max %.6g, last %.6g"
      % (n, losses[0], min(losses), max(losses), losses[-1]))
PY
rc=0
npy-allclose "$case_dir/expected/losses.npy" "$out/losses.npy" --rtol 1e-4 --atol 2e-5 || rc=1
npy-allclose "$case_dir/expected/final.safetensors" "$out/ckpt.safetensors" --rtol 1e-4 --atol 2e-5 || rc=1
exit $rc
