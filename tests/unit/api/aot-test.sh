#!/usr/bin/env bash
# Ahead-of-time: `loom compile --emit=obj` and `--emit=header` for the
# character LM, linked into a C program (AotMain.c) with libloom_runtime.a
# only (no LLVM, MLIR or libloom at run time), run with weights read at run
# time and with weights embedded in the object, and compared with the JIT
# (`loom run`) on the same inputs at DESIGN.md's 1e-6 relative.
# usage: aot-test.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
src=$1; build=$2; work=$3
loom=$build/bin/loom
allclose=$build/bin/npy-allclose
charlm=$src/examples/charlm
rm -rf "$work" && mkdir -p "$work"
"$loom" compile "$charlm/charlm.loom" --emit=header -o "$work/charlm.h"
"$loom" compile "$charlm/charlm.loom" --emit=obj -o "$work/charlm.o"
"$loom" compile "$charlm/charlm.loom" --emit=obj \
  --embed-weights "$charlm/charlm.safetensors" -o "$work/charlm-embedded.o"
for variant in runtime embedded; do
  obj=$work/charlm.o
  [ "$variant" = embedded ] && obj=$work/charlm-embedded.o
  "${CC:-clang-22}" -std=c99 -O1 -Wall -Wextra -Werror -I"$work" \
    "$src/tests/unit/api/AotMain.c" "$obj" "$build/runtime/libloom_runtime.a" \
    -lstdc++ -lpthread -lm -fuse-ld=lld -o "$work/aot-$variant"
  if ldd "$work/aot-$variant" | grep -E "libLLVM|libMLIR|libloom"; then
    echo "the AOT program must not need LLVM, MLIR or libloom" >&2
    exit 1
  fi
  mkdir -p "$work/$variant"
  if [ "$variant" = runtime ]; then
    "$work/aot-$variant" "$work/$variant" "$charlm/charlm.safetensors"
  else
    "$work/aot-$variant" "$work/$variant"
  fi
  "$loom" run "$charlm/charlm.loom" --weights "$charlm/charlm.safetensors" \
    --input tokens="$work/$variant/tokens.npy" --input h0="$work/$variant/h0.npy" \
    --input c0="$work/$variant/c0.npy" --output-dir "$work/$variant/jit" --threads 1
  for out in logits h_n c_n; do
    "$allclose" "$work/$variant/jit/$out.npy" "$work/$variant/$out.npy" \
      --rtol 1e-6 --atol 1e-7
  done
done
# Without embedded weights, init(NULL) is refused.
if "$work/aot-runtime" "$work/runtime" 2> "$work/refused.txt"; then
  echo "init without weights should fail" >&2
  exit 1
fi
grep -q "CharLM_init: -1" "$work/refused.txt"
echo "AOT: both variants match the JIT"
