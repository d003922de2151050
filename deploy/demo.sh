#!/usr/bin/env bash
# The main job: installs what is missing, builds vecscan (Release), and runs the MNIST demo:
# builds an index from the 9,000 MNIST images, searches the 1,000 queries with each storage tier,
# and prints tie-aware recall@10 and @100 and queries per second. The dataset comes from
# VECSCAN_DATA_DIR (default: ../shared/data beside the repo); without it the demo generates a
# synthetic set and computes its exact ground truth.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/deploy/install-deps.sh"
if [ -z "${VECSCAN_DATA_DIR:-}" ] && [ -d "$repo/../shared/data" ]; then
  export VECSCAN_DATA_DIR=$(cd "$repo/../shared/data" && pwd)
fi
cmake -S "$repo" -B "$repo/build/release" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$repo/build/release" -j "$(nproc)" --target vecscan-demo
"$repo/build/release/examples/vecscan-demo" "$@"
