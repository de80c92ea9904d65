#!/usr/bin/env bash
# Runs a replay executable (loom-replay-NAME) on the seeds and regression
# inputs of fuzz target NAME; ctest's fuzz-replay-NAME.
# usage: fuzz/replay.sh BIN NAME
set -euo pipefail
bin=$1
cd "$(dirname "$0")/.."
mapfile -t inputs < <(fuzz/seeds.sh "$2")
exec "$bin" "${inputs[@]}"
