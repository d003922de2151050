#!/usr/bin/env bash
# cli_mnist.sh: the MNIST evaluation through a real vecscand with the vecscan CLI: create, load
# with attributes (StreamUpdates), eval plain and filtered with tie-aware recall (f32 cosine and
# l2: recall@10 = 1.0; i8 with rerank: >= 0.995; filtered f32: 1.0), --json against the table,
# search/get/delete/stats/describe, and --exact ground truth equal to the shipped one.
# VECSCAN_QUICK=1 evaluates 200 queries instead of 1000.
. "$(dirname "$0")/cli_common.sh"

M=${VECSCAN_DATA_DIR:-}/mnist
[ -n "${VECSCAN_DATA_DIR:-}" ] && [ -f "$M/base.bvecs" ] || skip "no MNIST set under \$VECSCAN_DATA_DIR/mnist"
ROWS=()
[ -n "${VECSCAN_QUICK:-}" ] && ROWS=(--rows 0:200)

start_daemon
V() { "$VECSCAN" --addr "$ADDR" "$@"; }

# --- f32 cosine, with attributes
check "create f32" V create --collection f32 --field img:784:cosine:f32 --tag digit --int ink
V load --collection f32 --vectors "$M/base.bvecs" --attrs "$M/base-attrs.tsv" >"$WORK/load.out" 2>"$WORK/load.err"
check "load f32 exits 0" [ $? -eq 0 ]
check "load says rows and seq" grep -q "loaded 9000 rows into f32 .*last acked seq [0-9]" "$WORK/load.out"
check "load progress lines (not a terminal)" grep -q "load 9000/9000 rows (100%)" "$WORK/load.err"
# visible at once: load returned only after applied_seq reached its last ack
V describe --collection f32 --json >"$WORK/desc.json"
check "rows visible right after load" [ "$(json_get "$WORK/desc.json" 'j["rows"]')" = 9000 ]
check "describe metric" [ "$(json_get "$WORK/desc.json" 'j["vectors"][0]["metric"]')" = cosine ]

EV=(eval --collection f32 --queries "$M/query.bvecs" --gt "$M/gt-cos-100.ivecs" --gt-scores "$M/gt-cos-100.scores.fvecs"
    --base "$M/base.bvecs" --concurrency 8 "${ROWS[@]}")
V "${EV[@]}" --json >"$WORK/f32.json" 2>"$WORK/f32.err"
check "eval f32 --json exits 0" [ $? -eq 0 ]
r10=$(json_get "$WORK/f32.json" 'j["recall"]["10"]')
r100=$(json_get "$WORK/f32.json" 'j["recall"]["100"]')
echo "f32 cosine: recall@10 $r10 recall@100 $r100"
check "f32 recall@10 = 1.0 (tie-aware)" feq "$r10" 1.0
check "json has qps, p50/p95/p99, queries" json_get "$WORK/f32.json" \
  'all(k in j for k in ("qps","p50_ms","p95_ms","p99_ms","queries")) and j["qps"] > 0 and j["p50_ms"] <= j["p99_ms"]'
# the table says the same as the JSON
V "${EV[@]}" >"$WORK/f32.txt" 2>/dev/null
check "eval table exits 0" [ $? -eq 0 ]
t10=$(awk '$1=="recall@10"{print $2}' "$WORK/f32.txt")
t100=$(awk '$1=="recall@100"{print $2}' "$WORK/f32.txt")
tq=$(awk '$1=="queries"{print $2}' "$WORK/f32.txt")
check "table recall@10 matches json" feq "$t10" "$r10" 5e-5
check "table recall@100 matches json" feq "$t100" "$r100" 5e-5
check "table queries matches json" [ "$tq" = "$(json_get "$WORK/f32.json" 'j["queries"]')" ]
for k in qps p50_ms p95_ms p99_ms; do
  check "table has $k" grep -q "^$k " "$WORK/f32.txt"
done

# --- filtered f32
V eval --collection f32 --queries "$M/query.bvecs" --gt "$M/gt-cos-filtered-100.ivecs" \
  --gt-scores "$M/gt-cos-filtered-100.scores.fvecs" --base "$M/base.bvecs" --filters "$M/filtered-queries.tsv" \
  --concurrency 8 "${ROWS[@]}" --json >"$WORK/filt.json" 2>/dev/null
check "filtered eval exits 0" [ $? -eq 0 ]
fr10=$(json_get "$WORK/filt.json" 'j["recall"]["10"]')
echo "f32 filtered: recall@10 $fr10 recall@100 $(json_get "$WORK/filt.json" 'j["recall"]["100"]')"
check "filtered f32 recall@10 = 1.0" feq "$fr10" 1.0
# SearchBatch path gives the same recall
V eval --collection f32 --queries "$M/query.bvecs" --gt "$M/gt-cos-filtered-100.ivecs" \
  --gt-scores "$M/gt-cos-filtered-100.scores.fvecs" --base "$M/base.bvecs" --filters "$M/filtered-queries.tsv" \
  --batch 32 --k 10 "${ROWS[@]}" --json >"$WORK/filtb.json" 2>/dev/null
check "filtered eval in batches = 1.0" feq "$(json_get "$WORK/filtb.json" 'j["recall"]["10"]')" 1.0

