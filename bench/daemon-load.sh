#!/usr/bin/env bash
# daemon-load.sh: a real vecscand driven over gRPC by `vecscan loadtest` (the load generator runs
# on the same machine): Search calls/s and p50/p99 on a small collection, where the RPC path
# dominates, and the throughput of a large i8 collection with 1 vs 64 callers in flight, where the
# executor's dynamic batching pays (one scan of the rows serves a whole batch of queries).
#
# Usage: bench/daemon-load.sh [--quick] [--no-record] [--keep]
#   --quick      200k rows in the large collection and 8 s per run (under a minute once built);
#                the default is 1M rows and 15 s per run
#   --no-record  print only, leave bench/RESULTS.md alone
#   --keep       keep the data dir and the generated datasets (under $TMPDIR)
#
# Data: random uint8 vectors (u8bin), 128-dim, l2; 1,000 queries cycled. Small: 10k rows, f32,
# 1 connection x 32 calls in flight. Large: 1M (200k) rows, i8; 1 call in flight, then 64 (over
# 2 connections). batching_gain_64 = calls/s at 64 in flight / calls/s at 1.
# Binaries: $VECSCAN and $VECSCAND when set, else a Release build in build-bench-daemon/.
# Prints a table, records it in bench/RESULTS.md (this mode's section replaced), and prints the
# RESULT line last.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
MODE=full
BIG=1000000
DUR=15
RECORD=1
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) MODE=quick; BIG=200000; DUR=8 ;;
    --no-record) RECORD=0 ;;
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "daemon-load.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "== [${SECONDS}s] $*" >&2; }
# shared helpers (find_faiss_python, record_section, commit_label)
. "$HERE/lib.bash"

# --- binaries
if [ -z "${VECSCAN:-}" ] || [ -z "${VECSCAND:-}" ]; then
    SRC="$REPO"
    BUILD="$REPO/build-bench-daemon"
    WRAP=""
    if ! grep -q '^ *add_subdirectory(client)' "$REPO/CMakeLists.txt"; then
        # the top level does not build client/ yet: a tree of links with it added stands in
        WRAP=$(mktemp -d "${TMPDIR:-/tmp}/vs-daemon-load-src-XXXXXX")
        for d in "$REPO"/*/; do ln -s "${d%/}" "$WRAP/$(basename "$d")"; done
        grep -v '^ *add_subdirectory(tests)' "$REPO/CMakeLists.txt" > "$WRAP/CMakeLists.txt"
        grep -q '^ *add_subdirectory(proto)' "$WRAP/CMakeLists.txt" || echo 'add_subdirectory(proto)' >> "$WRAP/CMakeLists.txt"
        grep -q '^ *add_subdirectory(server)' "$WRAP/CMakeLists.txt" || echo 'add_subdirectory(server)' >> "$WRAP/CMakeLists.txt"
        echo 'add_subdirectory(client)' >> "$WRAP/CMakeLists.txt"
        SRC="$WRAP"
        BUILD="$REPO/build-bench-daemon-wrap"
    fi
    say "building vecscand and vecscan (Release) in $(basename "$BUILD")"
    mkdir -p "$BUILD"
    if ! cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVECSCAN_CUDA=OFF > "$BUILD/daemon-load-build.log" 2>&1 ||
       ! ninja -C "$BUILD" -j2 vecscand vecscan >> "$BUILD/daemon-load-build.log" 2>&1; then
        tail -20 "$BUILD/daemon-load-build.log" >&2
        echo "daemon-load.sh: the build failed (log: $BUILD/daemon-load-build.log)" >&2
        [ -n "$WRAP" ] && rm -rf "$WRAP"
        exit 1
    fi
    if [ -n "$WRAP" ]; then rm -rf "$WRAP"; fi
    VECSCAN=$(find "$BUILD" -type f -name vecscan -perm -u+x | head -1)
    VECSCAND=$(find "$BUILD" -type f -name vecscand -perm -u+x | head -1)
fi
[ -x "$VECSCAN" ] && [ -x "$VECSCAND" ] || { echo "daemon-load.sh: no vecscan / vecscand binary" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vs-daemon-load-XXXXXX")
DPID=
cleanup() {
    if [ -n "$DPID" ]; then kill -9 "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# --- data: u8bin = uint32 rows, uint32 dim, rows x dim bytes
gen() { # gen FILE ROWS
    python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<II", int(sys.argv[1]), 128))' "$2" > "$1"
    head -c $(($2 * 128)) /dev/urandom >> "$1"
}
gen "$WORK/small.u8bin" 10000
gen "$WORK/big.u8bin" "$BIG"
gen "$WORK/queries.u8bin" 1000

# --- the daemon
say "starting vecscand"
"$VECSCAND" --data-dir "$WORK/data" --port 0 --admin-port 0 --sync interval:100 2> "$WORK/daemon.log" &
DPID=$!
PORT=
for _ in $(seq 1 400); do
    PORT=$(sed -n 's/.*grpc port \([0-9]*\),.*/\1/p' "$WORK/daemon.log" | head -1)
    [ -n "$PORT" ] && grep -q "main: ready" "$WORK/daemon.log" && break
    kill -0 "$DPID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; exit 1; }
    sleep 0.05
