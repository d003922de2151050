"""bench_common.py: what the bench's Python helpers share: .fbin files, the seeded Gaussian data
both sides of a comparison read, JSON lines, Markdown tables, and a script's marked section of
RESULTS.md. Imported by index_vs_faiss.py, filter_vs_faiss.py and faiss_anchor.py (same folder)."""
import json
import os
import sys

import numpy as np


def write_fbin(path, x):
    with open(path, "wb") as f:
        np.array(x.shape, dtype=np.int32).tofile(f)
        np.ascontiguousarray(x, dtype=np.float32).tofile(f)


def read_fbin(path):
    """The rows of an .fbin file as a float32 array (rows x dim)."""
    with open(path, "rb") as f:
        hdr = np.fromfile(f, dtype=np.int32, count=2)
        if hdr.size != 2 or hdr[0] <= 0 or hdr[1] <= 0:
            sys.exit(f"{path}: not an .fbin file (header {hdr.tolist()})")
        n, d = int(hdr[0]), int(hdr[1])
        x = np.fromfile(f, dtype=np.float32, count=n * d)
    if x.size != n * d:
        sys.exit(f"{path}: header says {n} x {d} floats, the file holds {x.size}")
    return x.reshape(n, d)


def write_gaussian(out, rows, dim, n_queries, seed, who):
    """base.fbin (seed) and queries.fbin (seed + 1) in out: standard normal float32."""
    base = np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32)
    queries = np.random.default_rng(seed + 1).standard_normal((n_queries, dim), dtype=np.float32)
    write_fbin(os.path.join(out, "base.fbin"), base)
    write_fbin(os.path.join(out, "queries.fbin"), queries)
    print(f"{who}: wrote {rows} x {dim} base and {n_queries} queries (Gaussian, seed {seed})",
          file=sys.stderr)


def add_data_parser(sub, default_queries):
    """The `data` subcommand both helpers take: arguments for write_gaussian."""
    p = sub.add_parser("data")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=default_queries)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", required=True)
    return p


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def md_table(header, rows, right_align=False):
    """Markdown table lines; right_align puts every column but the first to the right."""
    rule = "|" + "|".join("---" if i == 0 or not right_align else "---:"
                          for i in range(len(header))) + "|"
    out = ["| " + " | ".join(header) + " |", rule]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def replace_section(path, script, mode, body):
    """Replaces (or appends) script's section for mode in RESULTS.md, between its two markers."""
    begin, end = f"<!-- BEGIN {script} {mode} -->", f"<!-- END {script} {mode} -->"
    section = f"{begin}\n{body.rstrip()}\n{end}\n"
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    else:
        text = ("# Benchmark results\n\nEach script in bench/ replaces only its own section here; "
                "see bench/README.md for what each measures.\n\n")
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        post = rest.split(end, 1)[1].lstrip("\n")
        text = pre + section + ("\n" + post if post else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)
