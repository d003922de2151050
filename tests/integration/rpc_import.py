#!/usr/bin/env python3
"""rpc_import.py: `vecscand import` bulk-loads the MNIST base with its attributes into a fresh data
dir; a daemon started on it serves every row (Stats, Get with attributes, a filtered Search).
SKIP without $VECSCAN_DATA_DIR/mnist.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpc_common import Daemon, check, daemon_path, finish, proto, skip, vecscan_stubs  # noqa: E402


def main():
    mn = os.path.join(os.environ.get("VECSCAN_DATA_DIR", ""), "mnist")
    if not os.path.exists(os.path.join(mn, "base.bvecs")):
        skip("no MNIST set at $VECSCAN_DATA_DIR/mnist")
    pb, _, _ = proto()
    data = tempfile.mkdtemp(prefix="vs-import-")
    r = subprocess.run([daemon_path(), "import", "--data-dir", data, "--collection", "mnist",
                        "--field", "img:784:cosine:i8:rerank", "--vectors", "img=" + os.path.join(mn, "base.bvecs"),
                        "--tag", "digit", "--int", "ink", "--attrs", os.path.join(mn, "base-attrs.tsv")],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "import exit %d: %s" % (r.returncode, r.stderr[-500:]))
    check("9000 rows" in r.stderr, "import summary: %s" % r.stderr[-300:])
    bad = subprocess.run([daemon_path(), "import", "--data-dir", data], capture_output=True, text=True, timeout=30)
    check(bad.returncode != 0 and "required" in bad.stderr, "import without --vectors: %s" % bad.stderr)
    d = Daemon(data_dir=data)
    s = vecscan_stubs(d.channel())
    st = s["Stats"](pb.StatsRequest(), timeout=30)
    check(st.collections and st.collections[0].rows == 9000, "rows %s" % st.collections)
    g = s["Get"](pb.GetRequest(collection="mnist", ids=[3]), timeout=30)
    check(any(a.name == "ink" and a.int_value == 193 for a in g.items[0].attributes), "attributes of id 3")
    q = pb.Query(terms=[pb.Term(field="img", vectors=[pb.Vector(values=[float(i % 255) for i in range(784)])])],
                 k=20, filter="digit = 7", with_attributes=True)
    hits = s["Search"](pb.SearchRequest(collection="mnist", query=q), timeout=30).result.hits
    check(len(hits) == 20 and all(a.tags.values[0] == "7" for h in hits for a in h.attributes if a.name == "digit"),
          "filtered search on imported rows")
    check(d.stop() == 0, "clean stop")
    finish("rpc_import")


if __name__ == "__main__":
    main()
