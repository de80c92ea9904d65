#!/usr/bin/env bash
# Builds loom and runs every test suite (GoogleTest units and lit) through
# ctest, then fuzzes every reader and the frontend deterministically for
# about a minute each (scripts/fuzz.sh; SKIP_FUZZ=1 leaves it out), then
# runs the unit and CLI tests under ASan + UBSan (scripts/sanitize.sh;
# SKIP_SANITIZE=1 leaves it out).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "${JOBS:-$(nproc)}"
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz.sh
fi
if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  scripts/sanitize.sh
fi
