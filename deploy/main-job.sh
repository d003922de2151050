#!/usr/bin/env bash
# main-job.sh: the README's main job, end to end through the daemon and the CLI.
#
#   1. installs what is missing and builds vecscand and vecscan (Release);
#   2. starts vecscand on a fresh data dir (loopback, a free port);
#   3. creates a collection: 784-dim cosine, i8 codes with an f32 rerank copy, tag `digit`, int `ink`;
#   4. loads the MNIST set with its attributes through `vecscan load` (StreamUpdates);
#   5. runs `vecscan eval` plain and filtered (per-query `digit IN (...)` filters) and prints
#      tie-aware recall@10 and @100 and QPS;
#   6. stops the daemon cleanly (SIGTERM, exit 0).
#
# Data: $VECSCAN_DATA_DIR/mnist (default: ../shared/data beside the repo). Where it is absent, a
# synthetic set of the same shape is generated (10 clusters standing for the digits): plain ground
# truth from `vecscan eval --exact`, filtered ground truth from an exact f32 twin collection.
# Usage: deploy/main-job.sh [--rerank R] [--concurrency C] [--keep]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RERANK=4
CONC=8
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
  --rerank) RERANK=$2; shift ;;
  --concurrency) CONC=$2; shift ;;
  --keep) KEEP=1 ;;
  -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "main-job.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "== $*" >&2; }

# ---- 1. dependencies and build
"$repo/deploy/install-deps.sh"
if [ -n "${VECSCAN:-}" ] && [ -n "${VECSCAND:-}" ]; then
  say "using VECSCAN=$VECSCAN VECSCAND=$VECSCAND"
else
  build=$repo/build/release
  say "building vecscand and vecscan"
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" --target vecscand vecscan >/dev/null
  VECSCAN=$(find "$build" -type f -name vecscan -perm -u+x | head -1)
  VECSCAND=$(find "$build" -type f -name vecscand -perm -u+x | head -1)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vs-main-job-XXXXXX")
