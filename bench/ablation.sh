#!/usr/bin/env bash
# The ablation: each optimization left out in turn (loom-bench
# --disable-pass), one thread, on batch-1 inferences (C1, C2), a large-batch
# training step (C3), the word LM (C7) and an LSTM written one gate at a
# time (U1-gates, the case loom-fuse-gate-matmuls exists for). Each run
# without a pass comes right after a run of the full pipeline (peer
# "baseline for PASS"), and the report compares the two: this machine's
# speed drifts by 20% or more over minutes, more than several passes are
# worth. Writes $OUT_DIR/ablation.jsonl; run by bench/run.sh, or alone
# before bench/report.py.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-build/bench}
CONFIGS=${CONFIGS:-C1,C2,C3,C7,U1}
BIN=build/bin/loom-bench
M=bench/models
mkdir -p "$OUT"
: > "$OUT/ablation.jsonl"
for spec in "C1|C1.loom --T 100 --B 1" "C2|C2.loom --T 25 --B 1" "C3|C3.loom --mode=train --T 50 --B 32" \
    "C7|C7.loom --mode=train --T 35 --B 20 --optimizer sgd --clip" \
    "U1-gates|U1-gates.loom --T 50 --B 32"; do
  cid=${spec%%|*}
  [[ ",$CONFIGS," == *",${cid%%-*},"* ]] || continue
  for pass in loom-fuse-gate-matmuls loom-hoist-input-projection \
      loom-merge-weight-gradients loom-unroll-time linalg-fuse-elementwise-ops \
      loom-fuse-matmul-epilogues loom-collapse-contraction-dims loom-pack-weights \
      loom-vectorize-contractions; do
    [[ $pass == loom-merge-weight-gradients && $spec != *train* ]] && continue  # no backward
    echo "[bench] ablation: $cid without $pass" >&2
    for peer in "baseline for $pass" "without $pass"; do
      disable=$pass
      [[ $peer == baseline* ]] && disable=none
      # shellcheck disable=SC2086
      "$BIN" $M/${spec#*|} --cid "$cid" --peer "$peer" --bench-threads 1 \
        --disable-pass "$disable" --warmup 2 --reps 5 --min-seconds 1 >> "$OUT/ablation.jsonl"
    done
  done
done
