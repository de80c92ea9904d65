#!/usr/bin/env bash
# Regenerates fuzz/seeds/checkpoint/: real `loom train` checkpoints of
# model.loom (Adam with a constant and a plateau schedule, SGD with momentum
# and a step schedule), which fuzz/CheckpointSpec.h describes. Run it after
# a change to the checkpoint format; CheckpointTest checks that they load.
# usage: fuzz/checkpoint-model/make-seeds.sh [path/to/loom]
set -euo pipefail
cd "$(dirname "$0")/../.."
LOOM=${1:-build/bin/loom}
out=fuzz/seeds/checkpoint
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'abcd abcd bad cab da cab dad ab' > "$tmp/corpus.txt"
train() {
  "$LOOM" train fuzz/checkpoint-model/model.loom --data "$tmp/corpus.txt" \
    --checkpoint "$tmp/$1.safetensors" "${@:2}" > /dev/null
  cp "$tmp/$1.safetensors" "$out/$1.safetensors"
}
mkdir -p "$out"
train adam --steps 3 --seed 1
train adam-plateau --steps 4 --lr-schedule plateau --valid-fraction 0.3 --eval-every 2 --eval-batch-size 2
train sgd-step --steps 5 --optimizer sgd --lr 0.5 --momentum 0.9 --lr-schedule step --lr-step 2
