#!/usr/bin/env bash
# Builds loom with AddressSanitizer + UndefinedBehaviorSanitizer in
# build-asan/ (only what the tests below need) and runs the GoogleTest units
# and the CLI lit tests (tests/lit/cli, which use loom, loom-opt and
# npy-allclose) under them. Any report fails the run:
# UBSan halts on the first error, ASan on any memory error or leak.
#
#   scripts/sanitize.sh          # CI (scripts/test.sh runs it; SKIP_SANITIZE=1 skips)
#
# Knobs: SAN_BUILD_DIR (default build-asan), JOBS, LOOM_DIFF_COUNT (random
# models in the differential test; 8 here, 100 in the normal build: the
# interpreter runs about 3x slower instrumented).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${SAN_BUILD_DIR:-build-asan}
scripts/configure.sh "$B" -DLOOM_SANITIZE=ON > /dev/null
# Longest first, so that the parallel runs end together.
units=(loom-passes-tests loom-api-tests loom-codegen-tests loom-runtime-tests)
cmake --build "$B" -j "${JOBS:-$(nproc)}" --target \
  "${units[@]}" loom-c-api-test loom loom-opt npy-allclose
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LOOM_DIFF_COUNT=${LOOM_DIFF_COUNT:-8}
# Each suite logs to $B/NAME.log; the GoogleTest binaries run $JOBS at a
# time (they are single-threaded), then lit runs the CLI tests on $JOBS
# workers.
run() {
  local name=$1
  shift
  local start=$SECONDS
  if "$@" > "$B/$name.log" 2>&1; then
    echo "[sanitize] $name: passed ($((SECONDS - start)) s)" >&2
  else
    echo "[sanitize] $name: FAILED ($((SECONDS - start)) s); the end of $B/$name.log:" >&2
    tail -n 60 "$B/$name.log" >&2
    return 1
  fi
}
jobs=${JOBS:-$(nproc)}
pids=()
status=0
for u in "${units[@]}" loom-c-api-test; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run "$u" "$(find "$B/tests/unit" -name "$u" -type f | head -n 1)" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
run lit-cli /usr/lib/llvm-22/bin/lit -sv -j "$jobs" "$B/tests/lit/cli" || status=1
if [ $status -ne 0 ]; then
  echo "[sanitize] failures above" >&2
  exit 1
fi
echo "[sanitize] no reports" >&2
