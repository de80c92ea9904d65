#!/usr/bin/env bash
# Configures (once) and builds loom in ./build with clang-22, lld and Ninja.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
scripts/configure.sh "$BUILD_DIR"
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}"
