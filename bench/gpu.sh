#!/usr/bin/env bash
# bench/gpu.sh: on a GPU machine, in one go (under 4 minutes): build libvecscan's CUDA backend with
# nothing beyond the CUDA toolkit (-DVECSCAN_CUDA_ONLY=ON), run tests/gpu, then benchmark at
# LiNR's size (15.5M x 128, f16 and i8) against the read floor (device-to-device copy bandwidth)
# and PyTorch (fp16 matmul + topk) on the same GPU. Prints a table; the last line is
#   RESULT i8_b1_vs_floor=<x> f16_b1_ms=<x> i8_b1024_vs_torch=<x> filter1pct_cost=<x>
# and everything goes to $OUT (when set) as gpu_bench.txt and gpu_build.log.
#
# Options: --quick (fewer cases), --rows N, --no-tests, --full-tests (the whole of tests/gpu, not its
# short form: minutes), --sanitize (compute-sanitizer memcheck and racecheck over the short tests,
# if time remains). Without a GPU it says so and exits 0.
set -u -o pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)
quick="" rows=15500000 tests=1 sanitize=0 full=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick="--quick" ;;
    --rows) rows="$2"; shift ;;
    --no-tests) tests=0 ;;
    --full-tests) full=1 ;;
    --sanitize) sanitize=1 ;;
    *) echo "usage: $0 [--quick] [--rows N] [--no-tests] [--full-tests] [--sanitize]" >&2; exit 2 ;;
  esac
  shift
done
out="${OUT:-}"
report=/dev/null
if [ -n "$out" ]; then mkdir -p "$out"; report="$out/gpu_bench.txt"; : >"$report"; fi
say() { echo "$@" | tee -a "$report"; }
left() { echo $((240 - ($(date +%s) - start))); }

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  say "SKIP bench/gpu.sh: no GPU (nvidia-smi finds no device); nothing built or measured"
  exit 0
fi
say "bench/gpu.sh $(date -u +%Y-%m-%dT%H:%MZ) on $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
arch="${cap:-90}-real"

# ---- build: only what the GPU needs ----
build=build-gpu
gen=""
command -v ninja >/dev/null 2>&1 && gen="-G Ninja"
blog=/dev/null
[ -n "$out" ] && blog="$out/gpu_build.log"
if ! { cmake -S . -B "$build" $gen -DVECSCAN_CUDA_ONLY=ON -DCMAKE_BUILD_TYPE=Release \
         -DCMAKE_CUDA_ARCHITECTURES="$arch" &&
       cmake --build "$build" -j "$(nproc)" --target vs_gpu_bench test_gpu_backend &&
       { cmake --build "$build" -j "$(nproc)" --target test_gpu_conformance || true; }; } >"$blog" 2>&1; then
  [ "$blog" != /dev/null ] && tail -40 "$blog"
  say "RESULT build_failed=1"
  exit 1
fi
say "built for sm_${cap} in $(($(date +%s) - start)) s"
bench="$build/tests/vs_gpu_bench"
[ -x "$bench" ] || bench=$(find "$build" -name vs_gpu_bench -type f | head -1)

# ---- tests/gpu ----
if [ "$tests" = 1 ]; then
  qenv="VS_GPU_TEST_QUICK=1"
  [ "$full" = 1 ] && qenv="VS_GPU_TEST_FULL=1"
  if env $qenv timeout $(( full ? 600 : 60 )) ctest --test-dir "$build" -L gpu --output-on-failure 2>&1 | tee -a "$report" | tail -25; then
    say "tests/gpu: passed"
  else
    say "tests/gpu: FAILED (see above)"
  fi
fi

# ---- benchmark ----
bout=$(mktemp)
timeout $(( $(left) > 100 ? 100 : $(left) )) "$bench" --rows "$rows" $quick 2>&1 | tee "$bout" | tee -a "$report"
summary=$(grep '^SUMMARY ' "$bout" | tail -1 | cut -d' ' -f2-)
rm -f "$bout"
torch_out=""
if [ "$(left)" -gt 20 ]; then
  torch_out=$(timeout $(( $(left) - 10 )) python3 bench/gpu_torch.py --rows "$rows" $quick 2>&1)
  echo "$torch_out" | tee -a "$report"
fi

# ---- sanitizers, if time remains ----
if [ "$sanitize" = 1 ] && command -v compute-sanitizer >/dev/null 2>&1; then
  for tool in memcheck racecheck; do
    t=$(( $(left) - 5 ))
    [ "$t" -lt 15 ] && { say "compute-sanitizer $tool: skipped, no time left"; continue; }
    if VS_GPU_TEST_QUICK=1 VS_GPU_TEST_SKIP_OOM=1 timeout "$t" compute-sanitizer --tool "$tool" \
         --error-exitcode 9 "$build/tests/test_gpu_backend" >"${out:-/tmp}/sanitize_$tool.log" 2>&1; then
      say "compute-sanitizer $tool: clean"
    else
      say "compute-sanitizer $tool: FAILED or timed out (rc $?), see sanitize_$tool.log"
    fi
  done
fi

# ---- the table and the RESULT line ----
SUMMARY_JSON="$summary" TORCH_JSON="$torch_out" python3 - <<'PY' | tee -a "$report"
import json, os
s = {}
for line in os.environ.get("SUMMARY_JSON", "").splitlines():
    try:
        s = json.loads(line)
    except ValueError:
        pass
t = {}
for line in os.environ.get("TORCH_JSON", "").splitlines():
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if "ms" in r:
        t[(r["batch"], r["k"], r["filter"])] = r["ms"]
def f(x):
    return "nan" if x is None else "%.3g" % x
def div(a, b):
    return a / b if a and b else None
print("\n%-34s %10s" % ("measure", "value"))
rows = [("copy bandwidth GB/s (r+w)", s.get("copy_gbps")),
        ("i8 batch 1 k=10 ms", s.get("i8_b1_ms")), ("i8 read floor ms", s.get("i8_floor_ms")),
        ("f16 batch 1 k=10 ms", s.get("f16_b1_ms")), ("f16 read floor ms", s.get("f16_floor_ms")),
        ("i8 batch 1024 k=10 ms", s.get("i8_b1024_ms")),
        ("i8 batch 1024 k=10 tiles ms", s.get("i8_b1024_tiles_ms")),
        ("f16 batch 1024 k=10 ms", s.get("f16_b1024_ms")),
        ("f16 batch 1024 k=10 tiles ms", s.get("f16_b1024_tiles_ms")),
        ("i8 batch 1 1% list ms", s.get("i8_b1_list1_ms"))]
for (b, k, flt), ms in sorted(t.items()):
    rows.append(("torch f16 batch %d k=%d %s ms" % (b, k, flt), ms))
for name, v in rows:
    print("%-34s %10s" % (name, f(v)))
print("RESULT i8_b1_vs_floor=%s f16_b1_ms=%s i8_b1024_vs_torch=%s filter1pct_cost=%s" % (
    f(div(s.get("i8_b1_ms"), s.get("i8_floor_ms"))), f(s.get("f16_b1_ms")),
    f(div(t.get((1024, 10, "100%")), s.get("i8_b1024_ms"))),
    f(div(s.get("i8_b1_list1_ms"), s.get("i8_b1_ms")))))
PY
