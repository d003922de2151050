#!/usr/bin/env bash
# cli_errors.sh: every failure of the vecscan CLI is one line on stderr naming the problem and a
# non-zero exit, with nothing on stdout: unknown flag, missing file, wrong dimension, daemon down,
# bad filter, unknown collection, bad field spec, --help is exit 0.
. "$(dirname "$0")/cli_common.sh"

# expect_fail NAME CODE PATTERN CMD...: CMD exits CODE with exactly one stderr line matching
# PATTERN and an empty stdout.
expect_fail() {
  local name=$1 code=$2 pat=$3; shift 3
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  local lines
  lines=$(wc -l <"$WORK/err")
  if [ "$rc" -ne "$code" ]; then fail "$name: exit $rc, want $code ($(cat "$WORK/err"))"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$name: $lines stderr lines: $(cat "$WORK/err")"; return; fi
  if ! grep -Eq -- "$pat" "$WORK/err"; then fail "$name: '$(cat "$WORK/err")' does not match /$pat/"; return; fi
  if [ -s "$WORK/out" ]; then fail "$name: stdout not empty: $(head -c 200 "$WORK/out")"; return; fi
  ok "$name: $(cat "$WORK/err")"
}

# a small dataset: 100 x 4 float32 (fvecs) and a wrong-dim one (100 x 5)
"$PY" - "$WORK" <<'PY'
import struct, sys, random
random.seed(1)
for name, d in (("v4.fvecs", 4), ("v5.fvecs", 5)):
    with open(sys.argv[1] + "/" + name, "wb") as f:
        for i in range(100):
            f.write(struct.pack("<i", d) + struct.pack("<%df" % d, *[random.uniform(-1, 1) for _ in range(d)]))
PY

start_daemon
V() { "$VECSCAN" --addr "$ADDR" "$@"; }
check "create" V create --collection c --field v:4:l2:f32 --tag t
check "load" V load --collection c --vectors "$WORK/v4.fvecs"

expect_fail "unknown flag" 2 "unknown option --frobnicate" V search --collection c --frobnicate
expect_fail "unknown command" 2 "unknown command 'serch'" V serch
expect_fail "missing value" 2 "--k needs a value" V search --collection c --vector 1,2,3,4 --k
expect_fail "missing --collection" 2 "--collection is required" V describe
expect_fail "bad field spec" 2 "storage 'f64'" V create --collection d --field v:4:l2:f64
expect_fail "missing file" 1 "nonexistent.fvecs" V load --collection c --vectors "$WORK/nonexistent.fvecs"
expect_fail "missing queries file" 1 "nope.bvecs" V eval --collection c --queries "$WORK/nope.bvecs" --gt "$WORK/nope.ivecs"
expect_fail "wrong dim (load)" 1 "dim 5 but field 'v' .* dim 4" V load --collection c --vectors "$WORK/v5.fvecs"
expect_fail "wrong dim (search)" 1 "3 values but field 'v' has dim 4" V search --collection c --vector 1,2,3
expect_fail "wrong dim (queries)" 1 "dim 5 but field 'v'" V search --collection c --queries "$WORK/v5.fvecs"
expect_fail "bad filter" 1 "INVALID_ARGUMENT" V search --collection c --vector 1,2,3,4 --filter "t = = 3"
expect_fail "unknown filter field" 1 "INVALID_ARGUMENT.*nosuch" V search --collection c --vector 1,2,3,4 --filter "nosuch = 1"
expect_fail "bad filter (loadtest)" 1 "INVALID_ARGUMENT" V loadtest --collection c --queries "$WORK/v4.fvecs" --filter "t IN (" --duration 1
expect_fail "unknown collection" 1 "NOT_FOUND" V describe --collection nosuch
expect_fail "unknown attrs column" 1 "column 'color' is not an attribute" \
  sh -c "printf 'id\tcolor\n1\tred\n' >'$WORK/a.tsv' && exec \"\$0\" --addr $ADDR load --collection c --attrs '$WORK/a.tsv'" "$VECSCAN"
expect_fail "duplicate collection" 1 "ALREADY_EXISTS" V create --collection c --field v:4:l2:f32
expect_fail "token file missing" 1 "cannot read --token-file" V list --token-file "$WORK/none"
V search --help >"$WORK/help" 2>&1
check "--help exits 0 and shows usage" grep -q "usage: vecscan search" "$WORK/help"
"$VECSCAN" --help >"$WORK/help" 2>&1
check "vecscan --help lists commands" grep -q "loadtest" "$WORK/help"

stop_daemon
expect_fail "daemon down" 1 "cannot connect to $ADDR" V list
expect_fail "daemon down (load)" 1 "cannot connect" V load --collection c --vectors "$WORK/v4.fvecs"
finish cli_errors
