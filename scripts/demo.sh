#!/usr/bin/env bash
# make demo: the main job on the bundled data. Each step is skipped when its output is already there, so a re-run
# only re-benchmarks. Outputs: datasets/bundled/, artifacts/data/, artifacts/train/, artifacts/export/, artifacts/bench/.
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
student=artifacts/train/student-quick/model
[ -f "$student/weights.safetensors" ] || ffc train --config recipes/student-quick.yaml --resume

mkdir -p artifacts/export
ffc info "$teacher" | tail -n 12
ffc info "$student" | tail -n 12
ffc export "$teacher" -o artifacts/export/teacher-128.onnx
ffc export "$student" -o artifacts/export/student-128.onnx
ffc export "$student" -o artifacts/export/student-128-fp16.onnx --precision fp16
ffc bench artifacts/export/teacher-128.onnx --reference "$teacher"
ffc bench artifacts/export/student-128.onnx --reference "$student" --teacher artifacts/export/teacher-128.onnx
ffc bench artifacts/export/student-128-fp16.onnx --reference "$student" --teacher artifacts/export/teacher-128.onnx
echo "demo: report in artifacts/bench/bench.md (plots beside it)"

# The closed loop at small scale: prune the teacher, distil a student, quantize, export, bench, report.
ffc run recipes/demo.yaml --teacher "$teacher"
echo "demo: closed-loop report in artifacts/demo/06-report/report.md (a reduced run: see recipes/demo.yaml)"
