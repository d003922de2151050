#!/usr/bin/env bash
# filter-vs-faiss.sh: what does a filter cost a vecscan search, relative to the same search
# without one, and how does a filtered batch compare with FAISS's exhaustive search under an ID
# selector of the same slots?
#
#   bench/filter-vs-faiss.sh [--quick] [options]
#
#   --quick      200k rows (a couple of minutes); the full run has 1M rows
#   --rows N     another row count (testing the script; implies --no-record)
#   --no-record  print only, leave bench/RESULTS.md alone
#   --keep       keep the temporary folder with the data, ids and JSON lines
#   --wait-quiet S  first wait up to S seconds for a 1-minute load average under 1.5 (other
#                engineers' builds share the cores and make timings noisy)
#   --rounds R   run vecscan's cells R times and keep each cell's best ratio (default 1)
#
# Steps: build filter_bench in Release (its own tree, build-bench/, from this checkout); find or
# install the anchor (pip faiss-cpu with numpy where PyPI answers, else Debian's python3-faiss
# under /usr/bin/python3); write Gaussian data once (d = 128, fixed seed); run vecscan
# (filter_bench: i8 in every shape, f32 in the FAISS comparison) and FAISS (filter_vs_faiss.py
# faiss: IndexFlatIP with an IDSelectorBitmap of the slots each shared filter passes), both with 2
# threads; print the tables, replace this mode's section of bench/RESULTS.md, and print the RESULT
# line last.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD="$REPO/build-bench"
THREADS=2
DIM=128
PASSES=0.001,0.01,0.1,0.5

MODE=full
ROWS=1000000
SINGLE=200
MIN_TIME=1.0
RECORD=1
KEEP=0
WAIT_QUIET=0
ROUNDS=1
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) MODE=quick; ROWS=200000; MIN_TIME=0.5 ;;
    --rows) ROWS="$2"; RECORD=0; MODE=custom; shift ;;
    --no-record) RECORD=0 ;;
    --keep) KEEP=1 ;;
    --wait-quiet) WAIT_QUIET="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "filter-vs-faiss.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "== [${SECONDS}s] $*" >&2; }
# shared helpers (find_faiss_python, record_section, commit_label)
. "$HERE/lib.bash"
load1() { cut -d' ' -f1 /proc/loadavg; }
load() { cut -d' ' -f1-3 /proc/loadavg | sed 's/ /, /g'; }

# ---- build ----
say "building filter_bench (Release, in build-bench/)"
mkdir -p "$BUILD"
LOG="$BUILD/filter-bench-build.log"
cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DVECSCAN_CUDA=OFF >"$LOG" 2>&1 ||
    { tail -30 "$LOG" >&2; echo "filter-vs-faiss.sh: cmake configure failed" >&2; exit 1; }
if ! cmake --build "$BUILD" -j2 --target filter_bench >>"$LOG" 2>&1; then
    tail -30 "$LOG" >&2
    echo "filter-vs-faiss.sh: build failed (log: build-bench/filter-bench-build.log)" >&2
    exit 1
fi

# ---- the anchor ----
find_faiss_python filter-vs-faiss.sh
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE slow a current numpy/FAISS on some processors: the Python
# commands run without them (as in index-vs-faiss.sh).
pyrun() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=$THREADS "$PY" "$@"; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vecscan-filter-bench.XXXXXX")
if [ "$KEEP" = 1 ]; then
    say "keeping the data, ids and JSON lines in $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi

say "data: $ROWS x $DIM Gaussian base, 1024 queries"
pyrun "$HERE/filter_vs_faiss.py" data --rows "$ROWS" --dim $DIM --queries 1024 --out "$TMP"

if [ "$WAIT_QUIET" -gt 0 ]; then
    say "waiting up to ${WAIT_QUIET}s for a 1-minute load average under 1.5"
    end=$((SECONDS + WAIT_QUIET))
    while awk -v l="$(load1)" 'BEGIN { exit !(l >= 1.5) }' && [ "$SECONDS" -lt "$end" ]; do
        echo "   load average $(load)" >&2
        sleep 15
    done
fi
LOAD_BEFORE=$(load)
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
say "$(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average $LOAD_BEFORE; CPU: $CPU"
say "anchor: $PY, FAISS $(pyrun -c 'import faiss; print(faiss.__version__, "(" + faiss.get_compile_options().strip() + ")")')"

# ---- both sides ----
for round in $(seq 1 "$ROUNDS"); do
    say "round $round/$ROUNDS: vecscan (filter_bench)"
    "$BUILD/bench/filter_bench" --data "$TMP/base.fbin" --queries "$TMP/queries.fbin" \
        --out "$TMP/vecscan.jsonl" --ids-dir "$TMP" --threads $THREADS --passes "$PASSES" \
        --storages i8 --compare f32 --single $SINGLE --min-time $MIN_TIME
done
say "FAISS (filter_vs_faiss.py faiss)"
pyrun "$HERE/filter_vs_faiss.py" faiss --data "$TMP/base.fbin" --queries "$TMP/queries.fbin" \
    --ids-dir "$TMP" --out "$TMP/faiss.jsonl" --passes "$PASSES" --threads $THREADS \
    --min-time $MIN_TIME
LOAD_NOTE="1/5/15-min load average before $LOAD_BEFORE, after $(load)"
say "$LOAD_NOTE"

COMMIT=$(commit_label "$REPO" index filters common)
RESULTS_MD=""
[ "$RECORD" = 1 ] && RESULTS_MD="$HERE/RESULTS.md"
echo
pyrun "$HERE/filter_vs_faiss.py" report --dir "$TMP" --mode "$MODE" --rows "$ROWS" --dim $DIM \
    --threads $THREADS --commit "$COMMIT" --cpu "$CPU" --load-note "$LOAD_NOTE" \
    --results-md "$RESULTS_MD"
