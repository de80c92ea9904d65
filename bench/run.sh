#!/usr/bin/env bash
# One command for the performance issue's benchmark: loom and its peers
# (PyTorch, oneDNN, ONNX Runtime, via ../shared/bench-peers) in the same run,
# on configurations C1-C8 and U1, then bench/report.py writes the table with
# medians, ratios and GFLOP/s into bench/RESULTS.md. Never part of the tests.
#
#   bench/run.sh                      # everything (~30 min on 2 cores)
#   CONFIGS=C1,C3 SKIP_PEERS=1 bench/run.sh   # loom only, some configs
#
# Knobs: OUT_DIR (default build/bench), CONFIGS, THREADS_LIST (default
# "1 2", loom and peers), REPS (peers, default 20),
# SKIP_PEERS=1 (reuse $OUT_DIR/peers from an earlier run), BENCH_PEERS (the
# peers' scripts, default ../shared/bench-peers), ABLATION=0 (skip the
# ablation).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-build/bench}
CONFIGS=${CONFIGS:-C1,C2,C3,C4,C5,C6,C7,C7m,C8,U1}
PEERS=${BENCH_PEERS:-$(cd .. && pwd)/shared/bench-peers}
mkdir -p "$OUT"
scripts/build.sh >/dev/null
BIN=build/bin/loom-bench
M=bench/models

# loom: one JSON line per configuration (bench-peers' raw format).
: > "$OUT/loom.jsonl"
run() { # CID MODEL ARGS...
  local cid=$1 model=$2
  shift 2
  [[ ",$CONFIGS," == *",${cid%%-*},"* ]] || return 0
  for t in ${THREADS_LIST:-1 2}; do
    echo "[bench] loom $cid, $t thread(s)" >&2
    "$BIN" "$M/$model" --cid "$cid" --bench-threads "$t" "$@" >> "$OUT/loom.jsonl"
  done
}
run C1 C1.loom --T 100 --B 1
run C2 C2.loom --T 25 --B 1
run C3 C3.loom --mode=train --T 50 --B 32 --reps 5
run C4 C4.loom --mode=train --T 50 --B 32 --reps 5
run C5 C5.loom --mode=train --T 50 --B 32 --reps 5
run C6 C2.loom --T 50 --B 64 --reps 5
# bf16 weight storage (inference), with its largest output difference from
# the f32 code on the same inputs.
run C1-bf16 C1.loom --T 100 --B 1 --bf16
run C2-bf16 C2.loom --T 25 --B 1 --bf16
run C6-bf16 C2.loom --T 50 --B 64 --reps 5 --bf16
run C7 C7.loom --mode=train --T 35 --B 20 --optimizer sgd --clip --reps 10
run C7m C7m.loom --mode=train --T 35 --B 20 --optimizer sgd --clip --reps 5
run C8 C8.loom --mode=train --T 100 --B 32 --optimizer adam --reps 5
run U1-peephole-infer U1-peephole.loom --T 50 --B 32 --reps 5
run U1-peephole-train U1-peephole.loom --mode=train --T 50 --B 32 --reps 5
run U1-layernorm-infer U1-layernorm.loom --T 50 --B 32 --reps 5
run U1-layernorm-train U1-layernorm.loom --mode=train --T 50 --B 32 --reps 5
run U1-lstm-infer C3.loom --T 50 --B 32 --reps 5
run U1-lstm-train C3.loom --mode=train --T 50 --B 32 --reps 5

# The memory bound of batch 1: the time to stream the recurrent weights a
# step reads (packed W_hh, [4H/16, H, 16] floats, or bf16 halves) once per
# step, T steps,
# split between the threads as loom splits them (bench/stream-read.cpp).
: > "$OUT/stream.jsonl"
for spec in "C1 $((4 * 256 * 256 * 4)) 100" "C2 $((4 * 1024 * 1024 * 4)) 25" \
    "C1-bf16 $((4 * 256 * 256 * 2)) 100" "C2-bf16 $((4 * 1024 * 1024 * 2)) 25"; do
  read -r cid bytes steps <<< "$spec"
  [[ ",$CONFIGS," == *",${cid%%-*},"* ]] || continue
  for t in ${THREADS_LIST:-1 2}; do
    echo "[bench] streaming-read bound of $cid, $t thread(s)" >&2
    build/bin/loom-stream-read --cid "$cid" --bytes "$bytes" --passes "$steps" \
      --bench-threads "$t" >> "$OUT/stream.jsonl"
  done
