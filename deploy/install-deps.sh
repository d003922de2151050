#!/usr/bin/env bash
# Installs the Debian 12 packages vecscan builds and tests with. Idempotent: installs only what is
# missing, so it is cheap to run before every build. Run as root (or with sudo).
#
# The CUDA toolkit is not a Debian package here: where nvcc is found (PATH or /usr/local/cuda) the
# build compiles the CUDA backend too; where it is absent the build leaves the backend out and says so.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libopenblas-dev          # sgemm for the CPU backend's f32/f16 tiles
  libroaring-dev           # CRoaring posting bitmaps for tag filters
  librocksdb-dev           # the durable store and write-ahead log
  libnghttp2-dev           # HTTP/2 for gRPC
  libprotobuf-c-dev protobuf-c-compiler  # the wire messages
  libevent-dev             # the daemon's event loop
  zlib1g-dev               # gzip-compressed MNIST IDX files
  clang libclang-rt-14-dev # libFuzzer targets and sanitizer runtimes
  python3 python3-grpcio python3-protobuf protobuf-compiler  # stock gRPC peers in the tests
  nghttp2-client           # h2load, for the daemon's soak check
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: every package is present" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "install-deps: missing ${missing[*]}; run this script as root" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
