#!/usr/bin/env bash
# Installs loom into a fresh prefix, builds examples/host against the
# installed package (find_package(loom), loom::loom) and checks that its
# streamed greedy continuation equals `loom sample --temperature 0`.
# usage: host-example.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
src=$1; build=$2; work=$3
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/loom/loom.hpp"
test -f "$work/prefix/include/loom/loom.h"
test -f "$work/prefix/lib/cmake/loom/loomConfig.cmake"
cmake -S "$src/examples/host" -B "$work/host" -G Ninja \
  -DCMAKE_CXX_COMPILER="${CXX:-clang++-22}" \
  -DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld \
  -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/host" > "$work/build.log"
charlm=$src/examples/charlm
prompt="It is a truth univer"
"$work/host/host" "$charlm/charlm.loom" "$charlm/charlm.safetensors" \
  "$charlm/vocab.json" "$prompt" 60 > "$work/host.txt"
"$build/bin/loom" sample "$charlm/charlm.loom" \
  --weights "$charlm/charlm.safetensors" --vocab "$charlm/vocab.json" \
  --prompt "$prompt" --tokens 60 --temperature 0 --threads 1 > "$work/sample.txt"
cat "$work/host.txt"
diff "$work/sample.txt" "$work/host.txt"
# The example links only libloom (and what it needs): no static loom code.
! nm -C "$work/host/host" | grep -q "loom::JitModel"
echo "host example: same text as loom sample"
