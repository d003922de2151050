#!/usr/bin/env python3
"""filter_vs_faiss.py: the Python helper of bench/filter-vs-faiss.sh.

  data    writes the benchmark's data once: Gaussian base and query vectors from a fixed seed, as
          .fbin files (int32 rows, int32 dim, rows x dim float32) that both sides read
  faiss   FAISS's side: IndexFlatIP over the same base, batches of 256 queries unfiltered and with
          an IDSelectorBitmap of exactly the slots each shared filter passes (filter_bench wrote
          them as shared_p<pass>.ids); JSON lines like filter_bench's, and the k = 10 ids
  report  reads both sides' JSON lines, prints the tables, replaces this mode's section of
          bench/RESULTS.md, and prints the RESULT line last
"""
import argparse
import datetime
import json
import os
import sys
import time

import numpy as np

from bench_common import add_data_parser, load_jsonl, md_table, read_fbin, replace_section, write_gaussian

K = 10
BATCH = 256
SHAPES = ("b1", "shared256", "own256")


# ===== data =====

def cmd_data(a):
    write_gaussian(a.out, a.rows, a.dim, a.queries, a.seed, "filter_vs_faiss")


# ===== FAISS =====

def time_batches(search, xq, min_time, min_reps):
    """Median and mean seconds of whole batches of BATCH queries, cycling through xq, after one
    untimed warm-up batch, until min_time and min_reps."""
    n_batches = len(xq) // BATCH
    search(xq[:BATCH])
    sec = []
    while len(sec) < min_reps or sum(sec) < min_time:
        lo = (len(sec) % n_batches) * BATCH
        t0 = time.perf_counter()
        search(xq[lo:lo + BATCH])
        sec.append(time.perf_counter() - t0)
    return float(np.median(sec)), float(np.mean(sec)), len(sec)


def cmd_faiss(a):
    import faiss
    faiss.omp_set_num_threads(a.threads)
    xb = read_fbin(a.data)
    xq = read_fbin(a.queries)
    n, d = xb.shape
    out = open(a.out, "a")
    meta = {"engine": "faiss", "kind": "meta", "version": faiss.__version__,
            "compile_options": faiss.get_compile_options().strip(),
            "omp_max_threads": faiss.omp_get_max_threads(), "numpy": np.__version__,
            "python": sys.version.split()[0]}
    out.write(json.dumps(meta) + "\n")
    print(f"filter_vs_faiss: FAISS {meta['version']} ({meta['compile_options']}), "
          f"{meta['omp_max_threads']} OpenMP threads; {n} x {d} base", file=sys.stderr)
    index = faiss.IndexFlatIP(d)
    index.add(xb)
    med, mean, reps = time_batches(lambda q: index.search(q, K), xq, a.min_time, a.min_reps)
    out.write(json.dumps({"engine": "faiss", "kind": "cell", "pass": 1.0, "shape": "shared256",
                          "selector": "none", "p50_ms": 1e3 * med, "mean_ms": 1e3 * mean,
                          "reps": reps, "qps": BATCH / mean}) + "\n")
    print(f"  IndexFlatIP unfiltered   batch {BATCH}: {BATCH / mean:10.1f} QPS", file=sys.stderr)
    for p in a.passes.split(","):
        ids = np.fromfile(os.path.join(a.ids_dir, f"shared_p{p}.ids"), dtype=np.int64)
        t0 = time.perf_counter()
        mask = np.zeros(n, dtype=bool)
        mask[ids] = True
        bits = np.packbits(mask, bitorder="little")  # IDSelectorBitmap: bit i of byte i >> 3
        sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        params = faiss.SearchParameters(sel=sel)
        sel_ms = 1e3 * (time.perf_counter() - t0)
        med, mean, reps = time_batches(lambda q: index.search(q, K, params=params), xq,
                                       a.min_time, a.min_reps)
        _, got = index.search(xq[:BATCH], K, params=params)
        got.astype(np.int64).tofile(os.path.join(a.ids_dir, f"faiss_p{p}.ids"))
        out.write(json.dumps({"engine": "faiss", "kind": "cell", "pass": float(p),
                              "shape": "shared256", "selector": "IDSelectorBitmap",
                              "count": int(len(ids)), "p50_ms": 1e3 * med, "mean_ms": 1e3 * mean,
                              "selector_ms": sel_ms, "reps": reps, "qps": BATCH / mean}) + "\n")
        out.flush()
        print(f"  IndexFlatIP + bitmap p={p:<6} batch {BATCH}: {BATCH / mean:10.1f} QPS "
              f"(p50 {1e3 * med:.1f} ms/batch)", file=sys.stderr)
    out.close()

