#!/usr/bin/env bash
# Configures a build directory once (clang-22, lld, Ninja, Debian's LLVM/MLIR
# 22), with extra CMake options: the normal build (scripts/build.sh), the
# fuzz build (scripts/fuzz.sh, -DLOOM_FUZZ=ON) and the sanitizer build
# (scripts/sanitize.sh, -DLOOM_SANITIZE=ON). A configured directory is left
# as it is.
# usage: scripts/configure.sh DIR [CMAKE-OPTION...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
shift
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld -DCMAKE_SHARED_LINKER_FLAGS=-fuse-ld=lld \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit "$@"
fi
