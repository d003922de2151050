# cli_common.sh: what the CLI's integration tests (cli_*.sh) share; sourced, not run.
#
#   $VECSCAN   the vecscan CLI      $VECSCAND  the daemon      $VECSCAN_DATA_DIR  shared datasets
#
# start_daemon starts vecscand on loopback with --port 0 (the kernel picks a free port) and sets
# ADDR from its log; stop_daemon sends SIGTERM and checks that it exits 0. check NAME CMD... runs
# a check and counts failures; finish prints the summary and exits. A missing prerequisite exits
# 77 (ctest: skipped) with a SKIP line.
set -u

FAILS=0
SKIP=77

skip() { echo "SKIP: $*"; exit $SKIP; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

[ -n "${VECSCAN:-}" ] && [ -x "$VECSCAN" ] || skip "VECSCAN does not name the vecscan CLI"
[ -n "${VECSCAND:-}" ] && [ -x "$VECSCAND" ] || skip "VECSCAND does not name the vecscand binary"
PY=$(command -v python3 || true)
[ -n "$PY" ] || skip "python3 is missing (deploy/install-deps.sh)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vs-cli-test-XXXXXX")
DPID=
ADDR=
cleanup() {
  if [ -n "$DPID" ]; then kill -9 "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_daemon [flags...]: a fresh data dir under $WORK.
start_daemon() {
  local log=$WORK/daemon.log
  "$VECSCAND" --data-dir "$WORK/data" --port 0 --admin-port 0 --sync interval:50 "$@" 2>"$log" &
  DPID=$!
  local i port=
  for i in $(seq 1 200); do
    port=$(sed -n 's/.*grpc port \([0-9]*\),.*/\1/p' "$log" | head -1)
    if [ -n "$port" ] && grep -q "main: ready" "$log"; then break; fi
    if ! kill -0 "$DPID" 2>/dev/null; then cat "$log"; echo "FAIL: vecscand exited at start"; exit 1; fi
    sleep 0.05
  done
  [ -n "$port" ] || { cat "$log"; echo "FAIL: vecscand did not say its port"; exit 1; }
  ADDR=127.0.0.1:$port
}

stop_daemon() {
  kill -TERM "$DPID"
  local rc=0
  wait "$DPID" || rc=$?
  DPID=
  check "vecscand exits 0 on SIGTERM" [ "$rc" -eq 0 ]
}

# json_get FILE EXPR: evaluates EXPR (python, with j = the parsed object) over FILE; fails when the
# file is not exactly one JSON object.
json_get() {
  "$PY" - "$1" "$2" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
j = json.loads(text)  # one value, nothing else around it
assert isinstance(j, dict), "not an object"
print(eval(sys.argv[2]))
PY
}

# ge A B / eq A B on floats
fge() { "$PY" -c "import sys; sys.exit(0 if float('$1') >= float('$2') else 1)"; }
feq() { "$PY" -c "import sys; sys.exit(0 if abs(float('$1') - float('$2')) <= ${3:-1e-9} else 1)"; }

finish() {
  if [ "$FAILS" -gt 0 ]; then echo "$1: $FAILS failures"; exit 1; fi
  echo "$1: ok"
  exit 0
}