# --- i8 with rerank
check "create i8" V create --collection i8 --field img:784:cosine:i8:rerank --tag digit --int ink
check "load i8" V load --collection i8 --vectors "img=$M/base.bvecs" --attrs "$M/base-attrs.tsv" --json
V eval --collection i8 --queries "$M/query.bvecs" --gt "$M/gt-cos-100.ivecs" --gt-scores "$M/gt-cos-100.scores.fvecs" \
  --base "$M/base.bvecs" --rerank 4 --k 10 "${ROWS[@]}" --json >"$WORK/i8.json" 2>/dev/null
check "i8 eval exits 0" [ $? -eq 0 ]
i10=$(json_get "$WORK/i8.json" 'j["recall"]["10"]')
echo "i8 + rerank 4: recall@10 $i10"
check "i8 rerank recall@10 >= 0.995" fge "$i10" 0.995

# --- l2 (the metric comes from the collection)
check "create l2" V create --collection l2 --field img:784:l2:f32
check "load l2" V load --collection l2 --vectors "$M/base.bvecs"
V eval --collection l2 --queries "$M/query.bvecs" --gt "$M/gt-l2-100.ivecs" --gt-scores "$M/gt-l2-100.scores.fvecs" \
  --base "$M/base.bvecs" "${ROWS[@]}" --json >"$WORK/l2.json" 2>/dev/null
check "l2 recall@10 = 1.0" feq "$(json_get "$WORK/l2.json" 'j["recall"]["10"]')" 1.0

# --- exact ground truth computed by the CLI equals the shipped one (as tie-aware recall 1.0)
V eval --exact --collection f32 --queries "$M/query.bvecs" --rows 0:50 --base "$M/base.bvecs" --k 10 \
  --write-gt "$WORK/gt" --threads 2 --json >"$WORK/exact.json" 2>/dev/null
check "eval --exact exits 0" [ $? -eq 0 ]
check "eval --exact recall 1.0" feq "$(json_get "$WORK/exact.json" 'j["recall"]["10"]')" 1.0
V eval --collection f32 --queries "$M/query.bvecs" --rows 0:50 --gt "$WORK/gt.ivecs" --gt-scores "$WORK/gt.scores.fvecs" \
  --base "$M/base.bvecs" --k 10 --json >"$WORK/exact2.json" 2>/dev/null
check "written ground truth reads back" feq "$(json_get "$WORK/exact2.json" 'j["recall"]["10"]')" 1.0
"$PY" - "$WORK/gt.ivecs" "$M/gt-cos-100.ivecs" <<'PY'
import struct, sys
def rows(p, n, k):
    b = open(p, "rb").read(); out = []; o = 0
    while o < len(b) and len(out) < n:
        d = struct.unpack_from("<i", b, o)[0]; out.append(struct.unpack_from("<%di" % d, b, o + 4)[:k]); o += 4 + 4 * d
    return out
a, b = rows(sys.argv[1], 50, 10), rows(sys.argv[2], 50, 10)
same = sum(len(set(x) & set(y)) for x, y in zip(a, b)) / 500.0
print("written gt vs shipped: %.4f of ids equal" % same)
sys.exit(0 if same >= 0.99 else 1)
PY
check "written ground truth matches the shipped ids" [ $? -eq 0 ]

# --- search, get, delete, stats
V search --collection f32 --queries "$M/query.bvecs" --rows 0:5 --k 3 --filter "digit = 7" --attributes --json >"$WORK/s.json"
check "search --json: 5 results of 3 hits, all digit 7" json_get "$WORK/s.json" \
  'len(j["results"]) == 5 and all(len(r["hits"]) == 3 and all(h["attributes"]["digit"] == ["7"] for h in r["hits"]) for r in j["results"])'
V search --collection f32 --queries "$M/query.bvecs" --rows 3:4 --k 2 >"$WORK/s.txt"
check "search text: query<TAB>rank<TAB>id<TAB>score" awk -F'\t' 'NF < 4 || $1 != 3 {exit 1}' "$WORK/s.txt"
V get --collection f32 --ids 0,1,99999 --json >"$WORK/g.json"
check "get: 2 items, 1 missing, with attributes" json_get "$WORK/g.json" \
  'len(j["items"]) == 2 and j["missing"] == [99999] and "digit" in j["items"][0]["attributes"] and "ink" in j["items"][0]["attributes"]'
V delete --collection f32 --ids 0,99999 >"$WORK/d.txt"
check "delete says 1 of 2 and the absent id" grep -q "deleted 1 of 2 ids .*absent: 99999" "$WORK/d.txt"
V stats --json >"$WORK/st.json"
check "stats --json" json_get "$WORK/st.json" 'len(j["collections"]) == 3 and j["applied_seq"] >= 1'
V list >"$WORK/l.txt"
check "list" [ "$(tr '\n' ' ' <"$WORK/l.txt")" = "f32 i8 l2 " ]
# load --patch: attributes only
printf 'id\tdigit\n5\t42\n' >"$WORK/patch.tsv"
check "load --patch attrs only" V load --collection f32 --attrs "$WORK/patch.tsv" --patch
V get --collection f32 --ids 5 --json >"$WORK/g5.json"
check "patched tag, other attribute kept" json_get "$WORK/g5.json" \
  'j["items"][0]["attributes"]["digit"] == ["42"] and "ink" in j["items"][0]["attributes"]'
check "drop" V drop --collection l2

stop_daemon
finish cli_mnist
