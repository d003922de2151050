#!/usr/bin/env bash
# index-vs-faiss.sh: how fast is libvecscan's exhaustive CPU search against FAISS, on the same
# machine, the same data and the same thread count, and how close does a batch-1 scan come to the
# machine's read floor?
#
#   bench/index-vs-faiss.sh [--quick] [options]
#
#   --quick      200k rows (under a minute); the full run has 1M rows plus a 10M x 128 i8 load
#   --rows N     another row count (testing the script; implies --no-record)
#   --no-record  print only, leave bench/RESULTS.md alone
#   --keep       keep the temporary folder with the data, ids and JSON lines
#   --wait-quiet S  first wait up to S seconds for a moment when other processes use under 10% of
#                the CPU (other engineers' builds make timings noisy)
#   --rounds R   time both sides R times, alternating, and keep each cell's best (quick: 1, full: 2)
#   --big-rows N the big i8 load's rows (full: 10M; 0: none)
#
# Steps: build index_bench and read_bw in Release (its own tree, build-bench/, from this checkout);
# find or install the anchor (pip faiss-cpu with numpy where PyPI answers, else Debian's
# python3-faiss under /usr/bin/python3); write Gaussian data once (d = 128, fixed seed); measure the
# read bandwidth; run vecscan (index_bench: f32, f16, i8, b1 with rerank) and FAISS (faiss_anchor.py:
# IndexFlatIP, SQ8), both with 2 threads; compute recall@10 against a float64 scan; print the table,
# replace this mode's section of bench/RESULTS.md, and print the RESULT line last.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD="$REPO/build-bench"
THREADS=2
DIM=128
N_QUERIES=1000

MODE=full
ROWS=1000000
BIG_ROWS=10000000
SINGLE=200
MIN_TIME=1.0
MIN_REPS=1
ROUNDS=2
RECORD=1
KEEP=0
WAIT_QUIET=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) MODE=quick; ROWS=200000; BIG_ROWS=0; MIN_TIME=0.5; MIN_REPS=1; ROUNDS=1 ;;
    --rows) ROWS="$2"; RECORD=0; MODE=custom; shift ;;
    --no-record) RECORD=0 ;;
    --keep) KEEP=1 ;;
    --wait-quiet) WAIT_QUIET="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --big-rows) BIG_ROWS_SET="$2"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "index-vs-faiss.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$MODE" = full ] || BIG_ROWS=0
BIG_ROWS="${BIG_ROWS_SET:-$BIG_ROWS}"

say() { echo "== [${SECONDS}s] $*" >&2; }
# shared helpers (find_faiss_python, record_section, commit_label)
. "$HERE/lib.bash"

# CPU ticks: all busy ticks of the machine, and those of this script's finished children.
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
child_ticks() { sed 's/.*) //' /proc/$$/stat | awk '{print $14+$15}'; }
# A mark: uptime seconds, busy ticks, children's ticks. others_pct M0 M1: percent of the machine's
# CPU that other processes (other engineers' builds and tests) used between two marks.
mark() { echo "$(cut -d' ' -f1 /proc/uptime) $(busy_ticks) $(child_ticks)"; }
others_pct() {
    awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" 'BEGIN {
        split(a, x, " "); split(b, y, " "); wall = y[1] - x[1]
        p = wall > 0 ? 100 * ((y[2] - x[2]) - (y[3] - x[3])) / hz / (wall * n) : 0
        printf "%.0f", p < 0 ? 0 : p }'
}
# Percent of the machine's CPU that other processes used over the last 3 seconds.
others_pct_now() {
    local b0 b1
    b0=$(busy_ticks); sleep 3; b1=$(busy_ticks)
    echo $(((b1 - b0) * 100 / (3 * $(getconf CLK_TCK) * $(nproc))))
}

# ---- build ----
say "building index_bench and read_bw (Release, in build-bench/)"
mkdir -p "$BUILD"
LOG="$BUILD/bench-build.log"
cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DVECSCAN_CUDA=OFF >"$LOG" 2>&1 ||
    { tail -30 "$LOG" >&2; echo "index-vs-faiss.sh: cmake configure failed" >&2; exit 1; }
if ! cmake --build "$BUILD" -j"$(nproc)" --target index_bench read_bw >>"$LOG" 2>&1; then
    tail -30 "$LOG" >&2
    if grep -q "No rule to make target" "$LOG"; then
        echo "index-vs-faiss.sh: the build has no bench targets: the top-level CMakeLists.txt" \
            "needs add_subdirectory(bench)" >&2
    fi
    echo "index-vs-faiss.sh: build failed (log: build-bench/bench-build.log)" >&2
    exit 1
fi

# ---- the anchor ----
find_faiss_python index-vs-faiss.sh

# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, set on some processors, slow a current numpy/FAISS:
# the Python commands run without them; index_bench keeps the environment as it is.
ENV_NOTE=""
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    if [ -n "${!v+x}" ]; then
        ENV_NOTE="${ENV_NOTE:+$ENV_NOTE; }unset $v (was '${!v}') for the Python/FAISS commands"
    fi
done
ENV_NOTE="${ENV_NOTE:-OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set, nothing unset}"
pyrun() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=$THREADS "$PY" "$@"; }

