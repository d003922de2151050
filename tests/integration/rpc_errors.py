#!/usr/bin/env python3
"""rpc_errors.py: every gRPC status the daemon gives, provoked once through stock grpcio, and
malformed traffic from raw sockets; after each, the daemon keeps serving other clients.

Synthetic data only (no dataset needed). The transport's finer cases (truncated frames, resets in
the middle of a message, flow control) are in tests/unit/test_rpc.c with an nghttp2 peer.
"""
import math
import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402

from rpc_common import Daemon, check, expect_code, finish, proto, unary, vecscan_stubs  # noqa: E402

C = grpc.StatusCode


def main():
    pb, hpb, tpb = proto()
    d = Daemon(args=["--enable-test-service", "--max-message-bytes", "1048576", "--max-batch-queries", "4",
                     "--shutdown-grace-ms", "300"])
    ch = d.channel()
    s = vecscan_stubs(ch)
    health = unary(ch, "/grpc.health.v1.Health/Check", hpb.HealthCheckRequest, hpb.HealthCheckResponse)
    echo = unary(ch, "/vecscan.rpctest.RpcTest/Echo", tpb.EchoRequest, tpb.EchoResponse)

    def serving(what):
        r = health(hpb.HealthCheckRequest(), timeout=10)
        check(r.status == hpb.HealthCheckResponse.SERVING, what + ": daemon no longer serving")

    serving("start")
    expect_code(health, C.NOT_FOUND, "health of an unknown service", request=hpb.HealthCheckRequest(service="x.Y"),
                timeout=10)

    dim = 8
    schema = pb.Schema(vectors=[pb.VectorField(name="v", dim=dim, metric=pb.METRIC_L2)],
                       attributes=[pb.AttributeField(name="t"), pb.AttributeField(name="n", type=pb.ATTRIBUTE_INT)])
    s["CreateCollection"](pb.CreateCollectionRequest(name="c", schema=schema), timeout=30)
    items = [pb.Item(id=i, vectors=[pb.Vector(field="v", values=[float(i + j) for j in range(dim)])],
                     attributes=[pb.Attribute(name="t", tags=pb.Tags(values=["a" if i % 2 else "b"])),
                                 pb.Attribute(name="n", int_value=i)]) for i in range(200)]
    seq = s["Upsert"](pb.UpsertRequest(collection="c", items=items), timeout=30).seq

    def q(vals, **kw):
        return pb.Query(terms=[pb.Term(field="v", vectors=[pb.Vector(values=vals)])], **kw)

    good = q([0.0] * dim, k=5)
    r = s["Search"](pb.SearchRequest(collection="c", query=good, min_seq=seq), timeout=10)
    check([h.id for h in r.result.hits] == [0, 1, 2, 3, 4], "l2 search order %s" % [h.id for h in r.result.hits])

    # ALREADY_EXISTS
    expect_code(s["CreateCollection"], C.ALREADY_EXISTS, "create twice",
                request=pb.CreateCollectionRequest(name="c", schema=schema), timeout=10)
    # NOT_FOUND
    expect_code(s["Search"], C.NOT_FOUND, "unknown collection", "nope",
                request=pb.SearchRequest(collection="nope", query=good), timeout=10)
    expect_code(s["DescribeCollection"], C.NOT_FOUND, "describe unknown",
                request=pb.DescribeCollectionRequest(name="nope"), timeout=10)
    expect_code(s["DropCollection"], C.NOT_FOUND, "drop unknown", request=pb.DropCollectionRequest(name="nope"),
                timeout=10)
    # INVALID_ARGUMENT, each with a message naming the part
    expect_code(s["Search"], C.INVALID_ARGUMENT, "wrong dim", "dim",
                request=pb.SearchRequest(collection="c", query=q([1.0] * (dim + 1))), timeout=10)
    expect_code(s["Upsert"], C.INVALID_ARGUMENT, "NaN value", None,
                request=pb.UpsertRequest(collection="c", items=[pb.Item(id=1, vectors=[pb.Vector(
                    field="v", values=[math.nan] * dim)])]), timeout=10)
    expect_code(s["Search"], C.INVALID_ARGUMENT, "bad filter", "column",
                request=pb.SearchRequest(collection="c", query=q([0.0] * dim, filter="t = = 3")), timeout=10)
    expect_code(s["Search"], C.INVALID_ARGUMENT, "unknown filter field", "zz",
                request=pb.SearchRequest(collection="c", query=q([0.0] * dim, filter="zz = 3")), timeout=10)
    expect_code(s["Search"], C.INVALID_ARGUMENT, "unknown vector field", "w",
                request=pb.SearchRequest(collection="c", query=pb.Query(terms=[pb.Term(
                    field="w", vectors=[pb.Vector(values=[0.0] * dim)])])), timeout=10)
    expect_code(s["Search"], C.INVALID_ARGUMENT, "k past --max-k", "max-k",
                request=pb.SearchRequest(collection="c", query=q([0.0] * dim, k=10001)), timeout=10)
    expect_code(s["Upsert"], C.INVALID_ARGUMENT, "attribute type", None,
                request=pb.UpsertRequest(collection="c", items=[pb.Item(id=1, vectors=[pb.Vector(
                    field="v", values=[0.0] * dim)], attributes=[pb.Attribute(name="n", tags=pb.Tags(values=["x"]))])]),
                timeout=10)
    raw = ch.unary_unary("/vecscan.v1.VecScan/Search", request_serializer=lambda b: b,
                         response_deserializer=lambda b: b)
    expect_code(raw, C.INVALID_ARGUMENT, "unparsable protobuf", "does not parse",
                request=b"\xff\xff\xff\xff", timeout=10)
    # OUT_OF_RANGE
    expect_code(s["Search"], C.OUT_OF_RANGE, "min_seq past the last ack", None,
                request=pb.SearchRequest(collection="c", query=good, min_seq=seq + 1000), timeout=10)
    # RESOURCE_EXHAUSTED: a message past --max-message-bytes, a batch past --max-batch-queries
    expect_code(echo, C.RESOURCE_EXHAUSTED, "message past the limit", "limit",
                request=tpb.EchoRequest(payload=b"x" * (2 << 20)), timeout=10)
    expect_code(s["SearchBatch"], C.RESOURCE_EXHAUSTED, "batch past --max-batch-queries", "max-batch-queries",
                request=pb.SearchBatchRequest(collection="c", queries=[good] * 5), timeout=10)
    # DEADLINE_EXCEEDED, answered by the server (the work takes 500 ms, the deadline is 100 ms)
    t0 = time.time()
    expect_code(echo, C.DEADLINE_EXCEEDED, "deadline", request=tpb.EchoRequest(delay_ms=500), timeout=0.1)
    check(time.time() - t0 < 0.4, "deadline answered late")
    # UNIMPLEMENTED: an unknown method, a compressed message
    nope = unary(ch, "/vecscan.v1.VecScan/Nope", pb.StatsRequest, pb.StatsResponse)
    expect_code(nope, C.UNIMPLEMENTED, "unknown method", request=pb.StatsRequest(), timeout=10)
    expect_code(echo, C.UNIMPLEMENTED, "compressed message", request=tpb.EchoRequest(payload=b"z" * 1000),
                timeout=10, compression=grpc.Compression.Gzip)
    serving("after the errors")

    # Garbage and a truncated frame from raw sockets; a stream cancelled mid-way by grpcio.
    for junk in [b"\x00" * 64, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x03\x04\x00\x00\x00\x00\x00abc"]:
        sk = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        sk.sendall(junk)
        try:
            while sk.recv(4096):
                pass
            closed = True
        except socket.timeout:
            closed = False
        sk.close()
        check(closed, "garbage %r: connection not closed" % junk[:8])
    upd = s["StreamUpdates"]

    def slow_mutations():
        for i in range(1000, 1100):
            yield pb.Mutation(collection="c", item=pb.Item(id=i, vectors=[pb.Vector(field="v", values=[1.0] * dim)]))
            time.sleep(0.002)
    it = upd(slow_mutations(), timeout=30)
    n = 0
    for a in it:
        n += 1
        if n == 10:
            it.cancel()
            break
    serving("after a cancelled stream")
    # A stream with a bad mutation in the middle: it gets its own error ack, the rest go through.
    muts = [pb.Mutation(collection="c", tag=1, item=items[1]),
            pb.Mutation(collection="c", tag=2, item=pb.Item(id=5, vectors=[pb.Vector(field="v", values=[1.0])])),
            pb.Mutation(collection="nope", tag=3, item=items[1]),
            pb.Mutation(collection="c", tag=4, op=pb.OP_DELETE, item=pb.Item(id=424242)),
            pb.Mutation(collection="c", tag=5, op=pb.OP_PATCH, item=pb.Item(id=2, attributes=[
                pb.Attribute(name="n", int_value=-7)]))]
    acks = list(upd(iter(muts), timeout=30))
    check([a.tag for a in acks] == [1, 2, 3, 4, 5], "stream acks %s" % [a.tag for a in acks])
    check([a.code for a in acks] == [0, C.INVALID_ARGUMENT.value[0], C.NOT_FOUND.value[0], 0, 0],
          "stream ack codes %s" % [(a.code, a.message) for a in acks])
    check(acks[3].absent and not acks[0].absent, "delete of an absent id says absent")
    g = s["Get"](pb.GetRequest(collection="c", ids=[2]), timeout=10)
    check(any(a.name == "n" and a.int_value == -7 for a in g.items[0].attributes), "patch applied")
    check(any(a.name == "t" for a in g.items[0].attributes), "patch kept the other attribute")

    # UNAUTHENTICATED
    tok = tempfile.NamedTemporaryFile("w", delete=False)
    tok.write("t0ken-%d\n" % os.getpid())
    tok.close()
    da = Daemon(args=["--auth-token-file", tok.name])
    cha = da.channel()
    sa = vecscan_stubs(cha)
    expect_code(sa["ListCollections"], C.UNAUTHENTICATED, "no token", request=pb.ListCollectionsRequest(), timeout=10)
    expect_code(sa["ListCollections"], C.UNAUTHENTICATED, "wrong token", request=pb.ListCollectionsRequest(),
                timeout=10, metadata=[("authorization", "Bearer nope")])
    sa["ListCollections"](pb.ListCollectionsRequest(), timeout=10,
                          metadata=[("authorization", "Bearer t0ken-%d" % os.getpid())])
    ha = unary(cha, "/grpc.health.v1.Health/Check", hpb.HealthCheckRequest, hpb.HealthCheckResponse)
    check(ha(hpb.HealthCheckRequest(), timeout=10).status == hpb.HealthCheckResponse.SERVING, "health without token")
    cha.close()
    check(da.stop() == 0, "auth daemon exit")
    os.unlink(tok.name)

    # UNAVAILABLE: a call still running when the shutdown grace (300 ms) ends.
    res = {}

    def slow():
        try:
            echo(tpb.EchoRequest(delay_ms=3000), timeout=20)
            res["code"] = C.OK
        except grpc.RpcError as e:
            res["code"] = e.code()
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    rc = d.stop()
    t.join(20)
    check(res.get("code") == C.UNAVAILABLE, "in-flight call at shutdown: %s" % res.get("code"))
    check(rc == 0, "daemon exit code %s" % rc)
    check("INTERNAL" not in "".join(d.log), "an INTERNAL status was logged")
    finish("rpc_errors")


if __name__ == "__main__":
    main()
