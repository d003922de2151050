#!/usr/bin/env python3
"""rpc_crash.py: SIGKILL the daemon while a client streams updates; restart it on the same data
dir; every acknowledged mutation must be there (its id, its vector, a last_acked_seq at least its
seq). Three rounds, each killed at a different moment, each adding to what the last left.
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402

from rpc_common import Daemon, check, finish, proto, vecscan_stubs  # noqa: E402

DIM = 16


def vec(i):
    return [float((i * 7 + j) % 13) for j in range(DIM)]


def main():
    pb, _, _ = proto()
    rnd = random.Random(5)
    d = Daemon(args=["--sync", "always"])
    data_dir = d.data_dir
    ch = d.channel()
    s = vecscan_stubs(ch)
    schema = pb.Schema(vectors=[pb.VectorField(name="v", dim=DIM, metric=pb.METRIC_IP)])
    s["CreateCollection"](pb.CreateCollectionRequest(name="c", schema=schema), timeout=30)
    acked = {}  # id -> seq
    next_id = 0
    for rnd_no in range(3):
        stop = threading.Event()
        got = []
        first = next_id

        def gen(start=first):
            i = start
            while not stop.is_set():
                yield pb.Mutation(collection="c", tag=i,
                                  item=pb.Item(id=i, vectors=[pb.Vector(field="v", values=vec(i))]))
                i += 1

        def reader():
            try:
                for a in s["StreamUpdates"](gen(), timeout=60):
                    if a.code == 0:
                        got.append((a.tag, a.seq))
            except grpc.RpcError:
                pass  # the daemon died under the stream
        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.4 + rnd.random() * 0.6)
        d.kill()
        stop.set()
        t.join(30)
        ch.close()
        check(len(got) > 0, "round %d: nothing was acknowledged before the kill" % rnd_no)
        for tag, seq in got:
            acked[tag] = seq
        next_id = max([first] + [tag + 1 for tag, _ in got]) + 1000
        d = Daemon(data_dir=data_dir)
        ch = d.channel()
        s = vecscan_stubs(ch)
        st = s["Stats"](pb.StatsRequest(), timeout=30)
        top = max(acked.values())
        check(st.last_acked_seq >= top, "round %d: last_acked_seq %d < acked %d" % (rnd_no, st.last_acked_seq, top))
        ids = sorted(acked)
        missing = []
        for lo in range(0, len(ids), 2000):
            g = s["Get"](pb.GetRequest(collection="c", ids=ids[lo:lo + 2000], with_vectors=True), timeout=60)
            missing += list(g.missing)
            for it in g.items:
                if list(it.vectors[0].values) != vec(it.id):
                    check(False, "round %d: id %d came back with other values" % (rnd_no, it.id))
                    break
        check(not missing, "round %d: %d acknowledged ids lost, e.g. %s" % (rnd_no, len(missing), missing[:5]))
        # Searches see them too once applied.
        r = s["Search"](pb.SearchRequest(collection="c", min_seq=top, query=pb.Query(
            terms=[pb.Term(field="v", vectors=[pb.Vector(values=[1.0] * DIM)])], k=5)), timeout=30)
        check(len(r.result.hits) == 5, "round %d: search after restart" % rnd_no)
        print("round %d: %d acknowledged before SIGKILL, all %d present after restart" % (rnd_no, len(got), len(acked)),
              flush=True)
    ch.close()
    check(d.stop() == 0, "clean stop")
    finish("rpc_crash")


if __name__ == "__main__":
    main()
