#!/usr/bin/env python3
"""faiss_anchor.py: FAISS's side of bench/index-vs-faiss.sh.

Reads the same .fbin base and query files as bench/index_bench (int32 rows, int32 dim, then
rows x dim float32), builds FAISS's exhaustive inner-product indexes, IndexFlatIP (exact f32, BLAS
for batches of 20 queries and more) and IndexScalarQuantizer QT_8bit (one byte per coordinate, the
anchor for vecscan's i8), and times searches exactly as index_bench does:

- a batch of B > 1 queries is timed whole after one untimed warm-up batch, repeated (cycling
  through the query set) until --min-time seconds have passed and at least --min-reps batches ran;
  QPS is queries over time;
- batch 1 times --single queries one by one after three warm-up queries; median, mean and 99th
  percentile latency, and QPS = queries over their total time.

It writes JSON lines in index_bench's format ("engine": "faiss") to --out and, per index, the ids
of one search of every query with k = 10 (int64, queries x 10) as <ids-dir>/faiss_<index>.ids.
The thread count is set with faiss.omp_set_num_threads(--threads); the caller also sets
OMP_NUM_THREADS.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

import faiss

from bench_common import read_fbin

RECALL_K = 10


def time_single(index, q, k, n_single):
    """Batch-1 latency over n_single queries, cycling through q."""
    for i in range(3):
        index.search(q[i % len(q):i % len(q) + 1], k)
    ms = []
    for i in range(n_single):
        one = q[i % len(q):i % len(q) + 1]
        t0 = time.perf_counter()
        index.search(one, k)
        ms.append(1e3 * (time.perf_counter() - t0))
    ms.sort()
    total = sum(ms) / 1e3
    return {"queries": n_single, "seconds": total, "qps": n_single / total,
            "p50_ms": ms[n_single // 2], "mean_ms": 1e3 * total / n_single,
            "p99_ms": ms[math.ceil((n_single - 1) * 0.99)]}


def time_batches(index, q, k, b, min_time, min_reps, warm_up):
    """Whole batches of b queries, after one warm-up batch, until min_time and min_reps."""
    n_batches = len(q) // b
    if n_batches == 0:
        sys.exit(f"faiss_anchor: batch {b} is larger than the {len(q)} queries")
    if warm_up:
        index.search(q[:b], k)
    ms, total, reps = [], 0.0, 0
    while reps < min_reps or total < min_time:
        lo = (reps % n_batches) * b
        batch = q[lo:lo + b]
        t0 = time.perf_counter()
        index.search(batch, k)
        sec = time.perf_counter() - t0
        ms.append(1e3 * sec)
        total += sec
        reps += 1
    ms.sort()
    return {"queries": reps * b, "seconds": total, "qps": reps * b / total,
            "p50_ms": ms[reps // 2], "mean_ms": 1e3 * total / reps,
            "p99_ms": ms[math.ceil((reps - 1) * 0.99)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--out", required=True, help="JSON lines are appended here")
    ap.add_argument("--ids-dir", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--indexes", default="IndexFlatIP,SQ8")
    ap.add_argument("--ks", default="10,100")
    ap.add_argument("--batches", default="1,16,1000")
    ap.add_argument("--single", type=int, default=200)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--min-reps", type=int, default=2)
    a = ap.parse_args()

    faiss.omp_set_num_threads(a.threads)
    xb = read_fbin(a.data)
    xq = read_fbin(a.queries)
    n, d = xb.shape
    if xq.shape[1] != d:
        sys.exit(f"faiss_anchor: queries have dim {xq.shape[1]}, the base {d}")
    ks = [int(v) for v in a.ks.split(",")]
    batches = [int(v) for v in a.batches.split(",")]
    out = open(a.out, "a")
    meta = {"engine": "faiss", "kind": "meta", "version": faiss.__version__,
            "compile_options": faiss.get_compile_options().strip(),
            "omp_max_threads": faiss.omp_get_max_threads(), "numpy": np.__version__,
            "python": sys.version.split()[0], "executable": os.path.basename(sys.executable)}
    out.write(json.dumps(meta) + "\n")
    out.flush()
    print(f"faiss_anchor: FAISS {meta['version']} ({meta['compile_options']}), "
          f"{meta['omp_max_threads']} OpenMP threads; {n} x {d} base, {len(xq)} queries",
          file=sys.stderr)

    for name in a.indexes.split(","):
        t0 = time.perf_counter()
        if name == "IndexFlatIP":
            index = faiss.IndexFlatIP(d)
            index.add(xb)
            code_bytes = 4 * d
        elif name == "SQ8":
            index = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit,
                                               faiss.METRIC_INNER_PRODUCT)
            index.train(xb)
            index.add(xb)
            code_bytes = index.sa_code_size()
        else:
            sys.exit(f"faiss_anchor: unknown index '{name}' (IndexFlatIP or SQ8)")
        build_s = time.perf_counter() - t0
        out.write(json.dumps({"engine": "faiss", "index": name, "kind": "build", "rows": n,
                              "seconds": build_s, "field_bytes": code_bytes * n}) + "\n")
        print(f"faiss_anchor: {name}: built in {build_s:.2f} s", file=sys.stderr)

        _, ids = index.search(xq, RECALL_K)
        ids.astype(np.int64).tofile(os.path.join(a.ids_dir, f"faiss_{name}.ids"))
        for k in ks:
            for b in batches:
                # The recall search above was this very batch: it warmed it up.
                warm = not (k == RECALL_K and b == len(xq))
                t = (time_single(index, xq, k, a.single) if b == 1
                     else time_batches(index, xq, k, b, a.min_time, a.min_reps, warm))
                rec = {"engine": "faiss", "index": name, "kind": "search", "k": k, "batch": b,
                       "big": False}
                rec.update(t)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                print(f"  {name:<14} k={k:<4} batch={b:<5} {t['qps']:10.1f} QPS  "
                      f"(p50 {t['p50_ms']:.3f} ms/batch, {t['queries']} queries)", file=sys.stderr)
        if name == "IndexFlatIP" and a.threads > 1 and 1 in batches:
            # Not part of the comparison: FAISS's batch 1 on one thread, because its OpenMP
            # parallel scan of a single query can be slower than no parallelism at all.
            faiss.omp_set_num_threads(1)
            t = time_single(index, xq, RECALL_K, a.single)
            faiss.omp_set_num_threads(a.threads)
            rec = {"engine": "faiss", "index": name, "kind": "single_thread", "k": RECALL_K,
                   "batch": 1, "big": False}
            rec.update(t)
            out.write(json.dumps(rec) + "\n")
            print(f"  {name:<14} k={RECALL_K:<4} batch=1     {t['qps']:10.1f} QPS  "
                  f"(p50 {t['p50_ms']:.3f} ms) on 1 thread, for reference", file=sys.stderr)
        del index
    out.close()


if __name__ == "__main__":
    main()
