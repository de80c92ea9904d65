#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz/ (clang-22; every loom library
# built with AddressSanitizer, UndefinedBehaviorSanitizer and coverage) and
# fuzzes each one from its seeds (fuzz/seeds.sh), failing on any finding.
#
#   scripts/fuzz.sh                  # CI: each target deterministically,
#                                    # -seed=1 and a fixed number of runs
#                                    # (about a minute each on this VM)
#   FUZZ_TIME=3600 scripts/fuzz.sh   # a campaign: each target for an hour
#                                    # from a random seed
#
# Knobs: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_TARGETS (default: all),
# FUZZ_RUNS, FUZZ_TIME, JOBS. New inputs go to $FUZZ_BUILD_DIR/corpus/NAME;
# a crash leaves crash-* there, to be minimized into
# fuzz/regressions/NAME/ after the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${FUZZ_BUILD_DIR:-build-fuzz}
TARGETS=${FUZZ_TARGETS:-npy safetensors textdata checkpoint frontend}
scripts/configure.sh "$B" -DLOOM_FUZZ=ON > /dev/null
bins=()
for t in $TARGETS; do bins+=("loom-fuzz-$t"); done
cmake --build "$B" -j "${JOBS:-$(nproc)}" --target "${bins[@]}"
for t in $TARGETS; do
  corpus=$B/corpus/$t
  seeds=$B/seeds/$t
  rm -rf "$seeds" && mkdir -p "$corpus" "$seeds"
  while read -r f; do cp "$f" "$seeds/"; done < <(fuzz/seeds.sh "$t")
  if [ -n "${FUZZ_TIME:-}" ]; then
    limit=(-max_total_time="$FUZZ_TIME")
  else
    rm -rf "$corpus" && mkdir -p "$corpus"
    # Runs per target: about 50 s each at the rates measured here (npy
    # 75k/s, safetensors 16k/s, checkpoint 9k/s, textdata 0.8k/s,
    # frontend 1.1k/s).
    case $t in
      npy) runs=3000000 ;; safetensors) runs=800000 ;;
      checkpoint) runs=400000 ;; textdata) runs=40000 ;; *) runs=50000 ;;
    esac
    limit=(-seed=1 -runs="${FUZZ_RUNS:-$runs}")
  fi
  echo "[fuzz] $t: ${limit[*]}" >&2
  # -max_len bounds one input (4 KiB: enough for every header and model);
  # -rss_limit_mb and -timeout turn memory blow-ups and hangs into findings.
  (cd "$B" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "bin/loom-fuzz-$t" "${limit[@]}" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 "corpus/$t" "seeds/$t") 2>&1 | tail -n 25 >&2
done
echo "[fuzz] no findings" >&2