# ===== report =====

def target(p):
    """DESIGN.md section 4: at most pass + 0.05 when at most 10% pass, never more than 1.05."""
    return min(p + 0.05, 1.05) if p <= 0.1 else 1.05


def pct(p):
    return f"{100 * p:g}%"


def agreement(a, b):
    """Mean fraction of the k = 10 ids two answers share, per query."""
    if not (os.path.exists(a) and os.path.exists(b)):
        return None
    x = np.fromfile(a, dtype=np.int64).reshape(-1, K)
    y = np.fromfile(b, dtype=np.int64).reshape(-1, K)
    n = min(len(x), len(y))
    return float(np.mean([len(set(x[i][x[i] >= 0]) & set(y[i][y[i] >= 0])) / K
                          for i in range(n)]))


def cmd_report(a):
    recs = load_jsonl(os.path.join(a.dir, "vecscan.jsonl")) + load_jsonl(
        os.path.join(a.dir, "faiss.jsonl"))
    cells, faiss, fmeta = {}, {}, {}
    for r in recs:
        if r["engine"] == "faiss" and r["kind"] == "meta":
            fmeta = r
        elif r["engine"] == "faiss" and r["kind"] == "cell":
            faiss[r["pass"]] = r
        elif r["engine"] == "vecscan" and r["kind"] == "cell":
            key = (r["storage"], r["pass"], r["shape"])
            # several rounds: keep each cell's best ratio
            if key not in cells or r["ratio"] < cells[key]["ratio"]:
                cells[key] = r
    passes = sorted({k[1] for k in cells})
    lines = [f"## filter-vs-faiss ({a.mode}: {a.rows:,} x {a.dim} i8, inner product, k = {K}, {a.threads} threads)",
             "",
             f"{datetime.date.today().isoformat()}, {a.cpu}; commit {a.commit}; {a.load_note}.",
             f"- anchor: FAISS {fmeta.get('version', '?')}, get_compile_options() = "
             f"`{fmeta.get('compile_options', '?')}`, numpy {fmeta.get('numpy', '?')}, "
             f"{fmeta.get('omp_max_threads', '?')} OpenMP threads",
             "- filters: one tag each (`t = 'l2f3v7'`), values hashed over the slots (never an id "
             "range); b1: every query its own random filter; shared256: 256 queries, one filter; "
             "own256: 256 queries, each its own random filter (LiNR's case).",
             "- cost = filtered time / unfiltered time of the same batch shape, medians of a loop "
             "that alternates the two on the same queries. **The filtered time includes parsing "
             "and evaluating the filter(s)** (vs_filter_parse + vs_filter_eval against the "
             "attribute store and the live bitmap), as a server pays per request.", ""]
    header = ["pass", "target"] + [f"{s}: cost (ms, eval ms, set)" for s in SHAPES]
    rows = []
    for p in passes:
        row = [pct(p), f"<= {target(p):.2f}"]
        for s in SHAPES:
            c = cells.get(("i8", p, s))
            if not c:
                row.append("-")
                continue
            kind = "list" if c["lists"] >= 0.5 else "bitmap"
            ok = "" if c["ratio"] <= target(p) else " **over**"
            row.append(f"{c['ratio']:.3f}{ok} ({c['p50_ms']:.2f}, {c['eval_p50_ms']:.2f}, {kind})")
        rows.append(row)
    base = {s: cells[("i8", passes[0], s)]["base_p50_ms"] for s in SHAPES
            if ("i8", passes[0], s) in cells}
    lines += md_table(header, rows) + [""]
    lines += ["Unfiltered medians: " + ", ".join(f"{s} {v:.2f} ms" for s, v in base.items())
              + " (per pass fraction, each loop measures its own; the table's cost uses its own).",
              ""]
    # against FAISS
    fhead = ["pass", "vecscan i8 QPS", "vecscan f32 QPS", "FAISS FlatIP + IDSelectorBitmap QPS",
             "i8 / FAISS", "f32 / FAISS", "top-10 agreement f32 / FAISS"]
    frows = []
    for p in passes:
        f = faiss.get(p)
        i8 = cells.get(("i8", p, "shared256"))
        f32 = cells.get(("f32", p, "shared256"))
        ag = agreement(os.path.join(a.dir, f"vecscan_f32_p{p:g}.ids"),
                       os.path.join(a.dir, f"faiss_p{p:g}.ids"))
        frows.append([pct(p), f"{i8['qps']:,.0f}" if i8 else "-",
                      f"{f32['qps']:,.0f}" if f32 else "-",
                      f"{f['qps']:,.0f}" if f else "-",
                      f"{i8['qps'] / f['qps']:.1f}x" if i8 and f else "-",
                      f"{f32['qps'] / f['qps']:.1f}x" if f32 and f else "-",
                      f"{ag:.3f}" if ag is not None else "-"])
    funf = faiss.get(1.0)
    lines += ["Against FAISS, batch 256 sharing one filter (QPS = queries / mean batch time; "
              "vecscan's time includes evaluating the filter, FAISS's excludes building its "
              "selector from the same slots). FAISS IndexFlatIP is exact f32; vecscan i8 reads "
              "a quarter of the bytes, so the f32 column is the like-for-like one:", ""]
    lines += md_table(fhead, frows) + [""]
    if funf:
        lines += [f"FAISS IndexFlatIP unfiltered, batch 256: {funf['qps']:,.0f} QPS.", ""]
    try:
        load_before = float(a.load_note.split("before ")[1].split(",")[0])
    except (IndexError, ValueError):
        load_before = 0.0
    if load_before >= 1.5:
        lines += [f"WARNING: recorded at a 1-minute load average of {load_before:.2f} (other "
                  "engineers' work on the same two cores): absolute times are slow and noisy, "
                  "batch-1 cells most; FAISS's OpenMP threads suffer most. Rerun at a quiet "
                  "moment (--wait-quiet 600).", ""]
    own = [c["ratio"] for (s, p, sh), c in cells.items() if s == "i8" and sh == "own256"]

    def get(p, sh, s="i8"):
        c = cells.get((s, p, sh))
        return c["ratio"] if c else None
    f10, c10 = faiss.get(0.1), cells.get(("i8", 0.1, "shared256"))
    res = {"cost_1pct": get(0.01, "b1"), "cost_10pct": get(0.1, "b1"),
           "own_filters_256": max(own) if own else None,
           "vs_faiss_selector_10pct": c10["qps"] / f10["qps"] if c10 and f10 else None}
    result = "RESULT " + " ".join(f"{k}={v:.3f}" if v is not None else f"{k}=NA"
                                  for k, v in res.items())
    body = "\n".join(lines) + "\n```\n" + result + "\n```\n"
    if a.results_md:
        replace_section(a.results_md, "filter-vs-faiss", a.mode, body)
    print("\n".join(lines))
    if a.results_md:
        print(f"(written to the '{a.mode}' section of bench/RESULTS.md)")
    print(result)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_data_parser(sub, 1024)
    p = sub.add_parser("faiss")
    p.add_argument("--data", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--ids-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--passes", default="0.001,0.01,0.1,0.5")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--min-reps", type=int, default=3)
    p = sub.add_parser("report")
    p.add_argument("--dir", required=True)
    p.add_argument("--mode", required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--commit", default="?")
    p.add_argument("--cpu", default="?")
    p.add_argument("--load-note", default="?")
    p.add_argument("--results-md", default="")
    a = ap.parse_args()
    {"data": cmd_data, "faiss": cmd_faiss, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
