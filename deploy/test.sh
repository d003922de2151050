#!/usr/bin/env bash
# Installs what is missing, builds vecscan and runs every test:
#   1. a Release build (with the CUDA backend where nvcc exists) and all of ctest;
#   2. a Debug build under AddressSanitizer + UndefinedBehaviorSanitizer, and the tests again;
#   3. the libFuzzer targets (clang), each for a short fixed time under ASan.
# Datasets come from VECSCAN_DATA_DIR (default: ../shared/data beside the repo, when it exists);
# without them the data tests print SKIP. Build trees go to build/ inside the repo.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/deploy/install-deps.sh"
if [ -z "${VECSCAN_DATA_DIR:-}" ] && [ -d "$repo/../shared/data" ]; then
  export VECSCAN_DATA_DIR=$(cd "$repo/../shared/data" && pwd)
fi
echo "test: datasets from ${VECSCAN_DATA_DIR:-<none: data tests will SKIP>}" >&2
jobs=$(nproc)
fuzz_seconds=${VECSCAN_FUZZ_SECONDS:-30}

echo "== Release build, all tests" >&2
cmake -S "$repo" -B "$repo/build/release" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$repo/build/release" -j "$jobs"
ctest --test-dir "$repo/build/release" --output-on-failure -j "$jobs"

echo "== Debug build under ASan + UBSan, the tests again" >&2
cmake -S "$repo" -B "$repo/build/sanitize" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVECSCAN_SANITIZE=ON \
  -DVECSCAN_CUDA=OFF >/dev/null
cmake --build "$repo/build/sanitize" -j "$jobs"
VECSCAN_QUICK=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$repo/build/sanitize" --output-on-failure -j "$jobs" -LE fuzz

echo "== libFuzzer targets, ${fuzz_seconds}s each" >&2
cmake -S "$repo" -B "$repo/build/fuzz" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
  -DVECSCAN_FUZZ=ON -DVECSCAN_CUDA=OFF >/dev/null
cmake --build "$repo/build/fuzz" -j "$jobs"
VECSCAN_FUZZ_SECONDS=$fuzz_seconds ctest --test-dir "$repo/build/fuzz" --output-on-failure -L fuzz