done

# Compile latency through the embedding API: cold, and from the compile
# cache (bench/compile-latency.cpp).
: > "$OUT/compile.jsonl"
for spec in "C1 C1.loom" "C7-infer C7.loom" "C7 C7.loom --train"; do
  read -r cid model flag <<< "$spec"
  [[ ",$CONFIGS," == *",${cid%%-*},"* ]] || continue
  echo "[bench] compile latency of $cid" >&2
  build/bin/loom-compile-latency "$M/$model" --cid "$cid" $flag >> "$OUT/compile.jsonl"
done

# The ablation (ABLATION=0 skips it): bench/ablation.sh.
if [[ "${ABLATION:-1}" == 1 ]]; then
  OUT_DIR="$OUT" CONFIGS="$CONFIGS" bench/ablation.sh
fi

# The peers, in the same run.
if [[ "${SKIP_PEERS:-0}" != 1 ]]; then
  peer_configs=$(echo "$CONFIGS" | tr ',' '\n' | grep -v '^U1$' | paste -sd, -)
  # bench-peers' FMA-peak probe is AVX-512 code (an illegal instruction on
  # AVX2 hosts): there, skip its references and measure the square sgemm
  # references here with its own sgemm_bench (OpenBLAS and oneDNN).
  skip_refs=0
  grep -qw avx512f /proc/cpuinfo || skip_refs=1
  OUT_DIR="$OUT/peers" CONFIGS="$peer_configs" REPS="${REPS:-20}" SKIP_REFS=$skip_refs \
    bash "$PEERS/run.sh" >&2
  if [[ $skip_refs == 1 ]]; then
    SG=${PERF_BUILD_DIR:-/var/tmp/rnn-perf-anchors}/sgemm_bench
    ARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
    for t in ${THREADS_LIST:-1 2}; do
      echo "[bench] sgemm references, $t thread(s)" >&2
      env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
        "$SG" openblas "/usr/lib/$ARCH/openblas-pthread/libopenblas.so.0" "$t" 20 \
        "2048,2048,2048,square2048;1024,1024,1024,square1024" >> "$OUT/peers/raw/sgemm_openblas.jsonl"
      env OMP_NUM_THREADS=$t "$SG" dnnl "/usr/lib/$ARCH/libdnnl.so.2" "$t" 20 \
        "2048,2048,2048,square2048" >> "$OUT/peers/raw/sgemm_dnnl.jsonl"
    done
  fi
  # U1's peers: the same cells in TorchScript (bench/torch_cells.py), after
  # bench-peers (which clears raw/ when it starts).
  mkdir -p "$OUT/peers/raw"
  if [[ ",$CONFIGS," == *",U1,"* ]]; then
    : > "$OUT/peers/raw/u1_torchscript.jsonl"
    for t in ${THREADS_LIST:-1 2}; do
      echo "[bench] TorchScript cells (U1), $t thread(s)" >&2
      OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t MKL_NUM_THREADS=$t /usr/bin/python3 \
        bench/torch_cells.py --threads "$t" --reps "${REPS:-20}" --peers "$PEERS" \
        >> "$OUT/peers/raw/u1_torchscript.jsonl"
    done
  fi
fi

isa=AVX2
grep -qw avx512f /proc/cpuinfo && isa=AVX-512
host="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $isa, $(nproc) cores"
python3 bench/report.py "$OUT" "$PEERS" \
  "REPS=${REPS:-20} THREADS_LIST=\"${THREADS_LIST:-1 2}\" bench/run.sh (CONFIGS=$CONFIGS; host: $host)" > bench/RESULTS.md
echo "[bench] wrote bench/RESULTS.md" >&2
