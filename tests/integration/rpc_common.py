"""rpc_common.py: what the vecscand integration tests share.

- proto(): message classes generated from proto/*.proto with `protoc --python_out` at test time
  (Debian's protobuf-compiler), imported from a temporary directory.
- Daemon: starts a real vecscand on loopback with --port 0 --admin-port 0 and reads the ports it
  picked from its log; stops it with SIGTERM (checking exit 0) or SIGKILL.
- unary() / stream(): grpcio's generic multi-callables with the generated classes'
  SerializeToString / FromString, so no grpc-tools is needed.

Every test prints SKIP and exits 77 when a prerequisite (grpcio, protoc, a dataset) is missing.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def skip(why):
    print("SKIP: " + why, flush=True)
    sys.exit(SKIP)


try:
    import grpc  # noqa: E402
except ImportError:
    skip("python3-grpcio is not installed (deploy/install-deps.sh)")

_failures = 0


def check(cond, what):
    global _failures
    if not cond:
        _failures += 1
        print("FAIL: " + what, flush=True)
    return cond


def finish(name):
    if _failures:
        print(f"{name}: {_failures} failures", flush=True)
        sys.exit(1)
    print(f"{name}: ok", flush=True)
    sys.exit(0)


_proto_mods = None


def proto():
    """Returns (vecscan_pb2, health_pb2, rpc_test_pb2), generated now."""
    global _proto_mods
    if _proto_mods:
        return _proto_mods
    protoc = os.environ.get("PROTOC", "protoc")
    out = tempfile.mkdtemp(prefix="vs-pb2-")
    src = os.path.join(REPO, "proto")
    try:
        subprocess.run([protoc, "--python_out=" + out, "-I" + src, "vecscan.proto", "health.proto",
                        "rpc_test.proto"], check=True, cwd=src)
    except FileNotFoundError:
        skip("protoc is not installed (protobuf-compiler)")
    sys.path.insert(0, out)
    try:
        import vecscan_pb2
        import health_pb2
        import rpc_test_pb2
    except ImportError as e:
        skip("python3-protobuf is not installed: %s" % e)
    _proto_mods = (vecscan_pb2, health_pb2, rpc_test_pb2)
    return _proto_mods


def daemon_path():
    p = os.environ.get("VECSCAND")
    if not p or not os.path.exists(p):
        skip("VECSCAND does not name the vecscand binary")
    return p


class Daemon:
    """A vecscand on 127.0.0.1 with ports chosen by the kernel."""

    def __init__(self, data_dir=None, args=(), env=None):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="vs-data-")
        self.args = list(args)
        self.env = env
        self.proc = None
        self.port = self.admin_port = None
        self.log = []
        self.start()

    def start(self):
        cmd = [daemon_path(), "--data-dir", self.data_dir, "--port", "0", "--admin-port", "0"] + self.args
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                     env=self.env)
        ready = threading.Event()
        self.log = []

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                if os.environ.get("VS_TEST_VERBOSE"):
                    sys.stderr.write("  daemon| " + line)
                m = re.search(r"grpc port (\d+), admin port (\d+)", line)
                if m:
                    self.port, self.admin_port = int(m.group(1)), int(m.group(2))
                if "main: ready" in line or "ERROR" in line:
                    ready.set()
            ready.set()

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        if not ready.wait(60) or self.port is None:
            self.proc.kill()
            raise RuntimeError("vecscand did not start:\n" + "".join(self.log))
        self.addr = "127.0.0.1:%d" % self.port

    def channel(self, **opts):
        options = [("grpc.max_receive_message_length", 128 << 20),
                   ("grpc.max_send_message_length", 128 << 20)] + list(opts.items())
        return grpc.insecure_channel(self.addr, options=options)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.pump.join(5)
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.pump.join(5)


def unary(ch, path, req_cls, resp_cls):
    return ch.unary_unary(path, request_serializer=req_cls.SerializeToString,
                          response_deserializer=resp_cls.FromString)


def stream(ch, path, req_cls, resp_cls):
    return ch.stream_stream(path, request_serializer=req_cls.SerializeToString,
                            response_deserializer=resp_cls.FromString)


def vecscan_stubs(ch):
    """A dict method name -> multi-callable for vecscan.v1.VecScan."""
    pb, _, _ = proto()
    svc = pb.DESCRIPTOR.services_by_name["VecScan"]
    out = {}
    for m in svc.methods:
        req = getattr(pb, m.input_type.name)
        resp = getattr(pb, m.output_type.name)
        path = "/vecscan.v1.VecScan/" + m.name
        if m.client_streaming:
            out[m.name] = stream(ch, path, req, resp)
        else:
            out[m.name] = unary(ch, path, req, resp)
    return out


def expect_code(fn, code, what, contains=None, **kw):
    """Calls fn(**kw) expecting grpc.RpcError with code; returns the error (or None)."""
    try:
        fn(**kw)
    except grpc.RpcError as e:
        ok = check(e.code() == code, "%s: expected %s, got %s (%s)" % (what, code, e.code(), e.details()))
        if ok and contains:
            check(contains in (e.details() or ""), "%s: message %r lacks %r" % (what, e.details(), contains))
        return e
    check(False, "%s: expected %s, the call succeeded" % (what, code))
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
