#!/usr/bin/env bash
# engine-writes.sh: the engine's write path, in process: group-commit throughput under both sync
# policies, write-to-visible latency, search latency under a write stream, restart time.
#
# Usage: bench/engine-writes.sh [--quick] [--no-record] [--keep]
#   --quick      100k upserts per sync policy, 200k rows for the search and restart runs (under a
#                minute); the default is 400k upserts and 1M rows
#   --no-record  print only, leave bench/RESULTS.md alone
#   --keep       keep the data dirs (under $TMPDIR)
#
# 128-dim vectors, i8 storage, l2; 64 producer threads each keeping up to 64 upserts in flight;
# batch-16 searches while 10,000 upserts/s stream in. Builds engine_writes in Release in its own
# tree (build-bench-engine/), prints a table, records it in bench/RESULTS.md (this mode's section
# replaced), and prints the RESULT line last.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD="$REPO/build-bench-engine"
MODE=full
UPSERTS=400000
ROWS=1000000
BATCHES=200
RECORD=1
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) MODE=quick; UPSERTS=100000; ROWS=200000; BATCHES=100 ;;
    --no-record) RECORD=0 ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "engine-writes.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "== [${SECONDS}s] $*" >&2; }
# shared helpers (find_faiss_python, record_section, commit_label)
. "$HERE/lib.bash"

# The top level builds server/ and bench/ once they are wired in; until then a wrapper tree (a
# temporary directory of links to this checkout, with both added) stands in for it.
SRC="$REPO"
WRAP=""
if ! grep -q '^ *add_subdirectory(server)' "$REPO/CMakeLists.txt" ||
   ! grep -q '^ *add_subdirectory(bench)' "$REPO/CMakeLists.txt"; then
    WRAP="$REPO/build-bench-engine-src"
    rm -rf "$WRAP"
    mkdir -p "$WRAP"
    for d in common index formats filters server examples bench tests; do
        [ -e "$REPO/$d" ] && ln -s "$REPO/$d" "$WRAP/$d"
    done
    grep -v '^ *add_subdirectory(tests)' "$REPO/CMakeLists.txt" > "$WRAP/CMakeLists.txt"
    grep -q '^ *add_subdirectory(server)' "$WRAP/CMakeLists.txt" || echo 'add_subdirectory(server)' >> "$WRAP/CMakeLists.txt"
    grep -q '^ *add_subdirectory(bench)' "$WRAP/CMakeLists.txt" || echo 'add_subdirectory(bench)' >> "$WRAP/CMakeLists.txt"
    SRC="$WRAP"
    BUILD="$REPO/build-bench-engine-wrap"
fi
DATA=$(mktemp -d "${TMPDIR:-/tmp}/vs-engine-bench-XXXXXX")
cleanup() {
    [ -n "$WRAP" ] && rm -rf "$WRAP"
    [ "$KEEP" = 1 ] || rm -rf "$DATA"
}
trap cleanup EXIT

say "building engine_writes (Release) in $BUILD"
LOG="$BUILD.log"
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVECSCAN_CUDA=OFF >"$LOG" 2>&1 ||
    { tail -30 "$LOG" >&2; echo "engine-writes.sh: cmake configure failed" >&2; exit 1; }
cmake --build "$BUILD" -j2 --target engine_writes >>"$LOG" 2>&1 ||
    { tail -30 "$LOG" >&2; echo "engine-writes.sh: build failed" >&2; exit 1; }

say "running: $UPSERTS upserts per policy, $ROWS rows ($MODE)"
OUT=$("$BUILD/bench/engine_writes" --dir "$DATA" --upserts "$UPSERTS" --rows "$ROWS" \
      --batches "$BATCHES" --write-rate 10000)
TABLE=$(echo "$OUT" | grep '^|')
RESULT=$(echo "$OUT" | grep '^RESULT')
echo "$TABLE"

if [ "$RECORD" = 1 ]; then
    MD="$HERE/RESULTS.md"
    HEAD="## engine-writes ($MODE)"
    SECTION=$(printf '%s\n\n%s, %s, %d cores; bench/engine-writes.sh%s.\n\n%s\n\n`%s`\n' "$HEAD" \
        "$(date -u +%Y-%m-%d)" "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" "$(nproc)" \
        "$([ "$MODE" = quick ] && echo ' --quick')" "$TABLE" "$RESULT")
    record_section "$MD" "$HEAD" "$SECTION"
    say "recorded in bench/RESULTS.md ($HEAD)"
fi
echo "$RESULT"
