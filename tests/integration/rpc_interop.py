#!/usr/bin/env python3
"""rpc_interop.py: the transport with stock grpcio and no engine work: the health service, the
built-in test service (--enable-test-service) with an 8 MiB message, replies from a worker
thread, and a bidirectional stream of 20,000 messages whose handler is slower than the client
(HTTP/2 flow control holds the client back; every reply comes back, in order). The daemon's
resident memory must stay bounded while it does.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpc_common import Daemon, check, finish, proto, stream, unary  # noqa: E402


def main():
    _, hpb, tpb = proto()
    d = Daemon(args=["--enable-test-service"])
    ch = d.channel()
    health = unary(ch, "/grpc.health.v1.Health/Check", hpb.HealthCheckRequest, hpb.HealthCheckResponse)
    check(health(hpb.HealthCheckRequest(service="vecscan.v1.VecScan"), timeout=10).status ==
          hpb.HealthCheckResponse.SERVING, "health")
    echo = unary(ch, "/vecscan.rpctest.RpcTest/Echo", tpb.EchoRequest, tpb.EchoResponse)
    big = os.urandom(8 << 20)
    check(echo(tpb.EchoRequest(payload=big), timeout=30).payload == big, "8 MiB echo")
    check(echo(tpb.EchoRequest(payload=b"w", delay_ms=20), timeout=10).payload == b"w", "echo from the worker")
    rss0 = d.rss_kb()
    es = stream(ch, "/vecscan.rpctest.RpcTest/EchoStream", tpb.EchoRequest, tpb.EchoResponse)
    n = 20000
    payload = b"p" * 1000
    t0 = time.time()
    # The first 2,000 replies take 1 ms each on the worker: the client must wait on the window.
    reqs = (tpb.EchoRequest(payload=payload, delay_ms=1 if i < 2000 else 0) for i in range(n))
    got = 0
    peak = rss0
    for r in es(reqs, timeout=60):
        got += 1
        if r.n != got:
            check(False, "reply %d says n=%d" % (got, r.n))
            break
        if got % 2000 == 0:
            peak = max(peak, d.rss_kb())
    check(got == n, "stream: %d replies of %d" % (got, n))
    print("stream: %d messages in %.2f s, daemon RSS %d -> peak %d kB" % (n, time.time() - t0, rss0, peak), flush=True)
    # Under the sanitizers (VECSCAN_QUICK) shadow memory counts in RSS: no size check there.
    if not os.environ.get("VECSCAN_QUICK"):
        check(peak - rss0 < 64 * 1024, "daemon grew by %d kB during the stream" % (peak - rss0))
    ch.close()
    check(d.stop() == 0, "clean stop")
    finish("rpc_interop")


if __name__ == "__main__":
    main()