done
V() { "$VECSCAN" --addr "127.0.0.1:$PORT" "$@"; }
LOADAVG=$(cut -d' ' -f1 /proc/loadavg) # other work on the machine skews every figure: say how much

V create --collection small --field v:128:l2:f32 >/dev/null
V create --collection big --field v:128:l2:i8 >/dev/null
say "loading 10000 + $BIG rows"
V load --collection small --vectors "$WORK/small.u8bin" >&2 2>/dev/null
V load --collection big --vectors "$WORK/big.u8bin" >&2 2>/dev/null

jget() { python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

say "small: 1 connection x 32 in flight, ${DUR} s"
V loadtest --collection small --queries "$WORK/queries.u8bin" --connections 1 --concurrency 32 --duration "$DUR" --json \
    > "$WORK/small.json" 2>/dev/null
say "big: 1 in flight, ${DUR} s"
V loadtest --collection big --queries "$WORK/queries.u8bin" --connections 1 --concurrency 1 --duration "$DUR" --json \
    > "$WORK/big1.json" 2>/dev/null
say "big: 64 in flight over 2 connections, ${DUR} s"
V loadtest --collection big --queries "$WORK/queries.u8bin" --connections 2 --concurrency 64 --duration "$DUR" --json \
    > "$WORK/big64.json" 2>/dev/null

kill -TERM "$DPID"
wait "$DPID" || { echo "daemon-load.sh: vecscand did not exit 0 on SIGTERM" >&2; exit 1; }
DPID=

S_RPS=$(jget "$WORK/small.json" '"%.0f" % j["qps"]')
S_P50=$(jget "$WORK/small.json" '"%.2f" % j["p50_ms"]')
S_P99=$(jget "$WORK/small.json" '"%.2f" % j["p99_ms"]')
S_ERR=$(jget "$WORK/small.json" 'j["requests"] - j["ok"]')
B1_RPS=$(jget "$WORK/big1.json" '"%.1f" % j["qps"]')
B1_P50=$(jget "$WORK/big1.json" '"%.2f" % j["p50_ms"]')
B64_RPS=$(jget "$WORK/big64.json" '"%.1f" % j["qps"]')
B64_P50=$(jget "$WORK/big64.json" '"%.2f" % j["p50_ms"]')
B64_P99=$(jget "$WORK/big64.json" '"%.2f" % j["p99_ms"]')
B_ERR=$(jget "$WORK/big64.json" 'j["requests"] - j["ok"]')
GAIN=$(python3 -c "print('%.2f' % ($B64_RPS / $B1_RPS if $B1_RPS > 0 else 0))")

TABLE=$(cat <<EOF
| run | calls/s | p50 ms | p99 ms | non-OK |
|---|---|---|---|---|
| 10k x 128 f32, 1 conn x 32 in flight | $S_RPS | $S_P50 | $S_P99 | $S_ERR |
| $BIG x 128 i8, 1 in flight | $B1_RPS | $B1_P50 | $(jget "$WORK/big1.json" '"%.2f" % j["p99_ms"]') | $(jget "$WORK/big1.json" 'j["requests"] - j["ok"]') |
| $BIG x 128 i8, 64 in flight (2 conns) | $B64_RPS | $B64_P50 | $B64_P99 | $B_ERR |
| batching gain, 64 vs 1 in flight | ${GAIN}x | | | |
EOF
)
RESULT="RESULT rpcs_per_s_small=$S_RPS p99_ms_small=$S_P99 batching_gain_64=$GAIN"
echo "$TABLE"

if [ "$RECORD" = 1 ]; then
    MD="$HERE/RESULTS.md"
    HEAD="## daemon-load ($MODE)"
    SECTION=$(printf '%s\n\n%s, %s, %d cores, load generator on the same cores, load average %s at the start; bench/daemon-load.sh%s.\n\n%s\n\n`%s`\n' \
        "$HEAD" "$(date -u +%Y-%m-%d)" "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" "$(nproc)" "$LOADAVG" \
        "$([ "$MODE" = quick ] && echo ' --quick')" "$TABLE" "$RESULT")
    record_section "$MD" "$HEAD" "$SECTION"
    say "recorded in bench/RESULTS.md ($HEAD)"
fi
echo "$RESULT"
