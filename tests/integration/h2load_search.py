#!/usr/bin/env python3
"""h2load_search.py: load check of the daemon with h2load (Debian nghttp2-client), not run by ctest.

Starts vecscand, loads 10,000 random 128-dim f32 items with a tag, then runs
  h2load -c 64 -m 16 -D SECONDS   (64 connections x 16 concurrent Search streams, a filtered k=10 query)
twice (SECONDS, then 10 s more) and prints h2load's summary, the daemon's calls per gRPC status from
/metrics (h2load itself sees only HTTP statuses), and the daemon's resident memory before, between
and after: a leak shows as growth between the two runs.

  VECSCAND=build/release/server/vecscand python3 tests/integration/h2load_search.py [SECONDS]
"""
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpc_common import Daemon, proto, skip, vecscan_stubs  # noqa: E402


def main():
    secs = sys.argv[1] if len(sys.argv) > 1 else "30"
    if not shutil.which("h2load"):
        skip("h2load is not installed (nghttp2-client)")
    pb, _, _ = proto()
    d = Daemon()
    ch = d.channel()
    s = vecscan_stubs(ch)
    dim = 128
    s["CreateCollection"](pb.CreateCollectionRequest(name="h", schema=pb.Schema(
        vectors=[pb.VectorField(name="v", dim=dim)], attributes=[pb.AttributeField(name="t")])), timeout=30)
    rnd = random.Random(1)
    for lo in range(0, 10000, 1000):
        s["Upsert"](pb.UpsertRequest(collection="h", items=[pb.Item(
            id=i, vectors=[pb.Vector(field="v", values=[rnd.random() for _ in range(dim)])],
            attributes=[pb.Attribute(name="t", tags=pb.Tags(values=[str(i % 10)]))]) for i in range(lo, lo + 1000)]),
            timeout=60)
    q = pb.SearchRequest(collection="h", query=pb.Query(terms=[pb.Term(field="v", vectors=[pb.Vector(
        values=[rnd.random() for _ in range(dim)])])], k=10, filter="t IN (1, 2, 3)"))
    s["Search"](q, timeout=10)
    ch.close()
    body = q.SerializeToString()
    req = os.path.join(tempfile.mkdtemp(prefix="vs-h2load-"), "search.bin")
    with open(req, "wb") as f:
        f.write(b"\0" + struct.pack(">I", len(body)) + body)
    url = "http://127.0.0.1:%d/vecscan.v1.VecScan/Search" % d.port
    cmd = ["h2load", "-c", "64", "-m", "16", "-t", "1", "-d", req, "-H", "content-type: application/grpc",
           "-H", "te: trailers"]
    time.sleep(1)
    rss = [d.rss_kb()]
    for dur in (secs, "10"):
        out = subprocess.run(cmd + ["-D", dur, url], capture_output=True, text=True)
        print("\n".join(l for l in out.stdout.splitlines() if not l.startswith("progress")
                        and "thread #0" not in l), flush=True)
        time.sleep(1)
        rss.append(d.rss_kb())
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.admin_port, timeout=10).read().decode()
    for line in m.splitlines():
        if line.startswith(("vecscan_rpc_requests_total", "vecscan_rpc_connections", "vecscan_rpc_active_calls",
                            "vecscan_executor_batch")):
            print(line)
    print("daemon RSS kB: before %d, after the %s s run %d, after 10 s more %d" % (rss[0], secs, rss[1], rss[2]))
    print("daemon exit code", d.stop())


if __name__ == "__main__":
    main()