dpid=
cleanup() {
  if [ -n "$dpid" ]; then kill -9 "$dpid" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---- data
if [ -z "${VECSCAN_DATA_DIR:-}" ] && [ -d "$repo/../shared/data" ]; then
  VECSCAN_DATA_DIR=$(cd "$repo/../shared/data" && pwd)
fi
M=${VECSCAN_DATA_DIR:-}/mnist
SYNTH=0
if [ -z "${VECSCAN_DATA_DIR:-}" ] || [ ! -f "$M/base.bvecs" ]; then
  SYNTH=1
  M=$work/synth
  mkdir -p "$M"
  say "no MNIST set under \$VECSCAN_DATA_DIR/mnist: generating a synthetic one (9000 + 1000 x 784, 10 clusters)"
  python3 - "$M" <<'PY'
import os, random, struct, sys
out = sys.argv[1]
rnd = random.Random(7)
centers = [bytes(rnd.randrange(0, 160) if rnd.random() < 0.3 else 0 for _ in range(784)) for _ in range(10)]
def item():
    d = rnd.randrange(10)
    noise = os.urandom(784)
    v = bytes(min(255, c + (n & 63)) if c or n < 40 else 0 for c, n in zip(centers[d], noise))
    return d, v
with open(out + "/base.bvecs", "wb") as b, open(out + "/base-attrs.tsv", "w") as a:
    a.write("id\tdigit\tink\n")
    for i in range(9000):
        d, v = item()
        b.write(struct.pack("<i", 784) + v)
        a.write("%d\t%d\t%d\n" % (i, d, sum(1 for x in v if x)))
with open(out + "/query.bvecs", "wb") as q, open(out + "/filtered-queries.tsv", "w") as f:
    f.write("query\tfilter\n")
    for i in range(1000):
        d, v = item()
        q.write(struct.pack("<i", 784) + v)
        pick = rnd.sample(range(10), 3)
        f.write("%d\tdigit IN (%s)\n" % (i, ", ".join(map(str, pick))))
PY
fi

# ---- 2. the daemon
say "starting vecscand on a fresh data dir"
"$VECSCAND" --data-dir "$work/data" --port 0 --admin-port 0 2> "$work/daemon.log" &
dpid=$!
port=
for _ in $(seq 1 400); do
  port=$(sed -n 's/.*grpc port \([0-9]*\),.*/\1/p' "$work/daemon.log" | head -1)
  [ -n "$port" ] && grep -q "main: ready" "$work/daemon.log" && break
  kill -0 "$dpid" 2>/dev/null || { cat "$work/daemon.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { cat "$work/daemon.log" >&2; exit 1; }
V() { "$VECSCAN" --addr "127.0.0.1:$port" "$@"; }
say "vecscand listening on 127.0.0.1:$port"

# ---- 3. + 4. collection and load
V create --collection mnist --field img:784:cosine:i8:rerank --tag digit --int ink
V load --collection mnist --vectors "img=$M/base.bvecs" --attrs "$M/base-attrs.tsv"

# ---- ground truth for the synthetic set
if [ "$SYNTH" = 1 ]; then
  V eval --exact --metric cosine --queries "$M/query.bvecs" --base "$M/base.bvecs" --k 100 --write-gt "$M/gt-cos-100" \
    > /dev/null
  # filtered: an exact f32 twin answers the filtered queries; its hits are the ground truth
  V create --collection exact --field img:784:cosine:f32 --tag digit --int ink > /dev/null
  V load --collection exact --vectors "img=$M/base.bvecs" --attrs "$M/base-attrs.tsv" > /dev/null 2>&1
  python3 - "$M" "$VECSCAN" "127.0.0.1:$port" <<'PY'
import json, struct, subprocess, sys
m, cli, addr = sys.argv[1:4]
filters = [l.rstrip("\n").split("\t", 1)[1] for l in open(m + "/filtered-queries.tsv")][1:]
with open(m + "/gt-cos-filtered-100.ivecs", "wb") as gi, open(m + "/gt-cos-filtered-100.scores.fvecs", "wb") as gs:
    for q, flt in enumerate(filters):
        out = subprocess.run([cli, "--addr", addr, "search", "--collection", "exact", "--queries", m + "/query.bvecs",
                              "--rows", "%d:%d" % (q, q + 1), "--k", "100", "--filter", flt, "--json"],
                             check=True, capture_output=True, text=True).stdout
        hits = json.loads(out)["results"][0]["hits"]
        gi.write(struct.pack("<i", 100) + struct.pack("<100i", *[h["id"] for h in hits] + [-1] * (100 - len(hits))))
        gs.write(struct.pack("<i", 100) + struct.pack("<100f", *[h["score"] for h in hits] + [float("nan")] * (100 - len(hits))))
PY
  V drop --collection exact > /dev/null
fi

# ---- 5. evaluation
say "eval: 1000 queries, plain (tie-aware recall, rerank $RERANK)"
V eval --collection mnist --queries "$M/query.bvecs" --gt "$M/gt-cos-100.ivecs" --gt-scores "$M/gt-cos-100.scores.fvecs" \
  --base "$M/base.bvecs" --k 10 --k 100 --rerank "$RERANK" --concurrency "$CONC"
say "eval: 1000 queries, filtered (digit IN (...), about 30% pass)"
V eval --collection mnist --queries "$M/query.bvecs" --gt "$M/gt-cos-filtered-100.ivecs" \
  --gt-scores "$M/gt-cos-filtered-100.scores.fvecs" --base "$M/base.bvecs" --filters "$M/filtered-queries.tsv" \
  --k 10 --k 100 --rerank "$RERANK" --concurrency "$CONC"
V stats

# ---- 6. stop cleanly
say "stopping vecscand (SIGTERM)"
kill -TERM "$dpid"
rc=0
wait "$dpid" || rc=$?
dpid=
if [ "$rc" -ne 0 ]; then
  tail -5 "$work/daemon.log" >&2
  echo "main-job.sh: vecscand exited $rc" >&2
  exit 1
fi
say "vecscand stopped cleanly"
