#!/usr/bin/env bash
# The swapping teacher trains over many sessions and machines. Its progress travels in git as a weights-only
# checkpoint (generator + discriminator, no Adam moments: ≤ 20 MB) in datasets/pretrained/swap-teacher-128-progress/.
#   scripts/swap-teacher-progress.sh save    copy the latest local checkpoint, logs and newest sample grid there
#   scripts/swap-teacher-progress.sh train   continue training: from the local checkpoint if there is one, else from
#                                            the committed progress (fresh Adam moments, noted in train.log)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
config=recipes/swap-teacher-128.yaml
run=artifacts/train/swap-teacher-128
kept=datasets/pretrained/swap-teacher-128-progress
ffc=${FFC:-dotnet src/FaceFusion.Compress.Cli/bin/Release/net10.0/ffc.dll}
case "${1:-}" in
  save)
    [ -f "$run/checkpoints/latest" ] || { echo "$run: no checkpoint to save" >&2; exit 1; }
    latest=$run/checkpoints/$(cat "$run/checkpoints/latest")
    stage=$(mktemp -d "$(dirname "$kept")/.progress.XXXXXX")
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/checkpoint"
    for f in weights.safetensors discriminator.safetensors graph.json state.json; do cp "$latest/$f" "$stage/checkpoint/"; done
    cp "$run/train_log.csv" "$run/train.log" "$config" "$stage/"
    sample=$(ls "$run"/samples/step-*.png 2>/dev/null | tail -n1 || true)
    [ -n "$sample" ] && cp "$sample" "$stage/"
    echo "$(basename "$latest")" > "$stage/checkpoint/NAME"
    rm -rf "$kept" && mv "$stage" "$kept"
    trap - EXIT
    echo "saved $(basename "$latest") to $kept ($(du -sh "$kept" | cut -f1))";;
  train)
    if [ ! -f "$run/checkpoints/latest" ] && [ -f "$kept/checkpoint/NAME" ]; then
      name=$(cat "$kept/checkpoint/NAME")
      mkdir -p "$run/checkpoints/$name"
      cp "$kept"/checkpoint/{weights.safetensors,discriminator.safetensors,graph.json,state.json} "$run/checkpoints/$name/"
      cp "$kept/train_log.csv" "$kept/train.log" "$run/"
      echo "$name" > "$run/checkpoints/latest"
      echo "seeded $run from $kept ($name)"
    fi
    exec $ffc train --config "$config" --resume;;
  *) echo "usage: $0 save|train" >&2; exit 2;;
esac
