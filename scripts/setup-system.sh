#!/usr/bin/env bash
# System prerequisites for FaceFusion.Compress, idempotent.
#  1. TorchSharp 0.107.0's native library needs GLIBCXX_3.4.32 (libstdc++ from GCC >= 13). Debian 12 ships
#     GCC 12's, so on Debian 12 we take libstdc++6 from Debian 13 (trixie) with an apt pin at priority 100,
#     on the same mirror the machine already uses. Ubuntu 24.04+/Debian 13 already have it: nothing happens.
#  2. ffmpeg (frame extraction and video re-muxing).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

libstdcxx_path() {
  local p
  for p in /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib/aarch64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6; do
    [ -e "$p" ] && { readlink -f "$p"; return 0; }
  done
  ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 /{print $NF; exit}'
}

has_glibcxx_3_4_32() {
  local lib; lib=$(libstdcxx_path)
  [ -n "$lib" ] && grep -aq 'GLIBCXX_3\.4\.32' "$lib"
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
}

# The URI of the machine's existing Debian source (deb822 or one-line format), never a hard-coded host.
debian_mirror_uri() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    uri=$(awk '/^URIs:/{print $2}' "$f" | grep -v -- '-security' | grep -E '/debian/?$' | head -n1 || true)
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    uri=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' "$f" | grep -E '/debian/?$' | head -n1 || true)
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  return 1
}

if has_glibcxx_3_4_32; then
  echo "setup: libstdc++ provides GLIBCXX_3.4.32"
else
  . /etc/os-release
  if [ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ]; then
    uri=$(debian_mirror_uri) || { echo "setup: cannot find the Debian mirror in /etc/apt sources" >&2; exit 1; }
    echo "setup: Debian 12 without GLIBCXX_3.4.32: installing libstdc++6 from trixie via $uri (pinned at 100)"
    $SUDO tee /etc/apt/sources.list.d/ffc-trixie.sources >/dev/null <<SRC
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $SUDO tee /etc/apt/preferences.d/ffc-trixie-pin >/dev/null <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    apt_update_once
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t trixie libstdc++6 >/dev/null
    has_glibcxx_3_4_32 || { echo "setup: libstdc++6 from trixie still lacks GLIBCXX_3.4.32" >&2; exit 1; }
  else
    echo "setup: warning: libstdc++ lacks GLIBCXX_3.4.32 and this is not Debian 12 (${PRETTY_NAME:-unknown});" \
         "TorchSharp 0.107.0 will not load until a libstdc++ from GCC >= 13 is installed" >&2
  fi
fi

if command -v ffmpeg >/dev/null 2>&1; then
  echo "setup: ffmpeg present"
else
  echo "setup: installing ffmpeg"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi

for tool in npm dotnet; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup: '$tool' is required but not on PATH" >&2; exit 1; }
done
