#!/usr/bin/env bash
# make demo: the main job on the bundled data. Steps whose outputs exist are skipped (data preparation is a no-op
# while its inputs are unchanged; the recipe resumes stage by stage), so a re-run is quick.
# Outputs: datasets/bundled/, artifacts/data/, artifacts/train/ (when a teacher must be trained), artifacts/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
ffc() { dotnet src/FaceFusion.Compress.Cli/bin/Release/net10.0/ffc.dll "$@"; }

ffc data prepare
ffc data stats

teacher=datasets/pretrained/teacher-128
if [ ! -f "$teacher/weights.safetensors" ]; then
  teacher=artifacts/train/teacher-quick/model
  if [ ! -f "$teacher/weights.safetensors" ]; then
    echo "demo: no kept teacher in datasets/pretrained/teacher-128; training a short one (recipes/teacher-quick.yaml)"
    ffc train --config recipes/teacher-quick.yaml --resume
  fi
fi
ffc info "$teacher" | tail -n 9
ffc info student | tail -n 10

# The closed loop at small scale: prune the teacher, distil a student, quantize, export, bench, report.
ffc run recipes/demo.yaml --teacher "$teacher"
cat artifacts/demo/*-report/report.csv
echo "demo: report in artifacts/demo/06-report/report.md; bench details in artifacts/demo/05-bench/bench.md"