if [ "$WAIT_QUIET" -gt 0 ]; then
    say "waiting up to ${WAIT_QUIET}s for a quiet machine"
    while p=$(others_pct_now) && [ "$p" -ge 10 ] && [ "$SECONDS" -lt "$WAIT_QUIET" ]; do
        echo "   others use ${p}% of the CPU" >&2
    done
fi
QUIET_BEFORE=$(others_pct_now)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vecscan-bench.XXXXXX")
if [ "$KEEP" = 1 ]; then
    say "keeping the data, ids and JSON lines in $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi

load() { cut -d' ' -f1-3 /proc/loadavg | sed 's/ /, /g'; }
LOAD_BEFORE=$(load)
say "other processes used ${QUIET_BEFORE}% of the CPU in the last 3 s"
say "$(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average $LOAD_BEFORE; CPU:" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
say "anchor: $PY, FAISS $(pyrun -c 'import faiss; print(faiss.__version__, "(" + faiss.get_compile_options().strip() + ")")')"
say "$ENV_NOTE"

# ---- data, bandwidth, both sides, truth ----
say "data: $ROWS x $DIM Gaussian base, $N_QUERIES queries"
pyrun "$HERE/index_vs_faiss.py" data --rows "$ROWS" --dim $DIM --queries $N_QUERIES --out "$TMP"

# Each round times both sides once; the report keeps each cell's best round, so a burst of other
# engineers' work during one round does not decide the result.
NOISE_NOTES=""
NOISE_VS=100
NOISE_FAISS=100
: >"$TMP/read_bw.txt"
for round in $(seq 1 "$ROUNDS"); do
    M0=$(mark)
    say "round $round/$ROUNDS: read bandwidth ($THREADS threads, 1 GiB, best of 10)"
    "$BUILD/bench/read_bw" --threads $THREADS --reps 10 | tee -a "$TMP/read_bw.txt" >&2
    M1=$(mark)
    say "round $round/$ROUNDS: vecscan (index_bench)"
    "$BUILD/bench/index_bench" --data "$TMP/base.fbin" --queries "$TMP/queries.fbin" \
        --out "$TMP/vecscan.jsonl" --ids-dir "$TMP" --threads $THREADS \
        --indexes f32,f16,i8,b1:rr10 --single $SINGLE --min-time $MIN_TIME --min-reps $MIN_REPS \
        --bw-mib 1024
    M2=$(mark)
    say "round $round/$ROUNDS: FAISS (faiss_anchor.py)"
    pyrun "$HERE/faiss_anchor.py" --data "$TMP/base.fbin" --queries "$TMP/queries.fbin" \
        --out "$TMP/faiss.jsonl" --ids-dir "$TMP" --threads $THREADS --single $SINGLE \
        --min-time $MIN_TIME --min-reps $MIN_REPS
    M3=$(mark)
    nv=$(others_pct "$M1" "$M2")
    nf=$(others_pct "$M2" "$M3")
    NOISE_VS=$((nv < NOISE_VS ? nv : NOISE_VS))
    NOISE_FAISS=$((nf < NOISE_FAISS ? nf : NOISE_FAISS))
    NOISE_NOTES="$NOISE_NOTES round $round: ${nv}% during vecscan's part, ${nf}% during FAISS's;"
done
"$BUILD/bench/read_bw" --threads $THREADS --reps 10 | tee -a "$TMP/read_bw.txt" >&2

if [ "$BIG_ROWS" -gt 0 ]; then
    M5=$(mark)
    say "vecscan: $BIG_ROWS x $DIM i8, generated in-process"
    "$BUILD/bench/index_bench" --data "$TMP/base.fbin" --queries "$TMP/queries.fbin" \
        --out "$TMP/vecscan.jsonl" --ids-dir "$TMP" --threads $THREADS --indexes "" \
        --min-time $MIN_TIME --big-rows "$BIG_ROWS" --big-index i8 --bw-mib 1024
    NOISE_NOTES="$NOISE_NOTES $(others_pct "$M5" "$(mark)")% during the ${BIG_ROWS}-row part;"
fi
LOAD_AFTER=$(load)
LOAD_NOTE="1/5/15-min load before $LOAD_BEFORE, after $LOAD_AFTER; other processes used"
LOAD_NOTE="$LOAD_NOTE ${QUIET_BEFORE}% of the CPU just before;${NOISE_NOTES%;}"
say "$LOAD_NOTE"

say "exact float64 top-10 for recall"
pyrun "$HERE/index_vs_faiss.py" truth --data "$TMP/base.fbin" --queries "$TMP/queries.fbin" \
    --out "$TMP/truth.ids"

COMMIT=$(commit_label "$REPO" index common)
RESULTS_MD=""
[ "$RECORD" = 1 ] && RESULTS_MD="$HERE/RESULTS.md"
echo
pyrun "$HERE/index_vs_faiss.py" report --dir "$TMP" --mode "$MODE" --rows "$ROWS" --dim $DIM \
    --threads $THREADS --commit "$COMMIT" --load-note "$LOAD_NOTE" \
    --noise "$((NOISE_VS > NOISE_FAISS ? NOISE_VS : NOISE_FAISS))" --rounds "$ROUNDS" \
    --env-note "$ENV_NOTE" --results-md "$RESULTS_MD"
